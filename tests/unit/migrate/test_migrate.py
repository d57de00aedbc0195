"""Migrating a whole legacy notebook server (``sagenb-admin ... import-sagenb``).

The real (partial) notebook folder of the fixtures is copied and completed with small
``users.pickle``/``conf.pickle`` files of the shape sagenb wrote (Python 2 ``str`` as
bytes, protocol 2).  What the migration made is checked against a reading of the fixture
files done here, apart from the application's readers: a regular expression counts the
compute cells of each body, a directory listing the snapshots, an unpickler that refuses
the standard library's (the files are trusted) reads the worksheet settings.
"""
import bz2
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import webtest

from sagenb_pyramid.migrate import migrate
from sagenb_pyramid.scripts import admin
from sagenb_pyramid.security import user_principal

from ...support.notebook import PASSWORD, TESTING_INI, Notebook, login

from ...support.fixtures_path import fixtures_dir  # noqa: F401
from ...support.legacy import (  # noqa: F401
    ADMIN_NUMBERS, ADMIN_SALT, ALICE_SALT, BOB_CRYPT, CONF, PUBLISHED_AT, USERS,
    fixture_notebook, legacy_notebook, read_conf, sagenb_hash, store_dir, text, user_record,
    write_pickle)

BIN = os.path.dirname(sys.executable)
CELL_START_RE = re.compile(r'^\{\{\{id=\d+\|[ \t]*$', re.M)
def compute_cells_in(path):
    return len(CELL_START_RE.findall(Path(path).read_text('utf-8')))


def snapshots_in(folder):
    snaps = Path(folder, 'snapshots')
    return sorted(snaps.glob('*.bz2')) if snaps.is_dir() else []


def compute_cells(worksheet):
    return [c for c in worksheet.ordered_cells() if c.type == 'compute']


def messages(pairs, item):
    return [message for name, message in pairs if name == item]


def run(notebook, folder, dry_run=False):
    with notebook.transaction() as root:
        return migrate(root, str(folder), dry_run=dry_run)


# --- the whole migration --------------------------------------------------------------

