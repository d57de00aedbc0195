"""The worksheet and cell JSON API through WebTest: create, read, edit, move,
delete; rejected requests change nothing; bad input is answered, never a traceback.
No Sage process is ever started: only text cells (or no cells) are evaluated, or the fake
kernel (support/fakekernel.py) runs them."""
import pytest

from ...support.fakekernel import FakeKernels
from ...support.notebook import login
from ...support.webapp import JSON, make_worksheet, no_traceback, states, stored

# argon2 with its default cost takes ~0.2 s a hash: far too slow for many tests.
pytestmark = pytest.mark.usefixtures('cheap_password_hashes')


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
    ('POST', '/home/alice/0/evaluate_all', b'{"from": 99}', 400),
    ('POST', '/home/alice/0/evaluate_all', b'{"from": "1"}', 400),
    ('POST', '/home/alice/0/evaluate_all', b'{"from": true}', 400),
    ('POST', '/home/alice/0/evaluate_all', b'{"from": 1.0}', 400),
    ('POST', '/home/alice/0/evaluate_all', b'[1]', 400),
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


def test_evaluate_from_a_cell_down(notebook, api):
    """"Evaluate from here down" (issue 22): the cell and those below it, in order."""
    notebook.host.kernel_factory = FakeKernels()
    make_worksheet(notebook, 'alice', 'W', cells=[
        ('compute', 'print one'), ('text', 'notes'), ('compute', 'print two'),
        ('compute', 'print three')])
    ids = [c['id'] for c in api.get('/home/alice/0/')['cells']]
    queued = api.post('/home/alice/0/evaluate_all', {'from': ids[2]})['queued']
    assert queued == [ids[3], ids[4]]
    done = api.get('/home/alice/0/cells/%d' % ids[4], since=0, wait=10)
    for _ in range(20):
        if done['status'] == 'done':
            break
        done = api.get('/home/alice/0/cells/%d' % ids[4], since=done['version'], wait=5)
    assert done['outputs'][0]['text'] == 'three\n'
    assert api.get('/home/alice/0/cells/%d' % ids[1])['status'] == 'new'
    # Without "from": every compute cell with input.
    assert api.post('/home/alice/0/evaluate_all', {})['queued'] == [ids[1], ids[3], ids[4]]


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
