"""Sign-up with its challenge, e-mail through a real SMTP server (aiosmtpd on loopback),
password reset, change of address, and login rate limiting.

Mail tests follow the links in the messages the SMTP server received."""
import html
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
import transaction
import webtest
from persistent.mapping import PersistentMapping
from ZODB.POSException import ConflictError

from sagenb_pyramid import audit
from sagenb_pyramid.auth import captcha, passwords
from sagenb_pyramid.auth.ratelimit import attempts_tree

from ...support.notebook import PASSWORD, Notebook, csrf_token_of, login
from ...support.smtp import SmtpServer
from ...support.server import free_port
from ...support.zeo import app_server


# argon2 with its default cost takes ~0.2 s a hash: far too slow for many tests.
pytestmark = pytest.mark.usefixtures('cheap_password_hashes')


@pytest.fixture
def smtp():
    with SmtpServer() as server:
        yield server


@pytest.fixture
def make_notebook(tmp_path, smtp):
    """Notebooks that send mail to the test's SMTP server; closed at the end."""
    made = []

    def make(name='data', **settings):
        base = {'sagenb.mail.host': '127.0.0.1', 'sagenb.mail.port': str(smtp.port),
                'sagenb.mail.sender': 'notebook@example.org'}
        base.update(settings)
        nb = Notebook(tmp_path / name, **base)
        made.append(nb)
        return nb
    yield make
    for nb in made:
        nb.close()


def browser(nb, address='10.0.0.1'):
    return webtest.TestApp(nb.app, extra_environ={'HTTP_HOST': 'localhost:80',
                                                  'REMOTE_ADDR': address})


def flush(nb):
    """Wait until the notebook has handed every queued mail to the SMTP server."""
    nb.registry.sagenb_outbox.join()


def path_of(link):
    parsed = urlparse(link)
    assert parsed.netloc == 'localhost', link
    return parsed.path


def link_in(mail):
    """The one link in a mail that does something (reset or confirm)."""
    links = [link for link in mail.links() if '/reset/' in link or '/confirm/' in link]
    assert len(links) == 1, mail.body
    return links[0]


def errors_of(res):
    return [html.unescape(e) for e in re.findall(r'class="error"[^>]*>([^<]*)<', res.text)]


def add_user(nb, login_name, email='', password=PASSWORD, **attrs):
    with nb.transaction() as root:
        user = root.add_user(login_name, passwords.hash_password(password), email=email)
        for key, value in attrs.items():
            setattr(user, key, value)


def user_attrs(nb, login_name, *names):
    with nb.transaction() as root:
        user = root.user_by_login(login_name)
        return None if user is None else tuple(getattr(user, n) for n in names)


def try_login(app, login_name, password, status='*'):
    page = app.get('/login')
    return app.post('/login', {'login': login_name, 'password': password,
                               'csrf_token': csrf_token_of(page)}, status=status)


def logged_in(app):
    return app.get('/account', status='*').status_int == 200


# === Built-in challenge ============================================================

WORDS = {w: i for i, w in enumerate(
    'zero one two three four five six seven eight nine ten eleven twelve'.split())}


def solve(page):
    """The answer to the built-in question on a sign-up page."""
    match = re.search(r'id="captcha-question">What is (\w+) (plus|times|minus) (\w+)\?<',
                      page.text)
    assert match, 'no built-in question on the page'
    a, op, b = match.groups()
    a, b = (WORDS[x] if x in WORDS else int(x) for x in (a, b))
    return str({'plus': a + b, 'times': a * b, 'minus': a - b}[op])


def signup_form(page, login_name, password='a good password', email='', **extra):
    fields = {'login': login_name, 'password': password, 'password2': password,
              'email': email, 'csrf_token': csrf_token_of(page)}
    for name in ('captcha_id', 'captcha_expires', 'captcha_sig', 'captcha_mac'):
        match = re.search(r'name="%s" value="([^"]*)"' % name, page.text)
        if match:
            fields[name] = match.group(1)
    fields.update(extra)
    return fields


