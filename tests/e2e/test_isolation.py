"""Sage processes under their own uids and operating-system limits (the suite runs as root).

The worker uids are real system users that this module creates when missing
(``sagenb-w<uid>``, no home, no shell).
"""
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time

import pytest
import webtest

from ..support.notebook import Api, Notebook
from ..support.sage import interrupt_a_loop, plain, run, wait_status

UIDS = range(23100, 23116)


def ensure_worker_users():
    if os.geteuid() != 0:
        raise AssertionError('the isolation tests run as root: they create worker users and '
                             'start Sage processes under them')
    for uid in UIDS:
        try:
            pwd.getpwuid(uid)
        except KeyError:
            subprocess.run(['useradd', '--system', '--no-create-home', '--home-dir',
                            '/nonexistent', '--shell', '/usr/sbin/nologin', '--uid', str(uid),
                            '--user-group', 'sagenb-w%d' % uid], check=True)


@pytest.fixture(scope='module')
def isolated():
    ensure_worker_users()
    # Not under pytest's tmp folder (mode 0700): workers must reach data_dir/work/.
    folder = tempfile.mkdtemp(prefix='sagenb-isolation-')
    os.chmod(folder, 0o711)
    nb = Notebook(os.path.join(folder, 'data'), **{
        'sagenb.workers.uids': '%d-%d' % (UIDS[0], UIDS[-1]),
        'sagenb.workers.limit.address_space': str(4 * 1024 ** 3),
        'sagenb.workers.limit.processes': '60',
        'sagenb.workers.limit.open_files': '200',
        'sagenb.workers.limit.file_size': str(10 * 1024 ** 2),
        'sagenb.workers.limit.cpu_seconds': '8',
    })
    nb.add_user('alice')
    nb.add_user('bob')
    yield nb
    nb.close()
    shutil.rmtree(folder)


@pytest.fixture(scope='module')
def alice(isolated):
    return Api(webtest.TestApp(isolated.app), isolated.token('alice'))


@pytest.fixture(scope='module')
def bob(isolated):
    return Api(webtest.TestApp(isolated.app), isolated.token('bob'))


def new_sheet(api, login):
    return api.post('/home/%s/' % login, {'name': 'iso'}, status=201)['url']


def out(cell):
    if cell['status'] == 'error':
        return '%s: %s' % (cell['outputs'][-1]['ename'], cell['outputs'][-1]['evalue'])
    return plain(cell)


def test_worker_runs_as_an_unprivileged_uid(alice):
    ws = new_sheet(alice, 'alice')
    uid = int(plain(run(alice, ws, 'import os; os.getuid()')))
    assert uid in UIDS
    assert plain(run(alice, ws, 'os.getgroups()')) == '[]'
    mode = plain(run(alice, ws, 'oct(os.stat(".").st_mode & 0o777), os.stat(".").st_uid'))
    assert mode == "('0o700', %d)" % uid


def test_worker_cannot_read_the_database_or_the_server_environment(alice, isolated):
    ws = new_sheet(alice, 'alice')
    data_fs = os.path.join(isolated.registry.settings['data_dir'], 'Data.fs')
    assert os.path.exists(data_fs)
    assert out(run(alice, ws, 'open(%r, "rb").read(10)' % data_fs)).startswith(
        'PermissionError')
    secret = os.path.join(isolated.registry.settings['data_dir'], 'session-secret')
    assert out(run(alice, ws, 'open(%r).read()' % secret)).startswith('PermissionError')
    assert out(run(alice, ws, 'open("/proc/%d/environ").read()' % os.getpid())).startswith(
        'PermissionError')
    env = plain(run(alice, ws, 'sorted(k for k in os.environ if "SAGENB" in k or "SECRET" in k)'))
    assert env == '[]'
    assert out(run(alice, ws, 'os.listdir("..")')).startswith('PermissionError')


def test_a_process_cannot_make_the_server_read_files_by_naming_them(alice, isolated):
    """The files a cell wrote are the process's report (workers/sagekernel.py), which its
    code can change: the server takes only plain names of regular files the worker owns
    at the top of its folder."""
    ws = new_sheet(alice, 'alice')
    secret = os.path.join(isolated.registry.settings['data_dir'], 'session-secret')
    lie = ['../../Data.fs', secret, 'secret.txt', '.connection.json', 'kernel.log',
           'ok.txt', 'ok.txt']
    cell = run(alice, ws, 'import os, sagenb_pyramid.workers.sagekernel as k\n'
                          'os.symlink(%r, "secret.txt")\n'
                          'open("ok.txt", "w").write("mine")\n'
                          'k.changed_files = lambda before, after: %r\n'
                          '7' % (secret, lie))
    assert cell['outputs'][0]['data']['text/plain'] == '7'
    assert cell['files'] == ['ok.txt']
    assert [o['metadata']['sagenb']['file'] for o in cell['outputs']
            if o['output_type'] == 'display_data'] == ['ok.txt']
    assert alice.testapp.get('%scells/%d/files/ok.txt' % (ws, cell['id']),
                             headers=alice.headers).body == b'mine'


