"""Sharing and publishing at scale (issue 20): our listings against jupyter_server's
contents API, side by side, in one run.

    .venv/bin/python bench/collab.py [--quick] [--requests 30]

Builds the data straight into a FileStorage with the project's resources (no HTTP), then
starts ``pserve development.ini`` on 127.0.0.1 (no Sage process: nothing is evaluated)
and measures through HTTP:

- ``GET /home/reader/?state=shared`` (JSON) for a user in 20 groups with 2,000 of the
  10,000 worksheets shared with them (half through the groups, half directly);
- ``GET /pub/`` (JSON) with 10,000 publications: the first page, a deep page (the
  last one), and a ``q`` search matching 1 in 100;
- ``GET /search?q=...`` over 10,000 worksheets of 50 cells, when this branch has
  ``sagenb_pyramid.search`` (else it says so);
- jupyter_server's ``GET /api/contents/<dir>`` listing a directory of 2,000 notebooks.

Each is measured cold (a fresh server process: its first request, with an empty ZODB
cache; the OS page cache stays warm) and warm (median and p95 of ``--requests`` more on
one keep-alive connection).  ``--quick`` builds a tenth of everything.  Needs
``jupyter_server`` and ``psutil`` (``make bench`` installs them).
"""
import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from urllib.parse import quote

import psutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import free_port, pct, wait_http  # noqa: E402

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
DEV_INI = os.path.join(HERE, 'development.ini')
GROUPS = 20
OWNERS = 100
BATCH = 250  # worksheets per transaction while building
SEARCH_CELLS = 50
WORDS = ('integral', 'matrix', 'prime', 'graph', 'series', 'group', 'ring', 'field',
         'plot', 'limit', 'vector', 'kernel', 'lattice', 'module', 'curve', 'sum')


def open_db(data_dir):
    from plaster import get_settings
    from sagenb_pyramid import db_from_uri
    from sagenb_pyramid.resources import ensure_root
    from sagenb_pyramid.settings import prepare
    settings = dict(get_settings(DEV_INI, 'app:main'))
    prepare({'data_dir': data_dir}, settings)
    db = db_from_uri(settings['zodbconn.uri'], 'unnamed', {})
    ensure_root(db)
    return db


def topic(i):
    return 'topic%03d' % (i % 100)


def build(data_dir, worksheets, shared, cells=2, publish=True):
    """``worksheets`` worksheets of ``cells`` cells among OWNERS owners; ``reader`` in
    GROUPS groups has ``shared`` of them shared (half through a group); every worksheet
    is published when ``publish`` (one in ten with ``auto``), a second apart."""
    import transaction

    from sagenb_pyramid.acl import group_principal, user_principal
    from sagenb_pyramid.resources import index_shares
    db = open_db(data_dir)
    conn = db.open()
    root = conn.root()['sagenb']
    reader = root.add_user('reader')
    groups = [root.add_group('class-%02d' % g) for g in range(GROUPS)]
    for group in groups:
        reader.group_ids.add(group.id)
    owners = [root.add_user('owner%03d' % o) for o in range(OWNERS)]
    transaction.commit()
    started = time.time() - worksheets
    for i in range(worksheets):
        owner = owners[i % OWNERS]
        ws = owner.create_worksheet('Worksheet %d on %s' % (i, topic(i)))
        first = ws.cells[str(ws.cell_order[0])]
        first.input = 'x = var("x"); integrate(sin(x)^%d, x)' % (i % 7)
        for c in range(1, cells):
            ws.add_cell('compute' if c % 5 else 'text', '%s %s %d: f(%d) = %d^2' % (
                WORDS[(i + c) % len(WORDS)], WORDS[(i * 7 + c) % len(WORDS)], i, c, c))
        if i < shared:
            principal = group_principal(groups[i % GROUPS].id) if i % 2 else \
                user_principal(reader.id)
            (ws.collaborators if i % 3 == 0 else ws.viewers).append(principal)
            index_shares(root, ws, [principal], True)
        if publish:
            root.publications.publish(ws, auto=i % 10 == 0, when=started + i)
        if i % BATCH == BATCH - 1:
            transaction.commit()
            conn.cacheMinimize()
    transaction.commit()
    conn.close()
    db.close()


