"""OAuth 2 / OpenID Connect log-in through velruse's contract, against real providers on
127.0.0.1: an OpenID Connect provider built from Authlib's server components
(``tests/support/oidc_provider.py``) and a small fake of GitHub's OAuth and REST API (below).

The browser is WebTest against the notebook; what the browser does at the provider (follow
the authorize URL, come back with the code) is done with ``requests`` against the real
provider servers.  The notebook itself talks to them over HTTP, as in production.
"""
import base64
import hashlib
import json
import re
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
import webtest
from pyramid.interfaces import IRoutesMapper
from velruse import AuthenticationComplete, AuthenticationDenied
from webob import Request, Response

from sagenb_pyramid.auth import oauth
from sagenb_pyramid.settings import SettingsError

from ..support.notebook import PASSWORD, Notebook, csrf_token_of, login
from ..support.oidc_provider import LocalOIDCProvider, serve

CALLBACK = 'http://localhost/login/%s/callback'


# argon2 with its default cost takes ~0.2 s a hash: far too slow for many tests.
pytestmark = pytest.mark.usefixtures('cheap_password_hashes')


# === A fake GitHub (it stands in for github.com; the code under test is the provider) ==

class FakeGitHub:
    """GitHub's OAuth web flow and the two REST calls the provider makes, as GitHub
    Enterprise lays them out (``/login/oauth/...``, ``/api/v3/...``)."""

    def __init__(self, client_id='gh-client', client_secret='gh-secret'):
        self.client_id = client_id
        self.client_secret = client_secret
        self.codes = {}
        self.tokens = {}
        self.requests = []
        self.user = {'login': 'octocat', 'id': 583231, 'name': 'The Octocat',
                     'email': None}
        self.emails = [{'email': 'octo@example.org', 'primary': True, 'verified': True},
                       {'email': 'old@example.org', 'primary': False, 'verified': True}]

    def __call__(self, environ, start_response):
        request = Request(environ)
        self.requests.append((request.method, request.path, dict(request.params),
                              request.headers.get('Authorization', '')))
        handler = {'/login/oauth/authorize': self.authorize,
                   '/login/oauth/access_token': self.access_token,
                   '/api/v3/user': self.api_user,
                   '/api/v3/user/emails': self.api_emails}.get(request.path)
        response = handler(request) if handler else Response(status=404)
        return response(environ, start_response)

    def authorize(self, request):
        p = request.GET
        if p.get('client_id') != self.client_id:
            return Response(status=404)
        code = 'code-%d' % len(self.codes)
        self.codes[code] = dict(p)
        target = p['redirect_uri'] + '?' + urlencode({'code': code, 'state': p['state']})
        return Response(status=302, location=target)

    def access_token(self, request):
        if request.method != 'POST':  # GitHub wants a POST
            return Response(status=404, json_body={'message': 'Not Found'})
        form = request.POST
        if form.get('client_id') != self.client_id or \
                form.get('client_secret') != self.client_secret:
            return Response(json_body={'error': 'incorrect_client_credentials'})
        grant = self.codes.pop(form.get('code'), None)
        if grant is None or form.get('redirect_uri') != grant['redirect_uri']:
            return Response(json_body={'error': 'bad_verification_code',
                                       'error_description': 'The code is incorrect or expired.'})
        if grant.get('code_challenge'):
            digest = hashlib.sha256(form.get('code_verifier', '').encode()).digest()
            if base64.urlsafe_b64encode(digest).rstrip(b'=').decode() != grant['code_challenge']:
                return Response(json_body={'error': 'invalid_grant'})
        token = 'gho_%d' % len(self.tokens)
        self.tokens[token] = grant.get('scope', '')
        if 'application/json' in request.headers.get('Accept', ''):
            return Response(json_body={'access_token': token, 'token_type': 'bearer',
                                       'scope': 'read:user,user:email'})
        return Response(body=urlencode({'access_token': token}).encode())

    def authorized(self, request):
        # GitHub refuses tokens in the query string; only the Authorization header works.
        if 'access_token' in request.GET:
            return False
        auth = request.headers.get('Authorization', '')
        kind, _, token = auth.partition(' ')
        return kind.lower() in ('bearer', 'token') and token in self.tokens

    def api_user(self, request):
        if not self.authorized(request):
            return Response(status=401, json_body={'message': 'Requires authentication'})
        return Response(json_body=self.user)

    def api_emails(self, request):
        if not self.authorized(request):
            return Response(status=401, json_body={'message': 'Requires authentication'})
        if 'user:email' not in self.tokens[request.headers['Authorization'].split()[1]]:
            return Response(status=404, json_body={'message': 'Not Found'})
        return Response(json_body=self.emails)


