"""The worksheet page with many cells in Chromium (issue 22): time to interactive and
keystroke latency in the last cell.

    .venv/bin/python bench/page.py [--cells 1000] [--runs 3] [--compare REV]

Builds a worksheet of ``--cells`` cells straight into a FileStorage (like a course imported
from sagenb: one cell in ten a Markdown text cell with math, the others compute cells of
1 to 4 lines with a printed output, one in twenty a typeset result), serves the
application with waitress on 127.0.0.1 (nothing is evaluated: no Sage process) and opens
the page in Debian's Chromium through Playwright, a fresh browser context each run:

- ``ready``: from navigation start until the page's script has drawn every cell
  (``#worksheet[data-ready]``);
- ``interactive``: the end of the last long task (over 50 ms) before 3 s without one
  (Lighthouse's definition of time to interactive, without its network rule);
- keystroke latency in the last cell: from each key's ``keydown`` to the frame after it
  (``requestAnimationFrame`` then a task), median and p95 of 40 keys typed 60 ms apart;
- the DOM's element count and the JS heap once quiet.

``--compare REV`` also opens the same worksheet with the page's static files of git
revision ``REV`` (served from ``git show``; the template stays this checkout's), in the
same run, alternating the two.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import pct  # noqa: E402

PASSWORD = 'correct horse battery'
VERBOSE = False
CHROMIUM = os.environ.get('SAGENB_TEST_CHROMIUM', '/usr/bin/chromium')

# Installed before the page's scripts: when the page said it was ready, and the long tasks.
PROBE = """
window.__bench = {ready: null, longtasks: []};
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.__bench.longtasks.push([e.startTime, e.duration]);
}).observe({type: 'longtask', buffered: true});
new MutationObserver((records, obs) => {
  const ws = document.getElementById('worksheet');
  if (ws && ws.dataset.ready === 'true') {
    window.__bench.ready = performance.now();
    obs.disconnect();
  }
}).observe(document, {subtree: true, attributes: true, attributeFilter: ['data-ready']});
"""

# Resolves when 3 s have passed without a long task (or after 60 s): [ready, interactive].
QUIET = """
async () => {
  const b = window.__bench;
  const lastEnd = () => b.longtasks.reduce((m, [s, d]) => Math.max(m, s + d), b.ready);
  const t0 = performance.now();
  while (performance.now() - Math.max(lastEnd(), b.ready) < 3000 && performance.now() - t0 < 60000) {
    await new Promise((r) => setTimeout(r, 250));
  }
  return [b.ready, lastEnd(), b.longtasks.length];
}
"""

# Puts the cursor at the end of the last compute cell and starts timing keys.
LAST_CELL = """
() => {
  const cells = [...document.querySelectorAll('#cells > .compute-cell')];
  const cell = cells[cells.length - 1].cell;
  cell.focus('end');
  window.__keys = [];
  document.addEventListener('keydown', (ev) => {
    const t = ev.timeStamp;
    requestAnimationFrame(() => setTimeout(() => window.__keys.push(performance.now() - t)));
  }, true);
  return cells.length;
}
"""


def build(data_dir, n):
    from plaster import get_settings
    import transaction
    from sagenb_pyramid import database, main
    from sagenb_pyramid.auth.passwords import hash_password
    from sagenb_pyramid.resources import get_root
    ini = os.path.join(HERE, 'testing.ini')
    settings = dict(get_settings(ini, 'app:main'))
    settings['sagenb.workers.max_per_user'] = '0'
    app = main({'__file__': ini, 'here': HERE, 'data_dir': data_dir}, **settings)
    db = database(app.registry)
    tm = transaction.TransactionManager(explicit=True)
    conn = db.open(transaction_manager=tm)
    tm.begin()
    root = get_root(conn.root())
    user = root.add_user('olivia', hash_password(PASSWORD))
    ws = user.create_worksheet('A course of %d cells' % n)
    first = ws.ordered_cells()[0]
    for k in range(n):
        if k % 10 == 9:
            cell = ws.add_cell('text')
            cell.input = ('## Part %d\n\nLet $f_{%d}(x) = x^{%d} + 1$; we factor it and '
                          'look at its roots.' % (k, k, k % 7 + 2))
            continue
        cell = first if k == 0 else ws.add_cell('compute')
        lines = ['f%d = x^%d + %d' % (k, k % 7 + 2, k)]
        lines += ['g%d = f%d.derivative()' % (k, k)] * (k % 3)
        lines.append('print(f%d, f%d(1))' % (k, k))
        cell.input = '\n'.join(lines)
        if k % 20 == 3:
            out = [{'output_type': 'execute_result', 'execution_count': k, 'metadata': {},
                    'data': {'text/plain': 'x^%d + %d' % (k % 7 + 2, k),
                             'text/latex': '$\\displaystyle x^{%d} + %d$' % (k % 7 + 2, k)}}]
        else:
            out = [{'output_type': 'stream', 'name': 'stdout',
                    'text': 'x^%d + %d %d\n' % (k % 7 + 2, k, k + 1)}]
        cell.output.update('done', out, execution_count=k)
    url_path = '/home/olivia/%s/' % ws.__name__
    tm.commit()
    conn.close()
    return app, db, url_path


def serve(app):
    import waitress
    server = waitress.create_server(app, host='127.0.0.1', port=0, threads=8)
    threading.Thread(target=server.run, daemon=True).start()
    return server, 'http://127.0.0.1:%s' % server.effective_port


def old_static(rev):
    """A Playwright route handler serving static/ files of git revision ``rev``."""
    cache = {}
    types = {'.js': 'text/javascript', '.css': 'text/css'}

    def handle(route):
        path = route.request.url.split('/static/', 1)[1].split('?')[0]
        if path not in cache:
            try:
                cache[path] = subprocess.run(
                    ['git', 'show', '%s:sagenb_pyramid/static/%s' % (rev, path)], cwd=HERE,
                    check=True, capture_output=True).stdout
            except subprocess.CalledProcessError:
                cache[path] = None
        body = cache[path]
        if body is None:
            route.fulfill(status=404, body='')
        else:
            route.fulfill(status=200, body=body,
                          content_type=types.get(os.path.splitext(path)[1], 'application/octet-stream'))
    return handle


def one_run(browser, base, url_path, rev=None):
    context = browser.new_context(viewport={'width': 1280, 'height': 900})
    page = context.new_page()
    page.set_default_timeout(120_000)
    if rev:
        page.route('**/static/**', old_static(rev))
    page.goto(base + '/login')
    page.fill('input[name=login]', 'olivia')
    page.fill('input[name=password]', PASSWORD)
    page.click('#login-form button[type=submit]')
    page.wait_for_url(base + '/home/olivia/')
    page.add_init_script(PROBE)
    page.goto(base + url_path, wait_until='commit')
    page.wait_for_selector('#worksheet[data-ready=true]', state='attached')
    ready, interactive, longtasks = page.evaluate(QUIET)
    tasks = page.evaluate('window.__bench.longtasks')
    dom = page.evaluate('document.getElementsByTagName("*").length')
    heap = page.evaluate('performance.memory ? performance.memory.usedJSHeapSize : 0')
    editors = page.evaluate('document.querySelectorAll(".cm-editor").length')
    page.evaluate(LAST_CELL)
    page.wait_for_timeout(500)
    for k in range(40):
        page.keyboard.press('a' if k % 8 else 'Enter')
        page.wait_for_timeout(60)
    page.wait_for_timeout(300)
    keys = page.evaluate('window.__keys')
    context.close()
    return {'ready': ready, 'interactive': interactive, 'longtasks': longtasks, 'dom': dom,
            'heap': heap, 'editors': editors, 'keys': keys, 'tasks': tasks}


def report(label, runs):
    ready = statistics.median(r['ready'] for r in runs)
    tti = statistics.median(r['interactive'] for r in runs)
    keys = [k for r in runs for k in r['keys']]
    last = runs[-1]
    print('%-10s ready %6.0f ms  interactive %6.0f ms  (%d long tasks)  keystroke median %5.1f ms '
          'p95 %5.1f ms  max %5.1f ms  | %d elements, %d editors, heap %.0f MB'
          % (label, ready, tti, last['longtasks'], statistics.median(keys), pct(keys, 95),
             max(keys), last['dom'], last['editors'], last['heap'] / 2 ** 20))
    print('%-10s runs (ready/interactive): %s' % ('', ', '.join(
        '%.0f/%.0f' % (r['ready'], r['interactive']) for r in runs)))
    if VERBOSE:
        print('%-10s long tasks of the last run (start+duration ms): %s' % ('', ' '.join(
            '%.0f+%.0f' % (s, d) for s, d in last['tasks'])))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--cells', type=int, default=1000)
    parser.add_argument('--runs', type=int, default=3)
    parser.add_argument('--compare', metavar='REV', help='also the static files of this git revision')
    parser.add_argument('--verbose', action='store_true', help='list the long tasks')
    args = parser.parse_args()
    global VERBOSE
    VERBOSE = args.verbose
    if not os.path.exists(CHROMIUM):
        sys.exit('bench/page.py needs Chromium at %s (apt-get install chromium, or set '
                 'SAGENB_TEST_CHROMIUM)' % CHROMIUM)
    from playwright.sync_api import sync_playwright
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        app, db, url_path = build(tmp, args.cells)
        print('built a worksheet of %d cells in %.1f s; load average %s'
              % (args.cells, time.perf_counter() - started,
                 ' '.join('%.2f' % x for x in os.getloadavg())))
        server, base = serve(app)
        variants = [('this', None)] + ([('rev ' + args.compare[:7], args.compare)] if args.compare else [])
        results = {label: [] for label, _ in variants}
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path=CHROMIUM,
                    args=['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                          '--disable-background-networking', '--disable-component-update',
                          '--disable-sync'])
                for _ in range(args.runs):
                    for label, rev in variants:
                        results[label].append(one_run(browser, base, url_path, rev))
                browser.close()
        finally:
            server.close()
            app.registry.workers.shutdown()
            db.close()
        for label, _ in variants:
            report(label, results[label])
        print('load average after: %s' % ' '.join('%.2f' % x for x in os.getloadavg()))


if __name__ == '__main__':
    main()
