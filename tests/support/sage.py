"""Running cells on real Sage through the JSON API, for the tests that need Sage
(tests/e2e/): evaluate and wait, the plain text of outputs, a notebook of one's own."""
import contextlib
import time

import webtest

from .notebook import Api, Notebook


def run(api, ws, code, wait=60):
    cell = api.post(ws + 'cells', {'input': code}, status=201)['id']
    return api.post('%scells/%d/evaluate' % (ws, cell), {'wait': wait}, status=200)


def plain(cell):
    texts = [o['data']['text/plain'] for o in cell['outputs']
             if o['output_type'] in ('execute_result', 'display_data')]
    texts += [o['text'] for o in cell['outputs'] if o['output_type'] == 'stream']
    return '\n'.join(texts)


def wait_status(api, ws, cell_id, statuses, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        cell = api.get('%scells/%d' % (ws, cell_id))
        if cell['status'] in statuses:
            return cell
        time.sleep(0.05)
    raise AssertionError('cell %d never reached %s: %s' % (cell_id, statuses, cell))


def interrupt_a_loop(api, ws):
    """Run ``while True: pass``, interrupt it; the seconds it took to stop."""
    cell = evaluate_later(api, ws, 'while True: pass')
    wait_status(api, ws, cell, ('running',))
    time.sleep(0.3)
    asked = time.monotonic()
    assert api.post(ws + 'interrupt', status=200)['ok'] is True
    stopped = wait_status(api, ws, cell, ('error', 'done'), timeout=10)
    assert stopped['status'] == 'error'
    assert stopped['outputs'][-1]['ename'] == 'KeyboardInterrupt'
    return time.monotonic() - asked


def evaluate_later(api, ws, code):
    cell = api.post(ws + 'cells', {'input': code}, status=201)['id']
    api.post('%scells/%d/evaluate' % (ws, cell), {}, status=200)
    return cell


@contextlib.contextmanager
def own_notebook(folder, logins, **settings):
    """A notebook of its own (other settings than the module's), with users and their APIs."""
    nb = Notebook(folder, **settings)
    try:
        for login in logins:
            nb.add_user(login)
        yield nb, [Api(webtest.TestApp(nb.app), nb.token(login)) for login in logins]
    finally:
        nb.close()


def kernel_of(nb, ws_url):
    """The Sage process of a worksheet of ``nb``'s embedded host."""
    owner, number = ws_url.strip('/').split('/')[-2:]
    with nb.transaction() as root:
        key = (root.user_by_login(owner).id, int(number))
    return nb.host._worker(key).kernel


def proc_numbers(path):
    """The ``Name: number ...`` lines of a /proc file (status, smaps_rollup), as
    {name: number}."""
    with open(path) as f:
        fields = (line.split(':', 1) for line in f if ':' in line)
        return {name: int(value.split()[0]) for name, value in fields
                if value.split() and value.split()[0].isdigit()}
