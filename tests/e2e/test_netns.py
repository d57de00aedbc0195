"""A worker host on "another machine" (issue 23): the app server and ZEO in one network
namespace, a ``sagenb-worker`` in another, joined by a veth pair (tests/support/netns.py),
so cells and their outputs cross a real interface, not loopback.  Simulated users
(tests/support/load.py) evaluate all along, from inside the app server's namespace (as
its load balancer would); the link is cut under them and mended.  Needs root and
iproute2 (CI runs as root): without them the test fails saying what is missing.
"""
import os
import signal
import time

import pytest

from sagenb_pyramid.workers.hosts import MISSED_HEARTBEATS

from ..support import netns
from ..support.load import Load, add_users, describe, everyone_completed, health_of, placements
from ..support.server import BIN, Server, free_port
from ..support.zeo import WorkerHost, ZeoServer, app_env, zeo_uri

pytestmark = pytest.mark.usefixtures('cheap_password_hashes')

USERS = 6
HEARTBEAT = 2  # seconds: "gone" after MISSED_HEARTBEATS (3) of them missed
CONNECT_TIMEOUT = 2  # sagenb.workers.connect_timeout of the app server


def test_a_worker_host_over_a_real_network_cut_and_mended(tmp_path):
    why = netns.missing()
    if why:
        pytest.fail('this test runs a worker host in a network namespace of its own: ' + why)
    link = netns.Link(('app', 'worker'))
    zeo = host = app = load = db = None
    try:
        with link.inside('app'):  # this thread and the simulated users: the app's side
            zeo = ZeoServer(tmp_path / 'zeo', bind='0.0.0.0', command=link.exec_in('app'))
            logins = ['u%02d' % i for i in range(USERS)] + ['prober']
            tokens = add_users(zeo_uri(tmp_path, zeo.port, 'setup'), logins)
            host = WorkerHost(tmp_path, zeo.port, 'far', heartbeat=str(HEARTBEAT),
                              command=link.exec_in('worker'),
                              listen='%s:0' % link.address['worker'],
                              zeo_host=link.address['app'])
            assert host.address.startswith(link.address['worker'] + ':'), host.address
            folder = tmp_path / 'app1'
            os.makedirs(folder)
            app = Server(folder, free_port(), command=link.exec_in('app') + [BIN + '/pserve'],
                         env=app_env(tmp_path, zeo.port, 'app1',
                                     SAGENB_WORKERS_EMBEDDED='false',
                                     SAGENB_WORKERS_CONNECT_TIMEOUT=str(CONNECT_TIMEOUT)))
            from sagenb_pyramid import db_from_uri
            db = db_from_uri(zeo_uri(tmp_path, zeo.port, 'test'), 'unnamed', {})
            load = Load({login: (tokens[login], app.url) for login in logins})
            run(link, host, app, load, db, logins)
    finally:
        if load is not None:
            load.stop()
        if app is not None:
            app.kill()
        if host is not None:
            host.stop(signal.SIGKILL)
        if zeo is not None:
            zeo.stop(signal.SIGKILL)
        if db is not None:
            db.close()
        link.remove()
    assert not link.exists()
    check_records(load, logins)


