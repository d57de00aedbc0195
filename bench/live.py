"""Live changes between clients (issue 21): how long after one client's edit another
client's ``GET <worksheet>/?since=&wait=`` answers with it, and how long after Sage
prints a line another client's ``GET .../cells/<id>?since=&wait=`` has it.

    .venv/bin/python bench/live.py [--edits 60] [--peer-python .venv-peer/bin/python]

Three setups, each with real ``pserve development.ini`` processes on 127.0.0.1 (spare
Sage processes off; Sage starts at the first evaluation):

- ``embedded``: one app server on its FileStorage; editor and watcher both on it;
- ``zeo``: ``runzeo`` and two app servers; the editor on one, the watcher on the other
  (the watcher's server learns of the commit from ZEO's invalidations);
- ``postgres``: PostgreSQL (Debian's binaries, tests/support/postgres.py) through
  RelStorage and two app servers, as ``zeo`` (the watcher's server learns of the
  commit from its commit news poller, workers/news.py).

The editor saves ``--edits`` edits of one cell (``PATCH`` with ``base_version``), a
random 0.2 to 0.4 s apart, on one keep-alive connection; the watcher holds a long poll
on its own connection and notes when each edit's text arrives.  Figures: from the
editor's acknowledgement (its PATCH answered) and from the editor sending it, p50,
p95, max, in ms.  Outputs: the editor evaluates a cell printing 20 lines with their
``time.time()`` 0.25 s apart; the watcher polls the cell and notes, per line, its
arrival minus the time printed (one machine, one clock): the worker host writes a
running cell's outputs every ``sagenb.workers.flush_interval`` (0.2 s), so that much
of it is by design.

The peer, with ``--peer-python`` (a venv with ``jupyter-collaboration`` and
``websocket-client``; ``make bench-live`` makes ``.venv-peer``): jupyter_server with
jupyter-collaboration's Yjs rooms, two Yjs clients (pycrdt) on one notebook's room
over websockets, the same edits, timed from the editor sending its update (Yjs has no
acknowledgement) to the watcher's document holding it (bench/live_peer.py).
"""
import argparse
import http.client
import json
import os
import pathlib
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import free_port, pct, wait_http  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tests.support.zeo import ZeoServer  # noqa: E402

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
DEV_INI = os.path.join(HERE, 'development.ini')
SECRET = 'bench secret shared by the app servers'
OUTPUT_LINES = 20
PRINTER = ('import time\nfor i in range(%dr):\n    print(i, repr(time.time()), flush=True)\n'
           '    time.sleep(0.25r)' % OUTPUT_LINES)


def build(data_dir, uri=None):
    """editor's worksheet shared with watcher, in the FileStorage of ``data_dir`` (or
    the database at ``uri``); their API tokens."""
    import transaction
    from plaster import get_settings

    from sagenb_pyramid import db_from_uri
    from sagenb_pyramid.acl import user_principal
    from sagenb_pyramid.auth.tokens import create_token
    from sagenb_pyramid.resources import ensure_root, index_shares
    from sagenb_pyramid.settings import prepare
    settings = dict(get_settings(DEV_INI, 'app:main'))
    prepare({'data_dir': data_dir}, settings)
    db = db_from_uri(uri or settings['zodbconn.uri'], 'unnamed', {})
    ensure_root(db)
    conn = db.open()
    root = conn.root()['sagenb']
    editor, watcher = root.add_user('editor'), root.add_user('watcher')
    ws = editor.create_worksheet('live')
    ws.collaborators.append(user_principal(watcher.id))
    index_shares(root, ws, [user_principal(watcher.id)], True)
    ws.add_cell('compute', PRINTER)
    tokens = create_token(root, editor), create_token(root, watcher)
    path = '/home/editor/%s/' % ws.__name__
    transaction.commit()
    conn.close()
    db.close()
    return tokens, path


class Pserve:
    def __init__(self, data_dir, env=None):
        self.port = free_port()
        env = dict(os.environ, SAGENB_WORKERS_SPARE='0', SAGENB_WORKERS_PRESTART='false',
                   **(env or {}))
        self.log = open(os.path.join(data_dir, 'pserve.log'), 'w')
        self.proc = subprocess.Popen(
            [os.path.join(BIN, 'pserve'), DEV_INI, 'http_port=%d' % self.port,
             'data_dir=' + data_dir], env=env, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True)
        wait_http(self.port, '/login')

    def stop(self):
        os.killpg(self.proc.pid, 9)
        self.proc.wait()
        self.log.close()


