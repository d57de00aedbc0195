"""A class on one server: simulated students at human pace, against a real pserve.

    .venv/bin/python bench/classroom.py [--users 200] [--arrival 20] [--minutes 5]

Starts ``pserve development.ini`` on 127.0.0.1 with a data directory of its own, adds
the students to its database first, then lets them arrive evenly over ``--arrival``
seconds.  Each one logs in through the form, lists their worksheets, makes one, opens
it and then, until the run ends, every 10-30 s (think time) edits a cell, evaluates a
small Sage cell (as the page does: ``evaluate`` with ``wait: 2``, then long polls with
``since``), lists, opens, or starts a new cell; the open page says "alive" every
minute.  A quarter have a second worksheet they switch to (their first one's page is
closed: its process is stopped as idle, ``idle_timeout`` is 120 s here), some upload a
data file or import a notebook.  Everything is loopback, and the run stops by itself.

Prints p50/p95/p99 per kind of request, the first result of each student (most of them
during the arrival burst), every failure, and the app server's descriptors, threads and
memory and the number of Sage processes over time (from ``/proc``).

The peer, in the same run (``--peer-users``, 0 to skip): jupyter_server with a Sage
kernel per student, driven over its websocket as JupyterLab does, with the same arrival
and think times (no login: its token is shared).  A Sage kernel there costs about
190 MB of its own (bench/workers.py), so 200 of them (38 GB) do not fit on the 24 GB
machine this was written on: the peer runs with fewer students, and its memory per
student is reported beside ours.  Needs jupyter_server, websocket-client and psutil
(``make bench-class`` installs them).
"""
import argparse
import http.client
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from urllib.parse import urlencode

import psutil

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
DEV_INI = os.path.join(HERE, 'development.ini')
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import free_port, pct, wait_http  # noqa: E402
from workers import Jupyter, JupyterSession, uss_of_descendants  # noqa: E402

PASSWORD = 'class of 2026 password'
SMALL_CELLS = ['1+1', 'factor(2^32+1)', 'sum(i^2 for i in range(100))',
               "x = var('x'); diff(sin(x)^2, x)", 'matrix(QQ, 3, 3, range(9)).rank()',
               'n = 17; is_prime(n)', 'a = 5; a^3']
EXPECTED = {'1+1': '2'}


def add_students(data_dir, count):
    """The students, written to the database before the server starts (one password
    hash for all: the server still verifies it at each login)."""
    from plaster import get_settings
    from sagenb_pyramid import db_from_uri
    from sagenb_pyramid.auth.passwords import hash_password
    from sagenb_pyramid.resources import ensure_root, in_transaction
    from sagenb_pyramid.settings import prepare
    settings = dict(get_settings(DEV_INI, 'app:main'))
    prepare({'data_dir': data_dir}, settings)
    db = db_from_uri(settings['zodbconn.uri'], 'unnamed', {})
    ensure_root(db)
    hashed = hash_password(PASSWORD)

    def add(root):
        for i in range(count):
            root.add_user('s%03d' % i, hashed)
    in_transaction(db, add)
    db.close()


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.times = {}       # kind -> [seconds]
        self.errors = []      # (time, kind, status, message)
        self.first_results = []  # (arrival offset, seconds)
        self.started = time.monotonic()

    def add(self, kind, seconds):
        with self.lock:
            self.times.setdefault(kind, []).append(seconds)

    def error(self, kind, status, message):
        with self.lock:
            self.errors.append((time.monotonic() - self.started, kind, status,
                                str(message)[:200]))


class Failed(Exception):
    pass


