"""What a forked Sage process runs: passagemath's Jupyter kernel, with less fixed work
per cell.

ipykernel spends most of a small cell's time on its own bookkeeping.  Four parts of it
do nothing for the notebook, and a forked kernel leaves them out; a fifth, passagemath's,
it does once instead of for every message; a sixth it does in fewer steps; a seventh,
Sage's, once instead of for every typeset result; and it repeats less for every cell
(lookups, log records, a second transform of the cell):

- **Flushes with nothing to send.**  Around every request ipykernel flushes stdout and
  stderr four times, and each flush is a round trip to its IOPub thread (two wake-ups
  and a wait), even when the cell printed nothing.  ``OutStream`` returns at once when
  nothing is buffered or on its way.  Text that was written is flushed as before.
- **A 0.5 ms sleep before each reply** (ipykernel's ``_execute_sleep``, a workaround for
  clients that read the reply before the last output).  The registry reads the reply
  only after the "idle" status, which IOPub sends after every output of the cell.
- **Two of the four IOPub messages of a cell**: the "busy" status of a shell request
  and ``execute_input`` (the code, echoed to other frontends).  The process has one
  client, the worksheet's thread, which wrote the code and takes the execution count
  from the reply.  The "idle" status stays: it tells that the cell's last output has
  been sent.  Each message cost both processes a serialization, a signature and a
  thread hand-over.
- **The shell-channel thread** of ipykernel 7 (``WorkerKernelApp``), which reads the
  shell socket and hands every request to the main thread, and every reply back, over
  in-process sockets, for subshells the notebook does not use.  The main thread reads
  the socket itself, as in ipykernel 6.  On one kernel (three interleaved pairs of
  1,500 cells) 10-33 % less CPU and 8-32 % less wall time per ``1+1``.
- **Setting cysignals up again before every message.**  passagemath's kernel calls
  ``init_cysignals()`` before each request, to put cysignals' SIGINT handler back after
  ipykernel's (which ignores SIGINT between requests).  That call also starts and joins a
  thread, and allocates a signal stack it never frees: per request about 0.15 ms of
  system CPU, 19 kB of private memory and 150 kB of address space, which the process's
  address-space limit counts (3,000 cells: 58 MB private, 455 MB of address space).  A
  forked kernel calls it once, keeps the SIGINT action it installed, and before each
  later request puts back only that (``_CysignalsSigint``).
- **Handing every IOPub message to the IOPub thread.**  ipykernel queues each message
  (a result, a display, the "idle" status) for its IOPub thread and wakes that thread
  to send it.  The main thread now sends its own messages, under a lock the IOPub
  thread shares (``_DirectIOPubThread``); streams and other threads' messages still go
  through the IOPub thread.  On one kernel, 6-28 % (median 21 %) less CPU per ``1+1``.
- **Sage's LaTeX macros, made again for every typeset result.**  Sage's MathJax output
  takes the list of its macros (``\\ZZ``, ``\\GF`` ...) from ``sage_latex_macros()``,
  to include those a result uses, and that imports and typesets sixteen Sage objects
  each time: about 75 of the 110 µs that formatting a typeset ``2`` takes.  The fork
  server makes them once (``cache_latex_macros``); they are made again if the list of
  macros changes.  On one kernel, 6-27 % (median 16 %) less CPU per typeset ``1+1``.
- **Lookups made again for every cell, and log records nobody writes** (tenth session).
  IPython's formatters look a result's type up in their tables of printers reading
  those tables, traitlets, once per class of its MRO and formatter (``cache_lookups``);
  ipykernel inspects ``run_cell``'s signature at every request; and ipykernel's four
  debug calls per request each built a record that the app's handler then dropped
  (``tune``).  In one kernel, toggled in eight interleaved pairs of 1,000 plain
  ``1+1``: 12 % less CPU per cell (median 1.67 against 1.90 ms).
- **Every cell transformed twice.**  ipykernel transforms a cell and asks whether it
  needs a coroutine runner, then the shell's ``run_cell`` does both again
  (``_TransformedOnce`` answers the second time).  Toggled the same way, twelve pairs:
  7 % less CPU per cell (median 1.61 against 1.73 ms).

Measured on one kernel, the first two cut the CPU and wall time of a ``1+1`` by about a
third, and the messages another 11-17 % of its CPU (docs/benchmarks.md).
"""
import ctypes
import signal
import threading

