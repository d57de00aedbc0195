"""Commit news on RelStorage (PostgreSQL), which reports no commits: ``CommitNews``
polls the database (``Poller``) and tells the watchers of the objects changed by
another process's commit; ``seen`` catches a change told before the watch began."""
import time
import uuid

import pytest
import transaction
from persistent.mapping import PersistentMapping

from sagenb_pyramid import db_from_uri
from sagenb_pyramid.workers.news import CommitNews


@pytest.fixture
def two_databases(postgres, tmp_path):
    """Two databases on one PostgreSQL database, as two app servers open it."""
    name = postgres.create_database('n' + uuid.uuid4().hex[:12])
    dbs = [db_from_uri(postgres.uri(name, blob_dir=tmp_path / str(i),
                                    shared_blob_dir='false'), '', {})
           for i in range(2)]
    yield dbs
    for db in dbs:
        db.close()


def write(db, key, value):
    tm = transaction.TransactionManager(explicit=True)
    conn = db.open(transaction_manager=tm)
    try:
        tm.begin()
        root = conn.root()
        if 'box' not in root:
            root['box'] = PersistentMapping()
        root['box'][key] = value
        tm.commit()
        return root['box']._p_oid
    finally:
        conn.close()


def first_look(news):
    """Wait for the poller's first look (commits before it are not news)."""
    deadline = time.monotonic() + 5
    while news.poller._last_tid is None:
        assert time.monotonic() < deadline, 'the poller did not look'
        time.sleep(0.02)


def test_a_commit_of_another_database_wakes_the_watcher(two_databases):
    here, there = two_databases
    oid = write(there, 'n', 1)
    news = CommitNews(here)
    try:
        assert news.hooked and news.poller is not None
        event = news.watch(oid)
        other = news.watch(b'\0' * 7 + b'\x99')  # an object nobody changes
        first_look(news)
        time.sleep(0.3)  # the poller has looked again since the watch
        assert not event.is_set()
        started = time.monotonic()
        write(there, 'n', 2)
        assert event.wait(5), 'no news of a commit made through the other database'
        assert time.monotonic() - started < 2
        assert not other.is_set()
    finally:
        news.close()
    assert not news.poller.thread.is_alive()


def test_news_told_before_the_watch_is_seen(two_databases):
    """A waiter read the object at a snapshot older than a change the poller already
    told: ``seen`` sets its event at once; for an object read at its newest revision
    it does not."""
    here, there = two_databases
    oid = write(there, 'n', 1)
    news = CommitNews(here)
    tm = transaction.TransactionManager(explicit=True)
    conn = here.open(transaction_manager=tm)
    try:
        tm.begin()
        box = conn.root()['box']
        assert box['n'] == 1  # read at this snapshot
        first_look(news)
        write(there, 'n', 2)
        news.watch(b'\0' * 8)  # someone waits: the poller looks often
        deadline = time.monotonic() + 5
        while oid not in news._changes[0] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert oid in news._changes[0], 'the poller did not tell the change'
        event = news.watch(oid)  # too late for the news itself
        assert not event.is_set()
        news.seen(conn, [oid], event)
        assert event.is_set()
        tm.abort()
        tm.begin()
        assert box['n'] == 2
        fresh = news.watch(oid)
        news.seen(conn, [oid], fresh)
        assert not fresh.is_set()
        tm.abort()
    finally:
        conn.close()
        news.close()


def test_a_commit_of_this_process_is_told_at_once(two_databases):
    """The output store commits in the app server whose requests wait for it: those
    requests hear of it without waiting for the next look (here 30 s away), through
    connections opened before the news too (pooled)."""
    here, there = two_databases
    oid = write(there, 'n', 1)
    write(here, 'n', 2)  # a connection in the pool before the news begins
    news = CommitNews(here, poll_interval=30)
    try:
        event = news.watch(oid)  # the first watch looks once, at once
        time.sleep(0.5)
        assert not event.is_set()
        write(here, 'n', 3)
        assert event.wait(5), 'no news of a commit made in this process'
        event = news.watch(oid)
        write(there, 'n', 4)  # another process's: only at the next look
        assert not event.wait(1)
    finally:
        news.close()


def test_the_poller_comes_back_after_postgresql_restarts(two_databases, postgres):
    """Its connection is cut: waiters are woken to look again (their own transactions
    fail and are retried), and news flows again once the server is back."""
    here, there = two_databases
    oid = write(there, 'n', 1)
    news = CommitNews(here)
    try:
        first_look(news)
        event = news.watch(oid)
        postgres.restart()
        assert event.wait(10), 'waiters were not woken when the connection was cut'
        deadline = time.monotonic() + 20
        while True:  # the other database's pooled connection may fail once
            try:
                event = news.watch(oid)
                write(there, 'n', 2)
                break
            except Exception:
                news.unwatch(oid, event)
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert event.wait(10), 'no news after the restart'
    finally:
        news.close()
