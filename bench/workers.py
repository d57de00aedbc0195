"""Worker benchmarks: sagenb-pyramid against jupyter_server, side by side, in one run.

    .venv/bin/python bench/workers.py [--quick] [--only interrupt] [--interrupts N]

Starts both servers on 127.0.0.1 (each with its own temporary folder), measures, prints
a table and stops them.  Needs ``jupyter_server`` and ``websocket-client``
(``make bench`` installs them).  Figures:

- first result: create a worksheet (a kernel), evaluate ``1+1``, result received;
- warm round trip of ``1+1`` (HTTP API with wait / kernel websocket);
- memory: private memory (USS) of every process the server adds, with 20 worksheets
  idle after ``x = var('x'); integrate(sin(x)^2, x)``, divided by 20;
- growth: private memory a worksheet's process gains per 1,000 evaluations of ``1+1``
  (after 100 to warm its caches up);
- throughput: 16 worksheets evaluating ``1+1`` in a loop at once, with plain text results
  as Sage's Jupyter kernel gives them (and, for sagenb-pyramid, once more with its
  default typeset results: LaTeX and HTML besides the text).  Measured after one second
  of the same load, in which the clients' loops, started together, fall out of step;
  the p99 "with the start" counts that second's cells too;
- interrupt latency: for a PARI computation (``factor(2^1001+1)``) and a Python loop
  (``while True: pass``), N times (``--interrupts``, default 10): evaluate, wait until it
  runs, 0.5 s, interrupt; the time from the interrupt request until the cell has ended
  (ours: the cell's status, awaited with ``GET .../cells/<id>?wait=``; jupyter_server:
  ``POST /api/kernels/<id>/interrupt``, then the ``execute_reply`` and the ``idle``
  status over the kernel's websocket).  Each kind in a new worksheet (kernel), whose
  first interrupt is shown apart too; p50, p95, max; endings other than
  KeyboardInterrupt are counted (ours restarts a process that has not stopped after
  ``interrupt_timeout``, 3 s), and whether the process is still the same at the end.
  Both servers run at once for this and take turns, round by round, so that the load
  of a shared machine falls on both alike.  ``--only interrupt`` measures only this.
"""
import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import psutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import free_port, pct, wait_http  # noqa: E402

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
WARM_CODE = "x = var('x'); integrate(sin(x)^2, x)"


def uss_of_descendants(pid):
    """Private memory of the process's descendants (not of the process itself)."""
    total = 0
    for child in psutil.Process(pid).children(recursive=True):
        try:
            total += child.memory_full_info().uss
        except psutil.Error:
            pass
    return total


def kill_tree(proc):
    """Kill ``proc``'s process group and every descendant, also those in sessions of
    their own (jupyter_client starts kernels so): a run that fails leaves none."""
    descendants = psutil.Process(proc.pid).children(recursive=True)
    os.killpg(proc.pid, 9)
    for child in descendants:
        try:
            child.kill()
        except psutil.Error:
            pass
    proc.wait()


