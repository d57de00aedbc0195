"""Live editing (issue 21, server side): the worksheet's ``version``, the cells'
``input_version``, ``GET <worksheet>/?since=&wait=`` (what changed, nothing missed,
nothing twice), and edits of the same worksheet by two and three API clients
(``PATCH .../cells/<id>`` with ``base_version``: different cells both stay, different
lines of one cell merge, the same line is a 409 that changes nothing, a deleted cell a
404 that says so).

olivia owns the worksheet; carl and greta are collaborators.  Requests use API tokens
as scripts do.
"""
import threading
import time

import pytest
import webtest

from sagenb_pyramid.resources import worksheets as worksheet_resources

from ...conftest import Api, zeo_server  # noqa: F401
from ...support.zeo import app_server

pytestmark = pytest.mark.usefixtures('cheap_password_hashes')


class Live:
    def __init__(self, nb):
        self.nb = nb
        self.app = webtest.TestApp(nb.app, extra_environ={'HTTP_HOST': 'localhost:80'})
        for name in ('olivia', 'carl', 'greta'):
            nb.add_user(name)
        self.api = {name: Api(self.app, nb.token(name)) for name in ('olivia', 'carl', 'greta')}
        url = self.api['olivia'].post('/home/olivia/', {'name': 'live'}, status=201)['url']
        self.ws = url.replace('http://localhost', '')
        self.app.put_json(self.ws + 'sharing', {'collaborators': ['carl', 'greta'],
                                                'viewers': []},
                          headers=self.api['olivia'].headers, status=200)

    def get(self, who='olivia', **params):
        return self.api[who].get(self.ws, **params)

    def add(self, text, who='olivia'):
        return self.api[who].post(self.ws + 'cells/', {'input': text}, status=201)['cell']

    def patch(self, who, cell_id, body, status=200):
        return self.api[who].patch(self.ws + 'cells/%d' % cell_id, body, status=status)

    def cell(self, cell_id):
        return self.api['olivia'].get(self.ws + 'cells/%d' % cell_id)


@pytest.fixture
def live(notebook):
    return Live(notebook)


def test_the_version_grows_with_every_change_of_content(live):
    versions = [live.get()['version']]

    def changed():
        versions.append(live.get()['version'])
        assert versions[-1] > versions[-2]

    cell = live.add('1+1')
    changed()
    assert cell['input_version'] == versions[-1]
    other = live.add('2+2')
    changed()
    edited = live.patch('olivia', cell['id'], {'input': '1+2'})
    changed()
    assert edited['input_version'] == versions[-1]
    typed = live.patch('olivia', cell['id'], {'type': 'text'})
    changed()
    assert typed['input_version'] == versions[-1]
    live.api['olivia'].post(live.ws + 'cells/%d/move' % other['id'], {'direction': 'up'})
    changed()
    live.api['olivia'].patch(live.ws, {'name': 'renamed'}, status=200)
    changed()
    live.api['olivia'].patch(live.ws, {'typeset': False}, status=200)
    changed()
    live.api['olivia'].patch(live.ws, {'tags': ['algebra']}, status=200)
    changed()
    live.api['olivia'].delete(live.ws + 'cells/%d' % other['id'], status=200)
    changed()
    # An edit that changes nothing, and clearing a cell with no output, change nothing.
    live.patch('olivia', cell['id'], {'input': '1+2'})
    live.api['olivia'].post(live.ws + 'cells/%d/clear' % cell['id'])
    assert live.get()['version'] == versions[-1]


def test_a_patch_of_the_worksheet_that_changes_nothing_keeps_its_version(live):
    """The same name, settings and tags again, or only the user's own state (their
    listing's archive/trash): no change of content, so no ``since`` answer wakes and
    nothing is sent as changed."""
    olivia = live.api['olivia']
    olivia.patch(live.ws, {'name': 'kept', 'typeset': False, 'tags': ['algebra']},
                 status=200)
    before = live.get()
    for body in ({'name': 'kept'}, {'typeset': False}, {'system': before['system']},
                 {'tags': ['algebra']}, {'name': 'kept', 'typeset': False},
                 {'state': 'archive'}, {'state': 'active'}):
        olivia.patch(live.ws, body, status=200)
        assert live.get()['version'] == before['version'], body
    assert live.get()['modified'] == before['modified']
    # A real change still counts, also when given with unchanged fields.
    olivia.patch(live.ws, {'name': 'kept', 'typeset': True}, status=200)
    assert live.get()['version'] == before['version'] + 1


