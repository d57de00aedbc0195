"""A real PostgreSQL for the tests, from Debian's binaries, on a free 127.0.0.1 port.

``PostgresServer().start()`` makes a cluster with ``initdb`` in a temporary folder of
its own and runs ``postgres`` in the foreground (the test owns the process; ``stop()``
ends it with a fast shutdown and removes the folder, ``restart()`` keeps the data and
the port).  ``uri(db)`` is the zodburi URI of a database for ``SAGENB_ZODB_URI``
(RelStorage's ``postgres://`` resolver), ``dsn`` the libpq string of the maintenance
database, ``create_database(name)`` makes an empty one.  initdb refuses to run as
root: then the server runs as the system user ``postgres`` (made by Debian's
postgresql-common, which .ci/run installs).  Missing binaries fail with a message
saying what to install; nothing is skipped.

The ``postgres`` fixture (registered in tests/conftest.py) is one server for the whole
session: each test makes its own database.  ``restartable_postgres`` is one for a test
that stops it (``halt()``) and starts it again.
"""
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from urllib.parse import urlencode

import pytest

from .server import free_port

USER = 'sagenb'
# RelStorage's resolver passes the URI's password on as it is (no %-decoding).
PASSWORD = 'tests-pg-secret'
SYSTEM_USER = 'postgres'  # who runs the server when the tests run as root
# Speed over durability: a test's data is thrown away.  The benchmarks pass their own.
TEST_SETTINGS = {'fsync': 'off', 'synchronous_commit': 'off', 'full_page_writes': 'off'}


def bin_dir():
    """Debian's newest ``/usr/lib/postgresql/<version>/bin``."""
    found = sorted(glob.glob('/usr/lib/postgresql/*/bin/initdb'),
                   key=lambda path: int(path.split('/')[4].split('.')[0]))
    if not found:
        raise RuntimeError(
            'PostgreSQL is missing: the tests of RelStorage start their own server from '
            "Debian's binaries (/usr/lib/postgresql/<version>/bin/initdb); install them "
            '(apt-get install --no-install-recommends postgresql; .ci/run does)')
    return os.path.dirname(found[-1])


class PostgresServer:
    def __init__(self, settings=None):
        self.bin = bin_dir()
        self.settings = dict(TEST_SETTINGS if settings is None else settings)
        self.port = None
        self.dir = None
        self.process = None
        self._as = {}
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam(SYSTEM_USER)
            except KeyError:
                raise RuntimeError(
                    'initdb refuses to run as root, and there is no system user %r to '
                    'run PostgreSQL as: install postgresql-common (it makes one) or '
                    'run the tests as another user' % SYSTEM_USER) from None
            self._as = {'user': account.pw_uid, 'group': account.pw_gid,
                        'extra_groups': []}

    @property
    def dsn(self):
        """libpq connection string of the maintenance database ``postgres``."""
        return "host=127.0.0.1 port=%d user=%s password='%s' dbname=postgres" % (
            self.port, USER, PASSWORD)

    def uri(self, db='sagenb', **params):
        """The zodburi URI of database ``db`` (RelStorage); ``params`` go in its query,
        e.g. ``blob_dir=...``, ``shared_blob_dir='false'``."""
        query = urlencode({k: str(v) for k, v in params.items()})
        return 'postgres://%s:%s@127.0.0.1:%d/%s%s' % (
            USER, PASSWORD, self.port, db, '?' + query if query else '')

    def _run(self, *args, **kwargs):
        done = subprocess.run(args, capture_output=True, text=True, timeout=60,
                              cwd=self.dir, **self._as, **kwargs)
        if done.returncode:
            raise RuntimeError('%s failed (%d):\n%s%s' % (
                os.path.basename(args[0]), done.returncode, done.stdout, done.stderr))
        return done

    def start(self):
        if self.dir is None:
            # Not under pytest's tmp_path: root's is closed to the server's user.
            self.dir = tempfile.mkdtemp(prefix='sagenb-pg-')
            if self._as:
                os.chown(self.dir, self._as['user'], self._as['group'])
            pwfile = os.path.join(self.dir, 'pwfile')
            with open(pwfile, 'w') as f:
                f.write(PASSWORD + '\n')
            if self._as:
                os.chown(pwfile, self._as['user'], self._as['group'])
            self._run(os.path.join(self.bin, 'initdb'), '-D', self.data, '-U', USER,
                      '--pwfile', pwfile, '--auth-host', 'scram-sha-256',
                      '--auth-local', 'peer', '-E', 'UTF8', '--locale', 'C.UTF-8')
            os.unlink(pwfile)
            self.port = free_port()
        options = []
        for key, value in {'listen_addresses': '127.0.0.1', 'port': self.port,
                           'unix_socket_directories': self.dir, 'max_connections': 200,
                           **self.settings}.items():
            options += ['-c', '%s=%s' % (key, value)]
        self.log = open(os.path.join(self.dir, 'postgres.log'), 'ab')
        self.process = subprocess.Popen(
            [os.path.join(self.bin, 'postgres'), '-D', self.data] + options,
            stdout=self.log, stderr=subprocess.STDOUT, cwd=self.dir, **self._as)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError('postgres exited (%s):\n%s'
                                   % (self.process.returncode, self.log_text()))
            ready = subprocess.run(
                [os.path.join(self.bin, 'pg_isready'), '-q', '-h', '127.0.0.1',
                 '-p', str(self.port)], timeout=10)
            if ready.returncode == 0:
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError('postgres was not ready within 60 s:\n' + self.log_text())

    @property
    def data(self):
        return os.path.join(self.dir, 'data')

    def log_text(self):
        with open(os.path.join(self.dir, 'postgres.log'), errors='replace') as f:
            return f.read()[-4000:]

    def _halt(self):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # fast shutdown: clients cut off
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if getattr(self, 'log', None):
            self.log.close()
            self.log = None

    def restart(self):
        """Stop and start again on the same data and port (connections are cut)."""
        self._halt()
        return self.start()

    def halt(self):
        """Stop, keeping the data and the port: ``start()`` brings it back (the fault
        tests' outage; a fast shutdown cuts every connection)."""
        self._halt()

    @property
    def running(self):
        return self.process is not None and self.process.poll() is None

    def stop(self):
        self._halt()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def create_database(self, name):
        self._run(os.path.join(self.bin, 'createdb'), '-h', '127.0.0.1',
                  '-p', str(self.port), '-U', USER, name,
                  env=dict(os.environ, PGPASSWORD=PASSWORD))
        return name

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


@pytest.fixture(scope='session')
def postgres():
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture
def restartable_postgres():
    """A PostgreSQL of the test's own, which it may stop and start again (the session's
    ``postgres`` is shared by other tests)."""
    server = PostgresServer().start()
    yield server
    server.stop()


def blob_cache_uri(server, db, folder):
    """The URI of ``db`` for an app server keeping its blob cache in ``folder``: blobs
    live in the database (``shared_blob_dir=false``)."""
    return server.uri(db, blob_dir=os.path.join(str(folder), 'blob-cache'),
                      shared_blob_dir='false')


def app_server(server, db, tmp_path, name, **settings):
    """An app server (``Notebook``) named ``name`` on ``db``, with the secret that the
    app servers of a test share (tests/support/zeo.py's)."""
    from .notebook import Notebook
    from .zeo import SECRET
    folder = tmp_path / name
    return Notebook(folder, **{'sagenb.zodb_uri': blob_cache_uri(server, db, folder),
                               'sagenb.workers.server_name': name,
                               'sagenb.secret': SECRET, **settings})
