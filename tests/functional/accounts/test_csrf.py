"""CSRF: form posts need the token, JSON requests the header, bearer tokens
neither (WebTest; no Sage process)."""
import pytest

from ...support.notebook import Api
from ...support.webapp import JSON, no_traceback, states, stored

# argon2 with its default cost takes ~0.2 s a hash: far too slow for many tests.
pytestmark = pytest.mark.usefixtures('cheap_password_hashes')


# === CSRF ==========================================================================

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
