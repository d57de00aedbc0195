"""How many Sage processes a worker host may run, and the open files that takes.

A running worksheet costs its host memory (its Sage process) and descriptors: six in
the process that drives it (three channels of the shared ZMQ context in kernel.py, each
a socket and a mailbox), measured by ``tests/e2e/test_capacity.py``.  ``auto`` takes the
smaller of what the machine's memory and the open-files limit allow.  The open-files
limit is raised to the hard limit at start (Linux starts services at 1024, which a
class's worksheets pass), and a ``max_total`` the limit cannot hold is refused.
"""
import logging
import math
import os
import resource

from ..settings import SettingsError

log = logging.getLogger(__name__)

# Descriptors of one running worksheet (six measured) with room for the files a cell's
# outputs are read from and the data files copied before it.
FDS_PER_PROCESS = 8
# Descriptors kept for everything else: HTTP connections (waitress's connection_limit:
# 1000 in development.ini, 1000 in production.ini), the database and its blob files,
# the fork server, imports, logs.  On a host limited to fewer files, half of them.
FD_RESERVE = 1536
# Memory of one Sage process when ``auto`` counts processes.  A kernel forked from the
# warmed fork server holds about 26 MB of its own (bench/workers.py); a small session's
# variables and caches come on top.  A spawned kernel is a whole Sage (about 380 MB).
MB_PER_PROCESS = {'fork': 64, 'spawn': 400}


def raise_open_files():
    """Raise this process's soft limit of open files to its hard limit; returns the
    soft limit in force (children inherit it: Sage processes set their own)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard
    if hard == resource.RLIM_INFINITY:
        try:  # what the kernel lets one process open
            with open('/proc/sys/fs/nr_open') as f:
                wanted = int(f.read())
        except (OSError, ValueError):
            wanted = 1024 ** 2
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            log.info('open files: limit raised from %d to %d', soft, wanted)
            soft = wanted
        except (ValueError, OSError) as exc:
            log.warning('open files: could not raise the limit of %d to %d: %s',
                        soft, wanted, exc)
    return soft if soft != resource.RLIM_INFINITY else 1024 ** 2


def open_files_in_use():
    """Descriptors this process holds now (None where ``/proc`` is missing)."""
    try:
        return len(os.listdir('/proc/self/fd'))
    except OSError:
        return None


def reserve(open_files):
    return min(FD_RESERVE, open_files // 2)


def allowed_by_descriptors(open_files):
    return max(1, (open_files - reserve(open_files)) // FDS_PER_PROCESS)


def allowed_by_memory(mode):
    memory = os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE')
    return max(4, memory // (MB_PER_PROCESS.get(mode, MB_PER_PROCESS['spawn']) * 1024 ** 2))


def max_total(value, mode, open_files):
    """The host's limit of Sage processes (``sagenb.workers.max_total``): ``auto`` (or
    None, as the typed setting holds it) is what both memory and ``open_files`` allow; a
    number the limit of open files cannot hold is a SettingsError saying what to raise."""
    by_descriptors = allowed_by_descriptors(open_files)
    if value is None or str(value).strip() == 'auto':
        return min(allowed_by_memory(mode), by_descriptors)
    count = int(value)
    if count > by_descriptors:
        needed = count * FDS_PER_PROCESS + reserve(open_files)
        raise SettingsError(
            'sagenb.workers.max_total = %d needs about %d open files, but this process '
            'may open %d: raise the limit (LimitNOFILE= in a systemd unit, ulimit -Hn) '
            'or lower max_total' % (count, math.ceil(needed / 1024) * 1024, open_files))
    return count
