"""Sharing worksheets with users and groups (issue 20): the API, the roles, revocation,
group membership, "shared with me", the type-ahead's visibility, the index kept with
every change, and (real Sage) a collaborator's cells running in the owner's process.

Four users and a group: olivia owns the worksheet, carl is a collaborator, vera a
viewer, greta is in the group ``team``; oscar has nothing to do with it.  Requests use
API tokens as scripts do (JSON answers, no CSRF); the admin's group changes go through
the admin pages' JSON API, so "effect on the next request" is what a request sees.
"""
import threading

import pytest
import transaction
import webtest
from ZODB.POSException import ConflictError

from sagenb_pyramid import evolve, server_settings
from sagenb_pyramid.resources import get_root
from sagenb_pyramid.security import group_principal, user_principal

from ...conftest import Api, Notebook, login

pytestmark = pytest.mark.usefixtures('cheap_password_hashes')


class World:
    def __init__(self, nb):
        self.nb = nb
        self.app = webtest.TestApp(nb.app, extra_environ={'HTTP_HOST': 'localhost:80'})
        for name in ('olivia', 'carl', 'vera', 'greta', 'oscar'):
            nb.add_user(name)
        nb.add_user('ada', admin=True)
        with nb.transaction() as root:
            team = root.add_group('team')
            secret = root.add_group('secret')
            for login in ('olivia', 'greta'):
                root.user_by_login(login).group_ids.add(team.id)
            root.user_by_login('oscar').group_ids.add(secret.id)
            self.team_id, self.secret_id = team.id, secret.id
        self.api = {name: Api(self.app, nb.token(name))
                    for name in ('olivia', 'carl', 'vera', 'greta', 'oscar', 'ada')}
        self.ws = self.api['olivia'].post('/home/olivia/', {'name': 'shared'}, status=201)['url']
        self.ws = self.ws.replace('http://localhost', '')

    def put(self, who, body, status=200, ws=None):
        res = self.app.put_json((ws or self.ws) + 'sharing', body, status=status,
                                headers=self.api[who].headers)
        return res.json

    def sharing(self, who='olivia', ws=None):
        return self.api[who].get((ws or self.ws) + 'sharing')

    def shared_listing(self, who, status=200, home=None):
        return self.api[who].get('/home/%s/' % (home or who), status=status, state='shared')

    def set_visibility(self, value):
        with self.nb.transaction() as root:
            server_settings.set_value(root, 'sagenb.sharing.visibility', value)

    def first_cell(self, ws=None):
        return self.api['olivia'].get(ws or self.ws)['cells'][0]['id']


@pytest.fixture
def world(tmp_path, cheap_password_hashes):
    # No Sage here: a request allowed to evaluate gets 409 (no room) past its check.
    nb = Notebook(tmp_path / 'data', **{'sagenb.workers.max_per_user': '0'})
    try:
        yield World(nb)
    finally:
        nb.close()


def status_of(world, who, method, path, body=None):
    headers = world.api[who].headers
    if method == 'GET':
        return world.app.get(path, headers=headers, status='*').status_int
    return world.app.request(path, method=method, headers=dict(
        headers, **{'Content-Type': 'application/json', 'Accept': 'application/json'}),
        body=b'{}' if body is None else body, status='*').status_int


def rights(world, who):
    """What ``who`` may do on the worksheet: the status of a read, a cell edit, a
    rename, an evaluation, an interrupt, a restart and a data file upload."""
    ws = world.ws
    cell = ws + 'cells/%d' % world.first_cell()
    return {
        'read': status_of(world, who, 'GET', ws),
        'edit': status_of(world, who, 'PATCH', cell, b'{"input": "x = 1"}'),
        'patch': status_of(world, who, 'PATCH', ws, b'{"typeset": false}'),
        'evaluate': status_of(world, who, 'POST', cell + '/evaluate'),
        'interrupt': status_of(world, who, 'POST', ws + 'interrupt'),
        'restart': status_of(world, who, 'POST', ws + 'restart'),
        'data': status_of(world, who, 'POST', ws + 'data',
                          b'{"name": "d.txt", "content": "1", "replace": true}'),
    }


COLLABORATOR = {'read': 200, 'edit': 200, 'patch': 200, 'evaluate': 409, 'interrupt': 200,
                'restart': 200, 'data': 201}
VIEWER = {'read': 200, 'edit': 403, 'patch': 403, 'evaluate': 403, 'interrupt': 403,
          'restart': 403, 'data': 403}
NOBODY = {key: 404 for key in VIEWER}


