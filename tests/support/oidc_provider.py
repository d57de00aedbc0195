"""A real OAuth 2 / OpenID Connect provider on 127.0.0.1, for the tests.

Built from Authlib's server components (``AuthorizationServer``, the authorization code
grant, ``CodeChallenge`` for PKCE, ``OpenIDCode`` for ID tokens) behind a small WSGI app
served by ``wsgiref`` in a thread: discovery document, authorization endpoint, token
endpoint, userinfo and JWKS.  The authorization endpoint approves at once (no login
page): the user is ``test_user=<name>`` from the query (else ``default_user``), and
``test_decision=deny`` makes it deny.  Knobs for the tests: ``id_token_overrides``
(claims forced into the next ID tokens), ``sign_with_foreign_key``, ``require_pkce``;
``token_requests`` records what the token endpoint received.
"""
import json
import threading
import time
from collections import defaultdict
from functools import cached_property
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from authlib.common.security import generate_token
from authlib.oauth2.rfc6749 import (
    AuthorizationServer, ClientMixin, OAuth2Error, OAuth2Payload, OAuth2Request, grants)
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import OpenIDCode
from joserfc.jwk import RSAKey
from webob import Request, Response

KEY_ID = 'test-key-1'


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def serve(app):
    """Serve a WSGI app on 127.0.0.1 (a free port) in a thread: (server, base URL)."""
    server = make_server('127.0.0.1', 0, app, server_class=_ThreadingServer,
                         handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, 'http://127.0.0.1:%d' % server.server_port


class Client(ClientMixin):
    def __init__(self, client_id, client_secret, redirect_uris):
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uris = redirect_uris

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope):
        allowed = {'openid', 'profile', 'email', 'groups'}
        return ' '.join(s for s in (scope or '').split() if s in allowed)

    def check_redirect_uri(self, redirect_uri):
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret):
        return client_secret == self.client_secret

    def check_endpoint_auth_method(self, method, endpoint):
        if endpoint == 'token':
            return method in ('client_secret_basic', 'client_secret_post')
        return True

    def check_response_type(self, response_type):
        return response_type == 'code'

    def check_grant_type(self, grant_type):
        return grant_type == 'authorization_code'


class AuthorizationCode:
    def __init__(self, code, request):
        self.code = code
        self.client_id = request.client.client_id
        self.redirect_uri = request.payload.redirect_uri
        self.scope = request.scope
        self.user = request.user
        self.nonce = request.payload.data.get('nonce')
        self.code_challenge = request.payload.data.get('code_challenge')
        self.code_challenge_method = request.payload.data.get('code_challenge_method')
        self.auth_time = int(time.time())
        self.expires = time.time() + 300

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope

    def get_nonce(self):
        return self.nonce

    def get_auth_time(self):
        return self.auth_time

    def get_acr(self):
        return None

    def get_amr(self):
        return None


class _Payload(OAuth2Payload):
    def __init__(self, request):
        self._request = request

    @property
    def data(self):
        return self._request.params

    @cached_property
    def datalist(self):
        values = defaultdict(list)
        for key, value in self._request.params.items():
            values[key].append(value)
        return values


class _Request(OAuth2Request):
    """An Authlib request over a WebOb request."""

    def __init__(self, request):
        super().__init__(request.method, request.url, headers=request.headers)
        self._request = request
        self.payload = _Payload(request)

    @property
    def args(self):
        return self._request.GET

    @property
    def form(self):
        return self._request.POST