class Sagenb:
    name = 'sagenb-pyramid'

    def __init__(self, data_dir, token=None):
        self.port = free_port()
        self.token = token
        env = dict(os.environ, SAGENB_WORKERS_SPARE='0', SAGENB_WORKERS_PRESTART='false')
        self.proc = subprocess.Popen(
            [os.path.join(BIN, 'pserve'), DEV_INI, 'http_port=%d' % self.port,
             'data_dir=' + data_dir],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        wait_http(self.port, '/login')

    def headers(self):
        hdrs = {'Accept': 'application/json'}
        if self.token:
            hdrs['Authorization'] = 'Bearer ' + self.token
        return hdrs

    def stop(self):
        os.killpg(self.proc.pid, 9)
        self.proc.wait()


class Jupyter:
    name = 'jupyter_server'

    def __init__(self, root_dir):
        self.port = free_port()
        self.token = uuid.uuid4().hex
        self.proc = subprocess.Popen(
            [sys.executable, '-m', 'jupyter_server', '--port=%d' % self.port,
             '--ip=127.0.0.1', '--no-browser', '--ServerApp.token=' + self.token,
             '--ServerApp.root_dir=' + root_dir, '--allow-root'],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            env=dict(os.environ, JUPYTER_RUNTIME_DIR=os.path.join(root_dir, '.runtime')))
        wait_http(self.port, '/api/status?token=' + self.token)

    def headers(self):
        return {'Authorization': 'token ' + self.token}

    def stop(self):
        os.killpg(self.proc.pid, 9)
        self.proc.wait()


def timed_get(conn, path, headers):
    started = time.perf_counter()
    conn.request('GET', path, headers=headers)
    response = conn.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - started
    if response.status != 200:
        raise RuntimeError('GET %s: %d %s' % (path, response.status, body[:300]))
    return elapsed, body


def measure(start, path, n, check):
    """Cold (a fresh server's first request) and warm figures of ``GET path``;
    ``check(answer)`` says what the answer holds (and fails when it is wrong)."""
    server = start()
    try:
        conn = http.client.HTTPConnection('127.0.0.1', server.port, timeout=300)
        cold, body = timed_get(conn, path, server.headers())
        what = check(json.loads(body))
        warm = [timed_get(conn, path, server.headers())[0] for _ in range(n)]
        conn.close()
    finally:
        server.stop()
    return {'cold': cold * 1000, 'median': statistics.median(warm) * 1000,
            'p95': pct(warm, 95) * 1000, 'bytes': len(body), 'holds': what}


def expect(condition, message):
    if not condition:
        raise RuntimeError('unexpected answer: ' + message)


def shared_listing(folder, scale, n):
    worksheets, shared = 10_000 // scale, 2_000 // scale
    data = os.path.join(folder, 'sagenb')
    started = time.perf_counter()
    build(data, worksheets, shared)
    print('built %d worksheets (%d shared, %d published) in %.0f s' % (
        worksheets, shared, worksheets, time.perf_counter() - started), flush=True)
    admin = [os.path.join(BIN, 'sagenb-admin'), DEV_INI, 'data_dir=' + data]
    token = subprocess.run(admin + ['token', 'reader'], text=True, check=True,
                           capture_output=True).stdout.strip().splitlines()[-1]

    def rows(answer):
        found = answer['worksheets']
        expect(len(found) == shared, '%d shared worksheets listed' % len(found))
        return '%d worksheets' % len(found)

    def pub(answer, total=worksheets, count=50):
        expect(answer['total'] == total and len(answer['publications']) == count,
               'total %s, %d rows' % (answer['total'], len(answer['publications'])))
        return '%d of %d' % (count, total)

    last = -(-worksheets // 50)
    tail = worksheets - (last - 1) * 50
    results = {}
    figures = (
        ('GET /home/reader/?state=shared (%d shared, %d groups)' % (shared, GROUPS),
         lambda: Sagenb(data, token), '/home/reader/?state=shared', rows),
        ('GET /pub/ first page (50 of %d)' % worksheets, lambda: Sagenb(data),
         '/pub/', pub),
        ('GET /pub/?page=%d (the last page)' % last, lambda: Sagenb(data),
         '/pub/?page=%d' % last, lambda a: pub(a, count=tail)),
        ('GET /pub/?q=topic042 (1 in 100 match)', lambda: Sagenb(data),
         '/pub/?q=topic042',
         lambda a: pub(a, total=worksheets // 100, count=min(50, worksheets // 100))),
    )
    for label, start, path, check in figures:
        results[label] = measure(start, path, n, check)
        print(label, results[label], flush=True)
    return results


def search(folder, scale, n):
    """``GET /search?q=`` over 10,000 worksheets of 50 cells (when search.py is here)."""
    try:
        import sagenb_pyramid.search  # noqa: F401
    except ImportError:
        print('search: not available on this branch', flush=True)
        return {}
    worksheets = 10_000 // scale
    data = os.path.join(folder, 'search')
    started = time.perf_counter()
    build(data, worksheets, 0, cells=SEARCH_CELLS, publish=False)
    print('built %d worksheets of %d cells in %.0f s' % (
        worksheets, SEARCH_CELLS, time.perf_counter() - started), flush=True)
    admin = [os.path.join(BIN, 'sagenb-admin'), DEV_INI, 'data_dir=' + data]
    # search.py keeps its index as worksheets change, so the build above fed it; if it
    # did not, the check below says so rather than timing an empty index.
    token = subprocess.run(admin + ['token', 'owner000'], text=True, check=True,
                           capture_output=True).stdout.strip().splitlines()[-1]

    def check(answer):
        expect(answer['total'] > 0, 'no result for a word of its own worksheets')
        return '%d results' % answer['total']

    label = 'GET /search?q=lattice&scope=all (%d worksheets of %d cells)' % (
        worksheets, SEARCH_CELLS)
    result = measure(lambda: Sagenb(data, token), '/search?q=lattice&scope=all', n, check)
    print(label, result, flush=True)
    return {label: result}


def contents(folder, scale, n):
    notebooks = 2_000 // scale
    root_dir = os.path.join(folder, 'jupyter')
    target = os.path.join(root_dir, 'class')
    os.makedirs(target)
    for i in range(notebooks):
        nb = {'nbformat': 4, 'nbformat_minor': 5,
              'metadata': {'kernelspec': {'name': 'sagemath', 'display_name': 'SageMath',
                                          'language': 'sage'}},
              'cells': [{'cell_type': 'code', 'id': 'c%d' % c, 'metadata': {},
                         'execution_count': None, 'outputs': [],
                         'source': 'integrate(sin(x)^%d, x)' % c} for c in range(2)]}
        with open(os.path.join(target, 'Worksheet %d on %s.ipynb' % (i, topic(i))),
                  'w') as f:
            json.dump(nb, f)

    def check(answer):
        expect(len(answer['content']) == notebooks, '%d entries' % len(answer['content']))
        return '%d notebooks' % notebooks

    label = 'jupyter_server GET /api/contents/class (%d notebooks)' % notebooks
    result = measure(lambda: Jupyter(root_dir), '/api/contents/' + quote('class'), n,
                     check)
    print(label, result, flush=True)
    return {label: result}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--quick', action='store_true', help='a tenth of the data')
    parser.add_argument('--requests', type=int, default=30, help='warm requests each')
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for part in (shared_listing, search, contents):
            results.update(part(folder, scale, args.requests))
    print()
    print('| request | cold (ms) | warm median (ms) | warm p95 (ms) | answer |')
    print('|---|---|---|---|---|')
    for label, r in results.items():
        print('| %s | %.0f | %.1f | %.1f | %s, %d kB |' % (
            label, r['cold'], r['median'], r['p95'], r['holds'], r['bytes'] // 1024))
    print()
    print('machine: %d cores, %.0f GB, %s; %d warm requests each' % (
        psutil.cpu_count(), psutil.virtual_memory().total / 2 ** 30,
        ' '.join(os.uname()[0:3:2]), args.requests))


if __name__ == '__main__':
    main()
