"""Evaluation: handing a worksheet's cells to its worker host, waiting for a result,
settling cells a stopped host left busy, asking its process, deleting a worksheet.

Nothing here talks to Sage: jobs go to ``request.workers`` (the request's routes to the
worker hosts) after the request's transaction has committed (``aftercommit.py``).
"""
import time
import uuid

from ..aftercommit import after_commit
from ..resources import BUSY
from ..web import api_error
from ..workers.contract import Job, WorkerBusy, WorkerProblem, error_output
from ..workers.directives import is_auto, translate


def worksheet_key(worksheet):
    """How the worker hosts name a worksheet: ``(owner id, number)``."""
    return (worksheet.owner_id, worksheet.number)


def data_manifest(worksheet):
    """``(name, stamp, blob oid)`` of each data file, for the worksheet's worker host,
    which reads the files that changed from ZODB itself."""
    if worksheet.files is None:
        return ()
    manifest = []
    for name, data_file in worksheet.files.items():
        oid = data_file.blob._p_oid
        if oid is None:  # added in this request: not committed yet, next time
            continue
        manifest.append((name, '%r:%r' % (data_file.modified, data_file.size), oid.hex()))
    return tuple(manifest)


def note_run(request, worksheet, cell):
    """Live clients of the worksheet learn that ``cell`` is evaluated (its input may not
    have changed): one growth of the worksheet's version a request, which wakes their
    ``?since=`` waits (services/live.py), and the cell's ``run_version``."""
    noted = request.environ.setdefault('sagenb.runs_noted', set())
    key = worksheet_key(worksheet)
    worksheet.note_run(cell, bump=key not in noted)
    noted.add(key)


def note_cleared(request, worksheet, cell):
    """Live clients of the worksheet learn that ``cell``'s outputs were cleared (its
    input did not change): as ``note_run``, one growth of the version a request."""
    noted = request.environ.setdefault('sagenb.runs_noted', set())
    key = worksheet_key(worksheet)
    worksheet.note_cleared(cell, bump=key not in noted)
    noted.add(key)


def queue_cell(request, cell, awaited=False):
    """Hand the cell to a worker once this request's transaction has committed.

    The request writes only the worksheet's version and the cell's ``run_version``
    (``note_run``): the registry stores the cell as queued (many cells in one commit),
    and readers meanwhile see it queued already (serialize.cell_json).  ``awaited``:
    the request waits for the result (see ``Job.awaited``).  Returns the run id of this
    evaluation.
    """
    if cell.type != 'compute':
        raise api_error(409, 'text cells are not evaluated')
    worksheet = cell.worksheet
    host = request.workers.place(worksheet_key(worksheet))  # or 409: no room for it
    queue_auto_cells(request, worksheet, cell, host)
    run_id = uuid.uuid4().hex
    note_run(request, worksheet, cell)
    job = Job(worksheet.owner_id, worksheet.number, cell.id, run_id,
              translate(cell.input, worksheet.system).code, typeset=worksheet.typeset,
              data_files=data_manifest(worksheet), awaited=awaited)
    request.workers.submit_after_commit(host, job)
    return run_id


def queue_auto_cells(request, worksheet, cell, host=None):
    """A worksheet whose process is not running starts with its ``%auto`` cells (on
    ``host`` when the caller has placed the worksheet already).

    Returns the ids of the cells queued for that (once per request)."""
    key = worksheet_key(worksheet)
    done = request.environ.setdefault('sagenb.auto_cells', {})
    if key in done:
        return done[key]
    done[key] = set()
    if request.workers.has_process(key):
        return done[key]
    for auto in worksheet.ordered_cells():
        if auto.type == 'compute' and auto is not cell and is_auto(auto.input):
            done[key].add(auto.id)
            note_run(request, worksheet, auto)
            run_id = uuid.uuid4().hex
            job = Job(worksheet.owner_id, worksheet.number, auto.id, run_id,
                      translate(auto.input, worksheet.system).code,
                      typeset=worksheet.typeset, data_files=data_manifest(worksheet))
            host = host or request.workers.place(key)
            request.workers.submit_after_commit(host, job)
    return done[key]


