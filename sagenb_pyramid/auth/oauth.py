"""OAuth 2 / OpenID Connect log-in providers, written in velruse's contract.

velruse is the integration point: every provider registers a login route (a view that
redirects the browser to the provider) and a callback route whose *context factory*
finishes the protocol and returns velruse's ``AuthenticationComplete`` (``profile``,
``credentials``, ``provider_name``, ``provider_type``) or ``AuthenticationDenied``; one
application view per context turns that into a notebook user (``views/oauth.py``).
velruse 1.1.1's own GitHub and Google providers no longer work (see docs/security.md),
so the providers that matter are written here, in the same contract:

- ``OIDCProvider``: generic OpenID Connect (discovery document, authorization code flow
  with PKCE S256, ``state`` and ``nonce``, ID token verified against the provider's
  JWKS: signature, issuer, audience, expiry, nonce); Google is one configured instance.
- ``GitHubProvider``: GitHub and GitHub Enterprise (code exchanged by POST, the token
  sent in the ``Authorization`` header, ``https://<domain>/api/v3`` for Enterprise).

A log-in in progress lives in the (signed) session under ``oauth.<provider name>``:
state, nonce, PKCE verifier, intent (``login`` or ``link``), where to go afterwards and
when it started.  The callback takes it out of the session, so an answer is used once.
"""
import base64
import hashlib
import hmac
import ipaddress
import logging
import os
import secrets
import threading
import time
from urllib.parse import urlencode, urlsplit

import requests
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from pyramid.httpexceptions import HTTPFound
from pyramid.security import NO_PERMISSION_REQUIRED
from velruse import AuthenticationComplete, AuthenticationDenied
from velruse.api import register_provider
from velruse.exceptions import CSRFError, ThirdPartyFailure

from ..settings import SettingsError, env_name
from ..web import api_error

log = logging.getLogger(__name__)

# How long a started log-in may take at the provider before its answer is refused.
PENDING_TIMEOUT = 600
# Accepted clock difference with the provider when checking ``exp``/``iat``.
CLOCK_LEEWAY = 60
# Signature algorithms accepted on ID tokens: asymmetric only (never "none" or HS*).
ID_TOKEN_ALGORITHMS = ('RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512',
                       'ES256', 'ES384', 'ES512', 'EdDSA')
PROVIDER_TYPES = ('oidc', 'github', 'google')
GOOGLE_DISCOVERY_URL = 'https://accounts.google.com/.well-known/openid-configuration'


def session_key(name):
    return 'oauth.' + name


def _s256(verifier):
    digest = hashlib.sha256(verifier.encode('ascii')).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b'=').decode('ascii')


def _check_url(url, what):
    """https, or http to a loopback address (a provider on this machine, e.g. tests)."""
    parts = urlsplit(url or '')
    if parts.scheme == 'https' and parts.hostname:
        return url
    if parts.scheme == 'http' and parts.hostname:
        host = parts.hostname
        try:
            loopback = host == 'localhost' or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if loopback:
            return url
    raise SettingsError('%s must be an https:// URL (http:// only to a loopback address), '
                        'not %r' % (what, url))


