"""Logging in with a directory (LDAP, through ``ldap3``).

``authenticate`` talks to the directory: bind as the service account, search the user
by ``username_attribute`` (the typed login escaped), require exactly one entry, bind as
that entry with the given password, read its groups.  ``ldap_login`` turns the answer
into a local user: created at the first login (``auth_source = 'ldap'``, no local
password), e-mail and full name refreshed at each login, directory groups synced into
notebook groups of source ``ldap``, admin rights from ``admin_groups``.

Rules:
- An LDAP login never takes over a local account: if the directory's username is the
  login of an account made here (``auth_source == 'local'``), it is refused.
- The typed login is only the search key (matching follows the directory's rules,
  usually case-insensitive); the user's local login is the entry's attribute value.
- Wrong password and unknown user get the same answer as local logins; a directory that
  cannot be reached (or is misconfigured) gets "directory unavailable" (503).
"""
import logging
import math
import re
import ssl
from dataclasses import dataclass

from ldap3 import NONE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars

from .. import audit
from .passwords import check_login_name

log = logging.getLogger(__name__)

WRONG_CREDENTIALS = 'Wrong username or password.'
DIRECTORY_UNAVAILABLE = 'The directory is unavailable; try again later.'
NOT_ALLOWED = 'Your directory account is not allowed to use this notebook server.'
LOCAL_ACCOUNT = ('This username belongs to an account of this notebook server; '
                 'log in with its own password.')
SUSPENDED = 'This account is suspended.'

_ATTRIBUTE_RE = re.compile(r'^[A-Za-z][A-Za-z0-9-]*$')
# Logins longer than this are not searched for (no local login is that long anyway).
_MAX_LOGIN = 256
_RESULT_INVALID_CREDENTIALS = 49
_RESULT_SIZE_LIMIT_EXCEEDED = 4


class LoginRefused(Exception):
    """A login that did not succeed: ``message`` for the page, ``reason`` for the log."""

    def __init__(self, message, status, reason):
        super().__init__(reason)
        self.message = message
        self.status = status
        self.reason = reason


def _wrong(reason):
    return LoginRefused(WRONG_CREDENTIALS, 400, reason)


def _unavailable(reason):
    return LoginRefused(DIRECTORY_UNAVAILABLE, 503, reason)


@dataclass(frozen=True)
class LdapSettings:
    uri: str
    start_tls: bool
    ca_file: str
    bind_dn: str
    bind_password: str
    base_dn: str
    username_attribute: str
    timeout: float
    group_base_dn: str
    group_filter: str
    admin_groups: frozenset
    allowed_groups: frozenset

    @classmethod
    def from_settings(cls, settings):
        """The ``sagenb.ldap.*`` settings; None when LDAP is off (empty ``uri``).
        Raises ValueError saying which setting is wrong."""
        uri = (settings.get('sagenb.ldap.uri') or '').strip()
        if not uri:
            return None
        if not uri.lower().startswith(('ldap://', 'ldaps://')):
            raise ValueError('sagenb.ldap.uri must start with ldap:// or ldaps://')
        start_tls = settings.get('sagenb.ldap.start_tls', False)
        if start_tls and uri.lower().startswith('ldaps://'):
            raise ValueError('sagenb.ldap.start_tls is for ldap:// (ldaps:// is TLS already)')
        base_dn = (settings.get('sagenb.ldap.base_dn') or '').strip()
        if not base_dn:
            raise ValueError('sagenb.ldap.base_dn is required with sagenb.ldap.uri')
        attribute = (settings.get('sagenb.ldap.username_attribute') or 'uid').strip()
        if not _ATTRIBUTE_RE.match(attribute):
            raise ValueError('sagenb.ldap.username_attribute is not an attribute name')
        timeout = settings.get('sagenb.ldap.timeout', 10.0)
        if timeout <= 0:
            raise ValueError('sagenb.ldap.timeout must be positive')
        return cls(
            uri=uri, start_tls=start_tls,
            ca_file=(settings.get('sagenb.ldap.ca_file') or '').strip(),
            bind_dn=(settings.get('sagenb.ldap.bind_dn') or '').strip(),
            bind_password=settings.get('sagenb.ldap.bind_password') or '',
            base_dn=base_dn, username_attribute=attribute, timeout=timeout,
            group_base_dn=(settings.get('sagenb.ldap.group_base_dn') or '').strip() or base_dn,
            group_filter=(settings.get('sagenb.ldap.group_filter') or '').strip(),
            admin_groups=_group_set(settings.get('sagenb.ldap.admin_groups')),
            allowed_groups=_group_set(settings.get('sagenb.ldap.allowed_groups')))


