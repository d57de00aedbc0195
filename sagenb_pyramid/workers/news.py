"""Waking the requests that wait for a cell when a commit changes its output.

Whoever stores the output (this process's worker host, another app server's, a worker
host on another machine through ZEO), ZODB tells every open database which objects a
transaction changed: ``_invalidate_finish`` for commits made in this process,
``invalidate`` for commits a ZEO server reports.  ``CommitNews`` listens to both on the
database's MVCC adapter and sets the events of the requests watching those objects, so
a long-poll answers as soon as the output is committed, wherever it was written.

RelStorage reports nothing: each connection polls the database when its transaction
begins.  There a thread of ``CommitNews`` (``Poller``) asks PostgreSQL for the objects
changed since its last look, every ``POLL_INTERVAL`` while someone waits (every
``IDLE_POLL_INTERVAL`` else) and at once after each commit of this process, and tells
the same way.

News may come between the moment a waiter's transaction began and the moment it
watches: every change is kept with its transaction id for ``KEPT_FOR`` seconds, and
``seen`` (called once the waiter has read the objects) wakes it at once when one of
them has a newer revision than the one it read.
"""
import logging
import threading
import time
from contextlib import contextmanager

from ZODB.utils import p64

from ..outages import outage_of

log = logging.getLogger(__name__)

_local = threading.local()

# Seconds between two looks at a polling storage (RelStorage) while a request waits for
# news: the latency of live outputs between app servers, for one small indexed query.
POLL_INTERVAL = 0.1
IDLE_POLL_INTERVAL = 1.0
# Seconds a reported change is remembered for ``seen`` (longer than any request takes
# between beginning its transaction and watching).
KEPT_FOR = 30.0


@contextmanager
def told_after_commit():
    """Commits made by this thread in the block wake their waiters when it ends.

    A storage reports a commit before it has finished it, and FileStorage holds its lock
    until then.  A request woken at that moment begins a transaction, which waits for
    that lock: the woken thread and the committing one pass the CPU (and the GIL) back
    and forth once more for every cell.  The output store commits in such a block.
    """
    outer = getattr(_local, 'pending', None)
    _local.pending = pending = []
    try:
        yield
    finally:
        _local.pending = outer
        for news, tid, oids in pending:
            news._tell(tid, oids)


class CommitNews:
    def __init__(self, db, poll_interval=POLL_INTERVAL):
        self._watchers = {}
        self._lock = threading.Lock()
        # Two generations of oid -> transaction id of its latest reported change.
        self._changes = [{}, {}]
        self._rotated = time.monotonic()
        self.hooked = False
        self.poller = None
        adapter = getattr(db, '_mvcc_storage', None)
        if adapter is None or not hasattr(adapter, '_invalidate_finish'):
            storage = getattr(db, 'storage', None)
            if Poller.can_poll(storage):
                self.poller = Poller(self, storage, poll_interval)
                self.poller.hurry_after_commits(db)
                self.hooked = True
                return
            # A storage of its own MVCC layer that cannot be polled: waiters fall back
            # to looking again now and then (views/cells.py).
            log.warning('this storage does not report commits; long-polls will poll')
            return
        local, remote = adapter._invalidate_finish, adapter.invalidate

        def invalidate_finish(tid, oids, committing_instance):
            local(tid, oids, committing_instance)
            pending = getattr(_local, 'pending', None)
            if pending is None:
                self._tell(tid, oids)
            else:
                pending.append((self, tid, oids))

        def invalidate(tid, oids):
            remote(tid, oids)
            self._tell(tid, oids)

        adapter._invalidate_finish = invalidate_finish
        adapter.invalidate = invalidate
        self.hooked = True

    def watch(self, oid, event=None):
        """An event set by the next commit that changes the object ``oid`` (``event``:
        one already watching other objects, set by whichever changes first).

        Register before reading the object, wait after: a commit in between is not
        missed.  Only the waiters of that object wake."""
        event = threading.Event() if event is None else event
        with self._lock:
            idle = not self._watchers
            self._watchers.setdefault(oid, []).append(event)
        if idle and self.poller is not None:
            self.poller.hurry()  # from looking every second to every POLL_INTERVAL
        return event

    def seen(self, jar, oids, event):
        """Set ``event`` when one of the watched objects ``oids``, as read through the
        connection ``jar``, has a newer revision already reported (before the watch)."""
        # From the connection's cache: an object not there, or a ghost, was not read.
        read = [(oid, obj._p_serial) for oid, obj in
                ((oid, jar._cache.get(oid)) for oid in oids if oid is not None)
                if obj is not None and obj._p_changed is not None]
        with self._lock:
            for oid, serial in read:
                newest = self._changes[0].get(oid) or self._changes[1].get(oid)
                if newest is not None and newest > serial:
                    event.set()
                    return

    def unwatch(self, oid, event):
        with self._lock:
            events = self._watchers.get(oid)
            if events is not None and event in events:
                events.remove(event)
                if not events:
                    del self._watchers[oid]

    def _tell(self, tid, oids):
        # Called while the storage finishes a commit: only dictionary work here.
        now = time.monotonic()
        with self._lock:
            if now - self._rotated > KEPT_FOR / 2:
                self._changes = [{}, self._changes[0]]
                self._rotated = now
            changes = self._changes[0]
            for oid in oids:
                if changes.get(oid, b'') < tid:
                    changes[oid] = tid
            if not self._watchers:
                return
            woken = [self._watchers.pop(oid) for oid in oids if oid in self._watchers]
        for events in woken:
            for event in events:
                event.set()

    def _tell_everyone(self):
        """Wake every waiter (the storage could not say what changed)."""
        with self._lock:
            woken = list(self._watchers.values())
            self._watchers.clear()
        for events in woken:
            for event in events:
                event.set()

    def close(self):
        if self.poller is not None:
            self.poller.stop()


