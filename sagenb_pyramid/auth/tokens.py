"""API tokens: shown once at creation, stored only as a hash, revocable; each has a scope
(``full``, or ``read``: GET and HEAD only, see ``security.refuse_read_only_writes``) and
may have an expiry (seconds since the epoch), after which it no longer authenticates."""
import hashlib
import secrets
import time

from ..resources import ApiToken


def token_digest(token):
    # API tokens are 256-bit random strings: a fast hash is enough to store them safely.
    return hashlib.sha256(token.encode('utf-8')).hexdigest()


SCOPES = ('full', 'read')


def create_token(root, user, label='', scope='full', expires=None):
    if scope not in SCOPES:
        raise ValueError('scope must be one of %s' % ', '.join(SCOPES))
    token = 'snb_' + secrets.token_urlsafe(32)
    record = ApiToken(user.id, label, scope=scope,
                      expires=float(expires) if expires is not None else None)
    root.tokens[token_digest(token)] = record
    return token


def token_scope(record):
    return record.scope


def token_expires(record):
    return record.expires


def token_expired(record, now=None):
    expires = token_expires(record)
    return expires is not None and (now if now is not None else time.time()) >= expires


def user_tokens(root, user):
    """(digest prefix, record) of the user's tokens; the prefix names a token to revoke."""
    return [(digest[:12], record) for digest, record in root.tokens.items()
            if record.user_id == user.id]


def find_user_token(root, user, prefix):
    """The digest of the user's one token whose digest starts with ``prefix``, or None."""
    matches = [d for d, r in root.tokens.items()
               if r.user_id == user.id and d.startswith(prefix)]
    return matches[0] if len(matches) == 1 else None


def revoke_token(root, user, prefix):
    digest = find_user_token(root, user, prefix)
    if digest is None:
        return False
    del root.tokens[digest]
    return True
