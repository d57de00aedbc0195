"""Sign-up with its challenge (the built-in question, hosted captchas against a local
verify server), usernames that differ only in case, and e-mail confirmation at sign-up
through a real SMTP server (aiosmtpd on loopback)."""
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

from sagenb_pyramid.auth import captcha

from ...support.accounts import (
    add_user, browser, errors_of, flush, link_in, logged_in, path_of, signup_form,
    try_login, user_attrs)
from ...support.notebook import PASSWORD, Notebook
from ...support.server import free_port

# argon2 with its default cost takes ~0.2 s a hash: far too slow for many tests.
pytestmark = pytest.mark.usefixtures('cheap_password_hashes')


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