class Poller:
    """Asks a RelStorage database for the objects changed since the last look, in a
    thread and a database connection of its own, and tells ``news``."""

    @staticmethod
    def can_poll(storage):
        adapter = getattr(storage, '_adapter', None)
        return adapter is not None and hasattr(adapter, 'poller') \
            and hasattr(adapter, 'connmanager')

    def __init__(self, news, storage, interval):
        self.news = news
        self.adapter = storage._adapter
        self.interval = interval
        self._stopped = threading.Event()
        self._hurry = threading.Event()
        self._conn = self._cursor = None
        self._last_tid = None
        self._failures = 0  # looks that failed in a row
        self.thread = threading.Thread(target=self._run, name='commit news poller',
                                       daemon=True)
        self.thread.start()

    def hurry(self):
        self._hurry.set()

    def stop(self):
        self._stopped.set()
        self._hurry.set()
        self.thread.join(10)

    def _run(self):
        while not self._stopped.is_set():
            self._hurry.clear()
            try:
                self.poll()
            except Exception as exc:  # the database restarted or is away: look again later
                outage_of(exc)  # noted, for the heartbeats nobody could write meanwhile
                log.warning('could not poll the database for commits', exc_info=True)
                self._close()
                self._failures += 1
                if self._failures > 1:  # not the connection: start afresh from now
                    self._last_tid = None
                self.news._tell_everyone()  # their waits look at the database again
                self._stopped.wait(IDLE_POLL_INTERVAL)
            else:
                self._failures = 0
            self._hurry.wait(self.interval if self.news._watchers else IDLE_POLL_INTERVAL)
        self._close()

    def hurry_after_commits(self, db):
        """Look at once after every commit of this process's connections of ``db``: a
        request waits for an output its own app server's worker host stores, and would
        else wait for the next look.  (Each connection has a storage instance of its
        own, made by ``new_instance``; the pooled ones already have theirs.)"""
        storage = db.storage
        make = storage.new_instance

        def hurrying(instance):
            finish = instance.tpc_finish

            def tpc_finish(*args, **kwargs):
                tid = finish(*args, **kwargs)
                self.hurry()
                return tid
            instance.tpc_finish = tpc_finish
            return instance

        def new_instance(*args, **kwargs):
            return hurrying(make(*args, **kwargs))
        storage.new_instance = new_instance
        db._connectionMap(lambda conn: hurrying(conn._storage))

    def poll(self):
        """One look: tells the changes since the last one."""
        manager = self.adapter.connmanager
        if self._conn is None:
            self._conn, self._cursor = manager.open_for_load()
        else:
            manager.restart_load(self._conn, self._cursor)
        changes, tid = self.adapter.poller.poll_invalidations(
            self._conn, self._cursor, self._last_tid)
        first = self._last_tid is None
        self._last_tid = tid
        if changes is None:
            # Went back (a restored database), or starting afresh after failures:
            # anything may have changed.  (The very first look has no watchers yet.)
            if not first or self._failures:
                self.news._tell_everyone()
            return
        by_tid = {}
        for oid, changed in changes:
            by_tid.setdefault(changed, []).append(p64(oid))
        for changed in sorted(by_tid):
            self.news._tell(p64(changed), by_tid[changed])

    def _close(self):
        if self._conn is not None:
            try:
                self.adapter.connmanager.close(self._conn, self._cursor)
            except Exception:
                pass
            self._conn = self._cursor = None