class Provider:
    """What every provider shares: the login view and the session bookkeeping."""

    type = None
    use_pkce = True
    use_nonce = False

    def __init__(self, name, client_id, client_secret, scope='', label='',
                 username_claim='', groups_claim='', admin_groups=(), allowed_groups=(),
                 timeout=10.0):
        self.name = name
        self.client_id = client_id
        self.client_secret = client_secret
        self.scope = scope
        self.label = label or name
        self.username_claim = username_claim
        self.groups_claim = groups_claim
        self.admin_groups = frozenset(admin_groups)
        self.allowed_groups = frozenset(allowed_groups)
        self.timeout = timeout
        # velruse's route names, so ``velruse.login_url(request, name)`` works.
        self.login_route = 'velruse.%s-login' % name
        self.callback_route = 'velruse.%s-callback' % name

    # --- the login route ---------------------------------------------------------
    def login(self, request):
        """POST (with the CSRF token): remember the flow, redirect to the provider.

        ``intent=link`` (from the account page, logged in) links the identity to the
        current account instead of logging in."""
        intent = request.POST.get('intent', 'login')
        if intent not in ('login', 'link'):
            intent = 'login'
        pending = {
            'state': secrets.token_urlsafe(32),
            'intent': intent,
            'came_from': request.POST.get('came_from', '')[:2000],
            'started': time.time(),
        }
        if intent == 'link':
            if request.identity is None:  # logged out meanwhile: log in again first
                return HTTPFound(location=request.application_url + '/login?came_from=/account')
            pending['user_id'] = request.identity.id
        if self.use_pkce:
            pending['verifier'] = secrets.token_urlsafe(64)
        if self.use_nonce:
            pending['nonce'] = secrets.token_urlsafe(32)
        request.session[session_key(self.name)] = pending
        return HTTPFound(location=self.authorize_url(request, pending))

    def redirect_uri(self, request):
        return request.route_url(self.callback_route)

    def authorize_params(self, request, pending):
        params = {'response_type': 'code', 'client_id': self.client_id,
                  'redirect_uri': self.redirect_uri(request), 'state': pending['state']}
        if self.scope:  # never the string "None" (velruse's GitHub did that)
            params['scope'] = self.scope
        if self.use_pkce:
            params['code_challenge'] = _s256(pending['verifier'])
            params['code_challenge_method'] = 'S256'
        if self.use_nonce:
            params['nonce'] = pending['nonce']
        return params

    def authorize_url(self, request, pending):
        endpoint = self.authorization_endpoint()
        sep = '&' if '?' in endpoint else '?'
        return endpoint + sep + urlencode(self.authorize_params(request, pending))

    # --- the callback route's context factory ------------------------------------
    def callback(self, request):
        """The provider's answer: ``AuthenticationComplete`` or ``AuthenticationDenied``.

        A missing, wrong or expired ``state`` raises velruse's ``CSRFError``: the
        answer does not belong to a log-in started in this browser."""
        pending = request.session.pop(session_key(self.name), None)
        given = request.GET.get('state', '')
        if not isinstance(pending, dict) or not pending.get('state') or not given \
                or not hmac.compare_digest(pending['state'].encode(), given.encode()):
            raise CSRFError('the answer of %s does not belong to a log-in started in this '
                            'browser (missing or wrong state)' % self.label)
        if time.time() - pending.get('started', 0) > PENDING_TIMEOUT:
            raise CSRFError('the log-in at %s took too long; start again' % self.label)
        request.environ['sagenb.oauth.pending'] = pending
        if request.GET.get('error'):
            reason = request.GET['error'][:200]
            if request.GET.get('error_description'):
                reason = '%s (%s)' % (request.GET['error_description'][:500], reason)
            return self.denied(reason)
        code = request.GET.get('code')
        if not code:
            return self.denied('the provider sent no authorization code')
        token = self.exchange_code(request, code, pending)
        if isinstance(token, AuthenticationDenied):
            return token
        profile = self.profile(request, token, pending)
        if isinstance(profile, AuthenticationDenied):
            return profile
        return AuthenticationComplete(profile=profile, credentials=self.credentials(token),
                                      provider_name=self.name, provider_type=self.type)

    def denied(self, reason):
        return AuthenticationDenied(reason=reason, provider_name=self.name,
                                    provider_type=self.type)

    @staticmethod
    def credentials(token):
        # velruse's names; the tokens are not stored anywhere by the application.
        return {'oauthAccessToken': token.get('access_token'),
                'oauthRefreshToken': token.get('refresh_token')}

    # --- talking to the provider ---------------------------------------------------
    def http(self, method, url, **kw):
        kw.setdefault('timeout', self.timeout)
        kw.setdefault('allow_redirects', False)
        try:
            return requests.request(method, url, **kw)
        except requests.RequestException as exc:
            raise ThirdPartyFailure('%s could not be reached (%s)'
                                    % (self.label, type(exc).__name__)) from None

    def json_of(self, response, what):
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise ThirdPartyFailure('%s answered the %s request with something that is '
                                    'not a JSON object (HTTP %s)'
                                    % (self.label, what, response.status_code))
        return data

    def token_request(self, request, code, pending, client_auth='client_secret_basic',
                      extra_headers=None):
        data = {'grant_type': 'authorization_code', 'code': code,
                'redirect_uri': self.redirect_uri(request)}
        if self.use_pkce:
            data['code_verifier'] = pending['verifier']
        kw = {'headers': {'Accept': 'application/json', **(extra_headers or {})}}
        if client_auth == 'client_secret_post':
            data.update(client_id=self.client_id, client_secret=self.client_secret)
        else:
            kw['auth'] = (self.client_id, self.client_secret)
        response = self.http('POST', self.token_endpoint(), data=data, **kw)
        token = self.json_of(response, 'token')
        if token.get('error') or response.status_code != 200:
            # The provider refused the code (used before, expired, wrong PKCE verifier).
            return self.denied('%s refused the authorization code: %s'
                               % (self.label, token.get('error_description')
                                  or token.get('error') or 'HTTP %s' % response.status_code))
        if not token.get('access_token'):
            raise ThirdPartyFailure('%s sent no access token' % self.label)
        return token

    def groups_of(self, claims):
        if not self.groups_claim:
            return []
        value = claims.get(self.groups_claim) or []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            return []
        return [g for g in value if isinstance(g, str) and g][:200]