def test_concurrent_edits_of_different_cells_all_survive(live):
    """Three clients each save 15 edits of their own cell at the same time (real
    threads, one FileStorage): every edit is answered 200 and the last of each stays.
    The worksheet's record, which each edit writes, merges (``resolve_worksheet``); the
    edits keep the worksheet's set of words: two edits adding the same word at once
    still write the same search posting, and one of them is retried."""
    cells = {who: live.add('start', who=who)['id'] for who in ('olivia', 'carl', 'greta')}
    barrier = threading.Barrier(3)
    failures = []

    def edit(who):
        barrier.wait(timeout=10)
        for i in range(15):
            res = live.app.patch_json(live.ws + 'cells/%d' % cells[who],
                                      {'input': '%s = 1%s' % (who, ' ;' * i)},
                                      headers=live.api[who].headers, expect_errors=True)
            if res.status_int != 200:
                failures.append((who, i, res.status, res.text[:200]))

    threads = [threading.Thread(target=edit, args=(who,)) for who in cells]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert failures == []
    for who, cell_id in cells.items():
        assert live.cell(cell_id)['input'] == '%s = 1%s' % (who, ' ;' * 14)


def test_two_clients_editing_different_cells_from_the_same_version(live):
    a, b = live.add('a = 1')['id'], live.add('b = 1')['id']
    seen = {c['id']: c['input_version'] for c in live.get('carl')['cells']}
    live.patch('carl', a, {'input': 'a = 2', 'base_version': seen[a]})
    live.patch('olivia', b, {'input': 'b = 2', 'base_version': seen[b]})
    assert (live.cell(a)['input'], live.cell(b)['input']) == ('a = 2', 'b = 2')


def test_edits_of_different_lines_of_one_cell_merge(live):
    cell = live.add('x = 1\ny = 2\nz = 3')
    base = cell['input_version']
    first = live.patch('carl', cell['id'], {'input': 'x = 10\ny = 2\nz = 3',
                                            'base_version': base})
    merged = live.patch('olivia', cell['id'], {'input': 'x = 1\ny = 2\nz = 30',
                                               'base_version': base})
    assert merged['input'] == 'x = 10\ny = 2\nz = 30'
    assert merged['input_version'] > first['input_version']
    assert live.cell(cell['id'])['input'] == 'x = 10\ny = 2\nz = 30'


def test_three_clients_editing_one_cell_from_one_version(live):
    cell = live.add('a\nb\nc\nd\ne')
    base = cell['input_version']
    live.patch('carl', cell['id'], {'input': 'A\nb\nc\nd\ne', 'base_version': base})
    live.patch('greta', cell['id'], {'input': 'a\nb\nC\nd\ne', 'base_version': base})
    # A line added after the last one (which has no newline) merges too.
    answer = live.patch('olivia', cell['id'], {'input': 'a\nb\nc\nd\ne\nf',
                                               'base_version': base})
    assert answer['input'] == 'A\nb\nC\nd\ne\nf'


def test_edits_of_the_same_line_are_409_and_change_nothing(live):
    cell = live.add('x = 1\ny = 2')
    base = cell['input_version']
    carls = live.patch('carl', cell['id'], {'input': 'x = 1\ny = 20', 'base_version': base})
    version = live.get()['version']
    conflict = live.patch('olivia', cell['id'], {'input': 'x = 1\ny = 200',
                                                 'base_version': base}, status=409)
    assert 'same lines' in conflict['error']
    assert conflict['input'] == 'x = 1\ny = 20'
    assert conflict['input_version'] == carls['input_version']
    assert live.cell(cell['id'])['input'] == 'x = 1\ny = 20'
    assert live.get()['version'] == version
    # Resolved against the current text, the edit goes through.
    resolved = live.patch('olivia', cell['id'], {'input': 'x = 1\ny = 200',
                                                 'base_version': conflict['input_version']})
    assert resolved['input'] == 'x = 1\ny = 200'


