"""Faults under load (issue 23): real ZEO, real ``pserve`` app servers and
``sagenb-worker`` hosts, real Sage, and simulated users (tests/support/load.py) who
evaluate cells all along.  Each test breaks one part while the users work and checks
what they saw: no 500s, a clear message where they were hurt, nobody else hurt, and
everything back without anyone doing anything.  The 200-user runs: bench/faults.py.
"""
import os
import signal
import time

import pytest

from sagenb_pyramid import outages

from ..support.load import (Load, add_users, check_health_says_database_away,
                            check_nothing_lost, check_outage_then_kill, describe,
                            everyone_completed, health_of, kill_an_app_server, placements)
from ..support.server import Server, free_port
from ..support.zeo import WorkerHost, app_env, zeo_uri

pytestmark = pytest.mark.usefixtures('cheap_password_hashes')

USERS = 20


def app_server(tmp_path, zeo_port, name, **more):
    folder = tmp_path / name
    os.makedirs(folder, exist_ok=True)
    return Server(folder, free_port(), env=app_env(tmp_path, zeo_port, name, **more))


def database(tmp_path, zeo_port):
    from sagenb_pyramid import db_from_uri
    return db_from_uri(zeo_uri(tmp_path, zeo_port, 'test'), 'unnamed', {})


