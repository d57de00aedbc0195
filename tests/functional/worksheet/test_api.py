"""The whole application through WebTest: accounts, CSRF, permissions, the JSON API,
the listing page, sign-up and password changes.  No Sage process is ever started:
only text cells (or no cells) are evaluated."""
import re

import pytest
import webtest


from ...support.notebook import PASSWORD, Api, Notebook, csrf_token_of, login

JSON = {'Accept': 'application/json'}


# argon2 with its default cost takes ~0.2 s a hash: far too slow for many tests.
pytestmark = pytest.mark.usefixtures('cheap_password_hashes')


def new_browser(notebook):
    return webtest.TestApp(notebook.app, extra_environ={'HTTP_HOST': 'localhost:80'})


def logged_in(testapp):
    """True if the browser's session belongs to someone."""
    res = testapp.get('/account', status='*')
    return res.status_int == 200


def ids_listed(res):
    """Worksheet numbers on a listing page, in their order."""
    return re.findall(r'name="ids" value="([^"]+)"', res.text)


def no_traceback(res):
    assert 'Traceback' not in res.text
    assert 'File "' not in res.text
    assert res.status_int != 500


def make_worksheet(notebook, login_name, name='W', cells=()):
    """A worksheet made in the database: its number and its cell ids."""
    with notebook.transaction() as root:
        ws = root.user_by_login(login_name).create_worksheet(name)
        for cell_type, text in cells:
            ws.add_cell(cell_type, text)
        return ws.number, list(ws.cell_order)


def stored(notebook, login_name):
    """{number: (name, [(type, input), ...])} of a user's worksheets, from the DB."""
    with notebook.transaction() as root:
        user = root.user_by_login(login_name)
        return {w.number: (w.name, [(c.type, c.input) for c in w.ordered_cells()])
                for w in user.worksheets()}


def states(notebook, login_name):
    with notebook.transaction() as root:
        user = root.user_by_login(login_name)
        return {w.number: w.state_for(user.id) for w in user.worksheets()}


# === Logging in and out ============================================================

def test_login_success_redirects_home(notebook, testapp):
    notebook.add_user('alice')
    page = testapp.get('/login')
    res = testapp.post('/login', {'login': 'alice', 'password': PASSWORD,
                                  'csrf_token': csrf_token_of(page)}, status=302)
    assert res.headers['Location'] == 'http://localhost/home/alice/'
    assert testapp.get('/home/alice/').status_int == 200
    assert logged_in(testapp)


def test_login_starts_a_new_session(notebook, testapp):
    notebook.add_user('alice')
    page = testapp.get('/login')
    before = csrf_token_of(page)
    after = login(testapp, 'alice')
    assert before != after


@pytest.mark.parametrize('login_name, password', [
    ('alice', 'wrong password'), ('nobody', PASSWORD), ('alice', ''), ('', '')])
def test_login_failure_same_message(notebook, testapp, login_name, password):
    notebook.add_user('alice')
    page = testapp.get('/login')
    res = testapp.post('/login', {'login': login_name, 'password': password,
                                  'csrf_token': csrf_token_of(page)}, status=400)
    assert re.findall(r'class="error"[^>]*>([^<]*)<', res.text) == [
        'Wrong username or password.']
    assert 'Set-Cookie' not in res.headers or 'user_id' not in res.headers['Set-Cookie']
    assert not logged_in(testapp)


def test_login_refused_without_csrf_field(notebook, testapp):
    notebook.add_user('alice')
    testapp.get('/login')
    res = testapp.post('/login', {'login': 'alice', 'password': PASSWORD}, status=400)
    no_traceback(res)
    assert not logged_in(testapp)


def test_login_refused_with_wrong_csrf_token(notebook, testapp):
    notebook.add_user('alice')
    testapp.get('/login')
    testapp.post('/login', {'login': 'alice', 'password': PASSWORD,
                            'csrf_token': 'forged'}, status=400)
    assert not logged_in(testapp)


def test_login_follows_came_from_round_trip(notebook, testapp):
    notebook.add_user('alice')
    res = testapp.get('/home/alice/?state=archive&sort=name', status=302)
    location = res.headers['Location']
    assert location.startswith('http://localhost/login?came_from=')
    page = testapp.get(location)
    match = re.search(r'name="came_from" value="([^"]*)"', page.text)
    came_from = match.group(1).replace('&amp;', '&')
    assert came_from == '/home/alice/?state=archive&sort=name'
    res = testapp.post('/login', {'login': 'alice', 'password': PASSWORD,
                                  'came_from': came_from,
                                  'csrf_token': csrf_token_of(page)}, status=302)
    assert res.headers['Location'] == 'http://localhost/home/alice/?state=archive&sort=name'


@pytest.mark.parametrize('came_from', [
    'http://evil.example/', '//evil.example/x', 'javascript:alert(1)', 'home/alice/'])
def test_login_never_redirects_elsewhere(notebook, testapp, came_from):
    notebook.add_user('alice')
    page = testapp.get('/login')
    res = testapp.post('/login', {'login': 'alice', 'password': PASSWORD,
                                  'came_from': came_from,
                                  'csrf_token': csrf_token_of(page)}, status=302)
    assert res.headers['Location'] == 'http://localhost/home/alice/'


def test_session_cookie_flags(notebook, testapp):
    notebook.add_user('alice')
    page = testapp.get('/login')
    res = testapp.post('/login', {'login': 'alice', 'password': PASSWORD,
                                  'csrf_token': csrf_token_of(page)}, status=302)
    cookies = [c for c in res.headers.getall('Set-Cookie')
               if c.startswith('sagenb_session=')]
    assert cookies
    for cookie in cookies:
        attributes = [a.strip().lower() for a in cookie.split(';')]
        assert 'httponly' in attributes
        assert 'samesite=lax' in attributes


