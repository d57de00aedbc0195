"""Identities from OAuth / OpenID Connect providers (``auth/oauth.py``) and the notebook
users they are: which user an identity logs in as (linked before, or new and named by
the provider's username claim), linking one to a logged-in account, and what the
provider says of the user (groups, admin right, e-mail, name) on each login.

An identity is never linked to an existing account by name: that would hand a local
account to whoever registers the same name at the provider.  When the provider's name is
taken or not a valid username, the identity waits in the signed session
(``keep_pending``) while the person chooses one.

Refusals are ``api_error``s, except ``Suspended``: its audit entry must be committed, so
the view answers it rather than raising.  Functions writing the audit log or the
session take the request for that alone.
"""
import time

from .. import audit
from ..auth.passwords import LOGIN_RE, check_login_name
from ..web import api_error

PENDING_IDENTITY_KEY = 'oauth.pending_identity'
# How long a new identity may wait for its username to be chosen.
PENDING_IDENTITY_TIMEOUT = 900
GROUP_SOURCE = 'oidc'


class Suspended(Exception):
    """The identity's user is suspended: nothing but the audit entry was written."""


def identity_from(provider, profile):
    """What is kept about an identity while it waits for a username, and on the user."""
    account = profile['accounts'][0]
    emails = profile.get('emails') or []
    return {
        'provider': provider.name,
        'subject': str(account['userid']),
        'username': profile.get('preferredUsername') or '',
        'email': profile.get('verifiedEmail') or (emails[0]['value'] if emails else ''),
        'fullname': profile.get('displayName') or '',
        'groups': list(profile.get('groups') or []),
    }


def identity_key(identity):
    return '%s:%s' % (identity['provider'], identity['subject'])


def suggested_login(name):
    """A valid username close to ``name`` (the provider's username), or ''."""
    cleaned = ''.join(c if c.isascii() and (c.isalnum() or c in '_.@') else '_'
                      for c in (name or ''))
    cleaned = cleaned.lstrip('_.@0123456789')[:64]
    return cleaned if LOGIN_RE.match(cleaned) else ''


def refuse_groups(provider, identity):
    """403 when the provider admits only some groups and the identity is in none."""
    if provider.allowed_groups and not provider.allowed_groups & set(identity['groups']):
        raise api_error(403, 'Your account at %s is not in a group that may use this '
                             'notebook.' % provider.label)


def apply_identity(root, user, provider, identity):
    """Groups, admin right, missing e-mail and name from the provider; the link."""
    groups = identity['groups']
    if provider.groups_claim:
        root.sync_groups(user, groups, GROUP_SOURCE)
    key = identity_key(identity)
    info = dict((user.identities or {}).get(key) or {})
    if provider.admin_groups:
        if provider.admin_groups & set(groups):
            if not user.is_admin:
                user.is_admin = True
                info['granted_admin'] = True
        elif info.get('granted_admin'):
            # Granted by this provider's groups earlier, and no longer a member.
            user.is_admin = False
            info['granted_admin'] = False
    if not user.email and identity['email']:
        user.email = identity['email']
    if not user.fullname and identity['fullname']:
        user.fullname = identity['fullname']
    info.update(provider=provider.name, label=provider.label, subject=identity['subject'],
                username=identity['username'], last_login=time.time())
    info.setdefault('linked', time.time())
    root.link_identity(user, key, info)


def link(request, root, user, provider, identity):
    """Link ``identity`` to ``user`` (logged in, who asked for it): 409 when it is
    linked to another account, 403 for a suspended account."""
    key = identity_key(identity)
    owner = root.user_by_identity(key)
    if owner is not None and owner is not user:
        raise api_error(409, 'This %s identity is already linked to another account.'
                        % provider.label)
    if user.suspended:
        raise api_error(403, 'This account is suspended.')
    apply_identity(root, user, provider, identity)
    audit.record(request, 'oauth_link', user.login,
                 '%s (%s)' % (key, identity['username']), root=root)


def user_of(request, root, provider, identity):
    """The user ``identity`` logs in as: the one it is linked to, or a new one named by
    the provider's username; None when that name is taken or not a valid username (the
    person chooses one).  403 when the provider's groups do not admit it."""
    refuse_groups(provider, identity)
    user = root.user_by_identity(identity_key(identity))
    if user is not None:
        return user
    login_name = identity['username'].strip()
    if check_login_name(login_name) is None and root.user_by_login(login_name) is None:
        return _new_user(request, root, provider, identity, login_name)
    return None


def username_problems(root, login_name):
    """What is wrong with ``login_name`` as the username of a new identity (messages)."""
    errors = [e for e in [check_login_name(login_name)] if e]
    if not errors and root.user_by_login(login_name) is not None:
        errors.append('That username is taken; choose another.')
    return errors


def user_named(request, root, provider, identity, login_name):
    """The user of a waiting ``identity`` whose person chose ``login_name`` (checked by
    ``username_problems``): a new one, or the one it was linked to meanwhile (the same
    identity logged in in another tab).  403 as ``user_of``."""
    refuse_groups(provider, identity)
    user = root.user_by_identity(identity_key(identity))
    if user is None:
        user = _new_user(request, root, provider, identity, login_name)
    return user


def _new_user(request, root, provider, identity, login_name):
    user = root.add_user(login_name, None, email=identity['email'],
                         fullname=identity['fullname'])
    audit.record(request, 'user_created', login_name, 'oauth:%s' % provider.name,
                 actor=login_name, root=root)
    return user


def log_in(request, root, user, provider, identity):
    """``user`` logs in with ``identity``: what the provider says is applied and the
    login recorded.  ``Suspended`` (recorded too) for a suspended account."""
    if user.suspended:
        audit.record(request, 'login_failed', user.login, 'oauth:%s: suspended'
                     % provider.name, actor='', root=root)
        raise Suspended('This account is suspended.')
    apply_identity(root, user, provider, identity)
    audit.record(request, 'login', user.login, 'oauth:%s' % provider.name,
                 actor=user.login, root=root)


def keep_pending(session, identity, came_from=''):
    """``identity`` waits in ``session`` while its person chooses a username."""
    session[PENDING_IDENTITY_KEY] = dict(identity, came_from=came_from or '',
                                         time=time.time())


def pending(session):
    """The identity waiting in ``session`` for a username, or None (none, or it waited
    longer than ``PENDING_IDENTITY_TIMEOUT``: then it is dropped)."""
    waiting = session.get(PENDING_IDENTITY_KEY)
    if not isinstance(waiting, dict) or \
            time.time() - waiting.get('time', 0) > PENDING_IDENTITY_TIMEOUT:
        session.pop(PENDING_IDENTITY_KEY, None)
        return None
    return waiting


def drop_pending(session):
    session.pop(PENDING_IDENTITY_KEY, None)
