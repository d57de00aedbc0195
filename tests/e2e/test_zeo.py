"""Two app servers on one real ZEO server: shared state lives only in ZODB."""
import signal
import time

import pytest
import webtest

from ..support.notebook import Api, login
from ..support.zeo import WorkerHost, app_server


def evaluate(api, ws, code):
    cell = api.post(ws + 'cells', {'input': code}, status=201)['id']
    return api.post('%scells/%d/evaluate' % (ws, cell), {'wait': 60}, status=200)


def wait_until(condition, timeout=30):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, 'timed out'
        time.sleep(0.1)


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
            assert root.placements['%s/%d' % key] == one.host.server_tag
        assert one.host.is_running(key) and not two.host.is_running(key)
        # The worksheet's process is app1's, and app2 uses it (over app1's worker host
        # door on loopback): the variables are there, completion works, an interrupt
        # sent to app2 stops a loop started through app1.
        evaluate(api1, ws, 'secret_number = 6 * 7')
        assert evaluate(api2, ws, 'secret_number + 1')['outputs'][0]['data'][
            'text/plain'] == '43'
        reply = api2.post(ws + 'complete', {'code': 'secret_n', 'cursor_pos': 8}, status=200)
        assert 'secret_number' in reply['matches']
        loop = api1.post(ws + 'cells', {'input': 'while True: pass'}, status=201)['id']
        api1.post('%scells/%d/evaluate' % (ws, loop), {'wait': 0}, status=200)
        wait_until(lambda: api2.get('%scells/%d' % (ws, loop))['status'] == 'running')
        assert api2.post(ws + 'interrupt', status=200)['interrupted'] is True
        stopped = api1.get('%scells/%d' % (ws, loop), wait=30)
        assert stopped['status'] == 'error' and \
            stopped['outputs'][-1]['ename'] == 'KeyboardInterrupt', stopped
        assert not two.host.is_running(key)
        # A browser session made on one server is valid on the other (shared secret).
        browser = webtest.TestApp(one.app)
        login(browser, 'alice')
        other = webtest.TestApp(two.app, cookiejar=browser.cookiejar)
        assert 'shared' in other.get('/home/alice/').text
    finally:
        one.close()
        two.close()


def test_worker_hosts_of_their_own_serve_every_app_server(tmp_path, zeo_server):
    """App servers without Sage (embedded = false) and ``sagenb-worker`` processes: the
    placement in ZODB says which host runs a worksheet; any app server reaches it; a
    stopped or silent host's worksheets move and its busy cells are marked lost."""
    host_a = WorkerHost(tmp_path, zeo_server, 'host-a')
    hostless = {'sagenb.workers.embedded': 'false'}
    one = app_server(tmp_path, zeo_server, 'app1', **hostless)
    two = app_server(tmp_path, zeo_server, 'app2', **hostless)
    host_b = host_b_again = None
    try:
        assert one.host is None and two.host is None
        one.add_user('alice')
        token = one.token('alice')
        api1 = Api(webtest.TestApp(one.app), token)
        api2 = Api(webtest.TestApp(two.app), token)
        ws = api1.post('/home/alice/', {'name': 'remote'}, status=201)['url']
        # A data file goes to the host through ZODB (the host reads the blob itself).
        api1.testapp.post(ws + 'data', upload_files=[('file', 'n.txt', b'17')],
                          headers=api1.headers, status=201)
        first = evaluate(api1, ws, 'from_file = int(open(DATA + "n.txt").read()); from_file')
        assert first['status'] == 'done', first
        assert first['outputs'][0]['data']['text/plain'] == '17'
        number = int(ws.rstrip('/').rsplit('/', 1)[1])
        with one.transaction() as root:
            key = '%s/%d' % (root.user_by_login('alice').id, number)
            assert root.placements[key] == host_a.tag
            record = root.worker_hosts['host-a']
            assert record.address == host_a.address and record.interval == 1.0
        assert evaluate(api2, ws, 'from_file + 1')['outputs'][0]['data']['text/plain'] == '18'
        # The host publishes the worksheets it runs (the per-user limit counts them).
        wait_until(lambda: key in running_on(one, 'host-a'))

        # A request without the shared secret is refused by the host.
        refused = urllib_post('http://%s/restart' % host_a.address, b'{"key": ["x", 1]}')
        assert refused == 403
        # A second host of the same name is refused while the first answers.
        with pytest.raises(AssertionError, match="a worker host named 'host-a' is running"):
            WorkerHost(tmp_path, zeo_server, 'host-a', folder='host-a-twin')

        # The host stops while a cell runs: the cell ends, its worksheet has no host.
        slow = api1.post(ws + 'cells', {'input': 'sleep(60r)'}, status=201)['id']
        api1.post('%scells/%d/evaluate' % (ws, slow), {'wait': 0}, status=200)
        wait_until(lambda: api2.get('%scells/%d' % (ws, slow))['status'] == 'running')
        host_a.stop()
        lost = api2.get('%scells/%d' % (ws, slow))
        assert lost['status'] == 'error', lost
        res = api2.post(ws + 'evaluate_all', status=409)
        assert res['error'] == 'No worker host is running: try again in a while.'

        # Another host comes: the worksheet moves there, in a fresh process.
        host_b = WorkerHost(tmp_path, zeo_server, 'host-b')
        moved = evaluate(api2, ws, 'from_file')
        assert moved['outputs'][-1]['ename'] == 'NameError', moved
        with one.transaction() as root:
            assert root.placements[key] == host_b.tag

        # A host killed outright stops its heartbeat: after three missed ones its busy
        # cells read as lost, and no new cell goes to it.
        slow = api1.post(ws + 'cells', {'input': 'sleep(60r)'}, status=201)['id']
        api1.post('%scells/%d/evaluate' % (ws, slow), {'wait': 0}, status=200)
        wait_until(lambda: api2.get('%scells/%d' % (ws, slow))['status'] == 'running')
        host_b.stop(signal.SIGKILL)
        # Within its last heartbeat's grace the worksheet is still placed there: the app
        # server finds the door closed and says so; nothing is queued.
        cell = api1.post(ws + 'cells', {'input': '1 + 1'}, status=201)['id']
        refused = api1.post('%scells/%d/evaluate' % (ws, cell), {}, status=503)
        assert refused['error'].startswith('the worker host host-b (%s) cannot be reached'
                                           % host_b.address)
        assert api1.get('%scells/%d' % (ws, cell))['status'] == 'new'
        wait_until(lambda: api2.get('%scells/%d' % (ws, slow))['status'] == 'error',
                   timeout=15)
        lost = api1.get('%scells/%d' % (ws, slow))
        assert lost['outputs'][-1]['ename'] == 'WorkerLost', lost
        api1.post(ws + 'evaluate_all', status=409)

        # Started again under its name (its old door is silent): it takes over.
        host_b_again = WorkerHost(tmp_path, zeo_server, 'host-b', folder='host-b-again')
        assert evaluate(api1, ws, '1 + 1')['status'] == 'done'
        with one.transaction() as root:
            assert root.placements[key] == host_b_again.tag != host_b.tag
    finally:
        host_a.stop()
        if host_b is not None:
            host_b.stop(signal.SIGKILL)
        if host_b_again is not None:
            host_b_again.stop()
        one.close()
        two.close()