class Client:
    """JSON over one keep-alive connection with an API token."""

    def __init__(self, port, token):
        self.conn = http.client.HTTPConnection('127.0.0.1', port, timeout=120)
        self.headers = {'Authorization': 'Bearer ' + token, 'Accept': 'application/json',
                        'Content-Type': 'application/json'}

    def call(self, method, path, body=None):
        self.conn.request(method, path, body=json.dumps(body) if body is not None else None,
                          headers=self.headers)
        response = self.conn.getresponse()
        data = response.read()
        if response.status >= 300:
            raise RuntimeError('%s %s: %d %s' % (method, path, response.status, data[:300]))
        return json.loads(data)


def edits(editor, watcher, path, count):
    """Latencies (s) of ``count`` edits, from the acknowledgement and from the sending."""
    cell = editor.call('GET', path)['cells'][0]
    cell_id, version = cell['id'], cell['input_version']
    seen, stop = {}, threading.Event()
    since = watcher.call('GET', path)['version']

    def watch():
        nonlocal since
        while not stop.is_set():
            answer = watcher.call('GET', '%s?since=%d&wait=5' % (path, since))
            now = time.perf_counter()
            for c in answer['cells']:
                if c['id'] == cell_id and c['input'].startswith('# edit '):
                    seen.setdefault(int(c['input'].split()[2]), now)
            since = answer['version']

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    time.sleep(0.5)
    sent, acked = {}, {}
    for k in range(count):
        time.sleep(random.uniform(0.2, 0.4))
        sent[k] = time.perf_counter()
        answer = editor.call('PATCH', '%scells/%d' % (path, cell_id),
                             {'input': '# edit %d\n1 + 1' % k, 'base_version': version})
        acked[k] = time.perf_counter()
        version = answer['input_version']
    deadline = time.monotonic() + 10
    while len(seen) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join(timeout=10)
    missing = [k for k in range(count) if k not in seen]
    return ([seen[k] - acked[k] for k in seen], [seen[k] - sent[k] for k in seen], missing)


