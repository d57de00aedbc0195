"""A real ZEO server on loopback (the ``zeo_server`` fixture, registered in
tests/conftest.py) and app servers that share it."""
import os
import socket
import subprocess
import sys
import time

import pytest

from .notebook import Notebook
from .server import free_port

ZEO_CONF = """
<zeo>
  address 127.0.0.1:%d
</zeo>
<filestorage>
  path %s/Data.fs
  blob-dir %s/blobs
</filestorage>
"""


@pytest.fixture
def zeo_server(tmp_path):
    port = free_port()
    folder = tmp_path / 'zeo'
    os.makedirs(folder)
    (folder / 'zeo.conf').write_text(ZEO_CONF % (port, folder, folder))
    runzeo = os.path.join(os.path.dirname(sys.executable), 'runzeo')
    proc = subprocess.Popen([runzeo, '-C', str(folder / 'zeo.conf')],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(('127.0.0.1', port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise AssertionError('runzeo did not start on port %d' % port) from None
            time.sleep(0.1)
    yield port
    proc.terminate()
    proc.wait(timeout=10)


SECRET = 'shared secret for every server'


def zeo_uri(tmp_path, port, name):
    return 'zeo://127.0.0.1:%d?blob_dir=%s&shared_blob_dir=false' % (
        port, tmp_path / name / 'blob-cache')


def app_server(tmp_path, port, name, **settings):
    return Notebook(tmp_path / name, **{'sagenb.zodb_uri': zeo_uri(tmp_path, port, name),
                                        'sagenb.workers.server_name': name,
                                        'sagenb.secret': SECRET, **settings})