# === Fixtures ===========================================================================

@pytest.fixture
def provider():
    p = LocalOIDCProvider(redirect_uris=[CALLBACK % 'oidc'])
    p.add_user('sub-alice', preferred_username='alice', name='Alice Liddell',
               email='alice@example.org', groups=['students', 'staff'])
    p.add_user('sub-bob', preferred_username='bob', name='Bob', email='bob@example.org',
               groups=['admins'])
    p.add_user('sub-carol', preferred_username='carol', name='Carol', email='c@example.org')
    p.add_user('sub-odd', preferred_username='9 odd name!', name='Odd')
    p.add_user('sub-dave', preferred_username='dave.remote', name='Dave R',
               email='dave@example.org')
    p.start()
    yield p
    p.stop()


@pytest.fixture
def github():
    fake = FakeGitHub()
    server, base = serve(fake)
    fake.base = base
    yield fake
    server.shutdown()
    server.server_close()


def oauth_settings(provider, github):
    return {
        'sagenb.oauth.providers': 'oidc github',
        'sagenb.oauth.oidc.client_id': 'notebook',
        'sagenb.oauth.oidc.label': 'University login',
        'sagenb.oauth.oidc.discovery_url': provider.issuer + '/.well-known/openid-configuration',
        'sagenb.oauth.oidc.groups_claim': 'groups',
        'sagenb.oauth.oidc.admin_groups': 'admins',
        'sagenb.oauth.github.client_id': github.client_id,
        'sagenb.oauth.github.domain': urlsplit(github.base).netloc,
        'sagenb.oauth.github.secure': 'false',
    }


@pytest.fixture
def nb(tmp_path, provider, github, monkeypatch):
    monkeypatch.setenv('SAGENB_OAUTH_OIDC_CLIENT_SECRET', 's3cret-of-the-notebook')
    monkeypatch.setenv('SAGENB_OAUTH_GITHUB_CLIENT_SECRET', github.client_secret)
    notebook = Notebook(tmp_path / 'data', **oauth_settings(provider, github))
    yield notebook
    notebook.close()


def browser(notebook):
    return webtest.TestApp(notebook.app, extra_environ={'HTTP_HOST': 'localhost:80'})


@pytest.fixture
def app(nb):
    return browser(nb)


# === Driving the flow ===================================================================

def start(app, name='oidc', intent=None, came_from=''):
    """Press the provider's button (log-in page, or "Link" on the account page)."""
    page = app.get('/account' if intent == 'link' else '/login')
    fields = {'csrf_token': csrf_token_of(page), 'came_from': came_from}
    if intent:
        fields['intent'] = intent
    res = app.post('/login/%s' % name, fields, status=302)
    return res.headers['Location']


def at_provider(authorize_url, **extra):
    """What the browser does at the provider: it answers with a redirect back."""
    if extra:
        authorize_url += '&' + urlencode(extra)
    r = requests.get(authorize_url, allow_redirects=False, timeout=10)
    assert r.status_code == 302, (r.status_code, r.text)
    return r.headers['Location']


def back(app, location, status='*'):
    parts = urlsplit(location)
    assert parts.netloc == 'localhost', location
    return app.get(parts.path + '?' + parts.query, status=status)


def oauth_login(app, name='oidc', **extra):
    return back(app, at_provider(start(app, name), **extra))


def whoami(app):
    res = app.get('/account', status='*')
    if res.status_int != 200:
        return None
    return re.search(r'Account of ([^<]+)<', res.text).group(1).strip()


def user_info(nb, login_name):
    with nb.transaction() as root:
        user = root.user_by_login(login_name)
        if user is None:
            return None
        return {
            'id': user.id, 'email': user.email, 'fullname': user.fullname,
            'is_admin': user.is_admin, 'password_hash': user.password_hash,
            'groups': sorted((root.groups[g].name, root.groups[g].source)
                             for g in user.group_ids),
            'identities': dict(user.identities or {}),
        }


def audit_entries(nb):
    from sagenb_pyramid.audit import entries
    with nb.transaction() as root:
        return [(e.action, e.target, e.detail) for e in entries(root, newest_first=False)]


