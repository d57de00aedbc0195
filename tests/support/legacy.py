"""A sagenb notebook folder for the migration tests (tests/unit/migrate/test_migrate.py) and
those of what migrated worksheets become (search): the shared fixtures' folder, copied
and completed as a whole legacy server would have left it."""
import hashlib
import os
import pickle
import shutil
import stat
from pathlib import Path

import pytest

from .fixtures_path import fixtures_dir
from .notebook import PASSWORD

ADMIN_NUMBERS = [4, 5, 6, 10]
ADMIN_SALT = '3f9c2e'
ALICE_SALT = '0a1b2c3d4e5f'
BOB_CRYPT = 'aaqPiZY5xR5l.'   # a DES crypt(3) hash as old notebooks stored it
PUBLISHED_AT = 1467286300.5


def sagenb_hash(salt, password):
    return 'sha256$%s$%s' % (salt, hashlib.sha256((salt + password).encode()).hexdigest())


def fixture_notebook():
    folder = Path(fixtures_dir()) / 'sagenb-directory' / 'sage_notebook.sagenb'
    if not folder.is_dir():
        pytest.fail('The fixtures folder %s is missing: set SAGENB_FIXTURES to the shared '
                    'fixtures folder (it holds sagenb-directory/).' % folder)
    return folder


def store_dir(folder, login):
    h = hashlib.md5(login.encode()).hexdigest()
    return Path(folder, 'home', '__store__', h[:1], h[:2], h[:3], h[:4], login)


def text(value):
    if isinstance(value, bytes):
        return value.decode('utf-8')
    if isinstance(value, dict):
        return {text(k): text(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(text(v) for v in value)
    return value


def read_conf(path):
    # The fixtures, or files this test wrote: trusted, so the standard unpickler.
    with open(path, 'rb') as f:
        return text(pickle.load(f, encoding='bytes'))


def write_pickle(path, value):
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(pickle.dumps(value, protocol=2))


def user_record(name, password, account_type='user', email=None, suspended=False,
                viewable=(), external=None):
    # No empty bytes: Python 3 writes b'' as a call of __builtin__.bytes (Python 2 did
    # not), which the safe unpickler refuses like any other global.
    return [name, {b'username': name, b'password': password, b'email': email or '',
                   b'email_confirmed': bool(email), b'account_type': account_type,
                   b'external_auth': external, b'conf': {b'autosave_interval': 3600},
                   b'is_suspended': suspended, b'temporary_password': '',
                   b'viewable_worksheets': list(viewable)}]


USERS = [
    user_record(b'admin', sagenb_hash(ADMIN_SALT, PASSWORD).encode(), b'admin',
                b'admin@example.org'),
    user_record(b'alice', sagenb_hash(ALICE_SALT, PASSWORD).encode(), b'user',
                b'alice@example.org', viewable=[(b'admin', 4)]),
    user_record(b'bob', BOB_CRYPT.encode(), b'user', suspended=True),
    user_record(b'guest', b'x', b'guest'),
    user_record(b'carol', sagenb_hash('77', 'ldap-era'), b'user', external=b'ldap'),
    user_record(b'pub', b'x', b'user'),
    user_record(b'_sage_', b'x', b'user'),
    user_record(b'x!', sagenb_hash('00', 'whatever'), b'user'),
]
CONF = {b'accounts': True, b'pretty_print': True, b'idle_timeout': 300,
        b'ulimit': b'-v 2000000 -t 3600', b'word_wrap_cols': 80,
        b'ldap_bindpw': b'topsecret', b'model_version': 2}


def legacy_notebook(tmp_path, users=USERS, conf=CONF):
    """A writable copy of the fixture folder, completed as a whole server would be."""
    folder = tmp_path / 'sage_notebook.sagenb'
    shutil.copytree(fixture_notebook(), folder)
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            os.chmod(path, os.stat(path).st_mode | stat.S_IWUSR | stat.S_IRUSR)
    os.chmod(folder, 0o755)
    if users is not None:
        write_pickle(folder / 'users.pickle', users)
    if conf is not None:
        write_pickle(folder / 'conf.pickle', conf)
    (folder / 'readonly.txt').write_text('bob\n')
    write_pickle(folder / 'openid.pickle', {b'https://id.example.org/alice': b'alice'})
    admin_dir = store_dir(folder, 'admin')
    # Sharing on admin/6: a collaborator, an unknown one, a viewer; their own states.
    conf6 = read_conf(admin_dir / '6' / 'worksheet_conf.pickle')
    conf6.update({'collaborators': [b'alice', b'ghost'], 'viewers': [b'bob'],
                  'tags': {b'admin': [1], b'alice': [2], b'bob': [0]}})
    write_pickle(admin_dir / '6' / 'worksheet_conf.pickle', conf6)
    # Data files on admin/4 (one in a sub-folder: data files are flat here).
    (admin_dir / '4' / 'data' / 'sub').mkdir(parents=True)
    (admin_dir / '4' / 'data' / 'notes.txt').write_bytes(b'hello')
    (admin_dir / '4' / 'data' / 'sub' / 'table.csv').write_bytes(b'a,b\n1,2\n')
    # Published copies: of admin/4, and of a worksheet that is not there.
    pub = store_dir(folder, 'pub')
    for number, original in ((0, (b'admin', 4)), (1, (b'nobody', 3))):
        write_pickle(pub / str(number) / 'worksheet_conf.pickle', {
            b'name': 'Published', b'owner': b'pub', b'id_number': number,
            b'worksheet_that_was_published': original,
            b'last_change': (b'admin', PUBLISHED_AT)})
        (pub / str(number) / 'worksheet.html').write_text('{{{id=0|\n1\n///\n}}}\n')
    # The layout of notebooks before __store__: home/<user>/<id>/, here with a .txt.
    (folder / 'home' / 'alice' / '0').mkdir(parents=True)
    (folder / 'home' / 'alice' / '0' / 'worksheet.txt').write_text(
        "Alice's notes\nsystem:gap\n<p>Groups</p>\n{{{id=0|\nSymmetricGroup(3)\n///\n"
        "Sym( [ 1 .. 3 ] )\n}}}\n{{{id=1|\n1+1\n///\n2\n}}}\n")
    # sagenb linked home/<user> to its folder in __store__: not a second copy.
    os.symlink(os.path.relpath(admin_dir, folder / 'home'), folder / 'home' / 'admin')
    return folder


# A small database written by this project's code before schema evolution
# (tests/support/olddb/make.py): what the evolve steps must bring up to date.
OLD_DATABASE = Path(__file__).resolve().parent / 'olddb'
