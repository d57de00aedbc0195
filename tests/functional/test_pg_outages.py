"""PostgreSQL unavailable for a while (a real server stopped and started again on its
port, RelStorage in front): a clear 503 at once, /health says so, the output store
waits, and everything works again without anyone doing anything (outages.py)."""
import time

import psycopg2
import pytest
import webtest
from relstorage.adapters.interfaces import (
    ReplicaClosedException, UnableToLockRowsToModifyError)
from relstorage.storage.interfaces import StorageDisconnectedDuringCommit

from sagenb_pyramid import outages
from sagenb_pyramid.workers import Job
from sagenb_pyramid.workers.store import Update

from ..support.notebook import Api
from ..support.postgres import PASSWORD, app_server

# Seconds a request may take while PostgreSQL is away: a refused connection fails at
# once (libpq), RelStorage tries once more.
BOUND = 5.0


def timed(call, *args, **kwargs):
    started = time.monotonic()
    result = call(*args, **kwargs)
    return result, time.monotonic() - started


def until_back(api, url, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        res = api.testapp.get(url, headers=api.headers, expect_errors=True)
        if res.status_int == 200:
            return res.json
        assert res.status_int == 503, res
        assert res.json == {'error': outages.MESSAGES['database']}, res
        assert time.monotonic() < deadline, 'the database did not come back'
        time.sleep(0.2)


def test_requests_during_a_postgres_outage_get_503_and_all_comes_back(
        tmp_path, restartable_postgres):
    pg = restartable_postgres
    db = pg.create_database('outage')
    nb = app_server(pg, db, tmp_path, 'app1')
    try:
        nb.add_user('alice')
        api = Api(webtest.TestApp(nb.app), nb.token('alice'))
        ws = api.post('/home/alice/', {'name': 'kept'}, status=201)['url']
        cell = api.post(ws + 'cells', {'input': 'before = 1'}, status=201)['id']
        browser = webtest.TestApp(nb.app)
        with nb.transaction() as root:
            owner = root.user_by_login('alice').id

        pg.halt()
        # Reads (the pooled connection's PostgreSQL session is cut), writes, a browser's
        # page: 503 within the bound, saying why, not retried five times.
        for _ in range(2):
            res, seconds = timed(api.testapp.get, ws, headers=api.headers, status=503)
            assert seconds < BOUND, seconds
            assert res.json == {'error': outages.MESSAGES['database']}
            assert res.headers['Retry-After'] == outages.RETRY_AFTER
        res, seconds = timed(api.testapp.post_json, ws + 'cells', {'input': 'during = 2'},
                             headers=api.headers, status=503)
        assert seconds < BOUND and res.json['error'] == outages.MESSAGES['database']
        page, seconds = timed(browser.get, '/home/alice/', headers={'Accept': 'text/html'},
                              status=503)
        assert seconds < BOUND and page.content_type == 'text/html'
        assert 'database is unavailable' in page.text and 'Traceback' not in page.text
        health = webtest.TestApp(nb.app).get('/health', status=503).json
        assert any(p.startswith('database: ') for p in health['problems']), health
        # No address or password of the database in /health (a load balancer's page).
        assert PASSWORD not in str(health) and '127.0.0.1' not in str(health), health

        # The output store keeps what it could not write, and writes it once back.
        job = Job(owner, int(ws.rstrip('/').rsplit('/', 1)[1]), cell, 'run-out', 'x',
                  awaited=False)
        queued = Update(job, 'queued', [], None, None, None, queue=nb.host.server_tag)
        update = Update(job, 'done', [{'output_type': 'stream', 'name': 'stdout',
                                       'text': 'kept\n'}], 1, time.time(), time.time(),
                        queue=None)
        nb.host.output_store.put(queued)
        nb.host.output_store.put(update)
        deadline = time.monotonic() + BOUND
        while nb.host.output_store.outage is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert nb.host.output_store.outage == 'database'
        assert not update.done.is_set()

        pg.start()
        back = until_back(api, ws)
        inputs = [c['input'] for c in back['cells']]
        assert 'before = 1' in inputs and 'during = 2' not in inputs, inputs
        assert update.done.wait(20) and update.stored
        assert nb.host.output_store.outage is None
        stored = api.get('%scells/%d' % (ws, cell))
        assert stored['status'] == 'done' and stored['outputs'][0]['text'] == 'kept\n'
        for i in range(10):
            api.post(ws + 'cells', {'input': 'after = %d' % i}, status=201)
        assert webtest.TestApp(nb.app).get('/health').json['status'] == 'ok'
    finally:
        if not pg.running:
            pg.start()
        nb.close()


def _raised(exc):
    """``exc`` as raised, so that it carries a traceback and a context."""
    try:
        raise exc
    except Exception as caught:
        return caught


def _psycopg2_error(cls, pgcode):
    error = cls('the message')
    if pgcode is not None:
        # psycopg2 sets pgcode from the server's answer; a subclass stands in for one.
        error = type(cls.__name__, (cls,), {'pgcode': pgcode})('the message')
    return error


@pytest.mark.parametrize('cls, pgcode, kind', [
    (psycopg2.OperationalError, None, 'database'),   # refused, closed, reset (libpq)
    (psycopg2.InterfaceError, None, 'database'),     # "connection already closed"
    (psycopg2.OperationalError, '57P01', 'database'),  # admin_shutdown
    (psycopg2.OperationalError, '57P03', 'database'),  # the server is starting
    (psycopg2.OperationalError, '08006', 'database'),  # connection_failure
    (psycopg2.OperationalError, '40001', None),     # serialization failure: a conflict
    (psycopg2.OperationalError, '55P03', None),     # lock not available: a conflict
    (psycopg2.ProgrammingError, None, None),        # a bug
])
def test_what_counts_as_a_postgres_outage(cls, pgcode, kind):
    exc = _psycopg2_error(cls, pgcode)
    assert outages.outage_of(exc) == kind
    # RelStorage's lock error raised while handling a lost connection is one too.
    try:
        try:
            raise exc
        except Exception:
            # As RelStorage's locker does: the lost connection is only the context.
            raise UnableToLockRowsToModifyError('could not lock')  # noqa: B904
    except UnableToLockRowsToModifyError as outer:
        assert outages.outage_of(outer) == kind


@pytest.mark.parametrize('exc', [ReplicaClosedException('gone'),
                                 StorageDisconnectedDuringCommit()])
def test_relstorage_disconnections_are_outages(exc):
    assert outages.outage_of(_raised(exc)) == 'database'


def test_remote_hosts_are_not_gone_right_after_a_long_outage(tmp_path, restartable_postgres):
    """No host could write its heartbeat while the database was away: the first reads
    after an outage longer than three heartbeats do not take another app server's host
    for gone (its busy cell settled as lost) before it had a heartbeat's time to
    write again."""
    pg = restartable_postgres
    db = pg.create_database('hosts')
    one = app_server(pg, db, tmp_path, 'app1', **{'sagenb.workers.heartbeat': '1'})
    two = app_server(pg, db, tmp_path, 'app2', **{'sagenb.workers.heartbeat': '2'})
    try:
        one.add_user('alice')
        api1 = Api(webtest.TestApp(one.app), one.token('alice'))
        api2 = Api(webtest.TestApp(two.app), two.token('alice'))
        ws = api2.post('/home/alice/', {'name': 'busy'}, status=201)['url']
        cell = api2.post(ws + 'cells', {'input': 'sleep(14r); 7'}, status=201)['id']
        url = '%scells/%d' % (ws, cell)
        api2.post(url + '/evaluate', {'wait': 0}, status=200)
        deadline = time.monotonic() + 60
        while api1.get(url)['status'] != 'running':  # on app2's host, read through app1
            assert time.monotonic() < deadline, api1.get(url)
            time.sleep(0.2)

        pg.halt()
        time.sleep(3 * 2 + 1.5)  # longer than three of app2's heartbeats
        api1.testapp.get(url, headers=api1.headers, status=503)
        pg.start()
        first = until_back(api1, url)
        assert first['status'] == 'running', first
        done = api1.get(url, since=str(first['version']), wait='30')
        while done['status'] == 'running':
            done = api1.get(url, since=str(done['version']), wait='30')
        assert done['status'] == 'done' and done['outputs'][-1]['data']['text/plain'] == '7', \
            done
    finally:
        if not pg.running:
            pg.start()
        one.close()
        two.close()


def test_the_output_store_waits_out_postgres_gone_in_the_middle_of_a_commit(
        tmp_path, restartable_postgres, monkeypatch):
    """PostgreSQL stops while the output store commits: the commit fails, and so does
    the abort after it (RelStorage polls for a new snapshot then).  The outputs are
    kept and stored once it is back, not dropped with the cell left running."""
    pg = restartable_postgres
    db = pg.create_database('midcommit')
    nb = app_server(pg, db, tmp_path, 'app1')
    try:
        nb.add_user('alice')
        api = Api(webtest.TestApp(nb.app), nb.token('alice'))
        ws = api.post('/home/alice/', {'name': 'kept'}, status=201)['url']
        cell = api.post(ws + 'cells', {'input': 'x = 1'}, status=201)['id']
        with nb.transaction() as root:
            owner = root.user_by_login('alice').id
        job = Job(owner, int(ws.rstrip('/').rsplit('/', 1)[1]), cell, 'run-mid', 'x',
                  awaited=False)
        store = nb.host.output_store
        queued = Update(job, 'queued', [], None, None, None, queue=nb.host.server_tag)
        store.write(queued)  # the store's thread and connection, before the outage

        apply = store._apply
        stops = []

        def apply_then_stop(conn, batch):
            changed = apply(conn, batch)
            if not stops:  # once: between the changes and their commit
                stops.append(pg.halt())
            return changed
        monkeypatch.setattr(store, '_apply', apply_then_stop)
        update = Update(job, 'done', [{'output_type': 'stream', 'name': 'stdout',
                                       'text': 'kept\n'}], 1, time.time(), time.time(),
                        queue=None)
        store.put(update)
        deadline = time.monotonic() + BOUND
        while store.outage is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert store.outage == 'database'
        time.sleep(1)
        assert not update.done.is_set() and store.thread.is_alive()

        pg.start()
        assert update.done.wait(20) and update.stored
        stored = until_back(api, '%scells/%d' % (ws, cell))
        assert stored['status'] == 'done' and stored['outputs'][0]['text'] == 'kept\n'
    finally:
        if not pg.running:
            pg.start()
        nb.close()