def run(link, host, app, load, db, logins):
    users, prober = logins[:-1], load.by_login[logins[-1]]
    load.start(users)
    load.wait_for(everyone_completed(load, 0, users), 120, 'a first result for everyone')
    assert set(placements(db, users).values()) == {'far'}
    # The Sage processes run on the other side: they see its interface, not the app's.
    load.start([prober.login])
    assert evaluate(prober, "import os; sorted(os.listdir('/sys/class/net'))") == \
        repr(['lo', link.dev['worker']])
    assert evaluate(prober, 'before_cut = 41; before_cut') == '41'
    received, sent = link.stats('worker')
    time.sleep(1)
    assert link.stats('worker')[0] > received and link.stats('worker')[1] > sent, \
        'no traffic crossed the link while the users evaluated'
    status, health = health_of(app.url)
    assert status == 200 and [(h['name'], h['state']) for h in health['other_hosts']] == \
        [('far', 'alive')], health

    link.down('worker')
    cut = load.now()
    load.state = {'cut': cut}
    # The app server says plainly which host it cannot reach, within the connect timeout.
    started = time.monotonic()
    status, answer = prober.request('POST', prober.ws + 'complete', {'code': 'before_c'})
    took = time.monotonic() - started
    assert status == 503 and 'the worker host far (%s' % link.address['worker'] in \
        answer['error'] and 'cannot be reached' in answer['error'], (status, answer)
    assert took < CONNECT_TIMEOUT + 3, took
    # An evaluation is refused, or the cell handed to it ends as lost, saying so.
    started = time.monotonic()
    status, cell = prober.request('POST', prober.ws + 'cells', {'input': '1 + 1'})
    status, cell = prober.request('POST', '%scells/%d/evaluate' % (prober.ws, cell['id']),
                                  {'wait': 20})
    if status == 503:
        assert 'the worker host far (' in cell['error'], cell
    else:
        assert status == 200 and cell['outputs'][-1]['ename'] == 'WorkerLost', cell
        assert 'the worker host far' in cell['outputs'][-1]['evalue'], cell
    assert time.monotonic() - started < CONNECT_TIMEOUT + 5

    # After three missed heartbeats /health lists it as gone.
    def gone():
        status, health = health_of(app.url)
        return status == 503 and health['other_hosts'][0]['state'] == 'gone' and \
            'worker hosts: none is alive to run cells' in health['problems']
    load.wait_for(gone, MISSED_HEARTBEATS * HEARTBEAT + 10,
                  '/health to list the cut-off host as gone')
    load.state['gone'] = load.now()
    # Not before its heartbeats were missed (the last one came up to one before the cut).
    assert load.now() - cut >= (MISSED_HEARTBEATS - 1) * HEARTBEAT - 0.5
    time.sleep(1)

    link.up('worker')
    mended = load.now()
    load.state['mended'] = mended
    # Its heartbeats resume (the same boot: the host never stopped) and everyone gets
    # results again, on the same processes.
    load.wait_for(lambda: health_of(app.url)[0] == 200, 60, '/health to see the host again')
    status, health = health_of(app.url)
    assert health['other_hosts'][0]['state'] == 'alive', health
    load.wait_for(everyone_completed(load, mended + 0.5, users), 60,
                  'everyone to get results again once the link is back')
    load.state['recovered'] = load.now()
    assert placements(db, users) == {u: 'far' for u in users}
    assert evaluate(prober, 'before_cut + 1') == '42'
    time.sleep(1)


def evaluate(user, code):
    status, cell = user.request('POST', user.ws + 'cells', {'input': code})
    assert status == 201, cell
    status, cell = user.request('POST', '%scells/%d/evaluate' % (user.ws, cell['id']),
                                {'wait': 30})
    assert status == 200 and cell['status'] == 'done', cell
    return cell['outputs'][-1]['data']['text/plain']


def check_records(load, logins):
    """What the simulated users saw: no server failure; trouble only while the link was
    down (and until its heartbeats came back), each said plainly and quickly."""
    assert load.server_errors() == [], describe(load.server_errors())
    state = load.state
    failures = load.failures(users=logins[:-1])
    assert all(state['cut'] - 1 <= r.at <= state['recovered'] for r in failures), \
        describe(failures)
    for record in failures:
        named = 'the worker host far' in record.message
        assert (record.status == 200 and record.end == 'WorkerLost' and named) or \
            (record.status == 503 and named) or \
            (record.status == 409 and 'No worker host is running' in record.message), \
            describe([record])
        assert record.seconds < CONNECT_TIMEOUT + MISSED_HEARTBEATS * HEARTBEAT + 5, \
            describe([record])
