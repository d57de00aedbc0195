"""What a forked Sage process runs: passagemath's Jupyter kernel, with less fixed work
per cell.

ipykernel spends most of a small cell's time on its own bookkeeping.  Three parts of it
do nothing for the notebook, and a forked kernel leaves them out:

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

Measured on one kernel, the first two cut the CPU and wall time of a ``1+1`` by about a
third, and the messages another 11-17 % of its CPU (docs/benchmarks.md).
"""
from ipykernel.iostream import OutStream as _OutStream
from sage.repl.ipython_kernel.kernel import SageKernel


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


class WorkerKernel(SageKernel):
    """passagemath's kernel, without the messages that only other frontends read."""

    def _publish_execute_input(self, code, parent, execution_count):
        pass

    def _publish_status(self, status, channel, parent=None):
        if status == 'busy' and channel == 'shell':
            return
        super()._publish_status(status, channel, parent)


def configure(app):
    """Settings of a worker kernel's ``IPKernelApp``, before ``initialize``."""
    app.outstream_class = 'sagenb_pyramid.workers.sagekernel.OutStream'


def tune(kernel):
    """Settings of the kernel itself, once the app is initialized."""
    kernel._execute_sleep = 0.0