def test_logout_requires_post(notebook, testapp):
    notebook.add_user('alice')
    login(testapp, 'alice')
    res = testapp.get('/logout', status='*')
    assert res.status_int in (404, 405)
    assert logged_in(testapp)


def test_logout_requires_csrf_token(notebook, testapp):
    notebook.add_user('alice')
    token = login(testapp, 'alice')
    testapp.post('/logout', status=400)
    assert logged_in(testapp)
    testapp.post('/logout', {'csrf_token': 'forged'}, status=400)
    assert logged_in(testapp)
    res = testapp.post('/logout', {'csrf_token': token}, status=302)
    assert res.headers['Location'] == 'http://localhost/login'
    assert not logged_in(testapp)
    testapp.get('/home/alice/', status=302)


@pytest.mark.parametrize('worksheets', [0, 1])
def test_logout_through_the_page_form(notebook, testapp, worksheets):
    """Every page of a logged-in user has a log-out button, whether or not the user
    has worksheets yet."""
    notebook.add_user('alice')
    for _ in range(worksheets):
        make_worksheet(notebook, 'alice')
    login(testapp, 'alice')
    page = testapp.get('/account')
    assert page.status_int == 200
    forms = [f for f in page.forms.values() if f.action.endswith('/logout')]
    assert len(forms) == 1, 'no log-out form on the page of a logged-in user'
    assert 'class="whoami">alice' in page.text
    forms[0].submit(status=302)
    assert not logged_in(testapp)


def test_root_redirects(notebook, testapp):
    notebook.add_user('alice')
    assert testapp.get('/', status=302).headers['Location'] == 'http://localhost/login'
    login(testapp, 'alice')
    assert testapp.get('/', status=302).headers['Location'] == 'http://localhost/home/alice/'


# === Anonymous requests ============================================================

def test_anonymous_browser_is_sent_to_login(notebook, testapp):
    notebook.add_user('alice')
    make_worksheet(notebook, 'alice')
    for path in ('/home/alice/', '/home/alice/0/', '/account'):
        res = testapp.get(path, status=302)
        assert res.headers['Location'] == 'http://localhost/login?came_from=' + path


@pytest.mark.parametrize('method, path', [
    ('GET', '/home/alice/'), ('GET', '/home/alice/0/'), ('GET', '/home/alice/0/cells/0'),
    ('POST', '/home/alice/'), ('PATCH', '/home/alice/0/'), ('DELETE', '/home/alice/0/'),
    ('POST', '/home/alice/0/cells'), ('PATCH', '/home/alice/0/cells/0'),
    ('POST', '/home/alice/0/copy')])
def test_anonymous_api_gets_401_json(notebook, testapp, method, path):
    notebook.add_user('alice')
    make_worksheet(notebook, 'alice')
    before = stored(notebook, 'alice')
    if method == 'GET':
        res = testapp.get(path, headers=JSON, status='*')
    else:
        res = testapp.request(path, method=method, body=b'{"name": "x", "input": "x"}',
                              content_type='application/json', headers=JSON,
                              expect_errors=True)
    assert res.status_int == 401
    assert res.content_type == 'application/json'
    assert set(res.json) == {'error'} and res.json['error']
    assert stored(notebook, 'alice') == before


def test_static_files_served_to_anonymous(testapp):
    res = testapp.get('/static/notebook.css', status=200)
    assert res.content_type == 'text/css'
    assert res.body


def test_login_page_served_to_anonymous(testapp):
    res = testapp.get('/login', status=200)
    assert 'name="password"' in res.text
    assert csrf_token_of(res)


# === CSRF ==========================================================================

@pytest.fixture
def alice_browser(notebook, testapp):
    """alice logged in with a worksheet 0 of cells 0 (compute) and 1 (text)."""
    notebook.add_user('alice')
    make_worksheet(notebook, 'alice', 'First', cells=[('text', 'hello')])
    return login(testapp, 'alice')


def test_form_post_without_csrf_token_is_refused(notebook, testapp, alice_browser):
    before = stored(notebook, 'alice')
    res = testapp.post('/home/alice/', {'name': 'sneaky'}, status=400)
    no_traceback(res)
    res = testapp.post('/home/alice/action', {'action': 'trash', 'ids': '0'}, status=400)
    testapp.post('/home/alice/empty_trash', status=400)
    assert stored(notebook, 'alice') == before
    assert states(notebook, 'alice') == {0: 'active'}


def test_json_requests_without_csrf_header_are_refused(notebook, testapp, alice_browser):
    before = stored(notebook, 'alice')
    testapp.post_json('/home/alice/', {'name': 'sneaky'}, headers=JSON, status=400)
    testapp.patch_json('/home/alice/0/cells/1', {'input': 'changed'}, status=400)
    testapp.patch_json('/home/alice/0/', {'name': 'renamed'}, status=400)
    testapp.post_json('/home/alice/0/cells', {'input': 'new'}, status=400)
    res = testapp.delete('/home/alice/0/', headers=JSON, status=400)
    assert 'error' in res.json
    testapp.patch_json('/home/alice/0/cells/1', {'input': 'changed'},
                       headers={'X-CSRF-Token': 'forged'}, status=400)
    assert stored(notebook, 'alice') == before


