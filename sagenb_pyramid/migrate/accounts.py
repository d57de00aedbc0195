"""What the notebook folder says about its server: the accounts (``users.pickle``,
``readonly.txt``, ``openid.pickle``) and the server settings (``conf.pickle``).

:class:`Accounts` reads them, creates the users here and knows, by login, the user
each legacy account became; :func:`map_setting` says what a legacy setting becomes.
"""
import os
import re

from ..auth.passwords import check_login_name
from ..formats import FormatError, safepickle
from ..importing import _shown
from ..services.accounts import check_email
from .files import MAX_SMALL_FILE, as_text, label, read, read_pickle, reason

PSEUDO_USERS = {
    '_sage_': 'documentation worksheets of the pseudo-user _sage_ are not migrated',
    'pub': 'the pseudo-user pub holds published copies: the originals are marked '
           'published instead',
}
CLOSED_PASSWORDS = ('', 'x')  # sagenb wrote 'x' for an account without a password


class Accounts:
    """The accounts of the old notebook and the users they became here."""

    def __init__(self, root, folder, report):
        self.root = root
        self.folder = folder
        self.report = report
        self.legacy_users = {}     # login -> dict from users.pickle
        self.users = {}            # login -> User here (created or existing)

    def read_users(self):
        path = os.path.join(self.folder, 'users.pickle')
        if not os.path.lexists(path):
            self.report.note('users.pickle', 'not found: the owners of worksheets are '
                             'created without passwords')
            return
        try:
            value = read_pickle(path, 'users.pickle')
        except FormatError as exc:
            self.report.skip('users.pickle', '%s; the owners of worksheets are created '
                             'without passwords' % reason(exc, 'users.pickle'))
            return
        if isinstance(value, dict):
            entries = list(value.items())
        elif isinstance(value, list):
            entries = value
        else:
            self.report.skip('users.pickle', 'it holds neither a list nor a dictionary')
            return
        for entry in entries:
            if isinstance(entry, (list, tuple)) and len(entry) == 2 and \
                    isinstance(entry[0], str) and isinstance(entry[1], dict):
                self.legacy_users[entry[0]] = entry[1]
            else:
                self.report.skip('users.pickle entry %.60r' % (entry,),
                                 'not a [username, {...}] pair')

    def create_users(self, owners):
        """Users for the accounts of ``users.pickle`` and the owners of worksheets
        (``{login: {number: folder}}``)."""
        logins = set(self.legacy_users) | set(owners)
        for login in sorted(logins):
            info = self.legacy_users.get(login)
            item = 'user %s' % login
            problem = check_login_name(login)
            if problem:
                item = 'user %s' % label(login)
            if login in PSEUDO_USERS:
                if info is not None:
                    self.report.skip(item, 'a pseudo-user of the old notebook, not an '
                                     'account')
                continue
            if info is not None and info.get('account_type') == 'guest':
                self.report.skip(item, 'guest accounts are not migrated')
                continue
            if problem:
                count = len(owners.get(login, ()))
                self.report.skip(item, problem + (
                    ' Its %d worksheet%s are not migrated.' % (count, '' if count == 1
                                                               else 's') if count else ''))
                continue
            existing = self.root.user_by_login(login)
            if existing is not None:
                self.users[login] = existing
                self.report.skip(item, 'exists; its worksheets are added to the existing '
                                 'account' if owners.get(login) else 'exists')
                continue
            self.users[login] = self.create_user(login, info)

    def create_user(self, login, info):
        report = self.report
        item = 'user %s' % login
        if info is None:
            user = self.root.add_user(login, None)
            report.note(item, 'owns worksheets but is not in users.pickle: created '
                        'without a password (an admin must set one)')
            report.users += 1
            return user
        password = as_text(info.get('password'))
        external = info.get('external_auth')
        if external or (password is not None and password.strip() in CLOSED_PASSWORDS):
            # An external account (LDAP, OpenID) never signed in with a local password.
            password = None
        # sagenb treated the user named admin as an admin whatever its account type.
        is_admin = info.get('account_type') == 'admin' or login == 'admin'
        email = (as_text(info.get('email')) or '').strip()
        if email and check_email(email):
            report.note(item, 'its e-mail address %s is not an address: left out'
                        % _shown(email))
            email = ''
        user = self.root.add_user(login, password, is_admin=is_admin, email=email)
        report.users += 1
        if external:
            report.note(item, 'signed in through %s in the old notebook, which is not '
                        'supported here: no password until an admin sets one'
                        % (as_text(external) or 'an external service'))
        elif password is None:
            report.note(item, 'had no password: an admin must set one')
        if info.get('is_suspended'):
            user.suspended = True
            report.note(item, 'suspended (kept suspended)')
        return user

    def read_readonly(self):
        path = os.path.join(self.folder, 'readonly.txt')
        if not os.path.lexists(path):
            return
        try:
            text = safepickle.decode(read(path, MAX_SMALL_FILE, 'readonly.txt'))
        except FormatError as exc:
            self.report.skip('readonly.txt', str(exc))
            return
        names = [line.strip() for line in text.splitlines() if line.strip()]
        if names:
            self.report.skip('readonly.txt', 'read-only accounts are not supported here; '
                             'these can edit and evaluate after the migration: %s'
                             % ', '.join(names))

    def read_openid(self):
        path = os.path.join(self.folder, 'openid.pickle')
        if not os.path.lexists(path):
            return
        try:
            value = read_pickle(path, 'openid.pickle')
            count = ' (%d identities)' % len(value) if isinstance(value, dict) else ''
        except FormatError as exc:
            count = ' (%s)' % exc
        self.report.skip('openid.pickle', 'OpenID is not supported: its sign-ins are not '
                         'migrated%s' % count)

    def read_settings(self):
        path = os.path.join(self.folder, 'conf.pickle')
        if not os.path.lexists(path):
            return
        try:
            conf = read_pickle(path, 'conf.pickle')
            if not isinstance(conf, dict):
                raise FormatError('conf.pickle does not hold a dictionary')
        except FormatError as exc:
            self.report.skip('conf.pickle', reason(exc, 'conf.pickle'))
            return
        recognised = {}
        for key in sorted(conf, key=str):
            for line in map_setting(str(key), conf[key], recognised):
                self.report.settings.append(line)
        # A new dict: the root is persistent, its attributes plain values.
        self.root.legacy_settings = dict(recognised)