def running_on(notebook, name):
    with notebook.transaction() as root:
        return set(root.worker_hosts[name].running)


def urllib_post(url, body):
    import urllib.error
    import urllib.request
    try:
        urllib.request.urlopen(urllib.request.Request(url, data=body, method='POST'),
                               timeout=10)
    except urllib.error.HTTPError as exc:
        return exc.code
    return 200


def test_the_per_user_limit_counts_processes_on_every_host(tmp_path, zeo_server):
    """Worksheets of one user spread over two hosts still count against one limit; a
    new worksheet goes to the host with fewer processes."""
    host_a = WorkerHost(tmp_path, zeo_server, 'host-a')
    host_b = WorkerHost(tmp_path, zeo_server, 'host-b')
    one = app_server(tmp_path, zeo_server, 'app1', **{'sagenb.workers.embedded': 'false',
                                                      'sagenb.workers.max_per_user': '2'})
    try:
        one.add_user('alice')
        api = Api(webtest.TestApp(one.app), one.token('alice'))
        sheets = [api.post('/home/alice/', {'name': 'w%d' % i}, status=201)['url']
                  for i in range(3)]
        with one.transaction() as root:
            alice = root.user_by_login('alice').id
        keys = ['%s/%s' % (alice, ws.rstrip('/').rsplit('/', 1)[1]) for ws in sheets]

        def everywhere():
            return running_on(one, 'host-a') | running_on(one, 'host-b')

        assert evaluate(api, sheets[0], '1 + 1')['status'] == 'done'
        wait_until(lambda: keys[0] in everywhere())
        assert evaluate(api, sheets[1], '2 + 2')['status'] == 'done'
        wait_until(lambda: keys[1] in everywhere())
        with one.transaction() as root:
            placed = {root.placements[k].split(':')[0] for k in keys[:2]}
        assert placed == {'host-a', 'host-b'}
        cell = api.post(sheets[2] + 'cells', {'input': '3 + 3'}, status=201)['id']
        refused = api.post('%scells/%d/evaluate' % (sheets[2], cell), {}, status=409)
        assert refused['error'].startswith('2 worksheets of this user are running')
        # Restart stops a process on its host; once the host says so, there is room.
        api.post(sheets[0] + 'restart', status=200)
        wait_until(lambda: keys[0] not in everywhere())
        assert evaluate(api, sheets[2], '3 + 3')['status'] == 'done'
    finally:
        host_a.stop()
        host_b.stop()
        one.close()
