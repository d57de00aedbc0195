"""The database unavailable for a while (a real ZEO server stopped and started again on
its address): a clear 503 at once, /health says so, the output store waits, and
everything works again without anyone doing anything (sagenb_pyramid/outages.py)."""
import errno
import time

import pytest
import webtest
from ZEO.Exceptions import ClientDisconnected

from sagenb_pyramid import outages
from sagenb_pyramid.workers import Job
from sagenb_pyramid.workers.store import Update

from ..support.notebook import Api
from ..support.zeo import app_server

BOUND = 6.0  # seconds a request may take while the database is away (ZEO_WAIT_TIMEOUT: 2)


def timed(call, *args, **kwargs):
    started = time.monotonic()
    result = call(*args, **kwargs)
    return result, time.monotonic() - started


def until_back(api, url, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        res = api.testapp.get(url, headers=api.headers, expect_errors=True)
        if res.status_int == 200:
            return res.json
        assert res.status_int == 503, res
        assert time.monotonic() < deadline, 'the database did not come back'
        time.sleep(0.2)


def test_requests_during_a_zeo_outage_get_503_and_all_comes_back(tmp_path, restartable_zeo):
    nb = app_server(tmp_path, restartable_zeo.port, 'app1')
    try:
        nb.add_user('alice')
        api = Api(webtest.TestApp(nb.app), nb.token('alice'))
        ws = api.post('/home/alice/', {'name': 'kept'}, status=201)['url']
        cell = api.post(ws + 'cells', {'input': 'before = 1'}, status=201)['id']
        browser = webtest.TestApp(nb.app)
        owner = nb_user_id(nb, 'alice')

        restartable_zeo.stop()
        # Reads, writes and a browser's page: 503 within the bound, saying why, for
        # every attempt pyramid_retry would have made (one wait, not five).
        res, seconds = timed(api.testapp.get, ws, headers=api.headers, status=503)
        assert seconds < BOUND, seconds
        assert res.json == {'error': outages.MESSAGES['database']}
        assert res.headers['Retry-After'] == outages.RETRY_AFTER
        res, seconds = timed(api.testapp.post_json, ws + 'cells', {'input': 'during = 2'},
                             headers=api.headers, status=503)
        assert seconds < BOUND and res.json['error'] == outages.MESSAGES['database']
        page = browser.get('/login', headers={'Accept': 'text/html'}, status='*')
        if page.status_int != 200:  # the login page reads nothing; other pages do
            assert page.status_int == 503
        page, seconds = timed(browser.get, '/home/alice/', headers={'Accept': 'text/html'},
                              status=503)
        assert seconds < BOUND and page.content_type == 'text/html'
        assert 'database is unavailable' in page.text and 'Traceback' not in page.text
        health = webtest.TestApp(nb.app).get('/health', status=503).json
        assert any(p.startswith('database: ') for p in health['problems']), health

        # The output store keeps what it could not write, and writes it once back.
        with_job = Job(owner, number_of(ws), cell, 'run-out', 'x',
                       awaited=False)
        update = Update(with_job, 'done', [{'output_type': 'stream', 'name': 'stdout',
                                            'text': 'kept\n'}], 1, time.time(), time.time(),
                        queue=None)
        queued = Update(with_job, 'queued', [], None, None, None, queue=nb.host.server_tag)
        nb.host.output_store.put(queued)
        nb.host.output_store.put(update)
        deadline = time.monotonic() + BOUND
        while nb.host.output_store.outage is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert nb.host.output_store.outage == 'database'
        assert not update.done.is_set()

        restartable_zeo.start()
        back = until_back(api, ws)
        inputs = [c['input'] for c in back['cells']]
        assert 'before = 1' in inputs and 'during = 2' not in inputs, inputs
        assert update.done.wait(20) and update.stored
        assert nb.host.output_store.outage is None
        stored = api.get('%scells/%d' % (ws, cell))
        assert stored['status'] == 'done' and stored['outputs'][0]['text'] == 'kept\n'
        # Writes work again (the oids handed out before the restart: tests/e2e/test_faults.py).
        for i in range(20):
            api.post(ws + 'cells', {'input': 'after = %d' % i}, status=201)
        assert webtest.TestApp(nb.app).get('/health').json['status'] == 'ok'
    finally:
        if restartable_zeo.proc is None:
            restartable_zeo.start()
        nb.close()


def nb_user_id(nb, login):
    with nb.transaction() as root:
        return root.user_by_login(login).id


def number_of(ws):
    return int(ws.rstrip('/').rsplit('/', 1)[1])


@pytest.mark.parametrize('exc, kind', [
    (ClientDisconnected(), 'database'),
    (OSError(errno.ENOSPC, 'No space left on device'), 'disk'),
    (OSError(errno.EDQUOT, 'Disk quota exceeded'), 'disk'),
    (OSError(errno.EACCES, 'Permission denied'), None),
    (ValueError('x'), None),
])
def test_what_counts_as_an_outage(exc, kind):
    assert outages.outage_of(exc) == kind
    try:
        try:
            raise exc
        except Exception as inner:
            raise RuntimeError('while committing') from inner
    except RuntimeError as outer:
        assert outages.outage_of(outer) == kind


@pytest.fixture
def small_disk(tmp_path):
    """A 24 MB tmpfs for data_dir (the suite runs as root), unmounted afterwards."""
    import os
    import subprocess
    assert os.geteuid() == 0, 'the disk-full test mounts a small tmpfs: run it as root'
    folder = tmp_path / 'small'
    folder.mkdir()
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', str(folder)],
                   check=True)
    try:
        yield folder
    finally:
        subprocess.run(['umount', '-l', str(folder)], check=True)


