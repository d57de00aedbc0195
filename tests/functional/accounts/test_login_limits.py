"""Logging in: rate limits per account and per address (shared by app servers on
one ZEO), the session rotated at login, suspended and directory accounts."""
import time

import pytest

from sagenb_pyramid import audit
from sagenb_pyramid.auth.ratelimit import attempts_tree

from ...support.accounts import add_user, browser, errors_of, logged_in, try_login
from ...support.notebook import PASSWORD, csrf_token_of
from ...support.zeo import app_server

# argon2 with its default cost takes ~0.2 s a hash: far too slow for many tests.
pytestmark = pytest.mark.usefixtures('cheap_password_hashes')


# === Login: rate limiting, session, audit ==========================================

LIMITS = {'sagenb.login.free_attempts': '3', 'sagenb.login.free_attempts_per_address': '6',
          'sagenb.login.base_delay': '1', 'sagenb.login.max_delay': '4'}


@pytest.mark.parametrize('login_name', ['alice', 'nobody'])
def test_login_rate_limited_per_account_with_growing_delay(make_notebook, login_name):
    nb = make_notebook(**LIMITS)
    add_user(nb, 'alice')
    for n in range(3):  # free attempts, from different addresses
        res = try_login(browser(nb, '10.1.0.%d' % n), login_name, 'wrong password', 400)
        assert errors_of(res) == ['Wrong username or password.']
    # The 4th failure locks the name for 1 s; during it even the right password is
    # refused, with the same answer for an account and for a name nobody has.
    try_login(browser(nb, '10.1.0.9'), login_name, 'wrong password', 400)
    res = try_login(browser(nb, '10.1.1.1'), login_name, PASSWORD, 429)
    assert errors_of(res) == ['Too many failed attempts for this username or from your '
                              'address. Wait 1 seconds, then try again.']
    assert res.headers['Retry-After'] == '1'
    with nb.transaction() as root:
        record = attempts_tree(root)['account:' + login_name]
        assert record.failures == 4
        assert record.locked_until - record.last_failure == pytest.approx(1)
    time.sleep(1.1)
    try_login(browser(nb, '10.1.0.9'), login_name, 'wrong password', 400)
    with nb.transaction() as root:
        record = attempts_tree(root)['account:' + login_name]
        assert record.locked_until - record.last_failure == pytest.approx(2)  # doubled
    res = try_login(browser(nb, '10.1.1.2'), login_name, PASSWORD, 429)
    assert res.headers['Retry-After'] == '2'
    time.sleep(2.1)
    if login_name == 'alice':
        app = browser(nb, '10.1.1.3')
        try_login(app, 'alice', PASSWORD, 302)
        with nb.transaction() as root:  # a success clears the name's count
            assert 'account:alice' not in attempts_tree(root)
        with nb.transaction() as root:
            actions = [(e.action, e.target, e.address) for e in audit.entries(root)]
        assert ('login', 'alice', '10.1.1.3') in actions
        assert ('login_failed', 'alice', '10.1.0.0') in actions


def test_login_rate_limited_per_address(make_notebook):
    nb = make_notebook(**LIMITS)
    add_user(nb, 'alice')
    for n in range(7):  # a different name each time, so only the address counts
        try_login(browser(nb, '10.2.0.1'), 'guess%d' % n, 'wrong password', 400)
    res = try_login(browser(nb, '10.2.0.1'), 'alice', PASSWORD, 429)
    assert 'Too many failed attempts' in errors_of(res)[0]
    # Another address is not affected.
    try_login(browser(nb, '10.2.0.2'), 'alice', PASSWORD, 302)


def test_login_rate_limit_shared_by_app_servers(tmp_path, zeo_server):  # noqa: F811
    servers = []
    try:
        for name in ('app1', 'app2'):
            nb = app_server(tmp_path, zeo_server, name)
            servers.append(nb)
        one, two = servers
        # Limits are settings of each server; the counts live in the shared database.
        for nb in servers:
            nb.registry.settings.update(LIMITS)
            nb.registry.settings['sagenb.login.base_delay'] = 30.0
            nb.registry.settings['sagenb.login.max_delay'] = 60.0
        one.add_user('alice')
        for n in range(4):
            try_login(browser(one, '10.3.0.%d' % n), 'alice', 'wrong password', 400)
        res = try_login(browser(two, '10.3.1.1'), 'alice', PASSWORD, 429)
        assert 'Wait 30 seconds' in errors_of(res)[0]
    finally:
        for nb in servers:
            nb.close()


def test_session_rotated_at_login(make_notebook):
    nb = make_notebook()
    add_user(nb, 'alice')
    app = browser(nb)
    page = app.get('/login')
    before_cookie = app.cookies['sagenb_session']
    before_token = csrf_token_of(page)
    res = app.post('/login', {'login': 'alice', 'password': PASSWORD,
                              'csrf_token': before_token}, status=302)
    assert 'sagenb_session=' in res.headers['Set-Cookie']
    assert app.cookies['sagenb_session'] != before_cookie
    assert csrf_token_of(app.get('/account')) != before_token
    # The CSRF token of the anonymous session is no good any more.
    app.post('/logout', {'csrf_token': before_token}, status=400)
    # An attacker holding the pre-login cookie holds an anonymous session.
    stale = browser(nb)
    stale.set_cookie('sagenb_session', before_cookie)
    assert not logged_in(stale)


def test_suspended_account_is_told_only_after_the_right_password(notebook, testapp):
    from ...support.notebook import PASSWORD, csrf_token_of
    notebook.add_user('sam')
    with notebook.transaction() as root:
        root.user_by_login('sam').suspended = True
    page = testapp.get('/login')
    res = testapp.post('/login', {'login': 'sam', 'password': 'not it at all',
                                  'csrf_token': csrf_token_of(page)}, status=400)
    assert 'suspended' not in res.text
    page = testapp.get('/login')
    res = testapp.post('/login', {'login': 'sam', 'password': PASSWORD,
                                  'csrf_token': csrf_token_of(page)}, status=403)
    assert 'This account is suspended' in res.text
    testapp.get('/account', status=302)


def test_directory_users_cannot_change_a_local_password(notebook, testapp):
    from ...support.notebook import csrf_token_of, login
    notebook.add_user('dora')
    token = login(testapp, 'dora')
    with notebook.transaction() as root:
        root.user_by_login('dora').auth_source = 'ldap'
    page = testapp.get('/account')
    assert 'change your password there' in page.text
    res = testapp.post('/account', {'csrf_token': csrf_token_of(page) or token,
                                    'current_password': 'x', 'new_password': 'a new secret 1',
                                    'new_password2': 'a new secret 1'}, status=400)
    assert 'managed by the directory' in res.text
