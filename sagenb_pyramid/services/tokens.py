"""A user's API tokens as the ``/tokens`` page and the API handle them: listing, making
(at most ``MAX_TOKENS``) and revoking, each change in the audit log.  The tokens
themselves (hashes, scopes, expiry) are ``auth/tokens.py``."""
import time

from .. import audit
from ..auth.tokens import (
    create_token, find_user_token, revoke_token, token_expired, token_expires, token_scope,
    user_tokens)
from ..security import token_digest
from ..web import api_error, fmt_time

MAX_TOKENS = 50


def token_list(root, user):
    """``user``'s tokens, oldest first, as the page and the API show them."""
    found = sorted(user_tokens(root, user), key=lambda item: item[1].created)
    now = time.time()
    return [{'prefix': prefix, 'label': record.label, 'created': record.created,
             'last_used': record.last_used, 'scope': token_scope(record),
             'expires': token_expires(record), 'expired': token_expired(record, now)}
            for prefix, record in found]


def new_token(request, root, user, label, scope, expires):
    """A new token of ``user``; returns ``(token, prefix)`` (the token is shown once).
    409 when they have ``MAX_TOKENS`` already."""
    if len(user_tokens(root, user)) >= MAX_TOKENS:
        raise api_error(409, 'you have %d tokens already; revoke some first' % MAX_TOKENS)
    token = create_token(root, user, label, scope=scope, expires=expires)
    prefix = token_digest(token)[:12]
    audit.record(request, 'token_created', user.login, '%s %s%s' % (
        prefix, scope, ' until ' + fmt_time(expires) if expires else ''))
    return token, prefix


def revoke(request, root, user, prefix, only=None):
    """Revoke ``user``'s token ``prefix`` (404 if none); with ``only`` (the digest of
    the token the request came with), no other token than that one (403)."""
    digest = find_user_token(root, user, prefix)
    if digest is None:
        raise api_error(404, 'you have no token %s' % prefix)
    if only is not None and digest != only:
        raise api_error(403, 'an API token can revoke only itself; revoke other tokens on '
                             'the /tokens page, logged in')
    revoke_token(root, user, prefix)
    audit.record(request, 'token_revoked', user.login, prefix)
