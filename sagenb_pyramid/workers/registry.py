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
import queue
import shutil
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass

from pyramid.settings import asbool
from ZODB.POSException import ConflictError

from .. import watchdog
from ..resources import WorkerHost, in_transaction
from ..settings import SettingsError
from . import capacity, cellfiles
from .directives import PRELUDE
from .widgets import WidgetTracker
from .kernel import (ForkedKernel, ForkServer, KernelStartError, SpawnedKernel,
                     ipc_fits_under)
from .store import OutputStore, Update

log = logging.getLogger(__name__)

# After the cut, the last characters of the output stay visible below the marker.
TAIL_CHARS = 2000


def worker_limits(settings):
    """Resource limits of each Sage process (``sagenb.workers.limit.*``; 0 = none)."""
    limits = {}
    for name in ('address_space', 'cpu_seconds', 'processes', 'open_files', 'file_size'):
        value = int(float(settings.get('sagenb.workers.limit.' + name, 0)))
        limits[name] = value or None
    return limits


def parse_uids(text):
    """``"20000-20099"`` -> a list of uids; empty -> None (kernels keep the server's uid)."""
    text = (text or '').strip()
    if not text:
        return None
    uids = []
    for part in text.replace(',', ' ').split():
        low, _, high = part.partition('-')
        uids.extend(range(int(low), int(high or low) + 1))
    if any(uid <= 0 for uid in uids):
        raise SettingsError('sagenb.workers.uids must not contain root')
    return uids


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


@dataclass
class Job:
    owner_id: str
    number: int
    cell_id: int
    run_id: str
    code: str
    typeset: bool = False
    # The worksheet's data files: (name, stamp, path of the committed blob file).
    data_files: tuple = ()
    # The evaluating request waits for the result: the cell's queued state may be
    # stored with the result if that comes within ``flush_interval``.
    awaited: bool = False

    @property
    def key(self):
        return (self.owner_id, self.number)

    @property
    def cell_key(self):
        return self.key + (self.cell_id,)


class Request:
    """Something other than a cell for the worksheet's thread, which owns the
    process's sockets: it handles it in queue order and sets ``done`` with an answer."""

    def __init__(self):
        self.done = threading.Event()
        self.reply = None
        self.error = None

    def answer(self, reply=None, error=None):
        self.reply, self.error = reply, error
        self.done.set()


class Question(Request):
    """A completion or introspection request for a worksheet's Sage process."""

    def __init__(self, kind, content):
        super().__init__()
        self.kind = kind
        self.content = content
        self.cancelled = False


class CommRequest(Request):
    """A change the page made to a widget of a cell (e.g. an @interact slider)."""

    def __init__(self, cell_id, run_id, comm_id, data):
        super().__init__()
        self.cell_id = cell_id
        self.run_id = run_id
        self.comm_id = comm_id
        self.data = data


class WorkerBusy(RuntimeError):
    """The worksheet's process did not get to a question in time (a cell is running)."""


class WorkerProblem(RuntimeError):
    """The worksheet's process could not answer (it could not start, or it died)."""


# Worker settings an admin may change in the browser, and how often they are read.
DB_SETTINGS = {'sagenb.workers.max_per_user': ('max_per_user', int),
               'sagenb.workers.idle_timeout': ('idle_timeout', float)}
HOST_SETTINGS = ('idle_timeout',)
SETTINGS_INTERVAL = 30


def stored_settings(values, attributes):
    """``{attribute: value}`` of the ``DB_SETTINGS`` among ``attributes`` that the
    stored server settings ``values`` hold."""
    found = {}
    for key, (attribute, kind) in DB_SETTINGS.items():
        if key in values and attribute in attributes:
            try:
                found[attribute] = kind(values[key])
            except (TypeError, ValueError):
                log.warning('ignoring the stored setting %s = %r', key, values[key])
    return found

QUESTION_TIMEOUT = 10  # seconds the Sage process has to answer a question
# An open page asks for its worksheet's process every minute (``alive``): one not
# looked at for longer has no page open, and may be stopped when the host is full.
VIEWER_GONE = 90
# Descriptors left free when a host takes another process (connections, files).
FD_HEADROOM = 64
# Arrivals counted over this many seconds for the number of spares; starts at once.
SPARE_RATE_WINDOW = 30
SPARE_RATE_SPAN = 5  # the shortest time a rate is taken over
SPARE_STARTS = 2


def error_output(ename, evalue):
    return {'output_type': 'error', 'ename': ename, 'evalue': evalue,
            'traceback': ['%s: %s' % (ename, evalue)]}