def test_roles_through_users_and_a_group(world):
    assert rights(world, 'carl') == NOBODY
    answer = world.put('olivia', {'collaborators': ['carl', 'group:team'],
                                  'viewers': ['vera']})
    assert answer['collaborators'] == ['carl', 'group:team']
    assert answer['viewers'] == ['vera']
    assert answer['published'] is None
    assert (answer['people'], answer['groups']) == (2, 1)
    assert rights(world, 'carl') == COLLABORATOR
    assert rights(world, 'greta') == COLLABORATOR
    assert rights(world, 'vera') == VIEWER
    assert rights(world, 'oscar') == NOBODY
    # A viewer may copy and download it.
    copied = world.api['vera'].post(world.ws + 'copy', status=201)
    assert copied['owner'] == 'vera'
    assert status_of(world, 'vera', 'GET', world.ws + 'download.ipynb') == 200


def test_removing_a_member_from_the_group_counts_at_their_next_request(world):
    world.put('olivia', {'collaborators': ['group:team'], 'viewers': []})
    assert rights(world, 'greta') == COLLABORATOR
    world.api['ada'].post('/admin/groups/%s/remove_member' % world.team_id,
                          {'login': 'greta'}, status=200)
    assert rights(world, 'greta') == NOBODY
    assert world.shared_listing('greta')['worksheets'] == []
    world.api['ada'].post('/admin/groups/%s/add_member' % world.team_id,
                          {'login': 'greta'}, status=200)
    assert rights(world, 'greta') == COLLABORATOR


def test_revocation_and_downgrade_count_at_the_next_request(world):
    world.put('olivia', {'collaborators': ['carl'], 'viewers': ['vera']})
    assert rights(world, 'carl') == COLLABORATOR
    world.put('olivia', {'collaborators': [], 'viewers': ['carl', 'vera']})
    assert rights(world, 'carl') == VIEWER
    world.put('olivia', {'collaborators': [], 'viewers': []})
    assert rights(world, 'carl') == NOBODY
    assert rights(world, 'vera') == NOBODY
    assert world.shared_listing('carl')['worksheets'] == []


def test_a_user_in_both_roles_is_a_collaborator_and_the_owner_is_ignored(world):
    answer = world.put('olivia', {'collaborators': ['carl', ' carl '],
                                  'viewers': ['carl', 'vera', 'olivia']})
    assert answer['collaborators'] == ['carl']
    assert answer['viewers'] == ['vera']
    assert rights(world, 'carl') == COLLABORATOR


@pytest.mark.parametrize('body, message', [
    ({'collaborators': ['carl', 'nosuchuser'], 'viewers': ['group:nosuchgroup']},
     "no such user or group: 'nosuchuser', 'group:nosuchgroup'"),
    # A group olivia is not in, with the default visibility: as unknown as a missing one.
    ({'collaborators': ['carl'], 'viewers': ['group:secret']},
     "no such user or group: 'group:secret'"),
    ({'collaborators': ['carl']}, 'give "collaborators" and "viewers"'),
    ({'collaborators': 'carl', 'viewers': []}, '"collaborators" must be a list'),
    ({'collaborators': ['carl'], 'viewers': [3]}, '"viewers" must be a list'),
])
def test_a_refused_change_changes_nothing(world, body, message):
    world.put('olivia', {'collaborators': [], 'viewers': ['vera']})
    answer = world.put('olivia', body, status=400)
    assert message in answer['error']
    assert world.sharing()['collaborators'] == [] and world.sharing()['viewers'] == ['vera']
    assert rights(world, 'carl') == NOBODY
    assert world.shared_listing('carl')['worksheets'] == []


def test_only_the_owner_and_admins_change_sharing_and_admins_only_take_away(world):
    world.put('olivia', {'collaborators': ['carl'], 'viewers': ['vera']})
    world.put('carl', {'collaborators': ['carl', 'greta'], 'viewers': []}, status=403)
    world.put('vera', {'collaborators': ['vera'], 'viewers': []}, status=403)
    world.put('oscar', {'collaborators': [], 'viewers': []}, status=404)
    # An admin: no new person, no more rights (an admin's stolen token gives nobody
    # edit rights on someone's worksheet), but may revoke and downgrade.
    refused = world.put('ada', {'collaborators': ['carl', 'ada'], 'viewers': ['vera']},
                        status=403)
    assert 'only the owner' in refused['error']
    world.put('ada', {'collaborators': ['vera'], 'viewers': ['carl']}, status=403)
    answer = world.put('ada', {'collaborators': [], 'viewers': ['carl']})
    assert answer == dict(answer, collaborators=[], viewers=['carl'])
    assert rights(world, 'carl') == VIEWER and rights(world, 'vera') == NOBODY
    with world.nb.transaction() as root:
        from sagenb_pyramid.audit import entries
        last = next(entries(root))
        assert (last.action, last.actor) == ('worksheet_shared', 'ada')


