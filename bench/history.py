"""History benchmark (issue 21): what automatic revisions cost on a real FileStorage.

- storage of ``--edits`` edits (default 10,000), one transaction each as the server
  commits them, of a worksheet of ``--cells`` cells (default 30, each with a 300-byte
  output), by 3 authors, one edit every ``--spacing`` seconds of the history's clock
  (default 3 s: an afternoon of steady typing; ``--spacing 500`` spreads them over two
  months, so thinning works): Data.fs after a pack, beside the same edits without
  history (``sagenb.history.interval`` 0), and the revisions and cell snapshots kept;
- the time to take one revision, and to note an edit that takes none (the hot path);
- opening the history of a worksheet with ``--revisions`` revisions (default 1,000)
  through the application (``GET .../revisions`` with a token, WebTest): cold (a new
  application on the same file) and warm, and the diff of the oldest and the newest.

Usage: ``.venv/bin/python bench/history.py [--edits 10000] [--revisions 1000]``.
"""
import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, HERE)


T0 = 1_800_000_000.0


def notebook(data_dir, interval):
    from plaster import get_settings
    from sagenb_pyramid import database, main
    ini = os.path.join(HERE, 'testing.ini')
    settings = dict(get_settings(ini, 'app:main'))
    settings['sagenb.workers.max_per_user'] = '0'
    settings['sagenb.history.interval'] = str(interval)
    app = main({'__file__': ini, 'here': HERE, 'data_dir': data_dir}, **settings)
    return app, database(app.registry)


def close(app, db):
    app.registry.workers.shutdown()
    db.close()


def in_txn(db, work):
    from sagenb_pyramid.resources import in_transaction
    return in_transaction(db, work)


def setup(db, cells):
    def work(root):
        from sagenb_pyramid.auth.tokens import create_token
        users = [root.add_user(name) for name in ('olivia', 'carl', 'greta')]
        ws = users[0].create_worksheet('bench')
        first = ws.ordered_cells()[0]
        for k in range(cells):
            cell = first if k == 0 else ws.add_cell('compute')
            cell.input = 'x%d = %d\nprint(x%d)' % (k, k, k)
            cell.output.update('done', [{'output_type': 'stream', 'name': 'stdout',
                                         'text': 'o' * 300}], execution_count=k)
        ws.collaborators.extend('userid:' + u.id for u in users[1:])
        return [u.id for u in users], create_token(root, users[0])
    return in_txn(db, work)


def edits(data_dir, n, cells, spacing, interval, timings=None):
    from sagenb_pyramid.services import history
    app, db = notebook(data_dir, interval)
    user_ids, _ = setup(db, cells)
    rules = history.Rules(interval)
    rng = random.Random(1)
    for k in range(n):
        now = T0 + k * spacing
        author = user_ids[(k // 20) % 3]  # bursts of 20 edits by one author

        def work(root, k=k, now=now, author=author):
            ws = root.user_by_login('olivia')['0']
            cell = ws.ordered_cells()[rng.randrange(cells)]
            cell.input = cell.input + ('\n# edit %d' % k if k % 10 == 0 else 'x')
            ws.touch()
            started = time.perf_counter()
            made = history.note_edit(ws, author, rules, now)
            if timings is not None:
                timings['take' if made is not None else 'note'].append(
                    time.perf_counter() - started)
        in_txn(db, work)

    def count(root):
        revisions = root.user_by_login('olivia')['0'].revisions
        if revisions is None:
            return 0, 0, 0
        snaps = {s._p_oid for r in revisions.values() for s in (r.cells or ())}
        outputs = {s.output._p_oid for r in revisions.values() for s in (r.cells or ())}
        return len(revisions), len(snaps), len(outputs)
    kept = in_txn(db, count)
    db.pack()
    size = os.path.getsize(os.path.join(data_dir, 'Data.fs'))
    close(app, db)
    return size, kept


def open_history(data_dir, n_revisions, cells):
    from sagenb_pyramid.services import history
    import webtest
    app, db = notebook(data_dir, 60)
    _, token = setup(db, cells)
    rules = history.Rules(60, keep_all_hours=10 ** 6)  # keep them all
    for k in range(n_revisions):
        def work(root, k=k):
            ws = root.user_by_login('olivia')['0']
            cell = ws.ordered_cells()[k % cells]
            cell.input += '\n# %d' % k
            history.take(ws, [ws.owner_id], 'auto', rules, T0 + 61 * k)
        in_txn(db, work)
    close(app, db)
    results = {}
    for label in ('cold', 'warm1', 'warm2', 'warm3'):
        if label == 'cold':
            app, db = notebook(data_dir, 60)
            client = webtest.TestApp(app, extra_environ={'HTTP_HOST': 'localhost:80'})
            headers = {'Authorization': 'Bearer ' + token}
        started = time.perf_counter()
        answer = client.get('/home/olivia/0/revisions', headers=headers).json
        results[label] = time.perf_counter() - started
    assert len(answer['revisions']) == n_revisions
    first, last = answer['revisions'][0]['id'], answer['revisions'][-1]['id']
    started = time.perf_counter()
    diff = client.get('/home/olivia/0/revisions/%s/diff/%s' % (first, last),
                      headers=headers).json
    results['diff'] = time.perf_counter() - started
    results['diff_cells'] = len(diff['cells'])
    started = time.perf_counter()
    client.get('/home/olivia/0/revisions/%s' % last, headers=headers)
    results['one'] = time.perf_counter() - started
    close(app, db)
    return results


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--edits', type=int, default=10_000)
    parser.add_argument('--cells', type=int, default=30)
    parser.add_argument('--spacing', type=float, default=3.0)
    parser.add_argument('--revisions', type=int, default=1000)
    args = parser.parse_args()
    top = tempfile.mkdtemp(prefix='bench-history-')
    try:
        timings = {'take': [], 'note': []}
        started = time.perf_counter()
        with_size, (revs, snaps, outputs) = edits(os.path.join(top, 'with'), args.edits, args.cells,
                                         args.spacing, 60, timings)
        elapsed = time.perf_counter() - started
        without_size, _ = edits(os.path.join(top, 'without'), args.edits, args.cells,
                                args.spacing, 0)
        print('%d edits of a %d-cell worksheet, one every %g s (%.1f h), 3 authors, '
              '%.0f s to run' % (args.edits, args.cells, args.spacing,
                                 args.edits * args.spacing / 3600, elapsed))
        print('  revisions kept: %d, cell snapshots: %d, output snapshots: %d'
              % (revs, snaps, outputs))
        print('  Data.fs after pack: %.2f MB with history, %.2f MB without: %.1f kB a '
              'revision' % (with_size / 1e6, without_size / 1e6,
                            (with_size - without_size) / 1e3 / max(revs, 1)))
        for kind in ('take', 'note'):
            values = timings[kind]
            if values:
                print('  %s: %d, median %.2f ms, max %.2f ms' % (
                    kind, len(values), statistics.median(values) * 1e3, max(values) * 1e3))
        results = open_history(os.path.join(top, 'open'), args.revisions, args.cells)
        print('history of %d revisions (%d cells): GET revisions cold %.0f ms, warm '
              '%.0f/%.0f/%.0f ms; diff oldest..newest %.0f ms (%d cells); one revision '
              '%.0f ms' % (args.revisions, args.cells, results['cold'] * 1e3,
                           results['warm1'] * 1e3, results['warm2'] * 1e3,
                           results['warm3'] * 1e3, results['diff'] * 1e3,
                           results['diff_cells'], results['one'] * 1e3))
    finally:
        shutil.rmtree(top, ignore_errors=True)


if __name__ == '__main__':
    main()
