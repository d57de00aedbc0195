"""The Sage fork server: one warmed Sage process that forks a kernel per worksheet.

Started by the worker registry as ``python -m sagenb_pyramid.workers.forkserver FD``.
It imports Sage and passagemath's Jupyter kernel, warms them (a symbolic integral and a
plot, so Maxima/ECL and matplotlib are loaded), freezes the garbage collector, and
then answers requests on its end ``FD`` of a socket pair that the registry made (one
JSON object a line; no path, so no other process can reach it):

``{"op": "spawn", "workdir", "connection": {...}, "uid", "gid", "limits": {...}, "env": {...},
"network": bool}``
    fork a kernel; the child drops to ``uid``/``gid``, applies the resource limits (and,
    without network, enters an empty network namespace) and serves the Jupyter protocol
    on the channels of ``connection``.  Answer ``{"pid"}``.
``{"op": "status", "pid"}``
    ``{"alive": bool, "status": exit status or null}`` (the server reaps its children).
``{"op": "signal", "pid", "signal"}``
    send a signal to one of its children.
``{"op": "kill_uid", "uid"}``
    kill every process of a worker uid.

A forked kernel shares the parent's pages until it writes them: it starts in about a
tenth of a second and holds tens of MB of its own instead of hundreds.
"""
import ctypes
import gc
import importlib
import json
import os
import resource
import select
import signal
import socket
import sys
import time
import types

CLONE_NEWNET = 0x40000000

# rlimit names accepted in "limits" (integers; the hard limit is the soft one, so the
# process cannot raise it).
RLIMITS = {
    'address_space': resource.RLIMIT_AS,
    'cpu_seconds': resource.RLIMIT_CPU,
    'processes': resource.RLIMIT_NPROC,
    'open_files': resource.RLIMIT_NOFILE,
    'file_size': resource.RLIMIT_FSIZE,
}


# Environment variables set by ``sage.env`` at import that child processes need.
SAGE_LOCATIONS = ('MAXIMA_PREFIX', 'ECLDIR')

# The modules loaded once warm (see ``warm_up``).
STARTUP_MODULES = frozenset()


class _SysWithoutModules(types.ModuleType):
    """``sys`` as ipykernel.ipkernel and IPython.core.shellapp see it in worker
    kernels: the real one, with an empty ``modules`` (see ``warm_up``)."""

    modules = {}

    def __getattr__(self, name):
        return getattr(sys, name)


def warm_up():
    """Import and exercise what a worksheet's first cells use."""
    import sage.all  # noqa: F401
    import sage.repl.ipython_kernel.all_jupyter  # noqa: F401
    from ipykernel.kernelapp import IPKernelApp  # noqa: F401
    from sage.repl.ipython_kernel.kernel import SageKernel  # noqa: F401
    from . import sagekernel
    # No debugpy in worker kernels: the page has no debugger, and importing it in every
    # child costs about 10 MB of private memory each.
    import ipykernel.debugger
    ipykernel.debugger._is_debugpy_available = False
    # For that debugger, a new kernel lists the files of every module in sys.modules
    # (ipkernel.py: ``_kernel_modules``).  With Sage's thousands of modules, touching
    # each module and its file name copies about 10 MB of the shared pages into every
    # child.  Without the debugger nothing reads the list: ipkernel.py alone sees a
    # ``sys`` whose ``modules`` is empty (everything else is the real ``sys``).
    import ipykernel.ipkernel
    ipykernel.ipkernel.sys = _SysWithoutModules('sys')
    # Likewise IPython keeps the names of the modules loaded at start-up (for
    # ``%reset --aggressive``): about 4 MB of touched pages when every child builds the
    # set.  The children get the set made here instead (``become_kernel``).
    import IPython.core.shellapp
    IPython.core.shellapp.sys = _SysWithoutModules('sys')
    # What a kernel's start-up imports, imported once here and shared by the children.
    import IPython.core.completerlib  # noqa: F401
    import IPython.core.oinspect  # noqa: F401
    import sage.repl.display.formatter  # noqa: F401
    import sage.repl.interface_magic  # noqa: F401
    import sage.repl.rich_output.backend_ipython  # noqa: F401
    # Found by listing the modules a child had imported after its first cells.
    for name in ('IPython.core.debugger', 'IPython.core.logger',
                 'IPython.extensions.storemagic', 'faulthandler', 'psutil',
                 'sage.features.pkg_systems', 'tornado.platform.asyncio'):
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    # A kernel's first kernel_info reply has help links, which look for Sage's local
    # documentation and, for a hint on installing it, ask which package systems exist
    # by running `sage-guess-package-system`, `sage -p` and `sage -pip --version`:
    # shell scripts that took 0.5-2 s in every new kernel.  Sage keeps both answers
    # (the feature's and ``package_systems``'), so asked here, children inherit them.
    SageKernel.help_links.fget(SageKernel.__new__(SageKernel))
    from sage.all import integrate, plot, sin, var
    x = var('x')
    result = integrate(sin(x) ** 2, x)
    # Typeset worksheets show results as LaTeX and HTML (``%display latex``).
    from sage.misc.html import html
    from sage.misc.latex import latex
    import sage.repl.rich_output.output_catalog  # noqa: F401
    sagekernel.cache_latex_macros()  # made below, once for all children
    sagekernel.cache_lookups()
    str(latex(result))
    str(html(result))
    import matplotlib
    matplotlib.use('agg')
    from io import BytesIO
    plot(sin(x), (x, 0, 6)).matplotlib().savefig(BytesIO(), format='png')
    global STARTUP_MODULES
    STARTUP_MODULES = frozenset(sys.modules)
    # Objects that exist now are never scanned again: the children keep sharing them.
    # (No collection first: freed objects would leave holes that children fill.)
    gc.freeze()


