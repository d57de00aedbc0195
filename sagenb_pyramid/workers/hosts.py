"""Worker hosts: which one runs a worksheet's Sage process, and how app servers reach it.

A *worker host* is a ``WorkerRegistry`` (registry.py) with its fork server, its Sage
processes and its output store.  The embedded default runs one inside ``pserve``; other
machines run ``sagenb-worker`` (scripts/worker.py).  Everything app servers need to
know about hosts is in ZODB, so any app server can serve any worksheet:

- ``root.worker_hosts``: name -> ``WorkerHost`` record, written by the host: its boot
  id (new at every start), its address (``hostapi.py``) and, for hosts reached over the
  network, a heartbeat and the worksheets it holds processes for.
- ``root.placements``: ``"<owner id>/<number>"`` -> ``"<host>:<boot>"``, written by app
  servers only, in the transaction of the request that needs a process.  Two app
  servers placing one worksheet at once conflict, and the retried request sees the
  other's choice.  A placement holds while that boot of the host lives: a worksheet
  stays with its host (its variables are there) until the host stops.
- A cell's output records the host tag that queued it (``CellOutput.server``): a busy
  cell whose host is gone (another boot, no record, no heartbeat) is marked lost.

``Workers`` is the app server's side (``registry.workers``); ``request.workers`` is a
``Routes`` bound to the request's root, with the operations views use, keyed by
worksheet ``(owner id, number)``.  A host of this process is called directly; other
hosts through ``RemoteHost``.
"""
import http.client
import json
import logging
import socket
import threading
import time

from ZODB.POSException import ConflictError

from ..aftercommit import after_commit
from ..logs import HEADER, REQUEST_ID
from ..resources import in_transaction
from .. import outages, server_settings
from .config import SETTINGS_INTERVAL, WorkerConfig
from .contract import (HostUnreachable, NoCapacity, WorkerBusy, WorkerProblem,
                       error_output)
from .news import CommitNews
from .signing import signed_headers, workers_secret
from .store import find_cell
from .worksheet import QUESTION_TIMEOUT

log = logging.getLogger(__name__)

MISSED_HEARTBEATS = 3  # a host whose record is older than this many heartbeats is gone
# Seconds to open a connection to a host (sagenb.workers.connect_timeout): on a network
# a host that went away answers nothing, and a request would otherwise wait the whole
# operation's timeout.
CONNECT_TIMEOUT = 5.0


def heartbeat_missed(heartbeat, interval, now=None):
    """A host's last heartbeat is older than ``MISSED_HEARTBEATS`` of its intervals,
    counted from when this process last met the database away if later (nobody could
    write a heartbeat then: right after a long outage every host would look gone)."""
    since = max(heartbeat, outages.database_seen_away())
    return (time.time() if now is None else now) - since > MISSED_HEARTBEATS * interval


TOUCH_INTERVAL = 10  # seconds between "someone looks at it" calls to a remote host


