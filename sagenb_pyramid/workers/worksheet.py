"""A worksheet's thread: its queue of cells and questions, and its Sage process.

The thread owns the process's sockets, so everything that talks to the kernel goes
through its queue: cells (``Job``), completion questions (``Question``), widget changes
(``CommRequest``) and values for ``input()``.  It runs a cell with ``execute_request``,
turns the IOPub messages into outputs (cellwriter.py) and handles what goes wrong: a
process that dies, an interrupt that is ignored, a restart.
"""
import logging
import queue
import threading
import time

from . import cellfiles
from .cellwriter import OUTPUT_MESSAGES, CellWriter, output_from_message, page_outputs
from .contract import Job, error_output
from .kernel import KernelStartError
from .widgets import WidgetTracker

log = logging.getLogger(__name__)

QUESTION_TIMEOUT = 10  # seconds the Sage process has to answer a question
REPLY_TIMEOUT = 5  # seconds a cell's execute reply may come after its "idle"


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
    """A completion or introspection request for a worksheet's Sage process.  The asker
    waits a short time for the worksheet's thread to take it up (cells queued before it
    run first) and then gives up (``cancel``); once taken (``take``), it waits for the
    process's answer, however slow (its first completion loads jedi: seconds on a busy
    machine), up to QUESTION_TIMEOUT."""

    def __init__(self, kind, content):
        super().__init__()
        self.kind = kind
        self.content = content
        self.cancelled = False
        self.taken = False
        self._lock = threading.Lock()

    def take(self):
        """The worksheet's thread starts on it: False if the asker gave up first."""
        with self._lock:
            self.taken = not self.cancelled
            return self.taken

    def cancel(self):
        """The asker gives up waiting: False if the thread has already taken it up (the
        answer is then on its way)."""
        with self._lock:
            self.cancelled = not self.taken
            return self.cancelled


class CommRequest(Request):
    """A change the page made to a widget of a cell (e.g. an @interact slider)."""

    def __init__(self, cell_id, run_id, comm_id, data):
        super().__init__()
        self.cell_id = cell_id
        self.run_id = run_id
        self.comm_id = comm_id
        self.data = data


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
    def queued(self):
        """How many cells wait for the one running (or for the process to start)."""
        with self.jobs.mutex:
            return sum(1 for job in self.jobs.queue if isinstance(job, Job))

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
        msg_id = kernel.send_comm(request.comm_id, data)
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
        kernel.send_input(value)
        writer.flush()

    def _answer(self, question):
        if not question.take():
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
        workdir = kernel.workdir
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
            elif kind in OUTPUT_MESSAGES:
                writer.add(output_from_message(kind, content))
            elif kind == 'clear_output':
                writer.clear(content.get('wait', False))
            writer.maybe_flush()
        # ``foo?`` and ``foo??`` answer with a "page" payload in the execute reply.
        reply = kernel.shell_reply(msg_id, timeout=REPLY_TIMEOUT)
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
        for output in page_outputs((reply or {}).get('content')):
            writer.add(output)
        kernel.drain_shell()
        uid = kernel.uid
        if before is not None:
            cellfiles.collect(workdir, before, writer, self.registry.max_output_file_bytes,
                              uid=uid)
        elif workdir is not None and reply is not None:
            cellfiles.collect_reported(
                workdir, reply['content'].get(cellfiles.FILES_KEY), writer,
                self.registry.max_output_file_bytes, uid=uid)
        writer.finish()

