"""Storage engines side by side, in one run (issue 23).

    .venv/bin/python bench/storage.py [--seconds 15] [--engines file,zeo,postgres]

For each engine, 16 clients evaluate ``1+1`` in a loop in worksheets of their own (plain
text results), as bench/workers.py's throughput does, measured after one second of the
same load:

- ``file``: one app server (``pserve development.ini``) on the embedded FileStorage;
- ``zeo``: a ZEO server (``runzeo``) and two app servers, 8 clients on each;
- ``postgres``: PostgreSQL (Debian's binaries, its default durability: fsync and
  synchronous commits, as FileStorage fsyncs each commit) through RelStorage, and two
  app servers, 8 clients on each;
- ``postgres-async``: the same with ``synchronous_commit = off``.

Besides cells/s and p99: the transactions committed per second during the window (the
output store's group commits, counted in the storage afterwards) and the CPU each part
used (cores busy: app servers, Sage processes, the storage server), which says where
the bottleneck is; then, with no app server, the commit rate the storage sustains for
small commits like the output store's (8 threads, one object each, in this process).
"""
import argparse
import os
import pathlib
import subprocess
import sys
import tempfile
import threading
import time

import psutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import free_port, pct, wait_http  # noqa: E402
from workers import SagenbSession  # noqa: E402

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, HERE)
BIN = os.path.dirname(sys.executable)
INI = os.path.join(HERE, 'development.ini')
SECRET = 'the benchmark secret shared by the app servers'
CLIENTS = 16