def watch_connection(sock, seconds):
    """The kernel gives up on the connection once data or a keepalive probe has gone
    unacknowledged for ``seconds``: a host cut off is found out so on a kept connection
    too, while a live host's kernel acknowledges at once however long its answer takes
    (an ``ask`` waits for the Sage process)."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, int(seconds * 1000))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1)
    except (AttributeError, OSError):
        pass  # not Linux: the call's own timeout bounds the wait


def placement_key(key):
    return '%s/%d' % key


class RemoteHost:
    """A worker host of another process, reached over HTTP (``hostapi.py``).

    The operations of ``contract.HostOperations``: each is ``POST /<operation>`` with
    its arguments by name, answered ``{"result": ...}``, signed with the shared secret
    (signing.py).  Connections are kept per thread.  Connecting waits at most
    ``connect_timeout``, and a connection's unacknowledged data as long
    (``watch_connection``): a host cut off by the network is found out in that time, not
    the call's ``timeout``.  Once a call found the host unreachable, every thread's kept
    connection (of before) is dropped at its next call for a fresh one: the kernel may
    have given up on it meanwhile."""

    def __init__(self, name, address, secret, timeout=30, connect_timeout=CONNECT_TIMEOUT):
        self.name = name
        self.address = address
        self.secret = secret
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.epoch = 0  # one more each time the host is found unreachable
        host, _, port = address.rpartition(':')
        self._host, self._port = host.strip('[]'), int(port)
        self._local = threading.local()

    def _connection(self, fresh=False):
        conn = getattr(self._local, 'conn', None)
        if conn is None or fresh or conn.epoch != self.epoch:
            if conn is not None:
                conn.close()
            conn = self._local.conn = http.client.HTTPConnection(
                self._host, self._port, timeout=self.timeout)
            conn.epoch = self.epoch
        return conn

    def call(self, op, payload, timeout=None):
        body = json.dumps(payload).encode('utf-8')
        headers = signed_headers(self.secret, op, body)
        rid = REQUEST_ID.get()
        if rid is not None:  # the host's log lines name the request that asked
            headers[HEADER] = rid
        for attempt in (0, 1):
            conn = self._connection(fresh=attempt > 0)
            reused = conn.sock is not None
            try:
                if conn.sock is None:
                    conn.timeout = self.connect_timeout
                    conn.connect()
                    watch_connection(conn.sock, self.connect_timeout)
                conn.timeout = timeout or self.timeout
                conn.sock.settimeout(conn.timeout)
                conn.request('POST', '/' + op, body, headers)
                response = conn.getresponse()
                data = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError,
                    BrokenPipeError) as exc:
                conn.close()
                if reused and attempt == 0:
                    continue  # a kept connection the host had closed: once more
                self.epoch += 1
                raise HostUnreachable('the worker host %s (%s) did not answer: %s'
                                      % (self.name, self.address, exc)) from None
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                self.epoch += 1
                raise HostUnreachable('the worker host %s (%s) cannot be reached: %s'
                                      % (self.name, self.address, exc)) from None
        try:
            answer = json.loads(data or b'{}')
        except ValueError:
            answer = {}
        if response.status == 409:
            raise WorkerBusy(answer.get('error', 'busy'))
        if response.status != 200:
            raise WorkerProblem(answer.get('error') or 'the worker host %s answered %d'
                                % (self.name, response.status))
        return answer

    def _op(self, op, timeout=None, **arguments):
        return self.call(op, arguments, timeout=timeout)['result']

    # The operations of contract.HostOperations.
    def submit(self, job):
        self._op('submit', job=job.to_dict())

    def ask(self, key, kind, content, timeout):
        # The host waits up to ``timeout`` for the question to be taken up, then for the
        # process (started if needed) to answer: the connection longer.
        return self.call('ask', {'key': list(key), 'kind': kind, 'content': content,
                                 'timeout': timeout},
                         timeout=timeout + WorkerConfig.startup_timeout + QUESTION_TIMEOUT
                         + 10)['result']

    def send_comm(self, key, cell_id, run_id, comm_id, data):
        return self._op('send_comm', key=list(key), cell_id=cell_id, run_id=run_id,
                        comm_id=comm_id, data=data)

    def send_input(self, key, cell_id, value):
        return self._op('send_input', key=list(key), cell_id=cell_id, value=value)

    def interrupt(self, key):
        return self._op('interrupt', key=list(key))

    def restart(self, key):
        return self._op('restart', key=list(key))

    def discard(self, key):
        self._op('discard', key=list(key))

    def touch(self, key):
        self._op('touch', key=list(key))

    def has_process(self, key):
        return self._op('has_process', key=list(key))

    def is_running(self, key):
        return self._op('is_running', key=list(key))

    def make_room(self):
        return self._op('make_room')

    def processes(self):
        return self._op('processes')

    def ping(self):
        """The host's name and boot (the door's own operation, not a host's)."""
        return self.call('ping', {})


