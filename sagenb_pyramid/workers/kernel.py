"""One Sage process, driven through the Jupyter messaging protocol.

A ``SageKernel`` is passagemath's Jupyter kernel with a blocking ``jupyter_client``
client.  ``ForkedKernel`` (the default) is forked by the warmed fork server
(``forkserver.py``) under its own uid and resource limits; ``SpawnedKernel`` is started
as a fresh process by ``jupyter_client``'s ``KernelManager``.  A kernel is used by one
thread at a time: the housekeeping thread that starts it as a spare, then the worksheet
thread that owns it.

Every client of the process shares one ZMQ context (one I/O thread, one epoll) and
opens only the channels the notebook uses (shell, IOPub, stdin): a running worksheet
costs the app server six descriptors and one thread (its worksheet thread), where
``jupyter_client``'s defaults cost about twenty and four (a context, a heartbeat
thread and a control socket per client), and ``select()``-based loops broke past 1023.
"""
import json
import os
import queue
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import jupyter_client.session
import zmq
from jupyter_client import KernelManager

from ..cpus import release

# jupyter_client turns the date strings in the headers of every message it receives
# into datetimes (with dateutil): about a sixth of a worksheet thread's work on a small
# cell.  Nothing in the notebook reads those dates, so they stay strings.
jupyter_client.session.extract_dates = lambda obj: obj


class KernelStartError(RuntimeError):
    pass


# Sockets of the shared context: three per running worksheet.  libzmq's default (1023)
# would allow 341 worksheets.
MAX_ZMQ_SOCKETS = 65536
_context = None
_context_lock = threading.Lock()


def shared_context():
    """The process's one ZMQ context for kernel clients."""
    global _context
    with _context_lock:
        if _context is None:
            context = zmq.Context()
            # Must be set before its first socket; libzmq caps it by what it can poll.
            context.set(zmq.MAX_SOCKETS, min(MAX_ZMQ_SOCKETS, context.get(zmq.SOCKET_LIMIT)))
            # A client connects as soon as the kernel is forked, before it has bound its
            # sockets; libzmq then tries again every 100-200 ms, which was most of a new
            # kernel's start.  From 10 ms, backing off to half a second.
            context.setsockopt(zmq.RECONNECT_IVL, 10)
            context.setsockopt(zmq.RECONNECT_IVL_MAX, 500)
            _context = context
        return _context


# The channels a worksheet uses: no heartbeat (liveness is asked of the process, by
# pid) and no control channel (interrupts and restarts are signals).
CHANNELS = ('shell', 'iopub', 'stdin')