def no_traceback(res):
    assert 'Traceback' not in res.text and res.status_int != 500


# === Wiring: velruse's contract ===========================================================

def test_providers_are_registered_in_velruse_contract(nb):
    registry = nb.registry
    providers = registry.velruse_providers
    assert set(providers) == {'oidc', 'github'}
    mapper = registry.getUtility(IRoutesMapper)
    for name, provider in providers.items():
        assert mapper.get_route('velruse.%s-login' % name).path == '/login/%s' % name
        route = mapper.get_route('velruse.%s-callback' % name)
        assert route.path == '/login/%s/callback' % name
        assert route.factory == provider.callback
    assert isinstance(providers['github'], oauth.GitHubProvider)
    assert isinstance(providers['oidc'], oauth.OIDCProvider)


def test_callback_contexts_are_velruses_classes(nb, provider):
    """The callback's context factory, called as Pyramid does, returns velruse's
    AuthenticationComplete / AuthenticationDenied."""
    oidc = nb.registry.velruse_providers['oidc']
    app = browser(nb)
    location = at_provider(start(app))
    # The session the browser carries, on a Pyramid request made like the router's.
    request = Request.blank(urlsplit(location).path + '?' + urlsplit(location).query,
                            environ={'HTTP_HOST': 'localhost:80'},
                            headers={'Cookie': '; '.join(
                                '%s=%s' % (c.name, c.value) for c in app.cookiejar)})
    from pyramid.request import Request as PyramidRequest
    from pyramid.request import apply_request_extensions
    request = PyramidRequest(request.environ)
    request.registry = nb.registry
    apply_request_extensions(request)
    context = oidc.callback(request)
    assert type(context) is AuthenticationComplete
    assert context.provider_name == 'oidc' and context.provider_type == 'oidc'
    assert context.profile['accounts'][0]['userid'] == 'sub-alice'
    assert context.profile['preferredUsername'] == 'alice'
    assert context.credentials['oauthAccessToken']

    location = at_provider(start(app), test_decision='deny')
    request = PyramidRequest(Request.blank(
        urlsplit(location).path + '?' + urlsplit(location).query,
        environ={'HTTP_HOST': 'localhost:80'},
        headers={'Cookie': '; '.join('%s=%s' % (c.name, c.value)
                                     for c in app.cookiejar)}).environ)
    request.registry = nb.registry
    apply_request_extensions(request)
    denied = oidc.callback(request)
    assert type(denied) is AuthenticationDenied
    assert denied.reason and denied.provider_name == 'oidc'


def test_login_page_has_a_button_per_provider(app):
    page = app.get('/login')
    assert 'action="http://localhost/login/oidc"' in page.text
    assert 'action="http://localhost/login/github"' in page.text
    assert 'University login' in page.text and 'GitHub' in page.text


def test_login_start_needs_post_with_csrf(app):
    res = app.get('/login/oidc', status=405)
    assert 'log-in page' in res.text
    app.get('/login')
    res = app.post('/login/oidc', {}, status=400)
    no_traceback(res)


# === OpenID Connect =====================================================================

def test_full_flow_creates_the_user_with_claims_and_groups(nb, app, provider):
    authorize = start(app)
    query = parse_qs(urlsplit(authorize).query)
    assert authorize.startswith(provider.issuer + '/authorize?')
    assert query['response_type'] == ['code'] and query['client_id'] == ['notebook']
    assert query['redirect_uri'] == [CALLBACK % 'oidc']
    assert set(query['scope'][0].split()) == {'openid', 'profile', 'email'}
    assert query['code_challenge_method'] == ['S256'] and query['code_challenge'][0]
    assert len(query['state'][0]) >= 32 and len(query['nonce'][0]) >= 32

    res = back(app, at_provider(authorize))
    assert res.status_int == 302
    assert res.headers['Location'] == 'http://localhost/home/alice/'
    assert whoami(app) == 'alice'
    info = user_info(nb, 'alice')
    assert info['email'] == 'alice@example.org' and info['fullname'] == 'Alice Liddell'
    assert info['groups'] == [('staff', 'oidc'), ('students', 'oidc')]
    assert not info['is_admin'] and info['password_hash'] is None
    assert list(info['identities']) == ['oidc:sub-alice']
    # The notebook authenticated as a confidential client and sent its PKCE verifier.
    sent = provider.token_requests[-1]
    assert sent['basic_auth'] and sent['form']['code_verifier']
    assert sent['form']['redirect_uri'] == CALLBACK % 'oidc'
    assert ('login', 'alice', 'oauth:oidc') in audit_entries(nb)


