"""Sign-up through the form: names, passwords, CSRF, and sign-up switched off
(WebTest)."""
import pytest

from ...support.notebook import Notebook, csrf_token_of, login
from ...support.webapp import logged_in, new_browser, no_traceback

# argon2 with its default cost takes ~0.2 s a hash: far too slow for many tests.
pytestmark = pytest.mark.usefixtures('cheap_password_hashes')


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