class SageKernel:
    """What the worksheet thread needs of a Sage process: a Jupyter client and a pid."""

    client = None
    display = 'plain'
    started = None
    startup_timeout = 120
    # Its execute replies list the files each cell wrote (those of a forked kernel do).
    reports_files = False
    # The process's working folder (cells' files, data files), None: it has none.
    workdir = None
    # The uid and gid it runs under, None: the server's.
    uid = gid = None

    def start(self):
        """Start the process and wait until its kernel answers."""
        try:
            self.client = self._launch()
            self.client.start_channels(hb=False, control=False)
            self._wait_for_ready(self.startup_timeout)
        except Exception as exc:
            self.shutdown()
            raise KernelStartError('could not start the Sage process: %s' % exc) from exc
        self.started = time.time()
        return self

    def _launch(self):
        """Start the process; return a (not yet started) client for it."""
        raise NotImplementedError

    def _wait_for_ready(self, timeout):
        """Wait until the kernel answers on shell and publishes on IOPub (a SUB socket
        misses what was sent before it connected), as ``wait_for_ready`` does, but
        without an asyncio loop kept per calling thread (three descriptors each) and
        giving up as soon as the process has ended."""
        deadline = time.monotonic() + timeout
        while True:
            if self.shell_reply(self.client.kernel_info(), timeout=1) is not None and \
                    self.iopub(timeout=0.2) is not None:
                return
            if not self.is_alive():
                raise RuntimeError('the process ended before its kernel answered')
            if time.monotonic() > deadline:
                raise RuntimeError('its kernel did not answer within %g s' % timeout)

    def close_channels(self):
        """Close the client's sockets (only those it opened: ``stop_channels`` would
        open a control socket to close it)."""
        client = self.client
        if client is None:
            return
        for name in CHANNELS:
            channel = getattr(client, '_%s_channel' % name, None)
            if channel is not None:
                channel.close()

    def send_comm(self, comm_id, data):
        """Send a ``comm_msg`` (a widget change) on the shell channel; its msg_id."""
        msg = self.client.session.msg('comm_msg', {'comm_id': comm_id, 'data': data})
        self.client.shell_channel.send(msg)
        return msg['header']['msg_id']

    def send_input(self, value):
        """Answer the ``input_request`` the kernel waits on (stdin channel)."""
        self.client.input(value)

    def execute(self, code):
        return self.client.execute(code, store_history=True, allow_stdin=True,
                                   stop_on_error=False)

    # The channels are read directly: the blocking client's get_*_msg wraps the same
    # call in an asyncio loop run per message, which costs CPU on every output.
    def iopub(self, timeout):
        try:
            return self.client.iopub_channel.get_msg(timeout=timeout)
        except queue.Empty:
            return None

    def stdin_request(self):
        """An ``input_request`` the running code sent (``input()``), or None."""
        try:
            return self.client.stdin_channel.get_msg(timeout=0)
        except queue.Empty:
            return None

    def ask(self, kind, content):
        """Send a completion or introspection request; returns its msg_id."""
        if kind == 'complete':
            return self.client.complete(content['code'], content['cursor_pos'])
        if kind == 'inspect':
            return self.client.inspect(content['code'], content['cursor_pos'],
                                       content['detail_level'])
        raise ValueError(kind)

    def shell_reply(self, msg_id, timeout):
        """The shell reply to ``msg_id`` (others are dropped), or None after ``timeout``."""
        deadline = time.time() + timeout
        while True:
            left = deadline - time.time()
            if left <= 0:
                return None
            try:
                reply = self.client.shell_channel.get_msg(timeout=min(left, 0.2))
            except queue.Empty:
                if not self.is_alive():
                    return None
                continue
            if reply['parent_header'].get('msg_id') == msg_id:
                return reply

    def drain_shell(self):
        while True:
            try:
                self.client.shell_channel.get_msg(timeout=0)
            except queue.Empty:
                return

    def run_quietly(self, code, timeout=30):
        """Run setup code (e.g. ``%display latex``) and wait for it, ignoring output."""
        msg_id = self.client.execute(code, silent=True, store_history=False)
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                reply = self.client.shell_channel.get_msg(timeout=0.5)
            except queue.Empty:
                if not self.is_alive():
                    return False
                continue
            if reply['parent_header'].get('msg_id') == msg_id:
                return reply['content'].get('status') == 'ok'
        return False

    def set_display(self, typeset):
        wanted = 'latex' if typeset else 'plain'
        if wanted != self.display and self.run_quietly('%display ' + wanted):
            self.display = wanted



class SpawnedKernel(SageKernel):
    """A kernel started as a new process by ``jupyter_client``'s ``KernelManager``
    (``sagenb.workers.mode = spawn``): slow to start, but needs nothing else."""

    def __init__(self, kernel_name, runtime_dir, work_root, startup_timeout=120):
        self.kernel_name = kernel_name
        self.startup_timeout = startup_timeout
        self.workdir = make_workdir(work_root)
        self.km = KernelManager(
            kernel_name=kernel_name, context=shared_context(),
            connection_file=os.path.join(runtime_dir, 'kernel-%s.json' % uuid.uuid4().hex))

    def _process(self):
        """The ``Popen`` of the kernel process (None before it started)."""
        return getattr(getattr(self.km, 'provisioner', None), 'process', None)

    def _launch(self):
        self.km.start_kernel(cwd=self.workdir, env=worker_environment(self.workdir))
        # Just started (its threads come once Sage is imported): off the app server's CPU.
        process = self._process()
        release(process.pid if process is not None else None)
        return self.km.client(context=shared_context())

    def is_alive(self):
        try:
            return self.km.is_alive()
        except Exception:
            return False

    def exit_description(self):
        proc = self._process()
        code = proc.poll() if proc is not None else None
        if code is None:
            return 'the Sage process stopped'
        if code < 0:
            return 'the Sage process was killed by signal %d' % -code
        return 'the Sage process exited with status %d' % code

    def interrupt(self):
        try:
            self.km.interrupt_kernel()
        except Exception:
            pass

    def kill(self):
        """Kill the process only; safe from any thread (``shutdown`` closes sockets)."""
        try:
            self.km.signal_kernel(signal.SIGKILL)
        except Exception:
            pass

    def shutdown(self):
        try:
            self.close_channels()
            if self.km.has_kernel:
                self.km.shutdown_kernel(now=True)
        except Exception:
            pass
        finally:
            try:
                self.km.cleanup_resources()
            except Exception:
                pass
            shutil.rmtree(self.workdir, ignore_errors=True)


class ForkServerError(RuntimeError):
    pass


