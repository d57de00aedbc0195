"""The database or the disk unavailable for a while: what such a failure is, and how a
request that meets one ends.

Two kinds are recognised (``outage_of``): the database cannot be reached (a ZEO client
disconnected: the ZEO server restarts or the network is cut; RelStorage's connection to
PostgreSQL lost or refused: ``lost_connection``) and the disk under the database is
full (``ENOSPC``, ``EDQUOT``).  All pass by themselves: ZEO clients reconnect every
second, RelStorage opens a new connection at the next transaction, and writes work
again once space is freed.  A request meeting
one gets 503 (database) or 507 (disk) with a message saying so (views/__init__.py),
never a 500 with a traceback, and its transaction is aborted, so nothing changes.

ZEO's ``ClientDisconnected`` is a ``TransientError``, which pyramid_retry would run
again up to ``retry.attempts`` times, each attempt waiting for the server: the tween
below marks the answered request as not to be retried, so it ends in one wait
(``ZEO_WAIT_TIMEOUT``, __init__.py).  The worker hosts' own writers (the output store,
heartbeats) wait and try again instead (workers/store.py, workers/registry.py).
"""
import errno
import time

DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT)

MESSAGES = {
    'database': 'the database is unavailable at the moment: nothing was changed; '
                'try again in a little while',
    'disk': "the server's disk is full: nothing was changed; try again once an "
            'administrator has freed space',
}
STATUS = {'database': 503, 'disk': 507}
RETRY_AFTER = '10'  # seconds a client is told to wait before trying again


def _disconnected_classes():
    from ZEO.Exceptions import ClientDisconnected
    return (ClientDisconnected,) + _relstorage_classes()


def _relstorage_classes():
    """RelStorage's own words for a lost connection (None installed: none)."""
    try:
        from relstorage.adapters.interfaces import ReplicaClosedException
        from relstorage.storage.interfaces import StorageDisconnectedDuringCommit
    except ImportError:
        return ()
    return (ReplicaClosedException, StorageDisconnectedDuringCommit)


# SQLSTATEs of a connection lost or refused by PostgreSQL: class 08 (connection
# exception) and the server shutting down, crashed or starting (57P01-57P03).
LOST_SQLSTATES = ('57P01', '57P02', '57P03')


def lost_connection(exc):
    """Whether ``exc`` is psycopg2's for a PostgreSQL server gone away or refusing us:
    an ``OperationalError``/``InterfaceError`` without a SQLSTATE (raised by libpq
    itself: connection refused, closed, reset) or with one above.  Lock timeouts,
    deadlocks and serialization failures are OperationalErrors too, with their own
    SQLSTATE: those are conflicts, not outages."""
    try:
        import psycopg2
    except ImportError:
        return False
    if not isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError)):
        return False
    code = getattr(exc, 'pgcode', None)
    return code is None or code.startswith('08') or code in LOST_SQLSTATES


def database_error_classes():
    """The classes the exception view of an outage is registered for, beyond ZEO's:
    psycopg2's errors (``outage_of`` tells which are outages; the others are failures
    of the server) and RelStorage's."""
    try:
        import psycopg2
    except ImportError:
        return _relstorage_classes()
    return (psycopg2.Error,) + _relstorage_classes()


# When this process last met the database away (time.time()): no host could write its
# heartbeat then, so a heartbeat is not stale before then (workers/hosts.py).
_database_away = [0.0]


def database_seen_away():
    """When this process last met the database unavailable (0: never)."""
    return _database_away[0]


def outage_of(exc):
    """``'database'``, ``'disk'`` or None: whether ``exc`` (or what it was raised
    from) says the database or its disk is unavailable.  A database one is noted
    (``database_seen_away``)."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, Unavailable):
            return exc.kind
        if isinstance(exc, _disconnected_classes()) or lost_connection(exc):
            _database_away[0] = time.time()
            return 'database'
        if isinstance(exc, OSError) and exc.errno in DISK_ERRNOS:
            return 'disk'
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


class Unavailable(Exception):
    """A request's outage as pyramid_retry sees it: not retryable (the answer stands)."""

    def __init__(self, kind, original=None):
        super().__init__(MESSAGES[kind])
        self.kind = kind
        self.original = original


def outage_tween_factory(handler, registry):
    def outage_tween(request):
        try:
            response = handler(request)
        except Exception as raised:
            # Raised where no exception view runs: pyramid_tm's look at the identity
            # (``tm.annotate_user``) before the view, which reads the user.
            kind = outage_of(raised)
            if kind is None:
                raise
            # As Unavailable: the view of the raised class may be none (a ConflictError
            # RelStorage raised for a lock it lost with its connection, before the last
            # attempt) or say something else.
            replaced = Unavailable(kind, raised)
            response = request.invoke_exception_view(
                (Unavailable, replaced, raised.__traceback__))
        exc = getattr(request, 'exception', None)
        if exc is not None and not isinstance(exc, Unavailable):
            kind = outage_of(exc)
            if kind is not None:
                # The 503/507 drawn by the exception view is the answer: retrying
                # would wait for the database again, attempts times over.
                replaced = Unavailable(kind, exc)
                request.exception = replaced
                request.exc_info = (Unavailable, replaced, None)
        return response
    return outage_tween


def includeme(config):
    # Over pyramid_tm: an outage at commit is drawn by pyramid_tm's own call of the
    # exception view, which this tween sees as well as one raised in a view.
    config.add_tween('sagenb_pyramid.outages.outage_tween_factory',
                     over='pyramid_tm.tm_tween_factory')