def outputs(editor, watcher, path):
    """Arrival minus printing time (s) of each line a Sage cell prints, at the
    watcher's cell poll; the first evaluation (Sage starting) is not timed."""
    cell_id = editor.call('GET', path)['cells'][1]['id']  # PRINTER
    warm = editor.call('POST', path + 'cells/', {'input': '1 + 1'})['id']
    done = editor.call('POST', '%scells/%d/evaluate' % (path, warm), {'wait': 60})
    if done.get('status') != 'done':
        raise RuntimeError('Sage did not evaluate 1 + 1: %s' % done)
    version = watcher.call('GET', '%scells/%d' % (path, cell_id))['version']
    editor.call('POST', '%scells/%d/evaluate' % (path, cell_id), {})
    arrived = {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        cell = watcher.call('GET', '%scells/%d?since=%d&wait=10' % (path, cell_id, version))
        now = time.time()
        version = cell['version']
        text = ''.join(o.get('text', '') for o in cell['outputs']
                       if o.get('output_type') == 'stream')
        for line in text.splitlines():
            number, printed = line.split()
            arrived.setdefault(int(number), now - float(printed))
        if cell['status'] not in ('queued', 'running'):
            break
    if len(arrived) != OUTPUT_LINES:
        raise RuntimeError('the watcher saw %d of %d lines' % (len(arrived), OUTPUT_LINES))
    return list(arrived.values())


def figures(values):
    ms = [v * 1000 for v in values]
    return {'n': len(ms), 'p50': pct(ms, 50), 'p95': pct(ms, 95), 'max': max(ms)}


def embedded(folder, count):
    data = os.path.join(folder, 'embedded')
    (editor_token, watcher_token), path = build(data)
    server = Pserve(data)
    try:
        editor, watcher = Client(server.port, editor_token), Client(server.port, watcher_token)
        ack, send, missing = edits(editor, watcher, path, count)
        out = outputs(editor, watcher, path)
    finally:
        server.stop()
    return ack, send, missing, out


def across_two(folder, names, uri_of, tokens, path, count):
    """The edits and outputs with the editor on one app server and the watcher on
    another, each ``pserve`` on the database ``uri_of(its folder)`` names."""
    editor_token, watcher_token = tokens
    apps = []
    try:
        for name in names:
            app_dir = os.path.join(folder, name)
            os.makedirs(app_dir)
            apps.append(Pserve(app_dir, {
                'SAGENB_ZODB_URI': uri_of(app_dir),
                'SAGENB_SECRET': SECRET, 'SAGENB_WORKERS_SERVER_NAME': name}))
        editor = Client(apps[0].port, editor_token)
        watcher = Client(apps[1].port, watcher_token)
        ack, send, missing = edits(editor, watcher, path, count)
        return ack, send, missing, outputs(editor, watcher, path)
    finally:
        for app in apps:
            app.stop()


def zeo(folder, count):
    data = os.path.join(folder, 'zeo')
    tokens, path = build(data)
    server = ZeoServer(pathlib.Path(data))
    try:
        return across_two(folder, ('app1', 'app2'), lambda app_dir: (
            'zeo://127.0.0.1:%d?blob_dir=%s/blob-cache&shared_blob_dir=false'
            % (server.port, app_dir)), tokens, path, count)
    finally:
        server.stop()


def postgres(folder, count):
    """Two app servers on PostgreSQL (RelStorage, blobs in the database; Debian's
    binaries, tests/support/postgres.py): commit news by polling, not invalidations."""
    from tests.support.postgres import PostgresServer, blob_cache_uri
    data = os.path.join(folder, 'postgres')
    os.makedirs(data)
    server = PostgresServer().start()
    try:
        server.create_database('live')
        tokens, path = build(data, blob_cache_uri(server, 'live', data))
        return across_two(folder, ('pg-app1', 'pg-app2'),
                          lambda app_dir: blob_cache_uri(server, 'live', app_dir),
                          tokens, path, count)
    finally:
        server.stop()


def peer(folder, count, python):
    """jupyter_server + jupyter-collaboration, run by ``python`` (bench/live_peer.py)."""
    root = os.path.join(folder, 'jupyter')
    os.makedirs(root)
    with open(os.path.join(root, 'live.ipynb'), 'w') as f:
        json.dump({'nbformat': 4, 'nbformat_minor': 5, 'metadata': {},
                   'cells': [{'cell_type': 'code', 'id': 'c0', 'metadata': {},
                              'execution_count': None, 'outputs': [],
                              'source': '1 + 1'}]}, f)
    port, token = free_port(), uuid.uuid4().hex
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=os.path.join(root, '.runtime'),
               JUPYTER_CONFIG_DIR=os.path.join(root, '.config'),
               JUPYTER_DATA_DIR=os.path.join(root, '.data'))
    log = open(os.path.join(folder, 'jupyter.log'), 'w')
    proc = subprocess.Popen(
        [python, '-m', 'jupyter_server', '--port=%d' % port, '--ip=127.0.0.1',
         '--no-browser', '--IdentityProvider.token=' + token, '--allow-root',
         '--ServerApp.root_dir=' + root], env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True, cwd=root)  # its .jupyter_ystore.db goes to the cwd
    try:
        wait_http(port, '/api/status?token=' + token)
        result = subprocess.run(
            [python, os.path.join(HERE, 'bench', 'live_peer.py'), str(port), token,
             'live.ipynb', str(count)], capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            raise RuntimeError('bench/live_peer.py failed: ' + result.stderr[-2000:])
        answer = json.loads(result.stdout.strip().splitlines()[-1])
        version = subprocess.run([python, '-c', 'import jupyter_collaboration as j; '
                                  'print(j.__version__)'], capture_output=True,
                                 text=True).stdout.strip()
    finally:
        os.killpg(proc.pid, 9)
        proc.wait()
        log.close()
    return answer['latencies'], answer['missing'], version


def row(label, values):
    f = figures(values)
    return '| %s | %d | %.1f | %.1f | %.1f |' % (label, f['n'], f['p50'], f['p95'], f['max'])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--edits', type=int, default=60, help='edits timed per setup')
    parser.add_argument('--peer-python', default=os.path.join(HERE, '.venv-peer', 'bin',
                                                              'python'),
                        help="the python of a venv with jupyter-collaboration")
    args = parser.parse_args()
    load_before = os.getloadavg()
    rows = []
    folder = tempfile.mkdtemp(prefix='bench-live-')
    try:
        for name, run in (('one app server, FileStorage', embedded),
                          ('ZEO, editor on app 1, watcher on app 2', zeo),
                          ('PostgreSQL, editor on app 1, watcher on app 2', postgres)):
            ack, send, missing, out = run(folder, args.edits)
            print(name, 'edit from ack', figures(ack), 'from send', figures(send),
                  'superseded before seen', len(missing), 'outputs', figures(out),
                  flush=True)
            rows += [row('%s: edit, from the PATCH answered' % name, ack),
                     row('%s: edit, from the PATCH sent' % name, send),
                     row('%s: a printed line, from Sage printing it' % name, out)]
        if os.path.exists(args.peer_python):
            latencies, missing, version = peer(folder, args.edits, args.peer_python)
            print('jupyter-collaboration', version, figures(latencies), 'missing', missing,
                  flush=True)
            rows.append(row('jupyter_server + jupyter-collaboration %s (Yjs websocket): '
                            'edit, from the update sent' % version, latencies))
        else:
            print('peer: %s not found (make bench-live makes it)' % args.peer_python)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print()
    print('| change seen by the other client | n | p50 (ms) | p95 (ms) | max (ms) |')
    print('|---|---|---|---|---|')
    for line in rows:
        print(line)
    print()
    print('machine: %d cores, %s; load average %.1f before, %.1f after (1 min)' % (
        os.cpu_count(), ' '.join(os.uname()[0:3:2]), load_before[0], os.getloadavg()[0]))


if __name__ == '__main__':
    main()
