"""What a forked Sage process runs: passagemath's Jupyter kernel, with less fixed work
per cell.

ipykernel spends most of a small cell's time on its own bookkeeping.  Two parts of it
do nothing for the notebook, and a forked kernel leaves them out:

- **Flushes with nothing to send.**  Around every request ipykernel flushes stdout and
  stderr four times, and each flush is a round trip to its IOPub thread (two wake-ups
  and a wait), even when the cell printed nothing.  ``OutStream`` returns at once when
  nothing is buffered or on its way.  Text that was written is flushed as before.
- **A 0.5 ms sleep before each reply** (ipykernel's ``_execute_sleep``, a workaround for
  clients that read the reply before the last output).  The registry reads the reply
  only after the "idle" status, which IOPub sends after every output of the cell.

Measured on one kernel, a ``1+1`` costs about a third less CPU and wall time this way
(docs/benchmarks.md).
"""
from ipykernel.iostream import OutStream as _OutStream


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


def configure(app):
    """Settings of a worker kernel's ``IPKernelApp``, before ``initialize``."""
    app.outstream_class = 'sagenb_pyramid.workers.sagekernel.OutStream'


def tune(kernel):
    """Settings of the kernel itself, once the app is initialized."""
    kernel._execute_sleep = 0.0
