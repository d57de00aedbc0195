"""Helpers of the account tests (sign-up, mail, reset, login limits): a browser from
an address, the mails' links, users made in the database, log-in attempts."""
import html
import re
from urllib.parse import urlparse

import webtest

from sagenb_pyramid.auth import passwords

from .notebook import PASSWORD, csrf_token_of


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


def signup_form(page, login_name, password='a good password', email='', **extra):
    fields = {'login': login_name, 'password': password, 'password2': password,
              'email': email, 'csrf_token': csrf_token_of(page)}
    for name in ('captcha_id', 'captcha_expires', 'captcha_sig', 'captcha_mac'):
        match = re.search(r'name="%s" value="([^"]*)"' % name, page.text)
        if match:
            fields[name] = match.group(1)
    fields.update(extra)
    return fields


def request_reset(app, who, status=200):
    page = app.get('/forgot')
    return app.post('/forgot', {'who': who, 'csrf_token': csrf_token_of(page)},
                    status=status)