def test_json_requests_with_csrf_header_work(notebook, testapp, alice_browser):
    headers = {'X-CSRF-Token': alice_browser}
    testapp.patch_json('/home/alice/0/cells/1', {'input': 'changed'}, headers=headers,
                       status=200)
    res = testapp.post_json('/home/alice/', {'name': 'Second'}, headers=headers,
                            status=201)
    assert res.json['id'] == 1
    assert stored(notebook, 'alice') == {
        0: ('First', [('compute', ''), ('text', 'changed')]),
        1: ('Second', [('compute', '')])}
    testapp.delete('/home/alice/1/', headers=headers, status=200)
    assert set(stored(notebook, 'alice')) == {0}


def test_form_post_with_csrf_token_works(notebook, testapp, alice_browser):
    res = testapp.post('/home/alice/', {'name': 'From form', 'csrf_token': alice_browser},
                       status=302)
    assert res.headers['Location'] == 'http://localhost/home/alice/1/'
    assert stored(notebook, 'alice')[1] == ('From form', [('compute', '')])


def test_bearer_requests_need_no_csrf_token(notebook, testapp, api_for):
    notebook.add_user('alice')
    api = api_for('alice')
    created = api.post('/home/alice/', {'name': 'Scripted'}, status=201)
    assert created['id'] == 0
    api.patch('/home/alice/0/cells/0', {'input': 'x = 1'}, status=200)
    assert stored(notebook, 'alice') == {0: ('Scripted', [('compute', 'x = 1')])}
    api.delete('/home/alice/0/', status=200)
    assert stored(notebook, 'alice') == {}


def test_invalid_bearer_token_is_401(notebook, testapp, alice_browser):
    before = stored(notebook, 'alice')
    bad = Api(testapp, 'snb_not-a-token')
    # The browser's valid session does not help a request with a wrong token.
    res = testapp.get('/home/alice/0/', headers=bad.headers, status=401)
    assert res.content_type == 'application/json' and 'error' in res.json
    assert 'error' in bad.post('/home/alice/', {'name': 'x'}, status=401)
    bad.patch('/home/alice/0/cells/1', {'input': 'x'}, status=401)
    bad.delete('/home/alice/0/', status=401)
    assert stored(notebook, 'alice') == before


def test_revoked_user_token_is_401(notebook, testapp, api_for):
    notebook.add_user('alice')
    api = api_for('alice')
    api.get('/home/alice/', status=200)
    with notebook.transaction() as root:
        root.tokens.clear()
    api.get('/home/alice/', status=401)


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


# === The JSON API ==================================================================

@pytest.fixture
def api(notebook, api_for):
    notebook.add_user('alice')
    return api_for('alice')


def test_api_listing(notebook, api, testapp):
    assert api.get('/home/alice/') == {'worksheets': []}
    make_worksheet(notebook, 'alice', 'One')
    make_worksheet(notebook, 'alice', 'Two')
    data = api.get('/home/alice/', sort='name')
    assert [w['name'] for w in data['worksheets']] == ['One', 'Two']
    first = data['worksheets'][0]
    assert first['id'] == 0 and first['url'].endswith('/home/alice/0/')
    assert first['owner'] == 'alice' and first['state'] == 'active'
    # The browser gets the same list when it asks for JSON.
    login(testapp, 'alice')
    res = testapp.get('/home/alice/', params={'sort': 'name'}, headers=JSON)
    assert res.content_type == 'application/json'
    assert res.json == data


def test_api_create_worksheet(notebook, api):
    res = api.post('/home/alice/', {'name': '  My   sheet '}, status=201)
    assert res['id'] == 0 and res['url'].endswith('/home/alice/0/')
    assert res['name'] == 'My sheet'
    res = api.post('/home/alice/', {}, status=201)
    assert res['id'] == 1 and res['name'] == 'Untitled'
    assert stored(notebook, 'alice') == {
        0: ('My sheet', [('compute', '')]), 1: ('Untitled', [('compute', '')])}
    assert api.get(res['url'])['name'] == 'Untitled'


def test_api_create_worksheet_numbers_not_reused(notebook, api):
    for _ in range(3):
        api.post('/home/alice/', {'name': 'w'}, status=201)
    api.delete('/home/alice/2/', status=200)
    assert api.post('/home/alice/', {'name': 'w'}, status=201)['id'] == 3


@pytest.mark.parametrize('body', [{'name': 'x' * 201}, {'name': 5}, {'name': ['x']}])
def test_api_create_worksheet_bad_name(notebook, api, body):
    res = api.post('/home/alice/', body, status=400)
    assert 'error' in res
    assert stored(notebook, 'alice') == {}


def test_api_create_worksheet_null_name_is_not_a_server_error(notebook, api):
    res = api.testapp.post_json('/home/alice/', {'name': None}, headers=api.headers,
                                status='*')
    assert res.status_int in (201, 400), res.text
    if res.status_int == 201:
        assert stored(notebook, 'alice') == {0: ('Untitled', [('compute', '')])}
    else:
        assert stored(notebook, 'alice') == {}


def test_api_get_worksheet(notebook, api):
    make_worksheet(notebook, 'alice', 'W', cells=[('text', 'hello')])
    data = api.get('/home/alice/0/')
    assert data['id'] == 0 and data['name'] == 'W' and data['owner'] == 'alice'
    assert data['typeset'] is True
    assert [{k: c[k] for k in ('id', 'type', 'input', 'status', 'outputs')}
            for c in data['cells']] == [
        {'id': 0, 'type': 'compute', 'input': '', 'status': 'new', 'outputs': []},
        {'id': 1, 'type': 'text', 'input': 'hello', 'status': 'new', 'outputs': []}]
    cell = api.get('/home/alice/0/cells/1')
    assert cell == data['cells'][1]


