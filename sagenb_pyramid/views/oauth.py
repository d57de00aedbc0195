"""OAuth / OpenID Connect outcomes: velruse's contexts turned into notebook users.

The providers (``auth/oauth.py``) end every callback in velruse's
``AuthenticationComplete`` or ``AuthenticationDenied``; ONE view here handles each:

- an identity (``provider:subject``) already linked -> log in as its user;
- a new identity -> a new user named by the provider's username claim, or, when that
  name is taken or not a valid username, a small form asking for another one (the
  identity waits in the signed session meanwhile; it is never linked to an existing
  account by name: that would hand a local account to whoever registers the same name
  at the provider);
- ``intent=link`` (started from the account page) -> the identity is linked to the
  logged-in account.

Groups from the provider's groups claim become notebook groups of source ``oidc``; members
of the provider's ``admin_groups`` are admins.  A callback whose ``state`` is missing or
wrong (velruse's ``CSRFError``) is refused with 403; a provider that cannot be reached or
answers nonsense (velruse's ``ThirdPartyFailure``) gives 502.  The decisions are
``services/identities.py``; here the request is read and answered.
"""
import logging

from pyramid.httpexceptions import HTTPFound
from pyramid.security import NO_PERMISSION_REQUIRED, remember
from pyramid.view import exception_view_config, view_config
from velruse import AuthenticationComplete, AuthenticationDenied
from velruse.exceptions import CSRFError, ThirdPartyFailure

from .. import audit
from ..resources import Root, root_factory
from ..security import P
from ..services import identities
from ..web import api_error, error_response, home_url, safe_came_from

log = logging.getLogger(__name__)


def app_root(request):
    """The application root.  On a callback route ``request.root`` is velruse's context;
    ``remember`` and ``audit.record`` look at ``request.root``, so it is set back."""
    root = root_factory(request)
    request.root = root
    return root


def provider_of(request, context):
    return request.registry.velruse_providers[context.provider_name]


def log_in(request, root, user, provider, identity, came_from=''):
    try:
        identities.log_in(request, root, user, provider, identity)
    except identities.Suspended as refused:
        # Answered, not raised: the audit entry is committed.
        return error_response(request, 403, str(refused))
    headers = remember(request, user.id)
    target = safe_came_from(request, came_from) or home_url(request, user)
    return HTTPFound(target, headers=headers)


@view_config(context=AuthenticationComplete, renderer='json',
             permission=NO_PERMISSION_REQUIRED)
def authentication_complete(context, request):
    """The one place where a provider's answer becomes a notebook user."""
    root = app_root(request)
    provider = provider_of(request, context)
    pending = request.environ.get('sagenb.oauth.pending') or {}
    identity = identities.identity_from(provider, context.profile)

    if pending.get('intent') == 'link':
        user = request.user
        if user is None or user.id != pending.get('user_id'):
            raise api_error(403, 'Log in to the account you want to link first.')
        identities.link(request, root, user, provider, identity)
        request.session.flash('Your %s identity %s is linked to this account.'
                              % (provider.label, identity['username'] or identity['subject']))
        return HTTPFound(request.application_url + '/account')

    user = identities.user_of(request, root, provider, identity)
    if user is not None:
        return log_in(request, root, user, provider, identity, pending.get('came_from'))
    # Taken or not a valid username: the person chooses one; the identity waits.
    identities.keep_pending(request.session, identity, pending.get('came_from', ''))
    return HTTPFound(request.application_url + '/oauth-username')


@view_config(context=Root, name='oauth-username', renderer='oauth_username.jinja2',
             permission=NO_PERMISSION_REQUIRED)
def choose_username(context, request):
    """Name the account of a new identity whose own username could not be used."""
    pending = identities.pending(request.session)
    if pending is None:
        raise api_error(400, 'There is no log-in waiting for a username (or it took too '
                             'long). Log in with your provider again.')
    providers = getattr(request.registry, 'velruse_providers', {})
    provider = providers.get(pending.get('provider'))
    if provider is None:
        raise api_error(400, 'That identity provider is no longer configured here.')
    errors = []
    login_name = identities.suggested_login(pending['username'])
    if request.method == 'POST':
        login_name = request.POST.get('login', '').strip()
        errors = identities.username_problems(context, login_name)
        if not errors:
            identities.drop_pending(request.session)
            user = identities.user_named(request, context, provider, pending, login_name)
            return log_in(request, context, user, provider, pending, pending.get('came_from'))
        request.response.status = 400
    return {'errors': errors, 'login': login_name, 'provider_label': provider.label,
            'provider_username': pending['username']}


@view_config(context=AuthenticationDenied, renderer='json',
             permission=NO_PERMISSION_REQUIRED)
def authentication_denied(context, request):
    root = app_root(request)
    providers = getattr(request.registry, 'velruse_providers', {})
    provider = providers.get(context.provider_name)
    label = provider.label if provider is not None else context.provider_name
    audit.record(request, 'login_failed', '', 'oauth:%s: %s'
                 % (context.provider_name, context.reason), root=root)
    return error_response(request, 403, 'The log-in with %s was not completed: %s. '
                          'Nothing was changed; you may try again from the log-in page.'
                          % (label, context.reason or 'no reason given'))


@exception_view_config(CSRFError, renderer='json')
def forged_state(exc, request):
    # The transaction is aborted (an exception): the refusal goes to the server log.
    log.warning('OAuth callback refused from %s: %s', request.client_addr, exc)
    return error_response(request, 403, 'This log-in answer was refused: %s. Nothing was '
                          'changed; start the log-in again from the log-in page.' % exc)


@exception_view_config(ThirdPartyFailure, renderer='json')
def provider_failed(exc, request):
    log.warning('OAuth provider failure: %s', exc)
    return error_response(request, 502, 'The identity provider failed: %s. Nothing was '
                          'changed; try again later.' % exc)


@view_config(context=Root, name='unlink-identity', request_method='POST',
             permission=P.ACCOUNT)
def unlink_identity(context, request):
    user = request.user
    key = request.POST.get('identity', '')
    if not user.identities or key not in user.identities:
        raise api_error(404, 'That identity is not linked to your account.')
    if not user.password_hash and len(user.identities) == 1:
        raise api_error(400, 'This identity is the only way to log in to your account; '
                             'link another one first.')
    label = user.identities[key].get('label', key)
    context.unlink_identity(user, key)
    audit.record(request, 'oauth_unlink', user.login, key)
    request.session.flash('The %s identity is no longer linked to this account.' % label)
    return HTTPFound(request.application_url + '/account')
