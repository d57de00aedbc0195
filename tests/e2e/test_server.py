"""The commands as a user runs them: sagenb-admin, pserve, and a server killed with SIGKILL."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from ..support.notebook import HERE
from ..support.server import BIN, DEV_INI, Server, admin, call, free_port


def processes_in(folder):
    """The processes whose working directory is in ``folder`` (Sage processes run in
    their folders under the data directory's ``work``)."""
    found = []
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            cwd = os.readlink('/proc/%s/cwd' % pid)
        except OSError:
            continue
        if cwd == str(folder) or cwd.startswith(str(folder) + os.sep):
            found.append(int(pid))
    return found


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / 'nb1'


def test_admin_commands_create_user_and_token(data_dir):
    done = admin(data_dir, 'adduser', 'alice', '--admin', stdin='a long password\n')
    assert done.returncode == 0, done.stderr
    assert 'Created admin alice' in done.stdout
    assert os.path.exists(data_dir / 'Data.fs')
    again = admin(data_dir, 'adduser', 'alice', stdin='a long password\n')
    assert again.returncode != 0 and 'exists already' in again.stderr
    short = admin(data_dir, 'adduser', 'bob', stdin='short\n')
    assert short.returncode != 0 and 'at least' in short.stderr
    token = admin(data_dir, 'token', 'alice')
    assert token.returncode == 0, token.stderr
    assert token.stdout.strip().splitlines()[-1].startswith('snb_')
    listed = admin(data_dir, 'tokens', 'alice')
    prefix = listed.stdout.split()[0]
    assert admin(data_dir, 'revoke-token', 'alice', prefix).returncode == 0
    assert admin(data_dir, 'tokens', 'alice').stdout.strip() == ''


# Run as sagenb-admin runs, then what the process imported and whether plaster looked
# for its loader among every installed distribution's entry points.
WHAT_ADMIN_LOADS = """
import json, sys
import plaster.loaders
scans = []
find_loaders = plaster.loaders.find_loaders
plaster.loaders.find_loaders = lambda *a, **k: scans.append(a) or find_loaders(*a, **k)
from sagenb_pyramid.scripts.admin import main
status = main(sys.argv[1:])
print(json.dumps({'status': status, 'scans': len(scans), 'modules': sorted(sys.modules)}))
"""
# What a command does not use: the application (Pyramid's configurator, the views'
# scan), the worker registry, and pkg_resources (any Pyramid module but its settings
# imports it, and it reads every installed distribution).
NOT_FOR_ADMIN = ('pyramid.config', 'pyramid.router', 'venusian', 'pyramid_zodbconn',
                 'sagenb_pyramid.views', 'sagenb_pyramid.workers', 'pkg_resources')


@pytest.mark.parametrize('command', [['users'], ['evolve', '--dry-run']])
def test_an_admin_command_opens_the_database_without_the_application(data_dir, command):
    """Building the application for an admin command took over a second (the views'
    scan, plaster's entry points, pkg_resources); the command needs only the settings
    and the database."""
    assert admin(data_dir, 'adduser', 'alice', '--admin',
                 stdin='a long password\n').returncode == 0
    done = subprocess.run(
        [sys.executable, '-c', WHAT_ADMIN_LOADS, DEV_INI, 'data_dir=%s' % data_dir, *command],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    *output, report = done.stdout.splitlines()
    assert output == (['alice admin'] if command == ['users'] else
                      ['The database is up to date: no evolve step is pending.'])
    report = json.loads(report)
    loaded = [m for m in report['modules'] if m.startswith(NOT_FOR_ADMIN)]
    assert (report['status'], loaded, report['scans']) == (0, [], 0)


def test_server_survives_sigkill_with_every_output(data_dir):
    assert admin(data_dir, 'adduser', 'alice', stdin='a long password\n').returncode == 0
    token = admin(data_dir, 'token', 'alice').stdout.strip().splitlines()[-1]
    port = free_port()
    server = Server(data_dir, port)
    try:
        # While the server holds the FileStorage, the admin command says so clearly.
        busy = admin(data_dir, 'users')
        assert busy.returncode != 0
        assert 'in use by another process' in busy.stderr
        status, created = call(server, token, 'POST', '/home/alice/', {'name': 'kept'})
        assert status == 201
        ws = created['url']
        results = {}
        for code in ('factor(2^64-1)', 'plot(sin(x),(x,0,6))', '1/0'):
            status, cell = call(server, token, 'POST', ws + 'cells', {'input': code})
            assert status == 201
            status, done = call(server, token, 'POST', '%scells/%d/evaluate' % (ws, cell['id']),
                                {'wait': 60})
            assert status == 200 and done['status'] in ('done', 'error'), done
            results[cell['id']] = done
        assert results[1]['outputs'][0]['data']['text/plain'] == \
            '3 * 5 * 17 * 257 * 641 * 65537 * 6700417'
        assert 'image/png' in results[2]['outputs'][0]['data']
        assert results[3]['outputs'][0]['output_type'] == 'error'
        # One cell is still running when the server dies.
        status, cell = call(server, token, 'POST', ws + 'cells', {'input': 'sleep(600)'})
        running = cell['id']
        call(server, token, 'POST', '%scells/%d/evaluate' % (ws, running), {'wait': 0})
        time.sleep(1)
        folders_before = set(os.listdir(data_dir / 'work'))
        assert folders_before
        assert processes_in(data_dir / 'work')
    finally:
        server.kill()
    # Its Sage processes (each leads a session of its own, out of reach of the kill)
    # notice that the server is gone and end: none is left running its cell.
    deadline = time.monotonic() + 10
    while processes_in(data_dir / 'work') and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_in(data_dir / 'work') == []

    server = Server(data_dir, port)
    try:
        status, sheet = call(server, token, 'GET', ws)
        assert status == 200
        cells = {c['id']: c for c in sheet['cells']}
        for cell_id, before in results.items():
            assert cells[cell_id]['outputs'] == before['outputs']
            assert cells[cell_id]['status'] == before['status']
        # The cell that was running is not left "running" forever.
        assert cells[running]['status'] == 'error'
        assert cells[running]['outputs'][-1]['ename'] == 'WorkerLost'
        # The killed server's Sage folders are gone.
        assert not folders_before & set(os.listdir(data_dir / 'work'))
        # And the notebook evaluates again after the restart.
        status, done = call(server, token, 'POST', '%scells/%d/evaluate' % (ws, 1), {'wait': 60})
        assert done['outputs'][0]['data']['text/plain'] == \
            '3 * 5 * 17 * 257 * 641 * 65537 * 6700417'
    finally:
        server.kill()


def test_second_independent_notebook(tmp_path):
    """``pserve development.ini http_port=... data_dir=...`` twice: two notebooks."""
    one, two = tmp_path / 'one', tmp_path / 'two'
    for d in (one, two):
        assert admin(d, 'adduser', 'alice', stdin='a long password\n').returncode == 0
    tokens = [admin(d, 'token', 'alice').stdout.strip().splitlines()[-1] for d in (one, two)]
    servers = [Server(one, free_port()), Server(two, free_port())]
    try:
        assert call(servers[0], tokens[0], 'POST', '/home/alice/', {'name': 'only here'})[0] == 201
        assert [w['name'] for w in call(servers[0], tokens[0], 'GET', '/home/alice/')[1]
                ['worksheets']] == ['only here']
        assert call(servers[1], tokens[1], 'GET', '/home/alice/')[1]['worksheets'] == []
        # A token of one notebook means nothing to the other.
        assert call(servers[1], tokens[0], 'GET', '/home/alice/')[0] == 401
        assert os.path.exists(two / 'Data.fs') and os.path.exists(two / 'blobs')
    finally:
        for server in servers:
            server.kill()


def test_production_needs_the_secret_from_the_environment(tmp_path):
    prod = os.path.join(HERE, 'production.ini')
    command = [os.path.join(BIN, 'sagenb-admin'), prod, 'data_dir=%s' % tmp_path, 'users']
    env = {k: v for k, v in os.environ.items() if k != 'SAGENB_SECRET'}
    refused = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0
    assert 'SAGENB_SECRET' in refused.stderr and 'Traceback' not in refused.stderr
    env['SAGENB_SECRET'] = 'a secret shared by the app servers'
    # The public address is required as well (links in mail start with it).
    env.pop('SAGENB_PUBLIC_URL', None)
    refused = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode != 0
    assert 'SAGENB_PUBLIC_URL' in refused.stderr and 'Traceback' not in refused.stderr
    env['SAGENB_PUBLIC_URL'] = 'https://notebook.example.org'
    ok = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    # No secret was written to disk: it lives in the environment only.
    assert not os.path.exists(tmp_path / 'session-secret')


def cpus_of(pid):
    """The CPUs each thread of process ``pid`` may run on."""
    found = {}
    for tid in os.listdir('/proc/%d/task' % pid):
        try:
            found[int(tid)] = frozenset(os.sched_getaffinity(int(tid)))
        except OSError:  # the thread ended meanwhile
            pass
    return found


def descendants(pid, depth=None):
    parents = {}
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open('/proc/%s/stat' % entry) as f:
                    parents[int(entry)] = int(f.read().rsplit(')', 1)[1].split()[1])
            except (OSError, IndexError):
                pass
    found, level = [], [pid]
    while level and depth != 0:
        level = [child for child, ppid in parents.items() if ppid in level]
        found += level
        depth = None if depth is None else depth - 1
    return found


def fork_servers(pid):
    """The server's fork servers (the processes they fork have the same command line)."""
    return [child for child in descendants(pid, depth=1)
            if b'workers.forkserver' in open('/proc/%d/cmdline' % child, 'rb').read()]


def test_the_app_server_runs_on_one_cpu_and_its_sage_processes_on_all(data_dir):
    """Its threads pass Python's lock to each other many times per cell: on one CPU
    that costs less (sagenb_pyramid/cpus.py).  Sage processes keep every CPU."""
    every = frozenset(os.sched_getaffinity(0))
    assert len(every) >= 2, 'this test needs a machine with at least two CPUs'
    assert admin(data_dir, 'adduser', 'alice', stdin='a long password\n').returncode == 0
    token = admin(data_dir, 'token', 'alice').stdout.strip().splitlines()[-1]
    port = free_port()
    server = Server(data_dir, port)
    try:
        ws = call(server, token, 'POST', '/home/alice/', {'name': 'cpus'})[1]['url']
        cell = call(server, token, 'POST', ws + 'cells', {'input': 'import os; os.getpid()'})[1]
        status, done = call(server, token, 'POST', '%scells/%d/evaluate' % (ws, cell['id']),
                            {'wait': 60})
        assert status == 200 and done['status'] == 'done', done
        sage_pid = int(done['outputs'][0]['data']['text/plain'])
        # "auto": one CPU, chosen by the port; every thread, those started while serving
        # (request and worksheet threads) too.
        one = frozenset([sorted(every)[port % len(every)]])
        threads = cpus_of(server.proc.pid)
        assert len(threads) > 10
        assert set(threads.values()) == {one}
        below = descendants(server.proc.pid)
        assert sage_pid in below
        for pid in below:  # the fork server, the spare and the worksheet's process
            assert set(cpus_of(pid).values()) == {every}, pid
        # A fork server started by the pinned server (after the first one died) and the
        # processes it forks get every CPU back.
        forkserver, = fork_servers(server.proc.pid)
        os.kill(forkserver, signal.SIGKILL)
        for name in ('after', 'again'):
            ws = call(server, token, 'POST', '/home/alice/', {'name': name})[1]['url']
            cell = call(server, token, 'POST', ws + 'cells',
                        {'input': 'import os; os.getpid()'})[1]
            status, done = call(server, token, 'POST', '%scells/%d/evaluate' % (
                ws, cell['id']), {'wait': 90})
            assert status == 200 and done['status'] == 'done', done['outputs']
        newer = fork_servers(server.proc.pid)
        assert newer and forkserver not in newer
        for pid in descendants(server.proc.pid):
            assert set(cpus_of(pid).values()) == {every}, pid
        assert int(done['outputs'][0]['data']['text/plain']) in descendants(server.proc.pid)
    finally:
        server.kill()


def test_cpu_pinning_can_be_turned_off_or_named(data_dir):
    every = frozenset(os.sched_getaffinity(0))
    assert len(every) >= 2, 'this test needs a machine with at least two CPUs'
    data_dir.mkdir()
    server = Server(data_dir, free_port(), env={'SAGENB_SERVER_CPUS': 'none'})
    try:
        assert set(cpus_of(server.proc.pid).values()) == {every}
    finally:
        server.kill()
    last = max(every)
    server = Server(data_dir, free_port(), env={'SAGENB_SERVER_CPUS': str(last)})
    try:
        assert set(cpus_of(server.proc.pid).values()) == {frozenset([last])}
    finally:
        server.kill()


def test_a_bad_cpu_setting_stops_the_server_with_a_clear_message(data_dir):
    for value, message in (('fast', 'write "auto", "none" or CPU numbers'),
                           ('4096', 'this process may only use CPUs')):
        done = subprocess.run(
            [os.path.join(BIN, 'pserve'), DEV_INI, 'http_port=%d' % free_port(),
             'data_dir=%s' % data_dir], env=dict(os.environ, SAGENB_SERVER_CPUS=value),
            capture_output=True, text=True, timeout=120)
        assert done.returncode != 0
        # As every wrong setting: checked before the database opens or Sage starts.
        assert 'SettingsError: sagenb.server_cpus: %r: %s' % (value, message) in done.stderr, \
            done.stderr
        assert 'Starting server' not in done.stderr + done.stdout


def test_cpu_settings_are_read_as_documented():
    from sagenb_pyramid.cpus import CpuSettingError, parse
    four = {0, 1, 2, 3}
    assert parse('auto', four, port=6543) == {3}
    assert parse('auto', four, port=6544) == {0}
    assert parse(None, {5, 7}, port=1) == {7}
    assert parse('auto', {2}, port=6543) is None  # one CPU: nothing to choose
    assert parse('none', four) is None
    assert parse('2', four) == {2}
    assert parse('0, 2-3', four) == {0, 2, 3}
    for bad in ('two', '3-1', '-1', '1-x', '9'):
        with pytest.raises(CpuSettingError):
            parse(bad, four)
