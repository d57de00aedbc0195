"""A worker host's configuration: the ``sagenb.workers.*`` settings read and checked once.

``WorkerConfig.from_settings`` takes the typed values of settings.py (``prepare()``
converts the ``.ini`` strings and SAGENB_* overrides once; strings given here, as tests
do, are converted the same way), with a SettingsError naming the setting when one is
wrong, so the registry never converts a string.  The few settings an admin may change
in the browser (``editable`` in settings.py; ``server_settings.stored``) are read from
the database every ``SETTINGS_INTERVAL`` seconds by the hosts and app servers of their
scope.
"""
import logging
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from ..settings import SettingsError, convert

log = logging.getLogger(__name__)

LIMITS = ('address_space', 'cpu_seconds', 'processes', 'open_files', 'file_size')

# Seconds between reads of the settings admins changed in the browser.
SETTINGS_INTERVAL = 30


def worker_limits(settings):
    """Resource limits of each Sage process (``sagenb.workers.limit.*``; 0 = none)."""
    limits = {}
    for name in LIMITS:
        limits[name] = int(settings.get('sagenb.workers.limit.' + name, 0)) or None
    return limits


def parse_uids(text):
    """``"20000-20099"`` -> a list of uids; empty -> None (kernels keep the server's uid)."""
    text = (text or '').strip()
    if not text:
        return None
    uids = []
    try:
        for part in text.replace(',', ' ').split():
            low, _, high = part.partition('-')
            uids.extend(range(int(low), int(high or low) + 1))
    except ValueError:
        raise SettingsError('sagenb.workers.uids is a list of uids and ranges '
                            '(20000-20099), not %r' % text) from None
    if any(uid <= 0 for uid in uids):
        raise SettingsError('sagenb.workers.uids must not contain root')
    return uids


@dataclass
class WorkerConfig:
    """What a worker host needs of the settings (settings.py SETTINGS says what each
    is for)."""
    data_dir: str
    mode: str = 'fork'                 # fork (a warmed fork server) or spawn
    kernel_name: str = 'sagemath'      # the Jupyter kernel of the spawn mode
    network: bool = True
    uids: Optional[List[int]] = None   # None: kernels keep the server's uid
    limits: Dict[str, Optional[int]] = field(
        default_factory=lambda: dict.fromkeys(LIMITS))
    idle_timeout: float = 3600.0
    startup_timeout: float = 120.0
    spare_count: int = 1
    spare_max: int = 8
    prestart: bool = True              # warm the fork server at start
    flush_interval: float = 0.2
    interrupt_timeout: float = 3.0
    max_total: Optional[int] = None    # None: auto (what memory and descriptors allow)
    max_output_chars: int = 32000
    max_output_file_bytes: int = 64 * 1024 ** 2
    server_name: str = 'local'
    heartbeat: float = 10.0

    @property
    def runtime_dir(self):
        return os.path.join(self.data_dir, 'runtime')

    @property
    def work_root(self):
        return os.path.join(self.data_dir, 'work')

    @classmethod
    def from_settings(cls, settings):
        settings = convert(dict(settings))  # typed already after prepare(): unchanged
        mode = settings['sagenb.workers.mode']
        network = settings['sagenb.workers.network']
        if not network and (mode != 'fork' or os.geteuid() != 0):
            raise SettingsError('sagenb.workers.network = false needs the fork mode and a '
                                'server started as root (network namespaces)')
        return cls(
            data_dir=settings['data_dir'],
            mode=mode,
            kernel_name=settings['sagenb.workers.kernel'],
            network=network,
            uids=parse_uids(settings.get('sagenb.workers.uids', '')),
            limits=worker_limits(settings),
            idle_timeout=float(settings['sagenb.workers.idle_timeout']),
            startup_timeout=settings['sagenb.workers.startup_timeout'],
            spare_count=settings['sagenb.workers.spare'],
            spare_max=settings['sagenb.workers.spare_max'],
            prestart=settings['sagenb.workers.prestart'],
            flush_interval=settings['sagenb.workers.flush_interval'],
            interrupt_timeout=settings['sagenb.workers.interrupt_timeout'],
            max_total=settings['sagenb.workers.max_total'],
            max_output_chars=settings['sagenb.output.max_chars'],
            max_output_file_bytes=settings['sagenb.output.max_file_bytes'],
            server_name=settings['sagenb.workers.server_name'],
            heartbeat=settings['sagenb.workers.heartbeat'])
