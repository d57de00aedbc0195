"""sagenb-pyramid: a multi-user Sage notebook on Pyramid traversal and ZODB."""
import logging

from .settings import prepare, session_secret

log = logging.getLogger(__name__)


class DatabaseInUse(RuntimeError):
    """Another process holds the embedded FileStorage."""


class DatabaseUnreachable(RuntimeError):
    """The database server (PostgreSQL) did not answer or refused the connection."""


def main(global_config, **settings):
    """The WSGI application (``use = egg:sagenb_pyramid``)."""
    # Imported here: every module of the package imports this one first, and the admin
    # commands (scripts/admin.py) open the database without Pyramid's configurator.
    from pyramid.config import Configurator
    from pyramid.session import JSONSerializer, SignedCookieSessionFactory
    prepare(global_config, settings)
    if settings['sagenb.workers.embedded']:
        from .workers.registry import check_root_without_uids
        check_root_without_uids(settings)
    settings.setdefault('tm.manager_hook', 'pyramid_tm.explicit_manager')
    # A class arriving at once places worksheets together: BTree nodes (placements,
    # the audit log) split under concurrent inserts, and the loser runs again.  Eight:
    # with five, edits of one cell by ten clients (a Cell's record does not merge) used
    # them all about once a soak run (tests/e2e/test_live_soak.py).
    settings.setdefault('retry.attempts', '8')

    from .resources import root_factory
    with Configurator(settings=settings, root_factory=root_factory) as config:
        # Templates are Jinja2 files inside the package.
        config.include('pyramid_jinja2')
        config.add_jinja2_search_path('sagenb_pyramid:templates', name='.jinja2')
        # Re-run a whole request after a ConflictError; must wrap pyramid_tm.
        config.include('pyramid_retry')
        config.add_subscriber(retry_backoff, 'pyramid_retry.IBeforeRetry')
        # One transaction per request, committed when the view succeeds.
        config.include('pyramid_tm')
        # The database or its disk unavailable: a 503/507 at once, not retried (outages.py).
        config.include('.outages')
        # One ZODB connection per request, on the request's transaction manager.
        open_database(config)
        config.set_session_factory(SignedCookieSessionFactory(
            session_secret(settings), cookie_name='sagenb_session', httponly=True,
            samesite='Lax', secure=settings['sagenb.secure_cookies'],
            max_age=settings['sagenb.session_max_age'],
            timeout=settings['sagenb.session_max_age'],
            serializer=JSONSerializer()))
        config.include('.security')
        # /health, /metrics and the figures behind them (request times, commits, ...).
        config.include('.metrics')
        # Outgoing mail (pyramid_mailer over SMTP), sent after the request commits.
        config.include('.auth.mail')
        config.include('.workers')
        # OAuth / OpenID Connect providers (velruse's login and callback routes).
        config.include('.auth.oauth')
        # Content-Security-Policy and the other security headers of every response.
        config.include('.csp')
        config.add_static_view('static', 'sagenb_pyramid:static', cache_max_age=3600)
        # Sage's 3-D viewer loads three.js from here (the Jupyter location); the files
        # come with passagemath (jupyter_threejs_sage), so no internet is needed.
        config.add_static_view('nbextensions/threejs-sage', 'jupyter_threejs_sage:static',
                               cache_max_age=86400)
        config.scan('.views')
        start_workers(config, global_config or {})
        config.registry.metrics.watch_host(config.registry.worker_host)
    return config.make_wsgi_app()


def retry_backoff(event):
    """Before a request runs again after a ConflictError: a random pause growing with
    the attempts (up to 0.05, 0.1, 0.2, 0.4, then 0.8 s).  Requests that lost to each other run
    again apart instead of together; ten clients saving one cell at once otherwise
    collided until the attempts ran out (tests/e2e/test_live_soak.py)."""
    import random
    import time
    attempt = getattr(event.request, 'retry_attempt', 0)
    time.sleep(random.uniform(0, 0.05 * 2 ** min(attempt, 4)))


def open_database(config):
    import pyramid_zodbconn
    import zc.lockfile
    try:
        pyramid_zodbconn.includeme(config, db_from_uri=db_from_uri)
    except zc.lockfile.LockError as exc:
        raise in_use(config.registry.settings) from exc


def in_use(settings):
    return DatabaseInUse(
        'The database %s is in use by another process (a running notebook server?). '
        'Stop that server first, or use a ZEO server so that several processes can '
        'share the database.' % settings['zodbconn.uri'])


def database_of(settings):
    """The database of prepared ``settings`` without the application (the admin
    commands); named as pyramid_zodbconn names it."""
    import zc.lockfile
    try:
        return db_from_uri(settings['zodbconn.uri'], '', {})
    except zc.lockfile.LockError as exc:
        raise in_use(settings) from exc


# Connections the database keeps open for reuse (ZODB's default is 7).  Every request
# in flight holds one, a long-poll for seconds, so the pool must hold as many as the
# server has threads (64 in production.ini) and the worker registry's own few.  Past
# the pool size ZODB still opens connections, but closes them again after use, losing
# their object caches, and logs each time at WARNING, past twice the size at CRITICAL.
# A URI with ``connection_pool_size=`` sets its own.
POOL_SIZE = 100

