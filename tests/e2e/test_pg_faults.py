"""Faults under load on PostgreSQL (issue 23): a real PostgreSQL from Debian's binaries,
two real ``pserve`` app servers on it through RelStorage (blobs in the database), real
Sage, and the simulated users of tests/support/load.py, half on each app server.  The
same checks as tests/e2e/test_faults.py for ZEO: no 500s, a clear message where users
were hurt, nobody else hurt, everything back without anyone doing anything, and here
the commit news between the app servers (workers/news.py ``Poller``) back too."""
import os
import time

import pytest

from sagenb_pyramid import outages

from ..support.load import (Load, User, add_users, cells_of, describe, everyone_completed,
                            health_of)
from ..support.postgres import blob_cache_uri
from ..support.server import Server, free_port
from ..support.zeo import SECRET

pytestmark = pytest.mark.usefixtures('cheap_password_hashes')

USERS = 20
OUTAGE = 5.0  # seconds PostgreSQL stays down
# Seconds between a cell's end committed through one app server and a poll waiting on
# the other answering (POLL_INTERVAL is 0.1 s; the machine is shared).
NEWS_BOUND = 2.0


def app_server(pg, db, tmp_path, name, **more):
    folder = tmp_path / name
    os.makedirs(folder, exist_ok=True)
    env = {'SAGENB_ZODB_URI': blob_cache_uri(pg, db, folder), 'SAGENB_SECRET': SECRET,
           'SAGENB_WORKERS_SERVER_NAME': name, 'SAGENB_WORKERS_HEARTBEAT': '1',
           'SAGENB_WORKERS_SPARE': '0', 'SAGENB_HEALTH_MIN_FREE_MB': '1'}
    env.update(more)
    return Server(folder, free_port(), env=env)


def class_on_two_servers(pg, tmp_path):
    db = pg.create_database('faults')
    logins = ['u%02d' % i for i in range(USERS)]
    tokens = add_users(blob_cache_uri(pg, db, tmp_path / 'setup'), logins)
    one = app_server(pg, db, tmp_path, 'app1')
    two = app_server(pg, db, tmp_path, 'app2')
    half = USERS // 2
    load = Load({login: (tokens[login], (one if i < half else two).url)
                 for i, login in enumerate(logins)})
    return db, one, two, load, logins[:half], logins[half:]


def live_across(load, login, first, second):
    """A cell of ``login`` evaluated through app server ``first`` while a poll waits on
    ``second``: its outputs stream there as it runs, and its end arrives within
    NEWS_BOUND of being committed.  Returns that latency."""
    user = load.by_login[login]
    there = User(load, login, user.token, second.url)
    here = User(load, login, user.token, first.url)
    status, cell = here.request('POST', user.ws + 'cells',
                                {'input': 'for i in range(3): print(i); sleep(0.5r)'})
    assert status == 201, cell
    url = '%scells/%d' % (user.ws, cell['id'])
    version = there.request('GET', url)[1]['version']
    status, answer = here.request('POST', url + '/evaluate', {'wait': 0})
    assert status == 200, answer
    seen = []
    deadline = time.monotonic() + 30
    while not seen or seen[-1][1]['status'] not in ('done', 'error'):
        assert time.monotonic() < deadline, seen
        status, answer = there.request('GET', '%s?since=%d&wait=10' % (url, version))
        assert status == 200, answer
        version = answer['version']
        seen.append((time.time(), answer))
    texts = [''.join(o.get('text', '') for o in a['outputs']) for _, a in seen]
    assert texts[-1] == '0\n1\n2\n' and seen[-1][1]['status'] == 'done', texts
    assert any(a['status'] == 'running' and t in ('0\n', '0\n1\n')
               for (_, a), t in zip(seen, texts, strict=True)), texts
    latency = seen[-1][0] - seen[-1][1]['finished']
    assert latency < NEWS_BOUND, latency
    here.close_all()
    there.close_all()
    return latency