def test_second_login_uses_the_link_and_syncs_groups(nb, provider):
    first = browser(nb)
    oauth_login(first)
    user_id = user_info(nb, 'alice')['id']
    provider.users['alice']['groups'] = ['staff', 'research']
    provider.users['alice']['preferred_username'] = 'alice.renamed'
    again = browser(nb)
    res = oauth_login(again)
    assert res.headers['Location'] == 'http://localhost/home/alice/'
    info = user_info(nb, 'alice')
    assert info['id'] == user_id
    assert info['groups'] == [('research', 'oidc'), ('staff', 'oidc')]
    assert user_info(nb, 'alice.renamed') is None
    # A local group of the user is left alone by the sync.
    with nb.transaction() as root:
        root.user_by_login('alice').group_ids.add(root.add_group('local-club').id)
    oauth_login(browser(nb))
    assert ('local-club', 'local') in user_info(nb, 'alice')['groups']


def test_admin_group_makes_an_admin_and_leaving_it_revokes(nb, provider):
    app = browser(nb)
    oauth_login(app, test_user='bob')
    info = user_info(nb, 'bob')
    assert info['is_admin'] and ('admins', 'oidc') in info['groups']
    assert app.get('/account').text.count('(admin)') == 1
    provider.users['bob']['groups'] = ['staff']
    oauth_login(browser(nb), test_user='bob')
    assert not user_info(nb, 'bob')['is_admin']


def test_admin_granted_locally_is_not_revoked_by_the_provider(nb, provider):
    oauth_login(browser(nb), test_user='alice')
    with nb.transaction() as root:
        root.user_by_login('alice').is_admin = True
    oauth_login(browser(nb), test_user='alice')
    assert user_info(nb, 'alice')['is_admin']


def test_taken_username_asks_for_another(nb, provider):
    nb.add_user('carol')
    app = browser(nb)
    res = oauth_login(app, test_user='carol')
    assert res.headers['Location'] == 'http://localhost/oauth-username'
    assert whoami(app) is None
    form = app.get('/oauth-username')
    assert 'University login' in form.text and 'carol' in form.text
    token = csrf_token_of(form)
    res = app.post('/oauth-username', {'login': 'carol', 'csrf_token': token}, status=400)
    assert 'taken' in res.text
    res = app.post('/oauth-username', {'login': 'x', 'csrf_token': token}, status=400)
    assert '3 to 64 characters' in res.text
    res = app.post('/oauth-username', {'login': 'carol2', 'csrf_token': token}, status=302)
    assert res.headers['Location'] == 'http://localhost/home/carol2/'
    assert whoami(app) == 'carol2'
    assert list(user_info(nb, 'carol2')['identities']) == ['oidc:sub-carol']
    assert user_info(nb, 'carol')['identities'] == {}  # the local carol is untouched
    # The pending identity was used up; the next log-in goes straight to carol2.
    app.get('/oauth-username', status=400)
    other = browser(nb)
    assert oauth_login(other, test_user='carol').headers['Location'] == \
        'http://localhost/home/carol2/'


def test_invalid_username_gets_a_suggestion(nb):
    app = browser(nb)
    res = oauth_login(app, test_user='9 odd name!')
    assert res.headers['Location'] == 'http://localhost/oauth-username'
    form = app.get('/oauth-username')
    assert 'value="odd_name_"' in form.text
    app.post('/oauth-username', {'login': 'oddone', 'csrf_token': csrf_token_of(form)},
             status=302)
    assert whoami(app) == 'oddone'


def test_choose_username_without_pending_identity(app):
    res = app.get('/oauth-username', status=400)
    assert 'no log-in waiting' in res.text


def test_denial_at_the_provider_gives_a_clear_message(nb, app):
    res = oauth_login(app, test_decision='deny')
    assert res.status_int == 403
    assert 'University login was not completed' in res.text and 'access_denied' in res.text
    no_traceback(res)
    assert whoami(app) is None
    assert any(a == 'login_failed' and 'oauth:oidc' in d for a, _, d in audit_entries(nb))