class OIDCProvider(Provider):
    """Any OpenID Connect provider, configured by its discovery URL."""

    type = 'oidc'
    use_nonce = True
    DISCOVERY_TTL = 3600

    def __init__(self, name, client_id, client_secret, discovery_url, scope='',
                 username_claim='preferred_username', groups_claim='', **kw):
        super().__init__(name, client_id, client_secret,
                         scope=scope or 'openid profile email',
                         username_claim=username_claim or 'preferred_username',
                         groups_claim=groups_claim, **kw)
        if 'openid' not in self.scope.split():
            self.scope = 'openid ' + self.scope
        self.discovery_url = _check_url(discovery_url, 'sagenb.oauth.%s.discovery_url' % name)
        self._lock = threading.Lock()
        self._metadata = None
        self._metadata_time = 0
        self._jwks = None

    def metadata(self):
        """The discovery document, fetched once an hour."""
        with self._lock:
            if self._metadata is None or time.time() - self._metadata_time > self.DISCOVERY_TTL:
                response = self.http('GET', self.discovery_url,
                                     headers={'Accept': 'application/json'})
                if response.status_code != 200:
                    raise ThirdPartyFailure('%s: the discovery document answered HTTP %s'
                                            % (self.label, response.status_code))
                data = self.json_of(response, 'discovery')
                for key in ('issuer', 'authorization_endpoint', 'token_endpoint', 'jwks_uri'):
                    if not isinstance(data.get(key), str):
                        raise ThirdPartyFailure('%s: the discovery document has no %s'
                                                % (self.label, key))
                    if key != 'issuer':
                        try:
                            _check_url(data[key], key)
                        except SettingsError:
                            raise ThirdPartyFailure('%s: %s is not https' % (self.label, key)) \
                                from None
                self._metadata, self._metadata_time, self._jwks = data, time.time(), None
            return self._metadata

    def authorization_endpoint(self):
        return self.metadata()['authorization_endpoint']

    def token_endpoint(self):
        return self.metadata()['token_endpoint']

    def keys(self, refresh=False):
        """The provider's JWKS; fetched again when a token names a key not seen yet."""
        metadata = self.metadata()
        with self._lock:
            if self._jwks is None or refresh:
                response = self.http('GET', metadata['jwks_uri'],
                                     headers={'Accept': 'application/json'})
                data = self.json_of(response, 'JWKS')
                try:
                    self._jwks = KeySet.import_key_set(data)
                except (JoseError, ValueError, KeyError, TypeError):
                    raise ThirdPartyFailure('%s: unusable JWKS' % self.label) from None
            return self._jwks

    def exchange_code(self, request, code, pending):
        methods = self.metadata().get('token_endpoint_auth_methods_supported') \
            or ['client_secret_basic']
        auth = 'client_secret_basic' if 'client_secret_basic' in methods \
            else 'client_secret_post'
        token = self.token_request(request, code, pending, client_auth=auth)
        if isinstance(token, dict) and not token.get('id_token'):
            raise ThirdPartyFailure('%s sent no ID token (is "openid" in the scope?)'
                                    % self.label)
        return token

    def verify_id_token(self, id_token, nonce):
        """The ID token's claims, once signature, issuer, audience, expiry and nonce
        are checked; ``None`` (and the reason logged) when any check fails."""
        metadata = self.metadata()
        allowed = [a for a in metadata.get('id_token_signing_alg_values_supported')
                   or ['RS256'] if a in ID_TOKEN_ALGORITHMS]
        try:
            try:
                token = jwt.decode(id_token, self.keys(), algorithms=allowed)
            except (ValueError, JoseError):
                # Perhaps the provider rotated its keys: fetch them once more.
                token = jwt.decode(id_token, self.keys(refresh=True), algorithms=allowed)
            claims = token.claims
            jwt.JWTClaimsRegistry(
                leeway=CLOCK_LEEWAY,
                iss={'essential': True, 'value': metadata['issuer']},
                aud={'essential': True, 'value': self.client_id},
                sub={'essential': True},
                exp={'essential': True},
                iat={'essential': True},
                nonce={'essential': True, 'value': nonce},
            ).validate(claims)
            audiences = claims['aud'] if isinstance(claims['aud'], list) else [claims['aud']]
            if len(audiences) > 1 and claims.get('azp') != self.client_id:
                raise JoseError('azp is not this client')
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            log.warning('%s: ID token refused: %s', self.name, exc)
            return None
        return claims

    def profile(self, request, token, pending):
        claims = self.verify_id_token(token['id_token'], pending.get('nonce'))
        if claims is None:
            return self.denied('the ID token from %s did not verify (signature, issuer, '
                               'audience, expiry or nonce)' % self.label)
        claims = dict(claims)
        endpoint = self.metadata().get('userinfo_endpoint')
        if endpoint:
            response = self.http('GET', endpoint, headers={
                'Authorization': 'Bearer ' + token['access_token'],
                'Accept': 'application/json'})
            if response.status_code == 200:
                info = self.json_of(response, 'userinfo')
                # OIDC Core 5.3.2: userinfo of another subject must not be used.
                if info.get('sub') == claims['sub']:
                    claims.update(info)
        return self.make_profile(claims)

    def make_profile(self, claims):
        """velruse's profile (Portable Contacts) plus ``groups`` and the raw claims."""
        subject = str(claims['sub'])
        username = claims.get(self.username_claim)
        username = username if isinstance(username, str) else ''
        profile = {
            'accounts': [{'domain': self.metadata()['issuer'], 'userid': subject,
                          'username': username}],
            'preferredUsername': username,
            'displayName': claims.get('name') or username,
            'groups': self.groups_of(claims),
            'claims': claims,
        }
        email = claims.get('email')
        if isinstance(email, str) and email:
            profile['emails'] = [{'value': email}]
            if claims.get('email_verified'):
                profile['verifiedEmail'] = email
        return profile


