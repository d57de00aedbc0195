"""API tokens: shown once at creation, stored only as a hash, revocable."""
import secrets

from ..resources import ApiToken
from ..security import token_digest


def create_token(root, user, label=''):
    token = 'snb_' + secrets.token_urlsafe(32)
    root.tokens[token_digest(token)] = ApiToken(user.id, label)
    return token


def user_tokens(root, user):
    """(digest prefix, record) of the user's tokens; the prefix names a token to revoke."""
    return [(digest[:12], record) for digest, record in root.tokens.items()
            if record.user_id == user.id]


def revoke_token(root, user, prefix):
    matches = [d for d, r in root.tokens.items()
               if r.user_id == user.id and d.startswith(prefix)]
    if len(matches) != 1:
        return False
    del root.tokens[matches[0]]
    return True