def test_forged_state_is_refused(nb, app):
    location = at_provider(start(app))
    forged = re.sub(r'state=[^&]+', 'state=forged-by-an-attacker', location)
    res = back(app, forged, status=403)
    assert 'does not belong to a log-in started in this browser' in res.text
    no_traceback(res)
    assert whoami(app) is None


def test_callback_without_a_started_login_is_refused(nb, app, provider):
    # A code and state made for another browser, delivered to this one (login CSRF).
    attacker = browser(nb)
    location = at_provider(start(attacker))
    victim = browser(nb)
    res = back(victim, location, status=403)
    assert 'missing or wrong state' in res.text
    assert whoami(victim) is None
    res = back(victim, 'http://localhost/login/oidc/callback?code=x', status=403)
    no_traceback(res)


def test_replayed_callback_and_replayed_code_are_refused(nb, provider):
    app = browser(nb)
    location = at_provider(start(app))
    assert back(app, location).status_int == 302
    # The same answer again: its state was used up.
    assert back(app, location, status=403)
    # The same code with a fresh state of another log-in: the provider refuses it.
    other = browser(nb)
    fresh = at_provider(start(other))
    old_code = parse_qs(urlsplit(location).query)['code'][0]
    replay = re.sub(r'code=[^&]+', 'code=' + old_code, fresh)
    res = back(other, replay, status=403)
    assert 'refused the authorization code' in res.text
    assert whoami(other) is None


def test_pkce_verifier_is_checked_by_the_provider(nb, provider):
    app = browser(nb)
    location = at_provider(start(app))
    code = parse_qs(urlsplit(location).query)['code'][0]
    token_url = provider.issuer + '/token'
    form = {'grant_type': 'authorization_code', 'code': code,
            'redirect_uri': CALLBACK % 'oidc'}
    auth = ('notebook', 's3cret-of-the-notebook')
    wrong = requests.post(token_url, data=dict(form, code_verifier='w' * 64), auth=auth,
                          timeout=10)
    assert wrong.status_code == 400 and wrong.json()['error'] == 'invalid_grant'
    missing = requests.post(token_url, data=form, auth=auth, timeout=10)
    assert missing.status_code == 400 and 'code_verifier' in missing.json()['error_description']
    # The notebook's own verifier (kept in its session) is the right one.
    assert back(app, location).status_int == 302
    assert whoami(app) == 'alice'


@pytest.mark.parametrize('tamper', [
    {'aud': 'another-client'},
    {'iss': 'http://127.0.0.1:1/not-the-issuer'},
    {'exp': int(time.time()) - 3600},
    {'nonce': 'not-the-nonce'},
    'foreign key',
])
def test_id_token_is_verified(nb, provider, tamper):
    if tamper == 'foreign key':
        provider.sign_with_foreign_key = True
    else:
        provider.id_token_overrides = tamper
    app = browser(nb)
    res = oauth_login(app)
    assert res.status_int == 403
    assert 'ID token' in res.text and 'did not verify' in res.text
    assert whoami(app) is None
    assert user_info(nb, 'alice') is None


def test_unreachable_provider_is_reported(tmp_path, monkeypatch, provider, github):
    settings = oauth_settings(provider, github)
    settings['sagenb.oauth.oidc.discovery_url'] = 'http://127.0.0.1:9/.well-known/x'
    monkeypatch.setenv('SAGENB_OAUTH_OIDC_CLIENT_SECRET', 'x')
    monkeypatch.setenv('SAGENB_OAUTH_GITHUB_CLIENT_SECRET', 'x')
    notebook = Notebook(tmp_path / 'data', **settings)
    try:
        app = browser(notebook)
        page = app.get('/login')
        res = app.post('/login/oidc', {'csrf_token': csrf_token_of(page)}, status=502)
        assert 'could not be reached' in res.text
        no_traceback(res)
    finally:
        notebook.close()


def test_came_from_is_followed_on_this_server_only(nb):
    app = browser(nb)
    res = back(app, at_provider(start(app, came_from='/account')))
    assert res.headers['Location'] == 'http://localhost/account'
    app = browser(nb)
    res = back(app, at_provider(start(app, came_from='//evil.example/x')))
    assert res.headers['Location'] == 'http://localhost/home/alice/'


def test_suspended_user_cannot_log_in_with_oauth(nb):
    oauth_login(browser(nb))
    with nb.transaction() as root:
        root.user_by_login('alice').suspended = True
    app = browser(nb)
    res = oauth_login(app)
    assert res.status_int == 403 and 'suspended' in res.text
    assert whoami(app) is None