def test_api_add_cells(notebook, api):
    make_worksheet(notebook, 'alice', 'W')
    res = api.post('/home/alice/0/cells', {'input': 'end'}, status=201)
    assert res['id'] == 1
    assert api.post('/home/alice/0/cells', {'input': 'top', 'before': 0},
                    status=201)['id'] == 2
    assert api.post('/home/alice/0/cells', {'type': 'text', 'input': 'middle',
                                            'after': 0}, status=201)['id'] == 3
    assert api.post('/home/alice/0/cells', {'input': 'after end', 'after': 1},
                    status=201)['id'] == 4
    assert stored(notebook, 'alice')[0][1] == [
        ('compute', 'top'), ('compute', ''), ('text', 'middle'), ('compute', 'end'),
        ('compute', 'after end')]
    assert [c['id'] for c in api.get('/home/alice/0/')['cells']] == [2, 0, 3, 1, 4]


def test_api_edit_cell(notebook, api):
    make_worksheet(notebook, 'alice', 'W')
    res = api.patch('/home/alice/0/cells/0', {'input': 'x = 2'}, status=200)
    assert res['input'] == 'x = 2' and res['id'] == 0
    res = api.patch('/home/alice/0/cells/0', {'type': 'text'}, status=200)
    assert res['type'] == 'text' and res['input'] == 'x = 2'
    assert stored(notebook, 'alice')[0][1] == [('text', 'x = 2')]


def test_api_delete_and_move_cells(notebook, api):
    make_worksheet(notebook, 'alice', 'W', cells=[('compute', 'b'), ('compute', 'c')])
    assert api.post('/home/alice/0/cells/2/move', {'direction': 'up'},
                    status=200)['order'] == [0, 2, 1]
    assert api.post('/home/alice/0/cells/0/move', {'direction': 'up'},
                    status=200)['order'] == [0, 2, 1]
    assert api.post('/home/alice/0/cells/1/move', {'direction': 'down'},
                    status=200)['order'] == [0, 2, 1]
    assert api.post('/home/alice/0/cells/0/move', {'direction': 'down'},
                    status=200)['order'] == [2, 0, 1]
    assert api.delete('/home/alice/0/cells/0', status=200) == {'deleted': 0}
    assert stored(notebook, 'alice')[0][1] == [('compute', 'c'), ('compute', 'b')]
    api.get('/home/alice/0/cells/0', status=404)


def test_api_rename_and_typeset(notebook, api):
    make_worksheet(notebook, 'alice', 'W')
    res = api.patch('/home/alice/0/', {'name': ' New   name '}, status=200)
    assert res['name'] == 'New name'
    res = api.patch('/home/alice/0/', {'typeset': False}, status=200)
    assert res['typeset'] is False
    data = api.get('/home/alice/0/')
    assert data['name'] == 'New name' and data['typeset'] is False
    res = api.patch('/home/alice/0/', {'state': 'archive'}, status=200)
    assert res['state'] == 'archive'
    assert states(notebook, 'alice') == {0: 'archive'}


def test_api_clear_cell_and_outputs(notebook, api):
    make_worksheet(notebook, 'alice', 'W')
    with notebook.transaction() as root:
        cell = root.user_by_login('alice')['0'].ordered_cells()[0]
        cell.input = '1+1'
        cell.output.update('done', [{'type': 'text', 'text': '2'}], execution_count=1)
    res = api.post('/home/alice/0/cells/0/clear', {}, status=200)
    assert res['outputs'] == [] and res['status'] == 'new' and res['input'] == '1+1'
    assert api.post('/home/alice/0/clear_outputs', {}, status=200) == {'cleared': 0}


def test_api_delete_worksheet(notebook, api):
    make_worksheet(notebook, 'alice', 'W')
    assert api.delete('/home/alice/0/', status=200) == {'deleted': 0}
    api.get('/home/alice/0/', status=404)
    assert stored(notebook, 'alice') == {}


def test_api_through_browser_session(notebook, testapp, alice_browser):
    headers = dict(JSON, **{'X-CSRF-Token': alice_browser})
    res = testapp.post_json('/home/alice/0/cells', {'input': 'added', 'after': 1},
                            headers=headers, status=201)
    assert res.json['id'] == 2
    data = testapp.get('/home/alice/0/', headers=JSON).json
    assert [c['input'] for c in data['cells']] == ['', 'hello', 'added']


# --- Rejected requests change nothing ------------------------------------------------

def raw(api, method, url, body):
    """A request with a raw JSON body (which may be malformed)."""
    return api.testapp.request(url, method=method, body=body,
                               content_type='application/json',
                               headers=api.headers, expect_errors=True)


