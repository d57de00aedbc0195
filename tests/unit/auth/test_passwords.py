"""Password verification, including the hashes of the legacy Sage notebook (sagenb)."""
import hashlib
from types import SimpleNamespace

import legacycrypt
import pytest

from sagenb_pyramid.auth.passwords import hash_password, verify_password

PASSWORD = 'correct horse battery'


def _user(password_hash):
    return SimpleNamespace(password_hash=password_hash)


def _sha256_hash(password, salt='Xk3pQz9w'):
    # As sagenb wrote them: sha256$<salt>$<hex of sha256(salt + password)>
    digest = hashlib.sha256((salt + password).encode('utf-8')).hexdigest()
    return f'sha256${salt}${digest}'


def _check_upgrade(user, password, old_hash):
    assert verify_password(user, password)
    assert user.password_hash != old_hash
    assert user.password_hash.startswith('$argon2')
    # The new hash is used from now on.
    upgraded = user.password_hash
    assert verify_password(user, password)
    assert user.password_hash == upgraded
    assert not verify_password(user, password + 'x')


def test_argon2_unchanged():
    user = _user(hash_password(PASSWORD))
    stored = user.password_hash
    assert verify_password(user, PASSWORD)
    assert user.password_hash == stored
    assert not verify_password(user, 'wrong password')
    assert not verify_password(user, '')


@pytest.mark.parametrize('password', [PASSWORD, 'pässwörd ☃', 'x'])
def test_legacy_sha256(password):
    stored = _sha256_hash(password)
    user = _user(stored)
    assert not verify_password(user, password + ' ')
    assert not verify_password(user, 'wrong')
    assert user.password_hash == stored  # a failed login changes nothing
    _check_upgrade(user, password, stored)


def test_legacy_sha256_salt_is_taken_as_written():
    # A salt with a '$' in it: the digest is what follows the last '$'.
    stored = _sha256_hash(PASSWORD, salt='a$b')
    assert verify_password(_user(stored), PASSWORD)
    # Upper-case hex is the same digest.
    salt, digest = stored[len('sha256$'):].rsplit('$', 1)
    assert verify_password(_user(f'sha256${salt}${digest.upper()}'), PASSWORD)
    # The salt goes before the password, not after it.
    swapped = hashlib.sha256((PASSWORD + 'Xk3pQz9w').encode()).hexdigest()
    assert not verify_password(_user('sha256$Xk3pQz9w$' + swapped), PASSWORD)


def test_des_crypt_known_value():
    # Checked with Python 3.11's own (deprecated) crypt module as well as legacycrypt:
    # crypt.crypt('password', 'aa') == 'aajfMKNH1hTm2'.  ('aamrgyQfDFSHw', sometimes
    # quoted for it, is not what crypt(3) gives.)
    assert legacycrypt.crypt('password', 'aa') == 'aajfMKNH1hTm2'
    user = _user('aajfMKNH1hTm2')
    assert not verify_password(user, 'Password')
    assert user.password_hash == 'aajfMKNH1hTm2'
    _check_upgrade(user, 'password', 'aajfMKNH1hTm2')


@pytest.mark.parametrize('salt', ['aa', 'Zq', './'])
def test_des_crypt(salt):
    stored = legacycrypt.crypt(PASSWORD, salt)
    assert len(stored) == 13 and stored.startswith(salt)
    user = _user(stored)
    assert not verify_password(user, 'wrong password')
    assert not verify_password(user, PASSWORD[:7])
    assert not verify_password(user, PASSWORD[:8] + '\0')
    assert user.password_hash == stored
    _check_upgrade(user, PASSWORD, stored)


@pytest.mark.parametrize('stored', [
    'garbage',
    'sha256$',
    'sha256$nosalt',
    'sha256$salt$',
    'sha256$salt$not-hex-é',
    'sha256$salt$' + 'ab' * 32 + '\n',
    '$argon2id$',
    '$argon2id$v=19$m=65536,t=3,p=4$é$x',
    'é' * 13,
    '*' * 13,
    'aajfMKNH1hTm',     # 12 characters
    'aajfMKNH1hTm2x',   # 14 characters
    'aajfMKNH1hTm2\n',
    '$1$saltsalt$qjXMvbEw8oaL.CzflDugX/',
    None,
    '',
    b'bytes',
    12345,
])
def test_unknown_or_broken_hashes_are_false(stored):
    user = _user(stored)
    assert verify_password(user, 'password') is False
    assert verify_password(user, PASSWORD) is False
    assert user.password_hash == stored


def test_empty_or_odd_passwords_are_false():
    for stored in (_sha256_hash(PASSWORD), 'aajfMKNH1hTm2', hash_password(PASSWORD)):
        user = _user(stored)
        assert verify_password(user, '') is False
        assert verify_password(user, None) is False
        assert verify_password(user, '\ud800') is False  # a lone surrogate
        assert user.password_hash == stored