def test_without_base_version_the_last_edit_wins_as_before(live):
    cell = live.add('one')
    live.patch('carl', cell['id'], {'input': 'two'})
    assert live.patch('olivia', cell['id'], {'input': 'three'})['input'] == 'three'


def test_a_base_no_longer_kept_merges_with_base_input_or_is_409(live, monkeypatch):
    monkeypatch.setattr(worksheet_resources, 'PAST_INPUTS_KEPT', 2)
    cell = live.add('a\nb\nc')
    base = cell['input_version']
    for text in ('A\nb\nc', 'A1\nb\nc', 'A2\nb\nc'):
        live.patch('carl', cell['id'], {'input': text})
    version = live.get()['version']
    refused = live.patch('olivia', cell['id'], {'input': 'a\nb\nC', 'base_version': base},
                         status=409)
    assert 'no longer kept' in refused['error'] and refused['input'] == 'A2\nb\nc'
    assert live.get()['version'] == version
    merged = live.patch('olivia', cell['id'], {'input': 'a\nb\nC', 'base_version': base,
                                               'base_input': 'a\nb\nc'})
    assert merged['input'] == 'A2\nb\nC'


def test_editing_a_cell_someone_deleted_is_404_saying_so(live):
    keep = live.add('kept')
    gone = live.add('my text')
    live.api['carl'].delete(live.ws + 'cells/%d' % gone['id'], status=200)
    version = live.get()['version']
    answer = live.patch('olivia', gone['id'], {'input': 'my text, edited',
                                               'base_version': gone['input_version']},
                        status=404)
    assert 'cell %d was deleted' % gone['id'] in answer['error']
    assert 'new cell' in answer['error']
    read = live.api['olivia'].get(live.ws + 'cells/%d' % gone['id'], status=404)
    assert read['error'].startswith('cell %d was deleted' % gone['id'])
    assert live.get()['version'] == version
    assert [c['id'] for c in live.get()['cells']] == [0, keep['id']]
    # A cell that never existed stays a plain 404.
    other = live.patch('olivia', 999, {'input': 'x'}, status=404)
    assert 'deleted' not in other['error']


@pytest.mark.parametrize('query', [{'since': '-1'}, {'since': 'x'}, {'since': ''},
                                   {'since': '0', 'wait': 'soon'},
                                   {'since': '0', 'wait': '-1'}])
def test_bad_since_or_wait_is_400(live, query):
    answer = live.api['olivia'].testapp.get(live.ws, params=query, status=400,
                                            headers=live.api['olivia'].headers).json
    assert 'error' in answer


@pytest.mark.parametrize('value', ['x', -1, True, 1.5])
def test_bad_base_version_is_400_and_changes_nothing(live, value):
    cell = live.add('x')
    answer = live.patch('olivia', cell['id'], {'input': 'y', 'base_version': value},
                        status=400)
    assert 'base_version' in answer['error']
    assert live.cell(cell['id'])['input'] == 'x'


def apply(state, answer):
    """A client's copy of the worksheet brought up to date with a ``since`` answer."""
    if answer['full']:
        state['cells'] = {c['id']: c for c in answer['cells']}
    else:
        for cell_id in answer['removed']:
            state['cells'].pop(cell_id, None)
        for cell in answer['cells']:
            state['cells'][cell['id']] = cell
    state['order'] = answer['order']
    state['name'] = answer['name']
    state['version'] = answer['version']


def view(state):
    return state['name'], [(i, state['cells'][i]['type'], state['cells'][i]['input'])
                           for i in state['order']]