# --- settings -------------------------------------------------------------------------

ULIMIT_FLAGS = {
    # flag: (setting, unit in bytes or 1)
    'v': ('sagenb.workers.limit.address_space', 1024),
    't': ('sagenb.workers.limit.cpu_seconds', 1),
    'u': ('sagenb.workers.limit.processes', 1),
    'n': ('sagenb.workers.limit.open_files', 1),
    'f': ('sagenb.workers.limit.file_size', 1024),
}
NO_COUNTERPART_WHY = {
    'openid': 'OpenID is not supported',
    'auth_ldap': 'LDAP sign-in is not supported',
    'server_pool': 'worksheet processes run on this server (ZEO spreads servers)',
    'system': 'new worksheets use Sage; a worksheet keeps its own system',
}


def map_setting(key, value, recognised):
    """Report lines for one legacy setting; fills ``recognised`` with its counterparts.

    Values are shown only for settings that have a counterpart: the others include
    secrets (``ldap_bindpw``, ``recaptcha_private_key``).
    """
    def would_set(name, setting_value):
        recognised[name] = setting_value
        return 'setting %s = %r: would set %s = %s' % (key, value, name, setting_value)

    if key == 'accounts':
        return [would_set('sagenb.allow_signup', 'true' if value else 'false')]
    if key == 'pretty_print':
        return [would_set('sagenb.typeset_default', 'true' if value else 'false')]
    if key == 'idle_timeout':
        seconds = value if isinstance(value, (int, float)) and \
            not isinstance(value, bool) else None
        if seconds is None or seconds <= 0:
            return ['setting idle_timeout = %r: no counterpart (here worksheet processes '
                    'always stop after sagenb.workers.idle_timeout seconds)' % (value,)]
        return [would_set('sagenb.workers.idle_timeout', str(int(seconds)))]
    if key == 'ulimit':
        return _map_ulimit(value, recognised)
    if key == 'model_version':
        return []
    why = NO_COUNTERPART_WHY.get(key)
    if why is None and key.startswith('ldap_'):
        why = NO_COUNTERPART_WHY['auth_ldap']
    return ['setting %s: no counterpart%s' % (key, ' (%s)' % why if why else '')]


def _map_ulimit(value, recognised):
    if not isinstance(value, str) or not value.strip():
        return [] if value in ('', None) else ['setting ulimit: not understood']
    lines = []
    words = value.split()
    i = 0
    while i < len(words):
        word = words[i]
        match = re.fullmatch(r'-([A-Za-z])(\S*)', word)
        if not match:
            lines.append('setting ulimit %s: not understood' % word)
            i += 1
            continue
        flag, amount = match.group(1), match.group(2)
        if not amount and i + 1 < len(words) and not words[i + 1].startswith('-'):
            amount = words[i + 1]
            i += 1
        i += 1
        if flag not in ULIMIT_FLAGS:
            lines.append('setting ulimit -%s %s: no counterpart' % (flag, amount))
            continue
        name, unit = ULIMIT_FLAGS[flag]
        if amount == 'unlimited':
            setting_value = '0'
        elif amount.isdigit():
            setting_value = str(int(amount) * unit)
        else:
            lines.append('setting ulimit -%s %s: not understood' % (flag, amount))
            continue
        recognised[name] = setting_value
        lines.append('setting ulimit -%s %s: would set %s = %s'
                     % (flag, amount, name, setting_value))
    return lines
