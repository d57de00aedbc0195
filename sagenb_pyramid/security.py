"""Who is asking, and what they may do.

A Pyramid 2 ``SecurityPolicy``: the identity comes from the session (browser) or from an
``Authorization: Bearer`` API token, and is cached per request; permissions are checked
by ``ACLHelper`` against the ``__acl__`` that each resource computes from its state.

A session is alive while its id is among its user's ``live_sessions`` (in ZODB) and its
epoch is the user's ``session_epoch``: logging out drops the id, so a copy of the cookie
dies with it; ``end_sessions`` ends all of them (log out everywhere, new password,
suspension).  A read-only API token may only GET (``refuse_read_only_writes``).
"""
import secrets
import time

from pyramid.authorization import ACLHelper, Authenticated, Everyone
from pyramid.events import ContextFound
from pyramid.httpexceptions import HTTPForbidden

# Permissions and principals live in acl.py (resources/ writes its ACLs with them);
# named here too, where views and tests have always imported them from.
from .acl import (  # noqa: F401
    P, admin_principal, admin_reads_only, group_principal, user_principal)
from . import resources
# token_digest: also imported from here by views and scripts.
from .auth.tokens import token_digest, token_expired, token_scope  # noqa: F401


# What a refusal says, by the permission that was missing (views may say more);
# keyed by the permission's name.
REFUSALS = {str(permission): text for permission, text in {
    P.EDIT: 'you may see this but not change it',
    P.EVALUATE: "you may see this worksheet but not run its cells",
    P.DELETE: 'only the owner of a worksheet may delete it',
    P.TRUST: 'only the owner of a worksheet can trust it',
    P.SHARE: 'only the owner of a worksheet may share it',
    P.CREATE: 'only the owner of a home may add worksheets to it',
    P.PUBLISH: 'only the owner of a worksheet may publish it or moderate its comments',
    P.RATE: 'log in to rate a published worksheet',
}.items()}


SESSION_USER_KEY = 'user_id'
# Seconds between two updates of an API token's ``last_used``.
TOKEN_USE_RESOLUTION = 60
SESSION_EPOCH_KEY = 'user_epoch'
# The session's own id, one of its user's ``live_sessions``.
SESSION_ID_KEY = 'sid'
# Live sessions kept per user; past this, logging in ends the oldest.
MAX_LIVE_SESSIONS = 100
# Methods a read-only API token may use.
READ_METHODS = ('GET', 'HEAD')


def live_sessions(user):
    """The user's live session ids -> login time (an ``OOBTree``)."""
    return user.live_sessions


def end_sessions(user):
    """End every session of ``user`` on every app server (their API tokens stay)."""
    user.session_epoch += 1
    tree = live_sessions(user)
    if len(tree):
        tree.clear()


