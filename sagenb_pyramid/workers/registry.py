"""The worker registry: one Sage process and one FIFO queue per worksheet.

Views never talk to Sage.  Once a request's transaction has committed, it hands a
``Job`` to the registry, which stores the cell as queued and puts the job on the
worksheet's queue.  A thread per worksheet runs the jobs in order on the worksheet's
``SageKernel`` and has the ``OutputStore`` write the outputs into ZODB as they arrive
(at most every ``flush_interval`` seconds while a cell runs, at once when it finishes),
which then wakes the requests waiting for that cell.  So outputs live on the server:
closing the browser loses nothing, and any app server that shares the database can
show them.
"""
import collections
import logging
import os
import shutil
import sys
import threading
import time
import uuid

import psutil
from pyramid.settings import asbool
from ZODB.POSException import ConflictError

from .. import watchdog
from ..resources import in_transaction
from ..outages import outage_of
from .records import WorkerHost
from ..settings import SettingsError
from . import capacity, cellfiles
from .. import server_settings
from .config import SETTINGS_INTERVAL, WorkerConfig
from .contract import WorkerBusy, WorkerProblem
from .directives import PRELUDE
from .kernel import (ForkedKernel, ForkServerClient, KernelStartError, SpawnedKernel,
                     ipc_fits_under)
from .store import OutputStore, Update
from .worksheet import QUESTION_TIMEOUT, CommRequest, Question, WorksheetWorker

log = logging.getLogger(__name__)

__all__ = ['WorkerRegistry', 'check_root_without_uids']


def check_reachable(folder):
    """Worker uids must pass through every parent of their folders and of Python's."""
    path = folder
    while True:
        if not os.stat(path).st_mode & 0o001:
            raise SettingsError(
                '%s is not searchable by other users, so Sage processes running under '
                'sagenb.workers.uids cannot reach %s (chmod o+x %s)' % (path, folder, path))
        parent = os.path.dirname(path)
        if parent == path:
            return
        path = parent


# An open page asks for its worksheet's process every minute (``alive``): one not
# looked at for longer has no page open, and may be stopped when the host is full.
VIEWER_GONE = 90
# Descriptors left free when a host takes another process (connections, files).
FD_HEADROOM = 64
# Arrivals counted over this many seconds for the number of spares; starts at once.
SPARE_RATE_WINDOW = 30
SPARE_RATE_SPAN = 5  # the shortest time a rate is taken over
SPARE_STARTS = 2


def check_root_without_uids(settings, euid=None):
    """Before a server that starts Sage processes (``pserve`` with its embedded worker
    host, ``sagenb-worker``) opens anything: started as root without
    ``sagenb.workers.uids``, its Sage processes would run as root.  Refused where
    ``sagenb.workers.require_uids_as_root`` is true (production.ini), else a warning."""
    euid = os.geteuid() if euid is None else euid
    if euid != 0 or settings.get('sagenb.workers.uids', '').strip():
        return
    if asbool(settings.get('sagenb.workers.require_uids_as_root', False)):  # tests: raw
        raise SettingsError(
            'this server runs as root without sagenb.workers.uids, so its Sage processes '
            'would run as root (user code could do whatever root can).  Give them uids '
            'of their own: sagenb.workers.uids = 20000-20199 (or SAGENB_WORKERS_UIDS); '
            'or, to run them as root all the same, say so: '
            'SAGENB_WORKERS_REQUIRE_UIDS_AS_ROOT=false (docs/security.md)')
    log.warning(
        'Sage processes will run as root: user code can do whatever root can, '
        'and Linux does not apply the limit on processes to root (a fork bomb '
        'is not contained).  Give them uids of their own: sagenb.workers.uids '
        '(docs/security.md).')


def kernel_pid(kernel):
    """The pid of a kernel's process, None when it has none (yet)."""
    if kernel is None:
        return None
    pid = getattr(kernel, 'pid', None)
    if pid is None and hasattr(kernel, '_process'):
        process = kernel._process()
        pid = process.pid if process is not None else None
    return pid