class ForkServerClient:
    """The app server's handle on its Sage fork server process (see ``forkserver.py``)."""

    def __init__(self, runtime_dir, startup_timeout=120):
        self.runtime_dir = runtime_dir
        self.startup_timeout = startup_timeout
        self.proc = None
        self.lock = threading.Lock()
        self.sock = None
        self.buffer = b''

    def start(self):
        with self.lock:
            self._ensure_running()

    @property
    def state(self):
        """``running``, ``stopped`` (not started yet, or stopped) or ``ended`` (died:
        started again at the next process it is asked for)."""
        proc = self.proc
        if proc is None:
            return 'stopped'
        return 'running' if proc.poll() is None else 'ended'

    def _ensure_running(self):
        if self.proc is not None and self.proc.poll() is None:
            return
        self._close()
        # A socket pair, not a path: nothing else can connect to the fork server (it
        # runs with the app server's rights), and no path can be too long for it.
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.proc = subprocess.Popen(
                [sys.executable, '-m', 'sagenb_pyramid.workers.forkserver',
                 str(theirs.fileno())],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, pass_fds=[theirs.fileno()],
                env=worker_environment(self.runtime_dir), cwd=self.runtime_dir)
        finally:
            theirs.close()
        release(self.proc.pid)  # the app server may be pinned to one CPU (cpus.py)
        # It prints "ready" once warmed and listening.
        ready, _, _ = select.select([self.proc.stdout], [], [], self.startup_timeout)
        if not ready or self.proc.stdout.readline().strip() != b'ready':
            ours.close()
            self._close()
            raise ForkServerError('the Sage fork server did not start')
        self.sock, self.buffer = ours, b''

    def request(self, **message):
        with self.lock:
            # A fork server found dead while asking (killed, or out of memory) is
            # replaced, and asked once more.
            for attempt in (1, 2):
                self._ensure_running()
                try:
                    self.sock.sendall(json.dumps(message).encode() + b'\n')
                    while b'\n' not in self.buffer:
                        data = self.sock.recv(65536)
                        if not data:
                            raise ConnectionResetError('it closed the connection')
                        self.buffer += data
                    break
                except OSError as exc:
                    died = self._ended()
                    self._close()
                    if attempt == 2 or not died:
                        raise ForkServerError('the fork server failed: %s' % exc) from exc
            line, self.buffer = self.buffer.split(b'\n', 1)
        answer = json.loads(line)
        if 'error' in answer:
            raise ForkServerError(answer['error'])
        return answer

    def stop(self):
        with self.lock:
            self._close()

    def _ended(self):
        """Whether the process has ended (a closed connection: it is ending)."""
        try:
            self.proc.wait(timeout=1)
            return True
        except subprocess.TimeoutExpired:
            return False

    def _close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc.stdout.close()
            self.proc = None


WORKDIR_PREFIX = 'w-'


def make_workdir(work_root, uid=None, gid=None):
    """A private folder for one Sage process (mode 0700, owned by its uid)."""
    workdir = tempfile.mkdtemp(prefix=WORKDIR_PREFIX, dir=work_root)
    os.chmod(workdir, 0o700)
    # Temporary files live apart from the files cells write (shown under the cell).
    os.mkdir(os.path.join(workdir, '.tmp'), 0o700)
    if uid is not None:
        for path in (workdir, os.path.join(workdir, '.tmp')):
            os.chown(path, uid, gid if gid is not None else -1)
    return workdir


def worker_environment(workdir):
    """The whole environment of user code: nothing of the server's (no secrets)."""
    return {
        'PATH': os.path.dirname(sys.executable) + ':/usr/local/bin:/usr/bin:/bin',
        'HOME': workdir, 'TMPDIR': os.path.join(workdir, '.tmp'),
        'MPLCONFIGDIR': os.path.join(workdir, '.matplotlib'),
        'IPYTHONDIR': os.path.join(workdir, '.ipython'),
        'LANG': 'C.UTF-8', 'PYTHONHASHSEED': '0', 'USER': 'sagenb-worker',
        'LOGNAME': 'sagenb-worker',
        # A crash ends the process at once instead of attaching a debugger to it.
        'CYSIGNALS_CRASH_NDEBUG': '1', 'CYSIGNALS_CRASH_QUIET': '1',
    }


# The longest path of a Unix socket (``sun_path`` holds 108 bytes with the final NUL).
MAX_SOCKET_PATH = 107


def ipc_fits(workdir):
    """The kernel's channel sockets (``<workdir>/kernel-<n>``) have short enough paths."""
    return len(os.fsencode(os.path.join(workdir, 'kernel-99'))) <= MAX_SOCKET_PATH


