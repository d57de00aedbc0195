"""Local password hashing (argon2id) and the login rules for local accounts.

Accounts migrated from the legacy Sage notebook may still hold its hashes:
``sha256$<salt>$<hex of sha256(salt + password)>`` or, older, a traditional DES
``crypt(password, 'aa')`` (13 characters, the salt is the first two).  They verify here
and are replaced by an argon2 hash on the first successful login.
"""
import hashlib
import hmac
import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from .. import cpus

# argon2id with OWASP's recommended parameters (19 MiB, 2 passes, 1 lane).
# argon2-cffi's default (64 MiB, 3 passes, 4 lanes) took 0.34 s of CPU per login here,
# 46 ms these: a class of 200 logging in within 20 s needed over three CPUs for it
# alone, and 64 MiB per login in flight.  A stored hash of other parameters still
# verifies, and is replaced at its next login.
_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)

LOGIN_RE = re.compile(r'^[A-Za-z][A-Za-z0-9_.@]{2,63}$')
MIN_PASSWORD_LENGTH = 8


def hash_password(password):
    with cpus.off_server_cpus():
        return _hasher.hash(password)


def verify_password(user, password):
    """True if ``password`` is the user's; upgrades the stored hash when parameters change.

    A legacy sagenb hash (``sha256$...`` or DES crypt) that matches is replaced by an
    argon2 hash.  A hash of a format not known here gives False.
    """
    if not user.password_hash or not password:
        return False
    if not isinstance(user.password_hash, (str, bytes)) or not _encodable(password):
        return False
    if isinstance(user.password_hash, str):
        legacy = _verify_legacy(user.password_hash, password)
        if legacy is not None:
            if legacy:
                user.password_hash = hash_password(password)
            return legacy
        if not user.password_hash.isascii():  # argon2 would raise UnicodeEncodeError
            return False
    try:
        with cpus.off_server_cpus():
            _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return True


def _encodable(password):
    """False for a str that UTF-8 cannot encode (a lone surrogate): argon2 would raise."""
    if not isinstance(password, str):
        return True
    try:
        password.encode('utf-8')
    except UnicodeEncodeError:
        return False
    return True


_SHA256_PREFIX = 'sha256$'
_DES_CRYPT_RE = re.compile(r'[./0-9A-Za-z]{13}')


def _is_legacy(stored):
    return stored.startswith(_SHA256_PREFIX) or bool(_DES_CRYPT_RE.fullmatch(stored))


def _verify_legacy(stored, password):
    """True/False for a legacy sagenb hash; None when ``stored`` is not one."""
    if not isinstance(password, str):
        return False if _is_legacy(stored) else None
    if stored.startswith(_SHA256_PREFIX):
        # The salt is whatever sagenb wrote between the two '$'; the hex digest never
        # holds a '$', so split at the last one.
        salt, sep, digest = stored[len(_SHA256_PREFIX):].rpartition('$')
        if not sep:
            return False
        computed = hashlib.sha256((salt + password).encode('utf-8')).hexdigest()
        return hmac.compare_digest(computed.encode('ascii'),
                                   digest.strip().lower().encode('utf-8', 'replace'))
    if _DES_CRYPT_RE.fullmatch(stored):
        if '\0' in password:  # crypt(3) would stop at the NUL and ignore the rest
            return False
        computed = _des_crypt(password, stored[:2])
        if not computed:
            return False
        return hmac.compare_digest(computed.encode('utf-8'), stored.encode('ascii'))
    return None


def _des_crypt(password, salt):
    """Traditional DES crypt(3) via ``legacycrypt`` (the ``crypt`` module left Python
    in 3.13); None when it cannot be computed (no libcrypt on this machine)."""
    try:
        import legacycrypt  # imported here: it loads libcrypt with ctypes
        return legacycrypt.crypt(password, salt)
    except Exception:  # noqa: BLE001 - any failure here means "does not verify"
        return None


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


def new_password_problems(password, again, login=None,
                          differ='The two passwords differ.'):
    """What is wrong with a password chosen in a form, where it is typed twice."""
    problems = [p for p in [check_password(password, login)] if p]
    if password != again:
        problems.append(differ)
    return problems


def check_password(password, login=None):
    if len(password or '') < MIN_PASSWORD_LENGTH:
        return f'A password has at least {MIN_PASSWORD_LENGTH} characters.'
    if login and password.lower() == login.lower():
        return 'The password must not be the username.'
    return None
