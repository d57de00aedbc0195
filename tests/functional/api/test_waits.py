"""Long polls are capped per user (``sagenb.api.max_waits_per_user``): past the cap a
request gets 429 at once and changes nothing, so one user's waiting scripts cannot hold
every thread while another user's request waits behind them."""
import json
import threading
import time
import urllib.error
import urllib.request

import pytest
import waitress
from waitress import wasyncore
import webtest
from ZODB.POSException import ConflictError

from sagenb_pyramid import waits
from sagenb_pyramid.services import evaluation

from ...support.notebook import Api, Notebook

CAP = 2
HOLD = 5  # seconds a poll that sees no change waits


@pytest.fixture
def served(tmp_path):
    """A notebook with a per-user cap of 2, served by waitress with 4 threads."""
    nb = Notebook(tmp_path / 'data', **{'sagenb.api.max_waits_per_user': str(CAP)})
    for login_name in ('alice', 'bob'):
        nb.add_user(login_name)
        with nb.transaction() as root:
            root.user_by_login(login_name).create_worksheet('W')
    server = waitress.create_server(nb.app, host='127.0.0.1', port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    nb.url = 'http://127.0.0.1:%s' % server.effective_port
    yield nb
    # Closed from the server's own loop, which then ends (no select on a closed socket).
    server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))
    thread.join(timeout=10)
    server.task_dispatcher.shutdown()
    nb.close()