class CellWriter:
    """Keeps the outputs of one job and writes them to the job's cell.

    Stream text is kept up to ``max_output_chars`` (all streams of the cell together).
    Past that, the outputs show a marker and the last ``TAIL_CHARS`` characters (so the
    final lines of a flood are not silently dropped), and the whole text goes to a file
    that is stored with the cell when it finishes (``cells/<id>/output.txt``).
    """

    def __init__(self, registry, job):
        self.registry = registry
        self.job = job
        self.outputs = []
        self.status = 'queued'
        self.failed = False      # an error output was added
        self.execution_count = None
        self.started = None
        self.dirty = False
        self.last_flush = 0.0
        self.stale = False
        self._clear_pending = False
        self.shown = 0           # stream characters kept in ``outputs``
        self.hidden = 0          # stream characters past the cut
        self.cut = None          # the marker output, once the cut happened
        self.tail = ''
        self.full = None         # file with the whole stream text, once cut
        self.full_bytes = 0
        self.files = {}          # files the cell wrote, kept with it (name -> bytes)
        self.widgets = None      # a callable giving the cell's widget models, or None
        self.widgets_only = False  # a widget change: outputs and status stay as they are
        self.input_request = None  # {"prompt", "password"} while input() waits

    def running(self):
        """The cell starts.  A fast cell's first write is its result: "running" is
        stored only if it is still running after ``flush_interval``."""
        self.status = 'running'
        self.started = self.last_flush = time.time()
        self.dirty = True
        self.stale = not self.registry.is_current(self.job)

    def add(self, output):
        if self._clear_pending:
            self.outputs = []
            self._clear_pending = False
        if output['output_type'] == 'stream':
            self._add_stream(output['name'], output['text'])
        else:
            self.outputs.append(output)
        if output['output_type'] == 'error':
            # Stored as "error" when the cell ends: until then it is still running (its
            # files are collected, its process may print more).
            self.failed = True
        self.dirty = True

    def _add_stream(self, name, text):
        if self.cut is not None:
            self._beyond_cut(text)
            return
        room = self.registry.max_output_chars - self.shown
        head, rest = text[:room], text[room:]
        if head:
            last = self.outputs[-1] if self.outputs else None
            if last is not None and last['output_type'] == 'stream' and last['name'] == name:
                self.outputs[-1] = dict(last, text=last['text'] + head)
            else:
                self.outputs.append({'output_type': 'stream', 'name': name, 'text': head})
            self.shown += len(head)
        if rest:
            # The cut: everything shown so far starts the file of the whole output.
            self.full = tempfile.TemporaryFile(dir=self.registry.runtime_dir)
            self._write_full(''.join(o['text'] for o in self.outputs
                                     if o['output_type'] == 'stream'))
            self.cut = {'output_type': 'stream', 'name': name, 'text': ''}
            self.outputs.append(self.cut)
            self._beyond_cut(rest)

    def _beyond_cut(self, text):
        self._write_full(text)
        self.hidden += len(text)
        self.tail = (self.tail + text)[-TAIL_CHARS:]
        shown_tail = self.tail[self.tail.find('\n') + 1:] if len(self.tail) == TAIL_CHARS \
            else self.tail
        self.cut['text'] = (
            '\n[... %s more characters; the whole output: cells/%d/output.txt ...]\n%s'
            % (format(self.hidden - len(shown_tail), ','), self.job.cell_id, shown_tail))

    def _write_full(self, text):
        limit = self.registry.max_output_file_bytes
        if self.full_bytes >= limit:
            return
        data = text.encode('utf-8', 'replace')
        if self.full_bytes + len(data) > limit:
            data = data[:limit - self.full_bytes] + b'\n[... cut: the file reached its limit ...]\n'
        self.full.write(data)
        self.full_bytes += len(data)

    def clear(self, wait):
        if wait:
            self._clear_pending = True
        else:
            self.outputs = []
            self.dirty = True

    def maybe_flush(self):
        if self.dirty and time.time() - self.last_flush >= self.registry.flush_interval:
            self.flush()

    def flush(self, finished=None):
        self.dirty = False
        self.last_flush = time.time()
        if not self.stale:
            self.stale = not self.registry.store(self, finished)

    def finish_with(self, output):
        """End a job that never ran (or failed around the kernel) with one error."""
        self.outputs = [output]
        self.finish('error')

    def finish(self, status=None):
        if status is not None:
            self.status = status
        else:
            self.status = 'error' if self.failed else 'done'
        try:
            self.flush(finished=time.time())
        finally:
            if self.full is not None:
                self.full.close()
                self.full = None