def process_usage(pid):
    """(resident bytes, CPU seconds) of a process, (None, None) when it is not there
    (ended meanwhile, or a test's fake kernel)."""
    if pid is None:
        return None, None
    try:
        process = psutil.Process(pid)
        with process.oneshot():
            times = process.cpu_times()
            return process.memory_info().rss, round(times.user + times.system, 2)
    except psutil.Error:
        return None, None


class WorkerRegistry:
    """All worksheet workers of this app server, the spare Sage processes, and news."""

    def __init__(self, db, settings, kernel_factory=None):
        """``settings``: the app's settings or a ``WorkerConfig``.  ``kernel_factory``
        makes a started kernel (tests pass a fake one); by default a Sage process of
        the configured mode."""
        self.db = db
        config = settings if isinstance(settings, WorkerConfig) else \
            WorkerConfig.from_settings(settings)
        self.config = config
        self.kernel_name = config.kernel_name
        self.mode = config.mode
        self.limits = config.limits
        self.network = config.network
        self._free_uids = list(config.uids) if config.uids is not None else None
        self.kernel_factory = kernel_factory or self._new_process
        # Changed by an admin in the browser (read_server_settings), tests set others.
        self.idle_timeout = config.idle_timeout
        self.startup_timeout = config.startup_timeout
        self.spare_count = config.spare_count
        # Warm the fork server when the app starts (else at the first evaluation).
        self.prestart = config.prestart
        self.flush_interval = config.flush_interval
        self.interrupt_timeout = config.interrupt_timeout
        # Raised to the hard limit first: a class's worksheets pass Linux's 1024.
        self.open_files = capacity.raise_open_files()
        self.max_total = capacity.max_total(config.max_total, self.mode, self.open_files)
        log.info('up to %d Sage processes (memory allows %d, %d open files allow %d)',
                 self.max_total, capacity.allowed_by_memory(self.mode), self.open_files,
                 capacity.allowed_by_descriptors(self.open_files))
        # Spares beyond ``spare_count`` while new worksheets keep arriving.
        self.spare_max = config.spare_max
        self.max_output_chars = config.max_output_chars
        self.max_output_file_bytes = config.max_output_file_bytes
        # Outputs record which server and which boot of it runs them, so that a cell
        # left "running" by a server that died can be recognised after its restart.
        self.server_name = config.server_name
        self.boot_id = uuid.uuid4().hex[:12]
        # Where app servers reach this host (hostapi.py), None: only in this process.
        self.address = None
        self.heartbeat = config.heartbeat
        self._published_at = 0.0
        self._published_running = None
        self.runtime_dir = config.runtime_dir
        self.work_root = config.work_root
        os.makedirs(self.runtime_dir, mode=0o700, exist_ok=True)
        os.makedirs(self.work_root, exist_ok=True)
        os.chmod(self.work_root, 0o711)
        # Without network, a kernel's channels can only be Unix sockets in its folder.
        if not self.network and not ipc_fits_under(self.work_root):
            raise SettingsError(
                'sagenb.workers.network = false needs Unix sockets under %s, whose path '
                'is too long for them: choose a shorter data_dir' % self.work_root)
        if self._free_uids is not None:
            for folder in (self.work_root, sys.prefix, sys.base_prefix):
                check_reachable(folder)
        self._workers = {}
        self._spares = []
        self._spares_starting = 0
        self._taken = collections.deque()  # when processes were taken (arrival rate)
        self._start_seconds = 1.0  # how long a process takes to start (moving average)
        self._lock = threading.Lock()
        self._latest_runs = {}
        self.output_store = OutputStore(db)
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._housekeeper = None
        # Only Sage processes of the fork mode need it (not those of a kernel_factory).
        self.forkserver = ForkServerClient(self.runtime_dir, self.startup_timeout) \
            if self.mode == 'fork' and kernel_factory is None else None

    # -- life cycle --------------------------------------------------------------
    def start(self):
        with self._lock:
            if self._housekeeper is not None:
                return
            # Folders of Sage processes of an earlier run of this server (killed before
            # it could clean up) are of no use to anyone now.
            for entry in os.listdir(self.work_root):
                shutil.rmtree(os.path.join(self.work_root, entry), ignore_errors=True)
            self._housekeeper = threading.Thread(
                target=self._housekeeping, name='worker-housekeeping', daemon=True)
            watchdog.essential(self._housekeeper, 'the worker housekeeping')
        # App servers find this host (and this boot of it) in ZODB.
        self.publish(force=True)
        self._housekeeper.start()

    def shutdown(self):
        self._stopping.set()
        self._wake.set()
        if self._housekeeper is not None:
            watchdog.release(self._housekeeper)
        with self._lock:
            workers, self._workers = list(self._workers.values()), {}
            spares, self._spares = self._spares, []
        for worker in workers:
            worker.stop('the worker host %s stopped, and this Sage process with it'
                        % self.server_name)
        for kernel in spares:
            kernel.shutdown()
        if self.forkserver is not None:
            self.forkserver.stop()
        self.output_store.stop()
        if self._housekeeper is not None:
            self.unpublish()

    @property
    def alive(self):
        """Started, not stopping, and its housekeeping thread runs (``/health``)."""
        keeper = self._housekeeper
        return keeper is not None and keeper.is_alive() and not self._stopping.is_set()

    @property
    def server_tag(self):
        return '%s:%s' % (self.server_name, self.boot_id)

    def running_keys(self):
        """``"<owner id>/<number>"`` of the worksheets with a process (or cells
        waiting for one) here: what the limits count."""
        with self._lock:
            return sorted('%s/%d' % w.key for w in self._workers.values() if w.has_process)

    def publish(self, force=False):
        """Write this host's record (``root.worker_hosts``) when what it says changed,
        or, for a host that app servers reach over the network, every ``heartbeat``
        seconds so they know it lives."""
        running = tuple(self.running_keys()) if self.address else ()
        due = self.address and time.time() - self._published_at >= self.heartbeat
        if not force and not due and running == self._published_running:
            return
        def write(root):
            hosts = root.worker_hosts
            record = hosts.get(self.server_name)
            if record is None or record.boot != self.boot_id:
                record = hosts[self.server_name] = WorkerHost(self.server_name, self.boot_id)
            record.address = self.address
            record.max_total = self.max_total
            record.heartbeat = time.time()
            record.interval = self.heartbeat
            record.running = running
        try:
            in_transaction(self.db, write, attempts=5)
        except ConflictError:
            log.warning('could not write the record of worker host %s', self.server_name)
            return
        self._published_at = time.time()
        self._published_running = running

    def unpublish(self):
        """Remove this host's record: its worksheets go elsewhere, its busy cells are
        known to be lost."""
        def remove(root):
            hosts = root.worker_hosts
            record = hosts.get(self.server_name)
            if record is not None and record.boot == self.boot_id:
                del hosts[self.server_name]
        try:
            in_transaction(self.db, remove, attempts=5)
        except ConflictError:
            log.warning('could not remove the record of worker host %s', self.server_name)

    def blob_paths(self, oids):
        """Paths of the committed files of the blobs ``oids`` (hex; None: gone)."""
        from ZODB.POSException import POSKeyError

        def paths(root):
            found = []
            for oid in oids:
                try:
                    found.append(root._p_jar.get(bytes.fromhex(oid)).committed())
                except (POSKeyError, ValueError, TypeError, AttributeError):
                    found.append(None)
            return found
        return in_transaction(self.db, paths)

    # -- evaluation ------------------------------------------------------------------
    def submit(self, job):
        """Queue a cell: stored as queued (in a group commit) before this returns, so
        whoever evaluated sees it queued; then run in order.

        The worksheet's thread may start on it while the queued state is being
        committed: what it stores goes through the same store, after it.  A job whose
        request waits for the result (``awaited``) does not wait for its queued state:
        that is stored with the result when the cell ends within ``flush_interval``
        (one commit instead of two), else on its own then."""
        self.start()
        queued = Update(job, 'queued', [], None, None, None, queue=self.server_tag,
                        due=time.time() + self.flush_interval if job.awaited else 0.0)
        self.output_store.put(queued)
        with self._lock:  # under the lock, so the idle reaper never takes this worker
            self._latest_runs[job.cell_key] = job.run_id
            self._worker_made(job.key).submit(job)
        if not job.awaited:
            queued.done.wait()

    def ask(self, key, kind, content, timeout):
        """Ask the worksheet's process (started if needed) a completion or introspection
        question; its reply content, WorkerBusy if the worksheet's thread did not take it
        up within ``timeout`` (cells ran), or WorkerProblem."""
        self.start()
        question = Question(kind, content)
        with self._lock:
            worker = self._worker_made(key)
            # No process yet (or one starting): its start is no reason to say "busy".
            if worker.kernel is None and not worker.busy:
                timeout = max(timeout, self.startup_timeout)
            worker.submit(question)
        if not question.done.wait(timeout) and question.cancel():
            raise WorkerBusy('the worksheet is busy running cells; try again when they '
                             'finish')
        # Taken up by the worksheet's thread: it answers (an error too) once its process
        # has started and had QUESTION_TIMEOUT to reply; the wait is only a safety net.
        if not question.done.wait(self.startup_timeout + QUESTION_TIMEOUT + 5):
            raise WorkerProblem('the Sage process did not answer')
        if question.error:
            raise WorkerProblem(question.error)
        return question.reply

    def send_comm(self, key, cell_id, run_id, comm_id, data):
        """Pass a widget change of the page to the worksheet's process; None when it
        is on its way, else why not."""
        worker = self._worker(key)
        if worker is None or worker.kernel is None:
            return 'these controls are not live: evaluate the cell again'
        request = CommRequest(cell_id, run_id, comm_id, data)
        worker.submit(request)
        # Answered when the worker takes it (after any cells queued before it).
        if not request.done.wait(2):
            return None
        return request.error

    def send_input(self, key, cell_id, value):
        worker = self._worker(key)
        return worker is not None and worker.send_input(cell_id, value)

    def interrupt(self, key):
        worker = self._worker(key)
        return worker.interrupt() if worker else False

    def restart(self, key):
        worker = self._worker(key)
        return worker.restart() if worker else 0

    def discard(self, key):
        """The worksheet is gone: stop its process and its thread."""
        with self._lock:
            worker = self._workers.pop(key, None)
        if worker is not None:
            worker.stop()

    def has_process(self, key):
        """The worksheet has a live process here, or cells waiting for one."""
        worker = self._worker(key)
        return worker is not None and worker.has_process

    def is_running(self, key):
        worker = self._worker(key)
        return worker is not None and worker.kernel is not None

    def touch(self, key):
        """A viewer looked at the worksheet: its process is not idle."""
        worker = self._worker(key)
        if worker is not None:
            worker.last_activity = time.time()

    def has_room(self):
        """Another worksheet's process may start here: under ``max_total``, and with
        the descriptors it needs left under the limit of open files."""
        with self._lock:
            running = sum(1 for w in self._workers.values() if w.has_process)
        if running >= self.max_total:
            return False
        in_use = capacity.open_files_in_use()
        return in_use is None or \
            in_use + 2 * capacity.FDS_PER_PROCESS <= self.open_files - FD_HEADROOM

    def make_room(self):
        """Stop the process idle longest (no cell running or waiting, no page open:
        not looked at for ``VIEWER_GONE`` seconds) so that another may start, as the
        legacy notebook stopped idle processes.  False when none is idle."""
        now = time.time()
        with self._lock:  # under the lock: a cell submitted now finds a new worker
            idle = [w for w in self._workers.values() if w.has_process and not w.busy
                    and now - w.last_activity > VIEWER_GONE]
            if not idle:
                return False
            worker = min(idle, key=lambda w: w.last_activity)
            del self._workers[worker.key]
        log.info('stopping the process of worksheet %s/%d, idle for %.0f s, to make room '
                 'for another', worker.key[0], worker.key[1], now - worker.last_activity)
        worker.stop()
        return True

    def processes(self):
        """The worksheets' processes here (``HostOperations.processes``): what the
        admin's page of the running system lists, and the metrics count."""
        now = time.time()
        with self._lock:
            workers = [w for w in self._workers.values() if w.has_process]
        found = []
        for worker in workers:
            kernel = worker.kernel
            pid = kernel_pid(kernel)
            memory, cpu = process_usage(pid)
            found.append({
                'worksheet': '%s/%d' % worker.key, 'pid': pid, 'memory': memory,
                'cpu_seconds': cpu, 'idle_seconds': round(max(0.0, now - worker.last_activity), 1),
                'running': worker.current is not None, 'queued': worker.queued,
                'started': getattr(kernel, 'started', None)})
        return found

    def spares(self):
        """Sage processes started ahead, waiting for a worksheet."""
        with self._lock:
            return len(self._spares)

    def _worker_made(self, key):
        """The worksheet's worker, made if it has none (call with ``_lock`` held)."""
        worker = self._workers.get(key)
        if worker is None:
            worker = self._workers[key] = WorksheetWorker(self, key)
        return worker

    def _worker(self, key):
        with self._lock:
            return self._workers.get(key)

    def new_kernel(self):
        with self._lock:
            kernel = self._spares.pop(0) if self._spares else None
            self._taken.append(time.monotonic())
        self._wake.set()  # start the next spare now
        if kernel is not None and kernel.is_alive():
            return kernel
        return self._start_kernel()

    def spare_target(self):
        """Spare processes to keep: ``spare_count``, and while new worksheets arrive,
        as many as arrive in two start-up times (so that a burst, a class arriving,
        finds them ready), up to ``spare_max`` and the room under ``max_total``."""
        now = time.monotonic()
        with self._lock:
            while self._taken and now - self._taken[0] > SPARE_RATE_WINDOW:
                self._taken.popleft()
            # Over the time they came in (a burst of 30 in 3 s is 6 a second, not 1).
            span = max(now - self._taken[0], SPARE_RATE_SPAN) if self._taken else 1
            rate = len(self._taken) / span
            room = self.max_total - sum(1 for w in self._workers.values() if w.has_process)
        # Rounded: a worksheet now and then (well under one start-up time apart) is
        # served by ``spare_count``; extra spares would be stopped unused.
        wanted = round(rate * self._start_seconds * 2)
        return self.spare_count + max(0, min(wanted, self.spare_max - self.spare_count, room))

    def _start_kernel(self):
        """A started process, prepared for worksheets (spares are made ahead with it)."""
        began = time.monotonic()
        kernel = self.kernel_factory()
        # DATA's folder and the helpers of directives and layouts (workers/directives.py).
        cellfiles.make_data_dir(kernel)
        kernel.run_quietly(PRELUDE)
        self._start_seconds = 0.8 * self._start_seconds + 0.2 * (time.monotonic() - began)
        return kernel

    def _new_process(self):
        if self.mode == 'spawn':
            kernel = SpawnedKernel(self.kernel_name, self.runtime_dir, self.work_root,
                                   self.startup_timeout).start()
        else:
            uid = self._take_uid()
            kernel = ForkedKernel(self.forkserver, self.work_root, self.startup_timeout,
                                  uid=uid, gid=uid, limits=self.limits,
                                  network=self.network)
            kernel.on_shutdown = lambda: self._give_back_uid(uid)
            try:
                kernel.start()
            except KernelStartError:
                self._give_back_uid(uid)
                raise
        return kernel

    def _take_uid(self):
        """A uid of the configured range that no running kernel has (None: no range)."""
        if self._free_uids is None:
            return None
        with self._lock:
            if not self._free_uids:
                raise KernelStartError('every worker uid is in use (sagenb.workers.uids)')
            return self._free_uids.pop(0)

    def _give_back_uid(self, uid):
        if uid is not None:
            with self._lock:
                self._free_uids.append(uid)

    def _housekeeping(self):
        if self.forkserver is not None and self.prestart:
            try:  # warm Sage now rather than at the first evaluation
                self.forkserver.start()
            except Exception:
                log.exception('could not start the Sage fork server')
        next_settings = 0.0
        while not self._stopping.is_set():
            try:
                if time.monotonic() >= next_settings:
                    self.read_server_settings()
                    next_settings = time.monotonic() + SETTINGS_INTERVAL
                self._reap_idle()
                self.publish()
                self._top_up_spares()
            except Exception as exc:
                kind = outage_of(exc)
                if kind is None:
                    log.exception('worker housekeeping failed')
                else:  # the heartbeat goes on once it is back (every round tries)
                    log.warning('worker housekeeping: the %s is unavailable (%s)',
                                kind, type(exc).__name__)
            self._wake.wait(min(2.0, self.heartbeat))
            self._wake.clear()

    def read_server_settings(self):
        """Limits an admin set in the browser (``root.server_settings``) override the
        ``.ini`` on every host: read them now and then."""
        values = in_transaction(
            self.db, lambda root: dict(root.server_settings))
        for attribute, value in server_settings.stored(values, 'host').items():
            setattr(self, attribute, value)

    def _reap_idle(self):
        now = time.time()
        with self._lock:
            idle = [w for w in self._workers.values()
                    if not w.busy and now - w.last_activity > self.idle_timeout]
            for worker in idle:
                del self._workers[worker.key]
        for worker in idle:
            log.info('stopping idle worker of worksheet %s', worker.key)
            worker.stop()

    def _top_up_spares(self):
        """Start the spares that are missing (up to ``SPARE_STARTS`` at once, each in
        a thread of its own: most of a start is the new process's work), or stop
        those no longer wanted once arrivals have calmed down."""
        target = self.spare_target()
        with self._lock:
            missing = target - len(self._spares) - self._spares_starting
            starts = max(0, min(missing, SPARE_STARTS - self._spares_starting))
            if self._stopping.is_set():
                starts = 0
            self._spares_starting += starts
            extra = []
            while len(self._spares) > target and self._spares_starting == 0:
                extra.append(self._spares.pop())
        for _ in range(starts):
            threading.Thread(target=self._start_spare, name='spare-start',
                             daemon=True).start()
        for kernel in extra:
            kernel.shutdown()

    def _start_spare(self):
        kernel, kept = None, False
        try:
            kernel = self._start_kernel()
        except KernelStartError:  # tried again at the next round (2 s), not at once
            log.exception('could not start a spare Sage process')
        finally:
            with self._lock:
                self._spares_starting -= 1
                if kernel is not None and not self._stopping.is_set():
                    self._spares.append(kernel)
                    kept = True
            if kernel is not None and not kept:  # the host stopped meanwhile
                kernel.shutdown()
            elif kept:
                self._wake.set()  # more may be wanted

    # -- storing ------------------------------------------------------------
    def is_current(self, job):
        """False once the cell was evaluated again on this server after ``job``.

        (A cell deleted or evaluated again on another server is caught when the
        outputs are stored: they are dropped.)"""
        return self._latest_runs.get(job.cell_key) == job.run_id

    def job_done(self, job):
        cell_key = job.cell_key
        with self._lock:
            if self._latest_runs.get(cell_key) == job.run_id:
                del self._latest_runs[cell_key]

    def store(self, writer, finished=None):
        """Write a job's outputs to its cell; False if the cell moved on (stale job).

        A job's last update (``finished``) is queued without waiting for its commit,
        unless it carries the file of a cut text, which is closed once stored.  Nothing
        in the worksheet's thread needs the answer then, the requests waiting for the
        cell hear of the commit themselves (news.py), and updates are committed in the
        order they were queued, so the next job's come after it: the thread takes its
        next job at once, one wake-up fewer per cell.  Returns True for it."""
        update = Update(
            writer.job, writer.status, [dict(o) for o in writer.outputs],
            writer.execution_count, writer.started, finished,
            full_text=writer.full if finished is not None else None,
            files=writer.files if finished is not None else None,
            widgets=(writer.widgets() or None) if writer.widgets is not None else None,
            widgets_only=writer.widgets_only,
            input_request=writer.input_request if finished is None else None)
        if finished is not None and writer.full is None:
            self.output_store.put(update)
            return True
        return self.output_store.write(update)
