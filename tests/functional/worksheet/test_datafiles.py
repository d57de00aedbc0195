"""A worksheet's data files through the API (no Sage process: see tests/e2e/sage/ for DATA)."""
import pytest

from ...support.notebook import Api


@pytest.fixture
def alice(notebook, testapp):
    notebook.add_user('alice')
    return Api(testapp, notebook.token('alice'))


@pytest.fixture
def ws(alice):
    return alice.post('/home/alice/', {'name': 'files'}, status=201)['url']


def upload(alice, ws, filename, content, status=201, **fields):
    return alice.testapp.post(ws + 'data', params=fields,
                              upload_files=[('file', filename, content)],
                              headers=alice.headers, status=status).json


def test_upload_list_download_rename_delete(alice, ws):
    assert alice.get(ws + 'data') == {'files': []}
    made = upload(alice, ws, 'x.csv', b'a,b\n1,2\n')
    assert made['name'] == 'x.csv' and made['size'] == 8
    assert [f['name'] for f in alice.get(ws + 'data')['files']] == ['x.csv']
    assert alice.get(ws)['data_files'][0]['name'] == 'x.csv'
    assert alice.testapp.get(made['url'], headers=alice.headers).body == b'a,b\n1,2\n'
    renamed = alice.post(made['url'] + '/rename', {'name': 'y.csv'}, status=200)
    assert renamed['name'] == 'y.csv'
    alice.testapp.get(made['url'], headers=alice.headers, status=404)
    assert alice.testapp.get(ws + 'y.csv', headers=alice.headers).body == b'a,b\n1,2\n'
    assert alice.delete(renamed['url'], status=200) == {'deleted': 'y.csv'}
    assert alice.get(ws + 'data') == {'files': []}


def test_create_empty_and_edit_text(alice, ws):
    made = alice.post(ws + 'data', {'name': 'notes.txt'}, status=201)
    assert made['size'] == 0
    edited = alice.testapp.put_json(made['url'], {'content': 'h\u00e9llo'},
                                    headers=alice.headers).json
    assert edited['size'] == len('h\u00e9llo'.encode())
    res = alice.testapp.get(made['url'], headers=alice.headers)
    assert res.text == 'h\u00e9llo' and res.content_type == 'text/plain'


def test_name_clash_needs_replace(alice, ws):
    upload(alice, ws, 'a.txt', b'one')
    res = upload(alice, ws, 'a.txt', b'two', status=409)
    assert 'exists' in res['error']
    upload(alice, ws, 'a.txt', b'two', replace='true')
    assert alice.testapp.get(ws + 'data/a.txt', headers=alice.headers).body == b'two'
    upload(alice, ws, 'b.txt', b'b')
    res = alice.post(ws + 'data/b.txt/rename', {'name': 'a.txt'}, status=409)
    assert 'exists' in res['error']


@pytest.mark.parametrize('name', ['', '../x', 'a/b', ' lead', 'x\x01', '..'])
def test_bad_names_are_refused(alice, ws, name):
    res = alice.post(ws + 'data', {'name': name}, status=400)
    assert 'data file name' in res['error']
    assert alice.get(ws + 'data') == {'files': []}


def test_upload_name_comes_from_the_file_and_can_be_given(alice, ws):
    assert upload(alice, ws, 'C:\\Users\\me\\plot.png', b'png')['name'] == 'plot.png'
    assert upload(alice, ws, 'z.bin', b'z', name='given.bin')['name'] == 'given.bin'


def test_size_limit(notebook, tmp_path):
    from ...support.notebook import Notebook
    import webtest
    nb = Notebook(tmp_path / 'small', **{'sagenb.data.max_mb': '1'})
    try:
        nb.add_user('alice')
        api = Api(webtest.TestApp(nb.app, extra_environ={'HTTP_HOST': 'localhost:80'}),
                  nb.token('alice'))
        ws = api.post('/home/alice/', {'name': 'w'}, status=201)['url']
        res = upload(api, ws, 'big', b'x' * (2**20 + 1), status=413)
        assert 'at most 1 MB' in res['error']
        assert api.get(ws + 'data') == {'files': []}
    finally:
        nb.close()


def test_others_may_not_touch_data_files(notebook, testapp, alice, ws):
    made = upload(alice, ws, 'secret.txt', b's')
    notebook.add_user('bob')
    bob = Api(testapp, notebook.token('bob'))
    testapp.get(made['url'], headers=bob.headers, status=404)
    testapp.get(ws + 'data', headers=bob.headers, status=404)
    testapp.post(ws + 'data', upload_files=[('file', 'x', b'x')], headers=bob.headers,
                 status=404)
    testapp.put_json(made['url'], {'content': 'mine'}, headers=bob.headers, status=404)
    testapp.delete(made['url'], headers=bob.headers, status=404)
    bob.post(made['url'] + '/rename', {'name': 'y'}, status=404)
    assert alice.testapp.get(made['url'], headers=alice.headers).body == b's'


def test_worksheet_page_without_slash_redirects(notebook, testapp):
    from ...support.notebook import login
    notebook.add_user('carol')
    login(testapp, 'carol')
    res = testapp.get('/home/carol/0', status=404)
    created = testapp.post('/home/carol/', {'name': 'x', 'csrf_token': _token(testapp)},
                           status=302)
    path = created.location.replace('http://localhost', '').rstrip('/')
    res = testapp.get(path + '?a=1', status=302)
    assert res.location.endswith(path + '/?a=1')


def _token(testapp):
    from ...support.notebook import csrf_token_of
    return csrf_token_of(testapp.get('/account'))


@pytest.mark.parametrize('name', ['@@view', 'rtl\u202etxt.exe', 'iso\u2066late', 'c1\x85',
                                  'x' * 201, 'cr\rlf\n', 'tab\t'])
def test_names_the_page_must_refuse(alice, ws, name):
    res = alice.post(ws + 'data', {'name': name}, status=400)
    assert 'not a usable data file name' in res['error']
    made = upload(alice, ws, 'ok.txt', b'ok')
    res = alice.post(made['url'] + '/rename', {'name': name}, status=400)
    assert alice.get(ws + 'data')['files'][0]['name'] == 'ok.txt'
