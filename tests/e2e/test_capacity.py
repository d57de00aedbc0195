"""A class on one server: descriptors per worksheet, the open-files limit, a full host
that stops its longest-idle process, spares that follow arrivals, and a server that
exits (to be restarted) when its HTTP loop or another essential thread dies.

The server tests run ``pserve`` through a small launcher written by the test: it may
hold descriptors first (a server past descriptor 1023) or break waitress's loop, then
calls pserve's own ``main``.
"""
import os
import resource
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from sagenb_pyramid.settings import SettingsError
from sagenb_pyramid.workers import capacity, registry as registry_module

from ..support.sage import own_notebook, plain, run
from ..support.server import Server, admin, call, free_port

pytestmark = pytest.mark.usefixtures('cheap_password_hashes')


# -- capacity ------------------------------------------------------------------------
def test_auto_max_total_is_what_memory_and_descriptors_allow():
    by_memory = capacity.allowed_by_memory('fork')
    assert capacity.max_total('auto', 'fork', 1024 ** 2) == by_memory
    # A host held to 1024 open files: half kept for connections and files, the rest
    # at FDS_PER_PROCESS each.
    assert capacity.max_total('auto', 'fork', 1024) == 512 // capacity.FDS_PER_PROCESS
    assert capacity.max_total('auto', 'spawn', 1024 ** 2) < by_memory
    assert capacity.max_total('10', 'fork', 4096) == 10


def test_a_max_total_the_open_files_cannot_hold_is_refused():
    with pytest.raises(SettingsError) as refused:
        capacity.max_total('500', 'fork', 2048)
    assert 'max_total = 500' in str(refused.value)
    assert 'may open 2048' in str(refused.value) and 'LimitNOFILE' in str(refused.value)


def test_the_open_files_limit_is_raised_to_the_hard_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert hard == resource.RLIM_INFINITY or hard > 1024, \
        'this test needs a hard limit of open files above 1024 (ulimit -Hn)'
    script = 'from sagenb_pyramid.workers import capacity; print(capacity.raise_open_files())'
    done = subprocess.run(
        [sys.executable, '-c', script], capture_output=True, text=True, timeout=60,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard)))
    assert done.returncode == 0, done.stderr
    expected = hard if hard != resource.RLIM_INFINITY else int(open('/proc/sys/fs/nr_open').read())
    assert int(done.stdout) == expected


def descriptors():
    return len(os.listdir('/proc/self/fd'))


def threads():
    return len(os.listdir('/proc/self/task'))


def test_a_running_worksheet_costs_six_descriptors_and_one_thread(tmp_path):
    settings = {}
    with own_notebook(tmp_path / 'fds', ['ann'], **settings) as (nb, [ann]):
        # The first evaluation makes what all share (the ZMQ context, the output store).
        first = ann.post('/home/ann/', {'name': 'first'}, status=201)['url']
        assert plain(run(ann, first, '1+1')) == '2'
        sheets = [ann.post('/home/ann/', {'name': str(i)}, status=201)['url']
                  for i in range(5)]
        before, threads_before = descriptors(), threads()
        for ws in sheets:
            assert plain(run(ann, ws, '2+2')) == '4'
        per_worksheet = (descriptors() - before) / len(sheets)
        # jupyter_client's defaults cost about 20 descriptors and 4 threads each.
        assert per_worksheet <= 6, per_worksheet
        assert (threads() - threads_before) / len(sheets) == 1
        for ws in sheets:  # a stopped process gives them all back
            ann.post(ws + 'restart', status=200)
        deadline = time.monotonic() + 10
        while descriptors() > before and time.monotonic() < deadline:
            time.sleep(0.1)
        assert descriptors() <= before


# -- a full host ---------------------------------------------------------------------
def key_of(nb, ws_url):
    owner, number = ws_url.strip('/').split('/')[-2:]
    with nb.transaction() as root:
        return (root.user_by_login(owner).id, int(number))


def test_a_full_host_stops_its_longest_idle_process_for_a_new_one(tmp_path):
    settings = {'sagenb.workers.max_total': '2', 'sagenb.workers.spare': '0'}
    with own_notebook(tmp_path / 'full', ['ann', 'ben'], **settings) as (nb, [ann, ben]):
        older = ann.post('/home/ann/', {'name': 'older'}, status=201)['url']
        newer = ann.post('/home/ann/', {'name': 'newer'}, status=201)['url']
        assert plain(run(ann, older, 'x = 1; x')) == '1'
        assert plain(run(ann, newer, 'y = 2; y')) == '2'
        third = ben.post('/home/ben/', {'name': 'third'}, status=201)['url']
        cell = ben.post(third + 'cells', {'input': '3'}, status=201)['id']
        # Both processes were used a moment ago (their pages are open): none is stopped.
        refused = ben.post('%scells/%d/evaluate' % (third, cell), {'wait': 5}, status=409)
        assert 'none idle' in refused['error'] and 'Restart stops its process' in \
            refused['error']
        assert ben.get('%scells/%d' % (third, cell))['status'] == 'new'
        # Nobody has looked at either for longer than an open page would allow.
        workers = {ws: nb.host._worker(key_of(nb, ws)) for ws in (older, newer)}
        workers[older].last_activity -= 400
        workers[newer].last_activity -= 200
        assert plain(run(ben, third, '3')) == '3'
        # The longest idle one was stopped; the other keeps its variables.
        assert not nb.host.has_process(key_of(nb, older))
        assert plain(run(ann, newer, 'y')) == '2'