REJECTED = [
    # (method, url, raw body, status)
    ('PATCH', '/home/alice/0/cells/0', b'{"input": ', 400),
    ('PATCH', '/home/alice/0/cells/0', b'\xff\xfe', 400),
    ('PATCH', '/home/alice/0/cells/0', b'["input", "x"]', 400),
    ('PATCH', '/home/alice/0/cells/0', b'"just a string"', 400),
    ('PATCH', '/home/alice/0/cells/0', b'null', 400),
    ('PATCH', '/home/alice/0/cells/0', b'', 400),
    ('PATCH', '/home/alice/0/cells/0', b'{}', 400),
    ('PATCH', '/home/alice/0/cells/0', b'{"input": 5}', 400),
    ('PATCH', '/home/alice/0/cells/0', b'{"input": "x", "type": "markdown"}', 400),
    ('PATCH', '/home/alice/0/', b'{"name": ', 400),
    ('PATCH', '/home/alice/0/', b'[1]', 400),
    ('PATCH', '/home/alice/0/', b'{}', 400),
    ('PATCH', '/home/alice/0/', b'{"typeset": "yes"}', 400),
    ('PATCH', '/home/alice/0/', b'{"name": "new", "typeset": "yes"}', 400),
    ('PATCH', '/home/alice/0/', b'{"state": "gone"}', 400),
    ('PATCH', '/home/alice/0/', b'{"name": "new", "state": "gone"}', 400),
    ('PATCH', '/home/alice/0/', b'{"name": null}', 400),
    ('PATCH', '/home/alice/0/', b'{"name": "' + b'x' * 201 + b'"}', 400),
    ('POST', '/home/alice/0/cells', b'{"after": 99}', 400),
    ('POST', '/home/alice/0/cells', b'{"after": "0"}', 400),
    ('POST', '/home/alice/0/cells', b'{"after": 0.0}', 400),
    ('POST', '/home/alice/0/cells', b'{"after": true}', 400),
    ('POST', '/home/alice/0/cells', b'{"before": -1}', 400),
    ('POST', '/home/alice/0/cells', b'{"after": 0, "before": 1}', 400),
    ('POST', '/home/alice/0/cells', b'{"type": "markdown"}', 400),
    ('POST', '/home/alice/0/cells', b'{"input": ["x"]}', 400),
    ('POST', '/home/alice/0/cells', b'{broken', 400),
    ('POST', '/home/alice/0/cells', b'[]', 400),
    ('POST', '/home/alice/0/cells/1/move', b'{"direction": "left"}', 400),
    ('POST', '/home/alice/0/cells/1/move', b'{}', 400),
    ('POST', '/home/alice/0/cells/1/move', b'[1]', 400),
    ('POST', '/home/alice/0/cells/1/evaluate', b'{"wait": "soon"}', 400),
    ('POST', '/home/alice/0/cells/1/evaluate', b'{"wait": -1}', 400),
    ('POST', '/home/alice/0/cells/1/evaluate', b'{"wait": true}', 400),
    ('POST', '/home/alice/0/cells/1/evaluate', b'{"wait": NaN}', 400),
    ('POST', '/home/alice/0/cells/1/evaluate', b'{"wait": [1]}', 400),
    ('POST', '/home/alice/0/cells/1/evaluate', b'{"input": "changed"}', 409),
    ('POST', '/home/alice/0/cells/1/evaluate', b'[]', 400),
    ('POST', '/home/alice/', b'{"name": ', 400),
    ('POST', '/home/alice/', b'"name"', 400),
    ('PATCH', '/home/alice/7/', b'{"name": "x"}', 404),
    ('DELETE', '/home/alice/7/', b'', 404),
    ('PATCH', '/home/alice/0/cells/7', b'{"input": "x"}', 404),
    ('DELETE', '/home/alice/0/cells/7', b'', 404),
    ('POST', '/home/alice/0/cells/7/move', b'{"direction": "up"}', 404),
    ('POST', '/home/alice/0/cells/7/evaluate', b'{}', 404),
    ('PATCH', '/home/alice/0/cells/x', b'{"input": "x"}', 404),
    ('POST', '/home/alice/x/cells', b'{}', 404),
    ('POST', '/home/nobody/', b'{"name": "x"}', 404),
]


@pytest.fixture
def two_cells(notebook, api):
    """alice's worksheet 0: compute cell 0 and text cell 1."""
    make_worksheet(notebook, 'alice', 'W', cells=[('text', 'hello')])
    return api


@pytest.mark.parametrize('method, url, body, status', REJECTED)
def test_rejected_requests_change_nothing(notebook, two_cells, method, url, body, status):
    api = two_cells
    before_json = api.get('/home/alice/0/')
    before = stored(notebook, 'alice')
    res = raw(api, method, url, body)
    assert res.status_int == status, res.text
    assert res.content_type == 'application/json'
    assert set(res.json) == {'error'} and isinstance(res.json['error'], str)
    assert api.get('/home/alice/0/') == before_json
    assert stored(notebook, 'alice') == before
    assert states(notebook, 'alice') == {0: 'active'}


def test_deleting_the_last_cell_is_409(notebook, api):
    make_worksheet(notebook, 'alice', 'W')
    before = api.get('/home/alice/0/')
    res = api.delete('/home/alice/0/cells/0', status=409)
    assert 'error' in res
    assert api.get('/home/alice/0/') == before
    # With two cells one may go, but not the second.
    api.post('/home/alice/0/cells', {'input': 'x'}, status=201)
    api.delete('/home/alice/0/cells/0', status=200)
    api.delete('/home/alice/0/cells/1', status=409)
    assert stored(notebook, 'alice')[0][1] == [('compute', 'x')]


@pytest.mark.parametrize('query, status', [
    ({'wait': 'soon'}, 400), ({'wait': '-2'}, 400), ({'wait': 'nan'}, 400),
    ({'since': 'abc'}, 400), ({'since': '1.5'}, 400), ({'wait': '0'}, 200),
    ({'since': '0', 'wait': '0.01'}, 200)])
def test_get_cell_query_validation(notebook, two_cells, query, status):
    res = two_cells.testapp.get('/home/alice/0/cells/1', params=query,
                                headers=two_cells.headers, status='*')
    assert res.status_int == status, res.text
    if status == 400:
        assert set(res.json) == {'error'}
    else:
        assert res.json['id'] == 1


