"""The commands as a user runs them, for the tests: ``sagenb-admin`` on a data folder,
``pserve development.ini`` in a session of its own, and a JSON call to such a server."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from .notebook import HERE

BIN = os.path.dirname(sys.executable)


DEV_INI = os.path.join(HERE, 'development.ini')


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def admin(data_dir, *args, stdin=''):
    return subprocess.run(
        [os.path.join(BIN, 'sagenb-admin'), DEV_INI, 'data_dir=%s' % data_dir, *args],
        input=stdin, capture_output=True, text=True, timeout=120)


class Server:
    """``pserve development.ini`` (or ``command`` in front of its arguments, e.g. a
    launcher that calls pserve's main), in a session of its own."""

    def __init__(self, data_dir, port, env=None, command=None):
        self.port = port
        self.url = 'http://127.0.0.1:%d' % port
        self.log = open(os.path.join(str(data_dir), 'pserve-%d.log' % time.time_ns()), 'w')
        # A session of its own, so that the test can kill the server and its Sage processes.
        self.proc = subprocess.Popen(
            (command or [os.path.join(BIN, 'pserve')]) +
            [DEV_INI, 'http_port=%d' % port, 'data_dir=%s' % data_dir],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
            env=dict(os.environ, **(env or {})))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError('pserve exited: ' + self.output())
            try:
                urllib.request.urlopen(self.url + '/login', timeout=1)
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        raise AssertionError('pserve did not answer on %s: %s' % (self.url, self.output()))

    def output(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def kill(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:  # it ended, and its Sage processes with it
            pass
        self.proc.wait(timeout=10)
        self.log.close()


def call(server, token, method, path, body=None):
    request = urllib.request.Request(
        server.url + path, method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={'Authorization': 'Bearer ' + token, 'Content-Type': 'application/json',
                 'Accept': 'application/json'})
    try:
        with urllib.request.urlopen(request, timeout=90) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