from cysignals import init_cysignals
from cysignals.signals import python_check_interrupt
from ipykernel.iostream import IOPubThread
from ipykernel.iostream import OutStream as _OutStream
from ipykernel.kernelapp import IPKernelApp
from sage.repl.ipython_kernel.kernel import SageKernel
import zmq

from .cellfiles import FILES_KEY, changed_files, snapshot


class OutStream(_OutStream):
    """ipykernel's stdout/stderr, whose ``flush`` returns at once when nothing written
    is waiting to be sent."""

    _sending = False

    def _flush(self):  # runs in the IOPub thread
        self._sending = True
        try:
            super()._flush()
        finally:
            self._sending = False

    def flush(self):
        # Text is written to a buffer, then moved out by ``_flush`` and sent (one
        # thread).  The buffer is checked first: text that leaves it afterwards is
        # caught by ``_sending``, which is set before it leaves.
        buffered = any(buffer.tell() for buffer in list(self._buffers.values()))
        if buffered or self._sending or self._flush_pending or \
                self._subprocess_flush_pending:
            super().flush()


class _CysignalsSigint:
    """cysignals' handling of SIGINT, put back in two system calls.

    ``init_cysignals()`` sets Python's SIGINT handler to cysignals' check, then installs
    cysignals' handlers at the C level (``sigaction``); the C handler is what interrupts
    a computation inside ``sig_on()`` (PARI, FLINT...).  ``install`` does the same two
    steps with the C action saved after the first full set-up, which already made the
    signal stack and the other handlers; nothing between requests changes those.
    """

    def __init__(self):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.action = None  # the C-level ``struct sigaction``, as bytes

    def _sigaction(self, new, old):
        if self.libc.sigaction(signal.SIGINT, new, old) != 0:
            raise OSError(ctypes.get_errno(), 'sigaction(SIGINT) failed')

    def install(self):
        """Make SIGINT interrupt the code about to run; returns the handler it replaces."""
        if self.action is None:
            previous = init_cysignals()
            # Larger than any libc's struct sigaction (glibc on x86-64: 152 bytes).
            self.action = ctypes.create_string_buffer(1024)
            self._sigaction(None, self.action)
            return previous
        previous = signal.signal(signal.SIGINT, python_check_interrupt)
        self._sigaction(self.action, None)
        # A SIGINT that reached cysignals after the last request's code had ended is
        # still pending in it: drop it, or the next sig_on() would raise it.
        try:
            python_check_interrupt(signal.SIGINT, None)
        except KeyboardInterrupt:
            pass
        return previous


class _NoShellChannelThread:
    """Stands for ipykernel 7's shell-channel thread in a kernel that runs without one.

    Where ipykernel asks whether there is such a thread it is false; where its path for
    a cell with a top-level ``await`` asks which thread runs cells (``parent_thread``),
    it answers the main thread, which does."""

    @property
    def parent_thread(self):
        return threading.main_thread()

    def __bool__(self):
        return False


class _DirectIOPubThread(IOPubThread):
    """ipykernel's IOPub thread, except that the main thread sends its own messages.

    ipykernel hands every IOPub message to its IOPub thread: the sender queues it and
    wakes the thread, which sends it.  Messages of the main thread (results, displays,
    errors, the "idle" status) are now sent by the main thread itself, under a lock that
    the IOPub thread takes for its own sends.  The IOPub thread still sends what other
    threads queue and the text of stdout and stderr, which it flushes every 0.2 s while
    a cell runs.  Order is kept: the main thread flushes the streams (and waits for
    that) before a result or "idle", as ipykernel does, and while anything is still
    queued it queues its message behind it.

    The socket is a plain PUB socket: the IOPub thread never reads it, as it would read
    subscriptions on ipykernel's XPUB socket (to send ``iopub_welcome``, which the
    registry does not use); a zmq socket must not be used by two threads at once.
    """

    _main_sending = False  # only the main thread sets it

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._send_lock = threading.Lock()

    def send_multipart(self, *args, **kwargs):
        # A send that starts while the main thread is sending (from a signal handler)
        # is queued: the lock is not reentrant, and frames must not interleave.
        if threading.current_thread() is threading.main_thread() and not self._events \
                and not self._main_sending:
            self._main_sending = True
            try:
                self._really_send(*args, **kwargs)
            finally:
                self._main_sending = False
        else:
            super().send_multipart(*args, **kwargs)

    def _really_send(self, *args, **kwargs):
        if not self._is_master_process():
            # A process the kernel forked sends through a pipe to the kernel, and
            # the lock may have been held by the kernel's IOPub thread at the fork.
            return super()._really_send(*args, **kwargs)
        with self._send_lock:
            super()._really_send(*args, **kwargs)