def test_unknown_worksheet_and_cell_are_404_json(notebook, api):
    make_worksheet(notebook, 'alice', 'W')
    for url in ('/home/alice/5/', '/home/alice/0/cells/5', '/home/alice/x/',
                '/home/alice/0/cells/x', '/home/nobody/'):
        res = api.testapp.get(url, headers=api.headers, status=404)
        assert res.content_type == 'application/json'
        assert set(res.json) == {'error'}


# === The listing page ==============================================================

@pytest.fixture
def three(notebook, testapp):
    """alice logged in, with worksheets 0 'Banana', 1 'apple', 2 'Cherry'
    (modified in the order apple, Cherry, Banana: Banana is the newest)."""
    notebook.add_user('alice')
    for name in ('Banana', 'apple', 'Cherry'):
        make_worksheet(notebook, 'alice', name)
    with notebook.transaction() as root:
        alice = root.user_by_login('alice')
        alice['1'].modified = 1000.0
        alice['2'].modified = 2000.0
        alice['0'].modified = 3000.0
    return login(testapp, 'alice')


def select(form, numbers):
    for field in form.fields.get('ids', []):
        field.checked = field._value in [str(n) for n in numbers]


def test_listing_sorts(testapp, three):
    by_modified = testapp.get('/home/alice/')
    assert ids_listed(by_modified) == ['0', '2', '1']
    assert ids_listed(testapp.get('/home/alice/', {'sort': 'modified'})) == ['0', '2', '1']
    by_name = testapp.get('/home/alice/', {'sort': 'name'})
    assert ids_listed(by_name) == ['1', '0', '2']
    data = testapp.get('/home/alice/', {'sort': 'name'}, headers=JSON).json
    assert [w['name'] for w in data['worksheets']] == ['apple', 'Banana', 'Cherry']


def test_listing_tabs_and_actions(notebook, testapp, three):
    page = testapp.get('/home/alice/')
    for state in ('active', 'archive', 'trash'):
        assert '?state=%s' % state in page.text
    # Archive 1, trash 2, from the active tab.
    form = page.forms['listing-form']
    select(form, [1])
    res = form.submit('action', value='archive', status=302)
    assert 'state=active' in res.headers['Location']
    form = testapp.get('/home/alice/').forms['listing-form']
    select(form, [2])
    form.submit('action', value='trash', status=302)
    assert states(notebook, 'alice') == {0: 'active', 1: 'archive', 2: 'trash'}

    assert ids_listed(testapp.get('/home/alice/')) == ['0']
    assert ids_listed(testapp.get('/home/alice/', {'state': 'archive'})) == ['1']
    trash = testapp.get('/home/alice/', {'state': 'trash'})
    assert ids_listed(trash) == ['2']
    assert ids_listed(testapp.get('/home/alice/', {'state': 'all', 'sort': 'name'})) == [
        '1', '0', '2']
    assert 'value="delete"' in trash.text
    assert 'value="delete"' not in testapp.get('/home/alice/').text

    # Restore from the archive tab.
    form = testapp.get('/home/alice/', {'state': 'archive'}).forms['listing-form']
    select(form, [1])
    res = form.submit('action', value='active', status=302)
    assert 'state=archive' in res.headers['Location']
    assert states(notebook, 'alice') == {0: 'active', 1: 'active', 2: 'trash'}
    assert set(stored(notebook, 'alice')) == {0, 1, 2}


def test_listing_copy(notebook, testapp, three):
    form = testapp.get('/home/alice/').forms['listing-form']
    select(form, [0, 2])
    form.submit('action', value='copy', status=302)
    worksheets = stored(notebook, 'alice')
    assert sorted(worksheets) == [0, 1, 2, 3, 4]
    assert sorted(worksheets[n][0] for n in (3, 4)) == ['Copy of Banana', 'Copy of Cherry']


def test_listing_rename(notebook, testapp, three):
    form = testapp.get('/home/alice/').forms['listing-form']
    select(form, [2])
    form['new_name'] = '  Durian   pie '
    form.submit('action', value='rename', status=302)
    assert stored(notebook, 'alice')[2][0] == 'Durian pie'
    # Two selected: nothing renamed, a message says why.
    form = testapp.get('/home/alice/').forms['listing-form']
    select(form, [0, 1])
    form['new_name'] = 'Both'
    form.submit('action', value='rename', status=302)
    assert 'Select one worksheet to rename.' in testapp.get('/home/alice/').text
    assert [stored(notebook, 'alice')[n][0] for n in (0, 1)] == ['Banana', 'apple']


def test_delete_for_good_only_from_trash(notebook, testapp, three):
    # An active worksheet cannot be deleted for good, even by a hand-made request.
    res = testapp.post('/home/alice/action', {'action': 'delete', 'ids': '0',
                                              'csrf_token': three}, status=409)
    no_traceback(res)
    assert set(stored(notebook, 'alice')) == {0, 1, 2}
    # Mixed selections are refused as a whole.
    with notebook.transaction() as root:
        alice = root.user_by_login('alice')
        alice['2'].set_state(alice.id, 'trash')
    testapp.post('/home/alice/action', [('action', 'delete'), ('ids', '0'), ('ids', '2'),
                                        ('csrf_token', three)], status=409)
    assert set(stored(notebook, 'alice')) == {0, 1, 2}
    # From the trash tab, it goes.
    form = testapp.get('/home/alice/', {'state': 'trash'}).forms['listing-form']
    select(form, [2])
    res = form.submit('action', value='delete', status=302)
    assert 'state=trash' in res.headers['Location']
    assert set(stored(notebook, 'alice')) == {0, 1}
    # Its number is not given out again.
    testapp.post('/home/alice/', {'name': 'new', 'csrf_token': three}, status=302)
    assert set(stored(notebook, 'alice')) == {0, 1, 3}