def test_users_worksheets_and_settings(notebook, tmp_path):
    folder = legacy_notebook(tmp_path)
    report = run(notebook, folder)
    admin_dir = store_dir(folder, 'admin')

    assert report.users == 4
    assert report.worksheets == len(ADMIN_NUMBERS) + 1
    with notebook.transaction() as root:
        assert sorted(root.home.keys()) == ['admin', 'alice', 'bob', 'carol']
        # Signed in through LDAP in sagenb: no local password here.
        assert root.user_by_login('carol').password_hash is None
        owner, alice, bob = (root.user_by_login(n) for n in ('admin', 'alice', 'bob'))
        assert owner.is_admin and not alice.is_admin and not bob.is_admin
        assert owner.password_hash == sagenb_hash(ADMIN_SALT, PASSWORD)
        assert alice.password_hash == sagenb_hash(ALICE_SALT, PASSWORD)
        assert bob.password_hash == BOB_CRYPT
        assert owner.email == 'admin@example.org'
        assert getattr(bob, 'suspended', False) is True
        assert not getattr(alice, 'suspended', False)

        assert sorted(int(n) for n in owner.keys()) == ADMIN_NUMBERS
        total_revisions = 0
        for number in ADMIN_NUMBERS:
            legacy = admin_dir / str(number)
            conf = read_conf(legacy / 'worksheet_conf.pickle')
            worksheet = owner[str(number)]
            assert worksheet.name == conf['name']
            assert worksheet.source == 'sagenb:admin/%d' % number
            expected = compute_cells_in(legacy / 'worksheet.html')
            # An empty body still gives a worksheet with its one (empty) compute cell.
            assert len(compute_cells(worksheet)) == (expected or 1), number
            snapshots = snapshots_in(legacy)
            assert len(worksheet.revisions or ()) == len(snapshots), number
            for snapshot in snapshots:
                revision = worksheet.revisions['%.3f' % float(snapshot.stem)]
                assert revision.body == bz2.decompress(snapshot.read_bytes()).decode('utf-8')
            total_revisions += len(snapshots)
            tag = conf['tags']['admin'][0]
            assert worksheet.state_for(owner.id) == {0: 'archive', 1: 'active',
                                                     2: 'trash'}[tag]
        assert owner['10'].state_for(owner.id) == 'archive'
        assert total_revisions == 9 and report.revisions == total_revisions
        assert owner['6'].revisions['1488453006.000'].author_id == owner.id

        # The jmol files of admin/10 stay with the cell that made them.
        legacy_cell = admin_dir / '10' / 'cells' / '1'
        kept = {}
        for cell in compute_cells(owner['10']):
            if cell.output.files:
                kept.update({name: blob.open('r').read()
                             for name, blob in cell.output.files.items()})
        assert kept == {p.name: p.read_bytes() for p in legacy_cell.iterdir()}

        # Data files (flattened) and the published original.
        data = owner['4'].files
        assert data['notes.txt'].read() == b'hello'
        assert data['table.csv'].read() == b'a,b\n1,2\n'
        assert data['notes.txt'].size == 5
        publication = root.publications[owner['4'].publication_id]
        assert publication.time == PUBLISHED_AT and not publication.auto
        assert publication.shown() is not owner['4'] and publication.texts()[0] == \
            owner['4'].name
        assert len(root.publications) == 1
        assert all(owner[str(n)].publication_id is None for n in (5, 6, 10))

        # Sharing: names became principals; each one's own state.
        shared = owner['6']
        assert list(shared.collaborators) == [user_principal(alice.id)]
        assert list(shared.viewers) == [user_principal(bob.id)]
        assert shared.state_for(alice.id) == 'trash'
        assert shared.state_for(bob.id) == 'archive'
        assert shared.state_for(owner.id) == 'active'

        # The older home/<user>/<id>/ layout, with worksheet.txt.
        notes = alice['0']
        assert notes.name == "Alice's notes" and notes.system == 'gap'
        assert [c.input for c in compute_cells(notes)] == ['SymmetricGroup(3)', '1+1']
        assert notes.source == 'sagenb:alice/0'

        assert root.legacy_settings == {
            'sagenb.allow_signup': 'true', 'sagenb.typeset_default': 'true',
            'sagenb.workers.idle_timeout': '300',
            'sagenb.workers.limit.address_space': str(2000000 * 1024),
            'sagenb.workers.limit.cpu_seconds': '3600'}

    cells_in_bodies = sum(compute_cells_in(admin_dir / str(n) / 'worksheet.html')
                          for n in ADMIN_NUMBERS) + 2
    assert report.cells >= cells_in_bodies
    # 4 cell files of admin/10 and admin/6 with their cells, 2 data files.
    assert report.files == 2 + 2 + 2
    skipped = dict(report.skipped)
    for item in ('user guest', 'user pub', 'user _sage_', 'user x!', '_sage_ (1 worksheet)',
                 'openid.pickle', 'readonly.txt', 'pub/1', 'admin/10 cells/12',
                 'code/ folders (1 worksheet)'):
        assert item in skipped, item
    assert 'OpenID' in skipped['openid.pickle']
    assert 'bob' in skipped['readonly.txt']
    assert 'nobody/3' in skipped['pub/1']
    assert any('aleksandra.slapik/44' in m for m in messages(report.notes, 'admin/5'))
    assert any('ghost' in m for m in messages(report.notes, 'admin/6'))
    assert any('suspended' in m for m in messages(report.notes, 'user bob'))
    lines = '\n'.join(report.lines())
    assert 'Imported 4 users, 5 worksheets' in lines
    assert 'would set sagenb.allow_signup = true' in lines
    assert 'setting word_wrap_cols: no counterpart' in lines
    assert 'ldap_bindpw' in lines and 'topsecret' not in lines
    assert 'worksheet admin/10 -> admin/10' in lines


def test_second_run_creates_nothing(notebook, tmp_path):
    folder = legacy_notebook(tmp_path)
    first = run(notebook, folder)
    with notebook.transaction() as root:
        before = {(u.login, w.__name__, len(w.cell_order), len(w.revisions or ()))
                  for u in root.home.values() for w in u.worksheets()}
    second = run(notebook, folder)
    assert first.worksheets == 5
    assert (second.users, second.worksheets, second.cells, second.files,
            second.revisions) == (0, 0, 0, 0, 0)
    skipped = dict(second.skipped)
    for number in ADMIN_NUMBERS:
        assert skipped['admin/%d' % number].startswith('already imported')
    assert skipped['alice/0'].startswith('already imported')
    assert skipped['user alice'].startswith('exists')
    with notebook.transaction() as root:
        after = {(u.login, w.__name__, len(w.cell_order), len(w.revisions or ()))
                 for u in root.home.values() for w in u.worksheets()}
        assert after == before
        publication = root.publications[root.user_by_login('admin')['4'].publication_id]
        assert publication.time == PUBLISHED_AT and len(root.publications) == 1