class WorkerKernelApp(IPKernelApp):
    """ipykernel's app without its shell-channel thread, and with the main thread
    sending its own IOPub messages (``_DirectIOPubThread``).

    ipykernel 7 reads the shell socket in a thread of its own and passes every request
    to the main thread and every reply back over in-process sockets, so that subshells
    (JEP 91) can run requests in parallel.  The notebook uses no subshells; without the
    thread, the main thread reads the shell socket itself, as in ipykernel 6.
    """

    def init_sockets(self):
        super().init_sockets()
        # The stand-in is false, so ``init_kernel`` neither starts a thread nor reads
        # the socket in one, and hands the stand-in to the kernel.
        unused, self.shell_channel_thread = self.shell_channel_thread, _NoShellChannelThread()
        unused.io_loop.close(all_fds=True)  # made, never started

    def init_iopub(self, context):
        # ipykernel's, with a PUB socket and the thread above.
        self.iopub_socket = context.socket(zmq.PUB)
        self.iopub_socket.linger = 1000
        self._apply_curve_server_options(self.iopub_socket)
        self.iopub_port = self._bind_socket(self.iopub_socket, self.iopub_port)
        self.configure_tornado_logger()
        self.iopub_thread = _DirectIOPubThread(self.iopub_socket, pipe=True,
                                               session=self.session)
        self.iopub_thread.start()
        self.iopub_socket = self.iopub_thread.background_socket


class WorkerKernel(SageKernel):
    """passagemath's kernel, without the messages that only other frontends read and
    without subshells, with cysignals set up once.  It reports the files each cell
    wrote at the top of the process's folder (``workdir``, set by ``tune``) in its
    execute reply, as ``FILES_KEY``: the server reads those instead of listing the
    folder before and after every cell (workers/cellfiles.py)."""

    _sigint = None
    _once = None
    workdir = None

    async def do_execute(self, code, silent, store_history=True, user_expressions=None,
                         allow_stdin=False, *, cell_meta=None, cell_id=None):
        before = None if silent or self.workdir is None else snapshot(self.workdir)
        reply = await super().do_execute(code, silent, store_history, user_expressions,
                                         allow_stdin, cell_meta=cell_meta, cell_id=cell_id)
        if before is not None:
            reply[FILES_KEY] = changed_files(before, snapshot(self.workdir))
        return reply

    @property
    def _supports_kernel_subshells(self):
        return False

    def pre_handler_hook(self):
        if self._once is not None:
            self._once.forget()
        if self._sigint is None:
            self._sigint = _CysignalsSigint()
        self.saved_sigint_handler = self._sigint.install()

    def _publish_execute_input(self, code, parent, execution_count):
        pass

    def _publish_status(self, status, channel, parent=None):
        if status == 'busy' and channel == 'shell':
            return
        super()._publish_status(status, channel, parent)


class _TransformedOnce:
    """The shell's ``transform_cell`` and ``should_run_async``, answering the second
    call for the same cell in the same request from the first.

    ipykernel transforms a cell (Sage's preparser, IPython's transformers: about 60 µs
    for ``1+1``) and asks whether it needs a coroutine runner (it compiles it), then
    calls the shell's ``run_cell`` with the raw cell, which does both again.  Between
    the two nothing else runs.  An answer is kept for the very same string only, is
    used once, and is dropped when the cell's code starts (``pre_run_cell``) and at
    every request, so a cell that changes the preparser changes the next one.
    """

    def __init__(self, shell):
        self.transform, self.run_async = shell.transform_cell, shell.should_run_async
        self.transformed = self.answered = None
        shell.transform_cell = self.transform_cell
        shell.should_run_async = self.should_run_async
        shell.events.register('pre_run_cell', self.forget)

    def forget(self, info=None):
        self.transformed = self.answered = None

    def transform_cell(self, raw_cell):
        kept, self.transformed = self.transformed, None
        if kept is not None and kept[0] is raw_cell:
            return kept[1]
        transformed = self.transform(raw_cell)
        self.transformed = (raw_cell, transformed)
        return transformed

    def should_run_async(self, raw_cell, *, transformed_cell=None,
                         preprocessing_exc_tuple=None):
        kept, self.answered = self.answered, None
        if kept is not None and kept[0] is raw_cell and kept[1] is transformed_cell \
                and preprocessing_exc_tuple is None:
            return kept[2]
        answer = self.run_async(raw_cell, transformed_cell=transformed_cell,
                                preprocessing_exc_tuple=preprocessing_exc_tuple)
        if preprocessing_exc_tuple is None:
            self.answered = (raw_cell, transformed_cell, answer)
        return answer


