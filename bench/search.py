"""Search benchmark (issue 20): the full-text index of search.py on a real FileStorage.

Builds ``--n`` worksheets (default 10,000) of ``--cells`` cells (default 50) in a new
FileStorage, through the application's own objects (so the index is written by the
same before-commit hook as in the server), then prints:

- indexing: the time the hook spent indexing while the worksheets were committed, and
  the time to build the whole index again from scratch (what the evolve step costs);
- the cost of one edit of a 50-cell worksheet (the commit, and the reindex in it), for
  an edit that adds a word and one that changes no word;
- query latency through the application (``GET /search`` with a token, WebTest) for a
  common word, a rare word, several words and a prefix, in each scope;
- storage: Data.fs after a pack, and the index's records alone;
- concurrency: ``--students`` transactions (default 200), each editing a worksheet of
  its own and committing at once, retried up to 5 times (pyramid_retry's attempts), for
  edits that add no word, a word common elsewhere, a word of their own, and the same
  new word for all (a teacher's "type homework7");
- and, in the same run, jupyter_server's contents API listing 2,000 notebooks
  (``GET /api/contents/``), beside the listing of a home of 2,000 worksheets here.

Usage: ``.venv/bin/python bench/search.py [--n 10000] [--students 200]``
(``--n 1000`` for a quick run; ``--peer-notebooks 0`` skips jupyter_server, which
``make bench`` installs).
"""
import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import transaction  # noqa: E402
from ZODB.POSException import ConflictError  # noqa: E402

from common import free_port, wait_http  # noqa: E402

COMMON = ('x y z n k i f g p q r t a b c m var plot show def return for in range if else '
          'print len sum list matrix vector QQ ZZ RR CC integrate diff sin cos exp log sqrt '
          'solve factor expand simplify limit series taylor lambda graph points line '
          'polynomial ring PolynomialRing GF EllipticCurve NumberField the of and to is a '
          'we let compute result show_plot latex html table random_matrix det rank kernel '
          'eigenvalues charpoly roots').split()


def cell_text(rng, rare):
    words = [rng.choice(COMMON) for _ in range(7)] + [rare(rng) for _ in range(2)]
    ops = ['+', '*', '(', ')', ', ', ' = ', '^2', '.', ' ']
    return ''.join(w + rng.choice(ops) for w in words)


def make_rare(vocabulary=60_000):
    # A long tail (Zipf-like): most rare words are seldom used, a few often.
    weights = [1 / (i + 1) for i in range(vocabulary)]
    population = ['w%05d' % i for i in range(vocabulary)]
    cumulative = []
    total = 0
    for w in weights:
        total += w
        cumulative.append(total)

    def rare(rng):
        return rng.choices(population, cum_weights=cumulative, k=1)[0]
    return rare


def notebook(data_dir):
    from plaster import get_settings
    from sagenb_pyramid import database, main
    ini = os.path.join(HERE, 'testing.ini')
    settings = dict(get_settings(ini, 'app:main'))
    settings['sagenb.workers.max_per_user'] = '0'
    app = main({'__file__': ini, 'here': HERE, 'data_dir': data_dir}, **settings)
    return app, database(app.registry)


def in_txn(db, work):
    from sagenb_pyramid.resources import in_transaction
    return in_transaction(db, work)