class LocalOIDCProvider:
    """The provider: ``start()`` serves it; ``issuer`` is its base URL."""

    def __init__(self, client_id='notebook', client_secret='s3cret-of-the-notebook',
                 redirect_uris=()):
        self.clients = {client_id: Client(client_id, client_secret, list(redirect_uris))}
        self.users = {}
        self.default_user = None
        self.codes = {}
        self.tokens = {}
        self.nonces = set()
        self.token_requests = []
        self.id_token_overrides = {}
        self.sign_with_foreign_key = False
        self.require_pkce = True
        self.key = RSAKey.generate_key(2048, parameters={'kid': KEY_ID, 'use': 'sig'})
        self.foreign_key = RSAKey.generate_key(2048, parameters={'kid': KEY_ID})
        self.server = self._authorization_server()
        self.httpd = None
        self.issuer = None

    def add_user(self, sub, **claims):
        self.users[claims.get('preferred_username', sub)] = dict(claims, sub=sub)
        if self.default_user is None:
            self.default_user = claims.get('preferred_username', sub)

    # --- Authlib wiring ----------------------------------------------------------
    def _authorization_server(self):
        provider = self

        class Server(AuthorizationServer):
            def query_client(self, client_id):
                return provider.clients.get(client_id)

            def save_token(self, token, request):
                provider.tokens[token['access_token']] = (request.user, token['scope'])

            def create_oauth2_request(self, request):
                return _Request(request)

            def create_json_request(self, request):
                raise NotImplementedError

            def handle_response(self, status, body, headers):
                if isinstance(body, dict):
                    body = json.dumps(body)
                response = Response(status=status, body=(body or '').encode('utf-8'))
                for name, value in headers:
                    response.headers[name] = value
                return response

            def send_signal(self, name, *args, **kwargs):
                pass

        class CodeGrant(grants.AuthorizationCodeGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ['client_secret_basic', 'client_secret_post']

            def save_authorization_code(self, code, request):
                provider.codes[code] = AuthorizationCode(code, request)
                if request.payload.data.get('nonce'):
                    provider.nonces.add(request.payload.data['nonce'])

            def query_authorization_code(self, code, client):
                item = provider.codes.get(code)
                if item is not None and item.client_id == client.client_id \
                        and item.expires > time.time():
                    return item
                return None

            def delete_authorization_code(self, authorization_code):
                provider.codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code):
                return authorization_code.user

        class IDTokens(OpenIDCode):
            def resolve_client_private_key(self, client):
                return provider.foreign_key if provider.sign_with_foreign_key \
                    else provider.key

            def get_client_algorithm(self, client):
                return 'RS256'

            def get_encode_header(self, client):
                return {'alg': 'RS256', 'kid': KEY_ID}

            def get_client_claims(self, client):
                return {'iss': provider.issuer}

            def exists_nonce(self, nonce, request):
                return nonce in provider.nonces

            def generate_user_info(self, user, scope):
                # Applied last to the ID token's claims: the tests' overrides win.
                return dict(provider.claims_of(user, scope), **provider.id_token_overrides)

        server = Server(scopes_supported=['openid', 'profile', 'email', 'groups'])
        server.register_token_generator('default', BearerTokenGenerator(
            lambda **kw: generate_token(42)))
        server.register_grant(CodeGrant, [CodeChallenge(required=True),
                                          IDTokens(require_nonce=True)])
        return server

    def claims_of(self, user, scope):
        scopes = (scope or '').split()
        claims = {'sub': user['sub']}
        if 'profile' in scopes:
            for key in ('preferred_username', 'name'):
                if key in user:
                    claims[key] = user[key]
        if 'email' in scopes and 'email' in user:
            claims['email'] = user['email']
            claims['email_verified'] = True
        if 'groups' in user:  # given with "profile" here, as Keycloak's mappers do
            claims['groups'] = user['groups']
        return claims

    # --- endpoints ---------------------------------------------------------------
    def __call__(self, environ, start_response):
        request = Request(environ)
        route = {
            '/.well-known/openid-configuration': self.discovery,
            '/authorize': self.authorize,
            '/token': self.token,
            '/userinfo': self.userinfo,
            '/jwks': self.jwks,
        }.get(request.path)
        response = route(request) if route else Response(status=404)
        return response(environ, start_response)

    def discovery(self, request):
        base = self.issuer
        return Response(json_body={
            'issuer': base,
            'authorization_endpoint': base + '/authorize',
            'token_endpoint': base + '/token',
            'userinfo_endpoint': base + '/userinfo',
            'jwks_uri': base + '/jwks',
            'response_types_supported': ['code'],
            'subject_types_supported': ['public'],
            'id_token_signing_alg_values_supported': ['RS256'],
            'code_challenge_methods_supported': ['S256'],
            'token_endpoint_auth_methods_supported': ['client_secret_basic',
                                                      'client_secret_post'],
            'scopes_supported': ['openid', 'profile', 'email', 'groups'],
        })

    def jwks(self, request):
        return Response(json_body={'keys': [self.key.as_dict(private=False)]})

    def authorize(self, request):
        if self.require_pkce and (request.params.get('code_challenge_method') != 'S256'
                                  or not request.params.get('code_challenge')):
            return Response(status=400, json_body={
                'error': 'invalid_request', 'error_description': 'PKCE S256 is required'})
        try:
            grant = self.server.get_consent_grant(request)
        except OAuth2Error as error:
            return self.server.handle_error_response(request, error)
        user = None
        if request.params.get('test_decision') != 'deny':
            user = self.users[request.params.get('test_user') or self.default_user]
        return self.server.create_authorization_response(request, grant_user=user,
                                                         grant=grant)

    def token(self, request):
        if request.method != 'POST':
            return Response(status=405)
        self.token_requests.append({'form': dict(request.POST),
                                    'basic_auth': request.headers.get(
                                        'Authorization', '').startswith('Basic ')})
        return self.server.create_token_response(request)

    def userinfo(self, request):
        auth = request.headers.get('Authorization', '')
        found = self.tokens.get(auth[7:]) if auth.startswith('Bearer ') else None
        if found is None:
            return Response(status=401, json_body={'error': 'invalid_token'})
        user, scope = found
        return Response(json_body=self.claims_of(user, scope))

    # --- running -----------------------------------------------------------------
    def start(self):
        self.httpd, self.issuer = serve(self)
        return self

    def stop(self):
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
