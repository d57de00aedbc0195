"""The backup drill (issue 23) with real processes: ``sagenb-admin backup`` (full, then
incremental) while ``pserve`` runs and another user writes, more changes, the data
destroyed, ``sagenb-admin restore``, and everything as of the last backup and nothing
after it; once on the embedded FileStorage, once on a ZEO server.  Then the refusals
(no traceback, nothing changed) and evolve steps on a restored old database; PostgreSQL
with blobs in the database (the drill) and in a shared blob folder (backup, ``--keep``,
a restore refused for a missing blob file, a lost blob folder restored)."""
import hashlib
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from ..support.notebook import HERE
from ..support.server import BIN, DEV_INI, Server, call, free_port
from ..support.zeo import ZeoServer

PASSWORD = 'a long password'
# A revision at every edit a second apart (the default takes one a minute at most).
SERVER_ENV = {'SAGENB_HISTORY_INTERVAL': '1', 'SAGENB_WORKERS_SPARE': '0'}


def admin(data_dir, *args, env=None, stdin=''):
    done = subprocess.run(
        [os.path.join(BIN, 'sagenb-admin'), DEV_INI, 'data_dir=%s' % data_dir, *args],
        input=stdin, capture_output=True, text=True, timeout=120,
        env=dict(os.environ, **(env or {})))
    assert 'Traceback' not in done.stderr, done.stderr
    return done


def ok(done):
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def path_of(url):
    """A URL without its server (listings give whole URLs; the port changes)."""
    return urllib.parse.urlsplit(url)._replace(scheme='', netloc='').geturl()


def raw(server, token, path):
    path = path_of(path)
    request = urllib.request.Request(server.url + path,
                                     headers={'Authorization': 'Bearer ' + token})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read()


def api(server, token, method, path, body=None, status=None):
    got, answer = call(server, token, method, path_of(path), body)
    if status is not None:
        assert got == status, (method, path, got, answer)
    return answer


def evaluate(server, token, ws, code):
    cell = api(server, token, 'POST', ws + 'cells', {'input': code}, 201)['id']
    done = api(server, token, 'POST', '%scells/%d/evaluate' % (ws, cell), {'wait': 90}, 200)
    assert done['status'] == 'done', done
    return cell


def snapshot(server, tokens):
    """What the drill checks, read through the API: the accounts, and every worksheet of
    the users in ``tokens`` with its cells and outputs, data files and revisions."""
    state = {'users': sorted((u['login'], u['is_admin']) for u in api(
        server, tokens['alice'], 'GET', '/admin/users/', status=200)['users'])}
    for login, token in sorted(tokens.items()):
        listing = api(server, token, 'GET', '/home/%s/?state=all' % login, status=200)
        for entry in sorted(listing['worksheets'], key=lambda w: w['id']):
            url = path_of(entry['url'])
            ws = api(server, token, 'GET', url, status=200)
            files = {f['name']: hashlib.sha256(raw(server, token, f['url'])).hexdigest()
                     for f in ws['data_files']}
            revisions = api(server, token, 'GET', url + 'revisions', status=200)
            state[url] = {
                'name': ws['name'], 'state': entry['state'], 'files': files,
                'cells': [(c['id'], c['input'], c['status'], json.dumps(c['outputs']))
                          for c in ws['cells']],
                'revisions': [(r['id'], r['kind'], r['time'])
                              for r in revisions['revisions']]}
    return state


class Writer(threading.Thread):
    """Carol adds cells (``x = i``) and every third time a data file (``f<i>.txt``, a
    blob) to her worksheet as fast as the server takes them, during the backups."""

    def __init__(self, server, token, ws):
        super().__init__(daemon=True)
        self.server, self.token, self.ws = server, token, ws
        self.acked = 0  # requests answered: at least these are committed
        self.stopping = threading.Event()
        self.failure = None

    def run(self):
        try:
            while not self.stopping.is_set():
                i = self.acked
                api(self.server, self.token, 'POST', self.ws + 'cells',
                    {'input': 'x = %d' % i}, 201)
                if i % 3 == 0:
                    api(self.server, self.token, 'POST', self.ws + 'data',
                        {'name': 'f%d.txt' % i, 'content': str(i) * 5000}, 201)
                self.acked = i + 1
                time.sleep(0.02)  # writing all the time, leaving the CPUs to the rest
        except BaseException as exc:  # told by the test
            self.failure = exc

    def stop(self):
        self.stopping.set()
        self.join(timeout=60)
        assert self.failure is None, self.failure