def become_kernel(request, parent_pid):
    """In the forked child: isolate, limit, and serve the Jupyter protocol. Never returns."""
    try:
        os.setsid()
        if not request.get('network', True):
            # A network namespace of its own, with nothing in it (needs root; the
            # Jupyter channels are Unix sockets then).
            if ctypes.CDLL(None, use_errno=True).unshare(CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), 'unshare(CLONE_NEWNET) failed')
        workdir = request['workdir']
        uid, gid = request.get('uid'), request.get('gid')
        for name, value in (request.get('limits') or {}).items():
            if value is not None:
                # The hard CPU limit a little above the soft one: SIGXCPU (which says
                # why) comes before SIGKILL.
                hard = int(value) + 2 if name == 'cpu_seconds' else int(value)
                resource.setrlimit(RLIMITS[name], (int(value), hard))
        if gid is not None:
            os.setgroups([])
            os.setgid(int(gid))
        if uid is not None:
            os.setuid(int(uid))
        os.chdir(workdir)
        os.umask(0o077)
        env = dict(request.get('env') or {})
        env['JPY_PARENT_PID'] = str(parent_pid)
        # Locations Sage computed at import (its Maxima and ECL inside the wheels) stay:
        # they are no secrets, and the interfaces cannot start without them.
        kept = {k: os.environ[k] for k in SAGE_LOCATIONS if k in os.environ}
        os.environ.clear()
        os.environ.update(kept)
        os.environ.update(env)
        # The kernel's own output (warnings, crashes) goes to a file in its folder.
        log = os.open(os.path.join(workdir, 'kernel.log'),
                      os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        connection_file = os.path.join(workdir, '.connection.json')
        with open(connection_file, 'w') as f:
            json.dump(request['connection'], f)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        gc.enable()
        from . import sagekernel
        app = sagekernel.WorkerKernelApp.instance(kernel_class=sagekernel.WorkerKernel)
        sagekernel.configure(app)
        app.initialize(['-f', connection_file, '--HistoryManager.enabled=False',
                        '--IPKernelApp.parent_handle=%d' % parent_pid])
        sagekernel.tune(app.kernel, workdir)
        os.unlink(connection_file)
        app.shell._sys_modules_keys = STARTUP_MODULES
        app.start()
    except BaseException:  # report (to fd 2: sys.stderr may be the kernel's by now)
        try:
            import traceback
            os.write(2, ('kernel failed:\n' + traceback.format_exc()).encode())
        finally:
            os._exit(70)
    os._exit(0)


def kill_uid(uid):
    """Kill every process of ``uid``: ``kill(-1)`` sent as that uid reaches all of them,
    even those that left the kernel's session."""
    if uid <= 0:
        return False
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            # Repeat while any is left: a fork bomb forks between two rounds.
            for _ in range(100):
                os.kill(-1, signal.SIGKILL)
                time.sleep(0.005)
                os.kill(-1, 0)
        except ProcessLookupError:
            pass
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    return True


class ForkServer:
    def __init__(self, fd):
        # Our end of the socket pair the app server made: the only way in.
        self.sock = socket.socket(fileno=fd)
        self.children = {}   # pid -> exit status or None while alive
        self.parent = os.getppid()

    def reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.children[pid] = os.waitstatus_to_exitcode(status)

    def handle(self, request):
        op = request.get('op')
        if op == 'spawn':
            if request.get('uid'):
                # A clean slate: nothing left of an earlier user of this uid (e.g. the
                # children of a kernel whose server was killed).
                kill_uid(int(request['uid']))
            pid = os.fork()
            if pid == 0:
                self.sock.close()
                become_kernel(request, os.getppid())
            self.children[pid] = None
            return {'pid': pid}
        if op == 'status':
            self.reap()
            pid = request['pid']
            if pid not in self.children:
                return {'alive': False, 'status': None}
            status = self.children[pid]
            if status is not None:
                del self.children[pid]
            return {'alive': status is None, 'status': status}
        if op == 'signal':
            pid = request['pid']
            if pid in self.children and self.children[pid] is None:
                os.kill(pid, int(request['signal']))
                return {'ok': True}
            return {'ok': False}
        if op == 'kill_uid':
            return {'ok': kill_uid(int(request['uid']))}
        if op == 'ping':
            return {'ok': True, 'pid': os.getpid()}
        return {'error': 'unknown op %r' % op}

    def serve(self):
        print('ready', flush=True)
        buffer = b''
        while True:
            # Gone with the app server that started us (its children follow: they
            # poll their parent's pid).
            if os.getppid() != self.parent:
                return
            self.reap()
            readable, _, _ = select.select([self.sock], [], [], 0.5)
            if not readable:
                continue
            data = self.sock.recv(65536)
            if not data:  # the app server closed its end
                return
            buffer += data
            while b'\n' in buffer:
                line, buffer = buffer.split(b'\n', 1)
                try:
                    answer = self.handle(json.loads(line))
                except Exception as exc:
                    answer = {'error': repr(exc)}
                self.sock.sendall(json.dumps(answer).encode() + b'\n')


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    started = time.time()
    # The recipe of gc.freeze's documentation: no collection in the parent (it frees
    # objects and leaves holes in shared pages); children enable it again.
    gc.disable()
    warm_up()
    sys.stderr.write('fork server warmed in %.1f s\n' % (time.time() - started))
    ForkServer(int(argv[0])).serve()


if __name__ == '__main__':
    main()
