"""Faults under a class's load (issue 23): the simulated users of the fault tests
(tests/support/load.py), a class of them, while one part breaks.

    .venv/bin/python bench/faults.py [--users 200] [--faults host,database,app]
                                     [--engine zeo|postgres] [--think 10,30] [--arrival 20]
                                     [--outage 5] [--before 20] [--after 20]

Each fault gets a fresh database server and fresh servers on 127.0.0.1, the users
(API tokens, a worksheet each: ``n = k; n + 1``, evaluate, read, then ``--think`` LOW,HIGH
seconds: a class's 10-30 s of bench/classroom.py by default), arriving evenly over
``--arrival`` seconds (20 by default); ``--think 0.2,0.8 --arrival 0`` is the fault
tests' stress pace.  ``--before`` seconds of load once every user had a first result,
then:

- ``host``: two ``sagenb-worker`` hosts behind one app server, half the class on each;
  one is killed (SIGKILL of its session: its Sage processes with it).
- ``database``: the database server stopped for ``--outage`` seconds, then started.
- ``app``: two app servers (each with its worker host), half the class on each; one is
  killed, its users sent to the other (as a load balancer would).

and ``--after`` seconds more once every hurt user had a result again.  Prints per fault:
requests answered (an HTTP status came back), errors by status (and the ends of
evaluations that failed), the time to recover (from the fault, or from the database's
return, to the moment every user, for ``app`` every user of the killed server, had a
right answer to an evaluation started after it: with a class's think time mostly the
wait for each user's next evaluation), the last failure (from the same moment to when
the last request that failed was answered: when the system itself was healthy again;
negative for the database if the failures ended before it was back), cells lost
(evaluations that ended as lost: their process went with the host), for ``host`` and
``app`` the hurt users of the host or app server that stayed up (must be 0), and for
the database, answers that a user got but the database does not hold (must be 0).
Bounded: each phase has a deadline, and every process it started is stopped at the end
(also on SIGTERM or ^C).

``--engine``: the database under the app servers and worker hosts.  ``zeo``: a
``runzeo`` (FileStorage, blobs in the server).  ``postgres``: RelStorage on a
PostgreSQL of its own from Debian's binaries (tests/support/postgres.py), with
PostgreSQL's default durability (fsync, synchronous commits) and blobs in the database;
its ``database`` fault is PostgreSQL stopped (fast shutdown: connections cut) and
started again on the same data and port.
"""
import argparse
import collections
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, HERE)

from tests.support.load import Load, add_users, everyone_completed  # noqa: E402
from tests.support.load import placements as read_placements  # noqa: E402
from tests.support.postgres import PostgresServer, blob_cache_uri  # noqa: E402
from tests.support.server import Server, free_port  # noqa: E402
from tests.support.zeo import SECRET, WorkerHost, ZeoServer, zeo_uri  # noqa: E402


# -- the database engines ---------------------------------------------------------------
class Zeo:
    """``runzeo`` on a folder of the run; stopped and started on the same port."""
    name = 'zeo'

    def __init__(self, folder):
        self.folder = folder
        self.server = ZeoServer(folder / 'zeo')

    def uri(self, name):
        return zeo_uri(self.folder, self.server.port, name)

    def stop(self):
        self.server.stop()

    def start(self):
        self.server.start()

    def close(self):
        self.server.stop(signal.SIGKILL)


class Postgres:
    """RelStorage on a PostgreSQL of the run (blobs in the database, each server's
    blob cache in its folder); stopped and started on the same data and port."""
    name = 'postgres'
    # PostgreSQL's own defaults (durable commits) but for the connections: each of an
    # app server's 32 threads may hold a RelStorage connection (two PostgreSQL ones).
    SETTINGS = {'max_connections': 300}

    def __init__(self, folder):
        self.folder = folder
        self.server = PostgresServer(settings=self.SETTINGS).start()
        try:
            self.db = self.server.create_database('faults')
        except BaseException:
            self.server.stop()
            raise

    def uri(self, name):
        return blob_cache_uri(self.server, self.db, self.folder / name)

    def stop(self):
        self.server.halt()

    def start(self):
        self.server.start()

    def close(self):
        self.server.stop()