def test_signup_with_builtin_challenge(make_notebook):
    nb = make_notebook(**{'sagenb.signup.captcha': 'builtin'})
    app = browser(nb)
    page = app.get('/signup')
    answer = solve(page)
    wrong = str(int(answer) + 1)
    res = app.post('/signup', signup_form(page, 'newbie', captcha_answer=wrong), status=400)
    assert errors_of(res) == ['The answer to the question is wrong.']
    assert user_attrs(nb, 'newbie', 'id') is None
    # The same challenge again, now with the right answer: used up, refused.
    res = app.post('/signup', signup_form(page, 'newbie', captcha_answer=answer), status=400)
    assert errors_of(res) == ['That question was already answered; answer the new one.']
    assert user_attrs(nb, 'newbie', 'id') is None
    # The page that refused carries a new question; answering it works.
    res = app.post('/signup', signup_form(res, 'newbie', captcha_answer=solve(res)),
                   status=302)
    assert res.headers['Location'] == 'http://localhost/home/newbie/'
    assert logged_in(app)
    assert user_attrs(nb, 'newbie', 'login') == ('newbie',)


def test_builtin_challenge_refuses_missing_forged_and_expired(make_notebook):
    nb = make_notebook(**{'sagenb.signup.captcha': 'builtin'})
    app = browser(nb)
    page = app.get('/signup')
    answer = solve(page)
    fields = signup_form(page, 'newbie', captcha_answer=answer)
    for forged in ({'captcha_sig': 'f' * 64}, {'captcha_sig': 'é'}, {'captcha_id': 'other'},
                   {'captcha_expires': str(int(time.time()) + 99999)},
                   {'captcha_id': ''}, {'captcha_expires': 'x'}, {'captcha_mac': ''}):
        res = app.post('/signup', dict(fields, **forged), status=400)
        assert errors_of(res) == ['Answer the question below.'], forged
    # A challenge made 31 minutes ago (with the server's own key) has expired.

    class Req:
        registry = nb.registry
    old = captcha.new_builtin(Req, now=time.time() - 31 * 60)
    expired = dict(fields, captcha_id=old['id'], captcha_expires=str(old['expires']),
                   captcha_sig=old['sig'], captcha_mac=old['mac'])
    for n in range(0, 145):  # whatever the answer was
        expired['captcha_answer'] = str(n)
        res = app.post('/signup', expired, status=400)
        assert errors_of(res) == ['The question expired; answer the new one.']
    assert user_attrs(nb, 'newbie', 'id') is None
    # A forged answer MAC is just a wrong answer (and uses the challenge up).
    page = app.get('/signup')
    res = app.post('/signup', signup_form(page, 'newbie', captcha_answer=solve(page),
                                          captcha_mac='é'), status=400)
    assert errors_of(res) == ['The answer to the question is wrong.']
    # The original, untouched by the forgeries that were not ours, still works.
    app.post('/signup', fields, status=302)


# === Hosted captcha against a local verify server ==================================

class VerifyServer:
    """A stand-in for reCAPTCHA/hCaptcha/Turnstile's siteverify on 127.0.0.1: the token
    ``good-token`` passes (with the right secret), anything else fails."""

    def __init__(self, secret):
        self.secret = secret
        self.requests = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get('Content-Length', 0))
                fields = {k: v[0] for k, v in
                          parse_qs(self.rfile.read(length).decode()).items()}
                outer.requests.append(fields)
                ok = fields.get('secret') == outer.secret and \
                    fields.get('response') == 'good-token'
                body = json.dumps({'success': ok} if ok else
                                  {'success': False, 'error-codes': ['invalid-input']})
                self.send_response(200)
                self.send_header('Content-Type', 'application/json')
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.url = 'http://127.0.0.1:%d/siteverify' % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def verify_server():
    server = VerifyServer('the captcha secret')
    yield server
    server.close()


FIELDS = {'recaptcha': 'g-recaptcha-response', 'hcaptcha': 'h-captcha-response',
          'turnstile': 'cf-turnstile-response'}


