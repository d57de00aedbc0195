"""``sagenb-admin CONFIG pack``: ZODB's own old revisions go, everything the application
keeps stays (worksheet revisions are application data: records of their own), on the
embedded FileStorage (servers stopped), on ZEO and on PostgreSQL (an app server
running)."""
import time
import uuid

import pytest
import webtest

from ..support.notebook import Api, Notebook, login
from ..support.postgres import app_server, blob_cache_uri
from ..support.server import admin
from ..support.zeo import app_server as zeo_app_server, zeo_uri

pytestmark = pytest.mark.usefixtures('cheap_password_hashes')

# A revision after every edit (more than 10 ms apart).
EVERY_EDIT = {'sagenb.history.interval': '0.01'}
OUTPUT = [{'output_type': 'stream', 'name': 'stdout', 'text': 'kept\n'}]


def make_data(nb):
    """A worksheet with edits, revisions, outputs, a deleted cell and a data file written
    twice; returns its URL and the oid of its record."""
    nb.add_user('alice')
    app = webtest.TestApp(nb.app, extra_environ={'HTTP_HOST': 'localhost:80'})
    api = Api(app, nb.token('alice'))
    ws = api.post('/home/alice/', {'name': 'packed'}, status=201)['url'].replace(
        'http://localhost', '')
    cells = [api.post(ws + 'cells/', {'input': 'a = %d' % i}, status=201)['id']
             for i in range(3)]
    for i in range(4):
        time.sleep(0.03)
        api.patch(ws + 'cells/%d' % cells[0], {'input': 'a = %d' % (10 + i)}, status=200)
    time.sleep(0.03)
    api.delete(ws + 'cells/%d' % cells[2], status=200)
    for content in (b'first version', b'second version'):
        app.post(ws + 'data', {'replace': 'true'}, upload_files=[('file', 'd.txt', content)],
                 headers=api.headers, status=201)
    number = ws.rstrip('/').rsplit('/', 1)[1]
    with nb.transaction() as root:
        worksheet = root.user_by_login('alice')[number]
        worksheet.cells[str(cells[1])].output.update('done', OUTPUT, execution_count=1)
        oid = worksheet._p_oid
    return ws, oid


def everything(nb, ws):
    """What the application shows of the data, through its API and log-in form."""
    app = webtest.TestApp(nb.app, extra_environ={'HTTP_HOST': 'localhost:80'})
    login(app, 'alice')  # the account and its password
    api = Api(app, nb.token('alice'))
    sheet = api.get(ws)
    revisions = api.get(ws + 'revisions')['revisions']
    return {
        'cells': [(c['id'], c['input'], c['outputs']) for c in sheet['cells']],
        'name': sheet['name'],
        'revisions': [(r['id'], r['kind'], r['summary']) for r in revisions],
        'revision_cells': [[(c['id'], c['input'], c['outputs'])
                            for c in api.get(ws + 'revisions/%s' % r['id'])['cells']]
                           for r in revisions],
        'data': app.get(ws + 'data/d.txt', headers=api.headers).body,
    }


def revisions_in_zodb(nb, oid):
    # By name: RelStorage's history() still takes a ``version`` second.
    return len(nb.db.storage.history(oid, size=1000))


def states_in_postgres(postgres, db, oid):
    """Stored revisions of the record ``oid`` (RelStorage's ``history`` hides those
    of packed transactions, so it cannot tell)."""
    import psycopg2
    from ZODB.utils import u64
    conn = psycopg2.connect(postgres.dsn.replace('dbname=postgres', 'dbname=' + db))
    try:
        with conn.cursor() as cursor:
            cursor.execute('SELECT count(*) FROM object_state WHERE zoid = %s', (u64(oid),))
            return cursor.fetchone()[0]
    finally:
        conn.close()


def check_before(state):
    assert state['data'] == b'second version'
    assert OUTPUT in [outputs for _, _, outputs in state['cells']]
    assert len(state['revisions']) >= 5, state['revisions']


def test_pack_on_filestorage_keeps_the_application_data(tmp_path):
    data_dir = tmp_path / 'data'
    nb = Notebook(data_dir, **EVERY_EDIT)
    try:
        ws, oid = make_data(nb)
        before = everything(nb, ws)
        zodb_revisions = revisions_in_zodb(nb, oid)
    finally:
        nb.close()
    check_before(before)
    assert zodb_revisions > 5
    size = (data_dir / 'Data.fs').stat().st_size
    done = admin(data_dir, 'pack')
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith('Packed FileStorage: '), done.stdout
    assert (data_dir / 'Data.fs').stat().st_size < size
    nb = Notebook(data_dir, **EVERY_EDIT)
    try:
        assert revisions_in_zodb(nb, oid) == 1
        assert everything(nb, ws) == before
    finally:
        nb.close()


def test_pack_on_postgresql_while_an_app_server_runs(tmp_path, postgres, monkeypatch):
    db = postgres.create_database('p' + uuid.uuid4().hex[:12])
    nb = app_server(postgres, db, tmp_path, 'app1', **EVERY_EDIT)
    try:
        ws, oid = make_data(nb)
        before = everything(nb, ws)
        check_before(before)
        assert states_in_postgres(postgres, db, oid) > 5
        monkeypatch.setenv('SAGENB_ZODB_URI', blob_cache_uri(postgres, db, tmp_path / 'admin'))
        done = admin(tmp_path / 'admin', 'pack', '--days', '0')
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith('Packed PostgreSQL (RelStorage): '), done.stdout
        assert states_in_postgres(postgres, db, oid) == 1
        assert everything(nb, ws) == before  # the running server
    finally:
        nb.close()
    # Another app server, whose blob cache is empty: the data file comes from PostgreSQL.
    fresh = app_server(postgres, db, tmp_path, 'app2', **EVERY_EDIT)
    try:
        assert everything(fresh, ws) == before
    finally:
        fresh.close()


def test_pack_on_zeo_while_an_app_server_runs(tmp_path, zeo_server, monkeypatch):
    nb = zeo_app_server(tmp_path, zeo_server, 'app1', **EVERY_EDIT)
    try:
        ws, oid = make_data(nb)
        before = everything(nb, ws)
        check_before(before)
        assert revisions_in_zodb(nb, oid) > 5
        monkeypatch.setenv('SAGENB_ZODB_URI', zeo_uri(tmp_path, zeo_server, 'admin'))
        done = admin(tmp_path / 'admin', 'pack')
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith('Packed ZEO: '), done.stdout
        assert revisions_in_zodb(nb, oid) == 1
        assert everything(nb, ws) == before
    finally:
        nb.close()


def test_pack_refuses_negative_days(tmp_path):
    done = admin(tmp_path / 'data', 'pack', '--days', '-1')
    assert done.returncode != 0
    assert '--days must be 0 or more.' in done.stderr
