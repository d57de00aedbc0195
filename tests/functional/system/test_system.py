"""Seeing the server run (issue 23): ``/health``, ``/metrics`` and the admin's page of
the running system, through WebTest on a real database and the embedded worker host
(fake kernels, whose process is this one: its memory and CPU time are real)."""
import os
import re
import threading
import time

import pytest
import webtest

from sagenb_pyramid.services.system import DatabaseProbe

from ...support.fakekernel import FakeKernels
from ...support.notebook import Api, Notebook, csrf_token_of, login

pytestmark = pytest.mark.usefixtures('cheap_password_hashes')

JSON = {'Accept': 'application/json'}


def browser(nb):
    return webtest.TestApp(nb.app, extra_environ={'HTTP_HOST': 'localhost:80',
                                                  'REMOTE_ADDR': '192.0.2.7'})


@pytest.fixture
def nb(tmp_path):
    notebook = Notebook(tmp_path, **{'sagenb.metrics.token': 'scrape-me-0123456789'})
    notebook.add_user('root', admin=True)
    notebook.add_user('alice')
    yield notebook
    notebook.close()


def sample(text, name, **labels):
    """The value of one sample of the metrics text (None when absent)."""
    for line in text.splitlines():
        if line.startswith('#'):
            continue
        match = re.fullmatch(r'(\w+)(?:\{(.*)\})? (\S+)', line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ''))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(3))
    return None


def scrape(app):
    return app.get('/metrics', headers={'Authorization': 'Bearer scrape-me-0123456789'}).text


# === /health ================================================================================

def test_health_is_open_to_anyone_and_tells_no_secrets(nb):
    with nb.transaction() as root:
        ws = root.user_by_login('alice').create_worksheet('Secret plans')
    res = browser(nb).get('/health', status=200)
    body = res.json
    assert body['status'] == 'ok' and body['problems'] == []
    assert body['database']['ok'] is True
    assert body['worker_host']['alive'] is True
    assert body['worker_host']['name'] == nb.host.server_name
    assert body['disk']['ok'] is True and body['disk']['free_mb'] > 0
    assert res.headers['Cache-Control'] == 'no-store'
    # No user, worksheet, address or secret in it.
    for secret in ('alice', 'Secret plans', 'scrape-me', '127.0.0.1', ws.__name__ + '"'):
        assert secret not in res.text
    assert browser(nb).head('/health', status=200)


def test_health_is_503_when_the_disk_is_nearly_full(tmp_path):
    # More free space than any disk has: the disk is "full".
    notebook = Notebook(tmp_path, **{'sagenb.health.min_free_mb': str(10 ** 12)})
    try:
        res = browser(notebook).get('/health', status=503)
        assert res.json['status'] == 'failing'
        assert res.json['disk']['ok'] is False
        assert any(p.startswith('disk: ') for p in res.json['problems'])
    finally:
        notebook.close()


def test_health_is_503_when_the_database_fails(nb):
    nb.registry.sagenb_health = DatabaseProbe(BrokenDatabase())
    res = browser(nb).get('/health', status=503)
    assert res.json['database'] == {
        'ok': False, 'error': 'ClientDisconnected: the ZEO server is gone'}
    assert res.json['problems'][0] == 'database: ClientDisconnected: the ZEO server is gone'


def test_health_is_503_when_the_worker_host_has_stopped(nb):
    nb.host._stopping.set()
    res = browser(nb).get('/health', status=503)
    assert res.json['worker_host']['alive'] is False
    assert 'worker host: its housekeeping has stopped' in res.json['problems']


def test_a_hanging_database_is_asked_once_and_answered_in_time():
    db = HangingDatabase()
    probe = DatabaseProbe(db)
    start = time.monotonic()
    first = probe.check(timeout=0.3)
    second = probe.check(timeout=0.3)
    assert first == second == {'ok': False, 'error': 'no answer within 0.3 s'}
    assert time.monotonic() - start < 2
    assert db.opened == 1  # the second check waited for the first read, started none
    db.release.set()
    deadline = time.monotonic() + 5
    while probe.running is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert probe.check(timeout=2)['ok'] is False  # a new read: this fake has no root
    assert db.opened == 2


class BrokenDatabase:
    def open(self, transaction_manager=None):
        from ZEO.Exceptions import ClientDisconnected

        class Connection:
            def root(self):
                raise ClientDisconnected('the ZEO server is gone')

            def close(self):
                pass
        return Connection()