# -- sagenb-pyramid ------------------------------------------------------------------
class Sagenb:
    name = 'sagenb-pyramid'

    def __init__(self, folder):
        self.port = free_port()
        data = os.path.join(folder, 'sagenb')
        admin = [os.path.join(BIN, 'sagenb-admin'), os.path.join(HERE, 'development.ini'),
                 'data_dir=' + data]
        subprocess.run(admin + ['adduser', 'bench'], input='bench password\n', text=True,
                       check=True, capture_output=True)
        self.token = subprocess.run(admin + ['token', 'bench'], text=True, check=True,
                                    capture_output=True).stdout.strip().splitlines()[-1]
        # One user's 16 clients all wait on their cells: lift the per-user caps.
        env = dict(os.environ, SAGENB_WORKERS_SPARE='2', SAGENB_WORKERS_MAX_PER_USER='100',
                   SAGENB_API_MAX_WAITS_PER_USER='100')
        self.proc = subprocess.Popen(
            [os.path.join(BIN, 'pserve'), os.path.join(HERE, 'development.ini'),
             'http_port=%d' % self.port, 'data_dir=' + data],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        wait_http(self.port, '/login')
        time.sleep(8)  # the fork server warms up and forks its spares

    def connect(self, typeset=True):
        return SagenbSession(self, typeset)

    def baseline(self):
        return uss_of_descendants(self.proc.pid)

    def stop(self):
        kill_tree(self.proc)


class SagenbSession:
    """One worksheet over one keep-alive HTTP connection."""

    def __init__(self, server, typeset=True):
        self.server = server
        self.conn = http.client.HTTPConnection('127.0.0.1', server.port, timeout=120)
        self.conn.connect()
        self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.url = self.call('POST', '/home/bench/', {'name': 'bench'})['url']
        if not typeset:  # plain text results only, as Sage's Jupyter kernel gives
            self.call('PATCH', self.url, {'typeset': False})
        self.cell = self.call('POST', self.url + 'cells', {'input': '1+1'})['id']
        self.cells = {}  # code -> its cell, for start()

    def call(self, method, path, body=None):
        self.conn.request(method, path, None if body is None else json.dumps(body), {
            'Authorization': 'Bearer ' + self.server.token,
            'Content-Type': 'application/json'})
        return json.loads(self.conn.getresponse().read())

    def execute(self, code):
        if code != '1+1':
            cell = self.call('POST', self.url + 'cells', {'input': code})['id']
        else:
            cell = self.cell
        answer = self.call('POST', '%scells/%d/evaluate' % (self.url, cell), {'wait': 60})
        assert answer.get('status') == 'done', answer
        return answer

    def pid(self):
        """The process id of the worksheet's Sage process."""
        answer = self.execute('import os; os.getpid()')
        return int([out['data']['text/plain'] for out in answer['outputs']
                    if out['output_type'] == 'execute_result'][0])

    def start(self, code):
        """Evaluate ``code`` in a cell of its own (made once per code); return when the
        cell is seen running."""
        if code not in self.cells:
            self.cells[code] = self.call('POST', self.url + 'cells', {'input': code})['id']
        url = '%scells/%d' % (self.url, self.cells[code])
        cell = self.call('POST', url + '/evaluate', {'wait': 0})
        deadline = time.monotonic() + 60
        while cell['status'] != 'running':
            # A cell's "running" is stored once it has run for ``flush_interval``.
            assert cell['status'] == 'queued' and time.monotonic() < deadline, cell
            cell = self.call('GET', '%s?since=%d&wait=10' % (url, cell['version']))
        return url

    def interrupt(self):
        answer = self.call('POST', self.url + 'interrupt', {})
        assert answer.get('interrupted') is True, answer

    def wait_ended(self, url, timeout=30):
        """The ``ename`` the cell ended with (None for none), once it is no longer busy."""
        deadline = time.monotonic() + timeout
        cell = self.call('GET', url + '?wait=%d' % timeout)  # answers when not busy
        while cell['status'] in ('queued', 'running'):
            if time.monotonic() > deadline:
                raise TimeoutError('the cell still runs %d s after' % timeout)
            cell = self.call('GET', url + '?wait=%d' % timeout)
        return next((out.get('ename') for out in cell['outputs'][::-1]
                     if out['output_type'] == 'error'), None)

    def close(self):
        self.call('POST', self.url + 'restart', {})  # stops its Sage process
        self.conn.close()


# -- jupyter_server ------------------------------------------------------------------
class Jupyter:
    name = 'jupyter_server'

    def __init__(self, folder):
        self.port = free_port()
        self.token = uuid.uuid4().hex
        root = os.path.join(folder, 'jupyter')
        os.makedirs(root)
        self.proc = subprocess.Popen(
            [sys.executable, '-m', 'jupyter_server', '--port=%d' % self.port,
             '--ip=127.0.0.1', '--no-browser', '--ServerApp.token=' + self.token,
             '--ServerApp.root_dir=' + root, '--allow-root'],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            env=dict(os.environ, JUPYTER_RUNTIME_DIR=os.path.join(root, 'runtime')))
        wait_http(self.port, '/api/status?token=' + self.token)

    def connect(self, typeset=False):
        # Sage's Jupyter kernel shows plain text (no typesetting) unless told otherwise.
        return JupyterSession(self)

    def baseline(self):
        return uss_of_descendants(self.proc.pid)

    def stop(self):
        kill_tree(self.proc)


class JupyterSession:
    """One kernel over its websocket, as a notebook page drives it."""

    def __init__(self, server):
        import websocket
        conn = http.client.HTTPConnection('127.0.0.1', server.port, timeout=120)
        conn.request('POST', '/api/kernels', json.dumps({'name': 'sagemath'}),
                     {'Authorization': 'token ' + server.token})
        self.kernel = json.loads(conn.getresponse().read())['id']
        conn.close()
        self.server = server
        self.ws = websocket.create_connection(
            'ws://127.0.0.1:%d/api/kernels/%s/channels?token=%s'
            % (server.port, self.kernel, server.token), timeout=120)
        self.session = uuid.uuid4().hex
        self.busy_unseen = 0  # cells start() saw running without their busy status

    def send(self, code):
        msg_id = uuid.uuid4().hex
        self.ws.send(json.dumps({
            'header': {'msg_id': msg_id, 'msg_type': 'execute_request', 'username': 'b',
                       'session': self.session, 'version': '5.3', 'date': ''},
            'parent_header': {}, 'metadata': {}, 'channel': 'shell',
            'content': {'code': code, 'silent': False, 'store_history': True,
                        'user_expressions': {}, 'allow_stdin': False,
                        'stop_on_error': True}}))
        return msg_id

    def execute(self, code):
        msg_id = self.send(code)
        result = None
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get('parent_header', {}).get('msg_id') != msg_id:
                continue
            if msg['msg_type'] == 'execute_result':
                result = msg['content']
            if msg['msg_type'] == 'status' and msg['content']['execution_state'] == 'idle':
                return result

    def pid(self):
        return int(self.execute('import os; os.getpid()')['data']['text/plain'])

    def start(self, code, timeout=60):
        """Send ``code``; return when the kernel runs it: its ``busy`` status came, or
        its process has spent 0.3 s of CPU since.  (The kernel's IOPub thread sends the
        status, presumably kept from the GIL by PARI: once the cell is inside PARI the
        status often does not leave before the cell ends; then only the CPU time tells.)"""
        kernel = self.process()
        used = sum(kernel.cpu_times()[:2])
        msg_id = self.send(code)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.receive(msg_id, 0.1, lambda msg: msg['msg_type'] == 'status' and
                             msg['content']['execution_state'] == 'busy')
                return msg_id
            except TimeoutError:
                if sum(kernel.cpu_times()[:2]) - used >= 0.3:
                    self.busy_unseen += 1
                    return msg_id
        raise TimeoutError('the kernel did not start %r in %d s' % (code, timeout))

    def process(self):
        """The kernel's process (its command line names the kernel's connection file)."""
        for child in psutil.Process(self.server.proc.pid).children(recursive=True):
            try:
                if any(self.kernel in arg for arg in child.cmdline()):
                    return child
            except psutil.Error:
                pass
        raise RuntimeError('no process for kernel ' + self.kernel)

    def interrupt(self):
        conn = http.client.HTTPConnection('127.0.0.1', self.server.port, timeout=120)
        conn.request('POST', '/api/kernels/%s/interrupt' % self.kernel,
                     headers={'Authorization': 'token ' + self.server.token})
        answer = conn.getresponse()
        answer.read()
        conn.close()
        assert answer.status == 204, answer.status

    def wait_ended(self, msg_id, timeout=30):
        """The ``ename`` of the ``execute_reply`` (None for none), once it and the
        ``idle`` status have come (the websocket may bring them in either order)."""
        replies, idle = [], []

        def ended(msg):
            if msg['msg_type'] == 'execute_reply':
                replies.append(msg['content'].get('ename'))
            if msg['msg_type'] == 'status' and msg['content']['execution_state'] == 'idle':
                idle.append(msg)
            return replies and idle
        self.receive(msg_id, timeout, ended)
        return replies[-1]

    def receive(self, msg_id, timeout, last):
        """Read the websocket until ``last(msg)`` for a message about ``msg_id``;
        TimeoutError after ``timeout`` s (a kernel that does not stop is never restarted
        by jupyter_server, and its pings keep a socket timeout from ever firing)."""
        import websocket
        deadline = time.monotonic() + timeout
        seen = []
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError('%s s without the awaited message; the kernel '
                                       'sent %s' % (timeout, seen))
                self.ws.settimeout(min(1, left))
                try:
                    msg = json.loads(self.ws.recv())
                except websocket.WebSocketTimeoutException:
                    continue
                if msg.get('parent_header', {}).get('msg_id') != msg_id:
                    continue
                seen.append(msg['msg_type'])
                if last(msg):
                    return
        finally:
            self.ws.settimeout(120)

    def close(self):
        self.ws.close()
        conn = http.client.HTTPConnection('127.0.0.1', self.server.port, timeout=120)
        conn.request('DELETE', '/api/kernels/' + self.kernel,
                     headers={'Authorization': 'token ' + self.server.token})
        conn.getresponse().read()
        conn.close()


# -- measurements ----------------------------------------------------------------------
def first_result(server, n, pause):
    times = []
    for _ in range(n):
        started = time.perf_counter()
        session = server.connect()
        session.execute('1+1')
        times.append(time.perf_counter() - started)
        session.close()
        time.sleep(pause)
    return times


def round_trip(server, n):
    session = server.connect()
    session.execute('1+1')
    times = []
    for _ in range(n):
        started = time.perf_counter()
        session.execute('1+1')
        times.append(time.perf_counter() - started)
    session.close()
    return times


def growth(server, n):
    """MB of private memory the process of one worksheet gains per 1,000 cells."""
    session = server.connect()
    process = psutil.Process(session.pid())
    for _ in range(100):
        session.execute('1+1')
    before = process.memory_full_info().uss
    for _ in range(n):
        session.execute('1+1')
    after = process.memory_full_info().uss
    session.close()
    return (after - before) / n * 1000 / 2 ** 20


def memory(server, count):
    before = server.baseline()
    sessions = [server.connect() for _ in range(count)]
    for session in sessions:
        session.execute(WARM_CODE)
    time.sleep(3)
    after = server.baseline()
    for session in sessions:
        session.close()
    return before, after


def throughput(server, clients, seconds, typeset=False, warmup=1.0):
    """Cells per second and latencies of ``clients`` worksheets evaluating ``1+1`` in a
    loop for ``seconds``, after ``warmup`` seconds of the same load.

    The clients' first cells all leave in the same millisecond, which only a benchmark's
    start does: that burst queues behind itself.  The warm-up lets the loops fall out of
    step; its cells are returned apart (``burst``) so that the table can show both."""
    sessions = [server.connect(typeset) for _ in range(clients)]
    for session in sessions:
        session.execute('1+1')
    timed = [[] for _ in sessions]  # (start, latency)
    begin = time.perf_counter()
    measured = begin + warmup
    stop = measured + seconds

    def loop(i):
        while time.perf_counter() < stop:
            started = time.perf_counter()
            sessions[i].execute('1+1')
            timed[i].append((started, time.perf_counter() - started))

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flat = [lat for cells in timed for started, lat in cells if started >= measured]
    burst = [lat for cells in timed for started, lat in cells if started < measured]
    for session in sessions:
        session.close()
    return len(flat) / seconds, flat, burst


INTERRUPTED = {'PARI': 'factor(2^1001+1)',  # runs for minutes, inside PARI's C code
               'Python loop': 'while True: pass'}


class Interrupts:
    """Interrupt latency of one server's worksheet (kernel) running ``code``: each
    ``round`` evaluates it, waits until it runs, ``pause`` s, interrupts, and notes the
    seconds from the interrupt request to the cell's end."""

    def __init__(self, server, code, pause=0.5, timeout=30):
        self.server, self.code, self.pause, self.timeout = server, code, pause, timeout
        self.session = server.connect()
        self.pid = self.session.pid()
        self.times = []
        self.other = []   # endings other than KeyboardInterrupt (ours: the restart)
        self.unseen = 0   # Jupyter cells seen running without their busy status

    def round(self):
        handle = self.session.start(self.code)
        time.sleep(self.pause)
        asked = time.perf_counter()
        self.session.interrupt()
        try:
            ename = self.session.wait_ended(handle, self.timeout)
        except TimeoutError as e:
            # Counted at the timeout (a lower bound); a new kernel for the next rounds.
            ename = 'not ended: %s' % e
            self.close()
            self.session, self.pid = self.server.connect(), None
        self.times.append(time.perf_counter() - asked)
        if ename != 'KeyboardInterrupt':
            self.other.append(ename)

    def same_process(self):
        return self.session.pid() == self.pid

    def close(self):
        self.unseen += getattr(self.session, 'busy_unseen', 0)
        self.session.close()


def interrupt_latency(servers, rows, n):
    """For each kind of computation, ``n`` interrupts on every server, taking turns
    round by round (the first server first in even rounds, last in odd ones) so that
    a shared machine's changing load falls on all alike.  Figures into ``rows``."""
    for what, code in INTERRUPTED.items():
        runs = [Interrupts(server, code) for server in servers]
        for i in range(n):
            for run in (runs if i % 2 == 0 else runs[::-1]):
                run.round()
        for run in runs:
            same = run.same_process()
            run.close()
            times, r = run.times, rows.setdefault(run.server.name, {})
            # A process's first interrupt, apart: it is mostly the slowest.
            r['interrupt %s: first (ms)' % what] = times[0] * 1000
            r['interrupt %s: p50 (ms)' % what] = pct(times, 50) * 1000
            r['interrupt %s: p95 (ms)' % what] = pct(times, 95) * 1000
            r['interrupt %s: max (ms)' % what] = max(times) * 1000
            r['interrupt %s: not KeyboardInterrupt' % what] = len(run.other)
            r['interrupt %s: same process after' % what] = 'yes' if same else 'NO'
            print('%s, %s: %s ms; endings other than KeyboardInterrupt: %s; '
                  'started without a busy status seen: %d; load average %s' % (
                      run.server.name, what, ' '.join('%.0f' % (t * 1000) for t in times),
                      run.other or 'none', run.unseen, load()), flush=True)


def load():
    return ' '.join('%.2f' % x for x in os.getloadavg())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--quick', action='store_true', help='fewer repetitions')
    parser.add_argument('--only', choices=['interrupt'],
                        help='measure only this (interrupt: interrupt latency)')
    parser.add_argument('--interrupts', type=int, default=10, metavar='N',
                        help='interrupts of each kind of computation (default 10)')
    args = parser.parse_args()
    n_first, n_rt, n_growth, seconds = (3, 50, 500, 5) if args.quick else (8, 300, 2000, 15)
    rows = {}
    print('load average at the start: %s' % load(), flush=True)
    with tempfile.TemporaryDirectory() as folder:
        if args.only is None:
            for kind in (Sagenb, Jupyter):
                server = kind(folder)
                try:
                    print('%s: started, load average %s' % (server.name, load()),
                          flush=True)
                    r = rows[server.name] = {}
                    measure_workers(server, r, n_first, n_rt, n_growth, seconds)
                    print(server.name, {k: round(v, 1) for k, v in r.items()}, flush=True)
                finally:
                    server.stop()
        # Interrupts: both servers up at once, taking turns (interrupt_latency).
        servers = []
        try:
            for kind in (Sagenb, Jupyter):
                servers.append(kind(tempfile.mkdtemp(dir=folder)))
            print('both servers started, load average %s' % load(), flush=True)
            interrupt_latency(servers, rows, args.interrupts)
        finally:
            for server in servers:
                server.stop()
    names = list(rows)
    print()
    print('| measure | ' + ' | '.join(names) + ' |')
    print('|---|' + '---|' * len(names))
    for key in rows[names[0]]:
        print('| %s | %s |' % (key, ' | '.join(
            cell(rows[n].get(key)) for n in names)))
    print()
    print('machine: %d cores, %.0f GB, %s; load average at the end: %s' % (
        psutil.cpu_count(), psutil.virtual_memory().total / 2 ** 30,
        ' '.join(os.uname()[0:3:2]), load()))


def cell(value):
    if value is None:
        return 'n/a'
    return '%.1f' % value if isinstance(value, float) else str(value)


def measure_workers(server, r, n_first, n_rt, n_growth, seconds):
    """The figures of the module's docstring but interrupts, into ``r``."""
    first = first_result(server, n_first, pause=1.0)
    r['first result median (ms)'] = statistics.median(first) * 1000
    rt = round_trip(server, n_rt)
    r['1+1 round trip median (ms)'] = statistics.median(rt) * 1000
    r['1+1 round trip p99 (ms)'] = pct(rt, 99) * 1000
    r['private MB gained per 1,000 cells'] = growth(server, n_growth)
    before, after = memory(server, 20)
    r['private MB per worksheet (20 idle)'] = (after - before) / 20 / 2 ** 20
    r['private MB all processes / 20'] = after / 20 / 2 ** 20
    # Like for like: plain text results, as Sage's Jupyter kernel gives.
    rate, lat, burst = throughput(server, 16, seconds)
    r['16 clients: cells/s'] = rate
    r['16 clients: p99 (ms)'] = pct(lat, 99) * 1000
    r['16 clients: p99 with the start (ms)'] = pct(lat + burst, 99) * 1000
    if server.name == Sagenb.name:  # the notebook's default: typeset math
        rate, lat, burst = throughput(server, 16, seconds, typeset=True)
        r['16 clients, typeset: cells/s'] = rate
        r['16 clients, typeset: p99 (ms)'] = pct(lat, 99) * 1000


if __name__ == '__main__':
    main()