class Student:
    """One person with a browser: a session cookie, a CSRF token, one connection."""

    def __init__(self, server, login, stats, rng):
        self.server, self.login, self.stats, self.rng = server, login, stats, rng
        self.conn = None
        self.cookie = ''
        self.csrf = ''
        self.sheets = []   # [{"url", "cells": [ids]}]
        self.current = None
        self.alive_at = 0.0
        self.first_result = None
        self.logged_in = False

    # -- HTTP ------------------------------------------------------------------------
    def request(self, kind, method, path, body=None, json_body=True, headers=None,
                ok=(200, 201, 302)):
        hdrs = {'Cookie': self.cookie, 'Accept': 'application/json'}
        hdrs.update(headers or {})
        if body is not None and json_body:
            body = json.dumps(body)
            hdrs['Content-Type'] = 'application/json'
        if method != 'GET' and self.csrf:
            hdrs['X-CSRF-Token'] = self.csrf
        started = time.monotonic()
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection('127.0.0.1', self.server.port,
                                                       timeout=120)
            try:
                self.conn.request(method, path, body, hdrs)
                response = self.conn.getresponse()
                data = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError,
                    BrokenPipeError) as exc:
                self.conn.close()
                self.conn = None
                if attempt:
                    self.stats.error(kind, 'connection', exc)
                    raise Failed(kind) from None
            except OSError as exc:
                self.conn.close()
                self.conn = None
                self.stats.error(kind, 'connection', exc)
                raise Failed(kind) from None
        elapsed = time.monotonic() - started
        for header, value in response.getheaders():
            if header.lower() == 'set-cookie' and value.startswith('sagenb_session='):
                self.cookie = value.split(';', 1)[0]
        if response.status not in ok:
            try:
                message = json.loads(data).get('error', data[:200])
            except ValueError:
                message = data[:200]
            self.stats.error(kind, response.status, message)
            raise Failed(kind)
        self.stats.add(kind, elapsed)
        return response, data

    def json(self, kind, method, path, body=None, **kw):
        return json.loads(self.request(kind, method, path, body, **kw)[1])

    def page(self, kind, path):
        _, data = self.request(kind, 'GET', path, headers={'Accept': 'text/html'})
        text = data.decode('utf-8', 'replace')
        match = re.search(r'name="csrf-token" content="([^"]+)"', text)
        if match:
            self.csrf = match.group(1)
        return text

    # -- what a student does -------------------------------------------------------------
    def log_in(self):
        self.page('login page', '/login')
        form = urlencode({'login': self.login, 'password': PASSWORD,
                          'csrf_token': self.csrf})
        self.request('login', 'POST', '/login', form, json_body=False,
                     headers={'Content-Type': 'application/x-www-form-urlencoded',
                              'Accept': 'text/html'}, ok=(302,))
        self.logged_in = True

    def home(self):
        return '/home/%s/' % self.login

    def new_worksheet(self, name):
        made = self.json('create', 'POST', self.home(), {'name': name})
        sheet = {'url': made['url'], 'cells': []}
        self.sheets.append(sheet)
        self.open(sheet)
        return sheet

    def open(self, sheet):
        self.page('open', sheet['url'])
        data = self.json('open json', 'GET', sheet['url'])
        sheet['cells'] = [c['id'] for c in data['cells'] if c['type'] == 'compute']
        self.current = sheet
        self.alive_at = time.monotonic()

    def list(self):
        self.page('list', self.home())

    def new_cell(self, code):
        made = self.json('new cell', 'POST', self.current['url'] + 'cells', {'input': code})
        self.current['cells'].append(made['id'])
        return made['id']

    def edit(self):
        if not self.current['cells']:
            self.new_cell('1+1')
        cell = self.rng.choice(self.current['cells'])
        self.json('edit', 'PATCH', '%scells/%d' % (self.current['url'], cell),
                  {'input': self.rng.choice(SMALL_CELLS)})

    def evaluate(self):
        code = self.rng.choice(SMALL_CELLS)
        if not self.current['cells'] or self.rng.random() < 0.3:
            cell = self.new_cell(code)
        else:
            cell = self.rng.choice(self.current['cells'])
        url = '%scells/%d' % (self.current['url'], cell)
        started = time.monotonic()
        answer = self.json('evaluate request', 'POST', url + '/evaluate',
                           {'input': code, 'wait': 2})
        while answer['status'] in ('queued', 'running'):
            answer = self.json('poll', 'GET', '%s?since=%s&wait=5' % (
                url, answer.get('version', 0)))
        elapsed = time.monotonic() - started
        if answer['status'] != 'done':
            self.stats.error('evaluate', answer['status'], answer['outputs'][-1:])
            raise Failed('evaluate')
        shown = ''.join(o.get('data', {}).get('text/plain', '') for o in answer['outputs'])
        if code in EXPECTED and EXPECTED[code] not in shown:
            self.stats.error('evaluate', 'wrong', shown)
            raise Failed('evaluate')
        self.stats.add('evaluate (to the result)', elapsed)
        if self.first_result is None:
            self.first_result = elapsed
            self.stats.first_results.append((started - self.stats.started, elapsed))

    def upload(self):
        self.json('upload', 'POST', self.current['url'] + 'data',
                  {'name': 'data%d.txt' % self.rng.randrange(1000),
                   'content': '1 2 3\n' * 200, 'replace': True})

    def import_notebook(self):
        notebook = {
            'nbformat': 4, 'nbformat_minor': 5, 'metadata': {},
            'cells': [{'cell_type': 'markdown', 'id': 'a', 'metadata': {},
                       'source': '# Homework'},
                      {'cell_type': 'code', 'id': 'b', 'metadata': {}, 'outputs': [],
                       'execution_count': None, 'source': 'factor(2^32+1)'}]}
        boundary = uuid.uuid4().hex
        body = ('--%s\r\nContent-Disposition: form-data; name="file"; '
                'filename="homework.ipynb"\r\nContent-Type: application/json\r\n\r\n%s\r\n'
                '--%s--\r\n' % (boundary, json.dumps(notebook), boundary)).encode()
        self.request('import', 'POST', self.home() + 'import', body, json_body=False,
                     headers={'Content-Type': 'multipart/form-data; boundary=' + boundary})

    def alive(self):
        if time.monotonic() - self.alive_at >= 60:
            self.alive_at = time.monotonic()
            self.json('alive', 'GET', self.current['url'] + 'alive')

    def run(self, start_at, end_at):
        rng = self.rng
        time.sleep(max(0, start_at - time.monotonic()))
        try:
            self.log_in()
            self.list()
            self.new_worksheet('Lesson 1')
            self.evaluate()
        except Failed:
            pass
        second = rng.random() < 0.25
        uploader = rng.random() < 0.2
        importer = rng.random() < 0.1
        while True:
            # Think, with the page open (it says "alive" every minute).
            wake = time.monotonic() + rng.uniform(10, 30)
            while time.monotonic() < min(wake, end_at):
                time.sleep(min(5, max(0, min(wake, end_at) - time.monotonic())))
                try:
                    if self.current is not None:
                        self.alive()
                except Failed:
                    pass
            if time.monotonic() >= end_at:
                return
            try:
                if self.current is None:  # what failed at arrival, again
                    if not self.logged_in:
                        self.log_in()
                        self.list()
                    self.new_worksheet('Lesson 1')
                    continue
                roll = rng.random()
                if second and len(self.sheets) == 1 and roll < 0.3:
                    self.new_worksheet('Lesson 2')
                    self.evaluate()
                elif len(self.sheets) > 1 and roll < 0.1:
                    self.open(self.sheets[0] if self.current is self.sheets[1]
                              else self.sheets[1])
                elif uploader and roll < 0.15:
                    self.upload()
                elif importer and roll < 0.15:
                    self.import_notebook()
                elif roll < 0.55:
                    self.evaluate()
                elif roll < 0.75:
                    self.edit()
                elif roll < 0.85:
                    self.list()
                else:
                    self.open(self.current)
            except Failed:
                pass