class HangingDatabase:
    def __init__(self):
        self.opened = 0
        self.release = threading.Event()

    def open(self, transaction_manager=None):
        self.opened += 1
        self.release.wait(10)
        raise RuntimeError('no root here')


# === /metrics ===============================================================================

def test_metrics_are_for_admins_and_the_scraper_only(nb):
    app = browser(nb)
    assert app.get('/metrics', headers=JSON, status=401).json['error'].startswith('log in')
    assert app.get('/metrics', headers={'Authorization': 'Bearer wrong'}, status=401)
    login(app, 'alice')
    assert app.get('/metrics', headers=JSON, status=403).json['error'] == \
        'only admins may read the metrics'
    admin = browser(nb)
    login(admin, 'root')
    res = admin.get('/metrics', status=200)
    assert res.content_type == 'text/plain'
    assert 'sagenb_request_duration_seconds' in res.text
    assert scrape(browser(nb)).startswith('# HELP')


def test_without_a_token_setting_no_bearer_is_a_scraper(tmp_path):
    notebook = Notebook(tmp_path)
    try:
        app = browser(notebook)
        # An empty token must not match an empty or missing credential.
        assert app.get('/metrics', headers={'Authorization': 'Bearer '}, status=401)
        assert app.get('/metrics', status=401)
    finally:
        notebook.close()


def test_requests_are_timed_by_view_commits_and_login_failures_counted(nb):
    app = browser(nb)
    before = scrape(app)
    commits = sample(before, 'sagenb_commits_total')
    api = Api(app, nb.token('alice'))
    url = api.post('/home/alice/', {'name': 'Timed'}, status=201)['url']
    api.get(url + 'nosuchview', status=404)
    res = app.post('/login', {'login': 'alice', 'password': 'wrong',
                              'csrf_token': csrf_token_of(app.get('/login'))}, status='*')
    assert res.status_int in (400, 200)
    after = scrape(app)
    assert sample(after, 'sagenb_commits_total') >= commits + 1
    assert sample(after, 'sagenb_login_failures_total') == 1
    # Labelled by the view that answered (a fixed set), not by the URL.
    assert sample(after, 'sagenb_request_duration_seconds_count',
                  view='home.create_worksheet', method='POST') == 1
    # A URL that found no view is answered by the 404 view, whatever it was.
    assert sample(after, 'sagenb_request_duration_seconds_count',
                  view='notfound', method='GET') == 1
    assert 'nosuchview' not in after
    assert sample(after, 'sagenb_requests_in_flight') == 1  # this scrape itself
    assert sample(after, 'sagenb_forkserver_up', host=nb.host.server_name) is not None


def test_conflict_retries_are_counted():
    """A real pyramid_retry + pyramid_tm stack whose view conflicts once."""
    from pyramid.config import Configurator
    from ZODB.POSException import ConflictError
    attempts = []

    def view(request):
        attempts.append(1)
        if len(attempts) == 1:
            raise ConflictError('two writers')
        return request.response

    with Configurator(settings={'retry.attempts': '3',
                                'tm.manager_hook': 'pyramid_tm.explicit_manager'}) as config:
        config.include('pyramid_retry')
        config.include('pyramid_tm')
        config.include('sagenb_pyramid.metrics')
        config.add_view(view, name='write')
        app = config.make_wsgi_app()
    webtest.TestApp(app).get('/write', status=200)
    assert len(attempts) == 2
    text = app.registry.metrics.render().decode()
    assert sample(text, 'sagenb_conflict_retries_total') == 1


def test_long_polls_in_flight_are_counted(nb):
    api = Api(browser(nb), nb.token('alice'))
    url = api.post('/home/alice/', {'name': 'Polled'}, status=201)['url']
    version = api.get(url)['version']
    seen = []
    poll = threading.Thread(target=lambda: seen.append(
        api.get(url, since=version, wait=3)))
    poll.start()
    deadline = time.monotonic() + 3
    polls = 0
    while time.monotonic() < deadline and not polls:
        polls = sample(scrape(browser(nb)), 'sagenb_long_polls_in_flight')
        time.sleep(0.05)
    poll.join()
    assert polls == 1
    assert sample(scrape(browser(nb)), 'sagenb_long_polls_in_flight') == 0


# === the admin's page of the running system ===================================================

def run_a_cell(nb, login_name, name):
    api = Api(browser(nb), nb.token(login_name))
    url = api.post('/home/%s/' % login_name, {'name': name}, status=201)['url']
    cell = api.get(url)['cells'][0]['id']
    done = api.post('%scells/%d/evaluate' % (url, cell), {'input': 'print ok', 'wait': 10},
                    status=200)
    assert done['status'] == 'done'
    return url