def test_a_host_with_its_open_files_used_up_takes_no_more_processes(tmp_path,
                                                                    monkeypatch):
    with own_notebook(tmp_path / 'nofile', ['ann'], **{'sagenb.workers.spare': '0'}) \
            as (nb, [ann]):
        ws = ann.post('/home/ann/', {'name': 'one'}, status=201)['url']
        cell = ann.post(ws + 'cells', {'input': '1'}, status=201)['id']
        monkeypatch.setattr(capacity, 'open_files_in_use', lambda: nb.host.open_files)
        refused = ann.post('%scells/%d/evaluate' % (ws, cell), {'wait': 5}, status=409)
        assert 'as many as it can' in refused['error']
        monkeypatch.undo()
        assert plain(run(ann, ws, '1')) == '1'


# -- spares --------------------------------------------------------------------------
def test_spares_follow_the_arrival_rate(tmp_path):
    settings = {'sagenb.workers.spare': '1', 'sagenb.workers.spare_max': '6'}
    with own_notebook(tmp_path / 'spares', [], **settings) as (nb, _):
        host = nb.host
        assert host.spare_target() == 1
        host._start_seconds = 0.5
        now = time.monotonic()
        # Ten worksheets a second (a class arriving): as many spares as arrive in two
        # start-ups, within spare_max.
        host._taken.extend(now - i / 10 for i in range(30))
        assert host.spare_target() == 6
        host._taken.clear()
        host._taken.extend(now - i for i in range(3))  # one every second
        assert host.spare_target() == 1 + 1
        # Arrivals older than the window count no more.
        host._taken.clear()
        host._taken.append(now - registry_module.SPARE_RATE_WINDOW - 1)
        assert host.spare_target() == 1


def test_spares_are_started_ahead_of_a_burst_and_trimmed_after(tmp_path):
    settings = {'sagenb.workers.spare': '1', 'sagenb.workers.spare_max': '4'}
    with own_notebook(tmp_path / 'burst', [], **settings) as (nb, _):
        host = nb.host
        host.start()
        deadline = time.monotonic() + 60
        while len(host._spares) < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(host._spares) == 1
        now = time.monotonic()
        host._taken.extend(now - i / 10 for i in range(30))
        host._wake.set()
        while len(host._spares) < 4 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(host._spares) == 4
        host._taken.clear()
        host._wake.set()
        while len(host._spares) > 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(host._spares) == 1


# -- the server process --------------------------------------------------------------
LAUNCHER = '''
import os, sys, threading
hold, fault = int(sys.argv[1]), sys.argv[2]
held = [os.open(os.devnull, os.O_RDONLY) for _ in range(hold)]
if fault == 'loop':
    # The failure of issue 17: the loop's poll raises (select() past descriptor 1023).
    from waitress import wasyncore
    real = wasyncore.poll2
    def poll2(*args, **kwargs):
        if os.path.exists(sys.argv[3]):
            raise ValueError('filedescriptor out of range in select()')
        return real(*args, **kwargs)
    wasyncore.poll2 = poll2
elif fault != 'none':
    # Kill a thread by name: an exception raised inside it.
    import ctypes, time
    def kill():
        while not os.path.exists(sys.argv[3]):
            time.sleep(0.05)
        for thread in threading.enumerate():
            if thread.name == fault:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(thread.ident), ctypes.py_object(SystemExit))
    threading.Thread(target=kill, daemon=True).start()
from pyramid.scripts.pserve import main
sys.exit(main(argv=['pserve'] + sys.argv[4:]))
'''


class Launched(Server):
    """pserve through the launcher (``LAUNCHER``)."""

    def __init__(self, folder, data_dir, hold=0, fault='none', env=None):
        self.trigger = os.path.join(folder, 'fail-now')
        launcher = os.path.join(folder, 'launcher.py')
        with open(launcher, 'w') as f:
            f.write(textwrap.dedent(LAUNCHER))
        super().__init__(data_dir, free_port(), env,
                         command=[sys.executable, launcher, str(hold), fault, self.trigger])

    def descriptors(self):
        return len(os.listdir('/proc/%d/fd' % self.proc.pid))


@pytest.fixture
def data_dir(tmp_path):
    folder = tmp_path / 'nb'
    assert admin(folder, 'adduser', 'alice', stdin='a long password\n').returncode == 0
    return folder


