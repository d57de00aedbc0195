"""A worker host's door (workers/hostapi.py): only signed, fresh, unseen requests pass.

The registry behind the door is a recorder here: these tests are about who gets in.
Real hosts behind real doors are tested in tests/e2e/test_zeo.py."""
import http.client
import json
import socket
import threading
import time

import pytest
import webtest

from sagenb_pyramid.workers.hostapi import HostApi, serve, stop
from sagenb_pyramid.workers.signing import sign

SECRET = b'the shared worker secret'


class Recorder:
    def __init__(self):
        self.calls = []

    def interrupt(self, key):
        self.calls.append(('interrupt', key))
        return True


@pytest.fixture
def door():
    recorder = Recorder()
    return webtest.TestApp(HostApi(recorder, SECRET)), recorder


def signed(op, payload, secret=SECRET, stamp=None, nonce='n-1'):
    body = json.dumps(payload).encode()
    stamp = stamp or '%.3f' % time.time()
    return body, {'Content-Type': 'application/json', 'X-Sagenb-Time': stamp,
                  'X-Sagenb-Nonce': nonce,
                  'X-Sagenb-Signature': sign(secret, op, stamp, nonce, body)}


def test_a_signed_request_passes_once(door):
    app, recorder = door
    body, headers = signed('interrupt', {'key': ['u-1', 3]})
    assert app.post('/interrupt', body, headers=headers).json == {'result': True}
    assert recorder.calls == [('interrupt', ('u-1', 3))]
    # The same request again (a replay) is refused, and nothing more happens.
    assert app.post('/interrupt', body, headers=headers, status=403).json == {
        'error': 'replayed request'}
    assert len(recorder.calls) == 1


@pytest.mark.parametrize('tamper, message', [
    (lambda body, headers: (body, {'Content-Type': 'application/json'}), 'no timestamp'),
    (lambda body, headers: (body.replace(b'3', b'4'), headers), 'bad signature'),
    (lambda body, headers: (body, dict(headers, **{'X-Sagenb-Nonce': 'n-2'})),
     'bad signature'),
])
def test_unsigned_or_altered_requests_are_refused(door, tamper, message):
    app, recorder = door
    body, headers = tamper(*signed('interrupt', {'key': ['u-1', 3]}))
    answer = app.post('/interrupt', body, headers=headers, status=403).json
    assert answer['error'].startswith(message)
    assert recorder.calls == []


def test_another_secret_or_an_old_request_is_refused(door):
    app, recorder = door
    body, headers = signed('interrupt', {'key': ['u-1', 3]}, secret=b'another secret')
    assert app.post('/interrupt', body, headers=headers, status=403).json[
        'error'].startswith('bad signature')
    body, headers = signed('interrupt', {'key': ['u-1', 3]},
                           stamp='%.3f' % (time.time() - 600))
    assert 'timestamp off by' in app.post('/interrupt', body, headers=headers,
                                          status=403).json['error']
    body, headers = signed('interrupt', {'key': ['u-1', 3]}, stamp='nan')
    app.post('/interrupt', body, headers=headers, status=403)
    assert recorder.calls == []


def test_bad_operations_and_bodies_get_clear_errors(door):
    app, recorder = door
    body, headers = signed('format_disk', {})
    assert app.post('/format_disk', body, headers=headers, status=404).json == {
        'error': "no operation 'format_disk'"}
    body, headers = signed('interrupt', {'key': 'not a pair'}, nonce='n-3')
    assert app.post('/interrupt', body, headers=headers, status=400).json[
        'error'].startswith('bad request')
    assert app.get('/interrupt', status=405).json == {'error': 'POST only'}
    body, headers = signed('\u00e9t\u00e9', {}, nonce='n-4')
    assert app.post('/%C3%A9t%C3%A9', body, headers=headers, status=403).json[
        'error'].startswith('bad signature')
    assert recorder.calls == []


def test_a_cell_handed_to_a_host_that_is_gone_says_so(notebook, api_for):
    """The app server hands a job to a host whose door is closed (it died after the
    request placed the worksheet there): the cell ends with WorkerLost naming it."""
    import socket

    from sagenb_pyramid.workers import Job
    from sagenb_pyramid.workers.hosts import RemoteHost
    notebook.add_user('alice')
    api = api_for('alice')
    ws = api.post('/home/alice/', {'name': 'lost'}, status=201)['url']
    cell = api.post(ws + 'cells', {'input': '1 + 1'}, status=201)['id']
    with socket.socket() as s:  # a port nobody listens on
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    with notebook.transaction() as root:
        owner = root.user_by_login('alice').id
    gone = RemoteHost('gone-host', '127.0.0.1:%d' % port, SECRET, timeout=5)
    job = Job(owner, int(ws.rstrip('/').rsplit('/', 1)[1]), cell, 'run-1', '1 + 1')
    notebook.workers.submit(gone, job)
    lost = api.get('%scells/%d' % (ws, cell))
    assert lost['status'] == 'error'
    assert lost['outputs'][-1]['ename'] == 'WorkerLost'
    assert lost['outputs'][-1]['evalue'].startswith(
        'the worker host gone-host (127.0.0.1:%d) cannot be reached' % port)


def test_the_door_stops_cleanly_with_an_app_server_still_connected(monkeypatch):
    """Its sockets are closed in its own loop's thread: closed from another thread they
    vanished under the loop's ``select`` (EBADF in that thread), and a connection kept
    alive by an app server kept the loop running."""
    failures = []
    monkeypatch.setattr(threading, 'excepthook', failures.append)
    recorder = Recorder()
    server = serve(recorder, SECRET, '127.0.0.1:0')
    host, port = recorder.address.split(':')
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    body, headers = signed('interrupt', {'key': ['u-1', 3]})
    conn.request('POST', '/interrupt', body, headers)
    assert conn.getresponse().status == 200  # and the connection stays open
    stop(server)
    assert not server.loop_thread.is_alive()
    assert failures == []
    conn.close()


def test_a_host_that_does_not_answer_connections_is_unreachable_within_the_connect_timeout():
    """A host cut off by the network answers no connection attempt: the app server gives
    up after ``connect_timeout`` (sagenb.workers.connect_timeout), not after the
    operation's timeout, and says which host it could not reach."""
    from sagenb_pyramid.workers.contract import HostUnreachable
    from sagenb_pyramid.workers.hosts import RemoteHost
    with socket.socket() as listener:
        # A listener that never accepts, its queue full: further SYNs go unanswered,
        # as they do for a host whose link is down.
        listener.bind(('127.0.0.1', 0))
        listener.listen(0)
        address = '127.0.0.1:%d' % listener.getsockname()[1]
        queued = []
        while len(queued) < 8:  # fill the queue (its length varies: up to a timeout)
            try:
                queued.append(socket.create_connection(listener.getsockname(), timeout=0.5))
            except TimeoutError:
                break
        assert len(queued) < 8, 'the listen queue did not fill'
        try:
            silent = RemoteHost('silent-host', address, SECRET, timeout=30,
                                connect_timeout=1)
            started = time.monotonic()
            with pytest.raises(HostUnreachable) as raised:
                silent.ping()
            assert time.monotonic() - started < 5
            assert str(raised.value).startswith(
                'the worker host silent-host (%s) cannot be reached' % address)
        finally:
            for conn in queued:
                conn.close()