def test_postgres_restarted_then_an_app_server_killed_under_load(tmp_path,
                                                                 restartable_postgres):
    """Two app servers (each with its worker host) on PostgreSQL, half the class on each,
    and two faults one after the other under the same load.

    PostgreSQL restarted: requests during the outage get a clear 503 within a bound, on
    both app servers; /health says "database"; once it is back everything works again by
    itself (RelStorage and the commit news poller reconnect), live outputs cross the app
    servers again, and nothing that was committed is lost.

    Then an app server killed: the other's users go on; the killed one's busy cells read
    as lost; its users, sent to the other (a load balancer would), get results there;
    restarted, it serves again, with live outputs crossing to the other."""
    pg = restartable_postgres
    db, one, two, load, of_one, of_two = class_on_two_servers(pg, tmp_path)
    again = None
    try:
        load.start()
        load.wait_for(everyone_completed(load, 0), 90, 'a first result for everyone')
        live_across(load, of_one[0], one, two)
        done_before = {u: len(load.completed(users={u})) for u in load.by_login}

        # 1. PostgreSQL away for OUTAGE seconds.
        down = load.now()  # the fast shutdown cuts connections before it returns
        pg.halt()
        time.sleep(1.0)
        for server in (one, two):
            started = time.monotonic()
            status, health = health_of(server.url)
            assert status == 503 and any(p.startswith('database: ')
                                         for p in health['problems']), health
            assert time.monotonic() - started < 10
        time.sleep(max(0.0, OUTAGE - (load.now() - down)))
        pg.start()
        up = load.now()
        load.wait_for(everyone_completed(load, up + 0.5), 60,
                      'everyone to get results again after the outage')
        for server in (one, two):
            assert health_of(server.url)[1]['status'] == 'ok'
        # Both ways, with the users still at work.
        live_across(load, of_two[0], two, one)
        live_across(load, of_one[1], one, two)
        time.sleep(2)

        # 2. App server one killed (SIGKILL) with a cell running on its host.
        victim = load.by_login[of_one[0]]
        status, cell = victim.request('POST', victim.ws + 'cells', {'input': 'sleep(60r)'})
        slow = cell['id']
        victim.request('POST', '%scells/%d/evaluate' % (victim.ws, slow), {'wait': 0})
        load.wait_for(lambda: victim.request('GET', '%scells/%d' % (victim.ws, slow))[1]
                      .get('status') == 'running', 30, 'the slow cell to run')
        one.kill()
        killed = load.now()
        for login in of_one:
            load.by_login[login].switch(two.url)
        load.wait_for(lambda: victim.request('GET', '%scells/%d' % (victim.ws, slow))[1]
                      .get('status') == 'error', 15, 'the busy cell to be marked lost')
        lost = victim.request('GET', '%scells/%d' % (victim.ws, slow))[1]
        assert lost['outputs'][-1]['ename'] == 'WorkerLost', lost
        load.wait_for(everyone_completed(load, killed + 0.5, of_one), 60,
                      'the users of the killed app server to get results on the other')
        again = app_server(pg, db, tmp_path, 'app1')
        for login in of_one:
            load.by_login[login].switch(again.url)
        back = load.now()
        load.wait_for(everyone_completed(load, back + 0.5, of_one), 60,
                      'the restarted app server to serve its users again')
        live_across(load, of_two[0], two, again)
        time.sleep(2)
    finally:
        load.stop()
    try:
        def settled():
            return all(c['status'] not in ('queued', 'running')
                       for u in load.by_login for c in cells_of(load.by_login[u]))
        load.wait_for(settled, 30, 'every cell to settle')
        # Nothing committed is lost: every answer a user got is in the database.
        for login, user in load.by_login.items():
            done = [c for c in cells_of(user) if c['status'] == 'done']
            assert len(done) >= len(load.completed(users={login})) >= done_before[login]
    finally:
        one.kill()
        two.kill()
        if again is not None:
            again.kill()
    assert load.server_errors() == [], describe(load.server_errors())
    failures = load.failures()
    outage = [r for r in failures if r.at < killed - 1]
    after_kill = [r for r in failures if r.at >= killed - 1]
    # The outage's: answered once it had begun (a request may start before it: an
    # evaluation waits for its cell), started before it was long over, and all 503
    # "the database is unavailable" within a bound.
    outside = [r for r in outage if not (r.at + r.seconds >= down and r.at <= up + 10)]
    assert outside == [], 'outage from %.1f to %.1f:\n%s' % (down, up, describe(outside))
    for record in outage:
        assert record.status == 503 and record.message == outages.MESSAGES['database'], \
            describe([record])
        assert record.seconds < 10, describe([record])
    assert {r.user for r in outage} & set(of_one) and {r.user for r in outage} & set(of_two), \
        'a 5 s outage went unnoticed on an app server: the test did not test it'
    # The kill's: only the killed server's users, and only as a kill hurts.
    assert [r for r in after_kill if r.user in of_two] == [], describe(after_kill)
    assert load.completed(since=killed, users=of_two)
    for record in after_kill:
        assert record.status == 0 or \
            (record.status == 200 and record.end in ('WorkerLost', 'NotRun')) or \
            (record.status == 503 and 'app1' in record.message), describe([record])
