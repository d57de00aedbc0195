"""Writing outputs to ZODB for every worksheet thread, many cells per transaction.

Worksheet threads hand their cells' new state to ``OutputStore.write`` and wait until it
is committed (a cell's last state they only ``put``: WorkerRegistry.store); the registry
marks cells queued through it too.  One thread commits whatever is pending in one
transaction (group commit):
with many cells running at once the storage sees one commit instead of one per cell, and
no request thread queues behind a crowd of commits for the storage's lock.

An update with a ``due`` time may wait until then for a later update of its cell, and is
committed with it: a cell whose evaluating request waits for the result, and which
finishes quickly, is stored once (queued and done) instead of twice.
"""
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import transaction
from ZODB.POSException import ConflictError

from .. import watchdog
from ..outages import outage_of
from .news import told_after_commit

log = logging.getLogger(__name__)


@dataclass
class Update:
    job: Any
    status: str
    outputs: list
    execution_count: Any
    started: Any
    finished: Any
    full_text: Any = None          # a file with the whole text of a cut output
    files: Any = None              # {name: bytes}: files the cell wrote (at its end)
    input_request: Any = None      # the running code waits in input(): prompt, password
    widgets: Any = None            # the cell's widget models (ipywidgets state)
    widgets_only: bool = False     # a widget change: status and outputs stay
    queue: str = None              # set: mark the cell queued for this job, by this server
    stored: bool = False           # False: the cell was deleted or evaluated again
    due: float = 0.0               # may wait until then for a later update of its cell
    done: threading.Event = field(default_factory=threading.Event)


def find_cell(conn, job):
    root = conn.root().get('sagenb')
    user = root.users_by_id.get(job.owner_id) if root is not None else None
    # (the documentation's scratch worksheet is in no home: User.worksheet_numbered)
    worksheet = user.worksheet_numbered(job.number) if user is not None else None
    if worksheet is None:
        return None
    return worksheet.cells.get(str(job.cell_id))