@pytest.mark.parametrize('kind', sorted(FIELDS))
def test_signup_with_hosted_captcha(make_notebook, verify_server, monkeypatch, kind):
    monkeypatch.setenv('SAGENB_SIGNUP_CAPTCHA_SECRET', 'the captcha secret')
    nb = make_notebook(**{'sagenb.signup.captcha': kind,
                          'sagenb.signup.captcha_site_key': 'site-key-123',
                          'sagenb.signup.captcha_verify_url': verify_server.url})
    app = browser(nb)
    page = app.get('/signup')
    assert 'data-sitekey="site-key-123"' in page.text
    assert captcha.HOSTED[kind][0] in page.text  # the provider's widget script
    # Without the widget's answer: refused without asking the provider.
    res = app.post('/signup', signup_form(page, 'newbie'), status=400)
    assert errors_of(res) == ['Complete the challenge.']
    assert verify_server.requests == []
    res = app.post('/signup', signup_form(page, 'newbie', **{FIELDS[kind]: 'bad-token'}),
                   status=400)
    assert errors_of(res) == ['The challenge was not passed; try again.']
    assert user_attrs(nb, 'newbie', 'id') is None
    res = app.post('/signup', signup_form(page, 'newbie', **{FIELDS[kind]: 'good-token'}),
                   status=302)
    assert user_attrs(nb, 'newbie', 'login') == ('newbie',)
    last = verify_server.requests[-1]
    assert last['secret'] == 'the captcha secret'
    assert last['response'] == 'good-token'
    assert last['remoteip'] == '10.0.0.1'
    assert ('sitekey' in last) == (kind == 'hcaptcha')


def test_hosted_captcha_unreachable_is_503(make_notebook, monkeypatch):
    monkeypatch.setenv('SAGENB_SIGNUP_CAPTCHA_SECRET', 'the captcha secret')
    nb = make_notebook(**{'sagenb.signup.captcha': 'turnstile',
                          'sagenb.signup.captcha_verify_url':
                          'http://127.0.0.1:%d/siteverify' % free_port()})
    app = browser(nb)
    page = app.get('/signup')
    res = app.post('/signup', signup_form(page, 'newbie', **{FIELDS['turnstile']: 'x'}),
                   status=503)
    assert errors_of(res) == ['The challenge could not be checked just now; try again later.']
    assert user_attrs(nb, 'newbie', 'id') is None


def test_captcha_kind_is_an_admin_setting(make_notebook):
    nb = make_notebook(**{'sagenb.signup.captcha': 'none'})
    app = browser(nb)
    assert 'captcha-question' not in app.get('/signup').text
    with nb.transaction() as root:
        from sagenb_pyramid import server_settings
        server_settings.set_value(root, 'sagenb.signup.captcha', 'builtin')
    assert 'captcha-question' in app.get('/signup').text


# === Usernames =====================================================================

def test_signup_refuses_login_differing_only_in_case(make_notebook):
    nb = make_notebook(**{'sagenb.signup.captcha': 'none'})
    add_user(nb, 'alice')
    app = browser(nb)
    for name in ('Alice', 'ALICE', 'alice'):
        page = app.get('/signup')
        res = app.post('/signup', signup_form(page, name), status=400)
        assert errors_of(res) == ['That username is taken; choose another.']
    # Logins are case-sensitive: "Alice" is not alice.
    res = try_login(browser(nb), 'Alice', PASSWORD, status=400)
    assert errors_of(res) == ['Wrong username or password.']
    try_login(browser(nb), 'alice', PASSWORD, status=302)


# === E-mail confirmation at sign-up ================================================