class _LatexMacros:
    """``sage.misc.latex_macros.sage_latex_macros``, whose part made from Sage objects
    is kept until the list it is made from (``macros``) changes.  The two lists of
    fixed macros after it are read at each call: ``latex.blackboard_bold`` changes
    one."""

    def __init__(self, module):
        self.module = module
        self.make = module.sage_latex_macros
        self.source = self.made = None

    def __call__(self):
        module = self.module
        source = [tuple(macro) for macro in module.macros]
        fixed = module.latex_macros + module.sage_configurable_latex_macros
        if source != self.source:
            whole = self.make()
            self.made, self.source = whole[:len(whole) - len(fixed)], source
        return self.made + fixed


def cache_latex_macros():
    from sage.misc import latex_macros
    if not isinstance(latex_macros.sage_latex_macros, _LatexMacros):
        latex_macros.sage_latex_macros = _LatexMacros(latex_macros)


def _fast_lookup_by_type(lookup_by_type):
    """IPython's ``BaseFormatter.lookup_by_type``, reading its two tables once.

    For a result that no formatter claims (a Sage integer, with typesetting off), each
    of IPython's eleven formatters walks the type's MRO and, for every class in it,
    reads its two tables of printers (traitlets, about half a microsecond a read) and
    calls ``_in_deferred_types``: about 55 of the 140 µs that IPython's formatting of a
    Sage integer takes.  This one reads each table once per lookup, and asks
    ``_in_deferred_types`` only when deferred printers exist; the printer it finds, and
    the moving of a deferred printer to the table of types, are the same.  A lookup by
    name, or a formatter class with its own ``_in_deferred_types``, goes to IPython's.
    """
    from IPython.core.formatters import BaseFormatter
    from IPython.lib.pretty import _get_mro
    own = BaseFormatter._in_deferred_types

    def fast(self, typ):
        if isinstance(typ, str) or type(self)._in_deferred_types is not own:
            return lookup_by_type(self, typ)
        printers, deferred = self.type_printers, self.deferred_printers
        for cls in _get_mro(typ):
            if cls in printers or (deferred and self._in_deferred_types(cls)):
                return printers[cls]
        raise KeyError('No registered printer for %r' % (typ,))

    fast.original = lookup_by_type
    return fast


def _cached_accepts_parameters(accepts):
    """ipykernel's ``_accepts_parameters``, which inspects the signature of the shell's
    ``run_cell`` at every ``execute_request`` (about 35 µs): the answer for a function
    and a list of names is kept."""
    answers = {}

    def cached(meth, param_names):
        key = (getattr(meth, '__func__', meth), hasattr(meth, '__self__'), tuple(param_names))
        try:
            answer = answers[key]
        except KeyError:
            answer = answers[key] = accepts(meth, param_names)
        except TypeError:  # an unhashable callable
            return accepts(meth, param_names)
        return dict(answer)

    cached.original = accepts
    return cached


def cache_lookups():
    """Lookups that a forked kernel would otherwise make again for every cell (see
    ``_fast_lookup_by_type`` and ``_cached_accepts_parameters``).  Run in the fork
    server, before the kernels are forked; once only."""
    from IPython.core.formatters import BaseFormatter
    from ipykernel import ipkernel
    if not hasattr(BaseFormatter.lookup_by_type, 'original'):
        BaseFormatter.lookup_by_type = _fast_lookup_by_type(BaseFormatter.lookup_by_type)
    if not hasattr(ipkernel._accepts_parameters, 'original'):
        ipkernel._accepts_parameters = _cached_accepts_parameters(ipkernel._accepts_parameters)


def configure(app):
    """Settings of a worker kernel's ``IPKernelApp``, before ``initialize``."""
    app.outstream_class = 'sagenb_pyramid.workers.sagekernel.OutStream'


def tune(kernel, workdir=None):
    """Settings of the kernel itself, once the app is initialized."""
    kernel._execute_sleep = 0.0
    kernel.workdir = workdir
    kernel._once = _TransformedOnce(kernel.shell)
    # traitlets leaves the app's logger at DEBUG and filters at its handlers, so each
    # of ipykernel's four debug calls per request built a log record (with a walk up
    # the stack) that no handler wrote.  The logger now drops what they would drop.
    log = kernel.log
    if log.handlers and not log.propagate:
        log.setLevel(max(log.level, min(handler.level for handler in log.handlers)))