def test_a_taken_number_gets_the_next_free_one(notebook, tmp_path):
    folder = legacy_notebook(tmp_path)
    notebook.add_user('admin', admin=True)
    with notebook.transaction() as root:
        root.user_by_login('admin').create_worksheet('Made here', number=4)
    report = run(notebook, folder)
    with notebook.transaction() as root:
        owner = root.user_by_login('admin')
        assert owner['4'].name == 'Made here' and owner['4'].source is None
        assert owner['11'].source == 'sagenb:admin/4'
        assert [owner[str(n)].source for n in (5, 6, 10)] == [
            'sagenb:admin/5', 'sagenb:admin/6', 'sagenb:admin/10']
        # The existing account keeps its own password.
        assert not owner.password_hash.startswith('sha256$')
    assert any('imported as admin/11' in m for m in messages(report.notes, 'admin/4'))
    assert dict(report.skipped)['user admin'].startswith('exists')
    assert ('admin/4', 'admin/11') in report.imported


def test_dry_run_writes_nothing(notebook, tmp_path):
    folder = legacy_notebook(tmp_path)
    dry = run(notebook, folder, dry_run=True)
    with notebook.transaction() as root:
        assert len(root.home) == 0
        assert getattr(root, 'legacy_settings', None) is None
    real = run(notebook, folder)
    assert dry.lines()[0] == 'Dry run: nothing was written.'
    assert [line.replace('Would import', 'Imported') for line in dry.lines()[1:]] == \
        real.lines()


def test_payload_in_users_pickle_never_runs(notebook, tmp_path):
    marker = tmp_path / 'payload-ran'

    class Payload:
        def __reduce__(self):
            return (os.system, ('touch %s' % marker,))

    folder = legacy_notebook(tmp_path, users=[[b'admin', Payload()]])
    report = run(notebook, folder)
    assert not marker.exists()
    reason = dict(report.skipped)['users.pickle']
    assert 'system' in reason and 'only plain data' in reason
    with notebook.transaction() as root:
        owner = root.user_by_login('admin')
        # Worksheets still come; their owner has no password until an admin sets one.
        assert owner.password_hash is None and not owner.is_admin
        assert sorted(int(n) for n in owner.keys()) == ADMIN_NUMBERS


def test_a_worksheet_with_a_bad_pickle_is_skipped(notebook, tmp_path):
    marker = tmp_path / 'payload-ran'

    class Payload:
        def __reduce__(self):
            return (os.system, ('touch %s' % marker,))

    folder = legacy_notebook(tmp_path)
    admin_dir = store_dir(folder, 'admin')
    (admin_dir / '6' / 'worksheet_conf.pickle').write_bytes(b'\x80\x02}q\x00(U\x04na')
    write_pickle(admin_dir / '5' / 'worksheet_conf.pickle', {b'name': Payload()})
    (admin_dir / '10' / 'snapshots' / '1297626260.bz2').write_bytes(b'BZh9 damaged')
    report = run(notebook, folder)
    assert not marker.exists()
    skipped = dict(report.skipped)
    assert 'not a readable pickle' in skipped['admin/6']
    assert 'only plain data' in skipped['admin/5']
    assert 'bzip2' in skipped['admin/10 snapshots/1297626260.bz2']
    with notebook.transaction() as root:
        owner = root.user_by_login('admin')
        assert sorted(owner.keys()) == ['10', '4']
        assert len(owner['10'].revisions) == len(snapshots_in(admin_dir / '10')) - 1
        assert root.user_by_login('alice')['0'].source == 'sagenb:alice/0'


def test_migrated_user_logs_in_with_the_old_password(notebook, tmp_path):
    folder = legacy_notebook(tmp_path)
    run(notebook, folder)
    testapp = webtest.TestApp(notebook.app, extra_environ={'HTTP_HOST': 'localhost:80'})
    login(testapp, 'alice', PASSWORD)
    with notebook.transaction() as root:
        # Verified against the legacy hash, then stored as argon2.
        assert root.user_by_login('alice').password_hash.startswith('$argon2')


