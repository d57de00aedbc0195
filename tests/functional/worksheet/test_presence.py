"""Presence (issue 21): ``POST <worksheet>/presence`` (heartbeats, "gone"), ``DELETE
<worksheet>/presence?session=``, the ``presence`` list and ``presence_stamp`` of the
``?since=`` answers, expiry after 60 s (the service's clock moved by the test), who may,
and the ``?since=&wait=&presence=`` wait woken by a change of presence, on one app
server and across two over ZEO.

olivia owns the worksheet; carl is a collaborator, vera a viewer, oscar a stranger.
Requests use API tokens as scripts do.
"""
import threading
import time

import pytest
import webtest

from sagenb_pyramid.resources import presence as presence_resource
from sagenb_pyramid.services import presence as presence_service

from ...conftest import Api, zeo_server  # noqa: F401
from ...support.zeo import app_server

pytestmark = pytest.mark.usefixtures('cheap_password_hashes')

PEOPLE = ('olivia', 'carl', 'vera', 'oscar')


class Room:
    def __init__(self, nb, app=None, apis=None):
        self.nb = nb
        self.app = app or webtest.TestApp(nb.app, extra_environ={'HTTP_HOST': 'localhost:80'})
        if apis is None:
            with nb.transaction() as root:
                for login in PEOPLE:
                    user = root.add_user(login)
                    user.fullname = {'carl': 'Carl <b>Gauß</b>'}.get(login, '')
            apis = {name: Api(self.app, nb.token(name)) for name in PEOPLE}
        self.api = apis
        self.ws = None

    def make_worksheet(self):
        url = self.api['olivia'].post('/home/olivia/', {'name': 'room'}, status=201)['url']
        self.ws = url.replace('http://localhost', '')
        self.app.put_json(self.ws + 'sharing', {'collaborators': ['carl'],
                                                'viewers': ['vera']},
                          headers=self.api['olivia'].headers, status=200)
        self.cells = [self.api['olivia'].post(self.ws + 'cells/', {'input': str(i)},
                                              status=201)['id'] for i in range(2)]
        return self

    def beat(self, who, session, cell=None, status=200, **extra):
        return self.api[who].post(self.ws + 'presence', {'session': session, 'cell': cell,
                                                         **extra}, status=status)

    def since(self, who='olivia', **params):
        version = self.api[who].get(self.ws)['version']
        return self.api[who].get(self.ws, since=str(version), **params)

    def listed(self, who='olivia', **params):
        answer = self.since(who, **params)
        return {(e['session'], e['user'], e['cell']) for e in answer['presence']}


@pytest.fixture
def clock(monkeypatch):
    now = [time.time()]
    monkeypatch.setattr(presence_service, 'clock', lambda: now[0])
    return now


@pytest.fixture
def room(notebook):
    return Room(notebook).make_worksheet()


def test_heartbeats_list_who_is_here_and_in_which_cell(room):
    a, b = room.cells
    answer = room.beat('olivia', 'olivia-page-1', a)
    assert [(e['user'], e['cell'], e.get('self')) for e in answer['presence']] == [
        ('olivia', a, True)]
    room.beat('carl', 'carl-page-1', b)
    # A viewer appears, never in a cell (a viewer changes none).
    room.beat('vera', 'vera-page-1', b)
    answer = room.since('carl', session='carl-page-1')
    entries = {e['user']: e for e in answer['presence']}
    assert set(entries) == {'olivia', 'carl', 'vera'}
    assert (entries['olivia']['cell'], entries['carl']['cell'], entries['vera']['cell']) == \
        (a, b, None)
    # Display names as they are (the page escapes them), the login when there is none.
    assert entries['carl']['name'] == 'Carl <b>Gauß</b>'
    assert entries['olivia']['name'] == 'olivia'
    assert [e['user'] for e in answer['presence'] if e.get('self')] == ['carl']
    for login, entry in entries.items():
        assert entry['color'] == presence_service.color_of(login)
        assert entry['session'] == '%s-page-1' % login
        assert time.time() - 5 < entry['seen'] <= time.time()
    # Without session=: every page of the caller is "self".
    room.beat('carl', 'carl-page-2', a)
    mine = [e['session'] for e in room.since('carl')['presence'] if e.get('self')]
    assert sorted(mine) == ['carl-page-1', 'carl-page-2']
    # The whole worksheet (since ahead of its version) has it too.
    full = room.api['carl'].get(room.ws, since='999999')
    assert full['full'] is True and len(full['presence']) == 4
    assert full['presence_stamp'] == answer['presence_stamp'] + 1