class PeerStudent:
    """One JupyterLab user of jupyter_server: a kernel and its websocket."""

    def __init__(self, server, stats, rng):
        self.server, self.stats, self.rng = server, stats, rng
        self.session = None
        self.first_result = None

    def evaluate(self, arrived=None):
        """One small cell; ``arrived``: the student's first, counted from when they
        opened the notebook (its kernel's start included, as for sagenb-pyramid)."""
        code = self.rng.choice(SMALL_CELLS)
        started = time.monotonic()
        try:
            result = self.session.execute(code)
        except Exception as exc:  # the websocket closed, the kernel died
            self.stats.error('evaluate', 'websocket', exc)
            raise Failed('evaluate') from None
        elapsed = time.monotonic() - started
        if code in EXPECTED and EXPECTED[code] not in str(result):
            self.stats.error('evaluate', 'wrong', result)
            raise Failed('evaluate')
        self.stats.add('evaluate (to the result)', elapsed)
        if arrived is not None:
            self.first_result = time.monotonic() - arrived
            self.stats.first_results.append((arrived - self.stats.started,
                                             self.first_result))

    def run(self, start_at, end_at):
        time.sleep(max(0, start_at - time.monotonic()))
        started = time.monotonic()
        try:
            self.session = JupyterSession(self.server)
            self.stats.add('create (kernel started)', time.monotonic() - started)
            self.evaluate(arrived=started)
        except Failed:
            return
        except Exception as exc:
            self.stats.error('create', 'failed', exc)
            return
        while True:
            wake = time.monotonic() + self.rng.uniform(10, 30)
            time.sleep(max(0, min(wake, end_at) - time.monotonic()))
            if time.monotonic() >= end_at:
                return
            try:
                self.evaluate()
            except Failed:
                return