def ipc_fits_under(work_root):
    """``ipc_fits`` for every folder ``make_workdir`` makes under ``work_root`` (its
    name: the prefix and tempfile's eight random characters)."""
    return ipc_fits(os.path.join(work_root, WORKDIR_PREFIX + 'x' * 8))


def process_state(pid):
    """``(state, start time)`` of a process from ``/proc/<pid>/stat``, or None."""
    try:
        with open('/proc/%d/stat' % pid, 'rb') as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(b')') + 2:].split()  # after "pid (comm) "
    return fields[0], fields[19]  # stat(5) fields 3 and 22


class ForkedKernel(SageKernel):
    """A Sage kernel forked by the fork server, driven with a blocking Jupyter client."""

    reports_files = True

    def __init__(self, forkserver, work_root, startup_timeout=60, uid=None, gid=None,
                 limits=None, network=True):
        self.forkserver = forkserver
        self.network = network
        self.startup_timeout = startup_timeout
        self.workdir = make_workdir(work_root, uid, gid)
        self.uid, self.gid, self.limits = uid, gid, limits or {}
        self.on_shutdown = None
        self.pid = None
        self._start_time = None
        self._status = None

    def _launch(self):
        from jupyter_client import BlockingKernelClient
        from jupyter_client.connect import write_connection_file
        # The channels are Unix sockets in the kernel's own folder: no port can be taken
        # by another process between choosing it and binding it, and only the kernel's
        # uid (and root) can reach them.  TCP on loopback if the folder's path is too
        # long for a socket's address.
        path = os.path.join(self.workdir, '.client.json')
        if ipc_fits(self.workdir) or not self.network:
            write_connection_file(path, transport='ipc',
                                  ip=os.path.join(self.workdir, 'kernel'))
        else:
            write_connection_file(path, ip='127.0.0.1')
        with open(path) as f:
            connection = json.load(f)
        os.unlink(path)
        answer = self.forkserver.request(
            op='spawn', workdir=self.workdir, connection=connection, uid=self.uid,
            gid=self.gid, limits=self.limits, env=worker_environment(self.workdir),
            network=self.network)
        self.pid = answer['pid']
        client = BlockingKernelClient(context=shared_context())
        client.load_connection_info(connection)
        return client

    def _ask_status(self):
        if self.pid is None:
            return {'alive': False, 'status': None}
        if self._status is None or self._status['alive']:
            try:
                self._status = self.forkserver.request(op='status', pid=self.pid)
            except ForkServerError:
                self._status = {'alive': False, 'status': None}
        return self._status

    def is_alive(self):
        """Asked before every cell and while one runs: answered from ``/proc`` while
        the process runs (the fork server, which reaps it, is asked only once it has
        ended, for its status).  The start time tells a reused pid from ours."""
        if self.pid is None:
            return False
        if self._status is not None and not self._status['alive']:
            return False
        found = process_state(self.pid)
        if found is not None and found[0] not in (b'Z', b'X'):
            if self._start_time is None:
                self._start_time = found[1]
            if found[1] == self._start_time:
                return True
        return self._ask_status()['alive']

    def exit_description(self):
        code = self._ask_status()['status']
        if code is None:
            return 'the Sage process stopped'
        if code < 0:
            name = signal.Signals(-code).name
            # A library that cannot allocate memory under the process's address-space
            # limit often aborts rather than raise MemoryError.
            reason = {'SIGKILL': ' (out of memory or a limit?)',
                      'SIGABRT': ' (a library gave up: out of memory under the limit?)',
                      'SIGXCPU': ' (CPU time limit)', 'SIGXFSZ': ' (file size limit)'}
            return 'the Sage process was killed by %s%s' % (name, reason.get(name, ''))
        return 'the Sage process exited with status %d' % code

    def _signal(self, signum):
        if self.pid is None:
            return
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:
            pass
        except PermissionError:
            self.forkserver.request(op='signal', pid=self.pid, signal=int(signum))

    def interrupt(self):
        self._signal(signal.SIGINT)

    def kill(self):
        if self.pid is None:
            return
        try:  # the kernel leads its own session: its children go with it
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            self._signal(signal.SIGKILL)
        if self.uid is not None:
            try:  # and anything else running under its uid
                self.forkserver.request(op='kill_uid', uid=self.uid)
            except ForkServerError:
                pass

    def shutdown(self):
        try:
            self.close_channels()
        except Exception:
            pass
        self.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)
        if self.on_shutdown is not None:
            self.on_shutdown, callback = None, self.on_shutdown
            callback()
