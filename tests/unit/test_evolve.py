"""Schema evolution (evolve.py) on ``tests/support/olddb``, a database written by the code before
it (see tests/support/olddb/make.py), and on a new database."""
import shutil

import pytest
import transaction

from sagenb_pyramid import audit, evolve, resources
from sagenb_pyramid.auth.tokens import token_expires, token_scope
from sagenb_pyramid.scripts import admin as admin_script
from sagenb_pyramid.workers.records import WorkerHost

from ..support.legacy import OLD_DATABASE
from ..support.notebook import PASSWORD, Notebook, login
from ..support.server import DEV_INI

OLDDB = OLD_DATABASE
STEP_NAMES = [s.name for s in evolve.STEPS]


@pytest.fixture
def old_dir(tmp_path):
    folder = tmp_path / 'old'
    shutil.copytree(OLDDB, folder, ignore=shutil.ignore_patterns('*.py'))
    return folder


def run_admin(capsys, data_dir, *args):
    """``sagenb-admin development.ini data_dir=... ARGS`` in this process; its output."""
    try:
        status = admin_script.main([DEV_INI, 'data_dir=%s' % data_dir, *args])
    except SystemExit as exc:
        status = exc.code
    out = capsys.readouterr()
    return status, out.out, out.err


def test_the_steps_are_named_once_and_a_new_root_has_them_all():
    assert len(set(STEP_NAMES)) == len(STEP_NAMES)
    assert tuple(STEP_NAMES) == resources.SCHEMA_STEPS
    assert set(resources.Root().evolved) == set(STEP_NAMES)


def test_a_new_database_is_fully_evolved(tmp_path, capsys):
    status, out, err = run_admin(capsys, tmp_path / 'new', 'evolve', '--dry-run')
    assert status == 0, err
    assert out == 'The database is up to date: no evolve step is pending.\n'
    status, out, err = run_admin(capsys, tmp_path / 'new', 'users')
    assert status == 0 and out == ''


def test_other_commands_refuse_an_old_database_and_name_the_command(old_dir, capsys):
    before = (old_dir / 'Data.fs').read_bytes()
    # development.ini runs pending steps at start: told not to, the command refuses.
    status, out, err = run_admin(capsys, old_dir, 'sagenb.evolve_at_start=false', 'users')
    assert status != 0 and out == ''
    assert 'sagenb-admin %s evolve' % DEV_INI in str(status)
    assert all(name in str(status) for name in STEP_NAMES)
    assert (old_dir / 'Data.fs').read_bytes() == before


def test_dry_run_lists_the_steps_and_changes_nothing(old_dir, capsys):
    before = (old_dir / 'Data.fs').read_bytes()
    status, out, err = run_admin(capsys, old_dir, 'evolve', '--dry-run')
    assert status == 0, err
    assert '%d evolve steps pending' % len(STEP_NAMES) in out
    listed = [line.split(':')[0].strip() for line in out.splitlines()[1:]]
    assert listed == STEP_NAMES
    assert (old_dir / 'Data.fs').read_bytes() == before


