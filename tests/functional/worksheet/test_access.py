"""Who may view, edit, evaluate and delete a worksheet: owner, collaborator,
viewer, group member, other user, anonymous visitor and admin (WebTest; only text cells
are evaluated, so no Sage process)."""
import pytest

from ...support.notebook import Api, login
from ...support.webapp import JSON, make_worksheet, no_traceback, stored

# argon2 with its default cost takes ~0.2 s a hash: far too slow for many tests.
pytestmark = pytest.mark.usefixtures('cheap_password_hashes')


# === The permission table ==========================================================

WHO = ('owner', 'collaborator', 'viewer', 'other', 'anonymous', 'admin')
ACTIONS = ('view', 'edit', 'evaluate', 'delete')
ALLOWED = {
    'owner': set(ACTIONS),
    'collaborator': {'view', 'edit', 'evaluate'},
    'viewer': {'view'},
    'other': set(),
    'anonymous': set(),
    # Read-only on other users' worksheets (issue 18), through the API too.
    'admin': {'view'},
}
# The answer when permission is granted.  Evaluating a text cell is refused with 409
# only after the permission check has passed, so no Sage process is needed.
GRANTED_STATUS = {'view': 200, 'edit': 200, 'evaluate': 409, 'delete': 200}


@pytest.fixture
def shared(notebook, testapp):
    """owner's worksheet 0 with a text cell 1, shared with a collaborator and a viewer;
    an API client for each user (anonymous: no credentials)."""
    for name in ('owner', 'collaborator', 'viewer', 'other'):
        notebook.add_user(name)
    notebook.add_user('admin', admin=True)
    make_worksheet(notebook, 'owner', 'Shared', cells=[('text', 'original')])
    with notebook.transaction() as root:
        ws = root.user_by_login('owner')['0']
        ws.collaborators.append('userid:' + root.user_by_login('collaborator').id)
        ws.viewers.append('userid:' + root.user_by_login('viewer').id)
    clients = {name: Api(testapp, notebook.token(name))
               for name in ('owner', 'collaborator', 'viewer', 'other', 'admin')}
    anonymous = Api(testapp, 'unused')
    anonymous.headers = dict(JSON)
    clients['anonymous'] = anonymous
    return clients


def attempt(client, action):
    app, headers = client.testapp, client.headers
    if action == 'view':
        return app.get('/home/owner/0/', headers=headers, status='*')
    if action == 'edit':
        return app.patch_json('/home/owner/0/cells/1', {'input': 'edited'},
                              headers=headers, status='*')
    if action == 'evaluate':
        return app.post_json('/home/owner/0/cells/1/evaluate', {}, headers=headers,
                             status='*')
    if action == 'delete':
        return app.delete('/home/owner/0/', headers=headers, status='*')
    raise AssertionError(action)


@pytest.mark.parametrize('action', ACTIONS)
@pytest.mark.parametrize('who', WHO)
def test_permission_table(notebook, shared, who, action):
    res = attempt(shared[who], action)
    assert res.content_type == 'application/json'
    if action in ALLOWED[who]:
        assert res.status_int == GRANTED_STATUS[action], res.text
    else:
        # Who may not even see the worksheet is told it is not there (404).
        refused = 403 if 'view' in ALLOWED[who] else 404
        assert res.status_int == (401 if who == 'anonymous' else refused), res.text
        assert 'error' in res.json
    # What is stored agrees with the answer.
    after = stored(notebook, 'owner')
    if action == 'delete' and action in ALLOWED[who]:
        assert after == {}
    elif action == 'edit' and action in ALLOWED[who]:
        assert after == {0: ('Shared', [('compute', ''), ('text', 'edited')])}
    else:
        assert after == {0: ('Shared', [('compute', ''), ('text', 'original')])}


def test_evaluate_of_text_cell_says_why(notebook, shared):
    res = attempt(shared['owner'], 'evaluate')
    assert res.status_int == 409
    assert res.json == {'error': 'text cells are not evaluated'}


def test_view_returns_the_worksheet(shared):
    for who in ('owner', 'collaborator', 'viewer', 'admin'):
        data = shared[who].get('/home/owner/0/')
        assert data['name'] == 'Shared' and data['owner'] == 'owner'
        assert [c['input'] for c in data['cells']] == ['', 'original']


def test_other_user_cannot_list_or_create_in_someone_elses_home(notebook, shared):
    other = shared['other']
    other.get('/home/owner/', status=404)
    other.post('/home/owner/', {'name': 'intruder'}, status=404)
    shared['collaborator'].post('/home/owner/', {'name': 'intruder'}, status=404)
    assert set(stored(notebook, 'owner')) == {0}


def test_viewer_cannot_rename_or_add_cells(notebook, shared):
    viewer = shared['viewer']
    viewer.patch('/home/owner/0/', {'name': 'mine now'}, status=403)
    viewer.post('/home/owner/0/cells', {'input': 'x'}, status=403)
    viewer.delete('/home/owner/0/cells/1', status=403)
    viewer.post('/home/owner/0/cells/1/move', {'direction': 'up'}, status=403)
    assert stored(notebook, 'owner') == {
        0: ('Shared', [('compute', ''), ('text', 'original')])}


def test_viewer_may_copy_into_own_home(notebook, shared):
    res = shared['viewer'].post('/home/owner/0/copy', {}, status=201)
    assert res['url'].endswith('/home/viewer/0/')
    assert stored(notebook, 'viewer') == {
        0: ('Copy of Shared', [('compute', ''), ('text', 'original')])}
    shared['other'].post('/home/owner/0/copy', {}, status=404)
    assert stored(notebook, 'other') == {}


def test_other_user_browser_gets_404_page(notebook, testapp, shared):
    login(testapp, 'other')
    res = testapp.get('/home/owner/0/', status=404)
    no_traceback(res)
    assert 'text/html' in res.content_type


def test_group_collaborator(notebook, testapp):
    notebook.add_user('owner')
    notebook.add_user('member')
    make_worksheet(notebook, 'owner', 'Shared', cells=[('text', 'original')])
    with notebook.transaction() as root:
        group = root.add_group('g')
        root.user_by_login('member').group_ids.add(group.id)
        root.user_by_login('owner')['0'].collaborators.append('group:' + group.id)
    member = Api(testapp, notebook.token('member'))
    assert attempt(member, 'view').status_int == 200
    assert attempt(member, 'edit').status_int == 200
    assert attempt(member, 'evaluate').status_int == 409
    assert attempt(member, 'delete').status_int == 403
    assert stored(notebook, 'owner') == {
        0: ('Shared', [('compute', ''), ('text', 'edited')])}
    # Out of the group, out of the worksheet.
    with notebook.transaction() as root:
        member_user = root.user_by_login('member')
        member_user.group_ids.remove(list(member_user.group_ids)[0])
    assert attempt(member, 'view').status_int == 404


def test_renamed_collaborator_keeps_access(notebook, testapp, shared):
    with notebook.transaction() as root:
        root.rename_user(root.user_by_login('collaborator'), 'collab2')
    assert attempt(shared['collaborator'], 'edit').status_int == 200
    assert attempt(shared['collaborator'], 'delete').status_int == 403