def test_empty_trash(notebook, testapp, three):
    with notebook.transaction() as root:
        alice = root.user_by_login('alice')
        alice['0'].set_state(alice.id, 'trash')
        alice['1'].set_state(alice.id, 'trash')
    assert 'empty_trash' not in testapp.get('/home/alice/').text
    trash = testapp.get('/home/alice/', {'state': 'trash'})
    form = [f for f in trash.forms.values() if f.action.endswith('/empty_trash')][0]
    res = form.submit(status=302)
    assert 'state=trash' in res.headers['Location']
    assert stored(notebook, 'alice') == {2: ('Cherry', [('compute', '')])}
    page = testapp.get(res.headers['Location'])
    assert 'Deleted 2 worksheet(s) for good.' in page.text
    assert ids_listed(page) == []


def test_listing_action_without_selection(notebook, testapp, three):
    res = testapp.post('/home/alice/action', {'action': 'trash', 'csrf_token': three},
                       status=302)
    assert 'Select one or more worksheets first.' in testapp.get(
        res.headers['Location']).text
    testapp.post('/home/alice/action', {'action': 'trash', 'ids': '99',
                                        'csrf_token': three}, status=302)
    assert states(notebook, 'alice') == {0: 'active', 1: 'active', 2: 'active'}


def test_listing_action_unknown_is_400(notebook, testapp, three):
    res = testapp.post('/home/alice/action', {'action': 'explode', 'ids': '0',
                                              'csrf_token': three}, status=400)
    no_traceback(res)
    assert set(stored(notebook, 'alice')) == {0, 1, 2}
    assert states(notebook, 'alice') == {0: 'active', 1: 'active', 2: 'active'}


def test_listing_states_are_per_user(notebook, testapp, three):
    notebook.add_user('bob')
    with notebook.transaction() as root:
        ws = root.user_by_login('alice')['0']
        ws.collaborators.append('userid:' + root.user_by_login('bob').id)
    bob = Api(testapp, notebook.token('bob'))
    # bob has no worksheets of his own.
    assert bob.patch('/home/alice/0/', {'state': 'trash'}, status=200)['state'] == 'trash'
    assert bob.get('/home/alice/0/')['state'] == 'trash'
    with notebook.transaction() as root:
        bob_id = root.user_by_login('bob').id
        assert root.user_by_login('alice')['0'].state_for(bob_id) == 'trash'
    assert states(notebook, 'alice')[0] == 'active'
    assert Api(testapp, notebook.token('alice')).get('/home/alice/0/')['state'] == 'active'
    assert ids_listed(testapp.get('/home/alice/')) == ['0', '2', '1']


def test_other_user_cannot_use_listing_actions(notebook, testapp, three):
    notebook.add_user('mallory')
    other = new_browser(notebook)
    token = login(other, 'mallory')
    other.post('/home/alice/action', {'action': 'trash', 'ids': '0',
                                      'csrf_token': token}, status=404)
    other.post('/home/alice/empty_trash', {'csrf_token': token}, status=404)
    assert states(notebook, 'alice') == {0: 'active', 1: 'active', 2: 'active'}


# === Sign-up =======================================================================

def signup(testapp, login_name, password, password2=None):
    page = testapp.get('/signup')
    return testapp.post('/signup', {
        'login': login_name, 'password': password,
        'password2': password if password2 is None else password2,
        'csrf_token': csrf_token_of(page)}, status='*')


def user_exists(notebook, login_name):
    with notebook.transaction() as root:
        return root.user_by_login(login_name) is not None


def test_signup_creates_user_and_logs_in(notebook, testapp):
    res = signup(testapp, 'newbie', 'a good password')
    assert res.status_int == 302
    assert res.headers['Location'] == 'http://localhost/home/newbie/'
    assert user_exists(notebook, 'newbie')
    assert testapp.get('/home/newbie/').status_int == 200
    # The new password works in a fresh browser.
    other = new_browser(notebook)
    login(other, 'newbie', 'a good password')


@pytest.mark.parametrize('login_name', [
    '', 'ab', '1abc', 'a b', 'a/b', '@@view', '_abc', 'x' * 65, 'abc<script>', 'home/x'])
def test_signup_rejects_bad_usernames(notebook, testapp, login_name):
    res = signup(testapp, login_name, 'a good password')
    assert res.status_int == 400
    no_traceback(res)
    assert 'class="error"' in res.text
    with notebook.transaction() as root:
        assert len(root.home) == 0
    assert not logged_in(testapp)


@pytest.mark.parametrize('password, password2', [
    ('short', None), ('1234567', None), ('', None), ('newbie', None), ('NEWBIE12', None),
    ('a good password', 'another password')])
def test_signup_rejects_bad_passwords(notebook, testapp, password, password2):
    login_name = 'newbie12' if password == 'NEWBIE12' else 'newbie'
    res = signup(testapp, login_name, password, password2)
    assert res.status_int == 400
    assert 'class="error"' in res.text
    assert not user_exists(notebook, login_name)
    assert not logged_in(testapp)


def test_signup_rejects_taken_names(notebook, testapp):
    alice_id = notebook.add_user('alice')
    res = signup(testapp, 'alice', 'a good password')
    assert res.status_int == 400
    assert 'taken' in res.text
    with notebook.transaction() as root:
        assert len(root.home) == 1
        assert root.user_by_login('alice').id == alice_id
    # alice's password is untouched.
    login(testapp, 'alice')


