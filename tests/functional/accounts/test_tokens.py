"""API tokens: made only by a logged-in session (never by a token), optional expiry,
a read-only scope that may only GET, listed with both on /tokens."""
import re
import time

import pytest
import webtest

from sagenb_pyramid import audit
from sagenb_pyramid.security import token_digest

from ...support.notebook import Api, login

pytestmark = pytest.mark.usefixtures('cheap_password_hashes')

JSON = {'Accept': 'application/json'}


def new_app(notebook):
    return webtest.TestApp(notebook.app, extra_environ={'HTTP_HOST': 'localhost:80'})


@pytest.fixture
def bob(notebook):
    notebook.add_user('bob')
    app = new_app(notebook)
    app.csrf = login(app, 'bob')
    return app


def make_token(app, status=201, **fields):
    """A token made on the /tokens page; returns its JSON description."""
    res = app.post('/tokens', dict(fields, csrf_token=app.csrf), headers=JSON, status=status)
    return res.json


def stored_tokens(notebook):
    with notebook.transaction() as root:
        return sorted((d, r.user_id, r.label) for d, r in root.tokens.items())


def worksheets_of(notebook, login_name):
    with notebook.transaction() as root:
        return {w.number: (w.name, [c.input for c in w.ordered_cells()])
                for w in root.user_by_login(login_name).worksheets()}


def test_a_token_cannot_make_tokens(notebook, bob):
    token = make_token(bob, label='script')['token']
    api = Api(new_app(notebook), token)
    before = stored_tokens(notebook)
    for body in ({'label': 'offspring'}, {'label': 'x', 'scope': 'read'}, {}):
        res = api.post('/tokens', body, status=403)
        assert res == {'error': 'an API token cannot create tokens: log in and create it '
                                'on the /tokens page'}
    # Form fields with a token (no CSRF token needed for tokens) are refused as well.
    api.testapp.post('/tokens', {'label': 'offspring'}, headers=api.headers, status=403)
    assert stored_tokens(notebook) == before
    # The token may list its user's tokens, and revoke itself but no other.
    other = make_token(bob, label='other')
    assert sorted(t['label'] for t in api.get('/tokens')['tokens']) == ['other', 'script']
    res = api.post('/revoke_token', {'prefix': other['prefix']}, status=403)
    assert 'only itself' in res['error']
    assert api.post('/revoke_token', {'prefix': token_digest(token)[:12]}, status=200)
    api.get('/home/bob/', status=401)
    assert [t['label'] for t in bob.get('/tokens', headers=JSON).json['tokens']] == ['other']


def test_read_only_token_may_only_read(notebook, bob):
    notebook.add_user('alice')
    with notebook.transaction() as root:
        root.user_by_login('bob').create_worksheet('Mine')
        root.user_by_login('alice').create_worksheet('Hers')
    made = make_token(bob, label='reader', scope='read')
    assert made['scope'] == 'read'
    reader = Api(new_app(notebook), made['token'])
    assert [w['name'] for w in reader.get('/home/bob/')['worksheets']] == ['Mine']
    assert reader.get('/home/bob/0/')['name'] == 'Mine'
    assert reader.get('/home/bob/0/cells/0')['input'] == ''
    reader.testapp.head('/home/bob/0/', headers=reader.headers, status=200)
    before = worksheets_of(notebook, 'bob'), stored_tokens(notebook)
    message = ('this API token is read-only: it may only GET; use a token with full '
               'access to change anything')
    refused = [
        reader.post('/home/bob/', {'name': 'new'}, status=403),
        reader.patch('/home/bob/0/', {'name': 'renamed'}, status=403),
        reader.patch('/home/bob/0/cells/0', {'input': '1+1'}, status=403),
        reader.post('/home/bob/0/cells', {'input': 'x'}, status=403),
        reader.post('/home/bob/0/cells/0/evaluate', {'wait': 1}, status=403),
        reader.delete('/home/bob/0/', status=403),
        reader.post('/default_system', {'system': 'python'}, status=403),
        reader.post('/logout-everywhere', {}, status=403),
        reader.post('/revoke_token', {'prefix': made['prefix']}, status=403),
    ]
    assert refused == [{'error': message}] * len(refused)
    assert (worksheets_of(notebook, 'bob'), stored_tokens(notebook)) == before
    # What bob may not even see stays as unknown as a missing thing.
    assert reader.patch('/home/alice/0/', {'name': 'x'}, status=404) == {
        'error': 'not found: /home/alice/0/'}
    # A full token of the same user may change things.
    full = Api(new_app(notebook), make_token(bob, label='writer')['token'])
    full.patch('/home/bob/0/', {'name': 'renamed'}, status=200)