def run_peer(args, folder):
    """The same class (fewer students) on jupyter_server; returns its report lines."""
    server = Jupyter(folder)
    try:
        stats = Stats()
        samples, stop = [], threading.Event()
        threading.Thread(target=sample, args=(server.proc.pid, samples, stop,
                                              stats.started), daemon=True).start()
        end_at = stats.started + args.arrival + args.minutes * 60
        students = [PeerStudent(server, stats, random.Random(args.seed * 1000 + i))
                    for i in range(args.peer_users)]
        threads = [threading.Thread(
            target=s.run, args=(stats.started + i * args.arrival / len(students), end_at),
            daemon=True) for i, s in enumerate(students)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=max(1, end_at + 180 - time.monotonic()))
        stop.set()
        private = uss_of_descendants(server.proc.pid)
        alive = server.proc.poll() is None
        report(args, stats, samples, students, alive, users=args.peer_users,
               name='jupyter_server')
        print('\nprivate memory of its kernels: %.0f MB, %.0f MB per student'
              % (private / 1024 ** 2, private / 1024 ** 2 / max(1, args.peer_users)))
    finally:
        server.stop()


def sample(pid, samples, stop, started):
    process = psutil.Process(pid)
    while not stop.wait(2):
        try:
            with process.oneshot():
                fds, threads = process.num_fds(), process.num_threads()
                rss = process.memory_info().rss
            # Every process it started: the fork server and the Sage processes (spares
            # included) for sagenb-pyramid, the kernels for jupyter_server.
            started_processes = len(process.children(recursive=True))
        except psutil.Error:
            samples.append((time.monotonic() - started, None, None, None, None))
            return
        samples.append((time.monotonic() - started, fds, threads, rss / 1024 ** 2,
                        started_processes))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--users', type=int, default=200)
    parser.add_argument('--arrival', type=float, default=20, help='seconds')
    parser.add_argument('--minutes', type=float, default=5)
    parser.add_argument('--seed', type=int, default=17)
    parser.add_argument('--keep', action='store_true', help='keep the data directory')
    parser.add_argument('--peer-users', type=int, default=40,
                        help='students of the jupyter_server run (0: none)')
    args = parser.parse_args()

    folder = tempfile.mkdtemp(prefix='classroom-')
    data = os.path.join(folder, 'data')
    print('adding %d students ...' % args.users, flush=True)
    add_students(data, args.users)
    port = free_port()
    log_path = os.path.join(folder, 'pserve.log')
    log = open(log_path, 'w')
    env = dict(os.environ, SAGENB_WORKERS_IDLE_TIMEOUT='120')
    proc = subprocess.Popen(
        [os.path.join(BIN, 'pserve'), DEV_INI, 'http_port=%d' % port, 'data_dir=' + data],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    class Server:
        pass
    server = Server()
    server.port = port
    try:
        wait_http(port, '/login')
        time.sleep(8)  # the fork server warms up and forks its spare
        stats = Stats()
        samples, stop = [], threading.Event()
        sampler = threading.Thread(target=sample, args=(proc.pid, samples, stop,
                                                        stats.started), daemon=True)
        sampler.start()
        end_at = stats.started + args.arrival + args.minutes * 60
        students = [Student(server, 's%03d' % i, stats, random.Random(args.seed * 1000 + i))
                    for i in range(args.users)]
        threads = [threading.Thread(
            target=s.run, args=(stats.started + i * args.arrival / args.users, end_at),
            daemon=True) for i, s in enumerate(students)]
        print('%d students arrive over %g s, then work for %g min ...'
              % (args.users, args.arrival, args.minutes), flush=True)
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=max(1, end_at + 180 - time.monotonic()))
        stop.set()
        alive = proc.poll() is None
        private = uss_of_descendants(proc.pid)
        report(args, stats, samples, students, alive)
        print('\nprivate memory of its Sage processes (spares included): %.0f MB, '
              '%.0f MB per student' % (private / 1024 ** 2, private / 1024 ** 2 / args.users))
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        log.close()
        with open(log_path) as f:
            lines = [line for line in f if ' ERROR ' in line or 'CRITI' in line]
        if lines:
            print('\nserver log, errors (%d):' % len(lines))
            for line in lines[:10]:
                print('  ' + line.rstrip()[:200])
    if args.peer_users:
        print('\n%d students on jupyter_server ...' % args.peer_users, flush=True)
        run_peer(args, folder)
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    else:
        print('data and log kept in', folder)