def test_shared_listing_through_users_and_groups(world):
    assert world.shared_listing('carl')['worksheets'] == []
    second = world.api['olivia'].post('/home/olivia/', {'name': 'second'}, status=201)['url']
    second = second.replace('http://localhost', '')
    world.put('olivia', {'collaborators': ['group:team'], 'viewers': ['carl', 'greta']})
    world.put('olivia', {'collaborators': [], 'viewers': ['carl']}, ws=second)
    carl = world.shared_listing('carl')['worksheets']
    assert sorted((w['name'], w['owner'], w['role']) for w in carl) == [
        ('second', 'olivia', 'viewer'), ('shared', 'olivia', 'viewer')]
    # Through the group as collaborator, and named as viewer: the larger role.
    greta = world.shared_listing('greta')['worksheets']
    assert [(w['name'], w['owner'], w['role']) for w in greta] == [
        ('shared', 'olivia', 'collaborator')]
    # The owner's own worksheets are not "shared with" her, though she is in the group.
    assert world.shared_listing('olivia')['worksheets'] == []
    # Another's home stays closed; an admin may look (read-only).
    world.shared_listing('oscar', status=404, home='carl')
    assert len(world.shared_listing('ada', home='carl')['worksheets']) == 2
    # The browser's tab.
    browser = webtest.TestApp(world.nb.app, extra_environ={'HTTP_HOST': 'localhost:80'})
    login(browser, 'carl')
    page = browser.get('/home/carl/?state=shared')
    assert 'Shared with me' in page.text and 'data-role="shared-worksheets"' in page.text
    assert page.text.count('>viewer<') == 2
    # Deleting a worksheet takes it out of every listing (and the index).
    world.api['olivia'].delete(second, status=200)
    assert [w['name'] for w in world.shared_listing('carl')['worksheets']] == ['shared']
    with world.nb.transaction() as root:
        keys = root.shared_with[user_principal(root.user_by_login('carl').id)]
        assert len(keys) == 1


def test_type_ahead_shows_what_the_visibility_setting_allows(world):
    olivia = world.api['olivia']
    # Default ``members``: her own groups; other users only by their exact login.
    assert olivia.get('/people', q='e') == {'users': [], 'groups': [
        {'name': 'team', 'entry': 'group:team'}]}
    assert olivia.get('/people', q='arl')['users'] == []
    assert olivia.get('/people', q='carl')['users'] == [{'login': 'carl', 'name': ''}]
    assert olivia.get('/people', q='secret')['groups'] == []
    world.set_visibility('all')
    assert olivia.get('/people', q='arl')['users'] == [{'login': 'carl', 'name': ''}]
    assert [g['name'] for g in olivia.get('/people', q='e')['groups']] == ['secret', 'team']
    # Now she may also share with a group she is not in.
    world.put('olivia', {'collaborators': [], 'viewers': ['group:secret']})
    assert rights(world, 'oscar') == VIEWER
    # The type-ahead needs a login.
    assert world.app.get('/people', params={'q': 'carl'}, headers={
        'Accept': 'application/json'}, status=401)


def test_others_see_only_entries_they_may_see(world):
    world.put('olivia', {'collaborators': ['carl', 'group:team'], 'viewers': ['vera']})
    vera = world.sharing('vera')
    assert (vera['collaborators'], vera['viewers'], vera['others']) == ([], ['vera'], 2)
    assert (vera['people'], vera['groups']) == (2, 1)
    greta = world.sharing('greta')
    assert (greta['collaborators'], greta['viewers'], greta['others']) == (
        ['group:team'], [], 2)
    assert world.sharing('ada')['collaborators'] == ['carl', 'group:team']
    world.set_visibility('all')
    assert world.sharing('vera')['collaborators'] == ['carl', 'group:team']
    # The page shows the roles line and the copy button to a viewer.
    browser = webtest.TestApp(world.nb.app, extra_environ={'HTTP_HOST': 'localhost:80'})
    login(browser, 'vera')
    page = browser.get(world.ws)
    assert 'shared with 2 people, 1 group' in page.text
    assert "you are a viewer" in page.text and 'Edit a copy' in page.text
    assert 'data-action="share"' not in page.text


def test_deleting_a_group_or_a_user_unshares_and_heirs_keep_the_sharing(world):
    world.put('olivia', {'collaborators': ['group:team', 'carl'], 'viewers': ['vera']})
    world.api['ada'].post('/admin/groups/%s/delete' % world.team_id, status=200)
    assert world.sharing()['collaborators'] == ['carl']
    world.api['ada'].post('/admin/users/vera/delete', {'worksheets': 'delete'}, status=200)
    assert world.sharing()['viewers'] == []
    with world.nb.transaction() as root:
        assert group_principal(world.team_id) not in root.shared_with
    # The owner leaves and oscar inherits: carl's listing follows the new key.
    world.api['ada'].post('/admin/users/olivia/delete',
                          {'worksheets': 'handover', 'heir': 'oscar'}, status=200)
    listed = world.shared_listing('carl')['worksheets']
    assert [(w['name'], w['owner'], w['role']) for w in listed] == [
        ('shared', 'oscar', 'collaborator')]