def test_the_stamp_grows_with_changes_of_the_list_not_with_heartbeats(room, clock):
    a, b = room.cells
    start = room.since()['presence_stamp']
    assert start == 0 and room.since()['presence'] == []
    stamps = [room.beat('olivia', 'olivia-page-1', a)['presence_stamp']]
    clock[0] += 5
    stamps.append(room.beat('olivia', 'olivia-page-1', a)['presence_stamp'])
    clock[0] += 30  # past the refresh: its time is rewritten, the list is the same
    stamps.append(room.beat('olivia', 'olivia-page-1', a)['presence_stamp'])
    assert stamps == [1, 1, 1]
    assert room.since()['presence'][0]['seen'] == clock[0]
    assert room.beat('olivia', 'olivia-page-1', b)['presence_stamp'] == 2
    assert room.beat('carl', 'carl-page-1', None)['presence_stamp'] == 3
    # A heartbeat is no change of content: the worksheet's version stays.
    version = room.api['olivia'].get(room.ws)['version']
    room.beat('olivia', 'olivia-page-1', a)
    assert room.api['olivia'].get(room.ws)['version'] == version


def test_a_page_not_heard_of_for_60_seconds_is_gone(room, clock):
    a, _ = room.cells
    room.beat('olivia', 'olivia-page-1', a)
    clock[0] += 30
    room.beat('carl', 'carl-page-1', a)
    stamp = room.since()['presence_stamp']
    clock[0] += 29.5
    assert room.listed() == {('olivia-page-1', 'olivia', a), ('carl-page-1', 'carl', a)}
    clock[0] += 1  # olivia's page: 60.5 s since its heartbeat
    answer = room.since('carl')
    assert [e['session'] for e in answer['presence']] == ['carl-page-1']
    assert answer['presence_stamp'] == stamp + 1
    # Pruned at the next write: nothing more changes for the clients.
    clock[0] += 25
    assert room.beat('carl', 'carl-page-1', a)['presence_stamp'] == stamp + 1
    with room.nb.transaction() as root:
        ws = root.user_by_login('olivia')[room.ws.rstrip('/').rsplit('/', 1)[1]]
        assert list(ws.presence.sessions) == ['carl-page-1']
    clock[0] += 61
    assert room.since()['presence'] == []


def test_a_page_that_goes_is_gone_at_once(room):
    a, _ = room.cells
    room.beat('olivia', 'olivia-page-1', a)
    room.beat('carl', 'carl-page-1', a)
    room.beat('carl', 'carl-page-2', None)
    stamp = room.since()['presence_stamp']
    answer = room.beat('carl', 'carl-page-1', gone=True)
    assert {e['session'] for e in answer['presence']} == {'olivia-page-1', 'carl-page-2'}
    assert answer['presence_stamp'] == stamp + 1
    answer = room.api['carl'].delete(room.ws + 'presence?session=carl-page-2')
    assert [e['session'] for e in answer['presence']] == ['olivia-page-1']
    assert answer['presence_stamp'] == stamp + 2
    # Gone twice (a beacon after an expiry): nothing to do, no error.
    assert room.api['carl'].delete(room.ws + 'presence?session=carl-page-2')[
        'presence_stamp'] == stamp + 2


def test_who_may(room):
    a, _ = room.cells
    room.beat('carl', 'carl-page-1', a)
    stamp = room.since()['presence_stamp']
    # A stranger cannot tell the worksheet is there.
    assert 'error' in room.beat('oscar', 'oscar-page-1', a, status=404)
    room.api['oscar'].delete(room.ws + 'presence?session=carl-page-1', status=404)
    # Someone else's page id: 403, nothing changes (not even for the worksheet's owner).
    taken = room.beat('olivia', 'carl-page-1', None, status=403)
    assert "another user's" in taken['error']
    room.beat('vera', 'carl-page-1', gone=True, status=403)
    room.api['olivia'].delete(room.ws + 'presence?session=carl-page-1', status=403)
    assert room.listed() == {('carl-page-1', 'carl', a)}
    assert room.since()['presence_stamp'] == stamp
    # No login: 401.
    room.app.post_json(room.ws + 'presence', {'session': 'anon-page-1'}, status=401)


