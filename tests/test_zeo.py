"""Two app servers on one real ZEO server: shared state lives only in ZODB."""
import os
import socket
import subprocess
import sys
import time

import pytest
import webtest

from .conftest import Api, Notebook, login
from .test_server import free_port

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


def app_server(tmp_path, port, name):
    uri = 'zeo://127.0.0.1:%d?blob_dir=%s&shared_blob_dir=false' % (
        port, tmp_path / name / 'blob-cache')
    return Notebook(tmp_path / name, **{'sagenb.zodb_uri': uri,
                                        'sagenb.workers.server_name': name,
                                        'sagenb.secret': 'shared secret for both servers'})


def test_two_app_servers_share_worksheets_and_live_outputs(tmp_path, zeo_server):
    one = app_server(tmp_path, zeo_server, 'app1')
    two = app_server(tmp_path, zeo_server, 'app2')
    try:
        one.add_user('alice')
        token = one.token('alice')
        api1 = Api(webtest.TestApp(one.app), token)
        api2 = Api(webtest.TestApp(two.app), token)
        ws = api1.post('/home/alice/', {'name': 'shared'}, status=201)['url']
        assert [w['name'] for w in api2.get('/home/alice/')['worksheets']] == ['shared']
        code = 'for i in range(3): print(i); sleep(0.5r)'
        cell = api2.post(ws + 'cells', {'input': code}, status=201)['id']
        api1.post('%scells/%d/evaluate' % (ws, cell), {'wait': 0}, status=200)
        # app2 runs no Sage process for it, yet its long-poll sees every output.
        seen = api2.get('%scells/%d' % (ws, cell), wait=60)
        assert seen['status'] == 'done', seen
        assert seen['outputs'] == [{'output_type': 'stream', 'name': 'stdout',
                                    'text': '0\n1\n2\n'}]
        number = int(ws.rstrip('/').rsplit('/', 1)[1])
        with two.transaction() as root:
            key = (root.user_by_login('alice').id, number)
        assert one.workers.is_running(key) and not two.workers.is_running(key)
        # A browser session made on one server is valid on the other (shared secret).
        browser = webtest.TestApp(one.app)
        login(browser, 'alice')
        other = webtest.TestApp(two.app, cookiejar=browser.cookiejar)
        assert 'shared' in other.get('/home/alice/').text
    finally:
        one.close()
        two.close()