def test_signup_requires_csrf(notebook, testapp):
    testapp.get('/signup')
    testapp.post('/signup', {'login': 'newbie', 'password': 'a good password',
                             'password2': 'a good password'}, status=400)
    assert not user_exists(notebook, 'newbie')


def test_signup_disabled_is_404(tmp_path):
    nb = Notebook(tmp_path / 'nosignup', **{'sagenb.allow_signup': 'false'})
    try:
        app = new_browser(nb)
        res = app.get('/signup', status=404)
        no_traceback(res)
        page = app.get('/login')
        assert '/signup' not in page.text
        app.post('/signup', {'login': 'newbie', 'password': 'a good password',
                             'password2': 'a good password',
                             'csrf_token': csrf_token_of(page)}, status=404)
        assert not user_exists(nb, 'newbie')
    finally:
        nb.close()


# === Changing one's password =======================================================

def change_password(app, current, new=None, new2=None):
    if new is None:
        current, new = PASSWORD, current
    page = app.get('/account')
    return app.post('/account', {
        'current_password': current, 'new_password': new,
        'new_password2': new if new2 is None else new2,
        'csrf_token': csrf_token_of(page)}, status='*')


def test_change_password_ends_other_sessions(notebook, testapp):
    notebook.add_user('alice')
    other = new_browser(notebook)
    login(testapp, 'alice')
    login(other, 'alice')
    assert logged_in(other)

    res = change_password(testapp, 'a new password 1')
    assert res.status_int == 302
    assert res.headers['Location'] == 'http://localhost/account'
    assert 'Your password was changed.' in testapp.get('/account').text
    assert logged_in(testapp)
    assert testapp.get('/home/alice/').status_int == 200
    # The other session is over.
    assert not logged_in(other)
    other.get('/home/alice/', status=302)
    # Old password refused, new one accepted.
    third = new_browser(notebook)
    page = third.get('/login')
    third.post('/login', {'login': 'alice', 'password': PASSWORD,
                          'csrf_token': csrf_token_of(page)}, status=400)
    login(third, 'alice', 'a new password 1')


@pytest.mark.parametrize('current, new, new2', [
    ('wrong password', 'a new password 1', None),
    ('', 'a new password 1', None),
    (PASSWORD, 'short', None),
    (PASSWORD, 'alice', None),
    (PASSWORD, 'a new password 1', 'a new password 2')])
def test_change_password_refused(notebook, testapp, current, new, new2):
    notebook.add_user('alice')
    other = new_browser(notebook)
    login(testapp, 'alice')
    login(other, 'alice')
    with notebook.transaction() as root:
        old_hash = root.user_by_login('alice').password_hash
    res = change_password(testapp, current, new, new2)
    assert res.status_int == 400
    assert 'class="error"' in res.text
    with notebook.transaction() as root:
        assert root.user_by_login('alice').password_hash == old_hash
    assert logged_in(testapp) and logged_in(other)


def test_change_password_requires_csrf(notebook, testapp):
    notebook.add_user('alice')
    login(testapp, 'alice')
    testapp.post('/account', {'current_password': PASSWORD,
                              'new_password': 'a new password 1',
                              'new_password2': 'a new password 1'}, status=400)
    other = new_browser(notebook)
    login(other, 'alice')


# === Bad input is answered, never a traceback ======================================

@pytest.mark.parametrize('method, path, params, status', [
    ('GET', '/home/alice/0/cells/notanumber', None, 404),
    ('GET', '/home/alice/0/cells/99', None, 404),
    ('GET', '/home/alice/0/cells/0/nothing', None, 404),
    ('GET', '/home/alice/0/nothing', None, 404),
    ('GET', '/home/alice/99/', None, 404),
    ('GET', '/home/alice/notanumber/', None, 404),
    ('GET', '/home/alice/@@nothing', None, 404),
    ('GET', '/home/nobody/', None, 404),
    ('GET', '/home/alice/0/cells/0/move', None, 404),
    ('GET', '/home/alice/?state=bogus', None, 400),
    ('GET', '/home/alice/?sort=bogus', None, 400),
    ('GET', '/home/alice/0/cells/0?since=x', None, 400),
    ('GET', '/home/alice/0/cells/0?wait=x', None, 400),
    ('POST', '/home/alice/', {'name': 'x' * 201}, 400),
    ('POST', '/home/alice/action', {'action': 'bogus', 'ids': '0'}, 400),
    ('POST', '/home/alice/0/copy', {'name': 'x' * 201}, 400),
])
def test_bad_input_in_the_browser(notebook, testapp, method, path, params, status):
    notebook.add_user('alice')
    make_worksheet(notebook, 'alice', 'W')
    token = login(testapp, 'alice')
    before = stored(notebook, 'alice')
    if method == 'GET':
        res = testapp.get(path, status='*')
    else:
        res = testapp.post(path, dict(params, csrf_token=token), status='*')
    assert res.status_int == status, res.text[:500]
    assert 'text/html' in res.content_type
    no_traceback(res)
    assert stored(notebook, 'alice') == before


def test_huge_name_by_api_is_400(notebook, api):
    make_worksheet(notebook, 'alice', 'W')
    before = api.get('/home/alice/0/')
    res = api.post('/home/alice/', {'name': 'y' * 5000}, status=400)
    assert 'error' in res
    res = api.post('/home/alice/0/copy', {'name': 'y' * 201}, status=400)
    assert 'error' in res
    assert api.get('/home/alice/0/') == before
    assert set(stored(notebook, 'alice')) == {0}
    # 200 characters is still fine.
    assert api.post('/home/alice/', {'name': 'z' * 200}, status=201)['name'] == 'z' * 200