def call(nb, token, method, path, body=None, timeout=30):
    """(status, JSON answer, headers, seconds taken) of one request."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(nb.url + path, data=data, method=method, headers={
        'Authorization': 'Bearer ' + token, 'Content-Type': 'application/json'})
    start = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as res:
            status, text, headers = res.status, res.read(), res.headers
    except urllib.error.HTTPError as err:
        status, text, headers = err.code, err.read(), err.headers
    return status, json.loads(text), headers, time.monotonic() - start


def in_threads(count, work):
    """Run ``work()`` in ``count`` threads started together; their results, in order."""
    results = [None] * count
    barrier = threading.Barrier(count)

    def run(i):
        barrier.wait()
        results[i] = work()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    return threads, results


def test_one_users_waits_are_capped_and_others_get_through(served):
    nb = served
    alice, bob = nb.token('alice'), nb.token('bob')
    version = call(nb, alice, 'GET', '/home/alice/0/cells/0')[1]['version']
    poll = '/home/alice/0/cells/0?since=%d&wait=%d' % (version, HOLD)
    threads, results = in_threads(6, lambda: call(nb, alice, 'GET', poll))
    time.sleep(0.5)
    # Another user's request is answered at once, while alice's polls wait.
    status, answer, _, took = call(nb, bob, 'GET', '/home/bob/')
    assert status == 200 and [w['name'] for w in answer['worksheets']] == ['W']
    assert took < 1.5, 'bob waited %.1f s behind alice\'s polls' % took
    for t in threads:
        t.join(timeout=HOLD + 20)
    waited = [r for r in results if r[0] == 200]
    refused = [r for r in results if r[0] == 429]
    assert len(waited) == CAP and len(refused) == 6 - CAP, [r[:2] for r in results]
    for _, answer, headers, took in refused:
        assert set(answer) == {'error'} and 'waiting already' in answer['error']
        assert headers['Retry-After'] == '1'
        assert took < 1.5
    assert all(took >= HOLD - 0.5 for _, _, _, took in waited)
    # Every slot was given back: alice may wait again, and nothing is counted.
    assert waits.counter(nb.registry).waiting == {}
    assert call(nb, alice, 'GET', '/home/alice/0/cells/0?since=%d&wait=0.2'
                % version)[0] == 200


def test_an_evaluation_past_the_cap_is_refused_before_it_changes_anything(served):
    nb = served
    alice = nb.token('alice')
    version = call(nb, alice, 'GET', '/home/alice/0/cells/0')[1]['version']
    poll = '/home/alice/0/cells/0?since=%d&wait=%d' % (version, HOLD)
    threads, results = in_threads(CAP, lambda: call(nb, alice, 'GET', poll))
    time.sleep(0.5)
    status, answer, _, took = call(nb, alice, 'POST', '/home/alice/0/cells/0/evaluate',
                                   {'input': '1+1', 'wait': 5})
    assert status == 429 and 'waiting already' in answer['error'] and took < 1.5
    with nb.transaction() as root:
        cell = root.user_by_login('alice')['0'].cells['0']
        assert (cell.input, cell.output.status, cell.output.version) == ('', 'new', version)
    # Without "wait" nothing is held, so nothing is refused (the cell is not evaluated
    # here: asking for a change it cannot make tells the same).
    assert call(nb, alice, 'GET', '/home/alice/0/cells/0')[0] == 200
    for t in threads:
        t.join(timeout=HOLD + 20)
    assert [r[0] for r in results] == [200] * CAP
    assert waits.counter(nb.registry).waiting == {}


def test_slots_are_given_back_on_errors_and_retries(notebook, testapp, monkeypatch):
    notebook.add_user('alice')
    with notebook.transaction() as root:
        root.user_by_login('alice').create_worksheet('W')
    api = Api(testapp, notebook.token('alice'))
    seen = []
    real = evaluation.wait_for_cell

    def failing(request, cell, timeout, **kw):
        seen.append(dict(waits.counter(request.registry).waiting))
        if len(seen) == 1:
            raise ConflictError()  # pyramid_retry runs the request again
        if len(seen) == 2:
            raise RuntimeError('the wait broke')
        return real(request, cell, timeout, **kw)
    monkeypatch.setattr(evaluation, 'wait_for_cell', failing)
    res = api.get('/home/alice/0/cells/0', status=500, wait=1)
    assert res['error'].startswith('the server failed')
    assert len(seen) == 2 and all(list(s.values()) == [1] for s in seen)
    assert waits.counter(notebook.registry).waiting == {}
    api.get('/home/alice/0/cells/0', wait=0.1)
    assert waits.counter(notebook.registry).waiting == {}
    # A wait refused by a bad "wait" takes no slot either.
    api.get('/home/alice/0/cells/0', status=400, wait='soon')
    assert waits.counter(notebook.registry).waiting == {}


def test_the_counter_is_right_with_many_threads():
    counter = waits.WaitCounter(3)
    holding = []
    lock = threading.Lock()
    most = [0]
    refused = [0]

    def work():
        for _ in range(300):
            if counter.acquire('u'):
                with lock:
                    holding.append(1)
                    most[0] = max(most[0], len(holding))
                time.sleep(0.0005)  # others run meanwhile
                with lock:
                    holding.pop()
                counter.release('u')
            else:
                with lock:
                    refused[0] += 1
        return True
    threads, results = in_threads(8, work)
    for t in threads:
        t.join(timeout=60)
    assert results == [True] * 8
    assert most[0] == 3 and refused[0] > 0
    assert counter.waiting == {}


def test_session_polls_are_counted_too(notebook, monkeypatch):
    """The page's own polls (a session, not a token) share the user's slots."""
    from ...support.notebook import login
    notebook.registry.settings['sagenb.api.max_waits_per_user'] = 1  # typed, as prepare() leaves it
    notebook.add_user('alice')
    with notebook.transaction() as root:
        root.user_by_login('alice').create_worksheet('W')
    app = webtest.TestApp(notebook.app, extra_environ={'HTTP_HOST': 'localhost:80'})
    login(app, 'alice')
    held = threading.Event()
    release = threading.Event()

    def holding(request, cell, timeout, **kw):
        held.set()
        release.wait(10)
        return True
    monkeypatch.setattr(evaluation, 'wait_for_cell', holding)
    results = []
    first = threading.Thread(target=lambda: results.append(
        app.get('/home/alice/0/cells/0?wait=2', headers={'Accept': 'application/json'},
                status='*').status_int))
    first.start()
    assert held.wait(10)
    second = app.get('/home/alice/0/cells/0?wait=2', headers={'Accept': 'application/json'},
                     status=429)
    assert 'waiting already' in second.json['error']
    release.set()
    first.join(10)
    assert results == [200]
    assert waits.counter(notebook.registry).waiting == {}