def test_signup_with_required_email_confirmation(make_notebook, smtp):
    nb = make_notebook(**{'sagenb.signup.captcha': 'none',
                          'sagenb.signup.require_email_confirmation': 'true'})
    app = browser(nb)
    page = app.get('/signup')
    res = app.post('/signup', signup_form(page, 'newbie'), status=400)
    assert errors_of(res) == ['That is not an e-mail address.']
    res = app.post('/signup', signup_form(page, 'newbie', email='newbie@example.org'),
                   status=200)
    assert 'Check your mail' in res.text
    assert not logged_in(app)
    flush(nb)
    [mail] = smtp.wait(1)
    assert mail.recipients == ['newbie@example.org']
    assert mail.sender == 'notebook@example.org'
    assert 'a good password' not in mail.body
    first_link = link_in(mail)
    # Not confirmed yet: the right password does not log in; a fresh link is sent.
    res = try_login(browser(nb), 'newbie', 'a good password', status=403)
    assert errors_of(res)[0].startswith('Confirm your e-mail address first')
    # ... and a wrong one gets the usual answer, nothing more.
    res = try_login(browser(nb), 'newbie', 'a bad password', status=400)
    assert errors_of(res) == ['Wrong username or password.']
    flush(nb)
    second = smtp.wait(2)[1]
    link = link_in(second)
    assert link != first_link
    # The older link was replaced by the new one.
    app.get(path_of(first_link), status=400)
    confirm_page = app.get(path_of(link))
    assert 'newbie@example.org' in confirm_page.text
    assert confirm_page.headers['Referrer-Policy'] == 'no-referrer'
    # Opening the link changes nothing: the button does.
    assert user_attrs(nb, 'newbie', 'awaiting_confirmation') == (True,)
    res = confirm_page.forms['confirm-form'].submit(status=302)
    assert res.headers['Location'] == 'http://localhost/login'
    assert user_attrs(nb, 'newbie', 'awaiting_confirmation', 'email_confirmed') == \
        (False, True)
    app.get(path_of(link), status=400)  # used once
    try_login(app, 'newbie', 'a good password', status=302)
    assert logged_in(app)


def test_confirmation_required_without_mail_server_is_clear(tmp_path):
    nb = Notebook(tmp_path / 'nomail', **{'sagenb.signup.require_email_confirmation': 'true'})
    try:
        app = browser(nb)
        res = app.get('/signup', status=503)
        assert 'sends no mail' in res.text
        res = app.get('/forgot', status=404)
        assert 'sends no mail' in res.text
        assert 'forgot-link' not in app.get('/login').text
    finally:
        nb.close()


# === Password reset ================================================================

def request_reset(app, who, status=200):
    page = app.get('/forgot')
    return app.post('/forgot', {'who': who, 'csrf_token': csrf_token_of(page)},
                    status=status)


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


# === Links in mail follow sagenb.public_url, never the Host header =================

PUBLIC = 'https://notebook.example.org/sage'


def forged(nb, host='attacker.example', address='10.0.0.66'):
    """A client that sends its own Host header (and X-Forwarded-Host, not trusted)."""
    return webtest.TestApp(nb.app, extra_environ={
        'HTTP_HOST': host, 'HTTP_X_FORWARDED_HOST': host, 'REMOTE_ADDR': address})


def test_mail_links_use_the_public_url_whatever_the_host(make_notebook, smtp):
    nb = make_notebook(**{'sagenb.public_url': PUBLIC + '/',
                          'sagenb.signup.captcha': 'none',
                          'sagenb.signup.require_email_confirmation': 'true'})
    add_user(nb, 'alice', email='alice@example.org')
    # An anonymous reset request with a forged Host.
    app = forged(nb)
    request_reset(app, 'alice')
    flush(nb)
    [mail] = smtp.wait(1)
    assert 'attacker' not in mail.body
    links = mail.links()
    assert links and all(link.startswith(PUBLIC + '/') for link in links), links
    reset_link = link_in(mail)
    assert reset_link.startswith(PUBLIC + '/reset/')
    # The link works (the path after the public prefix, on this server).
    browser(nb).get(urlparse(reset_link).path[len('/sage'):], status=200)
    # A confirmation at sign-up, asked under a forged Host.
    page = app.get('/signup')
    app.post('/signup', signup_form(page, 'newbie', email='newbie@example.org'))
    flush(nb)
    [mail] = smtp.to('newbie@example.org')
    assert 'attacker' not in mail.body
    assert link_in(mail).startswith(PUBLIC + '/confirm/')
    # A change of address: the link to the new address, the notice to the old one.
    session = forged(nb)
    token = login(session, 'alice')
    session.post('/change-email', {'email': 'new@example.org', 'current_password': PASSWORD,
                                   'csrf_token': token}, status=302)
    flush(nb)
    smtp.wait(4)
    for mail in smtp.to('new@example.org') + smtp.to('alice@example.org')[1:]:
        assert 'attacker' not in mail.body
        assert all(link.startswith(PUBLIC + '/') for link in mail.links()), mail.body