def test_evolve_brings_an_old_database_up_to_date(old_dir, capsys):
    status, out, err = run_admin(capsys, old_dir, 'evolve')
    assert status == 0, err
    assert ['Evolved: %s' % name for name in STEP_NAMES] == out.splitlines()[:-1]
    status, out, err = run_admin(capsys, old_dir, 'evolve', '--dry-run')
    assert 'up to date' in out
    status, out, err = run_admin(capsys, old_dir, 'users')
    assert status == 0 and out.split() == ['alice', 'admin', 'bob', 'user', 'carol', 'user']

    notebook = Notebook(old_dir)
    try:
        with notebook.transaction() as root:
            assert set(root.evolved) == set(STEP_NAMES)
            assert 'audit' not in root.__dict__ and 'audit_count' not in root.__dict__
            actions = [e.action for e in audit.entries(root, newest_first=False)]
            # The numbered log's two entries, then the newer one, in the order written.
            assert actions == ['login', 'user_suspended', 'login']
            assert len(root.used_challenges) == 0 and len(root.login_attempts) == 0
            assert root.server_settings['sagenb.allow_signup'] == 'false'
            alice, bob, carol = (root.user_by_login(n) for n in ('alice', 'bob', 'carol'))
            assert 'a-session-id' in alice.live_sessions and len(carol.live_sessions) == 0
            assert dict(carol.identities) == {} and 'github:4242' in bob.identities
            assert root.user_by_identity('github:4242') is bob
            worksheet = alice['0']
            # Not published (nothing in olddb was): an id of None, no publication.
            assert evolve.own(worksheet)['publication_id'] is None
            assert len(root.publications) == 0 and root.publications.__parent__ is root
            assert len(root.publications.by_time) == 0  # the index of /pub/, empty
            # The storage total counts the data file (8 bytes), as recounting does.
            assert alice.storage.bytes == 8 == alice.recount_storage()[1]
            assert carol.storage.bytes == 0
            scopes = sorted((token_scope(r), token_expires(r) is None)
                            for r in root.tokens.values())
            assert scopes == [('full', True), ('read', False)]
            host = root.worker_hosts['host1']
            assert type(host) is WorkerHost and host.tag == 'host1:boot1'
            assert host._p_jar.db().storage.load(host._p_oid)[0].find(
                b'sagenb_pyramid.workers.records') >= 0
            assert root.placements['%s/0' % alice.id] == 'host1:boot1'
            assert worksheet.files['data.csv'].read() == b'a,b\n1,2\n'
            # The imported text revision: its author listed, kind "import"; no history
            # for viewers until the owner opens it.
            revision = next(iter(worksheet.revisions.values()))
            assert evolve.own(revision)['author_ids'] == (alice.id,)
            assert revision.kind == 'import' and revision.body == 'old text'
            assert evolve.own(worksheet)['history_for_viewers'] is False
            assert len(worksheet.revisions.editing) == 0
            first = worksheet.ordered_cells()[0]
            assert first.output.outputs[0]['data']['text/plain'].startswith('3 * 5')
            # Live editing's versions (live-versions): stored, from 0.
            assert evolve.own(worksheet)['version'] == 0
            assert evolve.own(worksheet)['cell_versions'] == {}
            assert evolve.own(first)['past_inputs'] == () and first.input_version == 0
            # The cell order (cell-order): a CellOrder with the ids it had.
            assert type(evolve.own(worksheet)['cell_order']) is resources.CellOrder
            assert list(worksheet.cell_order) == [0, 1]
            assert [c.input for c in worksheet.ordered_cells()][0] == 'factor(2^64-1)'
            assert type(alice['1'].cell_order) is resources.CellOrder
            assert resources.read_blob(first.output.files['out.txt']) == \
                b'written by the cell\n'
        # The application serves it: a login, the worksheet, a new audit entry.
        import webtest
        app = webtest.TestApp(notebook.app)
        login(app, 'bob', PASSWORD)
        page = app.get('/home/alice/0/')
        assert 'algebra' in page.text and 'factor(2^64-1)' in page.text
        with notebook.transaction() as root:
            assert [e.action for e in audit.entries(root)][0] == 'login'
    finally:
        notebook.close()


def test_the_server_refuses_an_old_database_unless_told_to_evolve_at_start(old_dir):
    with pytest.raises(evolve.SchemaOutdated) as refused:
        Notebook(old_dir)
    assert 'sagenb-admin' in str(refused.value) and 'evolve' in str(refused.value)
    # Refused without writing, and the database is free again for the command.
    notebook = Notebook(old_dir, **{'sagenb.evolve_at_start': 'true'})
    try:
        with notebook.transaction() as root:
            assert set(root.evolved) == set(STEP_NAMES)
            assert type(root.worker_hosts['host1']) is WorkerHost
    finally:
        notebook.close()


def test_an_old_worker_host_record_still_loads_before_evolving(old_dir):
    """The class path it was stored under (resources.WorkerHost) is found moved."""
    from sagenb_pyramid import db_from_uri
    uri = 'file://%s/Data.fs?blobstorage_dir=%s/blobs' % (old_dir, old_dir)
    db = db_from_uri(uri, 'unnamed', {})
    try:
        conn = db.open()
        record = conn.root()['sagenb'].worker_hosts['host1']
        assert type(record) is WorkerHost and record.running
        transaction.abort()
        conn.close()
    finally:
        db.close()
