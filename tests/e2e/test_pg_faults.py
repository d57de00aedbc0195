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

from ..support.load import (Load, User, add_users, check_health_says_database_away,
                            check_nothing_lost, check_outage_then_kill, everyone_completed,
                            health_of, kill_an_app_server)
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
        check_health_says_database_away(one, two)
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
        killed, again = kill_an_app_server(load, one, two, of_one,
                                           lambda: app_server(pg, db, tmp_path, 'app1'))
        live_across(load, of_two[0], two, again)
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
    # The outage's failures: answered once it had begun (a request may start before it:
    # an evaluation waits for its cell), started before it was long over.
    check_outage_then_kill(load, lambda r: r.at + r.seconds >= down and r.at <= up + 10, killed,
                           of_one, of_two, outages.MESSAGES['database'])