def test_worker_cannot_write_into_the_package(alice):
    import sagenb_pyramid
    ws = new_sheet(alice, 'alice')
    target = os.path.join(os.path.dirname(sagenb_pyramid.__file__), 'evil.py')
    assert out(run(alice, ws, 'open(%r, "w").write("x")' % target)).startswith(
        'PermissionError')
    assert not os.path.exists(target)


def test_users_cannot_reach_each_others_processes(alice, bob):
    ws_a = new_sheet(alice, 'alice')
    ws_b = new_sheet(bob, 'bob')
    pid_a = int(plain(run(alice, ws_a, 'secret = 1234; os.getpid()')))
    cwd_a = plain(run(alice, ws_a, 'os.getcwd()')).strip("'")
    assert out(run(bob, ws_b, 'import os; os.kill(%d, 0)' % pid_a)).startswith(
        'PermissionError')
    assert out(run(bob, ws_b, 'open("/proc/%d/environ").read()' % pid_a)).startswith(
        'PermissionError')
    assert out(run(bob, ws_b, 'os.listdir(%r)' % cwd_a)).startswith('PermissionError')
    assert plain(run(alice, ws_a, 'secret')) == '1234'


def test_fork_bomb_dies_and_the_server_lives(alice, isolated):
    ws = new_sheet(alice, 'alice')
    uid = int(plain(run(alice, ws, 'import os; os.getuid()')))
    bomb = ('import os\nn = 0\ntry:\n    while True:\n        if os.fork() == 0:\n'
            '            import time; time.sleep(600); os._exit(0)\n        n += 1\n'
            'except OSError as e:\n    print("stopped after", n, type(e).__name__)')
    cell = run(alice, ws, bomb)
    assert 'stopped after' in plain(cell) and 'BlockingIOError' in plain(cell), cell
    count = int(plain(cell).split()[2])
    assert count < 60
    # Other users are served meanwhile.
    other = run(alice, new_sheet(alice, 'alice'), '6*7')
    assert plain(other) == '42', other
    # A restart kills every process of the uid, the bomb's children included.
    alice.post(ws + 'restart', status=200)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and uid_processes(uid):
        time.sleep(0.1)
    assert uid_processes(uid) == []


def uid_processes(uid):
    found = []
    for pid in os.listdir('/proc'):
        if pid.isdigit():
            try:
                with open('/proc/%s/status' % pid) as f:
                    status = f.read()
            except OSError:
                continue
            if 'State:\tZ' in status:
                continue
            uids = [line for line in status.splitlines() if line.startswith('Uid:')]
            if uids and int(uids[0].split()[1]) == uid:
                found.append(int(pid))
    return found


def test_memory_limit(alice):
    ws = new_sheet(alice, 'alice')
    assert out(run(alice, ws, 'b = bytearray(6 * 1024**3)')).startswith('MemoryError')
    assert plain(run(alice, ws, '1+1')) == '2'


def test_open_files_and_file_size_limits(alice):
    ws = new_sheet(alice, 'alice')
    assert out(run(alice, ws, 'fs = [open("f%d" % i, "w") for i in range(500)]')).startswith(
        'OSError: [Errno 24]')
    run(alice, ws, 'for f in fs: f.close()\ndel fs')
    big = out(run(alice, ws, 'open("big", "wb").write(b"x" * (20 * 1024**2))'))
    assert big.startswith('OSError: [Errno 27]'), big


def test_cpu_limit_kills_a_runaway_process(alice):
    ws = new_sheet(alice, 'alice')
    cell = run(alice, ws, 'while True: pass', wait=60)
    cell = cell if cell['status'] == 'error' else wait_status(alice, ws, cell['id'], ('error',))
    assert cell['outputs'][-1]['ename'] == 'WorkerDied'
    assert 'CPU time limit' in cell['outputs'][-1]['evalue']
    # The next evaluation gets a new process.
    assert plain(run(alice, ws, '2+3')) == '5'