def test_a_server_past_descriptor_1023_with_56_worksheets_still_answers(tmp_path, data_dir):
    token = admin(data_dir, 'token', 'alice').stdout.strip().splitlines()[-1]
    # 56 worksheets cost 1,092 descriptors with jupyter_client's defaults: more than a
    # select() loop can watch.  Now they cost about 340, so the launcher holds 700
    # first, as a server with many connections and files open would.
    server = Launched(str(tmp_path), data_dir, hold=700,
                      env={'SAGENB_WORKERS_MAX_PER_USER': '100',
                           'SAGENB_WORKERS_SPARE_MAX': '4'})
    try:
        sheets = []
        for i in range(56):
            status, made = call(server, token, 'POST', '/home/alice/', {'name': str(i)})
            assert status == 201, made
            sheets.append(made['url'])
        failures, lock = [], threading.Lock()

        def evaluate(urls):
            for url in urls:
                status, cell = call(server, token, 'POST', url + 'cells', {'input': '6*7'})
                status, done = call(server, token, 'POST',
                                    '%scells/%d/evaluate' % (url, cell['id']), {'wait': 60})
                if status != 200 or done.get('status') != 'done' or plain(done) != '42':
                    with lock:
                        failures.append((url, status, done))
        workers = [threading.Thread(target=evaluate, args=(sheets[i::4],)) for i in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=300)
        assert not failures, failures[:3]
        assert server.descriptors() > 1023, server.descriptors()
        # Still serving everyone: a page, a listing and a cell.
        status, listing = call(server, token, 'GET', '/home/alice/')
        assert status == 200 and len(listing['worksheets']) == 56
        status, cell = call(server, token, 'POST', sheets[0] + 'cells', {'input': '1+1'})
        status, done = call(server, token, 'POST',
                            '%scells/%d/evaluate' % (sheets[0], cell['id']), {'wait': 60})
        assert status == 200 and plain(done) == '2'
        assert server.proc.poll() is None
    finally:
        server.kill()


@pytest.mark.parametrize('fault, says', [
    ('loop', 'the HTTP loop has stopped'),
    ('http-loop', 'the HTTP loop has stopped'),
    ('worker-housekeeping', 'the worker housekeeping has stopped'),
])
def test_the_server_exits_when_an_essential_thread_dies(tmp_path, data_dir, fault, says):
    server = Launched(str(tmp_path), data_dir, fault=fault)
    try:
        open(server.trigger, 'w').close()
        try:
            status = server.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            raise AssertionError('the server lives on: ' + server.output()) from None
        assert status == 70, server.output()
        log = server.output()
        assert says in log and 'exits (status 70) so that it is restarted' in log, log
    finally:
        server.kill()


def test_a_new_sage_process_runs_no_shell_commands(tmp_path):
    """Its first kernel_info reply asked for help links, which ran Sage's package-system
    probes (``sage -p``, ``sage -pip --version``: 1-2 s of shell scripts per process).
    The fork server answers them once for all its children."""
    with own_notebook(tmp_path / 'probes', []) as (nb, _):
        nb.host.start()
        kernel = nb.host._start_kernel()
        try:
            with open('/proc/%d/stat' % kernel.pid) as f:
                fields = f.read().rsplit(')', 1)[1].split()
            # stat(5) fields 16 and 17: CPU time of the children it waited for.
            assert int(fields[13]) + int(fields[14]) == 0, fields[13:15]
        finally:
            kernel.shutdown()


def test_logins_at_the_same_moment_do_not_conflict(notebook):
    """A class logging in at once: each login writes an audit entry.  Numbered entries
    collided, the retried logins (password check included) conflicted again, and some
    answered 500."""
    import transaction
    from types import SimpleNamespace

    from sagenb_pyramid import audit
    from sagenb_pyramid.resources import get_root

    managers = [transaction.TransactionManager(explicit=True) for _ in range(3)]
    connections = [notebook.db.open(transaction_manager=tm) for tm in managers]
    try:
        for i, (tm, conn) in enumerate(zip(managers, connections, strict=True)):
            tm.begin()
            audit.record(SimpleNamespace(client_addr='127.0.0.1'), 'login', 's%d' % i,
                         actor='s%d' % i, root=get_root(conn.root()))
        for tm in managers:  # each began before any committed
            tm.commit()
    finally:
        for conn in connections:
            conn.close()
    with notebook.transaction() as root:
        assert sorted(e.target for e in audit.entries(root)
                      if e.action == 'login') == ['s0', 's1', 's2']


def test_work_in_a_transaction_of_its_own_is_retried_after_a_conflict_at_commit(notebook):
    """What threads outside requests write (audit entries after a login, a host's
    record, a lost cell): a conflict raised by the commit itself is tried again."""
    import transaction

    from sagenb_pyramid.resources import get_root, in_transaction

    attempts = []

    def work(root):
        attempts.append(len(attempts) + 1)
        root.server_settings = {'attempt': len(attempts)}
        if len(attempts) == 1:  # another process commits the same object meanwhile
            tm = transaction.TransactionManager(explicit=True)
            conn = notebook.db.open(transaction_manager=tm)
            tm.begin()
            get_root(conn.root()).server_settings = {'other': True}
            tm.commit()
            conn.close()
        return 'written'

    assert in_transaction(notebook.db, work, attempts=3) == 'written'
    assert attempts == [1, 2]
    with notebook.transaction() as root:
        assert root.server_settings == {'attempt': 2}