def fill(folder):
    """Write a file until the disk says it is full."""
    with open(folder / 'filler', 'wb') as f:
        try:
            while True:
                f.write(b'\0' * 1024 * 1024)
                f.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    try:  # the last few kB too
        with open(folder / 'filler2', 'wb') as f:
            while True:
                f.write(b'\0' * 4096)
                f.flush()
    except OSError:
        pass


def test_a_full_disk_answers_507_keeps_the_database_and_recovers(small_disk):
    from ..support.notebook import Notebook
    nb = Notebook(small_disk / 'data', **{'sagenb.health.min_free_mb': '1'})
    try:
        nb.add_user('alice')
        api = Api(webtest.TestApp(nb.app), nb.token('alice'))
        ws = api.post('/home/alice/', {'name': 'kept'}, status=201)['url']
        api.post(ws + 'cells', {'input': 'before = 1'}, status=201)
        fill(small_disk)
        refused = api.post(ws + 'cells', {'input': 'x' * 200000}, status=507)
        assert refused == {'error': outages.MESSAGES['disk']}
        page = webtest.TestApp(nb.app).post('/login', {'login': 'alice'}, status='*',
                                             headers={'Accept': 'text/html'})
        assert page.status_int != 500
        health = webtest.TestApp(nb.app).get('/health', status=503).json
        assert any(p.startswith('disk: ') for p in health['problems']), health
        # Reads still work, and show nothing of the refused write.
        inputs = [c['input'] for c in api.get(ws)['cells']]
        assert 'before = 1' in inputs and not any(i.startswith('xxx') for i in inputs)
        (small_disk / 'filler').unlink()
        (small_disk / 'filler2').unlink(missing_ok=True)
        api.post(ws + 'cells', {'input': 'after = 2'}, status=201)
        assert webtest.TestApp(nb.app).get('/health').json['status'] == 'ok'
    finally:
        nb.close()
    # The FileStorage opens cleanly and holds everything committed.
    again = Notebook(small_disk / 'data')
    try:
        with again.transaction() as root:
            sheet = root.user_by_login('alice').get('1') or \
                list(root.user_by_login('alice').values())[0]
            inputs = [c.input for c in sheet.ordered_cells()]
        assert 'before = 1' in inputs and 'after = 2' in inputs, inputs
    finally:
        again.close()