class WorksheetWorker:
    """A worksheet's queue, its thread and (while it lives) its Sage process."""

    def __init__(self, registry, key):
        self.registry = registry
        self.key = key
        self.jobs = queue.Queue()
        self.kernel = None
        self.starting = False
        self.current = None
        self.last_activity = time.time()
        self.lock = threading.Lock()
        self.stopped = False
        self._kill_generation = 0
        self._retired = []
        self.interrupt_deadline = None
        self._restart_reason = None
        # input(): the cell id waiting for a value, and values sent by the page.
        self.awaiting_input = None
        self.stdin_replies = queue.Queue()
        self.widgets = WidgetTracker()
        self.thread = threading.Thread(
            target=self._run, name='worksheet-%s-%s' % key, daemon=True)
        self.thread.start()

    @property
    def busy(self):
        """Running a cell or holding queued ones (the wake-up ``None`` is no cell)."""
        if self.current is not None:
            return True
        with self.jobs.mutex:
            return any(isinstance(job, Job) for job in self.jobs.queue)

    @property
    def has_process(self):
        """Counts against the limits: a live process, one starting, or cells waiting
        for one.  (A cell that is still ending after a restart holds none: the next
        cell starts a fresh process.)"""
        if self.kernel is not None or self.starting:
            return True
        with self.jobs.mutex:
            return any(isinstance(job, Job) for job in self.jobs.queue)

    def submit(self, job):
        self.last_activity = time.time()
        self.jobs.put(job)

    def interrupt(self):
        self.last_activity = time.time()
        with self.lock:
            kernel = self.kernel
        if kernel is not None and self.current is not None:
            kernel.interrupt()
            # Code that ignores SIGINT does not get to keep the process: see _execute.
            self.interrupt_deadline = time.time() + self.registry.interrupt_timeout
            return True
        return False

    def restart(self, reason='the worksheet was restarted before this cell ran'):
        """Stop the Sage process; queued cells are cancelled, the next cell starts anew.

        Only the process is killed here: its sockets belong to the worksheet's thread,
        which closes them (a ZMQ socket must not be closed under a thread polling it).
        """
        dropped = self._drain()
        with self.lock:
            kernel, self.kernel = self.kernel, None
            self._kill_generation += 1
            if kernel is not None:
                self._retired.append(kernel)
        for job in dropped:
            CellWriter(self.registry, job).finish_with(error_output('NotRun', reason))
            self.registry.job_done(job)
        if kernel is not None:
            kernel.kill()
        self.jobs.put(None)  # wakes the thread to close the old kernel's sockets
        self.last_activity = time.time()
        return len(dropped)

    def stop(self, reason=None):
        """Stop the process and the thread (the worksheet is gone, idle, or the host
        stops: ``reason`` is then what a running cell says)."""
        self.stopped = True
        if reason is not None:
            self._restart_reason = error_output('WorkerStopped', reason)
        self.restart(reason or 'the worksheet was restarted before this cell ran')
        self.thread.join(timeout=10)

    def _drain(self):
        dropped = []
        while True:
            try:
                job = self.jobs.get_nowait()
            except queue.Empty:
                return dropped
            if isinstance(job, Request):
                job.answer(error='the worksheet was restarted')
            elif job is not None:
                dropped.append(job)

    def _close_retired(self):
        with self.lock:
            retired, self._retired = self._retired, []
        for kernel in retired:
            kernel.shutdown()

    def _run(self):
        while True:
            job = self.jobs.get()
            self._close_retired()
            if job is None:
                if self.stopped:
                    return
                continue
            if isinstance(job, Question):
                self._answer(job)
                continue
            if isinstance(job, CommRequest):
                self.current = job
                try:
                    self._comm(job)
                except Exception:  # the thread must survive a bad widget message too
                    log.exception('a widget message for %s failed', self.key)
                    job.answer(error='the notebook failed to pass the change on')
                finally:
                    self.current = None
                    self.last_activity = time.time()
                continue
            # A cell that will start a process: counted as one from now on.
            self.starting = self.kernel is None
            self.current = job
            try:
                self._execute(job)
            except Exception:  # the thread must survive whatever one cell does
                log.exception('evaluating cell %s of %s failed', job.cell_id, job.key)
                CellWriter(self.registry, job).finish_with(
                    error_output('InternalError', 'the notebook failed to run this cell'))
            finally:
                self.registry.job_done(job)
                self.current = None
                self.last_activity = time.time()

    def _kernel(self):
        with self.lock:
            if self.kernel is not None and self.kernel.is_alive():
                return self.kernel, self._kill_generation
            old, self.kernel = self.kernel, None
        if old is not None:
            old.shutdown()
        self.starting = True
        try:
            kernel = self.registry.new_kernel()
        except BaseException:
            self.starting = False
            raise
        self.widgets.reset()
        with self.lock:
            self.kernel = kernel
            self.starting = False
            return kernel, self._kill_generation

    def _comm(self, request):
        """Pass a widget change to the kernel, then keep what it answers (the interact's
        function runs again and prints into its Output widget) with the cell."""
        with self.lock:
            kernel, generation = self.kernel, self._kill_generation
        if kernel is None or not kernel.is_alive() or \
                self.widgets.cell_of(request.comm_id) != request.cell_id:
            request.answer(error='these controls are not live: evaluate the cell again')
            return
        data = request.data
        if data.get('method') == 'update':
            self.widgets.apply(request.comm_id, data.get('state') or {})
        msg = kernel.client.session.msg('comm_msg', {'comm_id': request.comm_id,
                                                     'data': data})
        kernel.client.shell_channel.send(msg)
        msg_id = msg['header']['msg_id']
        request.answer()
        job = Job(self.key[0], self.key[1], request.cell_id, request.run_id, '')
        writer = CellWriter(self.registry, job)
        writer.widgets = lambda: self.widgets.snapshot(request.cell_id)
        writer.widgets_only = True
        writer.dirty = True
        while True:
            msg = kernel.iopub(timeout=0.1)
            if msg is None:
                if generation != self._kill_generation or not kernel.is_alive():
                    break
                writer.maybe_flush()
                continue
            if self.widgets.take(msg, request.cell_id):
                writer.dirty = True
            elif msg['parent_header'].get('msg_id') == msg_id and \
                    msg['msg_type'] == 'status' and \
                    msg['content']['execution_state'] == 'idle':
                break
            writer.maybe_flush()
        writer.flush()

    def send_input(self, cell_id, value):
        """A value for the ``input()`` the cell waits in; False if it does not wait."""
        if self.awaiting_input != cell_id:
            return False
        self.stdin_replies.put((cell_id, value))
        return True

    def _serve_stdin(self, kernel, job, writer):
        """Pass ``input()`` requests to the page (stored with the cell) and its answers
        back to the kernel."""
        request = kernel.stdin_request()
        if request is not None and request['msg_type'] == 'input_request':
            content = request['content']
            writer.input_request = {'prompt': content.get('prompt', ''),
                                    'password': bool(content.get('password'))}
            self.awaiting_input = job.cell_id
            while not self.stdin_replies.empty():  # answers meant for an earlier input()
                self.stdin_replies.get_nowait()
            writer.flush()
            return
        if self.awaiting_input is None:
            return
        try:
            cell_id, value = self.stdin_replies.get_nowait()
        except queue.Empty:
            return
        if cell_id != job.cell_id:
            return
        prompt = writer.input_request or {}
        shown = '\u2022' * len(value) if prompt.get('password') else value
        writer.add({'output_type': 'stream', 'name': 'stdout',
                    'text': '%s%s\n' % (prompt.get('prompt', ''), shown)})
        writer.input_request = None
        self.awaiting_input = None
        kernel.client.input(value)
        writer.flush()

    def _answer(self, question):
        if question.cancelled:
            return
        try:
            try:
                kernel, _ = self._kernel()
            except KernelStartError as exc:
                question.answer(error=str(exc))
                return
            reply = kernel.shell_reply(kernel.ask(question.kind, question.content),
                                       QUESTION_TIMEOUT)
            if reply is None:
                question.answer(error='the Sage process did not answer'
                                if kernel.is_alive() else kernel.exit_description())
            else:
                question.answer(reply=reply['content'])
        except Exception:  # the thread must survive a bad question too
            log.exception('asking %s of %s failed', question.kind, self.key)
            question.answer(error='the notebook failed to ask the Sage process')
        finally:
            self.last_activity = time.time()

    def _execute(self, job):
        self.interrupt_deadline = None
        self._restart_reason = None
        self.awaiting_input = None
        writer = CellWriter(self.registry, job)
        try:
            kernel, generation = self._kernel()
        except KernelStartError as exc:
            writer.finish_with(error_output('WorkerError', str(exc)))
            return
        writer.running()
        if writer.stale:  # the cell was deleted or evaluated again meanwhile
            return
        writer.widgets = lambda: self.widgets.snapshot(job.cell_id)
        kernel.set_display(job.typeset)
        workdir = getattr(kernel, 'workdir', None)
        before = None
        if workdir is not None:
            cellfiles.sync_data(kernel, job.data_files, self.registry.blob_paths)
            if not kernel.reports_files:  # else its reply lists them (sagekernel.py)
                before = cellfiles.snapshot(workdir)
        msg_id = kernel.execute(job.code)
        while True:
            msg = kernel.iopub(timeout=0.1)
            if msg is None:
                if generation != self._kill_generation:
                    writer.add(self._restart_reason or
                               error_output('Restarted', 'the worksheet was restarted'))
                    writer.finish('error')
                    self._close_retired()
                    return
                if not kernel.is_alive():
                    died = kernel.exit_description()
                    # Cells queued behind it expected the state it had: they do not run.
                    # Dropped before this cell's end is stored: a cell evaluated once
                    # the page sees that end must start a fresh process, not be dropped.
                    self.restart('the Sage process stopped before this cell ran: ' + died)
                    writer.add(error_output('WorkerDied', died))
                    writer.finish('error')
                    self._close_retired()
                    return
                if self.interrupt_deadline and time.time() > self.interrupt_deadline:
                    self._restart_reason = error_output(
                        'Interrupted', 'the cell did not stop within %g s of the interrupt, '
                        'so its Sage process was restarted' % self.registry.interrupt_timeout)
                    self.restart()
                    continue
                self._serve_stdin(kernel, job, writer)
                writer.maybe_flush()
                continue
            if self.widgets.take(msg, job.cell_id):  # comm, or printed into an Output
                writer.dirty = True
                writer.maybe_flush()
                continue
            if msg['parent_header'].get('msg_id') != msg_id:
                continue
            kind, content = msg['msg_type'], msg['content']
            if kind == 'status' and content['execution_state'] == 'idle':
                self.awaiting_input = None
                writer.input_request = None
                break
            elif kind == 'execute_input':
                writer.execution_count = content.get('execution_count')
            elif kind == 'stream':
                writer.add({'output_type': 'stream', 'name': content['name'],
                            'text': content['text']})
            elif kind in ('execute_result', 'display_data'):
                output = {'output_type': kind, 'data': content.get('data', {}),
                          'metadata': content.get('metadata', {})}
                if kind == 'execute_result':
                    output['execution_count'] = content.get('execution_count')
                writer.add(output)
            elif kind == 'error':
                writer.add({'output_type': 'error', 'ename': content.get('ename', ''),
                            'evalue': content.get('evalue', ''),
                            'traceback': content.get('traceback', [])})
            elif kind == 'clear_output':
                writer.clear(content.get('wait', False))
            writer.maybe_flush()
        # ``foo?`` and ``foo??`` answer with a "page" payload in the execute reply.
        reply = kernel.shell_reply(msg_id, timeout=5)
        if reply is None:
            # The kernel failed while handling the request (it logs why, then sends
            # "idle" without a reply), or its process ended: the cell did not run as
            # asked, whatever it sent before.
            writer.add(error_output('KernelError', 'the Sage process sent no reply to this '
                                    'cell' + ('' if kernel.is_alive() else
                                              ': ' + kernel.exit_description())))
        elif writer.execution_count is None:
            # A forked kernel sends no execute_input (workers/sagekernel.py).
            writer.execution_count = reply['content'].get('execution_count')
        for payload in (reply or {}).get('content', {}).get('payload', []):
            if payload.get('source') == 'page' and payload.get('data'):
                writer.add({'output_type': 'display_data', 'data': payload['data'],
                            'metadata': {'sagenb': {'page': True}}})
        kernel.drain_shell()
        uid = getattr(kernel, 'uid', None)
        if before is not None:
            cellfiles.collect(workdir, before, writer, self.registry.max_output_file_bytes,
                              uid=uid)
        elif workdir is not None and reply is not None:
            cellfiles.collect_reported(
                workdir, reply['content'].get(cellfiles.FILES_KEY), writer,
                self.registry.max_output_file_bytes, uid=uid)
        writer.finish()