class SecurityPolicy:
    def __init__(self):
        self.helper = ACLHelper()

    def identity(self, request):
        """The ``User`` making the request, or ``None``; computed once per request."""
        cached = request.environ.get('sagenb.identity', _MISSING)
        if cached is not _MISSING:
            return cached
        user = self._lookup(request)
        request.environ['sagenb.identity'] = user
        return user

    def _lookup(self, request):
        auth = request.headers.get('Authorization', '')
        user_id = request.session.get(SESSION_USER_KEY)
        if user_id is None and not auth.lower().startswith('bearer '):
            # Nobody to look up: the database is not read (so /health answers while it
            # is away; pyramid_tm asks for the identity of every request).
            return None
        # Not ``request.root``: the identity may be asked for before traversal.
        root = resources.root_factory(request)
        if auth.lower().startswith('bearer '):
            # A scripted request: the session cookie plays no part, so no CSRF check.
            request.environ['sagenb.via_token'] = True
            digest = token_digest(auth[7:].strip())
            record = root.tokens.get(digest)
            if record is None:
                return None
            now = time.time()
            if token_expired(record, now):
                request.environ['sagenb.token_problem'] = 'this API token has expired'
                return None
            user = root.users_by_id.get(record.user_id)
            if user is None or user.suspended:
                return None
            request.environ['sagenb.token_digest'] = digest
            request.environ['sagenb.token_scope'] = token_scope(record)
            # Coarse, so that a busy script does not write the token at every request.
            if record.last_used is None or now - record.last_used > TOKEN_USE_RESOLUTION:
                record.last_used = now
            return user
        user = root.users_by_id.get(user_id)
        if user is None or request.session.get(SESSION_EPOCH_KEY) != user.session_epoch:
            return None
        # Logged out (or ended elsewhere): the signed cookie alone is not enough.
        sid = request.session.get(SESSION_ID_KEY)
        tree = live_sessions(user)
        if sid is None or sid not in tree:
            return None
        # A suspended user's sessions end at once (and on every app server: the user
        # is read from the database at each request).
        if user.suspended:
            return None
        return user

    def authenticated_userid(self, request):
        user = self.identity(request)
        return user.id if user is not None else None

    def effective_principals(self, request):
        principals = [Everyone]
        user = self.identity(request)
        if user is not None:
            principals.append(Authenticated)
            principals.extend(user.principals())
        return principals

    def permits(self, request, context, permission):
        return self.helper.permits(context, self.effective_principals(request), permission)

    def remember(self, request, userid, **kw):
        user = request.root.users_by_id[userid]
        # A new session at login: whatever an attacker planted before is gone.
        self._drop_session(request)
        request.session.invalidate()
        now = time.time()
        sid = secrets.token_urlsafe(18)
        tree = live_sessions(user)
        max_age = request.registry.settings['sagenb.session_max_age']
        # Expired sessions go, and the oldest past the cap (pruned only here).
        known = sorted((when, old) for old, when in tree.items())
        keep = [old for when, old in known if now - when <= max_age]
        drop = [old for when, old in known if now - when > max_age]
        drop += keep[:max(0, len(keep) + 1 - MAX_LIVE_SESSIONS)]
        for old in drop:
            del tree[old]
        tree[sid] = now
        request.session[SESSION_USER_KEY] = userid
        request.session[SESSION_EPOCH_KEY] = user.session_epoch
        request.session[SESSION_ID_KEY] = sid
        request.session['login_time'] = now
        request.environ['sagenb.identity'] = user
        return []

    def forget(self, request, **kw):
        self._drop_session(request)
        request.session.invalidate()
        request.environ['sagenb.identity'] = None
        return []

    def _drop_session(self, request):
        """This session's id leaves its user's live sessions (a copy of the cookie dies)."""
        if request.environ.get('sagenb.via_token'):
            return
        user = self.identity(request)
        tree = live_sessions(user) if user is not None else None
        sid = request.session.get(SESSION_ID_KEY)
        if tree is not None and sid in tree:
            del tree[sid]


_MISSING = object()


def via_token(request):
    """True when the request authenticated with an API token (no CSRF check then)."""
    request.identity  # noqa: B018 - resolves the identity, which records how
    return request.environ.get('sagenb.via_token', False)


def refuse_read_only_writes(event):
    """A read-only API token may only GET and HEAD, whatever the view."""
    request = event.request
    if request.method not in READ_METHODS and via_token(request) \
            and request.environ.get('sagenb.token_scope') == 'read':
        exc = HTTPForbidden('read-only token')
        exc.user_message = ('this API token is read-only: it may only GET; use a token '
                            'with full access to change anything')
        raise exc


def view_reached(view, info):
    """A view deriver (inside the permission check): a request that got this far was
    allowed to, so a 404 it raises says nothing its visitor may not know.  A 404 of a
    request that reached no view (nothing there) is answered to anonymous visitors as
    a refusal would be (``views.notfound``), so they cannot tell what exists."""
    def wrapper(context, request):
        if getattr(request, 'exception', None) is None:
            request.environ['sagenb.view_reached'] = True
        return view(context, request)
    return wrapper


# What a request learns about its caller, kept in the environ (which pyramid_retry
# hands to the next attempt of a request: its database objects are not valid there).
REQUEST_KEYS = ('sagenb.identity', 'sagenb.via_token', 'sagenb.token_problem',
                'sagenb.token_digest', 'sagenb.token_scope', 'sagenb.view_reached')


def forget_before_retry(event):
    for key in REQUEST_KEYS:
        event.environ.pop(key, None)


def includeme(config):
    from pyramid_retry import IBeforeRetry
    config.add_view_deriver(view_reached)
    config.add_subscriber(forget_before_retry, IBeforeRetry)
    from pyramid.csrf import SessionCSRFStoragePolicy
    config.set_security_policy(SecurityPolicy())
    config.set_csrf_storage_policy(SessionCSRFStoragePolicy())
    # Every state-changing browser request carries the token (form field or header);
    # requests with a Bearer token are not browser requests and are exempt.
    config.set_default_csrf_options(
        require_csrf=True, token='csrf_token', header='X-CSRF-Token',
        callback=lambda request: not via_token(request))
    config.add_request_method(
        lambda request: request.identity, 'user', reify=True)
    config.add_subscriber(refuse_read_only_writes, ContextFound)