ENGINES = {'zeo': Zeo, 'postgres': Postgres}


# -- the servers -------------------------------------------------------------------------
def app_server(folder, engine, name, **more):
    env = {'SAGENB_ZODB_URI': engine.uri(name), 'SAGENB_SECRET': SECRET,
           'SAGENB_WORKERS_SERVER_NAME': name, 'SAGENB_WORKERS_HEARTBEAT': '1',
           'SAGENB_WORKERS_SPARE': '0', 'SAGENB_HEALTH_MIN_FREE_MB': '1',
           # A class on one host: room for every user's process (auto counts memory).
           'SAGENB_WORKERS_MAX_PER_USER': '2'}
    env.update(more)
    os.makedirs(folder / name, exist_ok=True)
    return Server(folder / name, free_port(), env=env)


def placements(engine, logins):
    """login -> the name of the host its worksheet is placed on (read from the
    database, as tests/e2e/test_faults.py does)."""
    from sagenb_pyramid import db_from_uri
    db = db_from_uri(engine.uri('reader'), 'unnamed', {})
    try:
        return read_placements(db, logins)
    finally:
        db.close()


# -- figures -----------------------------------------------------------------------------
def recovered_at(load, since, users, deadline):
    """Seconds of the load at which every one of ``users`` had a right answer again
    (an answer of an evaluation that started after ``since``), None if not by
    ``deadline`` seconds."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        firsts = {}
        for r in load.completed(since=since, users=set(users)):
            firsts[r.user] = min(firsts.get(r.user, r.at + r.seconds), r.at + r.seconds)
        if len(firsts) == len(set(users)):
            return max(firsts.values())
        time.sleep(0.2)
    return None


def hurt_after(load, fault):
    """The users with a request that failed and was answered after ``fault`` (one sent
    before it counts: an evaluation waits for its cell)."""
    return {r.user for r in load.failures() if r.at + r.seconds >= fault}


def last_failure(load, fault, since):
    """Seconds from ``since`` to the answer of the last request that failed and was
    answered after ``fault`` (the fault's moment), None if none was."""
    ends = [r.at + r.seconds for r in load.failures() if r.at + r.seconds >= fault]
    return round(max(ends) - since, 1) if ends else None


def figures(load, fault_at, recovered, hurt, extra=None, since='', fault=None):
    """``fault_at``: the moment recovery counts from; ``fault``: when the fault began
    (the database's stop), by default the same."""
    records = load.select()
    answered = [r for r in records if r.status > 0]
    errors = collections.Counter()
    for r in load.failures():
        errors['%d %s' % (r.status, r.end) if r.end else str(r.status)] += 1
    lost = sum(1 for r in records if r.end in ('WorkerLost', 'NotRun'))
    done = load.completed()
    out = {'requests': len(records), 'answered': len(answered),
           'evaluations right': len(done), 'errors by status': dict(errors.most_common()),
           'hurt users': len(hurt), 'cells lost': lost,
           'time to recover (s)%s' % since: None if recovered is None
           else round(recovered - fault_at, 1),
           'last failure after the fault (s)%s' % since: last_failure(
               load, fault_at if fault is None else fault, fault_at),
           'worst request (s)': round(max((r.seconds for r in records), default=0), 1),
           'server errors (5xx other than 503/507)': len(load.server_errors())}
    out.update(extra or {})
    return out


# -- the faults ----------------------------------------------------------------------------
def fault_host(folder, engine, logins, tokens, args):
    host_a = WorkerHost(folder, None, 'host-a', uri=engine.uri('host-a'))
    host_b = None
    try:
        app = app_server(folder, engine, 'app1', SAGENB_WORKERS_EMBEDDED='false')
    except BaseException:
        host_a.stop(signal.SIGKILL)
        raise
    half = len(logins) // 2
    load = class_load({login: (tokens[login], app.url) for login in logins}, args)
    try:
        load.start(logins[:half])  # placed on host A, then B comes for the other half
        wait(load, everyone_completed(load, 0, logins[:half]), args.setup, 'first half')
        host_b = WorkerHost(folder, None, 'host-b', uri=engine.uri('host-b'))
        time.sleep(1.5)
        load.start()
        wait(load, everyone_completed(load, 0, logins), args.setup, 'everyone')
        time.sleep(args.before)
        on_b = {u for u, host in placements(engine, logins).items() if host == 'host-b'}
        host_a.stop(signal.SIGKILL)
        killed, loadavg = load.now(), os.getloadavg()[0]
        recovered = recovered_at(load, killed, logins, args.deadline)
        time.sleep(args.after)
    finally:
        stop(load, app.kill, lambda: host_a.stop(signal.SIGKILL),
             host_b.stop if host_b is not None else None)
    hurt = hurt_after(load, killed)
    return figures(load, killed, recovered, hurt, {
        # The "other users unaffected": those of the host that stayed up.
        'users on the other host (placed there before)': len(on_b),
        'hurt users of the other host': len(hurt & on_b),
        'load average at the fault': round(loadavg, 2)})


def fault_database(folder, engine, logins, tokens, args):
    app = app_server(folder, engine, 'app1')
    load = class_load({login: (tokens[login], app.url) for login in logins}, args)
    try:
        load.start()
        wait(load, everyone_completed(load, 0, logins), args.setup, 'everyone')
        time.sleep(args.before)
        down, loadavg = load.now(), os.getloadavg()[0]
        engine.stop()
        time.sleep(args.outage)
        engine.start()
        up = load.now()
        recovered = recovered_at(load, up, logins, args.deadline)
        time.sleep(args.after)
    except BaseException:
        stop(load, app.kill)
        raise
    load.stop()
    try:
        # Every right answer a user got is in the database (the cells read back).
        missing = 0
        for login in logins:
            user = load.by_login[login]
            status, sheet = user.request('GET', user.ws)
            done = sum(1 for c in sheet.get('cells', []) if c['status'] == 'done')
            missing += max(0, len(load.completed(users={login})) - done)
    finally:
        app.kill()
    hurt = hurt_after(load, down)
    return figures(load, up, recovered, hurt,
                   {'outage (s)': round(up - down, 1), 'answers not in the database': missing,
                    'load average at the fault': round(loadavg, 2)},
                   since=', from its return', fault=down)


def fault_app(folder, engine, logins, tokens, args):
    one = app_server(folder, engine, 'app1')
    try:
        two = app_server(folder, engine, 'app2')
    except BaseException:
        one.kill()
        raise
    half = len(logins) // 2
    of_one = logins[:half]
    load = class_load({login: (tokens[login], (one if i < half else two).url)
                       for i, login in enumerate(logins)}, args)
    try:
        load.start()
        wait(load, everyone_completed(load, 0, logins), args.setup, 'everyone')
        time.sleep(args.before)
        one.kill()
        killed, loadavg = load.now(), os.getloadavg()[0]
        for login in of_one:
            load.by_login[login].switch(two.url)
        recovered = recovered_at(load, killed, of_one, args.deadline)
        time.sleep(args.after)
    finally:
        stop(load, one.kill, two.kill)
    hurt = hurt_after(load, killed)
    return figures(load, killed, recovered, hurt, {
        # The "while others run": the other server's users should see nothing.
        'hurt users of the other app server': len(hurt - set(of_one)),
        'load average at the fault': round(loadavg, 2)})


FAULTS = {'host': fault_host, 'database': fault_database, 'app': fault_app}


def class_load(users, args):
    return Load(users, think=args.think, arrival=args.arrival)


def stop(load, *stoppers):
    """Stop the users, then the servers, whatever fails."""
    try:
        load.stop()
    finally:
        for stopper in stoppers:
            if stopper is not None:
                try:
                    stopper()
                except Exception as exc:
                    print('could not stop a server: %r' % exc, file=sys.stderr)


def wait(load, condition, timeout, what):
    load.wait_for(condition, timeout, 'a first result for ' + what)


def pace(text):
    """``--think LOW,HIGH``: seconds, 0 <= LOW <= HIGH."""
    try:
        low, high = (float(x) for x in text.split(','))
    except ValueError:
        raise argparse.ArgumentTypeError('LOW,HIGH in seconds, e.g. 10,30') from None
    if not 0 <= low <= high:
        raise argparse.ArgumentTypeError('0 <= LOW <= HIGH, not %s' % text)
    return low, high


def commit():
    try:
        return subprocess.run(['git', '-C', HERE, 'describe', '--always', '--dirty'],
                              capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return '?'


def terminated(signum, frame):
    # As ^C does: the faults' finally clauses stop every server they started.
    raise KeyboardInterrupt('SIGTERM')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--users', type=int, default=200)
    parser.add_argument('--faults', default='host,database,app')
    parser.add_argument('--engine', choices=sorted(ENGINES), default='zeo')
    parser.add_argument('--think', type=pace, default=(10.0, 30.0), metavar='LOW,HIGH',
                        help="seconds a user thinks between evaluations (a class's 10,30; "
                        "the fault tests' stress pace 0.2,0.8)")
    parser.add_argument('--arrival', type=float, default=20.0,
                        help='seconds over which the users take their first steps')
    parser.add_argument('--outage', type=float, default=5.0, help='seconds the database is down')
    parser.add_argument('--before', type=float, default=20.0, help='seconds of load before')
    parser.add_argument('--after', type=float, default=20.0, help='seconds of load after')
    parser.add_argument('--setup', type=float, default=600.0,
                        help='seconds for every user to get a first result')
    parser.add_argument('--deadline', type=float, default=180.0,
                        help='seconds for the hurt users to get results again')
    args = parser.parse_args()
    faults = args.faults.split(',')
    unknown = set(faults) - set(FAULTS)
    if unknown:
        parser.error('unknown faults %s (known: %s)' % (sorted(unknown), sorted(FAULTS)))
    from argon2 import PasswordHasher
    from sagenb_pyramid.auth import passwords
    passwords._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)

    signal.signal(signal.SIGTERM, terminated)
    print('%d users, engine %s, think %g-%g s, arrival over %g s, at %s, %s UTC, '
          'load average %s, %d CPUs' % (
              args.users, args.engine, args.think[0], args.think[1], args.arrival, commit(),
              time.strftime('%Y-%m-%d %H:%M', time.gmtime()),
              ' '.join('%.2f' % x for x in os.getloadavg()), os.cpu_count()), flush=True)
    logins = ['u%03d' % i for i in range(args.users)]
    for fault in faults:
        from pathlib import Path
        folder = Path(tempfile.mkdtemp(prefix='sagenb-faults-'))
        print('\n%s: %s, load average %.2f' % (
            fault, time.strftime('%H:%M:%S', time.gmtime()), os.getloadavg()[0]), flush=True)
        started = time.monotonic()
        try:
            engine = ENGINES[args.engine](folder)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        try:
            tokens = add_users(engine.uri('setup'), logins)
            result = FAULTS[fault](folder, engine, logins, tokens, args)
        finally:
            engine.close()
            shutil.rmtree(folder, ignore_errors=True)
        print('\n== %s (%.0f s, load average now %.2f)' % (
            fault, time.monotonic() - started, os.getloadavg()[0]))
        for name, value in result.items():
            print('  %-50s %s' % (name, value))
        sys.stdout.flush()


if __name__ == '__main__':
    main()
