"""One Sage process, driven through the Jupyter messaging protocol.

``SageKernel`` wraps a ``jupyter_client`` kernel manager and a blocking client on
passagemath's kernel (``python -m sage.repl.ipython_kernel``).  It is used by one thread
at a time: the spare pool that starts it, then the worksheet thread that owns it.
"""
import os
import queue
import shutil
import signal
import tempfile
import time
import uuid

from jupyter_client import KernelManager


class KernelStartError(RuntimeError):
    pass


class SageKernel:
    def __init__(self, kernel_name, runtime_dir, work_root, startup_timeout=120):
        self.kernel_name = kernel_name
        self.startup_timeout = startup_timeout
        self.workdir = tempfile.mkdtemp(prefix='w-', dir=work_root)
        os.chmod(self.workdir, 0o700)
        self.km = KernelManager(
            kernel_name=kernel_name,
            connection_file=os.path.join(runtime_dir, 'kernel-%s.json' % uuid.uuid4().hex))
        self.client = None
        self.display = 'plain'
        self.started = None

    def start(self):
        try:
            env = dict(os.environ)
            # The kernel's matplotlib and IPython state stay inside its working directory.
            env.update(HOME=self.workdir, MPLCONFIGDIR=self.workdir,
                       IPYTHONDIR=os.path.join(self.workdir, '.ipython'),
                       TMPDIR=self.workdir)
            self.km.start_kernel(cwd=self.workdir, env=env)
            self.client = self.km.client()
            self.client.start_channels()
            self.client.wait_for_ready(timeout=self.startup_timeout)
        except Exception as exc:
            self.shutdown()
            raise KernelStartError('could not start the Sage process: %s' % exc) from exc
        self.started = time.time()
        return self

    def is_alive(self):
        try:
            return self.km.is_alive()
        except Exception:
            return False

    def exit_description(self):
        proc = getattr(self.km, 'provisioner', None)
        proc = getattr(proc, 'process', None)
        code = proc.poll() if proc is not None else None
        if code is None:
            return 'the Sage process stopped'
        if code < 0:
            return 'the Sage process was killed by signal %d' % -code
        return 'the Sage process exited with status %d' % code

    def execute(self, code):
        return self.client.execute(code, store_history=True, allow_stdin=False,
                                   stop_on_error=False)

    def iopub(self, timeout):
        try:
            return self.client.get_iopub_msg(timeout=timeout)
        except queue.Empty:
            return None

    def drain_shell(self):
        while True:
            try:
                self.client.get_shell_msg(timeout=0)
            except queue.Empty:
                return

    def run_quietly(self, code, timeout=30):
        """Run setup code (e.g. ``%display latex``) and wait for it, ignoring output."""
        msg_id = self.client.execute(code, silent=True, store_history=False)
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                reply = self.client.get_shell_msg(timeout=0.5)
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
            if self.client is not None:
                self.client.stop_channels()
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