def test_the_evolve_step_builds_the_index_of_an_older_database(world):
    with world.nb.transaction() as root:
        ws = root.user_by_login('olivia').worksheets()[0]
        # As an older version stored it: lists without an index.
        ws.collaborators.append(user_principal(root.user_by_login('carl').id))
        del root.shared_with
        root.evolved.remove('shared-with-index')
    assert [s.name for s in evolve.pending_in(world.nb.db)] == ['shared-with-index']
    evolve.evolve(world.nb.db)
    assert [(w['name'], w['role']) for w in world.shared_listing('carl')['worksheets']] == [
        ('shared', 'collaborator')]


def test_owners_sharing_with_one_group_at_once_do_not_conflict(world):
    """Two owners share different worksheets with the same group in concurrent
    transactions: the index's set of the group merges both (BTrees' conflict
    resolution), so neither request is run again."""
    world.put('olivia', {'collaborators': ['group:team'], 'viewers': []})
    with world.nb.transaction() as root:
        greta = root.user_by_login('greta')
        numbers = [greta.create_worksheet('g%d' % i).__name__ for i in range(2)]
        numbers.append(root.user_by_login('olivia').create_worksheet('o').__name__)
    owners = ('greta', 'greta', 'olivia')
    barrier = threading.Barrier(3)
    errors = []

    def share(login, number):
        tm = transaction.TransactionManager(explicit=True)
        conn = world.nb.db.open(transaction_manager=tm)
        try:
            tm.begin()
            root = get_root(conn.root())
            ws = root.user_by_login(login)[number]
            ws.share([group_principal(world.team_id)], [])
            barrier.wait(timeout=10)
            tm.commit()
        except ConflictError as exc:
            errors.append(exc)
            tm.abort()
        finally:
            conn.close()

    threads = [threading.Thread(target=share, args=pair) for pair in zip(owners, numbers, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert errors == []
    with world.nb.transaction() as root:
        assert len(root.shared_with[group_principal(world.team_id)]) == 4


def test_a_collaborators_cells_run_in_the_owners_process(tmp_path, cheap_password_hashes):
    """Real Sage: the collaborator's evaluation sees the owner's variables and the owner
    sees the collaborator's (one process per worksheet, the owner's, whoever runs it)."""
    nb = Notebook(tmp_path / 'data')
    try:
        for name in ('olivia', 'carl'):
            nb.add_user(name)
        app = webtest.TestApp(nb.app, extra_environ={'HTTP_HOST': 'localhost:80'})
        olivia, carl = Api(app, nb.token('olivia')), Api(app, nb.token('carl'))
        ws = olivia.post('/home/olivia/', {'name': 'together'}, status=201)['url']
        ws = ws.replace('http://localhost', '')
        app.put_json(ws + 'sharing', {'collaborators': ['carl'], 'viewers': []},
                     headers=olivia.headers, status=200)

        def run(api, code):
            cell = api.post(ws + 'cells', {'input': code}, status=201)['id']
            done = api.post('%scells/%d/evaluate' % (ws, cell), {'wait': 120}, status=200)
            assert done['status'] == 'done', done
            return ''.join(o.get('data', {}).get('text/plain', '') + o.get('text', '')
                           for o in done['outputs'])

        run(olivia, 'owner_value = 6 * 7')
        assert run(carl, 'collaborator_value = owner_value + 1; collaborator_value') == '43'
        assert run(olivia, 'collaborator_value * 2') == '86'
        # One process, kept under the owner's key; none under the collaborator's id.
        number = int(ws.rstrip('/').rsplit('/', 1)[1])
        assert nb.host.has_process((_owner_id(nb, 'olivia'), number))
        assert not nb.host.has_process((_owner_id(nb, 'carl'), number))
        olivia.post(ws + 'restart', status=200)
    finally:
        nb.close()


def _owner_id(nb, login):
    with nb.transaction() as root:
        return root.user_by_login(login).id


def test_sharing_shows_how_the_worksheet_is_published(world):
    assert world.sharing()['published'] is None
    answer = world.app.post_json(world.ws + 'publish', {'auto': True},
                                 headers=world.api['olivia'].headers).json
    published = world.sharing()['published']
    assert published['url'] == answer['url'] and published['url'].startswith('/pub/')
    assert published['auto'] is True
    world.app.request(world.ws + 'publish', method='DELETE',
                      headers=dict(world.api['olivia'].headers, Accept='application/json'))
    assert world.sharing()['published'] is None