def test_since_answers_miss_nothing_and_send_nothing_twice(live):
    whole = live.get('carl')
    state = {'cells': {c['id']: c for c in whole['cells']}, 'order': [],
             'name': whole['name'], 'version': whole['version']}
    first = live.add('1')
    second = live.add('2', who='greta')
    steps = [
        lambda: live.patch('olivia', first['id'], {'input': '1 + 1'}),
        lambda: live.add('3'),
        lambda: live.api['greta'].delete(live.ws + 'cells/%d' % second['id']),
        lambda: live.api['olivia'].patch(live.ws, {'name': 'again'}),
        lambda: live.patch('greta', first['id'], {'type': 'text'}),
        lambda: live.api['olivia'].post(live.ws + 'cells/%d/move' % first['id'],
                                        {'direction': 'up'}),
    ]
    for step in steps:
        before = state['version']
        step()
        answer = live.get('carl', since=str(before))
        assert answer['full'] is False and answer['since'] == before
        assert answer['version'] > before
        apply(state, answer)
        # Asked again from the new version: nothing (nothing is sent twice).
        again = live.get('carl', since=str(state['version']))
        assert (again['cells'], again['removed'], again['version']) == (
            [], [], state['version'])
    now = live.get('carl')
    assert view(state) == (now['name'], [(c['id'], c['type'], c['input'])
                                         for c in now['cells']])
    # From the first version at once: the same view, the deleted cell among "removed".
    caught_up = {'cells': {c['id']: c for c in whole['cells']}, 'order': [], 'name': ''}
    answer = live.get('carl', since=str(whole['version']))
    assert second['id'] in answer['removed']
    apply(caught_up, answer)
    assert view(caught_up) == view(state)
    # Only the cells changed after ``since`` are sent: the last step moved a cell.
    moved = live.get('carl', since=str(state['version'] - 1))
    assert moved['cells'] == [] and moved['order'] == state['order']


def test_since_too_old_for_the_deletion_log_answers_everything(live, monkeypatch):
    monkeypatch.setattr(worksheet_resources, 'REMOVED_KEPT', 2)
    start = live.get()['version']
    ids = [live.add(str(i))['id'] for i in range(4)]
    after_adds = live.get()['version']
    for cell_id in ids[:3]:
        live.api['olivia'].delete(live.ws + 'cells/%d' % cell_id)
    old = live.get(since=str(start))
    assert old['full'] is True
    assert [c['id'] for c in old['cells']] == [0, ids[3]] == old['order']
    # Still within the log: the removals themselves.
    recent = live.get(since=str(after_adds + 1))
    assert recent['full'] is False and recent['removed'] == ids[1:3]
    # A version from the future (a database restored meanwhile): everything too, and
    # at once even when asked to wait; so for one older than the log.
    for since in (live.get()['version'] + 5, start):
        started = time.monotonic()
        assert live.get(since=str(since), wait='10')['full'] is True
        assert time.monotonic() - started < 5


def test_a_wait_without_change_ends_after_wait_seconds(live):
    version = live.get()['version']
    started = time.monotonic()
    answer = live.get(since=str(version), wait='0.6')
    took = time.monotonic() - started
    assert answer['version'] == version and answer['cells'] == [] and answer['removed'] == []
    assert 0.6 <= took < 10


def test_a_change_wakes_the_waiting_clients(live):
    """Two clients wait; a third saves an edit; both answer with it, long before their
    wait is over (measured: printed; bounded generously)."""
    cell = live.add('old')
    version = live.get()['version']
    answers = {}

    def wait(who):
        answers[who] = (live.get(who, since=str(version), wait='20'), time.monotonic())

    threads = [threading.Thread(target=wait, args=(who,)) for who in ('carl', 'greta')]
    for t in threads:
        t.start()
    time.sleep(0.5)
    saved = time.monotonic()
    live.patch('olivia', cell['id'], {'input': 'new'})
    for t in threads:
        t.join(timeout=30)
    for who in ('carl', 'greta'):
        answer, when = answers[who]
        assert [(c['id'], c['input']) for c in answer['cells']] == [(cell['id'], 'new')]
        print('%s woken %.1f ms after the edit was answered' % (who, (when - saved) * 1000))
        assert when - saved < 5


def test_waits_on_the_worksheet_count_against_the_users_cap(tmp_path):
    from ...conftest import Notebook
    nb = Notebook(tmp_path / 'data', **{'sagenb.api.max_waits_per_user': '1'})
    try:
        nb.add_user('olivia')
        app = webtest.TestApp(nb.app, extra_environ={'HTTP_HOST': 'localhost:80'})
        api = Api(app, nb.token('olivia'))
        ws = api.post('/home/olivia/', {'name': 'w'}, status=201)['url'].replace(
            'http://localhost', '')
        version = api.get(ws)['version']
        holding = threading.Thread(target=api.get, args=(ws,),
                                   kwargs={'since': str(version), 'wait': '2'})
        holding.start()
        time.sleep(0.5)
        refused = app.get(ws, params={'since': str(version), 'wait': '2'},
                          headers=api.headers, status=429).json
        assert 'waiting' in refused['error']
        holding.join(timeout=10)
    finally:
        nb.close()