class GitHubProvider(Provider):
    """github.com, or GitHub Enterprise Server at ``domain``."""

    type = 'github'

    def __init__(self, name, client_id, client_secret, domain='github.com', secure=True,
                 scope=None, username_claim='login', **kw):
        # read:user for the profile, user:email for the (private) verified address.
        super().__init__(name, client_id, client_secret,
                         scope='read:user user:email' if scope is None else scope,
                         username_claim=username_claim or 'login', **kw)
        self.domain = domain or 'github.com'
        protocol = 'https' if secure else 'http'
        if not secure:
            _check_url('http://%s/' % self.domain, 'sagenb.oauth.%s.domain' % name)
        self.base_url = '%s://%s' % (protocol, self.domain)
        # github.com serves its API on api.github.com; Enterprise on <domain>/api/v3.
        self.api_url = ('https://api.github.com' if self.domain == 'github.com'
                        else self.base_url + '/api/v3')

    def authorization_endpoint(self):
        return self.base_url + '/login/oauth/authorize'

    def token_endpoint(self):
        return self.base_url + '/login/oauth/access_token'

    def authorize_params(self, request, pending):
        params = super().authorize_params(request, pending)
        del params['response_type']  # GitHub's authorize URL takes none
        return params

    def exchange_code(self, request, code, pending):
        # GitHub answers a token request with HTTP 200 and {"error": ...} when it refuses.
        return self.token_request(request, code, pending, client_auth='client_secret_post')

    def api(self, path, token):
        response = self.http('GET', self.api_url + path, headers={
            'Authorization': 'Bearer ' + token['access_token'],
            'Accept': 'application/vnd.github+json',
            'X-GitHub-Api-Version': '2022-11-28'})
        if response.status_code != 200:
            return response.status_code, None
        return 200, response.json() if response.content else None

    def profile(self, request, token, pending):
        status, user = self.api('/user', token)
        if status != 200 or not isinstance(user, dict) or 'id' not in user:
            raise ThirdPartyFailure('%s: the user API answered HTTP %s' % (self.label, status))
        email = user.get('email') or ''
        verified = ''
        status, emails = self.api('/user/emails', token)
        if status == 200 and isinstance(emails, list):
            for entry in emails:
                if isinstance(entry, dict) and entry.get('primary') and entry.get('verified'):
                    verified = email = entry.get('email') or email
        login = user.get('login') if isinstance(user.get('login'), str) else ''
        claims = {**user, 'email': email}
        username = claims.get(self.username_claim)
        profile = {
            # The numeric id is the subject: a GitHub login can be renamed and reused.
            'accounts': [{'domain': self.domain, 'userid': str(user['id']),
                          'username': login}],
            'preferredUsername': username if isinstance(username, str) else login,
            'displayName': user.get('name') or login,
            'groups': self.groups_of(claims),
            'claims': claims,
        }
        if email:
            profile['emails'] = [{'value': email}]
        if verified:
            profile['verifiedEmail'] = verified
        return profile