def test_workers_without_network(tmp_path):
    """``sagenb.workers.network = false``: user code reaches no address, not even the
    loopback where the notebook itself listens; the notebook still drives the kernel."""
    ensure_worker_users()
    folder = tempfile.mkdtemp(prefix='sagenb-nonet-')
    os.chmod(folder, 0o711)
    nb = Notebook(os.path.join(folder, 'data'), **{
        'sagenb.workers.uids': '%d-%d' % (UIDS[0], UIDS[-1]),
        'sagenb.workers.network': 'false'})
    listener = socket.socket()
    listener.bind(('127.0.0.1', 0))
    listener.listen(1)
    try:
        nb.add_user('carol')
        api = Api(webtest.TestApp(nb.app), nb.token('carol'))
        ws = new_sheet(api, 'carol')
        assert plain(run(api, ws, 'factor(2^64-1)')) == \
            '3 * 5 * 17 * 257 * 641 * 65537 * 6700417'
        port = listener.getsockname()[1]
        refused = out(run(api, ws, 'import socket; socket.create_connection('
                                   '("127.0.0.1", %d), timeout=2)' % port))
        assert refused.startswith('OSError') or refused.startswith('ConnectionRefusedError'), \
            refused
        # Interrupt still works over the Unix-socket channels.
        interrupt_a_loop(api, ws)
    finally:
        listener.close()
        nb.close()
        shutil.rmtree(folder)


def test_a_server_started_as_root_without_worker_uids_warns(tmp_path, caplog):
    """Its Sage processes would run as root, which the limit on processes does not
    bind (docs/security.md)."""
    assert os.geteuid() == 0, 'the test suite runs as root (it creates worker uids)'
    with caplog.at_level('WARNING', logger='sagenb_pyramid.workers.registry'):
        Notebook(tmp_path / 'rootly').close()
    warnings = [r.getMessage() for r in caplog.records if r.levelname == 'WARNING']
    assert any('Sage processes will run as root' in w and 'sagenb.workers.uids' in w
               for w in warnings), warnings


def production_settings(monkeypatch, **overrides):
    """production.ini's [app:main] with what it needs from the environment, starting
    no Sage process (no spare, no prestart)."""
    from plaster import get_settings
    from ..support.notebook import HERE
    monkeypatch.setenv('SAGENB_SECRET', 'a production secret for the test')
    monkeypatch.setenv('SAGENB_PUBLIC_URL', 'https://notebook.example.org')
    monkeypatch.delenv('SAGENB_WORKERS_UIDS', raising=False)
    monkeypatch.delenv('SAGENB_WORKERS_REQUIRE_UIDS_AS_ROOT', raising=False)
    settings = dict(get_settings(os.path.join(HERE, 'production.ini'), 'app:main'))
    settings.update({'sagenb.workers.prestart': 'false', 'sagenb.workers.spare': '0'},
                    **overrides)
    return os.path.join(HERE, 'production.ini'), settings


def test_production_started_as_root_without_worker_uids_refuses(tmp_path, monkeypatch):
    """production.ini does not run Sage processes as root by default: it refuses to
    start, before it opens the database, saying what to set; said explicitly (the
    environment), it starts with the warning."""
    from sagenb_pyramid import database, main
    from sagenb_pyramid.settings import SettingsError
    assert os.geteuid() == 0, 'the test suite runs as root (it creates worker uids)'
    ini, settings = production_settings(monkeypatch)
    with pytest.raises(SettingsError) as refused:
        main({'__file__': ini, 'data_dir': str(tmp_path / 'prod')}, **settings)
    message = str(refused.value)
    assert 'sagenb.workers.uids' in message and 'SAGENB_WORKERS_UIDS' in message
    assert 'SAGENB_WORKERS_REQUIRE_UIDS_AS_ROOT=false' in message
    assert not (tmp_path / 'prod' / 'Data.fs').exists()
    # sagenb-admin starts no Sage process (nor the application: tests/e2e/test_server.py):
    # it is not refused.
    from sagenb_pyramid.scripts import admin
    assert admin.main([ini, 'data_dir=%s' % (tmp_path / 'admin'), 'users']) == 0
    # Said explicitly: it starts, and warns.
    monkeypatch.setenv('SAGENB_WORKERS_REQUIRE_UIDS_AS_ROOT', 'false')
    ini, settings = production_settings(monkeypatch)
    monkeypatch.setenv('SAGENB_WORKERS_REQUIRE_UIDS_AS_ROOT', 'false')
    app = main({'__file__': ini, 'data_dir': str(tmp_path / 'allowed')}, **settings)
    try:
        assert app.registry.worker_host is not None
    finally:
        app.registry.workers.shutdown()
        database(app.registry).close()


def test_the_rule_of_root_and_worker_uids():
    """Refused only as root, without uids, where uids are required."""
    from sagenb_pyramid.settings import SettingsError
    from sagenb_pyramid.workers.registry import check_root_without_uids
    required = {'sagenb.workers.require_uids_as_root': 'true'}
    with pytest.raises(SettingsError, match='sagenb.workers.uids'):
        check_root_without_uids(dict(required, **{'sagenb.workers.uids': ' '}), euid=0)
    check_root_without_uids(dict(required, **{'sagenb.workers.uids': '20000-20199'}), euid=0)
    check_root_without_uids(required, euid=1000)
    check_root_without_uids({'sagenb.workers.require_uids_as_root': 'false'}, euid=0)
    check_root_without_uids({}, euid=0)  # the default (development.ini): a warning