def _group_set(value):
    # Comma-separated (a name may hold spaces); names (cn) compare without case, as the
    # directory compares them.
    return frozenset(name.strip().casefold() for name in re.split(r'[,\n]', value or '')
                     if name.strip())


@dataclass(frozen=True)
class DirectoryEntry:
    dn: str
    username: str
    email: str
    fullname: str
    groups: tuple


def ldap_enabled(settings):
    return bool((settings.get('sagenb.ldap.uri') or '').strip())


def ldap_applies(settings, user):
    """True when a login goes to the directory: LDAP is on and the login is not that of
    a local account (``user`` is the account found under the typed login, or None)."""
    return ldap_enabled(settings) and (
        user is None or user.auth_source == 'ldap')


def authenticate(config, login_name, password):
    """The directory entry of ``login_name`` if ``password`` is its password.

    Raises LoginRefused: wrong credentials (400), directory unavailable (503), not in
    ``allowed_groups`` (403)."""
    # An empty password would be an anonymous ("unauthenticated") bind that succeeds.
    if not password or not login_name:
        raise _wrong('empty login or password')
    if len(login_name) > _MAX_LOGIN or not _encodable(login_name) \
            or not _encodable(password):
        raise _wrong('unusable login or password')
    server = Server(config.uri, connect_timeout=config.timeout, get_info=NONE,
                    tls=Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=config.ca_file or None))
    service = user_conn = None
    try:
        service = _open(server, config, config.bind_dn or None, config.bind_password or None)
        if not service.bind():
            raise _unavailable('the service account could not bind: %s'
                               % service.result.get('description'))
        dn, attributes = _find_user(service, config, login_name)
        user_conn = _open(server, config, dn, password)
        if not user_conn.bind():
            code = user_conn.result.get('result')
            raise _wrong('wrong password' if code == _RESULT_INVALID_CREDENTIALS
                         else 'bind refused: %s' % user_conn.result.get('description'))
        username = _username(attributes, config.username_attribute, login_name)
        groups = _groups(service, config, dn, username)
    except LDAPException as e:
        raise _unavailable('%s: %s' % (type(e).__name__, e)) from None
    except OSError as e:
        raise _unavailable('%s: %s' % (type(e).__name__, e)) from None
    finally:
        for conn in (user_conn, service):
            if conn is not None:
                try:
                    conn.unbind()
                except (LDAPException, OSError):
                    pass
    if config.allowed_groups and not config.allowed_groups & {g.casefold() for g in groups}:
        raise LoginRefused(NOT_ALLOWED, 403, 'not in allowed_groups')
    return DirectoryEntry(
        dn=dn, username=username, email=_first(attributes, 'mail'),
        fullname=_first(attributes, 'displayName') or _first(attributes, 'cn'),
        groups=tuple(groups))


def _encodable(text):
    try:
        text.encode('utf-8')
    except UnicodeEncodeError:
        return False
    return '\0' not in text


def _open(server, config, user, password):
    conn = Connection(server, user=user, password=password, read_only=True,
                      # whole seconds: ldap3 packs it into SO_RCVTIMEO
                      receive_timeout=max(1, math.ceil(config.timeout)),
                      raise_exceptions=False,
                      auto_referrals=False)
    conn.open()
    if config.start_tls:
        conn.start_tls()  # verifies the certificate; raises when it does not verify
    return conn