def check_root_without_uids(settings, euid=None):
    """Before a server that starts Sage processes (``pserve`` with its embedded worker
    host, ``sagenb-worker``) opens anything: started as root without
    ``sagenb.workers.uids``, its Sage processes would run as root.  Refused where
    ``sagenb.workers.require_uids_as_root`` is true (production.ini), else a warning."""
    euid = os.geteuid() if euid is None else euid
    if euid != 0 or settings.get('sagenb.workers.uids', '').strip():
        return
    if asbool(settings.get('sagenb.workers.require_uids_as_root', 'false')):
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


class WorkerRegistry:
    """All worksheet workers of this app server, the spare Sage processes, and news."""

    def __init__(self, db, settings):
        self.db = db
        self.kernel_name = settings['sagenb.workers.kernel']
        self.mode = settings['sagenb.workers.mode']
        if self.mode not in ('fork', 'spawn'):
            raise SettingsError('sagenb.workers.mode is "fork" or "spawn"')
        self.limits = worker_limits(settings)
        self.network = asbool(settings['sagenb.workers.network'])
        if not self.network and (self.mode != 'fork' or os.geteuid() != 0):
            raise SettingsError('sagenb.workers.network = false needs the fork mode and a '
                                'server started as root (network namespaces)')
        self._free_uids = parse_uids(settings.get('sagenb.workers.uids', ''))
        self.idle_timeout = float(settings['sagenb.workers.idle_timeout'])
        self.startup_timeout = float(settings['sagenb.workers.startup_timeout'])
        self.spare_count = int(settings['sagenb.workers.spare'])
        # Warm the fork server when the app starts (else at the first evaluation).
        self.prestart = asbool(settings['sagenb.workers.prestart'])
        self.flush_interval = float(settings['sagenb.workers.flush_interval'])
        self.interrupt_timeout = float(settings['sagenb.workers.interrupt_timeout'])
        # Raised to the hard limit first: a class's worksheets pass Linux's 1024.
        self.open_files = capacity.raise_open_files()
        self.max_total = capacity.max_total(settings['sagenb.workers.max_total'],
                                            self.mode, self.open_files)
        log.info('up to %d Sage processes (memory allows %d, %d open files allow %d)',
                 self.max_total, capacity.allowed_by_memory(self.mode), self.open_files,
                 capacity.allowed_by_descriptors(self.open_files))
        # Spares beyond ``spare_count`` while new worksheets keep arriving.
        self.spare_max = int(settings['sagenb.workers.spare_max'])
        self.max_output_chars = int(settings['sagenb.output.max_chars'])
        self.max_output_file_bytes = int(settings['sagenb.output.max_file_bytes'])
        # Outputs record which server and which boot of it runs them, so that a cell
        # left "running" by a server that died can be recognised after its restart.
        self.server_name = settings['sagenb.workers.server_name']
        self.boot_id = uuid.uuid4().hex[:12]
        # Where app servers reach this host (hostapi.py), None: only in this process.
        self.address = None
        self.api_server = None
        self.heartbeat = float(settings['sagenb.workers.heartbeat'])
        self._published_at = 0.0
        self._published_running = None
        self.runtime_dir = os.path.join(settings['data_dir'], 'runtime')
        self.work_root = os.path.join(settings['data_dir'], 'work')
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
        self.forkserver = ForkServer(self.runtime_dir, self.startup_timeout) \
            if self.mode == 'fork' else None

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
        if self.api_server is not None:  # no more requests from app servers
            from .hostapi import stop  # hostapi imports this module
            stop(self.api_server)
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
            hosts = root.tree('worker_hosts')
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
            record = hosts.get(self.server_name) if hosts is not None else None
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
        question; its reply content, WorkerBusy after ``timeout`` or WorkerProblem."""
        self.start()
        question = Question(kind, content)
        with self._lock:
            worker = self._worker_made(key)
            # No process yet (or one starting): its start is no reason to say "busy".
            if worker.kernel is None and not worker.busy:
                timeout = max(timeout, self.startup_timeout)
            worker.submit(question)
        if not question.done.wait(timeout):
            question.cancelled = True
            raise WorkerBusy('the worksheet is busy running cells; try again when they '
                             'finish')
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
        kernel = self._new_process()
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
            except Exception:
                log.exception('worker housekeeping failed')
            self._wake.wait(min(2.0, self.heartbeat))
            self._wake.clear()

    def read_server_settings(self):
        """Limits an admin set in the browser (``root.server_settings``) override the
        ``.ini`` on every host: read them now and then."""
        values = in_transaction(
            self.db, lambda root: dict(getattr(root, 'server_settings', None) or {}))
        for attribute, value in stored_settings(values, HOST_SETTINGS).items():
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