# -- 1. a worker host killed -------------------------------------------------------------
def test_a_worker_host_killed_under_load(tmp_path, restartable_zeo):
    """Its worksheets start fresh on the other host at their next evaluation, its busy
    cells end as lost, the other host's users go on as if nothing happened."""
    port = restartable_zeo.port
    logins = ['u%02d' % i for i in range(USERS)]
    tokens = add_users(zeo_uri(tmp_path, port, 'setup'), logins + ['watcher'])
    host_a = WorkerHost(tmp_path, port, 'host-a')
    host_b = None
    app = app_server(tmp_path, port, 'app1', SAGENB_WORKERS_EMBEDDED='false')
    db = database(tmp_path, port)
    load = Load({login: (tokens[login], app.url) for login in logins})
    try:
        # Half the class on host A, then host B comes and takes the other half (a host's
        # count of processes is as fresh as its heartbeat: arrivals at once would all go
        # to one host).
        load.start(logins[:USERS // 2])
        load.wait_for(everyone_completed(load, 0, logins[:USERS // 2]), 90,
                      'a first result for the first half')
        host_b = WorkerHost(tmp_path, port, 'host-b')
        time.sleep(1.5)  # its first heartbeat
        load.start()
        load.wait_for(everyone_completed(load, 0), 90, 'a first result for everyone')
        placed = placements(db, logins)
        on_a = sorted(u for u, host in placed.items() if host == 'host-a')
        on_b = sorted(u for u, host in placed.items() if host == 'host-b')
        assert on_a and on_b and len(on_a) + len(on_b) == USERS, placed
        # A variable in a worksheet of host A, and a cell running there when it dies.
        victim = load.by_login[on_a[0]]
        status, cell = victim.request('POST', victim.ws + 'cells',
                                      {'input': 'before_kill = 1; sleep(60r)'})
        assert status == 201
        slow = cell['id']
        assert victim.request('POST', '%scells/%d/evaluate' % (victim.ws, slow),
                              {'wait': 0})[0] == 200
        load.wait_for(lambda: victim.request('GET', '%scells/%d' % (victim.ws, slow))[1]
                      .get('status') == 'running', 30, 'the slow cell to run')

        host_a.stop(signal.SIGKILL)
        killed = load.now()
        # Within three heartbeats (1 s each) its busy cell reads as lost, with why.
        load.wait_for(lambda: victim.request('GET', '%scells/%d' % (victim.ws, slow))[1]
                      .get('status') == 'error', 15, 'the busy cell to be marked lost')
        lost = victim.request('GET', '%scells/%d' % (victim.ws, slow))[1]
        assert lost['outputs'][-1]['ename'] == 'WorkerLost', lost
        assert lost['outputs'][-1]['evalue'].startswith('lost: the worker host host-a stopped')
        # Every user of host A gets results again (on host B, in a fresh process).
        load.wait_for(everyone_completed(load, killed, on_a), 60,
                      'the users of the killed host to get results again')
        after = placements(db, logins)
        assert all(after[u] == 'host-b' for u in on_a), after
        status, cell = victim.request('POST', victim.ws + 'cells', {'input': 'before_kill'})
        fresh = victim.request('POST', '%scells/%d/evaluate' % (victim.ws, cell['id']),
                               {'wait': 30})[1]
        assert fresh['outputs'][-1]['ename'] == 'NameError', fresh
        time.sleep(2)
    finally:
        load.stop()
        app.kill()
        host_a.stop(signal.SIGKILL)
        if host_b is not None:
            host_b.stop()
        db.close()
    assert load.server_errors() == [], describe(load.server_errors())
    # The users of host B never noticed.
    assert load.failures(users=on_b) == [], describe(load.failures(users=on_b))
    assert load.completed(since=killed, users=on_b)
    # Those of host A: their cells in flight were lost, or their evaluations were
    # refused with a 503 naming the host while its last heartbeat was fresh.
    for record in load.failures(users=on_a):
        assert record.at >= killed - 1, describe([record])
        assert (record.status == 200 and record.end in ('WorkerLost', 'NotRun')) or \
            (record.status == 503 and 'host-a' in record.message), describe([record])


# -- 2. the ZEO server restarted, then an app server killed -------------------------------
OUTAGE = 5.0  # seconds the ZEO server stays down


def test_the_zeo_server_restarted_then_an_app_server_killed_under_load(tmp_path,
                                                                        restartable_zeo):
    """Two app servers (each with its worker host) over ZEO, half the class on each, and
    two faults one after the other under the same load.

    ZEO restarted: requests during the outage get a clear 503 within a bound on both app
    servers; /health says "database"; once ZEO is back everything works again by itself,
    and nothing that was committed is lost (the output store kept the outputs of the
    running cells).

    Then an app server killed: the other's users go on; the killed one's busy cells read
    as lost; its users, sent to the other (a load balancer would), get results there;
    restarted, it serves again."""
    port = restartable_zeo.port
    logins = ['u%02d' % i for i in range(USERS)]
    tokens = add_users(zeo_uri(tmp_path, port, 'setup'), logins)
    one = app_server(tmp_path, port, 'app1')
    two = app_server(tmp_path, port, 'app2')
    half = USERS // 2
    of_one, of_two = logins[:half], logins[half:]
    load = Load({login: (tokens[login], (one if i < half else two).url)
                 for i, login in enumerate(logins)})
    again = None
    try:
        load.start()
        load.wait_for(everyone_completed(load, 0), 90, 'a first result for everyone')
        done_before = {u: len(load.completed(users={u})) for u in logins}

        # 1. ZEO away for OUTAGE seconds.
        restartable_zeo.stop()
        down = load.now()
        time.sleep(1.0)
        check_health_says_database_away(one, two)
        time.sleep(max(0.0, OUTAGE - (load.now() - down)))
        restartable_zeo.start()
        up = load.now()
        load.wait_for(everyone_completed(load, up + 0.5), 60,
                      'everyone to get results again after the outage')
        for server in (one, two):
            assert health_of(server.url)[1]['status'] == 'ok'
        time.sleep(2)

        # 2. App server one killed (SIGKILL) with a cell running on its host.
        killed, again = kill_an_app_server(load, one, two, of_one,
                                           lambda: app_server(tmp_path, port, 'app1'))
        time.sleep(2)
    finally:
        load.stop()
    try:
        check_nothing_lost(load, done_before)
    finally:
        one.kill()
        two.kill()
        if again is not None:
            again.kill()
    # The outage's failures: within it, give or take a second.
    check_outage_then_kill(load, lambda r: down - 1 <= r.at <= up + 10, killed,
                           of_one, of_two, outages.MESSAGES['database'])