def free_pair():
    """Two consecutive free ports (app servers on one machine pick their CPU by port)."""
    for _ in range(100):
        port = free_port()
        try:
            import socket
            with socket.socket() as s:
                s.bind(('127.0.0.1', port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError('no two consecutive free ports')


class AppServer:
    def __init__(self, folder, name, port, uri=None):
        self.port = port
        self.data = os.path.join(folder, name)
        os.makedirs(self.data, exist_ok=True)
        env = dict(os.environ, SAGENB_WORKERS_SPARE='2', SAGENB_WORKERS_MAX_PER_USER='100',
                   SAGENB_API_MAX_WAITS_PER_USER='100', SAGENB_SECRET=SECRET,
                   SAGENB_WORKERS_SERVER_NAME=name)
        if uri:
            env['SAGENB_ZODB_URI'] = uri
        self.env = env
        self.proc = None

    def admin(self, *args, stdin=''):
        return subprocess.run([os.path.join(BIN, 'sagenb-admin'), INI, 'data_dir=' + self.data,
                               *args], input=stdin, text=True, check=True,
                              capture_output=True, env=self.env).stdout

    def start(self):
        self.proc = subprocess.Popen(
            [os.path.join(BIN, 'pserve'), INI, 'http_port=%d' % self.port,
             'data_dir=' + self.data], env=self.env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        wait_http(self.port, '/login')

    def stop(self):
        if self.proc is not None:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()
            self.proc = None


class Engine:
    """Storage (if a server) and app servers; ``token`` of the user ``bench``."""

    def __init__(self, kind, folder):
        self.kind = kind
        self.folder = os.path.join(folder, kind)
        os.makedirs(self.folder)
        self.storage_procs = []
        self.zeo = self.pg = None
        port = free_pair()
        if kind == 'file':
            self.uri = None
            self.apps = [AppServer(self.folder, 'app1', port)]
        elif kind == 'zeo':
            from tests.support.zeo import ZeoServer
            self.zeo = ZeoServer(pathlib.Path(self.folder))
            zport = self.zeo.port
            self.storage_procs = [self.zeo.proc.pid]
            self.uri = lambda name: 'zeo://127.0.0.1:%d?blob_dir=%s&shared_blob_dir=false' % (
                zport, os.path.join(self.folder, name, 'blob-cache'))
        else:
            from tests.support.postgres import PostgresServer
            # PostgreSQL's own defaults; postgres-async: commits do not wait for the WAL
            # to reach the disk (a crash loses the last moment's, corrupts nothing).
            self.pg = PostgresServer(settings={} if kind == 'postgres' else {
                'synchronous_commit': 'off'}).start()
            self.pg.create_database('bench')
            self.storage_procs = [self.pg.process.pid]
            self.uri = lambda name: self.pg.uri(
                'bench', blob_dir=os.path.join(self.folder, name, 'blob-cache'),
                shared_blob_dir='false')
        if kind != 'file':
            self.apps = [AppServer(self.folder, name, port + i, self.uri(name))
                         for i, name in enumerate(('app1', 'app2'))]
        try:
            self.apps[0].admin('adduser', 'bench', stdin='bench password\n')
            self.token = self.apps[0].admin('token', 'bench').strip().splitlines()[-1]
            for app in self.apps:
                app.start()
        except BaseException:
            self.stop()
            raise
        time.sleep(8)  # the fork servers warm up and fork their spares

    def stop_apps(self):
        for app in self.apps:
            app.stop()

    def stop(self):
        try:
            self.stop_apps()
        finally:  # the storage server stops whatever happened
            if self.zeo is not None:
                self.zeo.stop()
            if self.pg is not None:
                self.pg.stop()

    def open_storage(self):
        """The storage, opened for counting transactions (app servers stopped)."""
        from zodburi import resolve_uri
        if self.pg is not None:
            factory, _ = resolve_uri(self.pg.uri('bench'))
            return factory()
        from ZODB.FileStorage import FileStorage
        path = os.path.join(self.folder, 'app1' if self.kind == 'file' else '', 'Data.fs')
        return FileStorage(path, read_only=True)

    def pg_transactions(self):
        """PostgreSQL's count of transactions (commits and rollbacks) in the database."""
        if self.pg is None:
            return None
        import psycopg2
        conn = psycopg2.connect(self.pg.dsn)
        try:
            with conn.cursor() as cursor:
                cursor.execute("SELECT xact_commit + xact_rollback FROM pg_stat_database "
                               "WHERE datname = 'bench'")
                return cursor.fetchone()[0]
        finally:
            conn.close()

    def cpu_groups(self):
        """{group: [psutil.Process]}: app servers, their Sage processes, the storage."""
        groups = {'app servers': [], 'Sage processes': [], 'storage server': []}
        for app in self.apps:
            p = psutil.Process(app.proc.pid)
            groups['app servers'].append(p)
            groups['Sage processes'] += p.children(recursive=True)
        for pid in self.storage_procs:
            p = psutil.Process(pid)
            groups['storage server'] += [p] + p.children(recursive=True)
        return groups


def cpu_seconds(groups):
    out = {}
    for name, procs in groups.items():
        total = 0.0
        for p in procs:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        out[name] = total
    return out


def throughput(engine, seconds, warmup=1.0):
    class Server:
        pass
    servers = []
    for app in engine.apps:
        s = Server()
        s.port, s.token = app.port, engine.token
        servers.append(s)
    sessions = [SagenbSession(servers[i % len(servers)], typeset=False)
                for i in range(CLIENTS)]
    for session in sessions:
        session.execute('1+1')
    groups = engine.cpu_groups()
    timed = [[] for _ in sessions]
    begin = time.perf_counter()
    measured = begin + warmup
    stop = measured + seconds
    marks = {}

    def mark():
        time.sleep(max(0.0, measured - time.perf_counter()))
        marks['cpu0'], marks['t0'], marks['wall0'] = cpu_seconds(groups), \
            time.perf_counter(), time.time()
        marks['pg0'] = engine.pg_transactions()
        time.sleep(max(0.0, stop - time.perf_counter()))
        marks['cpu1'], marks['t1'], marks['wall1'] = cpu_seconds(groups), \
            time.perf_counter(), time.time()
        marks['pg1'] = engine.pg_transactions()
        marks['load'] = os.getloadavg()

    def loop(i):
        while time.perf_counter() < stop:
            started = time.perf_counter()
            sessions[i].execute('1+1')
            timed[i].append((started, time.perf_counter() - started))

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(CLIENTS)]
    threads.append(threading.Thread(target=mark))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flat = [lat for cells in timed for started, lat in cells if measured <= started < stop]
    for session in sessions:
        session.close()
    span = marks['t1'] - marks['t0']
    busy = {k: (marks['cpu1'][k] - marks['cpu0'][k]) / span for k in marks['cpu0']}
    if marks['pg0'] is not None:
        busy['PostgreSQL transactions/s (reads included)'] = \
            (marks['pg1'] - marks['pg0']) / span
    return len(flat) / seconds, flat, busy, (marks['wall0'], marks['wall1']), marks['load']


def commits_between(storage, start, end):
    """Transactions committed between the wall-clock times ``start`` and ``end``."""
    from persistent.TimeStamp import TimeStamp
    from ZODB.utils import u64

    def tid_at(t):
        gm = time.gmtime(t)
        return TimeStamp(*gm[:5], gm[5] + (t % 1)).raw()
    first, last = tid_at(start), tid_at(end)
    count = 0
    for txn in storage.iterator(first, last):
        if u64(first) <= u64(txn.tid) <= u64(last):
            count += 1
    return count


def synthetic_commits(engine, seconds=5.0, threads=8):
    """Commits/s of small changes (one object per thread, ~1 kB) through one database
    in this process, the app servers stopped."""
    import transaction
    from persistent.mapping import PersistentMapping
    from ZODB import DB
    from zodburi import resolve_uri
    if engine.kind == 'file':
        from ZODB.FileStorage import FileStorage
        storage = FileStorage(os.path.join(engine.folder, 'synthetic.fs'))
    else:
        uri = engine.uri('synthetic')
        factory, _ = resolve_uri(uri)
        storage = factory()
    db = DB(storage, pool_size=threads + 1)
    keys = ['synthetic-%d' % i for i in range(threads)]
    with db.transaction() as conn:  # the objects first, in one commit
        for key in keys:
            conn.root()[key] = PersistentMapping()
    counts = [0] * threads
    stop = None

    def start():
        nonlocal stop
        stop = time.perf_counter() + seconds
    barrier = threading.Barrier(threads, action=start)

    def work(i):
        tm = transaction.TransactionManager(explicit=True)
        conn = db.open(transaction_manager=tm)
        key = keys[i]
        barrier.wait()  # the last one sets the end
        n = 0
        while time.perf_counter() < stop:
            tm.begin()
            box = conn.root()[key]
            box['text'] = 'x' * 1000
            box['n'] = n
            tm.commit()
            n += 1
        counts[i] = n
        conn.close()

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    db.close()
    return sum(counts) / seconds


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--seconds', type=float, default=15)
    parser.add_argument('--engines', default='file,zeo,postgres,postgres-async')
    args = parser.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory() as folder:
        for kind in args.engines.split(','):
            engine = Engine(kind, folder)
            try:
                rate, lat, busy, window, load = throughput(engine, args.seconds)
                engine.stop_apps()
                storage = engine.open_storage()
                try:
                    commits = commits_between(storage, *window) / (window[1] - window[0])
                finally:
                    storage.close()
                r = rows[kind] = {
                    'app servers': len(engine.apps),
                    '16 clients: cells/s': rate,
                    '16 clients: p50 (ms)': pct(lat, 50) * 1000,
                    '16 clients: p99 (ms)': pct(lat, 99) * 1000,
                    'commits/s during the run': commits,
                    'cells per commit': rate / commits if commits else float('nan'),
                }
                for name, cores in busy.items():
                    r[name if name.startswith('PostgreSQL') else
                      'CPU busy: %s (cores)' % name] = cores
                r['load average (1 min) at the end'] = load[0]
                r['storage alone: commits/s, 8 threads'] = synthetic_commits(engine)
                print(kind, {k: round(v, 2) for k, v in r.items()}, flush=True)
            finally:
                engine.stop()
    names = list(rows)
    print()
    print('| measure | ' + ' | '.join(names) + ' |')
    print('|---|' + '---|' * len(names))
    keys = []
    for n in names:
        keys += [k for k in rows[n] if k not in keys]
    for key in keys:
        print('| %s | %s |' % (key, ' | '.join(
            '%.1f' % rows[n][key] if key in rows[n] else 'n/a' for n in names)))
    print()
    print('machine: %d cores, %.0f GB, %s; load average before: %s' % (
        psutil.cpu_count(), psutil.virtual_memory().total / 2 ** 30,
        ' '.join(os.uname()[0:3:2]), os.getloadavg()))


if __name__ == '__main__':
    main()
