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
answers nonsense (velruse's ``ThirdPartyFailure``) gives 502.
"""
import logging
import time

from pyramid.httpexceptions import HTTPFound
from pyramid.security import NO_PERMISSION_REQUIRED, remember
from pyramid.view import exception_view_config, view_config
from velruse import AuthenticationComplete, AuthenticationDenied
from velruse.exceptions import CSRFError, ThirdPartyFailure

from .. import audit
from ..auth.passwords import LOGIN_RE, check_login_name
from ..resources import Root, root_factory
from ..security import P
from ..web import api_error, error_response, home_url, safe_came_from

log = logging.getLogger(__name__)

PENDING_IDENTITY_KEY = 'oauth.pending_identity'
# How long a new identity may wait for its username to be chosen.
PENDING_IDENTITY_TIMEOUT = 900
GROUP_SOURCE = 'oidc'


def app_root(request):
    """The application root.  On a callback route ``request.root`` is velruse's context;
    ``remember`` and ``audit.record`` look at ``request.root``, so it is set back."""
    root = root_factory(request)
    request.root = root
    return root


def provider_of(request, context):
    return request.registry.velruse_providers[context.provider_name]


def identity_from(provider, profile):
    """What is kept about an identity while it waits for a username, and on the user."""
    account = profile['accounts'][0]
    emails = profile.get('emails') or []
    return {
        'provider': provider.name,
        'subject': str(account['userid']),
        'username': profile.get('preferredUsername') or '',
        'email': profile.get('verifiedEmail') or (emails[0]['value'] if emails else ''),
        'fullname': profile.get('displayName') or '',
        'groups': list(profile.get('groups') or []),
    }


def identity_key(identity):
    return '%s:%s' % (identity['provider'], identity['subject'])


def suggested_login(name):
    """A valid username close to ``name`` (the provider's username), or ''."""
    cleaned = ''.join(c if c.isascii() and (c.isalnum() or c in '_.@') else '_'
                      for c in (name or ''))
    cleaned = cleaned.lstrip('_.@0123456789')[:64]
    return cleaned if LOGIN_RE.match(cleaned) else ''


def apply_identity(root, user, provider, identity):
    """Groups, admin right, missing e-mail and name from the provider; the link."""
    groups = identity['groups']
    if provider.groups_claim:
        root.sync_groups(user, groups, GROUP_SOURCE)
    key = identity_key(identity)
    info = dict((user.identities or {}).get(key) or {})
    if provider.admin_groups:
        if provider.admin_groups & set(groups):
            if not user.is_admin:
                user.is_admin = True
                info['granted_admin'] = True
        elif info.get('granted_admin'):
            # Granted by this provider's groups earlier, and no longer a member.
            user.is_admin = False
            info['granted_admin'] = False
    if not user.email and identity['email']:
        user.email = identity['email']
    if not user.fullname and identity['fullname']:
        user.fullname = identity['fullname']
    info.update(provider=provider.name, label=provider.label, subject=identity['subject'],
                username=identity['username'], last_login=time.time())
    info.setdefault('linked', time.time())
    root.link_identity(user, key, info)


def log_in(request, root, user, provider, identity, came_from=''):
    if user.suspended:
        audit.record(request, 'login_failed', user.login, 'oauth:%s: suspended'
                     % provider.name, actor='', root=root)
        # Answered, not raised: the audit entry is committed.
        return error_response(request, 403, 'This account is suspended.')
    apply_identity(root, user, provider, identity)
    headers = remember(request, user.id)
    audit.record(request, 'login', user.login, 'oauth:%s' % provider.name,
                 actor=user.login, root=root)
    target = safe_came_from(request, came_from) or home_url(request, user)
    return HTTPFound(target, headers=headers)


def refuse_groups(provider, identity):
    if provider.allowed_groups and not provider.allowed_groups & set(identity['groups']):
        raise api_error(403, 'Your account at %s is not in a group that may use this '
                             'notebook.' % provider.label)


@view_config(context=AuthenticationComplete, renderer='json',
             permission=NO_PERMISSION_REQUIRED)
def authentication_complete(context, request):
    """The one place where a provider's answer becomes a notebook user."""
    root = app_root(request)
    provider = provider_of(request, context)
    pending = request.environ.get('sagenb.oauth.pending') or {}
    identity = identity_from(provider, context.profile)
    key = identity_key(identity)

    if pending.get('intent') == 'link':
        user = request.user
        if user is None or user.id != pending.get('user_id'):
            raise api_error(403, 'Log in to the account you want to link first.')
        owner = root.user_by_identity(key)
        if owner is not None and owner is not user:
            raise api_error(409, 'This %s identity is already linked to another account.'
                            % provider.label)
        if user.suspended:
            raise api_error(403, 'This account is suspended.')
        apply_identity(root, user, provider, identity)
        audit.record(request, 'oauth_link', user.login,
                     '%s (%s)' % (key, identity['username']), root=root)
        request.session.flash('Your %s identity %s is linked to this account.'
                              % (provider.label, identity['username'] or identity['subject']))
        return HTTPFound(request.application_url + '/account')

    refuse_groups(provider, identity)
    user = root.user_by_identity(key)
    if user is not None:
        return log_in(request, root, user, provider, identity, pending.get('came_from'))
    login_name = identity['username'].strip()
    if check_login_name(login_name) is None and root.user_by_login(login_name) is None:
        user = root.add_user(login_name, None, email=identity['email'],
                             fullname=identity['fullname'])
        audit.record(request, 'user_created', login_name, 'oauth:%s' % provider.name,
                     actor=login_name, root=root)
        return log_in(request, root, user, provider, identity, pending.get('came_from'))
    # Taken or not a valid username: the person chooses one; the identity waits.
    request.session[PENDING_IDENTITY_KEY] = dict(
        identity, came_from=pending.get('came_from', ''), time=time.time())
    return HTTPFound(request.application_url + '/oauth-username')


@view_config(context=Root, name='oauth-username', renderer='oauth_username.jinja2',
             permission=NO_PERMISSION_REQUIRED)
def choose_username(context, request):
    """Name the account of a new identity whose own username could not be used."""
    pending = request.session.get(PENDING_IDENTITY_KEY)
    if not isinstance(pending, dict) or \
            time.time() - pending.get('time', 0) > PENDING_IDENTITY_TIMEOUT:
        request.session.pop(PENDING_IDENTITY_KEY, None)
        raise api_error(400, 'There is no log-in waiting for a username (or it took too '
                             'long). Log in with your provider again.')
    providers = getattr(request.registry, 'velruse_providers', {})
    provider = providers.get(pending.get('provider'))
    if provider is None:
        raise api_error(400, 'That identity provider is no longer configured here.')
    errors = []
    login_name = suggested_login(pending['username'])
    if request.method == 'POST':
        login_name = request.POST.get('login', '').strip()
        errors = [e for e in [check_login_name(login_name)] if e]
        if not errors and context.user_by_login(login_name) is not None:
            errors.append('That username is taken; choose another.')
        if not errors:
            request.session.pop(PENDING_IDENTITY_KEY, None)
            refuse_groups(provider, pending)
            # Linked meanwhile (the same identity logged in in another tab): that user.
            user = context.user_by_identity(identity_key(pending))
            if user is None:
                user = context.add_user(login_name, None, email=pending['email'],
                                        fullname=pending['fullname'])
                audit.record(request, 'user_created', login_name,
                             'oauth:%s' % provider.name, actor=login_name)
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
