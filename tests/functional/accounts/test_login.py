"""Logging in and out through the form, and what an anonymous visitor gets
(WebTest; no Sage process)."""
import re

import pytest

from ...support.notebook import PASSWORD, csrf_token_of, login
from ...support.webapp import JSON, logged_in, make_worksheet, no_traceback, stored

# argon2 with its default cost takes ~0.2 s a hash: far too slow for many tests.
pytestmark = pytest.mark.usefixtures('cheap_password_hashes')


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
