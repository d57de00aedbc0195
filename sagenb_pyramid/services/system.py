"""The running system: this app server's health (``/health``) and, for admins, the
worker hosts and the worksheets' Sage processes (``/admin/system``).

``/health`` is for a load balancer: it tells whether this app server can serve (the
database answers, a worker host can take cells, there is room on the disk under
``data_dir``) and says nothing secret: no addresses, no user or worksheet names.
The database is asked in a thread of its own with a time limit, one question at a time
however many checks arrive, so a database that hangs holds no request threads.
"""
import shutil
import threading
import time

from ..outages import lost_connection
from ..resources import in_transaction
from ..workers.contract import HostUnreachable, WorkerProblem

DATABASE_TIMEOUT = 5.0  # seconds /health waits for the database


class DatabaseProbe:
    """Reads the application root in a transaction of its own; one read at a time."""

    def __init__(self, db):
        self.db = db
        self.lock = threading.Lock()
        self.running = None  # the read in progress: (event, result dict)

    def check(self, timeout=DATABASE_TIMEOUT):
        """``{"ok", "seconds"}`` or ``{"ok": false, "error"}``, within ``timeout``."""
        with self.lock:
            if self.running is None:
                self.running = (threading.Event(), {})
                threading.Thread(target=self._read, args=self.running, daemon=True,
                                 name='health-database').start()
            done, result = self.running
        if not done.wait(timeout):
            return {'ok': False, 'error': 'no answer within %g s' % timeout}
        return dict(result)

    def _read(self, done, result):
        start = time.perf_counter()
        try:
            hosts = in_transaction(self.db, lambda root: [
                host_summary(record) for record in root.worker_hosts.values()])
            result.update(ok=True, seconds=round(time.perf_counter() - start, 4),
                          hosts=hosts)
        except Exception as exc:  # any failure of the storage is the answer
            if lost_connection(exc):  # libpq's message names the server's address
                result.update(ok=False, error='unreachable (%s)' % type(exc).__name__)
            else:
                result.update(ok=False, error='%s: %s' % (type(exc).__name__, exc))
        finally:
            with self.lock:
                self.running = None
            done.set()


def host_summary(record):
    return {'name': record.name, 'boot': record.boot, 'address': record.address,
            'heartbeat': record.heartbeat, 'interval': record.interval,
            'running': len(record.running), 'max_total': record.max_total}


def probe_of(registry):
    probe = getattr(registry, 'sagenb_health', None)
    if probe is None:
        from .. import database
        probe = registry.sagenb_health = DatabaseProbe(database(registry))
    return probe


def health(registry):
    """``(status, body)``: 200 when this app server can serve, else 503 with what
    failed in ``problems``."""
    settings = registry.settings
    workers = registry.workers
    problems = []
    database = probe_of(registry).check()
    hosts = database.pop('hosts', [])
    if not database['ok']:
        problems.append('database: %s' % database['error'])

    local = registry.worker_host
    this_host = None
    if local is not None:
        alive = local.alive
        forkserver = local.forkserver.state if local.forkserver is not None else 'none'
        this_host = {'name': local.server_name, 'alive': alive, 'forkserver': forkserver,
                     'processes': len(local.running_keys()), 'max_total': local.max_total}
        if not alive:
            problems.append('worker host: its housekeeping has stopped')

    others = []
    now = time.time()
    for host in hosts:
        if local is not None and host['name'] == local.server_name:
            continue
        state = host_state(workers, host, now)
        others.append({'name': host['name'], 'state': state,
                       'heartbeat_age': round(now - host['heartbeat'], 1),
                       'processes': host['running'], 'max_total': host['max_total']})
    if local is None and database['ok'] and not any(h['state'] == 'alive' for h in others):
        problems.append('worker hosts: none is alive to run cells')

    free = shutil.disk_usage(settings['data_dir']).free
    minimum = settings['sagenb.health.min_free_mb'] * 1024 ** 2
    disk = {'free_mb': free // 1024 ** 2, 'min_free_mb': settings['sagenb.health.min_free_mb'],
            'ok': free >= minimum}
    if not disk['ok']:
        problems.append('disk: %d MB free under data_dir, less than %d MB'
                        % (disk['free_mb'], disk['min_free_mb']))
    body = {'status': 'ok' if not problems else 'failing', 'problems': problems,
            'database': database, 'worker_host': this_host, 'other_hosts': others,
            'disk': disk}
    return (200 if not problems else 503), body


def host_state(workers, host, now):
    """``alive`` (a reachable host with a recent heartbeat), ``unreachable`` (no
    address: it serves only its own app server) or ``gone`` (missed heartbeats)."""
    from ..workers.hosts import heartbeat_missed
    if host['address'] is None:
        return 'unreachable'
    if heartbeat_missed(host['heartbeat'], host['interval'], now):
        return 'gone'
    return 'alive'


# --- the admin's page of the running system ---------------------------------------------

def running_system(request):
    """The worker hosts and every worksheet process they run, with owner and name."""
    root = request.root
    workers = request.registry.workers
    hosts, processes = [], []
    for record in root.worker_hosts.values():
        state = workers.state(record)
        host = {'name': record.name, 'state': state, 'max_total': workers.max_total(record),
                'heartbeat_age': round(time.time() - record.heartbeat, 1),
                'processes': 0, 'memory': 0, 'error': None}
        hosts.append(host)
        if state not in ('local', 'remote'):
            continue
        try:
            found = workers.handle(record).processes()
        except (HostUnreachable, WorkerProblem) as exc:
            host['error'] = str(exc)
            continue
        host['processes'] = len(found)
        host['memory'] = sum(p['memory'] or 0 for p in found)
        for process in found:
            processes.append(dict(process, host=record.name,
                                  **worksheet_fields(root, process['worksheet'])))
    return {'hosts': hosts, 'processes': processes}


def worksheet_fields(root, key):
    owner_id, _, number = key.partition('/')
    owner = root.users_by_id.get(owner_id)
    worksheet = owner.get(number) if owner is not None else None
    return {'owner': owner.login if owner is not None else None,
            'name': getattr(worksheet, 'name', None)}


def stop_process(request, key):
    """Stop one worksheet's process (``"<owner id>/<number>"``); its variables are
    lost, the next evaluation starts a fresh one.  False when there was none."""
    owner_id, _, number = key.partition('/')
    if not number.isdigit():
        return False
    request.workers.discard((owner_id, int(number)))
    return True


def stop_idle(request, idle_seconds):
    """Stop every process with no cell running or waiting, idle for ``idle_seconds``;
    the keys stopped."""
    stopped = []
    for process in running_system(request)['processes']:
        if not process['running'] and not process['queued'] \
                and process['idle_seconds'] >= idle_seconds:
            stop_process(request, process['worksheet'])
            stopped.append(process['worksheet'])
    return stopped