class OutputStore:
    def __init__(self, db):
        self.db = db
        self.pending = queue.Queue()
        self.thread = None
        self.lock = threading.Lock()
        self._stopping = threading.Event()
        self.outage = None  # 'database' or 'disk' while commits wait for it to pass

    def write(self, update):
        """Store ``update``; returns once committed, True unless the job was stale."""
        self.put(update)
        update.done.wait()
        return update.stored

    def put(self, update):
        """Queue ``update`` for the next commit (``update.done`` is set then).  The
        updates of a cell are stored in the order they were queued."""
        self._start()
        self.pending.put(update)

    def _start(self):
        with self.lock:  # started at the first write (admin commands never write)
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name='output-store',
                                               daemon=True)
                watchdog.essential(self.thread, 'the output store')
                self.thread.start()

    def stop(self):
        with self.lock:
            if self.thread is None:
                return
        watchdog.release(self.thread)
        self._stopping.set()
        self.pending.put(None)
        self.thread.join(timeout=10)

    def _run(self):
        tm = transaction.TransactionManager()
        conn = self._open(tm)
        if conn is None:  # stopped before the database came back: nothing is stored
            while True:
                try:
                    update = self.pending.get_nowait()
                except queue.Empty:
                    return
                if update is not None:
                    update.done.set()
        deferred = []  # updates waiting for a later update of their cell, until due
        try:
            while True:
                batch, stopping = self._take(deferred)
                if batch:
                    try:
                        self._commit(tm, conn, batch)
                    except Exception:
                        log.exception('could not store outputs')
                # Requests waiting for these cells were woken once the commit had
                # finished (workers/news.py).
                for update in batch:
                    update.done.set()
                if stopping:
                    return
        finally:
            conn.close()

    def _open(self, tm):
        """The store's connection, or None if it stops first: the database away when
        the store starts (its first write) is waited out as at a commit."""
        delay = 0.2
        while True:
            try:
                return self.db.open(transaction_manager=tm)
            except Exception as exc:
                kind = outage_of(exc)
                if kind is None:
                    raise
                self._note_outage(kind, exc)
                if self._stopping.wait(delay):
                    return None
                delay = min(2.0, delay * 2)

    @staticmethod
    def _abort(tm):
        """Abort; the database away at that moment is no failure of the abort: the
        transaction has ended, only the connection's new snapshot (RelStorage polls
        after an abort) could not be taken, and the next ``begin`` takes it."""
        try:
            tm.abort()
        except Exception as exc:
            if outage_of(exc) is None:
                raise

    def _note_outage(self, kind, exc):
        if self.outage is None:
            log.warning('cannot store outputs: the %s is unavailable (%s: %s); '
                        'trying again until it is back', kind, type(exc).__name__, exc)
        self.outage = kind

    def _take(self, deferred):
        """The next updates to commit, in order: those pending (an update not yet due
        joins ``deferred``), each preceded by the deferred updates of its cell, and the
        deferred updates now due.  Also whether the store is stopping."""
        timeout = None
        if deferred:
            timeout = max(0.0, min(update.due for update in deferred) - time.time())
        incoming = []
        try:
            incoming.append(self.pending.get(timeout=timeout))
        except queue.Empty:
            pass
        while incoming and incoming[-1] is not None:
            try:
                incoming.append(self.pending.get_nowait())
            except queue.Empty:
                break
        stopping = bool(incoming) and incoming[-1] is None
        now = time.time()
        batch = []
        for update in incoming:
            if update is None:
                continue
            cell = update.job.cell_key
            earlier = [waiting for waiting in deferred if waiting.job.cell_key == cell]
            for waiting in earlier:
                deferred.remove(waiting)
            batch.extend(earlier)
            if update.due > now and not stopping:
                deferred.append(update)
            else:
                batch.append(update)
        due = [waiting for waiting in deferred if waiting.due <= now or stopping]
        for waiting in due:
            deferred.remove(waiting)
        return batch + due, stopping

    def _commit(self, tm, conn, batch):
        """Commit ``batch``; a conflict is read again and retried (10 times), an
        outage (the database unreachable, its disk full: outages.py) is waited out,
        however long, until the store stops: the outputs are kept meanwhile, and the
        worksheet threads wait in ``write``."""
        conflicts = 0
        delay = 0.2
        while True:
            try:
                tm.begin()
                self._apply(conn, batch)
                with told_after_commit():
                    tm.commit()
                if self.outage is not None:
                    log.warning('outputs are stored again (the %s is back)', self.outage)
                    self.outage = None
                return
            except ConflictError:
                # A request changed one of these cells meanwhile: read again, retry.
                self._abort(tm)
                conflicts += 1
                if conflicts >= 10:
                    break
                time.sleep(0.005 * conflicts)
            except Exception as exc:
                self._abort(tm)
                kind = outage_of(exc)
                if kind is None or self._stopping.is_set():
                    raise
                self._note_outage(kind, exc)
                if self._stopping.wait(delay):
                    raise
                delay = min(2.0, delay * 2)
        log.error('could not store outputs after 10 conflicts')
        for update in batch:
            update.stored = False

    def _apply(self, conn, batch):
        for update in batch:
            cell = find_cell(conn, update.job)
            if update.queue is not None and cell is not None:
                cell.output.queue(update.job.run_id, update.queue)
            update.stored = cell is not None and \
                cell.output.run_id == update.job.run_id
            if update.stored and update.widgets_only:
                cell.output.set_widgets(update.widgets)
            elif update.stored and update.queue is None:
                if update.widgets is not None or cell.output.widgets is not None:
                    cell.output.widgets = update.widgets
                cell.output.update(
                    update.status, update.outputs,
                    execution_count=update.execution_count,
                    started=update.started, finished=update.finished,
                    input_request=update.input_request)
                if update.full_text is not None:
                    update.full_text.seek(0)
                    cell.output.keep_full_text(update.full_text)
                for name, content in (update.files or {}).items():
                    cell.output.add_file(name, content)
