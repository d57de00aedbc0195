"""Changing one's password: the other sessions end, bad input is refused,
CSRF is needed (WebTest)."""
import pytest

from ...support.notebook import PASSWORD, csrf_token_of, login
from ...support.webapp import logged_in, new_browser

# argon2 with its default cost takes ~0.2 s a hash: far too slow for many tests.
pytestmark = pytest.mark.usefixtures('cheap_password_hashes')


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