def test_two_app_servers_over_zeo_see_each_others_edits(tmp_path, zeo_server):  # noqa: F811
    """A client of app server 2 waiting on the worksheet wakes at an edit saved through
    app server 1 (ZEO's invalidations are the commit news), and edits of different
    cells of one worksheet through both servers at once all stay (the worksheet's
    record merges in the ZEO server, which imports the same package)."""
    servers = [app_server(tmp_path, zeo_server, name) for name in ('app1', 'app2')]
    try:
        one, two = servers
        for name in ('olivia', 'carl'):
            one.add_user(name)
        apps = [webtest.TestApp(nb.app, extra_environ={'HTTP_HOST': 'localhost:80'})
                for nb in servers]
        olivia = Api(apps[0], one.token('olivia'))
        carl = Api(apps[1], two.token('carl'))
        ws = olivia.post('/home/olivia/', {'name': 'zeo'}, status=201)['url'].replace(
            'http://localhost', '')
        apps[0].put_json(ws + 'sharing', {'collaborators': ['carl'], 'viewers': []},
                         headers=olivia.headers, status=200)
        cells = [olivia.post(ws + 'cells/', {'input': 'x'}, status=201)['id']
                 for _ in range(2)]
        version = olivia.get(ws)['version']
        answer = {}

        def wait():
            answer['json'] = carl.get(ws, since=str(version), wait='20')
            answer['at'] = time.monotonic()

        waiting = threading.Thread(target=wait)
        waiting.start()
        time.sleep(0.5)
        saved = time.monotonic()
        olivia.patch(ws + 'cells/%d' % cells[0], {'input': 'from app1'}, status=200)
        waiting.join(timeout=30)
        assert [c['input'] for c in answer['json']['cells']] == ['from app1']
        print('app2 woken %.1f ms after app1 answered the edit' % (
            (answer['at'] - saved) * 1000))
        assert answer['at'] - saved < 5

        failures = []

        def edit(api, cell_id, who):
            for i in range(10):
                res = api.testapp.patch_json(ws + 'cells/%d' % cell_id,
                                             {'input': '%s = 1%s' % (who, ' ;' * i)},
                                             headers=api.headers, expect_errors=True)
                if res.status_int != 200:
                    failures.append((who, i, res.status))

        threads = [threading.Thread(target=edit, args=(olivia, cells[0], 'olivia')),
                   threading.Thread(target=edit, args=(carl, cells[1], 'carl'))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert failures == []
        final = {c['id']: c['input'] for c in carl.get(ws)['cells']}
        assert (final[cells[0]], final[cells[1]]) == ('olivia = 1' + ' ;' * 9,
                                                      'carl = 1' + ' ;' * 9)
    finally:
        for nb in servers:
            nb.close()


def test_an_offline_client_reconciles_its_unsaved_edits(live, monkeypatch):
    """carl holds the worksheet at version v and edits five cells without saving
    (offline); meanwhile olivia and greta change it: another cell, other lines of his
    cells, the same line of one, so many times another that his base is no longer kept,
    and delete one.  Back online he catches up with ``since=v`` (what changed, the
    deleted cell among ``removed``), then saves each edit with its ``base_version`` and
    ``base_input``: merged where the lines differ, 409 with the current text where they
    overlap (he resolves and saves again), 404 saying so for the deleted cell (he adds
    his text as a new cell).  Nothing anyone saved is lost."""
    monkeypatch.setattr(worksheet_resources, 'PAST_INPUTS_KEPT', 3)
    ids = {name: live.add(text)['id'] for name, text in (
        ('a', 'a1\na2\na3'), ('b', 'b1\nb2\nb3'), ('c', 'c1\nc2'), ('d', 'd1'),
        ('e', 'e1'))}
    held = live.get('carl')
    cells = {c['id']: c for c in held['cells']}
    state = {'cells': dict(cells), 'order': held['cells'], 'name': held['name'],
             'version': held['version']}
    # carl's unsaved edits, each with the copy it started from.
    unsaved = {'a': 'A1\na2\na3', 'b': 'b1\nb2\nB3', 'c': 'carl\nc2', 'e': 'e1\ne2'}
    # Meanwhile, online.
    live.patch('olivia', ids['d'], {'input': 'D1'})
    live.patch('greta', ids['a'], {'input': 'a1\na2\nA3',
                                   'base_version': cells[ids['a']]['input_version']})
    for n in range(5):  # past the inputs a cell keeps
        live.patch('olivia', ids['b'], {'input': 'b1 (%d)\nb2\nb3' % n})
    live.patch('greta', ids['c'], {'input': 'greta\nc2'})
    added = live.add('new from olivia')
    live.api['olivia'].delete(live.ws + 'cells/%d' % ids['e'], status=200)
    # Back online: what changed since v, nothing else.
    answer = live.get('carl', since=str(held['version']))
    assert answer['full'] is False and answer['removed'] == [ids['e']]
    assert sorted(c['id'] for c in answer['cells']) == sorted(
        [ids['a'], ids['b'], ids['c'], ids['d'], added['id']])
    apply(state, answer)
    saved = {}
    for name in ('a', 'b', 'c'):
        base = cells[ids[name]]
        saved[name] = live.patch('carl', ids[name], {
            'input': unsaved[name], 'base_version': base['input_version'],
            'base_input': base['input']}, status='*')
    assert saved['a']['input'] == 'A1\na2\nA3'
    assert saved['b']['input'] == 'b1 (4)\nb2\nB3'
    conflict = saved['c']
    assert conflict['input'] == 'greta\nc2' and 'same lines' in conflict['error']
    assert live.cell(ids['c'])['input'] == 'greta\nc2'  # the 409 changed nothing
    resolved = live.patch('carl', ids['c'], {
        'input': 'greta and carl\nc2', 'base_version': conflict['input_version'],
        'base_input': conflict['input']})
    assert resolved['input'] == 'greta and carl\nc2'
    gone = live.patch('carl', ids['e'], {
        'input': unsaved['e'], 'base_version': cells[ids['e']]['input_version'],
        'base_input': 'e1'}, status=404)
    assert 'was deleted' in gone['error']
    kept = live.add(unsaved['e'], who='carl')
    # His view, caught up from the answers alone, is the worksheet; every text is in.
    apply(state, live.get('carl', since=str(state['version'])))
    now = live.get('olivia')
    assert view(state) == (now['name'], [(c['id'], c['type'], c['input'])
                                         for c in now['cells']])
    assert [c['input'] for c in now['cells']] == [
        '', 'A1\na2\nA3', 'b1 (4)\nb2\nB3', 'greta and carl\nc2', 'D1', 'new from olivia',
        'e1\ne2']
    assert now['cells'][-1]['id'] == kept['id']


def test_an_edit_conflicting_on_every_attempt_is_503_to_send_again(live, monkeypatch):
    """When others change the same objects each time the request runs (pyramid_retry's
    attempts run out), the answer says to send it again (503, Retry-After), not that
    the server failed; nothing was saved."""
    from ZODB.POSException import ConflictError

    from sagenb_pyramid.services import worksheets as worksheet_service
    cell = live.add('x = 1')
    version = live.get()['version']
    tries = []

    def always_conflicting(*args, **kwargs):
        tries.append(1)
        raise ConflictError('cell_order changed meanwhile')

    monkeypatch.setattr(worksheet_service, 'rebase_edit', always_conflicting)
    res = live.app.patch_json(live.ws + 'cells/%d' % cell['id'],
                              {'input': 'x = 2', 'base_version': cell['input_version']},
                              headers=live.api['olivia'].headers, status=503)
    assert res.headers['Retry-After'] == '1' and 'send it again' in res.json['error']
    # Every attempt ran (pyramid_retry's retry.attempts, set in sagenb_pyramid.main).
    assert len(tries) == int(live.app.app.registry.settings['retry.attempts']) == 8
    monkeypatch.undo()
    assert live.cell(cell['id'])['input'] == 'x = 1' and live.get()['version'] == version


# --- evaluations reach the other clients (a re-run of an unchanged input too) -------------

@pytest.fixture
def kernels(live):
    from ...support.fakekernel import FakeKernels
    live.nb.host.kernel_factory = FakeKernels()
    return live.nb.host.kernel_factory


def follow(live, who, cell, timeout=20):
    """The cell followed as the page's cell poller does (``?since=<version>&wait=``)
    until it is no longer busy."""
    deadline = time.monotonic() + timeout
    while cell['status'] in ('queued', 'running'):
        assert time.monotonic() < deadline, cell
        cell = live.api[who].get(live.ws + 'cells/%d' % cell['id'],
                                 since=str(cell['version']), wait='5')
    return cell


def carl_woken_by(live, version, action):
    """carl waits on the worksheet from ``version``; ``action()`` wakes him: his answer,
    which came within 5 s of the action."""
    answer = {}

    def wait():
        answer['json'] = live.get('carl', since=str(version), wait='20')
        answer['at'] = time.monotonic()

    waiting = threading.Thread(target=wait)
    waiting.start()
    time.sleep(0.5)
    asked = time.monotonic()
    action()
    waiting.join(timeout=30)
    assert answer['at'] - asked < 5
    return answer['json']


def test_a_re_run_wakes_the_waiting_clients_with_the_cell_busy(live, kernels):
    """greta evaluates a cell again without changing it: carl's wait on the worksheet
    ends at once with that cell, queued or running, whose new result he then follows;
    the outputs written meanwhile wake nobody, and nothing comes twice."""
    cell = live.add('sleep 1\ncount')
    first = live.api['olivia'].post(live.ws + 'cells/%d/evaluate' % cell['id'],
                                    {'wait': 10})
    assert first['status'] == 'done' and first['outputs'][0]['data']['text/plain'] == '1'
    version = live.get('carl')['version']
    got = carl_woken_by(live, version, lambda: live.api['greta'].post(
        live.ws + 'cells/%d/evaluate' % cell['id'], {}))
    assert got['version'] > version and got['full'] is False
    assert [(c['id'], c['input'], c['status']) for c in got['cells']] in (
        [(cell['id'], 'sleep 1\ncount', 'queued')], [(cell['id'], 'sleep 1\ncount', 'running')])
    # While it runs and its outputs are stored, a wait from that version sees nothing.
    started = time.monotonic()
    idle = live.get('carl', since=str(got['version']), wait='0.8')
    assert time.monotonic() - started >= 0.8
    assert (idle['version'], idle['cells'], idle['removed']) == (got['version'], [], [])
    done = follow(live, 'carl', got['cells'][0])
    assert done['status'] == 'done' and done['outputs'][0]['data']['text/plain'] == '2'
    assert live.get('carl', since=str(got['version']))['cells'] == []


def test_evaluating_all_grows_the_version_once_and_lists_every_cell(live, kernels):
    cells = [live.add('result %d' % i)['id'] for i in range(3)]
    version = live.get()['version']
    live.api['olivia'].post(live.ws + 'evaluate_all', {})
    answer = live.get('carl', since=str(version))
    assert answer['version'] == version + 1
    assert [c['id'] for c in answer['cells']] == cells
    assert {c['status'] for c in answer['cells']} <= {'queued', 'running', 'done'}
    # Not a change of content: the worksheet's ``modified`` stays.
    assert answer['modified'] == live.get()['modified']


def conflict_retries(live):
    return live.nb.registry.metrics.retries._value.get()


def test_a_class_evaluating_cells_of_one_worksheet_at_once_is_not_retried(live, kernels):
    """Three clients evaluate their own cell of one worksheet eight times each at the
    same moment: every evaluation is answered, none is run again for a conflict (the
    worksheet's record, which each writes now, merges), and a client that was waiting
    gets all three cells."""
    cells = {who: live.add('result %s' % who, who=who)['id']
             for who in ('olivia', 'carl', 'greta')}
    # Its first evaluation places the worksheet on a worker host (a write of the
    # root's placements, which three first evaluations at once conflict on, as before).
    live.api['olivia'].post(live.ws + 'cells/%d/evaluate' % cells['olivia'], {'wait': 10})
    version = live.get()['version']
    retries = conflict_retries(live)
    barrier = threading.Barrier(3)
    failures = []

    def run(who):
        barrier.wait(timeout=10)
        for i in range(8):
            res = live.app.post_json(live.ws + 'cells/%d/evaluate' % cells[who], {},
                                     headers=live.api[who].headers, expect_errors=True)
            if res.status_int != 200:
                failures.append((who, i, res.status, res.text[:200]))

    threads = [threading.Thread(target=run, args=(who,)) for who in cells]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert failures == []
    print('conflict retries: %d' % (conflict_retries(live) - retries))
    assert conflict_retries(live) - retries == 0
    answer = live.get('olivia', since=str(version))
    assert answer['version'] == version + 24
    assert sorted(c['id'] for c in answer['cells']) == sorted(cells.values())


def test_students_evaluating_in_their_own_worksheets_at_once_are_not_retried(live, kernels):
    """Six students, each in a worksheet of their own, evaluate at the same moment, eight
    times each: the run versions they write now cost no conflict."""
    students = ['student%d' % i for i in range(6)]
    apis, urls = {}, {}
    for name in students:
        live.nb.add_user(name)
        apis[name] = Api(live.app, live.nb.token(name))
        url = apis[name].post('/home/%s/' % name, {'name': 'mine'}, status=201)['url']
        urls[name] = url.replace('http://localhost', '')
        apis[name].post(urls[name] + 'cells/', {'input': 'result %s' % name}, status=201)
        apis[name].post(urls[name] + 'cells/1/evaluate', {'wait': 10})  # placed (above)
    retries = conflict_retries(live)
    barrier = threading.Barrier(len(students))
    failures = []

    def run(name):
        barrier.wait(timeout=10)
        for i in range(8):
            res = live.app.post_json(urls[name] + 'cells/1/evaluate', {},
                                     headers=apis[name].headers, expect_errors=True)
            if res.status_int != 200:
                failures.append((name, i, res.status, res.text[:200]))

    threads = [threading.Thread(target=run, args=(name,)) for name in students]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert failures == []
    assert conflict_retries(live) - retries == 0


# --- clearing outputs reaches the other clients --------------------------------------------

def test_clearing_a_cell_wakes_the_waiting_clients_with_the_cell_cleared(live, kernels):
    """olivia clears a cell's output: carl's wait on the worksheet ends with that cell,
    no outputs, not queued (cleared moments after its run was noted), and a read from
    the version he is told has nothing more."""
    cell = live.add('result 7')
    done = live.api['olivia'].post(live.ws + 'cells/%d/evaluate' % cell['id'], {'wait': 10})
    assert done['status'] == 'done' and done['outputs']
    seen = live.get('carl')
    version, modified = seen['version'], seen['modified']
    got = carl_woken_by(live, version, lambda: live.api['olivia'].post(
        live.ws + 'cells/%d/clear' % cell['id'], {}))
    assert got['version'] == version + 1 and got['full'] is False
    assert [(c['id'], c['input'], c['status'], c['outputs'], c['execution_count'])
            for c in got['cells']] == [(cell['id'], 'result 7', 'new', [], None)]
    assert live.get('carl', since=str(got['version']))['cells'] == []
    # Not a change of content: ``modified`` stays.
    assert got['modified'] == modified
    # Cleared again: nothing a reader sees changes, nor does the version.
    live.api['olivia'].post(live.ws + 'cells/%d/clear' % cell['id'], {})
    assert live.get('carl')['version'] == got['version']


def test_clearing_all_outputs_grows_the_version_once_and_lists_the_cells_cleared(
        live, kernels):
    cells = [live.add('result %d' % i)['id'] for i in range(3)]
    live.add('# never run')
    for cell_id in cells:
        live.api['olivia'].post(live.ws + 'cells/%d/evaluate' % cell_id, {'wait': 10})
    before = live.get('carl')
    assert all(c['outputs'] for c in before['cells'] if c['id'] in cells)
    answer = live.api['greta'].post(live.ws + 'clear_outputs', {})
    assert answer == {'cleared': 3}
    got = live.get('carl', since=str(before['version']))
    assert got['version'] == before['version'] + 1
    assert [(c['id'], c['status'], c['outputs']) for c in got['cells']] == \
        [(cell_id, 'new', []) for cell_id in cells]
    # What a reload shows is what the answer said.
    assert all(c['outputs'] == [] for c in live.get('carl')['cells'])
    # Nothing to clear: nothing changes, the version stays.
    assert live.api['greta'].post(live.ws + 'clear_outputs', {}) == {'cleared': 0}
    assert live.get('carl')['version'] == got['version']

