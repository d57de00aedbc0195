"""What app servers know of the worker hosts, stored in ZODB (``root.worker_hosts``).

Stored as ``sagenb_pyramid.resources.WorkerHost`` before issue 19: ``evolve.MOVED_CLASSES``
finds old records here, and the evolve step ``worker-host-records`` re-saves them.
"""
import time

from persistent import Persistent


class WorkerHost(Persistent):
    """What app servers know of a worker host (written by the host only).

    ``boot`` changes at every start, so a placement made with an earlier boot is known
    to be gone.  A host that app servers can reach has an ``address`` and refreshes
    ``heartbeat``; it publishes the worksheets it holds processes for (``running``,
    keys ``"<owner id>/<number>"``), which the per-user and per-host limits count.
    """

    interval = 10  # seconds between heartbeats

    def __init__(self, name, boot, address=None, max_total=0):
        self.name = name
        self.boot = boot
        self.address = address
        self.max_total = max_total
        self.started = self.heartbeat = time.time()
        self.running = ()

    @property
    def tag(self):
        return '%s:%s' % (self.name, self.boot)