def report(args, stats, samples, students, alive, users=None, name='sagenb-pyramid'):
    print('\n== %s: %d users, arrival over %g s, %g min; server %s at the end'
          % (name, users or args.users, args.arrival, args.minutes,
             'alive' if alive else 'DEAD'))
    print('\n| request | count | p50 (ms) | p95 (ms) | p99 (ms) | max (ms) |')
    print('|---|---|---|---|---|---|')
    for kind in sorted(stats.times):
        values = stats.times[kind]
        print('| %s | %d | %.0f | %.0f | %.0f | %.0f |' % (
            kind, len(values), 1000 * pct(values, 50), 1000 * pct(values, 95),
            1000 * pct(values, 99), 1000 * max(values)))
    firsts = [seconds for _, seconds in stats.first_results]
    burst = [seconds for offset, seconds in stats.first_results if offset < args.arrival + 5]
    got = sum(1 for s in students if s.first_result is not None)
    print('\nfirst result: %d of %d users got one' % (got, len(students)))
    if burst:
        print('  during the arrival burst (%d): p50 %.0f ms, p95 %.0f ms, max %.0f ms' % (
            len(burst), 1000 * pct(burst, 50), 1000 * pct(burst, 95), 1000 * max(burst)))
    if firsts:
        print('  all: mean %.0f ms' % (1000 * statistics.mean(firsts)))
    print('\nerrors: %d' % len(stats.errors))
    by_kind = {}
    for _, kind, status, message in stats.errors:
        by_kind.setdefault((kind, status), []).append(message)
    for (kind, status), messages in sorted(by_kind.items(), key=str):
        print('  %s %s x%d: %s' % (kind, status, len(messages), messages[0]))
    print('\n| t (s) | descriptors | threads | RSS (MB) | processes it started |')
    print('|---|---|---|---|---|')
    step = max(1, len(samples) // 16)
    for t, fds, threads, rss, kernels in samples[::step] + samples[-1:]:
        if fds is None:
            print('| %.0f | (server gone) | | | |' % t)
        else:
            print('| %.0f | %d | %d | %.0f | %d |' % (t, fds, threads, rss, kernels))


if __name__ == '__main__':
    main()