# Seconds a ZEO client waits for a lost server before an operation fails with
# ClientDisconnected (ZEO's default, 30, held every request that long, and pyramid_retry
# ran it again).  Start-up still waits ZEO's 30 s for the first connection; a URI with
# ``wait_timeout=`` sets both.
ZEO_WAIT_TIMEOUT = 2.0


def _database_class():
    from ZODB import DB
    from ZODB.Connection import Connection

    from .evolve import MOVED_CLASSES

    class OpenedOrClosed(Connection):
        """A connection whose opening fails (its first sync, with the ZEO server away)
        goes back to the pool: ZODB left it out, with the request's transaction
        manager, which ``DB.close`` then failed to abort (NoTransaction)."""

        def open(self, transaction_manager=None, delegate=True):
            try:
                super().open(transaction_manager, delegate)
            except Exception:
                # Failed before registering with its transaction manager (a manager of
                # implicit transactions syncs first): close() unregisters it.
                tm = self.transaction_manager
                synchs = getattr(getattr(tm, 'manager', tm), '_synchs', None)
                if synchs is not None and self not in synchs:
                    synchs.add(self)
                try:
                    self.close()
                except Exception:  # the original error is the one to tell
                    log.debug('could not close a connection that failed to open',
                              exc_info=True)
                raise

    class Database(DB):
        """Records of stored classes that moved (``evolve.MOVED_CLASSES``) are read at
        their new place; connections that fail to open go back to the pool."""

        klass = OpenedOrClosed

        def classFactory(self, connection, modulename, globalname):
            modulename, globalname = MOVED_CLASSES.get(
                (modulename, globalname), (modulename, globalname))
            return super().classFactory(connection, modulename, globalname)
    return Database


def db_from_uri(uri, dbname, dbmap):
    """pyramid_zodbconn's, with a pool of ``POOL_SIZE`` connections, and a ZEO client
    syncs with its server at each transaction and waits at most ``ZEO_WAIT_TIMEOUT``
    for a lost server.

    So a request sees what another app server committed before it (a worksheet created
    there a moment ago), not only what invalidations have brought so far.  It is set
    before the database opens its first connection, which keeps the storage's ``sync``.
    """
    from zodburi import resolve_uri
    storage_factory, dbkw = resolve_uri(uri)
    dbkw['database_name'] = dbname
    if 'connection_pool_size=' not in uri:
        dbkw['pool_size'] = POOL_SIZE
    Database = _database_class()
    try:  # RelStorage connects here (and makes its tables in an empty database)
        storage = storage_factory()
    except Exception as exc:
        # DB-API 2's names for a server that is down, refuses us or the database is
        # missing (psycopg2's errors for PostgreSQL, which RelStorage passes on).
        if type(exc).__name__ not in ('OperationalError', 'InterfaceError'):
            raise
        reason = str(exc).strip().splitlines()
        raise DatabaseUnreachable('The database server of %s cannot be reached: %s' % (
            _without_password(uri), reason[0] if reason else type(exc).__name__)) from None
    if hasattr(storage, 'server_sync'):
        storage.server_sync = True
        storage.sync = storage.ping
        if 'wait_timeout=' not in uri:
            storage._server.timeout = ZEO_WAIT_TIMEOUT
        forget_oids_on_reconnect(storage)
    return Database(storage, databases=dbmap, **dbkw)


def _without_password(uri):
    from urllib.parse import urlsplit
    parts = urlsplit(uri)
    if parts.password:
        return uri.replace(':%s@' % parts.password, ':***@', 1)
    return uri


def forget_oids_on_reconnect(storage):
    """A ZEO client drops the object ids it was handed in advance when it connects
    again: a restarted ZEO server hands the uncommitted ones out anew, and a new
    object then took the id of another (ValueError "A different object already has
    the same oid" at commit)."""
    connected = storage.notify_connected

    def notify_connected(conn, info):
        del storage._oids[:]
        connected(conn, info)
    storage.notify_connected = notify_connected


def database(registry):
    return registry._zodb_databases['']


def start_workers(config, global_config):
    from .evolve import SchemaOutdated, open_database as open_app_database
    registry = config.registry
    settings = registry.settings
    db = database(registry)
    try:
        users = open_app_database(
            db, global_config.get('__file__'), run_pending=settings['sagenb.evolve_at_start'])
    except SchemaOutdated:
        db.close()  # its lock too: the process goes on to say why
        raise
    from .workers import WorkerRegistry, Workers
    # The embedded worker host (Sage processes of this server); without it, worksheets
    # run on hosts started with ``sagenb-worker`` (workers/hosts.py).
    local = WorkerRegistry(db, settings) \
        if settings['sagenb.workers.embedded'] else None
    registry.worker_host = local
    registry.workers = Workers(db, settings, local)
    if local is not None:
        from .workers.hostapi import start_host
        # The door is the app's: Workers.shutdown stops it before the host.
        registry.workers.door = start_host(local, settings)
    if users == 0:
        log.warning(
            'This notebook has no users yet. Create the first admin with:\n'
            '    sagenb-admin %s data_dir=%s adduser LOGIN --admin',
            global_config.get('__file__', 'development.ini'),
            registry.settings['data_dir'])