def backup_while_writing(run_backup, writer):
    """The backup with carol writing meanwhile; (committed before it, answered after)."""
    time.sleep(0.3)
    before = writer.acked
    output = run_backup()
    time.sleep(0.3)
    return output, before, writer.acked


def check_writer(server, token, ws, before, after):
    """Carol's worksheet restored is a prefix of what she wrote: whole cells and whole
    data files (their blobs), at least what was answered before the backup began and at
    most one request more than was answered when it ended."""
    cells = api(server, token, 'GET', ws, status=200)
    inputs = [c['input'] for c in cells['cells'] if c['input'].startswith('x = ')]
    count = len(inputs)
    assert inputs == ['x = %d' % i for i in range(count)]
    assert before <= count <= after + 1, (before, count, after)
    # Cell i, then (every third) file i: the last cell's file may be missing.
    names = sorted(f['name'] for f in cells['data_files'])
    expected = ['f%d.txt' % i for i in range(0, count, 3)]
    assert names in (sorted(expected), sorted(n for n in expected
                                              if n != 'f%d.txt' % (count - 1))), names
    for f in cells['data_files']:
        i = int(f['name'][1:-4])
        assert raw(server, token, f['url']) == (str(i) * 5000).encode()
    return count


def drill(tmp_path, data_dir, env, stop_storage, destroy, start_storage, zeo_conf=()):
    """The whole drill; ``env`` and ``zeo_conf`` say where the database is."""
    dest = str(tmp_path / 'backups')
    server_env = dict(SERVER_ENV, **env)
    for login, extra in (('alice', ['--admin']), ('bob', []), ('carol', [])):
        ok(admin(data_dir, 'adduser', login, *extra, env=env, stdin=PASSWORD + '\n'))
    tokens = {login: ok(admin(data_dir, 'token', login, env=env)).strip().splitlines()[-1]
              for login in ('alice', 'bob')}
    carol = ok(admin(data_dir, 'token', 'carol', env=env)).strip().splitlines()[-1]

    def backup(*extra):
        return ok(admin(data_dir, 'backup', dest, *extra, *zeo_conf, env=env))

    server = Server(data_dir, free_port(), env=server_env)
    writer = None
    try:
        alice, bob = tokens['alice'], tokens['bob']
        # Data: worksheets with evaluated outputs, data files, revisions, an account.
        ws1 = api(server, alice, 'POST', '/home/alice/', {'name': 'kept'}, 201)['url']
        c1 = evaluate(server, alice, ws1, 'factor(2^64 - 1)')
        evaluate(server, alice, ws1, 'plot(sin(x), (x, 0, 6))')
        api(server, alice, 'POST', ws1 + 'data', {'name': 'table.csv',
                                                    'content': 'a,b\n1,2\n'}, 201)
        for text in ('1 + 1', '2 + 2', '3 + 3'):  # a revision for each (a second apart)
            time.sleep(1.1)
            api(server, alice, 'PATCH', '%scells/%d' % (ws1, c1), {'input': text}, 200)
        ws2 = api(server, bob, 'POST', '/home/bob/', {'name': 'bob data'}, 201)['url']
        evaluate(server, bob, ws2, 'print("hello from bob")')
        api(server, bob, 'POST', ws2 + 'data', {'name': 'notes.txt',
                                                 'content': 'bob ' * 1000}, 201)
        ws3 = api(server, alice, 'POST', '/home/alice/', {'name': 'to delete'}, 201)['url']
        api(server, alice, 'POST', '/admin/users/', {'login': 'dave'}, 201)
        carol_ws = api(server, carol, 'POST', '/home/carol/', {'name': 'busy'}, 201)['url']
        writer = Writer(server, carol, carol_ws)
        writer.start()

        # The full backup, while the server runs and carol writes.
        first = backup_while_writing(lambda: backup('--full'), writer)[0]
        assert '(full)' in first, first

        # More: a new worksheet, edits, a new data file, something deleted, an account.
        ws4 = api(server, bob, 'POST', '/home/bob/', {'name': 'after full'}, 201)['url']
        evaluate(server, bob, ws4, '2^100')
        api(server, alice, 'PATCH', '%scells/%d' % (ws1, c1), {'input': '4 + 4'}, 200)
        api(server, alice, 'POST', ws1 + 'data', {'name': 'second.txt',
                                                    'content': 'second ' * 500}, 201)
        api(server, alice, 'DELETE', ws3, status=200)
        api(server, bob, 'DELETE', ws2 + 'data/notes.txt', status=200)
        api(server, alice, 'POST', '/admin/users/', {'login': 'erin'}, 201)
        time.sleep(1.1)  # repozo names its files by the second

        second, before, after = backup_while_writing(backup, writer)
        assert after > before  # carol's writes went on during the backup
        assert '(incremental)' in second, second
        assert 'new blob file' in second and ' 0 new blob files' not in second, second
        expected = snapshot(server, tokens)
        assert len(expected[ws1]['revisions']) >= 3, expected[ws1]
        assert 'second.txt' in expected[ws1]['files'] and ws3 not in expected

        # Even more, not backed up.
        api(server, alice, 'POST', '/home/alice/', {'name': 'lost'}, 201)
        api(server, alice, 'PATCH', '%scells/%d' % (ws1, c1), {'input': 'lost edit'}, 200)
        api(server, alice, 'DELETE', ws1 + 'data/table.csv', status=200)
        api(server, bob, 'POST', ws4 + 'data', {'name': 'lost.txt', 'content': 'x'}, 201)
        api(server, alice, 'POST', '/admin/users/', {'login': 'frank'}, 201)
        assert snapshot(server, tokens) != expected
        writer.stop()
        # While the database is in use, a restore refuses, even with --force.
        busy = admin(data_dir, 'restore', dest, '--force', *zeo_conf, env=env)
        assert busy.returncode != 0 and 'in use' in busy.stderr, busy.stderr
    finally:
        if writer is not None:
            writer.stopping.set()
        server.kill()
    stop_storage()
    destroy()
    restored = ok(admin(data_dir, 'restore', dest, *zeo_conf, env=env))
    assert 'Restored' in restored and 'blob file' in restored, restored
    assert 'kept as' not in restored  # nothing was there to put aside
    start_storage()
    # Evolve steps run on the restored database (none are pending for today's).
    assert 'up to date' in ok(admin(data_dir, 'evolve', env=env))
    users = ok(admin(data_dir, 'users', env=env)).split()
    assert 'erin' in users and 'frank' not in users
    # No Sage this time: what is checked is in the database.
    server = Server(data_dir, free_port(), env=dict(server_env,
                                                    SAGENB_WORKERS_PRESTART='false'))
    try:
        assert snapshot(server, tokens) == expected
        check_writer(server, carol, carol_ws, before, after)
    finally:
        server.kill()


