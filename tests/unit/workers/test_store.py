"""The output store (workers/store.py) on a real FileStorage: group commits, in order per
cell, and queued states that wait for their result."""
import threading
import time

import pytest
import webtest
from ZODB.utils import p64, u64

from sagenb_pyramid.workers import Job
from sagenb_pyramid.workers.news import CommitNews
from sagenb_pyramid.workers.store import OutputStore, Update

from ...support.notebook import Api, Notebook


@pytest.fixture
def cell(tmp_path):
    """A notebook (no Sage process is started here), a store of its own and one cell."""
    nb = Notebook(tmp_path / 'data')
    nb.add_user('ann')
    api = Api(webtest.TestApp(nb.app), nb.token('ann'))
    ws = api.post('/home/ann/', {'name': 'store'}, status=201)['url']
    cell_id = api.post(ws + 'cells', {'input': '1+1'}, status=201)['id']
    with nb.transaction() as root:
        owner = root.user_by_login('ann').id
    store = OutputStore(nb.db)
    yield nb, store, lambda run_id: Job(owner, int(ws.strip('/').split('/')[-1]), cell_id,
                                        run_id, '1+1', awaited=True)
    store.stop()
    nb.close()


def transactions_since(db, tid):
    return list(db.storage.iterator(start=p64(u64(tid) + 1)))


def output_of(nb, job):
    with nb.transaction() as root:
        output = root.users_by_id[job.owner_id][str(job.number)].cells[str(job.cell_id)].output
        return output.status, output.run_id, output.outputs


def queued(job, due):
    return Update(job, 'queued', [], None, None, None, queue='host:boot', due=due)


def done(job):
    result = [{'output_type': 'execute_result', 'data': {'text/plain': '2'},
               'metadata': {}, 'execution_count': 1}]
    return Update(job, 'done', result, 1, time.time(), time.time())


def test_a_queued_state_that_may_wait_is_committed_with_its_result(cell):
    nb, store, job_for = cell
    job = job_for('run-1')
    before = nb.db.lastTransaction()
    waiting = queued(job, due=time.time() + 30)
    store.put(waiting)
    time.sleep(0.3)
    assert not waiting.done.is_set()
    assert transactions_since(nb.db, before) == []
    assert store.write(done(job)) is True  # stored: the queued state came first
    assert waiting.done.is_set()
    assert len(transactions_since(nb.db, before)) == 1
    assert output_of(nb, job)[:2] == ('done', 'run-1')


def test_a_queued_state_with_no_result_is_committed_when_due(cell):
    nb, store, job_for = cell
    job = job_for('run-1')
    waiting = queued(job, due=time.time() + 0.3)
    store.put(waiting)
    assert waiting.done.wait(5)
    assert output_of(nb, job) == ('queued', 'run-1', [])


def test_a_later_evaluation_of_the_cell_stays_the_latest(cell):
    """The first run's waiting queued state is committed before the second's."""
    nb, store, job_for = cell
    first, second = job_for('run-1'), job_for('run-2')
    store.put(queued(first, due=time.time() + 30))
    latest = queued(second, due=0.0)
    store.put(latest)
    assert latest.done.wait(5)
    assert output_of(nb, second)[:2] == ('queued', 'run-2')
    # The first run's result is stale now: not stored.
    assert store.write(done(first)) is False
    assert output_of(nb, second)[:2] == ('queued', 'run-2')


def test_stopping_commits_what_waits(cell):
    nb, store, job_for = cell
    job = job_for('run-1')
    waiting = queued(job, due=time.time() + 30)
    store.put(waiting)
    store.stop()
    assert waiting.done.is_set()
    assert output_of(nb, job)[:2] == ('queued', 'run-1')


def test_connections_of_requests_in_flight_are_kept_with_their_caches(tmp_path, caplog):
    """40 requests at once (long-polls hold their connection): ZODB's default pool of 7
    would close 33 connections afterwards, with their caches, and log a warning each."""
    nb = Notebook(tmp_path / 'data')
    try:
        caplog.set_level('WARNING', logger='ZODB.DB')
        opened = [nb.db.open() for _ in range(40)]
        for conn in opened:
            assert conn.root()['sagenb'].users_by_id is not None  # now in its cache
        for conn in opened:
            conn.close()
        again = [nb.db.open() for _ in range(40)]
        assert {id(conn) for conn in again} == {id(conn) for conn in opened}
        assert all(len(conn._cache) > 0 for conn in again)
        for conn in again:
            conn.close()
        assert not [r for r in caplog.records if 'open connections' in r.getMessage()]
    finally:
        nb.close()


def test_a_uri_sets_its_own_pool_size(tmp_path):
    uri = 'file://%s/Data.fs?connection_pool_size=5' % tmp_path
    nb = Notebook(tmp_path / 'data', **{'sagenb.zodb_uri': uri})
    try:
        assert nb.db.getPoolSize() == 5
    finally:
        nb.close()


def held_by_another_thread(lock):
    free = []

    def probe():
        if lock.acquire(blocking=False):
            lock.release()
            free.append(True)
    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    return not free


def test_waiters_are_woken_once_the_commit_has_finished(cell):
    """FileStorage reports a commit while it still holds its lock, and a request woken
    then would begin its next transaction by waiting for that lock."""
    nb, store, job_for = cell
    job = job_for('run-1')
    with nb.transaction() as root:
        output = root.users_by_id[job.owner_id][str(job.number)].cells[str(job.cell_id)].output
        oid = output._p_oid
    lock = nb.db.storage._lock
    assert not held_by_another_thread(lock)
    news = CommitNews(nb.db)
    event = news.watch(oid)
    locked_when_woken = []
    event.set = lambda: locked_when_woken.append(held_by_another_thread(lock))
    store.put(queued(job, due=0))
    assert store.write(done(job)) is True
    assert locked_when_woken == [False]
    # A commit of another thread (a request's) still tells at once.
    event = news.watch(oid)
    with nb.transaction() as root:
        root.users_by_id[job.owner_id][str(job.number)].cells[str(job.cell_id)].output.clear()
    assert event.is_set()