@pytest.mark.parametrize('body', [
    {}, {'session': 'short'}, {'session': 'has space in it'}, {'session': 12345678},
    {'session': 'x' * 65}, {'session': 'page-0001', 'cell': 'one'},
    {'session': 'page-0001', 'cell': -1}, {'session': 'page-0001', 'cell': True},
    {'session': 'page-0001', 'gone': 'yes'}])
def test_bad_heartbeats_are_400_and_change_nothing(room, body):
    before = room.since()
    answer = room.api['carl'].post(room.ws + 'presence', body, status=400)
    assert answer['error']
    after = room.since()
    assert (after['presence'], after['presence_stamp']) == (before['presence'],
                                                            before['presence_stamp'])


@pytest.mark.parametrize('query', [{'presence': 'x'}, {'presence': '-1'},
                                   {'session': 'bad id'}])
def test_bad_presence_or_session_in_since_is_400(room, query):
    answer = room.app.get(room.ws, params={'since': '0', **query}, status=400,
                          headers=room.api['olivia'].headers).json
    assert answer['error']
    room.app.delete(room.ws + 'presence?session=no', status=400,
                    headers=room.api['olivia'].headers)


def test_a_cell_deleted_meanwhile_is_no_cell(room):
    a, b = room.cells
    room.api['olivia'].delete(room.ws + 'cells/%d' % b, status=200)
    assert room.beat('carl', 'carl-page-1', b)['presence'][0]['cell'] is None
    assert room.beat('carl', 'carl-page-1', a)['presence'][0]['cell'] == a


def test_pages_of_one_user_are_bounded(room, monkeypatch):
    monkeypatch.setattr(presence_service, 'MAX_PAGES_PER_USER', 3)
    for i in range(3):
        room.beat('carl', 'carl-page-%d' % i)
    refused = room.beat('carl', 'carl-page-9', status=429)
    assert 'pages' in refused['error']
    assert len(room.since()['presence']) == 3
    room.beat('carl', 'carl-page-1')  # those listed still say they are there
    room.beat('olivia', 'olivia-page-1')  # others are not counted


def test_a_change_of_presence_wakes_the_wait_that_holds_the_stamp(room):
    a, b = room.cells
    room.beat('carl', 'carl-page-1', a)
    held = room.since('carl')
    version, stamp = held['version'], held['presence_stamp']
    answers = {}

    def wait(wait='20', **params):
        started = time.monotonic()
        answer = room.api['carl'].get(room.ws, since=str(version), wait=wait, **params)
        answers[params.get('presence', 'none')] = (answer, time.monotonic() - started)

    holding = threading.Thread(target=wait, kwargs={'presence': str(stamp),
                                                    'session': 'carl-page-1'})
    holding.start()
    time.sleep(0.5)
    moved = time.monotonic()
    room.beat('olivia', 'olivia-page-1', b)
    holding.join(timeout=30)
    answer, _ = answers[str(stamp)]
    assert time.monotonic() - moved < 5
    assert answer['presence_stamp'] == stamp + 1 and answer['cells'] == []
    assert {(e['user'], e['cell']) for e in answer['presence']} == {('carl', a),
                                                                    ('olivia', b)}
    # A heartbeat that changes nothing does not wake it; without presence= no change of
    # presence does.
    for params in ({'presence': str(stamp + 1)}, {}):
        thread = threading.Thread(target=wait, kwargs=dict(params, wait='3'))
        thread.start()
        time.sleep(0.3)
        room.beat('olivia', 'olivia-page-1', b)
        if not params:
            room.beat('olivia', 'olivia-page-2', a)
        thread.join(timeout=30)
        answer, took = answers[params.get('presence', 'none')]
        assert took >= 3, 'the wait ended at a heartbeat (%s)' % params


