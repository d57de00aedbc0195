"""Local password hashing (argon2id) and the login rules for local accounts."""
import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()

LOGIN_RE = re.compile(r'^[A-Za-z][A-Za-z0-9_.@]{2,63}$')
MIN_PASSWORD_LENGTH = 8


def hash_password(password):
    return _hasher.hash(password)


def verify_password(user, password):
    """True if ``password`` is the user's; upgrades the stored hash when parameters change."""
    if not user.password_hash or not password:
        return False
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return True


# Verifying against this keeps a login for an unknown user as slow as for a known one.
_DUMMY_HASH = _hasher.hash('not a password of anyone')


def burn_time(password):
    try:
        _hasher.verify(_DUMMY_HASH, password or 'x')
    except VerificationError:
        pass


def check_login_name(login):
    if not LOGIN_RE.match(login or ''):
        return ('A username has 3 to 64 characters, letters, digits, "_", "." or "@", '
                'and starts with a letter.')
    return None


def check_password(password, login=None):
    if len(password or '') < MIN_PASSWORD_LENGTH:
        return 'A password has at least %d characters.' % MIN_PASSWORD_LENGTH
    if login and password.lower() == login.lower():
        return 'The password must not be the username.'
    return None