# === Linking identities to an account =====================================================

def test_link_identity_then_log_in_with_it_then_unlink(nb, provider):
    nb.add_user('dave')
    app = browser(nb)
    login(app, 'dave')
    account = app.get('/account')
    assert 'Linked identities' in account.text and 'Link University login' in account.text
    res = back(app, at_provider(start(app, intent='link'), test_user='dave.remote'))
    assert res.headers['Location'] == 'http://localhost/account'
    account = app.get('/account')
    assert 'is linked to this account' in account.text
    assert 'University login: dave.remote' in account.text
    assert whoami(app) == 'dave'
    assert list(user_info(nb, 'dave')['identities']) == ['oidc:sub-dave']
    assert user_info(nb, 'dave.remote') is None
    assert any(a == 'oauth_link' for a, _, _ in audit_entries(nb))

    # Another browser logs in with that identity: it is dave.
    other = browser(nb)
    res = oauth_login(other, test_user='dave.remote')
    assert res.headers['Location'] == 'http://localhost/home/dave/'
    assert whoami(other) == 'dave'

    # Unlink from the account page; the identity then makes a new account of its own.
    token = csrf_token_of(app.get('/account'))
    app.post('/unlink-identity', {'identity': 'oidc:sub-dave', 'csrf_token': token},
             status=302)
    assert user_info(nb, 'dave')['identities'] == {}
    app.post('/unlink-identity', {'identity': 'oidc:sub-dave', 'csrf_token': token},
             status=404)
    third = browser(nb)
    oauth_login(third, test_user='dave.remote')
    assert whoami(third) == 'dave.remote'


def test_link_needs_login_and_identity_of_nobody_else(nb):
    anonymous = browser(nb)
    page = anonymous.get('/login')
    res = anonymous.post('/login/oidc', {'csrf_token': csrf_token_of(page),
                                         'intent': 'link'}, status=302)
    assert res.headers['Location'] == 'http://localhost/login?came_from=/account'
    oauth_login(browser(nb))  # alice's identity makes the account alice
    nb.add_user('eve')
    app = browser(nb)
    login(app, 'eve')
    res = back(app, at_provider(start(app, intent='link')), status=409)
    assert 'already linked to another account' in res.text
    assert user_info(nb, 'eve')['identities'] == {}


def test_only_way_to_log_in_cannot_be_unlinked(nb):
    app = browser(nb)
    oauth_login(app)
    token = csrf_token_of(app.get('/account'))
    res = app.post('/unlink-identity', {'identity': 'oidc:sub-alice', 'csrf_token': token},
                   status=400)
    assert 'only way to log in' in res.text
    res = app.post('/unlink-identity', {'identity': 'oidc:sub-alice'}, status=400)
    assert list(user_info(nb, 'alice')['identities']) == ['oidc:sub-alice']


def test_password_login_still_works_next_to_oauth(nb):
    nb.add_user('frank')
    app = browser(nb)
    login(app, 'frank', PASSWORD)
    assert whoami(app) == 'frank'


# === GitHub ===========================================================================

def test_github_flow_against_the_fake_github(nb, github):
    app = browser(nb)
    authorize = start(app, 'github')
    parts = urlsplit(authorize)
    assert authorize.startswith(github.base + '/login/oauth/authorize?')
    query = parse_qs(parts.query)
    assert query['scope'] == ['read:user user:email']
    assert query['client_id'] == [github.client_id]
    assert query['code_challenge_method'] == ['S256']
    assert 'None' not in authorize
    res = back(app, at_provider(authorize))
    assert res.headers['Location'] == 'http://localhost/home/octocat/'
    assert whoami(app) == 'octocat'
    info = user_info(nb, 'octocat')
    assert info['email'] == 'octo@example.org' and info['fullname'] == 'The Octocat'
    assert list(info['identities']) == ['github:583231']
    calls = [(m, p) for m, p, _, _ in github.requests]
    assert ('POST', '/login/oauth/access_token') in calls
    for _method, path, params, auth in github.requests:
        if path.startswith('/api/v3/'):
            assert auth.startswith('Bearer ') and 'access_token' not in params


def test_github_renamed_login_keeps_the_account(nb, github):
    oauth_login(browser(nb), 'github')
    github.user = dict(github.user, login='octocat-renamed')
    app = browser(nb)
    res = oauth_login(app, 'github')
    assert res.headers['Location'] == 'http://localhost/home/octocat/'