def test_admin_mail_and_shown_links_use_the_public_url(make_notebook, smtp):
    nb = make_notebook(**{'sagenb.public_url': PUBLIC})
    add_user(nb, 'root1', is_admin=True)
    add_user(nb, 'bob', email='bob@example.org')
    add_user(nb, 'nomail')
    admin = forged(nb)
    token = login(admin, 'root1')
    admin.post('/admin/users/bob/reset_password', {'csrf_token': token}, status=302)
    admin.post('/admin/users/', {'login': 'invitee', 'email': 'inv@example.org',
                                 'invite': 'true', 'csrf_token': token}, status=201)
    flush(nb)
    for mail in smtp.wait(2):
        assert 'attacker' not in mail.body
        assert link_in(mail).startswith(PUBLIC + '/reset/')
    # A link shown to the admin to pass on (the user has no address).
    res = admin.post('/admin/users/nomail/reset_password', {'csrf_token': token},
                     headers={'Accept': 'application/json'}, status=200)
    assert res.json['reset_link'].startswith(PUBLIC + '/reset/')


def test_without_public_url_links_go_to_localhost_at_the_servers_port(make_notebook, smtp):
    nb = make_notebook()
    add_user(nb, 'alice', email='alice@example.org')
    app = webtest.TestApp(nb.app, extra_environ={'HTTP_HOST': 'attacker.example:6549',
                                                 'SERVER_PORT': '6549',
                                                 'REMOTE_ADDR': '10.0.0.66'})
    request_reset(app, 'alice')
    flush(nb)
    [mail] = smtp.wait(1)
    assert 'attacker' not in mail.body
    assert link_in(mail).startswith('http://localhost:6549/reset/')


@pytest.mark.parametrize('value', ['notebook.example.org', 'ftp://example.org',
                                   'https://', 'https://example.org/?x=1',
                                   'https://user:pw@example.org'])
def test_a_wrong_public_url_is_refused_at_start(tmp_path, value):
    from sagenb_pyramid.settings import SettingsError
    with pytest.raises(SettingsError, match='sagenb.public_url'):
        Notebook(tmp_path / 'data', **{'sagenb.public_url': value})


def test_production_refuses_to_start_without_a_public_url(tmp_path, monkeypatch):
    from plaster import get_settings
    from sagenb_pyramid import main
    from sagenb_pyramid.settings import SettingsError
    from ...support.notebook import HERE
    ini = HERE + '/production.ini'
    monkeypatch.setenv('SAGENB_SECRET', 'a production secret for the test')
    monkeypatch.delenv('SAGENB_PUBLIC_URL', raising=False)
    settings = dict(get_settings(ini, 'app:main'))
    # (No embedded worker host: as root without worker uids, that would be refused
    # first, tests/test_isolation.py.)
    settings['sagenb.workers.embedded'] = 'false'
    with pytest.raises(SettingsError, match='SAGENB_PUBLIC_URL='):
        main({'__file__': ini, 'here': HERE, 'data_dir': str(tmp_path / 'prod')},
             **settings)
    # Given in the environment, it is what mail links start with.
    monkeypatch.setenv('SAGENB_PUBLIC_URL', PUBLIC + '/')
    settings = dict(get_settings(ini, 'app:main'))
    settings.update({'sagenb.workers.prestart': 'false', 'sagenb.workers.spare': '0',
                     'sagenb.workers.embedded': 'false'})
    # (Another folder: the refused start above left its database open until collected.)
    app = main({'__file__': ini, 'here': HERE, 'data_dir': str(tmp_path / 'prod2'),
                'sagenb_command': 'test'}, **settings)
    try:
        assert app.registry.settings['sagenb.public_url'] == PUBLIC
    finally:
        from sagenb_pyramid import database
        # An admin command's application has no worker host to stop.
        assert app.registry.workers is None
        database(app.registry).close()


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