def test_the_running_system_lists_processes_with_owner_memory_and_stops_them(nb):
    kernels = FakeKernels()
    nb.host.kernel_factory = kernels
    run_a_cell(nb, 'alice', 'Algebra')
    run_a_cell(nb, 'root', 'Admin work')
    kernels.made[0].pid = os.getpid()  # a real process: its memory and CPU time are read
    admin = browser(nb)
    csrf = login(admin, 'root')
    found = admin.get('/admin/system?sort=memory', headers=JSON).json
    assert [h['name'] for h in found['hosts']] == [nb.host.server_name]
    assert found['hosts'][0]['state'] == 'local' and found['hosts'][0]['processes'] == 2
    first, second = found['processes']
    assert (first['owner'], first['name']) == ('alice', 'Algebra')  # it has memory: first
    assert first['memory'] > 1024 ** 2 and first['cpu_seconds'] > 0
    assert first['running'] is False and first['queued'] == 0
    assert (second['owner'], second['name'], second['memory']) == ('root', 'Admin work', None)
    by_owner = admin.get('/admin/system?sort=owner&order=asc', headers=JSON).json
    assert [p['owner'] for p in by_owner['processes']] == ['alice', 'root']
    page = admin.get('/admin/system?sort=idle_seconds')
    assert 'Algebra' in page.text and 'Stop all idle' in page.text
    assert admin.get('/admin/system?sort=password', headers=JSON, status=400).json['error'] \
        .startswith('"sort" must be one of')
    # Stop one.
    res = admin.post('/admin/stop', {'worksheet': first['worksheet'], 'csrf_token': csrf},
                     status=302)
    assert res.location.endswith('/admin/system')
    left = admin.get('/admin/system', headers=JSON).json['processes']
    assert [p['name'] for p in left] == ['Admin work']
    # Stop all idle (idle for 0 s or more: the one left).
    res = admin.post('/admin/stop-idle', {'idle_seconds': '0', 'csrf_token': csrf},
                     headers=JSON, status=200)
    assert res.json['stopped'] == [left[0]['worksheet']]
    assert admin.get('/admin/system', headers=JSON).json['processes'] == []


def test_stop_idle_leaves_recent_and_running_processes(nb):
    nb.host.kernel_factory = FakeKernels()
    run_a_cell(nb, 'alice', 'Fresh')
    admin = browser(nb)
    csrf = login(admin, 'root')
    res = admin.post('/admin/stop-idle', {'idle_seconds': '3600', 'csrf_token': csrf},
                     headers=JSON, status=200)
    assert res.json['stopped'] == []
    assert len(admin.get('/admin/system', headers=JSON).json['processes']) == 1
    assert admin.post('/admin/stop-idle', {'idle_seconds': 'soon', 'csrf_token': csrf},
                      headers=JSON, status=400)
    assert admin.post('/admin/stop', {'worksheet': 'nonsense', 'csrf_token': csrf},
                      headers=JSON, status=400)


def test_only_admins_see_or_stop_processes(nb):
    nb.host.kernel_factory = FakeKernels()
    run_a_cell(nb, 'alice', 'Mine')
    alice = browser(nb)
    csrf = login(alice, 'alice')
    assert alice.get('/admin/system', headers=JSON, status='*').status_int in (403, 404)
    assert alice.post('/admin/stop-idle', {'idle_seconds': '0', 'csrf_token': csrf},
                      headers=JSON, status='*').status_int in (403, 404)
    admin = browser(nb)
    login(admin, 'root')
    assert len(admin.get('/admin/system', headers=JSON).json['processes']) == 1
    # A browser's POST without its CSRF token changes nothing.
    assert admin.post('/admin/stop-idle', {'idle_seconds': '0'}, status='*').status_int == 400
    assert len(admin.get('/admin/system', headers=JSON).json['processes']) == 1


def test_sage_processes_in_the_metrics(nb):
    kernels = FakeKernels()
    nb.host.kernel_factory = kernels
    run_a_cell(nb, 'alice', 'Counted')
    kernels.made[0].pid = os.getpid()
    text = scrape(browser(nb))
    host = nb.host.server_name
    assert sample(text, 'sagenb_sage_processes', host=host) == 1
    assert sample(text, 'sagenb_cells_running', host=host) == 0
    assert sample(text, 'sagenb_sage_memory_bytes', host=host) > 1024 ** 2
