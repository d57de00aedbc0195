"""Logging out ends the session on the server: a copied cookie no longer works, log
out everywhere, and a password change ends the other sessions."""
import pytest

from sagenb_pyramid import audit

from ...support.accounts import add_user, browser, logged_in
from ...support.notebook import PASSWORD, login

# argon2 with its default cost takes ~0.2 s a hash: far too slow for many tests.
pytestmark = pytest.mark.usefixtures('cheap_password_hashes')


# === Logging out ends the session on the server =====================================

def test_a_cookie_copied_before_logout_no_longer_works(make_notebook):
    nb = make_notebook()
    add_user(nb, 'alice')
    app = browser(nb)
    token = login(app, 'alice')
    elsewhere = browser(nb, '10.0.0.2')
    login(elsewhere, 'alice')
    copied = app.cookies['sagenb_session']
    thief = browser(nb, '10.0.0.66')
    thief.set_cookie('sagenb_session', copied)
    assert logged_in(thief)
    app.post('/logout', {'csrf_token': token}, status=302)
    assert not logged_in(app)
    assert not logged_in(thief)
    thief.get('/home/alice/', headers={'Accept': 'application/json'}, status=401)
    # Only that session ended: the one in the other browser goes on.
    assert logged_in(elsewhere)


def test_log_out_everywhere(make_notebook):
    nb = make_notebook()
    add_user(nb, 'alice')
    app = browser(nb)
    token = login(app, 'alice')
    others = [browser(nb, '10.0.0.%d' % n) for n in (2, 3)]
    for other in others:
        login(other, 'alice')
    thief = browser(nb, '10.0.0.66')
    thief.set_cookie('sagenb_session', app.cookies['sagenb_session'])
    api_token = nb.token('alice')
    page = app.get('/account')
    assert 'id="logout-everywhere"' in page.text
    # A POST without the CSRF token (another site's form) ends nothing.
    app.post('/logout-everywhere', {}, status=400)
    assert all(logged_in(a) for a in [app, thief] + others)
    res = app.post('/logout-everywhere', {'csrf_token': token}, status=302)
    assert res.headers['Location'] == 'http://localhost/login'
    assert 'You are logged out everywhere.' in res.follow().text
    assert not any(logged_in(a) for a in [app, thief] + others)
    # API tokens are not sessions: they stay until revoked.
    browser(nb).get('/home/alice/', headers={'Authorization': 'Bearer ' + api_token},
                    status=200)
    # Logging in again works as before.
    login(app, 'alice')
    assert logged_in(app)
    with nb.transaction() as root:
        assert [(e.action, e.target) for e in audit.entries(root)
                if e.action == 'logout_everywhere'] == [('logout_everywhere', 'alice')]


def test_password_change_ends_the_other_sessions(make_notebook):
    nb = make_notebook()
    add_user(nb, 'alice')
    app = browser(nb)
    token = login(app, 'alice')
    other = browser(nb, '10.0.0.2')
    login(other, 'alice')
    thief = browser(nb, '10.0.0.66')
    thief.set_cookie('sagenb_session', app.cookies['sagenb_session'])
    app.post('/account', {'csrf_token': token, 'current_password': PASSWORD,
                          'new_password': 'a brand new password',
                          'new_password2': 'a brand new password'}, status=302)
    assert logged_in(app)
    assert not logged_in(other)
    # The copy of this very browser's old cookie is dead too (a new session id).
    assert not logged_in(thief)