def test_an_expiry_ends_the_wait(room, monkeypatch):
    monkeypatch.setattr(presence_resource, 'TTL', 1.5)
    a, _ = room.cells
    room.beat('olivia', 'olivia-page-1', a)
    held = room.since('carl')
    started = time.monotonic()
    answer = room.api['carl'].get(room.ws, since=str(held['version']), wait='15',
                                  presence=str(held['presence_stamp']))
    took = time.monotonic() - started
    assert answer['presence'] == [] and answer['presence_stamp'] == held['presence_stamp'] + 1
    assert took < 5, took


def test_heartbeats_through_two_app_servers_over_zeo(tmp_path, zeo_server):  # noqa: F811
    """A client of app server 2 waiting with its stamp wakes at a heartbeat through app
    server 1 (ZEO's invalidations of the stamp), and heartbeats of different pages
    through both at once all commit at the first try (the ZEO server resolves them)."""
    # No retry: a conflict the ZEO server could not resolve would be an error here.
    servers = [app_server(tmp_path, zeo_server, name, **{'retry.attempts': '1'})
               for name in ('app1', 'app2')]
    try:
        one, two = servers
        rooms = [Room(one)]
        rooms.append(Room(two, apis={name: Api(webtest.TestApp(
            two.app, extra_environ={'HTTP_HOST': 'localhost:80'}), two.token(name))
            for name in PEOPLE}))
        rooms[0].make_worksheet()
        rooms[1].ws, rooms[1].cells = rooms[0].ws, rooms[0].cells
        first, second = rooms
        a, b = first.cells
        first.beat('olivia', 'olivia-page-1', a)
        held = second.since('carl')
        answer = {}

        def wait():
            answer['json'] = second.api['carl'].get(
                second.ws, since=str(held['version']), wait='20',
                presence=str(held['presence_stamp']))
            answer['at'] = time.monotonic()

        waiting = threading.Thread(target=wait)
        waiting.start()
        time.sleep(0.5)
        sent = time.monotonic()
        first.beat('olivia', 'olivia-page-1', b)
        waiting.join(timeout=30)
        assert [(e['user'], e['cell']) for e in answer['json']['presence']] == [('olivia', b)]
        print('app2 woken %.1f ms after app1 answered the heartbeat' % (
            (answer['at'] - sent) * 1000))
        assert answer['at'] - sent < 5

        failures = []

        def beat(room, who, count):
            for i in range(count):
                res = room.app.post_json(room.ws + 'presence',
                                         {'session': '%s-page-%d' % (who, i % 3),
                                          'cell': (a, b)[i % 2]},
                                         headers=room.api[who].headers, expect_errors=True)
                if res.status_int != 200:
                    failures.append((who, i, res.status, res.text[:200]))

        threads = [threading.Thread(target=beat, args=(first, 'olivia', 12)),
                   threading.Thread(target=beat, args=(second, 'carl', 12))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert failures == []
        final = {(e['session'], e['cell']) for e in first.since()['presence']}
        assert {s for s, _ in final} == {'olivia-page-%d' % i for i in range(3)} | \
            {'carl-page-%d' % i for i in range(3)}
    finally:
        for nb in servers:
            nb.close()


def test_a_heartbeat_answer_says_how_many_others_are_here_and_the_version(room):
    """What a page alone on the worksheet learns from its heartbeats instead of holding
    a long poll (static/page/live.js): how many other pages are open (the same user's
    other pages too), and the worksheet's version, to ask ``?since=`` when it moved."""
    alone = room.beat('olivia', 'olivia-page-1')
    assert alone['others'] == 0
    assert alone['version'] == room.api['olivia'].get(room.ws)['version']
    assert room.beat('carl', 'carl-page-1')['others'] == 1
    assert room.beat('olivia', 'olivia-page-2')['others'] == 2
    room.api['carl'].patch(room.ws + 'cells/%d' % room.cells[0], {'input': 'x'})
    back = room.beat('olivia', 'olivia-page-1')
    assert back['others'] == 2 and back['version'] == alone['version'] + 1
    room.beat('carl', 'carl-page-1', gone=True)
    assert room.beat('olivia', 'olivia-page-1')['others'] == 1