def test_backup_drill_on_the_embedded_filestorage(tmp_path):
    data_dir = tmp_path / 'data'

    def destroy():
        shutil.rmtree(data_dir)

    drill(tmp_path, data_dir, {}, lambda: None, destroy, lambda: None)


def test_backup_drill_through_zeo(tmp_path):
    zeo = ZeoServer(tmp_path / 'zeo')
    data_dir = tmp_path / 'app'
    env = {'SAGENB_ZODB_URI': 'zeo://127.0.0.1:%d?blob_dir=%s&shared_blob_dir=false'
           % (zeo.port, tmp_path / 'app-blob-cache')}

    def destroy():
        # The ZEO server's database and blobs, the app server's folder and blob cache.
        for name in os.listdir(zeo.folder):
            if name != 'zeo.conf':
                path = os.path.join(zeo.folder, name)
                shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
        shutil.rmtree(data_dir)
        shutil.rmtree(tmp_path / 'app-blob-cache')

    try:
        drill(tmp_path, data_dir, env, zeo.stop, destroy, zeo.start,
              zeo_conf=('--zeo-conf', zeo.conf))
    finally:
        zeo.stop()


def checksum(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def refused(done, words):
    assert done.returncode != 0, done.stdout
    assert words in done.stderr, done.stderr
    assert done.stderr.strip().startswith('sagenb-admin: '), done.stderr


def test_backup_and_restore_refuse_clearly_and_change_nothing(tmp_path):
    data_dir, dest = tmp_path / 'data', tmp_path / 'backups'
    ok(admin(data_dir, 'adduser', 'alice', stdin=PASSWORD + '\n'))
    data_fs = str(data_dir / 'Data.fs')
    (tmp_path / 'a-file').write_text('not a folder')
    refused(admin(data_dir, 'backup', str(tmp_path / 'a-file' / 'dest')),
            'cannot make the backup folder')
    refused(admin(data_dir, 'restore', str(tmp_path)), 'holds no backup')
    refused(admin(data_dir, 'restore', str(tmp_path / 'missing')), 'holds no backup')
    ok(admin(data_dir, 'backup', str(dest)))
    before = checksum(data_fs)
    refused(admin(data_dir, 'restore', str(dest)), 'restoring replaces it')
    refused(admin(data_dir, 'restore', str(dest), '--force', '--date', '2001-01-01'),
            'no backup made at or before 2001-01-01')
    refused(admin(data_dir, 'restore', str(dest), '--force', '--date', 'last week'),
            '--date is a UTC time')
    refused(admin(data_dir, 'backup', str(dest),
                  env={'SAGENB_ZODB_URI': 'zeo://127.0.0.1:1'}), '--zeo-conf')
    refused(admin(data_dir, 'backup', str(dest), '--zeo-conf', str(tmp_path / 'nope.conf'),
                  env={'SAGENB_ZODB_URI': 'zeo://127.0.0.1:1'}), 'no ZEO configuration')
    refused(admin(data_dir, 'restore', str(dest),
                  env={'SAGENB_ZODB_URI': 'memory://'}), 'not of memory://')
    refused(admin(data_dir, 'backup', str(dest), '--full', '--keep', '0'),
            '--keep is the number of full backups to keep: 1 or more, not 0')
    assert len(os.listdir(dest / 'datafs')) == 3  # the one backup: .fs, .dat, .index
    assert checksum(data_fs) == before
    env = {'SAGENB_WORKERS_PRESTART': 'false', 'SAGENB_WORKERS_SPARE': '0'}
    server = Server(data_dir, free_port(), env=env)
    try:
        refused(admin(data_dir, 'restore', str(dest), '--force'), 'is in use')
    finally:
        server.kill()
    # (The server wrote meanwhile: the refusal left no file of its own beside its.)
    assert [n for n in os.listdir(data_dir) if 'restoring' in n or 'replaced' in n] == []
    # With --force and the server stopped, the database is replaced and kept aside.
    replaced = ok(admin(data_dir, 'restore', str(dest), '--force'))
    assert 'kept as %s.replaced-' % data_fs in replaced, replaced
    assert ok(admin(data_dir, 'users')).split() == ['alice', 'user']


def test_a_backup_missing_a_blob_restores_nothing(tmp_path):
    data_dir, dest = tmp_path / 'data', tmp_path / 'backups'
    ok(admin(data_dir, 'adduser', 'alice', stdin=PASSWORD + '\n'))
    env = {'SAGENB_WORKERS_PRESTART': 'false', 'SAGENB_WORKERS_SPARE': '0'}
    token = ok(admin(data_dir, 'token', 'alice')).strip().splitlines()[-1]
    server = Server(data_dir, free_port(), env=env)
    try:
        ws = api(server, token, 'POST', '/home/alice/', {'name': 'w'}, 201)['url']
        api(server, token, 'POST', ws + 'data', {'name': 'a.txt', 'content': 'A'}, 201)
        assert '1 new blob file' in ok(admin(data_dir, 'backup', str(dest)))
    finally:
        server.kill()
    for here, _dirs, files in os.walk(dest / 'blobs'):
        for name in files:
            if name.endswith('.blob'):
                os.remove(os.path.join(here, name))
    shutil.rmtree(data_dir)
    refused(admin(data_dir, 'restore', str(dest)), 'lacks 1 blob file')
    assert not os.path.exists(data_dir / 'Data.fs')


def test_a_restored_old_database_is_evolved(tmp_path):
    """A backup of a database written before schema evolution (tests/support/olddb)
    restores, says its evolve steps are pending, and ``evolve`` runs them."""
    data_dir, dest = tmp_path / 'data', tmp_path / 'backups'
    old = os.path.join(HERE, 'tests', 'support', 'olddb')
    os.makedirs(data_dir)
    shutil.copyfile(os.path.join(old, 'Data.fs'), data_dir / 'Data.fs')
    shutil.copytree(os.path.join(old, 'blobs'), data_dir / 'blobs')
    assert 'blob file' in ok(admin(data_dir, 'backup', str(dest)))
    shutil.rmtree(data_dir)
    restored = ok(admin(data_dir, 'restore', str(dest)))
    assert 'evolve steps pending: run sagenb-admin %s evolve' % DEV_INI in restored, restored
    evolved = ok(admin(data_dir, 'evolve'))
    assert 'Done:' in evolved and 'the database is up to date' in evolved, evolved
    assert sorted(ok(admin(data_dir, 'users')).splitlines()) == ['alice admin', 'bob user', 'carol user']



def test_backup_drill_on_postgresql(tmp_path, postgres):
    """RelStorage on PostgreSQL with blobs in the database: pg_dump while the server
    runs, changes after it, the database dropped and made again empty, pg_restore."""
    db = postgres.create_database('backup_drill')
    data_dir, dest = tmp_path / 'app', str(tmp_path / 'backups')
    env = {'SAGENB_ZODB_URI': postgres.uri(db, blob_dir=tmp_path / 'blob-cache',
                                           shared_blob_dir='false')}
    server_env = dict(SERVER_ENV, SAGENB_WORKERS_PRESTART='false', **env)
    for login, extra in (('alice', ['--admin']), ('bob', [])):
        ok(admin(data_dir, 'adduser', login, *extra, env=env, stdin=PASSWORD + '\n'))
    tokens = {login: ok(admin(data_dir, 'token', login, env=env)).strip().splitlines()[-1]
              for login in ('alice', 'bob')}
    alice, bob = tokens['alice'], tokens['bob']
    server = Server(data_dir, free_port(), env=server_env)
    try:
        ws = api(server, alice, 'POST', '/home/alice/', {'name': 'on postgres'}, 201)['url']
        cell = api(server, alice, 'POST', ws + 'cells', {'input': '1 + 1'}, 201)['id']
        api(server, alice, 'POST', ws + 'data', {'name': 'big.txt',
                                                   'content': 'blob ' * 20000}, 201)
        time.sleep(1.1)
        api(server, alice, 'PATCH', '%scells/%d' % (ws, cell), {'input': '2 + 2'}, 200)
        api(server, bob, 'POST', '/home/bob/', {'name': 'bob'}, 201)
        done = ok(admin(data_dir, 'backup', dest, env=env))
        assert 'pg_dump' in done, done
        expected = snapshot(server, tokens)
        api(server, alice, 'POST', '/home/alice/', {'name': 'lost'}, 201)
        api(server, alice, 'DELETE', ws + 'data/big.txt', status=200)
        api(server, alice, 'POST', '/admin/users/', {'login': 'frank'}, 201)
        refused(admin(data_dir, 'restore', dest, '--force', env=env), 'is in use')
    finally:
        server.kill()
    refused(admin(data_dir, 'restore', dest, env=env), 'restoring replaces them')
    deadline = time.monotonic() + 15
    while True:  # the killed server's sessions end when PostgreSQL notices
        restored = admin(data_dir, 'restore', dest, '--force', env=env)
        if 'is in use' not in restored.stderr or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert 'Restored' in ok(restored)
    shutil.rmtree(tmp_path / 'blob-cache')
    assert 'up to date' in ok(admin(data_dir, 'evolve', env=env))
    assert 'frank' not in ok(admin(data_dir, 'users', env=env)).split()
    server = Server(data_dir, free_port(), env=server_env)
    try:
        assert snapshot(server, tokens) == expected
    finally:
        server.kill()


def test_backup_restore_and_keep_with_a_shared_blob_folder_on_postgresql(tmp_path,
                                                                          postgres):
    """RelStorage on PostgreSQL with ``shared_blob_dir=true``: the dump holds no blob, so
    the backup lists the blob records of the dump's snapshot and copies their files; a
    restore refuses, changing nothing, when one is missing or the blobs were kept the
    other way, and puts them back into a lost blob folder; ``--keep 1`` removes the older
    dump and the blob file only it needed, and the kept dump still restores."""
    import psycopg2
    import webtest

    from ..support.notebook import Api
    from ..support.postgres import app_server
    db = postgres.create_database('shared_blobs')
    shared, dest = tmp_path / 'shared-blobs', tmp_path / 'backups'
    uri = postgres.uri(db, blob_dir=shared, shared_blob_dir='true')
    env = {'SAGENB_ZODB_URI': uri}
    data_dir = tmp_path / 'admin'
    files = {name: os.urandom(50000) for name in ('a.bin', 'b.bin', 'c.bin', 'd.bin')}

    def backup(*extra):
        return ok(admin(data_dir, 'backup', str(dest), *extra, env=env))

    def backed_up():
        found = []
        for here, _dirs, names in os.walk(dest / 'blobs'):
            for name in names:
                if name.endswith('.blob'):
                    with open(os.path.join(here, name), 'rb') as f:
                        found.append(f.read())
        return sorted(found)

    nb = app_server(postgres, db, tmp_path, 'app1', **{'sagenb.zodb_uri': uri})
    try:
        nb.add_user('alice')
        app = webtest.TestApp(nb.app, extra_environ={'HTTP_HOST': 'localhost:80'})
        alice = Api(app, nb.token('alice'))
        ws = alice.post('/home/alice/', {'name': 'w'}, status=201)['url'].replace(
            'http://localhost', '')

        def upload(name):
            app.post(ws + 'data', upload_files=[('file', name, files[name])],
                     headers=alice.headers, status=201)

        upload('a.bin')
        upload('b.bin')
        first = backup()
        assert '2 new blob files' in first, first
        assert backed_up() == sorted([files['a.bin'], files['b.bin']])
        time.sleep(1.1)  # dumps are named by the second
        alice.delete(ws + 'data/a.bin', status=200)
        upload('c.bin')
        ok(admin(data_dir, 'pack', env=env))  # a.bin's blob is gone from the database
        second = backup('--keep', '1')
        assert '1 new blob file' in second, second
        assert 'Removed 1 older dump and 1 blob file no kept dump needs' in second, second
        assert len(os.listdir(dest / 'postgres')) == 2  # the dump and its list of blobs
        assert backed_up() == sorted([files['b.bin'], files['c.bin']])
        upload('d.bin')  # after the last backup: lost
    finally:
        nb.close()

    def state():
        """The database's records and the shared folder's files."""
        with psycopg2.connect(postgres.dsn.replace('dbname=postgres', 'dbname=' + db)) as c:
            cursor = c.cursor()
            cursor.execute('SELECT count(*), max(tid) FROM object_state')
            rows = cursor.fetchone()
        c.close()
        return rows, sorted(os.path.relpath(os.path.join(here, name), shared)
                            for here, _dirs, names in os.walk(shared) for name in names)

    before = state()
    # A backup lacking a blob file of its dump restores nothing.
    broken = tmp_path / 'broken'
    shutil.copytree(dest, broken)
    os.remove(next(os.path.join(here, name)
                   for here, _dirs, names in os.walk(broken / 'blobs')
                   for name in names if name.endswith('.blob')))
    deadline = time.monotonic() + 15
    while True:  # the closed app server's sessions end when PostgreSQL notices
        done = admin(data_dir, 'restore', str(broken), '--force', env=env)
        if 'is in use' not in done.stderr or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    refused(done, 'lacks 1 blob file')
    # Restored where blobs live in the database, the dump would lack them.
    in_db = {'SAGENB_ZODB_URI': postgres.uri(db, blob_dir=tmp_path / 'cache',
                                             shared_blob_dir='false')}
    refused(admin(data_dir, 'restore', str(dest), '--force', env=in_db),
            'made with shared_blob_dir=true')
    assert state() == before

    shutil.rmtree(shared)  # the blob folder is lost with the database's latest changes
    deadline = time.monotonic() + 15
    while True:  # the closed app server's sessions end when PostgreSQL notices
        restored = admin(data_dir, 'restore', str(dest), '--force', env=env)
        if 'is in use' not in restored.stderr or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert '2 blob files' in ok(restored), restored.stdout

    nb = app_server(postgres, db, tmp_path, 'app2', **{'sagenb.zodb_uri': uri})
    try:
        app = webtest.TestApp(nb.app, extra_environ={'HTTP_HOST': 'localhost:80'})
        alice = Api(app, nb.token('alice'))
        names = sorted(f['name'] for f in alice.get(ws)['data_files'])
        assert names == ['b.bin', 'c.bin']
        for name in names:
            assert app.get(ws + 'data/' + name, headers=alice.headers).body == files[name]
    finally:
        nb.close()