def build(db, n, cells, big, rng, rare):
    """``n`` worksheets: ``big`` of them owned by ``big``, the rest by users of 20
    each.  Returns (seconds in all, seconds indexing in the before-commit hook)."""
    from sagenb_pyramid import search
    spent = [0.0]
    real_flush = search._flush

    def timed_flush(root, pending):
        started = time.perf_counter()
        real_flush(root, pending)
        spent[0] += time.perf_counter() - started
    search._flush = timed_flush
    try:
        started = time.perf_counter()
        in_txn(db, lambda root: root.add_user('big'))
        made = 0
        owners = []
        batch = 100
        while made < n:
            def work(root, made=made):
                count = min(batch, n - made)
                for i in range(count):
                    number = made + i
                    if number < big:
                        owner = root.user_by_login('big')
                    else:
                        login = 'u%04d' % ((number - big) // 20)
                        owner = root.user_by_login(login) or root.add_user(login)
                    ws = owner.create_worksheet('Sheet %d %s' % (number, rare(rng)))
                    ws.delete_all_cells()
                    for _ in range(cells):
                        ws.add_cell('compute', cell_text(rng, rare))
                    owners.append(owner.login)
                return count
            made += in_txn(db, work)
            if made % 1000 == 0:
                print('  %d worksheets, %.0f s' % (made, time.perf_counter() - started),
                      flush=True)
        return time.perf_counter() - started, spent[0]
    finally:
        search._flush = real_flush


def rebuild_seconds(db, sample):
    """Seconds to index ``sample`` worksheets from a cold cache into a new index (the
    evolve step's work per worksheet), in a transaction that is then aborted."""
    from sagenb_pyramid import search
    from sagenb_pyramid.resources import get_root
    tm = transaction.TransactionManager(explicit=True)
    conn = db.open(transaction_manager=tm)
    try:
        conn.cacheMinimize()
        tm.begin()
        root = get_root(conn.root())
        root.search_index = search.SearchIndex()
        started = time.perf_counter()
        done = 0
        for user in root.users_by_id.values():
            for worksheet in user.worksheets():
                search.reindex_worksheet(root, worksheet)
                done += 1
            if done >= sample:
                break
        seconds = time.perf_counter() - started
        tm.abort()
        return done, seconds
    finally:
        conn.close()


def edit_costs(db, rounds=100):
    """(commit ms, reindex ms) medians for an edit adding a new word, and one adding
    none, of one cell of a 50-cell worksheet."""
    from sagenb_pyramid import search
    from sagenb_pyramid.resources import get_root
    tm = transaction.TransactionManager(explicit=True)
    conn = db.open(transaction_manager=tm)
    results = {}
    try:
        tm.begin()
        ws = get_root(conn.root()).user_by_login('u0000')['0']
        tm.commit()
        for kind in ('new word', 'no new word'):
            commits, reindexes = [], []
            for i in range(rounds):
                tm.begin()
                cell = ws.ordered_cells()[i % len(ws.cell_order)]
                base = cell.input.split('#')[0]
                cell.input = base + ('# edit%d' % i if kind == 'new word' else ' ')
                ws.touch()
                started = time.perf_counter()
                search.reindex_worksheet(get_root(conn.root()), ws)
                reindexes.append(time.perf_counter() - started)
                started = time.perf_counter()
                tm.commit()  # reindexes again in the hook: now nothing changes
                commits.append(time.perf_counter() - started)
            results[kind] = (statistics.median(commits) * 1000,
                             statistics.median(reindexes) * 1000)
    finally:
        conn.close()
    return results


def query_latency(app, token, queries, repeat=15):
    import webtest
    client = webtest.TestApp(app, extra_environ={'HTTP_HOST': 'localhost:80'})
    headers = {'Authorization': 'Bearer ' + token}
    rows = []
    for q, scope in queries:
        times = []
        total = None
        for _ in range(repeat):
            started = time.perf_counter()
            res = client.get('/search', params={'q': q, 'scope': scope}, headers=headers)
            times.append(time.perf_counter() - started)
            total = res.json['total']
        rows.append((q, scope, total, times[0] * 1000, statistics.median(times[1:]) * 1000))
    return rows


def listing_latency(app, token, repeat=10):
    import webtest
    client = webtest.TestApp(app, extra_environ={'HTTP_HOST': 'localhost:80'})
    headers = {'Authorization': 'Bearer ' + token}
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        res = client.get('/home/big/', headers=headers)
        times.append(time.perf_counter() - started)
    return len(res.json['worksheets']), times[0] * 1000, statistics.median(times[1:]) * 1000


def index_bytes(db):
    """The bytes of the index's records (postings buckets, the docs tree's buckets,
    the documents' word lists)."""
    from sagenb_pyramid.resources import get_root
    conn = db.open()
    try:
        index = get_root(conn.root()).search_index
        storage = db.storage
        total = 0
        buckets = 0
        for tree in index.shards + (index.readers, index.docs):
            bucket = tree._firstbucket
            while bucket is not None:
                if bucket._p_oid is not None:
                    total += len(storage.load(bucket._p_oid)[0])
                    buckets += 1
                bucket = bucket._next
        for doc in index.docs.values():
            total += len(storage.load(doc._p_oid)[0])
        return total, buckets, sum(len(shard) for shard in index.shards)
    finally:
        transaction.abort()
        conn.close()


def concurrent_edits(db, students, kind, attempts=5):
    """``students`` transactions, each on a worksheet of its own (u<k>/0), prepared
    then committed at once; each retried up to ``attempts`` times.  Returns (conflicts,
    failures, max attempts used, seconds)."""
    from sagenb_pyramid.resources import get_root
    barrier = threading.Barrier(students)
    stats = {'conflicts': 0, 'failed': 0, 'max': 0}
    lock = threading.Lock()
    tag = uuid.uuid4().hex[:6]

    def student(k):
        tm = transaction.TransactionManager(explicit=True)
        conn = db.open(transaction_manager=tm)
        try:
            for attempt in range(1, attempts + 1):
                tm.begin()
                ws = get_root(conn.root()).user_by_login('u%04d' % k)['1']
                text = {'no new word': 'plot(sin(x))',
                        'a word common elsewhere': 'lambda_%s' % tag,
                        'a word of its own': 'mine%s_%d' % (tag, k),
                        'the same new word': 'homework%s' % tag}[kind]
                ws.add_cell('compute', text)
                if attempt == 1:
                    barrier.wait(timeout=60)
                try:
                    tm.commit()
                    with lock:
                        stats['max'] = max(stats['max'], attempt)
                    return
                except ConflictError:
                    tm.abort()
                    with lock:
                        stats['conflicts'] += 1
                    time.sleep(random.random() * 0.05 * attempt)
            with lock:
                stats['failed'] += 1
        finally:
            conn.close()

    if kind == 'a word common elsewhere':
        # The word is in the index already, for other documents than these.
        def seed(root):
            for i in range(students, students + 200):
                user = root.user_by_login('u%04d' % i)
                if user is not None:
                    user['1'].add_cell('compute', 'lambda_%s' % tag)
        in_txn(db, seed)
    threads = [threading.Thread(target=student, args=(k,)) for k in range(students)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return stats['conflicts'], stats['failed'], stats['max'], time.perf_counter() - started


def jupyter_listing(folder, count, cells, rng, rare, repeat=10):
    """Median ms of jupyter_server's ``GET /api/contents/`` over ``count`` notebooks."""
    import http.client
    root = os.path.join(folder, 'jupyter')
    os.makedirs(os.path.join(root, 'runtime'))
    for i in range(count):
        nb = {'cells': [{'cell_type': 'code', 'source': cell_text(rng, rare), 'metadata': {},
                         'outputs': [], 'execution_count': None} for _ in range(cells)],
              'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5}
        with open(os.path.join(root, 'nb%04d.ipynb' % i), 'w') as f:
            json.dump(nb, f)
    port = free_port()
    token = uuid.uuid4().hex
    proc = subprocess.Popen(
        [sys.executable, '-m', 'jupyter_server', '--port=%d' % port, '--ip=127.0.0.1',
         '--no-browser', '--ServerApp.token=' + token, '--ServerApp.root_dir=' + root,
         '--allow-root'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, env=dict(os.environ, JUPYTER_RUNTIME_DIR=os.path.join(
            root, 'runtime')))
    try:
        wait_http(port, '/api/status?token=' + token)
        times = []
        for _ in range(repeat):
            conn = http.client.HTTPConnection('127.0.0.1', port, timeout=60)
            started = time.perf_counter()
            conn.request('GET', '/api/contents/?content=1',
                         headers={'Authorization': 'token ' + token})
            body = conn.getresponse().read()
            times.append(time.perf_counter() - started)
            conn.close()
        listed = len(json.loads(body)['content'])
        return listed, times[0] * 1000, statistics.median(times[1:]) * 1000
    finally:
        os.killpg(proc.pid, 9)
        proc.wait()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--n', type=int, default=10_000, help='worksheets (default 10000)')
    parser.add_argument('--cells', type=int, default=50, help='cells each (default 50)')
    parser.add_argument('--students', type=int, default=200,
                        help='concurrent editors (default 200)')
    parser.add_argument('--peer-notebooks', type=int, default=2000,
                        help="notebooks jupyter_server lists (0: skip it)")
    parser.add_argument('--seed', type=int, default=1)
    parser.add_argument('--rounds', type=int, default=3,
                        help='runs of each concurrent edit (default 3)')
    args = parser.parse_args(argv)
    big = min(2000, args.n // 5)
    students = min(args.students, (args.n - big) // 20 - 1)
    rng = random.Random(args.seed)
    rare = make_rare()
    folder = tempfile.mkdtemp(prefix='sagenb-search-bench-')
    try:
        app, db = notebook(os.path.join(folder, 'data'))
        db.setPoolSize(max(db.getPoolSize(), students + 10))
        print('building %d worksheets of %d cells ...' % (args.n, args.cells), flush=True)
        seconds, indexing = build(db, args.n, args.cells, big, rng, rare)
        print('built in %.0f s, of which the index hook %.1f s (%.2f ms a worksheet)'
              % (seconds, indexing, indexing * 1000 / args.n))
        done, secs = rebuild_seconds(db, min(args.n, 1000))
        print('indexing from a cold cache (the evolve step): %d worksheets in %.1f s, '
              '%.1f ms each, %.0f s for all %d' % (done, secs, secs * 1000 / done,
                                                  secs * args.n / done, args.n))
        for kind, (commit, reindex) in edit_costs(db).items():
            print('one edit of a %d-cell worksheet (%s): reindex %.2f ms, commit %.2f ms'
                  % (args.cells, kind, reindex, commit))
        db.pack()
        size = os.path.getsize(os.path.join(folder, 'data', 'Data.fs'))
        index_size, buckets, entries = index_bytes(db)
        print('storage after pack: Data.fs %.0f MB; the index %.0f MB (%d postings in %d '
              'buckets)' % (size / 1e6, index_size / 1e6, entries, buckets))

        def token(login):
            from sagenb_pyramid.auth.tokens import create_token
            return in_txn(db, lambda root: create_token(root, root.user_by_login(login)))

        from sagenb_pyramid import search

        def share(root):
            # u0000 sees 200 worksheets of others (as viewer), e.g. a class's.
            me = root.user_by_login('u0000')
            for i in range(1, 11):
                for ws in root.user_by_login('u%04d' % i).worksheets():
                    ws.viewers.append('userid:' + me.id)
                    search.changed(ws)
        in_txn(db, share)
        queries = [('x', 'mine'), ('x', 'shared'), ('x', 'all'), ('matrix plot', 'all'),
                   ('w00000', 'all'), ('w05000', 'all'), ('w59999', 'all'),
                   ('eigenvalues det rank', 'mine'), ('poly*', 'all'), ('nothingthere', 'all')]
        print('\nGET /search as u0000 (owns 20, 200 shared with them), %d worksheets:'
              % args.n)
        print('  %-22s %-7s %7s %10s %10s' % ('q', 'scope', 'total', 'first ms', 'median ms'))
        for q, scope, total, first, median in query_latency(app, token('u0000'), queries):
            print('  %-22s %-7s %7d %10.1f %10.1f' % (q, scope, total, first, median))
        listed, first, median = listing_latency(app, token('big'))
        print('\nGET /home/big/ (JSON) listing %d worksheets: first %.0f ms, median %.0f ms'
              % (listed, first, median))
        print('\n%d students each adding a cell at once (retried up to 5 times):'
              % students)
        for kind in ('no new word', 'a word common elsewhere', 'a word of its own',
                     'the same new word'):
            for _ in range(args.rounds):
                conflicts, failed, most, secs = concurrent_edits(db, students, kind)
                print('  %-24s %4d ConflictErrors, %d out of retries, at most %d '
                      'attempts, %.1f s' % (kind, conflicts, failed, most, secs), flush=True)
        db.close()
        if args.peer_notebooks:
            listed, first, median = jupyter_listing(folder, args.peer_notebooks, args.cells,
                                                    rng, rare)
            print('\njupyter_server GET /api/contents/ listing %d notebooks: first %.0f ms, '
                  'median %.0f ms' % (listed, first, median))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == '__main__':
    main()
