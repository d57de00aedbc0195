"""Changing one's e-mail address (confirmed at the new address), and mail sent only
after the request's transaction commits, once (a real SMTP server on loopback)."""
import time

import pytest
import transaction
from persistent.mapping import PersistentMapping
from ZODB.POSException import ConflictError

from sagenb_pyramid import audit

from ...support.accounts import (
    add_user, browser, errors_of, flush, link_in, path_of, request_reset, user_attrs)
from ...support.notebook import PASSWORD, login

# argon2 with its default cost takes ~0.2 s a hash: far too slow for many tests.
pytestmark = pytest.mark.usefixtures('cheap_password_hashes')


# === Change of e-mail address ======================================================

def test_email_change_confirmed_at_new_address(make_notebook, smtp):
    nb = make_notebook()
    add_user(nb, 'alice', email='old@example.org', email_confirmed=True)
    app = browser(nb)
    token = login(app, 'alice')
    page = app.get('/account')
    assert 'old@example.org' in page.text
    res = app.post('/change-email', {'email': 'new@example.org',
                                     'current_password': 'wrong password',
                                     'csrf_token': token}, status=400)
    assert errors_of(res) == ['The current password is wrong.']
    res = app.post('/change-email', {'email': 'not an address', 'current_password': PASSWORD,
                                     'csrf_token': token}, status=400)
    assert errors_of(res) == ['That is not an e-mail address.']
    app.post('/change-email', {'email': 'new@example.org', 'current_password': PASSWORD},
             status=400)  # no CSRF token
    res = app.post('/change-email', {'email': 'new@example.org',
                                     'current_password': PASSWORD,
                                     'csrf_token': token}, status=302)
    # The old address stays until the new one is confirmed.
    assert user_attrs(nb, 'alice', 'email', 'pending_email') == \
        ('old@example.org', 'new@example.org')
    assert 'Waiting for confirmation: new@example.org' in app.get('/account').text
    flush(nb)
    smtp.wait(2)
    [to_new] = smtp.to('new@example.org')
    [to_old] = smtp.to('old@example.org')
    assert to_old.links() == ['http://localhost/']  # a notice, no link that acts
    link = link_in(to_new)
    # Followed in another browser (the mail program's): the token is enough.
    other = browser(nb, '10.0.0.9')
    res = other.get(path_of(link)).forms['confirm-form'].submit(status=302)
    assert user_attrs(nb, 'alice', 'email', 'pending_email', 'email_confirmed') == \
        ('new@example.org', '', True)
    other.get(path_of(link), status=400)
    assert 'new@example.org' in app.get('/account').text


def test_newer_email_change_replaces_older(make_notebook, smtp):
    nb = make_notebook()
    add_user(nb, 'alice', email='old@example.org')
    app = browser(nb)
    token = login(app, 'alice')
    for address in ('first@example.org', 'second@example.org'):
        app.post('/change-email', {'email': address, 'current_password': PASSWORD,
                                   'csrf_token': token}, status=302)
    flush(nb)
    smtp.wait(4)
    [first] = smtp.to('first@example.org')
    app.get(path_of(link_in(first)), status=400)
    [second] = smtp.to('second@example.org')
    app.get(path_of(link_in(second))).forms['confirm-form'].submit(status=302)
    assert user_attrs(nb, 'alice', 'email') == ('second@example.org',)


# === Mail only after commit ========================================================

def test_no_mail_when_the_request_fails(make_notebook, smtp, monkeypatch):
    nb = make_notebook()
    add_user(nb, 'alice', email='alice@example.org')
    real_record = audit.record

    def failing(request, action, *args, **kw):
        if action == 'password_reset_requested':
            raise RuntimeError('something broke after the mail was queued')
        return real_record(request, action, *args, **kw)
    monkeypatch.setattr(audit, 'record', failing)
    res = request_reset(browser(nb), 'alice', status=500)
    assert 'Traceback' not in res.text
    flush(nb)
    time.sleep(0.3)
    assert smtp.messages == []
    with nb.transaction() as root:
        assert not list(getattr(root, 'account_tokens', None) or {})


def test_conflict_retry_sends_one_mail(make_notebook, smtp, monkeypatch):
    """pyramid_retry runs the request again after a ConflictError: the first attempt's
    mail is dropped, the second's goes out; one mail in all."""
    nb = make_notebook()
    add_user(nb, 'alice', email='alice@example.org')
    real_record = audit.record
    calls = []

    def conflicting_once(request, action, *args, **kw):
        if action == 'password_reset_requested':
            calls.append(action)
            if len(calls) == 1:
                raise ConflictError('as if another app server wrote the same object')
        return real_record(request, action, *args, **kw)
    monkeypatch.setattr(audit, 'record', conflicting_once)
    request_reset(browser(nb), 'alice')
    assert len(calls) == 2
    flush(nb)
    time.sleep(0.3)
    assert len(smtp.messages) == 1
    with nb.transaction() as root:
        assert len(root.account_tokens) == 1  # the link in that mail
    link = link_in(smtp.messages[0])
    browser(nb).get(path_of(link), status=200)


def test_send_mail_follows_the_request_transaction(make_notebook, smtp):
    """send_mail joins the request's own transaction manager (pyramid_tm's explicit
    one): abort sends nothing, a failed commit sends nothing, commit sends."""
    from pyramid.request import Request

    from sagenb_pyramid.auth.mail import send_mail
    nb = make_notebook()

    def request_with_tm():
        request = Request.blank('/')
        request.registry = nb.registry
        request.tm = transaction.TransactionManager(explicit=True)
        request.tm.begin()
        return request
    request = request_with_tm()
    send_mail(request, 'a@example.org', 'aborted', 'never sent')
    request.tm.abort()
    # A commit that fails: two connections write one object; the later one conflicts.
    setup_tm = transaction.TransactionManager(explicit=True)
    with setup_tm:
        conn = nb.db.open(transaction_manager=setup_tm)
        conn.root()['x'] = PersistentMapping()
    conn.close()
    other_tm = transaction.TransactionManager(explicit=True)
    other_tm.begin()
    other = nb.db.open(transaction_manager=other_tm)
    request = request_with_tm()
    conn = nb.db.open(transaction_manager=request.tm)
    conn.root()['x']['n'] = 1
    other.root()['x']['n'] = 2
    other_tm.commit()
    other.close()
    send_mail(request, 'b@example.org', 'conflicted', 'never sent')
    with pytest.raises(ConflictError):
        request.tm.commit()
    request.tm.abort()
    conn.close()
    request = request_with_tm()
    send_mail(request, 'c@example.org', 'committed', 'sent')
    flush(nb)
    assert smtp.messages == []  # not before the commit
    request.tm.commit()
    flush(nb)
    assert [m.subject for m in smtp.wait(1)] == ['committed']
    time.sleep(0.3)
    assert len(smtp.messages) == 1