def test_github_bad_code_is_refused(nb, github):
    app = browser(nb)
    location = at_provider(start(app, 'github'))
    bad = re.sub(r'code=[^&]+', 'code=not-a-code', location)
    res = back(app, bad, status=403)
    assert 'refused the authorization code' in res.text and 'incorrect or expired' in res.text
    assert whoami(app) is None


def test_github_urls():
    public = oauth.GitHubProvider('github', 'id', 'secret')
    assert public.authorization_endpoint() == 'https://github.com/login/oauth/authorize'
    assert public.token_endpoint() == 'https://github.com/login/oauth/access_token'
    assert public.api_url == 'https://api.github.com'
    enterprise = oauth.GitHubProvider('ghe', 'id', 'secret', domain='git.example.edu')
    assert enterprise.api_url == 'https://git.example.edu/api/v3'
    assert enterprise.token_endpoint() == 'https://git.example.edu/login/oauth/access_token'
    assert oauth.GitHubProvider('g', 'i', 's', scope='').scope == ''


# === Settings ===========================================================================

def test_google_is_openid_connect_by_discovery(monkeypatch):
    monkeypatch.setenv('SAGENB_OAUTH_GOOGLE_CLIENT_SECRET', 'x')
    google = oauth.provider_from_settings({'sagenb.oauth.google.client_id': 'abc'}, 'google')
    assert isinstance(google, oauth.OIDCProvider) and google.type == 'google'
    assert google.discovery_url == oauth.GOOGLE_DISCOVERY_URL
    assert google.username_claim == 'email' and google.label == 'Google'


@pytest.mark.parametrize('settings, env, message', [
    ({'sagenb.oauth.oidc.client_id': 'a', 'sagenb.oauth.oidc.client_secret': 'in-ini',
      'sagenb.oauth.oidc.discovery_url': 'https://idp.example/.well-known/x'}, {},
     'SAGENB_OAUTH_OIDC_CLIENT_SECRET'),
    ({'sagenb.oauth.oidc.client_id': 'a',
      'sagenb.oauth.oidc.discovery_url': 'https://idp.example/.well-known/x'}, {},
     'SAGENB_OAUTH_OIDC_CLIENT_SECRET'),
    ({'sagenb.oauth.oidc.client_id': 'a',
      'sagenb.oauth.oidc.discovery_url': 'http://idp.example/.well-known/x'},
     {'SAGENB_OAUTH_OIDC_CLIENT_SECRET': 's'}, 'https://'),
    ({'sagenb.oauth.oidc.discovery_url': 'https://idp.example/x'},
     {'SAGENB_OAUTH_OIDC_CLIENT_SECRET': 's'}, 'client_id'),
    ({'sagenb.oauth.oidc.client_id': 'a'}, {'SAGENB_OAUTH_OIDC_CLIENT_SECRET': 's'},
     'discovery_url'),
])
def test_settings_errors_are_clear(monkeypatch, settings, env, message):
    monkeypatch.delenv('SAGENB_OAUTH_OIDC_CLIENT_SECRET', raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError, match=re.escape(message)):
        oauth.provider_from_settings(settings, 'oidc')


def test_no_providers_no_buttons(notebook, testapp):
    assert 'oauth-logins' not in testapp.get('/login').text
    assert getattr(notebook.registry, 'velruse_providers', {}) == {}


def test_settings_from_environment(monkeypatch):
    monkeypatch.setenv('SAGENB_OAUTH_KC_CLIENT_ID', 'from-env')
    monkeypatch.setenv('SAGENB_OAUTH_KC_CLIENT_SECRET', 's')
    kc = oauth.provider_from_settings(
        {'sagenb.oauth.kc.discovery_url': 'https://kc.example/realms/x/.well-known/y',
         'sagenb.oauth.kc.groups_claim': 'roles'}, 'kc')
    assert kc.client_id == 'from-env' and kc.groups_claim == 'roles' and kc.type == 'oidc'


def test_json_of_junk_is_a_provider_failure():
    response = requests.models.Response()
    response.status_code = 200
    response._content = json.dumps([1, 2]).encode()
    from velruse.exceptions import ThirdPartyFailure
    with pytest.raises(ThirdPartyFailure):
        oauth.OIDCProvider('x', 'a', 'b', 'https://idp.example/d').json_of(response, 'token')
