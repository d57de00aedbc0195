"""Password reset by mail (a real SMTP server on loopback): the flow, no hint of who
has an account, links that expire and cannot be guessed."""
import re
import time

import pytest

from sagenb_pyramid import audit

from ...support.accounts import (
    add_user, browser, errors_of, flush, link_in, logged_in, path_of, request_reset, try_login,
    user_attrs)
from ...support.notebook import PASSWORD, csrf_token_of, login

# argon2 with its default cost takes ~0.2 s a hash: far too slow for many tests.
pytestmark = pytest.mark.usefixtures('cheap_password_hashes')


# === Password reset ================================================================

def normalized(res):
    """The page without what differs between any two requests (CSRF tokens)."""
    return re.sub(r'(name="csrf[-_]token" (?:value|content)=)"[^"]*"', r'\1""', res.text)


def test_password_reset_flow(make_notebook, smtp):
    nb = make_notebook()
    add_user(nb, 'alice', email='alice@example.org')
    other_session = browser(nb, '10.0.0.2')
    login(other_session, 'alice')
    assert 'forgot-link' in browser(nb).get('/login').text
    app = browser(nb)
    res = request_reset(app, 'alice@example.org')
    assert 'If an account matches' in res.text
    flush(nb)
    [mail] = smtp.wait(1)
    assert mail.recipients == ['alice@example.org']
    assert PASSWORD not in mail.body
    assert 'within 1 hour' in mail.body
    link = link_in(mail)
    assert path_of(link).startswith('/reset/')
    page = app.get(path_of(link))
    assert page.headers['Referrer-Policy'] == 'no-referrer'
    # A bad new password is refused and the link still works.
    form = page.forms['reset-form']
    form['password'] = form['password2'] = 'alice'
    res = form.submit(status=400)
    assert errors_of(res) == ['A password has at least 8 characters.']
    form = res.forms['reset-form']
    form['password'] = form['password2'] = 'a brand new password'
    res = form.submit(status=302)
    assert res.headers['Location'] == 'http://localhost/login'
    # Used once: the link is dead now.
    res = app.get(path_of(link), status=400)
    assert 'already used or has expired' in res.text
    # The new password works, the old one does not; other sessions ended.
    assert not logged_in(other_session)
    try_login(browser(nb), 'alice', PASSWORD, status=400)
    try_login(app, 'alice', 'a brand new password', status=302)
    assert user_attrs(nb, 'alice', 'email_confirmed') == (True,)
    with nb.transaction() as root:
        actions = [(e.action, e.target) for e in audit.entries(root)]
    assert ('password_reset', 'alice') in actions
    assert ('password_reset_requested', 'alice') in actions


def test_reset_request_does_not_tell_who_has_an_account(make_notebook, smtp):
    nb = make_notebook()
    add_user(nb, 'alice', email='alice@example.org')
    answers = []
    for who in ('alice@example.org', 'nobody@example.org', 'alice', 'nobody'):
        res = request_reset(browser(nb), who)
        answers.append((res.status_int, normalized(res)))
    assert all(a == answers[0] for a in answers), 'the answers differ'
    flush(nb)
    # One mail: asked by address, then by login; the second within a minute is held back.
    assert [m.recipients for m in smtp.messages] == [['alice@example.org']]
    assert smtp.to('nobody@example.org') == []


def test_reset_link_expires(make_notebook, smtp):
    nb = make_notebook(**{'sagenb.account.reset_link_max_age': '1'})
    add_user(nb, 'alice', email='alice@example.org')
    app = browser(nb)
    request_reset(app, 'alice')
    flush(nb)
    link = link_in(smtp.wait(1)[0])
    app.get(path_of(link))  # still fresh
    time.sleep(1.5)
    res = app.get(path_of(link), status=400)
    assert 'expired' in res.text
    app.post(path_of(link), {'password': 'a brand new password',
                             'password2': 'a brand new password',
                             'csrf_token': csrf_token_of(app.get('/login'))}, status=400)
    try_login(app, 'alice', PASSWORD, status=302)


def test_reset_links_are_random_and_unguessable(make_notebook):
    nb = make_notebook()
    app = browser(nb)
    for path in ('/reset/', '/reset/abc', '/reset/' + 'x' * 500, '/reset/a/b', '/confirm/x'):
        res = app.get(path, status=400)
        assert 'Traceback' not in res.text
    with nb.transaction() as root:
        assert not list(getattr(root, 'account_tokens', {}) or {})
