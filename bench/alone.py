"""Pages alone on their worksheets (issue 21): what their polling costs the others.

    .venv/bin/python bench/alone.py [--pages 24] [--threads 8] [--seconds 30]

One app server (the application from testing.ini, served by waitress with ``--threads``
threads on 127.0.0.1, a FileStorage of its own) and ``--pages`` simulated pages, each
of its own user on its own worksheet (API tokens), as a class of students each on their
own worksheet.  Meanwhile one client asks a quick ``GET`` of a cell every 0.5 s; its
latency is what is reported (p50, p95, max, ms), in two modes:

- ``long-poll`` (before): every page holds ``GET ?since=&wait=`` all the time (the
  server holds a page's poll ``sagenb.poll_hold``, 5 s, then it asks again) and
  heartbeats every 20 s;
- ``alone`` (after, static/page/live.js): a page alone heartbeats every 5 s and asks
  ``?since=&wait=0`` every 30 s (and when its heartbeat says the version moved).

Everything is loopback; the run stops by itself.
"""
import argparse
import logging
import http.client
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
import uuid

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import pct  # noqa: E402

import waitress  # noqa: E402
from waitress import wasyncore  # noqa: E402

from tests.support.notebook import Notebook  # noqa: E402

POLL_HOLD = 5  # the page's polls' hold (sagenb.poll_hold's default)


class Client:
    def __init__(self, port, token):
        self.conn = http.client.HTTPConnection('127.0.0.1', port, timeout=60)
        self.headers = {'Authorization': 'Bearer ' + token,
                        'Content-Type': 'application/json'}

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        self.conn.request(method, path, body=data, headers=self.headers)
        res = self.conn.getresponse()
        text = res.read()
        if res.status != 200:
            raise RuntimeError('%s %s: %s %s' % (method, path, res.status, text[:200]))
        return json.loads(text)


def page(port, token, path, mode, stop):
    client = Client(port, token)
    session = uuid.uuid4().hex
    version = client.call('GET', path)['version']
    # Pages do not open at the same instant.
    stop.wait(random.uniform(0, 5 if mode == 'alone' else POLL_HOLD))
    next_beat = time.monotonic()
    next_poll = time.monotonic()
    while not stop.is_set():
        now = time.monotonic()
        if now >= next_beat:
            answer = client.call('POST', path + 'presence', {'session': session})
            next_beat = now + (5 if mode == 'alone' and answer['others'] == 0 else 20)
            if mode == 'alone' and answer['version'] != version:
                next_poll = now
        if mode == 'long-poll':
            version = client.call('GET', path + '?since=%d&wait=%d' % (version, POLL_HOLD))[
                'version']
            continue
        if now >= next_poll:
            version = client.call('GET', path + '?since=%d&wait=0' % version)['version']
            next_poll = now + 30
        stop.wait(max(0.05, min(next_beat, next_poll) - time.monotonic()))
    client.conn.close()


def run(mode, pages, threads, seconds):
    folder = tempfile.mkdtemp(prefix='bench-alone-')
    nb = Notebook(os.path.join(folder, 'data'), **{'sagenb.api.max_wait': str(POLL_HOLD)})
    users = []
    for i in range(pages + 1):
        login = 'student%d' % i
        nb.add_user(login)
        with nb.transaction() as root:
            ws = root.user_by_login(login).create_worksheet('mine')
            path = '/home/%s/%s/' % (login, ws.__name__)
        users.append((nb.token(login), path))
    server = waitress.create_server(nb.app, host='127.0.0.1', port=0, threads=threads)
    serving = threading.Thread(target=server.run, daemon=True)
    serving.start()
    port = server.effective_port
    stop = threading.Event()
    workers = [threading.Thread(target=page, args=(port, token, path, mode, stop))
               for token, path in users[1:]]
    for w in workers:
        w.start()
    time.sleep(6)  # every page is polling
    probe = Client(port, users[0][0])
    cell = users[0][1] + 'cells/0'
    times = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.monotonic()
        probe.call('GET', cell)
        times.append((time.monotonic() - started) * 1000)
        time.sleep(0.5)
    stop.set()
    for w in workers:
        w.join(timeout=POLL_HOLD + 10)
    server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))
    serving.join(timeout=10)
    server.task_dispatcher.shutdown()
    nb.close()
    shutil.rmtree(folder, ignore_errors=True)
    return times


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--pages', type=int, default=24)
    parser.add_argument('--threads', type=int, default=8)
    parser.add_argument('--seconds', type=float, default=30)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # waitress's queue depth, the notebook's notes
    print('%d pages alone on their worksheets, %d threads, a quick GET every 0.5 s for '
          '%.0f s' % (args.pages, args.threads, args.seconds))
    for mode in ('long-poll', 'alone'):
        times = run(mode, args.pages, args.threads, args.seconds)
        print('%-10s quick GET ms: p50 %7.1f  p95 %7.1f  max %7.1f  (%d GETs)' % (
            mode, pct(times, 50), pct(times, 95), max(times), len(times)))


if __name__ == '__main__':
    main()
