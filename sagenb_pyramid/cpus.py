"""Which CPUs an app server runs on; its Sage processes run on all of them.

Every thread of an app server (requests, worksheet threads, the output store) runs
Python only while it holds the interpreter's one lock, and they pass it to each other
many times per cell.  Spread over several CPUs, each pass wakes a thread on another CPU,
whose caches are cold, while the CPU it left idles or runs a Sage process.  On one CPU
the same work costs about a quarter less CPU time (docs/benchmarks.md, ninth session);
an app server cannot use more than about one CPU for Python anyway.  Its Sage processes,
which do the users' computing, get back every CPU the server had.

``sagenb.server_cpus`` (environment: ``SAGENB_SERVER_CPUS``), applied by the server
runner (server.py) only, not where the application is merely loaded (tests, ``sagenb-admin``):

- ``auto`` (the default): one CPU, if the process may use more than one.  Which one
  follows from the port (port modulo the number of CPUs), so that app servers on
  consecutive ports of one machine take different CPUs;
- ``none``: no pinning;
- a list such as ``0`` or ``2,3`` or ``0-1``.
"""
import contextlib
import logging
import os
import threading

log = logging.getLogger(__name__)

# The CPUs the process had before it was pinned: its Sage processes get them back.
_all = None
_pinned = None  # the app server's own


class CpuSettingError(ValueError):
    pass


def available():
    """The CPUs this process may run on (where it cannot be pinned, not Linux: one)."""
    return os.sched_getaffinity(0) if hasattr(os, 'sched_getaffinity') else {0}


def check(spec):
    """Raise CpuSettingError if ``spec`` is not a setting of this module, or names
    CPUs this process may not use."""
    parse(spec, available())


def parse(spec, allowed, port=0):
    """The CPUs for ``spec`` among ``allowed`` (a set), or None: do not pin."""
    text = (spec or 'auto').strip().lower()
    if text in ('none', 'off', 'no'):
        return None
    if text == 'auto':
        ordered = sorted(allowed)
        return {ordered[int(port) % len(ordered)]} if len(ordered) > 1 else None
    cpus = set()
    for part in text.replace(' ', '').split(','):
        first, _, last = part.partition('-')
        try:
            low = int(first)
            high = int(last) if last else low
        except ValueError:
            raise CpuSettingError(
                '%r: write "auto", "none" or CPU numbers such as "0", "2,3" or '
                '"0-1"' % spec) from None
        if low < 0 or high < low:
            raise CpuSettingError('%r: %r is not a range of CPUs' % (spec, part))
        cpus.update(range(low, high + 1))
    if not cpus <= allowed:
        raise CpuSettingError('%r: this process may only use CPUs %s' % (
            spec, ','.join(str(cpu) for cpu in sorted(allowed))))
    return cpus


def pin_server(spec, port=0):
    """Run every thread of this process (and those it starts later) on the CPUs of
    ``spec``.  Returns them, or None when nothing was pinned."""
    global _all, _pinned
    if not hasattr(os, 'sched_setaffinity'):  # not Linux
        return None
    allowed = available()
    cpus = parse(spec, allowed, port)
    if cpus is None or cpus == allowed:
        return None
    # Known before any thread is pinned: a process started meanwhile gets them back.
    _all, _pinned = allowed, cpus
    for tid in os.listdir('/proc/self/task'):
        try:
            os.sched_setaffinity(int(tid), cpus)
        except OSError:  # the thread ended meanwhile
            pass
    log.info('the app server runs on CPU %s; its Sage processes on %s',
             ','.join(map(str, sorted(cpus))), ','.join(map(str, sorted(allowed))))
    return cpus


def release(pid):
    """A process that a pinned app server started (the fork server, a spawned Sage
    process) runs on every CPU the server had, as do the processes it forks later."""
    if _all is None or not pid:
        return
    try:
        os.sched_setaffinity(pid, _all)
    except OSError as exc:
        log.warning('could not give process %s every CPU: %s', pid, exc)


@contextlib.contextmanager
def off_server_cpus():
    """Run the calling thread on the CPUs the app server leaves to its Sage processes
    while it does CPU-heavy work outside the interpreter's lock (a password hash: 46 ms
    that the server's own CPU would otherwise lose at every login of a class)."""
    if _pinned is None or not _all - _pinned:
        yield
        return
    tid = threading.get_native_id()
    os.sched_setaffinity(tid, _all - _pinned)
    try:
        yield
    finally:
        os.sched_setaffinity(tid, _pinned)