class Workers:
    """The app server's side of the worker hosts (``registry.workers``)."""

    def __init__(self, db, settings, local=None):
        self.db = db
        self.local = local
        # The local host's door (hostapi.Door), stopped first by ``shutdown``: set by
        # whoever opened it (the app's start_workers).
        self.door = None
        self.secret = workers_secret(settings)
        self.news = CommitNews(db)
        self.max_per_user = settings['sagenb.workers.max_per_user']
        self.connect_timeout = settings.get('sagenb.workers.connect_timeout', CONNECT_TIMEOUT)
        self._settings_read = time.monotonic()
        self._remotes = {}
        self._lock = threading.Lock()
        self.touched = {}  # worksheet key -> when a remote host last heard of a viewer

    def bound(self, request):
        return Routes(self, request)

    # -- what the records say ------------------------------------------------------------
    def is_local(self, record):
        """The record names this process's host (whichever boot of it)."""
        return self.local is not None and record.name == self.local.server_name

    def state(self, record):
        """``local`` (this process's host, this boot), ``remote`` (reachable and
        alive), ``unreachable`` (another process's host with no address) or ``gone``."""
        if self.is_local(record):
            return 'local' if record.boot == self.local.boot_id else 'gone'
        if record.address is None:
            return 'unreachable'
        if heartbeat_missed(record.heartbeat, record.interval):
            return 'gone'
        return 'remote'

    def handle(self, record):
        if self.is_local(record):
            return self.local
        with self._lock:
            remote = self._remotes.get(record.name)
            if remote is None or remote.address != record.address:
                remote = self._remotes[record.name] = RemoteHost(
                    record.name, record.address, self.secret,
                    connect_timeout=self.connect_timeout)
            return remote

    def running(self, record):
        """Keys of the worksheets the host holds processes for."""
        if self.is_local(record):
            return set(self.local.running_keys())
        return set(record.running)

    def max_total(self, record):
        if self.is_local(record):
            return self.local.max_total
        return record.max_total

    def has_room(self, record, running):
        """The host may start another worksheet's process (for this process's own host
        its descriptors count too, registry.py)."""
        if self.is_local(record):
            return self.local.has_room()
        return len(running) < record.max_total

    def make_room(self, records, running, prefer=None):
        """Have a full host stop its process idle longest; the record of the host
        that did (the worksheet's own host first, then this process's, then the
        fullest), or None when no host has an idle process."""
        order = sorted(records, key=lambda r: (
            r is not prefer, self.state(r) != 'local',
            -len(running[r.name]) / max(1, self.max_total(r))))
        for record in order:
            try:
                if self.handle(record).make_room():
                    return record
            except WorkerProblem as exc:
                log.warning('could not ask worker host %s to make room: %s',
                            record.name, exc)
        return None

    def live_record(self, root, tag):
        """The record of the host ``"<name>:<boot>"`` if that boot of it lives, else
        None (stopped: no record; restarted: another boot; killed: no heartbeat)."""
        name, _, boot = tag.rpartition(':')
        record = root.worker_hosts.get(name)
        if record is None or record.boot != boot or self.state(record) == 'gone':
            return None
        return record

    def is_orphan(self, root, server_tag):
        """True for a busy cell whose worker host is gone (stopped, restarted, silent)."""
        return bool(server_tag) and self.live_record(root, server_tag) is None

    def placed(self, root, key):
        """The record of the live host the worksheet is placed on, or None."""
        tag = root.placements.get(placement_key(key))
        return self.live_record(root, tag) if tag is not None else None

    def route(self, root, key):
        """The host holding the worksheet's process (or its queue), or None."""
        record = self.placed(root, key)
        if record is None:
            return None
        if self.state(record) == 'unreachable':
            raise HostUnreachable(
                'this worksheet runs on the worker host %s, which this app server cannot '
                'reach (set sagenb.workers.listen on that host)' % record.name)
        return self.handle(record)

    def place(self, root, key):
        """The host that will run the worksheet's next cell, placing the worksheet if
        it has no live host; NoCapacity when no process may start for it."""
        if time.monotonic() - self._settings_read >= SETTINGS_INTERVAL:
            self.read_server_settings(root)
        current = self.placed(root, key)
        pkey = placement_key(key)
        records = [r for r in root.worker_hosts.values()
                   if self.state(r) in ('local', 'remote')]
        running = {r.name: self.running(r) for r in records}
        if current is not None and (pkey in running.get(current.name, ()) or
                                    self.state(current) == 'unreachable'):
            return self.route(root, key)
        mine = sum(1 for keys in running.values() for k in keys
                   if k.startswith(key[0] + '/'))
        if mine >= self.max_per_user:
            raise NoCapacity(
                '%d worksheets of this user are running, the most allowed: stop one '
                '(Restart stops its process) or wait until an idle one stops.' % mine)
        with_room = [r for r in records if self.has_room(r, running[r.name])]
        if current is not None and current in with_room:
            return self.route(root, key)
        if not with_room:
            if not records:
                raise NoCapacity('No worker host is running: try again in a while.')
            freed = self.make_room(records, running, prefer=current)
            if freed is None:
                raise NoCapacity(
                    'The server runs %d worksheet processes, as many as it can, and every '
                    'one is in use (none idle): try again in a few minutes, or stop a '
                    'worksheet of yours you no longer need (Restart stops its process).'
                    % sum(len(k) for k in running.values()))
            with_room = [freed]
        # This process's own host first (no network in between), else the least busy.
        chosen = min(with_room, key=lambda r: (
            self.state(r) != 'local', len(running[r.name]) / max(1, self.max_total(r))))
        root.placements[pkey] = chosen.tag
        return self.handle(chosen)

    def read_server_settings(self, root):
        """The app-scope worker settings an admin set in the browser, e.g. the per-user
        limit (read now and then; each host reads its own, registry.py)."""
        self._settings_read = time.monotonic()
        self.apply_settings(server_settings.stored(root.server_settings, 'app'))

    def apply_settings(self, values):
        """``{attribute: typed value}`` of editable worker settings (settings.py): an
        app-scope one is this app server's (the per-user limit), a host-scope one the
        local host's (the idle time)."""
        for attribute, value in values.items():
            if server_settings.WORKER_SCOPES[attribute] == 'app':
                setattr(self, attribute, value)
            elif self.local is not None:
                setattr(self.local, attribute, value)

    # -- after a commit ----------------------------------------------------------------
    def submit(self, host, job):
        """Hand a job to its host; if the host cannot be reached, the cell says so."""
        try:
            host.submit(job)
        except WorkerProblem as exc:
            log.warning('could not hand cell %s of %s to its host: %s',
                        job.cell_id, job.key, exc)
            self._fail(job, str(exc))

    def _fail(self, job, message):
        def fail(root):
            cell = find_cell(root._p_jar, job)
            if cell is not None and cell.output.run_id in (None, job.run_id):
                cell.output.queue(job.run_id, None)
                cell.output.update('error', [error_output('WorkerLost', message)],
                                   finished=time.time())
        try:
            in_transaction(self.db, fail, attempts=5)
        except ConflictError:
            log.error('could not mark cell %s of %s lost', job.cell_id, job.key)

    def discard(self, key):
        """The worksheet is gone (its deletion committed): stop its process, wherever."""
        def forget(root):
            try:
                host = self.route(root, key)
            except HostUnreachable:
                host = None
            root.placements.pop(placement_key(key), None)
            return host
        try:
            host = in_transaction(self.db, forget)
        except ConflictError:
            host = None  # someone placed it at this moment: its host will reap it
        if host is not None:
            try:
                host.discard(key)
            except WorkerProblem as exc:
                log.warning('could not stop the process of %s: %s', key, exc)

    def shutdown(self):
        if self.door is not None:  # no more requests from app servers
            self.door.stop()
            self.door = None
        if self.local is not None:
            self.local.shutdown()
        self.news.close()  # its poller's connection, before the database closes