def evaluate_all(request, worksheet, start=None):
    """Queue every compute cell with input (from the cell of id ``start`` down, when
    given), the ``%auto`` ones first (and only once); returns the cells."""
    cells = worksheet.ordered_cells()
    if start is not None:
        cells = cells[[c.id for c in cells].index(start):]
    cells = [c for c in cells if c.type == 'compute' and c.input.strip()]
    auto_ids = queue_auto_cells(request, worksheet, None)
    for cell in cells:
        if cell.id not in auto_ids:
            queue_cell(request, cell)
    return cells


def settle_orphan(request, cell):
    """A cell left busy by an earlier run of this server will never finish: say so."""
    out = cell.output
    if out.status in BUSY and request.workers.is_orphan(out.server):
        host = out.server.rpartition(':')[0] or 'of this cell'
        out.update('error', out.outputs + [error_output(
            'WorkerLost', 'lost: the worker host %s stopped while this cell was waiting '
                          'or running, and the worksheet\'s variables with it; evaluate '
                          'it again' % host)], finished=time.time())


def job_lost(request, cell, run_id):
    """The evaluation ``run_id`` was handed to a worker host that died before it stored
    the cell as queued (it writes that state, not the request): nothing in the cell
    would ever say so.  Marks it lost, as ``settle_orphan`` does a busy cell."""
    worksheet = cell.worksheet
    tag = request.root.placements.get('%s/%d' % worksheet_key(worksheet))
    if tag is None or not request.workers.is_orphan(tag):
        return False
    cell.output.queue(run_id, tag)
    settle_orphan(request, cell)
    return True


def wait_for_cell(request, cell, timeout, since=None, run_id=None):
    """Hold the request until the cell is no longer busy (or, with ``since``, changed;
    with ``run_id``, until that evaluation has finished).

    Wakes when a commit changes the cell's output, whichever worker host or app server
    made it (workers/news.py), and looks again every half second besides (an output
    created in this request has no object id to watch yet).
    """
    workers = request.workers
    deadline = time.monotonic() + timeout
    while True:
        oid = cell.output._p_oid
        news = workers.watch(oid)
        try:
            out = cell.output
            if run_id is not None:
                if out.run_id == run_id and out.status not in BUSY:
                    return True
                if out.run_id != run_id and job_lost(request, cell, run_id):
                    return True
            elif since is not None:
                if out.version > since:
                    return True
            elif out.status not in BUSY:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            workers.seen(out._p_jar, [oid], news)  # news of before the watch
            news.wait(min(remaining, 0.5))
        finally:
            workers.unwatch(oid, news)
        # A fresh view of the database: begin() syncs the connection.
        request.tm.abort()
        request.tm.begin()


def commit_then_wait(request, cell, timeout, run_id):
    """Commit the request, whose after-commit hook hands the job over, then wait until
    the evaluation ``run_id`` of ``cell`` has finished.

    The cell's output is watched before the commit: its result cannot be stored before
    the job has left, so no news is missed.  The first look at the cell then comes after
    the news (or half a second), not right after the commit, when it is sure to be still
    queued: one transaction fewer for every awaited cell."""
    deadline = time.monotonic() + timeout
    workers = request.workers
    oid = cell.output._p_oid  # None for an output created in this request
    news = workers.watch(oid) if oid is not None else None
    try:
        request.tm.commit()
        if news is not None:
            news.wait(min(timeout, 0.5))
    finally:
        if news is not None:
            workers.unwatch(oid, news)
    request.tm.begin()
    return wait_for_cell(request, cell, max(0.0, deadline - time.monotonic()), run_id=run_id)


def ask_worker(request, worksheet, kind, content):
    """A completion or introspection reply from the worksheet's Sage process."""
    key = worksheet_key(worksheet)
    timeout = request.registry.settings['sagenb.introspect_timeout']
    try:
        return request.workers.ask(key, kind, content, timeout)
    except WorkerBusy as exc:
        raise api_error(409, str(exc)) from None
    except WorkerProblem as exc:
        raise api_error(503, 'the Sage process could not answer: %s' % exc) from None


def discard_after_commit(request, keys):
    """Stop the processes of the worksheets ``keys`` once their deletion has committed."""
    keys = list(keys)
    after_commit(request, lambda: [request.workers.discard(key) for key in keys])


def delete_worksheet(request, worksheet):
    """Delete ``worksheet`` for good; its Sage process goes once that has committed."""
    key = worksheet_key(worksheet)
    worksheet.owner.remove(worksheet.__name__)
    discard_after_commit(request, [key])
