"""Links in mail follow ``sagenb.public_url``, never the Host header; a wrong or
missing public URL is refused at start in production."""
from urllib.parse import urlparse

import pytest
import webtest


from ...support.accounts import add_user, browser, flush, link_in, request_reset, signup_form
from ...support.notebook import PASSWORD, Notebook, login

# argon2 with its default cost takes ~0.2 s a hash: far too slow for many tests.
pytestmark = pytest.mark.usefixtures('cheap_password_hashes')


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
    # first, tests/e2e/test_isolation.py.)
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
    app = main({'__file__': ini, 'here': HERE, 'data_dir': str(tmp_path / 'prod2')},
               **settings)
    try:
        assert app.registry.settings['sagenb.public_url'] == PUBLIC
    finally:
        from sagenb_pyramid import database
        app.registry.workers.shutdown()
        database(app.registry).close()