class Routes:
    """``request.workers``: the worker operations of one request, keyed by worksheet,
    routed through the request's view of ZODB."""

    def __init__(self, workers, request):
        self.workers = workers
        self.request = request

    @property
    def root(self):
        return self.request.root

    def place(self, key):
        return self.workers.place(self.root, key)

    def submit_after_commit(self, host, job):
        """Queue ``job`` on ``host`` once this request's transaction has committed
        (pyramid_retry may run the request again: the job leaves once)."""
        workers = self.workers
        after_commit(self.request, lambda: workers.submit(host, job))

    def _host(self, key):
        return self.workers.route(self.root, key)

    def touch(self, key):
        """A viewer: the process is not idle.  A host of another process hears it at
        most every ``TOUCH_INTERVAL`` seconds per worksheet (pages poll often)."""
        try:
            host = self._host(key)
            if host is None:
                return
            if host is not self.workers.local:
                now = time.monotonic()
                if now - self.workers.touched.get(key, -TOUCH_INTERVAL) < TOUCH_INTERVAL:
                    return
                self.workers.touched[key] = now
                if len(self.workers.touched) > 10000:
                    self.workers.touched.clear()
            host.touch(key)
        except WorkerProblem:
            pass  # a page view does not fail for it

    def has_process(self, key):
        host = self._host(key)
        return host is not None and host.has_process(key)

    def is_running(self, key):
        host = self._host(key)
        return host is not None and host.is_running(key)

    def interrupt(self, key):
        host = self._host(key)
        return host.interrupt(key) if host is not None else False

    def restart(self, key):
        host = self._host(key)
        return host.restart(key) if host is not None else 0

    def send_input(self, key, cell_id, value):
        host = self._host(key)
        return host is not None and host.send_input(key, cell_id, value)

    def send_comm(self, key, cell_id, run_id, comm_id, data):
        host = self._host(key)
        if host is None:
            return 'these controls are not live: evaluate the cell again'
        return host.send_comm(key, cell_id, run_id, comm_id, data)

    def ask(self, key, kind, content, timeout):
        return self.place(key).ask(key, kind, content, timeout)

    def is_orphan(self, server_tag):
        return self.workers.is_orphan(self.root, server_tag)

    def discard(self, key):
        self.workers.discard(key)

    def watch(self, oid, event=None):
        return self.workers.news.watch(oid, event)

    def unwatch(self, oid, event):
        self.workers.news.unwatch(oid, event)

    def seen(self, jar, oids, event):
        if jar is not None:
            self.workers.news.seen(jar, oids, event)

    def apply_settings(self, values):
        self.workers.apply_settings(values)