# --- configuration -----------------------------------------------------------------

def _setting(settings, key, default=''):
    """``sagenb.<key>`` from the environment, else the settings, else ``default``.

    Provider names are chosen by the admin, so their keys cannot all be in DEFAULTS;
    they are looked up in the environment here."""
    return os.environ.get(env_name(key), settings.get(key, default))


def _words(value):
    return [w for w in (value or '').replace(',', ' ').split() if w]


def provider_from_settings(settings, name):
    prefix = 'sagenb.oauth.%s.' % name
    kind = _setting(settings, prefix + 'type', name if name in PROVIDER_TYPES else 'oidc')
    if kind not in PROVIDER_TYPES:
        raise SettingsError('%stype must be one of %s' % (prefix, ', '.join(PROVIDER_TYPES)))
    client_id = _setting(settings, prefix + 'client_id')
    if not client_id:
        raise SettingsError('%sclient_id is required for the provider %r' % (prefix, name))
    if prefix + 'client_secret' in settings and \
            env_name(prefix + 'client_secret') not in os.environ:
        raise SettingsError('the OAuth client secret belongs in the environment '
                            '(%s), not in the .ini file' % env_name(prefix + 'client_secret'))
    client_secret = os.environ.get(env_name(prefix + 'client_secret'), '')
    if not client_secret:
        raise SettingsError('set the client secret of %r in the environment: %s=...'
                            % (name, env_name(prefix + 'client_secret')))
    common = dict(
        label=_setting(settings, prefix + 'label',
                       {'github': 'GitHub', 'google': 'Google'}.get(kind, name)),
        groups_claim=_setting(settings, prefix + 'groups_claim'),
        admin_groups=_words(_setting(settings, prefix + 'admin_groups')),
        allowed_groups=_words(_setting(settings, prefix + 'allowed_groups')),
        timeout=settings.get('sagenb.oauth.timeout', 10.0),
    )
    if kind == 'github':
        scope = _setting(settings, prefix + 'scope', None)
        return GitHubProvider(
            name, client_id, client_secret,
            domain=_setting(settings, prefix + 'domain', 'github.com'),
            secure=_setting(settings, prefix + 'secure', 'true').lower()
            not in ('false', 'no', 'off', '0'),
            scope=scope, username_claim=_setting(settings, prefix + 'username_claim', 'login'),
            **common)
    discovery = _setting(settings, prefix + 'discovery_url',
                         GOOGLE_DISCOVERY_URL if kind == 'google' else '')
    if not discovery:
        raise SettingsError('%sdiscovery_url is required for the OpenID Connect provider %r'
                            % (prefix, name))
    provider = OIDCProvider(
        name, client_id, client_secret, discovery,
        scope=_setting(settings, prefix + 'scope'),
        username_claim=_setting(settings, prefix + 'username_claim',
                                'email' if kind == 'google' else 'preferred_username'),
        **common)
    provider.type = kind
    return provider


def add_provider(config, provider):
    """Register ``provider``'s routes the way velruse's ``add_*_login`` do."""
    def login_by_get(request):
        raise api_error(405, 'start the log-in with %s from the log-in page'
                        % provider.label)

    path = '/login/%s' % provider.name
    config.add_route(provider.login_route, path)
    # The start is a POST with the CSRF token: no other site can start (or link) a flow.
    config.add_view(provider, attr='login', route_name=provider.login_route,
                    request_method='POST', permission=NO_PERMISSION_REQUIRED)
    config.add_view(login_by_get, route_name=provider.login_route, request_method='GET',
                    permission=NO_PERMISSION_REQUIRED)
    config.add_route(provider.callback_route, path + '/callback', use_global_views=True,
                     factory=provider.callback)
    register_provider(config, provider.name, provider)


def configured_providers(request):
    """[provider] in the order of ``sagenb.oauth.providers``."""
    found = getattr(request.registry, 'velruse_providers', {})
    return [found[name] for name in request.registry.sagenb_oauth_names if name in found]


def includeme(config):
    settings = config.registry.settings
    names = _words(settings.get('sagenb.oauth.providers', ''))
    config.registry.sagenb_oauth_names = names
    for name in names:
        if not (name.replace('_', '').isalnum() and name.isascii()):
            # The name is part of URLs and of environment variable names.
            raise SettingsError('an OAuth provider name has letters, digits and "_": %r'
                                % name)
        add_provider(config, provider_from_settings(settings, name))
    config.add_request_method(configured_providers, 'oauth_providers', reify=True)
