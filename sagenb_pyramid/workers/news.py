"""Waking the requests that wait for a cell when a commit changes its output.

Whoever stores the output (this process's worker host, another app server's, a worker
host on another machine through ZEO), ZODB tells every open database which objects a
transaction changed: ``_invalidate_finish`` for commits made in this process,
``invalidate`` for commits a ZEO server reports.  ``CommitNews`` listens to both on the
database's MVCC adapter and sets the events of the requests watching those objects, so
a long-poll answers as soon as the output is committed, wherever it was written.
"""
import logging
import threading
from contextlib import contextmanager

log = logging.getLogger(__name__)

_local = threading.local()


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
        for news, oids in pending:
            news._tell(oids)


class CommitNews:
    def __init__(self, db):
        self._watchers = {}
        self._lock = threading.Lock()
        self.hooked = False
        adapter = getattr(db, '_mvcc_storage', None)
        if adapter is None or not hasattr(adapter, '_invalidate_finish'):
            # A storage that is its own MVCC layer (RelStorage): waiters fall back to
            # looking again now and then (views/cells.py).
            log.warning('this storage does not report commits; long-polls will poll')
            return
        local, remote = adapter._invalidate_finish, adapter.invalidate

        def invalidate_finish(tid, oids, committing_instance):
            local(tid, oids, committing_instance)
            pending = getattr(_local, 'pending', None)
            if pending is None:
                self._tell(oids)
            else:
                pending.append((self, oids))

        def invalidate(tid, oids):
            remote(tid, oids)
            self._tell(oids)

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
            self._watchers.setdefault(oid, []).append(event)
        return event

    def unwatch(self, oid, event):
        with self._lock:
            events = self._watchers.get(oid)
            if events is not None and event in events:
                events.remove(event)
                if not events:
                    del self._watchers[oid]

    def _tell(self, oids):
        # Called while the storage finishes a commit: only dictionary work here.
        if not self._watchers:
            return
        with self._lock:
            woken = [self._watchers.pop(oid) for oid in oids if oid in self._watchers]
        for events in woken:
            for event in events:
                event.set()
