"""Threads a server cannot live without, and the exit when one of them ends.

The HTTP loop, the output store, the worker housekeeping and a worker host's door each
run in a thread.  If one of them ended (an exception its loop does not catch, as
``select()`` past descriptor 1023 once did to the HTTP loop), the process stayed alive
serving nothing, and no supervisor restarted it.  Whoever starts such a thread
registers it here (``essential``) and lets it go before stopping it on purpose
(``release``).  The process runners (``server.py`` for pserve, ``scripts/worker.py``)
``watch``: when a registered thread has ended, or a check fails, they log a line at
CRITICAL naming it and exit at once with ``EXIT_STATUS``, so that a supervisor (systemd,
``pserve --reload``'s monitor) sees a dead server and starts a new one.

Outside those runners (tests, ``sagenb-admin``) nothing watches: registering is free.
"""
import logging
import os
import sys
import threading

log = logging.getLogger(__name__)

EXIT_STATUS = 70  # sysexits' EX_SOFTWARE: an internal error

_lock = threading.Lock()
_essential = {}  # thread -> what it does, for the log line


def essential(thread, what):
    """``thread`` (started or about to be) must live as long as the process serves."""
    with _lock:
        _essential[thread] = what


def release(thread):
    """``thread`` is being stopped on purpose: its end is no failure."""
    with _lock:
        _essential.pop(thread, None)


def ended():
    """What the registered threads that were started and have ended did."""
    with _lock:
        return [what for thread, what in _essential.items()
                if thread.ident is not None and not thread.is_alive()]


def problems(checks=()):
    """Why the process cannot go on serving (empty: it can)."""
    found = ['%s has stopped' % what for what in ended()]
    for check in checks:
        problem = check()
        if problem:
            found.append(problem)
    return found


def watch(stop, checks=(), interval=0.5, exit=os._exit):
    """Until ``stop`` (an Event) is set: every ``interval`` seconds, exit the process
    if an essential thread has ended or one of ``checks`` (callables returning a
    problem or None) reports one.  The exit skips clean-up: a thread of it may be the
    one that hangs, and the database and Sage processes survive a killed server."""
    while not stop.wait(interval):
        found = problems(checks)
        if found:
            log.critical('%s: the process exits (status %d) so that it is restarted',
                         '; '.join(found), EXIT_STATUS)
            for handler in logging.getLogger().handlers:
                handler.flush()
            sys.stderr.flush()
            exit(EXIT_STATUS)
            return
