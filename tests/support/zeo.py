"""A real ZEO server on loopback (the ``zeo_server`` and ``restartable_zeo`` fixtures,
registered in tests/conftest.py), app servers that share it, and ``sagenb-worker``
processes (``WorkerHost``)."""
import os
import select
import signal
import socket
import subprocess
import sys
import time

import pytest

from .notebook import TESTING_INI, Notebook
from .server import free_port

ZEO_CONF = """
<zeo>
  address %s:%d
</zeo>
<filestorage>
  path %s/Data.fs
  blob-dir %s/blobs
</filestorage>
"""


class ZeoServer:
    """``runzeo`` on a fixed port and folder: stopped and started again on the same
    address (the fault tests restart it under load).  ``bind``: the address it listens
    on; ``command``: a prefix to start it with (``ip netns exec NAME``)."""

    def __init__(self, folder, port=None, bind='127.0.0.1', command=()):
        self.port = port or free_port()
        self.folder = folder
        self.command = list(command)
        os.makedirs(folder, exist_ok=True)
        self.conf = str(folder / 'zeo.conf')
        with open(self.conf, 'w') as f:
            f.write(ZEO_CONF % (bind, self.port, folder, folder))
        self.proc = None
        self.start()

    def start(self, timeout=30):
        runzeo = os.path.join(os.path.dirname(sys.executable), 'runzeo')
        self.proc = subprocess.Popen([*self.command, runzeo, '-C', self.conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(('127.0.0.1', self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise AssertionError('runzeo did not start on port %d' % self.port) \
                        from None
                time.sleep(0.1)

    def stop(self, sig=signal.SIGTERM):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture
def zeo_server(tmp_path):
    server = ZeoServer(tmp_path / 'zeo')
    yield server.port
    server.stop()


@pytest.fixture
def restartable_zeo(tmp_path):
    """A ``ZeoServer`` the test may stop and start again."""
    server = ZeoServer(tmp_path / 'zeo')
    yield server
    server.stop()


SECRET = 'shared secret for every server'


def zeo_uri(tmp_path, port, name, host='127.0.0.1'):
    return 'zeo://%s:%d?blob_dir=%s&shared_blob_dir=false' % (
        host, port, tmp_path / name / 'blob-cache')


def app_server(tmp_path, port, name, **settings):
    return Notebook(tmp_path / name, **{'sagenb.zodb_uri': zeo_uri(tmp_path, port, name),
                                        'sagenb.workers.server_name': name,
                                        'sagenb.secret': SECRET, **settings})


class WorkerHost:
    """``sagenb-worker`` in a process (and session) of its own, on the ZEO server at
    ``port`` or, given ``uri``, on that database (PostgreSQL: bench/faults.py)."""

    def __init__(self, tmp_path, port, name, heartbeat='1', folder=None, command=(),
                 listen='127.0.0.1:0', zeo_host='127.0.0.1', uri=None):
        folder = tmp_path / (folder or name)
        os.makedirs(folder, exist_ok=True)
        env = dict(os.environ,
                   SAGENB_ZODB_URI=uri or zeo_uri(tmp_path, port, name, zeo_host),
                   SAGENB_SECRET=SECRET, SAGENB_WORKERS_SERVER_NAME=name,
                   SAGENB_WORKERS_LISTEN=listen,
                   SAGENB_WORKERS_HEARTBEAT=heartbeat)
        self.log = open(folder / 'worker.log', 'w+')
        self.proc = subprocess.Popen(
            [*command, os.path.join(os.path.dirname(sys.executable), 'sagenb-worker'), TESTING_INI,
             'data_dir=%s' % folder], env=env, stdout=subprocess.PIPE,
            stderr=self.log, text=True, start_new_session=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 60)
        line = self.proc.stdout.readline() if ready else ''
        if not line.startswith('sagenb-worker %s ' % name):
            self.proc.kill()
            self.proc.wait()
            self.log.seek(0)
            raise AssertionError('sagenb-worker did not start: %r\n%s'
                                 % (line, self.log.read()))
        self.tag = '%s:%s' % (name, line.split('(boot ')[1].split(')')[0])
        self.address = line.rsplit(' ', 1)[1].strip()

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
        self.proc.wait(timeout=30)
        self.log.close()


def app_env(tmp_path, zeo_port, name, **more):
    """The environment of an app server ``name`` on the ZEO server at ``zeo_port`` (its
    blob cache under ``tmp_path``), for the fault tests: heartbeats every second, no
    spare processes."""
    env = {'SAGENB_ZODB_URI': zeo_uri(tmp_path, zeo_port, name), 'SAGENB_SECRET': SECRET,
           'SAGENB_WORKERS_SERVER_NAME': name, 'SAGENB_WORKERS_HEARTBEAT': '1',
           'SAGENB_WORKERS_SPARE': '0', 'SAGENB_HEALTH_MIN_FREE_MB': '1'}
    env.update(more)
    return env