def test_users_pickle_with_a_set_as_sagenb_wrote_it(notebook, tmp_path):
    users = [user_record(b'alice', sagenb_hash(ALICE_SALT, PASSWORD).encode(),
                         viewable={(b'admin', 4)})]
    users[0][1][b'viewable_worksheets'] = {(b'admin', 4)}
    folder = legacy_notebook(tmp_path, users=users)
    report = run(notebook, folder)
    assert 'users.pickle' not in dict(report.skipped)
    with notebook.transaction() as root:
        assert root.user_by_login('alice').password_hash == sagenb_hash(ALICE_SALT,
                                                                        PASSWORD)


# --- the command ----------------------------------------------------------------------

def test_command_imports(tmp_path):
    folder = legacy_notebook(tmp_path)
    data_dir = tmp_path / 'data'
    done = subprocess.run(
        [os.path.join(BIN, 'sagenb-admin'), TESTING_INI, 'data_dir=%s' % data_dir,
         'import-sagenb', str(folder)],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert 'Imported 4 users, 5 worksheets' in done.stdout
    assert 'admin/5: its settings say aleksandra.slapik/44' in done.stdout
    nb = Notebook(data_dir)
    try:
        with nb.transaction() as root:
            owner = root.user_by_login('admin')
            assert sorted(int(n) for n in owner.keys()) == ADMIN_NUMBERS
            assert owner['10'].cells is not None
            assert len(compute_cells(owner['10'])) == compute_cells_in(
                store_dir(folder, 'admin') / '10' / 'worksheet.html')
            assert owner['4'].files['notes.txt'].read() == b'hello'
    finally:
        nb.close()


def test_command_dry_run_commits_nothing(tmp_path, capsys):
    folder = legacy_notebook(tmp_path)
    data_dir = tmp_path / 'data'
    assert admin.main([TESTING_INI, 'data_dir=%s' % data_dir, 'import-sagenb',
                       str(folder), '--dry-run']) == 0
    out = capsys.readouterr().out
    assert out.startswith('Dry run: nothing was written.\nWould import 4 users, '
                          '5 worksheets')
    nb = Notebook(data_dir)
    try:
        with nb.transaction() as root:
            assert len(root.home) == 0
    finally:
        nb.close()
    # No blob was left behind either.
    blobs = [os.path.join(d, f) for d, _, files in os.walk(data_dir / 'blobs')
             for f in files if f != '.layout']
    assert blobs == []


def test_command_refuses_a_folder_that_is_no_notebook(tmp_path, capsys):
    (tmp_path / 'empty').mkdir()
    with pytest.raises(SystemExit) as exc:
        admin.main([TESTING_INI, 'data_dir=%s' % (tmp_path / 'data'), 'import-sagenb',
                    str(tmp_path / 'empty')])
    assert 'not a legacy notebook folder' in str(exc.value)



# --- names and sizes (issue 18) ---------------------------------------------------------

def test_names_from_the_folder_follow_the_rules(notebook, tmp_path):
    users = USERS[:2] + [user_record(b'dave', sagenb_hash('11', 'x'), b'user',
                                     b'dave@example.org\r\nBcc: all@example.org')]
    folder = legacy_notebook(tmp_path, users=users)
    admin_dir = store_dir(folder, 'admin')
    conf6 = read_conf(admin_dir / '6' / 'worksheet_conf.pickle')
    conf6.update({'name': '\u202eevil' + 'n' * 400, 'system': 'sage"><script>',
                  'collaborators': [b'alice', b'gh\nost']})
    write_pickle(admin_dir / '6' / 'worksheet_conf.pickle', conf6)
    data = admin_dir / '4' / 'data'
    (data / 'fine.txt').write_bytes(b'ok')
    (data / 'cr\r\nlf.txt').write_bytes(b'unreachable')
    (data / '@@view').write_bytes(b'x')
    cells = admin_dir / '4' / 'cells' / '1'  # the cell of id 1 is in the body (the 2nd cell)
    cells.mkdir(parents=True, exist_ok=True)
    (cells / 'bell\x07.dat').write_bytes(b'x')
    report = run(notebook, folder)
    with notebook.transaction() as root:
        owner = root.user_by_login('admin')
        shared = owner['6']
        assert shared.name.startswith('evilnnn') and len(shared.name) == 200
        assert shared.system == 'sage'
        assert list(shared.collaborators) == [user_principal(root.user_by_login('alice').id)]
        assert sorted(owner['4'].files.keys()) == ['fine.txt', 'notes.txt', 'table.csv']
        assert all(not (c.output.files and 'bell\x07.dat' in c.output.files)
                   for c in owner['4'].ordered_cells())
        assert root.user_by_login('dave').email == ''
    skipped = dict(report.skipped)
    assert 'not a usable file name' in skipped['admin/4 data/cr\\r\\nlf.txt']
    assert 'not a usable file name' in skipped['admin/4 data/@@view']
    assert 'not a usable file name' in skipped['admin/4 the file "bell\\x07.dat" of cell 2']
    notes = '\n'.join(report.lines())
    assert 'cut to' in notes and 'not a system name' in notes
    assert 'gh\\nost is not a user here' in notes
    assert 'dave@example.org\\r\\nBcc' in notes
    # No line of the report is made by a name from the folder.
    assert all('\r' not in line and 'Bcc: all' not in line.split(':', 1)[0]
               for line in report.lines())


def test_a_file_past_the_limit_skips_its_worksheet_and_the_command_can_allow_it(tmp_path):
    folder = legacy_notebook(tmp_path)
    data = store_dir(folder, 'admin') / '5' / 'data'
    data.mkdir()
    (data / 'big.bin').write_bytes(bytes(2 * 2**20 + 1))
    data_dir = tmp_path / 'data'
    command = [os.path.join(BIN, 'sagenb-admin'), TESTING_INI, 'data_dir=%s' % data_dir,
               'import-sagenb', str(folder)]
    env = dict(os.environ, SAGENB_DATA_MAX_MB='2')
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert re.search(r'admin/5: data/big.bin is 2.0 MB, larger than the limit of 2 MB.*'
                     r'--max-data-mb', done.stdout)
    nb = Notebook(data_dir)
    try:
        with nb.transaction() as root:
            assert sorted(int(n) for n in root.user_by_login('admin').keys()) == [4, 6, 10]
    finally:
        nb.close()
    done = subprocess.run(command + ['--max-data-mb', '3'], capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert 'Imported 0 users, 1 worksheets' in done.stdout
    nb = Notebook(data_dir)
    try:
        with nb.transaction() as root:
            owner = root.user_by_login('admin')
            assert owner['5'].files['big.bin'].size == 2 * 2**20 + 1
            # Migrated files count against their owner's storage.
            assert owner.storage_used() >= 2 * 2**20 + 1
            assert owner.recount_storage()[0] == owner.recount_storage()[1]
    finally:
        nb.close()


def test_recount_storage_command(tmp_path, capsys):
    data_dir = tmp_path / 'data'
    nb = Notebook(data_dir)
    try:
        nb.add_user('alice')
        with nb.transaction() as root:
            user = root.user_by_login('alice')
            user.create_worksheet('w').data_files().add_file('a.txt', b'12345')
            user.storage.bytes = 99
    finally:
        nb.close()
    assert admin.main([TESTING_INI, 'data_dir=%s' % data_dir, 'recount-storage']) == 0
    out = capsys.readouterr().out
    assert 'alice: 99 bytes counted, 5 stored: corrected' in out
    nb = Notebook(data_dir)
    try:
        with nb.transaction() as root:
            assert root.user_by_login('alice').storage_used() == 5
    finally:
        nb.close()


@pytest.mark.parametrize('data', [
    b'B\x00\x00\x00\x20',  # BINBYTES: 512 MB declared, none there
    b'\x8e' + (2 ** 29).to_bytes(8, 'little'),  # BINBYTES8
    b'X\x00\x00\x00\x20',  # BINUNICODE
])
def test_a_pickle_declaring_more_than_it_holds_allocates_nothing(data):
    """The C unpickler allocated a counted string's declared length before reading it:
    five bytes in a users.pickle or worksheet_conf.pickle asked for up to 4 GB."""
    import tracemalloc

    from sagenb_pyramid.formats import FormatError, safepickle
    tracemalloc.start()
    try:
        with pytest.raises(FormatError) as refused:
            safepickle.loads(data, 'users.pickle')
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert 'users.pickle is not a readable pickle' in str(refused.value)
    assert peak < 2 ** 20, peak
