"""A worker host's configuration: the ``sagenb.workers.*`` settings read and checked once.

``WorkerConfig.from_settings`` turns the strings of the ``.ini`` (and SAGENB_*
overrides, settings.py) into typed values, with a SettingsError naming the setting when
one is wrong, so the registry never converts a string.  The few settings an admin may
change in the browser (``DB_SETTINGS``) are read from the database now and then
(``stored_settings``) by the hosts and app servers they concern.
"""
import logging
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from pyramid.settings import asbool

from ..settings import SettingsError

log = logging.getLogger(__name__)

LIMITS = ('address_space', 'cpu_seconds', 'processes', 'open_files', 'file_size')

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


def worker_limits(settings):
    """Resource limits of each Sage process (``sagenb.workers.limit.*``; 0 = none)."""
    limits = {}
    for name in LIMITS:
        value = _number(settings, 'sagenb.workers.limit.' + name, float, 0)
        limits[name] = int(value) or None
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


def _number(settings, key, kind, default=None):
    value = settings.get(key, default)
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise SettingsError('%s is a number, not %r' % (key, value)) from None


@dataclass
class WorkerConfig:
    """What a worker host needs of the settings (settings.py DEFAULTS says what each
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
        mode = settings['sagenb.workers.mode']
        if mode not in ('fork', 'spawn'):
            raise SettingsError('sagenb.workers.mode is "fork" or "spawn"')
        network = asbool(settings['sagenb.workers.network'])
        if not network and (mode != 'fork' or os.geteuid() != 0):
            raise SettingsError('sagenb.workers.network = false needs the fork mode and a '
                                'server started as root (network namespaces)')
        max_total = str(settings['sagenb.workers.max_total']).strip()
        return cls(
            data_dir=settings['data_dir'],
            mode=mode,
            kernel_name=settings['sagenb.workers.kernel'],
            network=network,
            uids=parse_uids(settings.get('sagenb.workers.uids', '')),
            limits=worker_limits(settings),
            idle_timeout=_number(settings, 'sagenb.workers.idle_timeout', float),
            startup_timeout=_number(settings, 'sagenb.workers.startup_timeout', float),
            spare_count=_number(settings, 'sagenb.workers.spare', int),
            spare_max=_number(settings, 'sagenb.workers.spare_max', int),
            prestart=asbool(settings['sagenb.workers.prestart']),
            flush_interval=_number(settings, 'sagenb.workers.flush_interval', float),
            interrupt_timeout=_number(settings, 'sagenb.workers.interrupt_timeout', float),
            max_total=None if max_total == 'auto' else
            _number(settings, 'sagenb.workers.max_total', int),
            max_output_chars=_number(settings, 'sagenb.output.max_chars', int),
            max_output_file_bytes=_number(settings, 'sagenb.output.max_file_bytes', int),
            server_name=settings['sagenb.workers.server_name'],
            heartbeat=_number(settings, 'sagenb.workers.heartbeat', float))