def _find_user(conn, config, login_name):
    search_filter = '(%s=%s)' % (config.username_attribute, escape_filter_chars(login_name))
    conn.search(config.base_dn, search_filter, SUBTREE, size_limit=2,
                time_limit=max(1, int(config.timeout)),
                attributes=[config.username_attribute, 'mail', 'cn', 'displayName'])
    code = conn.result.get('result')
    if code not in (0, _RESULT_SIZE_LIMIT_EXCEEDED):
        raise _unavailable('user search under %s failed: %s'
                           % (config.base_dn, conn.result.get('description')))
    hits = [r for r in conn.response or () if r.get('type') == 'searchResEntry']
    if len(hits) != 1:
        raise _wrong('no such user' if not hits else 'more than one entry matches')
    return hits[0]['dn'], hits[0].get('attributes') or {}


def _values(attributes, name):
    for key, value in attributes.items():
        if key.lower() == name.lower():
            if isinstance(value, (list, tuple)):
                return [str(v) for v in value]
            return [str(value)] if value not in (None, '') else []
    return []


def _first(attributes, name):
    values = _values(attributes, name)
    return values[0].strip() if values else ''


def _username(attributes, attribute, typed):
    """The entry's own spelling of the login: the value that matched what was typed."""
    values = _values(attributes, attribute)
    for value in values:
        if value.casefold() == typed.casefold():
            return value
    return values[0] if values else typed


def _groups(conn, config, dn, username):
    """Names (``cn``) of the directory groups the entry belongs to."""
    if not config.group_filter:
        return []
    # Placeholders replaced, not str.format: a filter may hold braces of its own.
    search_filter = config.group_filter.replace('{dn}', escape_filter_chars(dn)) \
        .replace('{username}', escape_filter_chars(username))
    conn.search(config.group_base_dn, search_filter, SUBTREE, attributes=['cn'],
                time_limit=max(1, int(config.timeout)))
    code = conn.result.get('result')
    if code not in (0, _RESULT_SIZE_LIMIT_EXCEEDED):
        raise _unavailable('group search under %s failed: %s'
                           % (config.group_base_dn, conn.result.get('description')))
    names = []
    for hit in conn.response or ():
        if hit.get('type') == 'searchResEntry':
            name = _first(hit.get('attributes') or {}, 'cn')
            if name and name not in names:
                names.append(name)
    return sorted(names)


def ldap_login(request, root, login_name, password):
    """Log ``login_name`` in through the directory: the local user, created or updated.

    Raises LoginRefused (with the message and status for the login page); every outcome
    is written to the audit log."""
    try:
        config = LdapSettings.from_settings(request.registry.settings)
    except ValueError as e:
        log.error('LDAP is misconfigured: %s', e)
        audit.record(request, 'login_failed', login_name[:100], 'ldap: misconfigured',
                     actor='')
        raise _unavailable('misconfigured: %s' % e) from None
    try:
        entry = authenticate(config, login_name, password)
        user = _local_user(root, config, entry)
    except LoginRefused as refusal:
        if refusal.status == 503:
            log.warning('LDAP login of %r: directory unavailable: %s',
                        login_name, refusal.reason)
        audit.record(request, 'login_failed', login_name[:100],
                     'ldap: ' + refusal.reason, actor='')
        raise
    audit.record(request, 'login', user.login, 'ldap', actor=user.login)
    return user


def _local_user(root, config, entry):
    problem = check_login_name(entry.username)
    if problem:
        raise LoginRefused(
            'Your directory username "%s" cannot be used on this server. %s'
            % (entry.username, problem), 400, 'directory username not usable')
    user = root.user_by_login(entry.username)
    if user is not None and user.auth_source != 'ldap':
        raise LoginRefused(LOCAL_ACCOUNT, 403, 'login of a local account')
    if user is not None and user.suspended:
        raise LoginRefused(SUSPENDED, 403, 'suspended account')
    if user is None:
        user = root.add_user(entry.username, password_hash=None, email=entry.email,
                             fullname=entry.fullname)
        user.auth_source = 'ldap'
    else:
        if user.email != entry.email:
            user.email = entry.email
        if user.fullname != entry.fullname:
            user.fullname = entry.fullname
    if user.ldap_dn != entry.dn:
        user.ldap_dn = entry.dn
    if config.admin_groups:
        # The directory decides: granted and revoked at each login.
        is_admin = bool(config.admin_groups & {g.casefold() for g in entry.groups})
        if user.is_admin != is_admin:
            user.is_admin = is_admin
    root.sync_groups(user, entry.groups, 'ldap')
    return user