def test_token_expiry(notebook, bob):
    made = make_token(bob, label='week', expires_in_days='7')
    assert abs(made['expires'] - (time.time() + 7 * 86400)) < 60
    api = Api(new_app(notebook), made['token'])
    api.get('/home/bob/', status=200)
    listed = bob.get('/tokens', headers=JSON).json['tokens']
    assert [(t['label'], t['scope'], t['expired']) for t in listed] == [
        ('week', 'full', False)]
    assert listed[0]['expires'] == made['expires']
    # Time passes (the stored expiry is moved into the past).
    with notebook.transaction() as root:
        root.tokens[token_digest(made['token'])].expires = time.time() - 1
    assert api.get('/home/bob/', status=401) == {'error': 'this API token has expired'}
    api.patch('/home/bob/', {'name': 'x'}, status=401)
    listed = bob.get('/tokens', headers=JSON).json['tokens']
    assert listed[0]['expired'] is True
    page = bob.get('/tokens')
    assert re.search(r'data-prefix="%s"[^\n]*\n.*\n.*\n.*expired' % made['prefix'],
                     page.text), page.text
    # Revoking works as before, expired or not.
    bob.post('/revoke_token', {'prefix': made['prefix'], 'csrf_token': bob.csrf},
             status=302)
    assert bob.get('/tokens', headers=JSON).json['tokens'] == []


@pytest.mark.parametrize('fields', [
    {'scope': 'admin'}, {'scope': 'READ'}, {'expires_in_days': '0'},
    {'expires_in_days': '-3'}, {'expires_in_days': '3651'}, {'expires_in_days': 'soon'},
    {'expires_in_days': '1.5'}])


def test_bad_scope_or_expiry_is_refused(notebook, bob, fields):
    before = stored_tokens(notebook)
    res = make_token(bob, status=400, label='x', **fields)
    assert set(res) == {'error'} and res['error']
    assert stored_tokens(notebook) == before


def test_bad_json_scope_or_expiry_is_refused(notebook, bob):
    for body in ({'expires_in_days': True}, {'expires_in_days': 1.5},
                 {'expires_in_days': [1]}, {'scope': 3}):
        res = bob.post_json('/tokens', body, headers={'X-CSRF-Token': bob.csrf},
                            status=400)
        assert res.json['error']
    ok = bob.post_json('/tokens', {'label': 'j', 'scope': 'read', 'expires_in_days': 30},
                       headers={'X-CSRF-Token': bob.csrf}, status=201).json
    assert ok['scope'] == 'read' and ok['expires'] > time.time() + 29 * 86400


def test_tokens_page_shows_scope_and_expiry(notebook, bob):
    make_token(bob, label='forever')
    make_token(bob, label='reader', scope='read', expires_in_days='30')
    page = bob.get('/tokens')
    rows = re.findall(r'<tr data-prefix="[0-9a-f]{12}" data-scope="(\w+)">(.*?)</tr>',
                      page.text, re.S)
    text = [(scope, re.sub(r'<[^>]+>', ' ', row)) for scope, row in rows]
    assert [scope for scope, _ in text] == ['full', 'read']
    assert 'forever' in text[0][1] and 'never' in text[0][1] and 'full' in text[0][1]
    expires = time.strftime('%Y-%m-%d', time.gmtime(time.time() + 30 * 86400))
    assert 'read only' in text[1][1] and expires in text[1][1]
    assert 'name="scope"' in page.text and 'name="expires_in_days"' in page.text
    with notebook.transaction() as root:
        details = [e.detail for e in audit.entries(root) if e.action == 'token_created']
    assert sorted(d.split(' ', 1)[1][:10] for d in details) == ['full', 'read until']
