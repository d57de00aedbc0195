"""Who is asking, and what they may do.

A Pyramid 2 ``SecurityPolicy``: the identity comes from the session (browser) or from an
``Authorization: Bearer`` API token, and is cached per request; permissions are checked
by ``ACLHelper`` against the ``__acl__`` that each resource computes from its state.
"""
import enum
import hashlib
import time

from pyramid.authorization import ACLHelper, Authenticated, Everyone


class P(str, enum.Enum):
    """Every permission of the application, named in one place."""

    VIEW = 'view'            # read a worksheet, list a home
    EDIT = 'edit'            # change cells, names, order
    EVALUATE = 'evaluate'    # run cells, interrupt, restart
    DELETE = 'delete'        # delete (or trash) a worksheet
    SHARE = 'share'          # change collaborators and viewers
    CREATE = 'create'        # create worksheets in a home
    ADMIN = 'admin'          # manage users, groups and settings
    ACCOUNT = 'account'      # see and change one's own account

    def __str__(self):
        return self.value


def user_principal(user_id):
    return 'userid:' + user_id


def group_principal(group_id):
    return 'group:' + group_id


def admin_principal():
    return 'role:admin'


def token_digest(token):
    # API tokens are 256-bit random strings: a fast hash is enough to store them safely.
    return hashlib.sha256(token.encode('utf-8')).hexdigest()


SESSION_USER_KEY = 'user_id'
# Seconds between two updates of an API token's ``last_used``.
TOKEN_USE_RESOLUTION = 60
SESSION_EPOCH_KEY = 'user_epoch'


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
        # Not ``request.root``: the identity may be asked for before traversal.
        from .resources import root_factory
        root = root_factory(request)
        auth = request.headers.get('Authorization', '')
        if auth.lower().startswith('bearer '):
            # A scripted request: the session cookie plays no part, so no CSRF check.
            request.environ['sagenb.via_token'] = True
            record = root.tokens.get(token_digest(auth[7:].strip()))
            if record is None:
                return None
            user = root.users_by_id.get(record.user_id)
            if user is None or getattr(user, 'suspended', False):
                return None
            now = time.time()
            # Coarse, so that a busy script does not write the token at every request.
            if record.last_used is None or now - record.last_used > TOKEN_USE_RESOLUTION:
                record.last_used = now
            return user
        user_id = request.session.get(SESSION_USER_KEY)
        if user_id is None:
            return None
        user = root.users_by_id.get(user_id)
        if user is None or request.session.get(SESSION_EPOCH_KEY) != user.session_epoch:
            return None
        # A suspended user's sessions end at once (and on every app server: the user
        # is read from the database at each request).
        if getattr(user, 'suspended', False):
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
        request.session.invalidate()
        request.session[SESSION_USER_KEY] = userid
        request.session[SESSION_EPOCH_KEY] = user.session_epoch
        request.session['login_time'] = time.time()
        request.environ['sagenb.identity'] = user
        return []

    def forget(self, request, **kw):
        request.session.invalidate()
        request.environ['sagenb.identity'] = None
        return []


_MISSING = object()


def via_token(request):
    """True when the request authenticated with an API token (no CSRF check then)."""
    request.identity  # noqa: B018 - resolves the identity, which records how
    return request.environ.get('sagenb.via_token', False)


def includeme(config):
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
