"""A user's own settings besides the password: API tokens (``/tokens``: list, create,
revoke) and the system of their new worksheets (``/default_system``).

A token is shown once, when it is made; afterwards it is known by the first characters
of its hash (``prefix``), which is also how it is revoked.  Tokens are made only by a
logged-in browser session, never by a token (so revoking a leaked token leaves no
offspring); a token may list its user's tokens and revoke itself.
"""
import re
import time

from pyramid.httpexceptions import HTTPFound
from pyramid.view import view_config

from ..auth.tokens import SCOPES
from ..resources import Root
from ..security import P, via_token
from ..services import tokens, worksheets
from ..services.tokens import token_list
from ..web import api_error, fmt_time, form_of, get_str, wants_json

# Longest expiry one may give a token (days); no expiry at all is allowed too.
MAX_EXPIRY_DAYS = 3650
# Offered on the pages (any whole number of days up to MAX_EXPIRY_DAYS from the API).
EXPIRY_CHOICES = (7, 30, 90, 365)


def page_data(root, user, new_token=None):
    return {'tokens': token_list(root, user), 'new_token': new_token, 'fmt_time': fmt_time,
            'expiry_choices': EXPIRY_CHOICES}


@view_config(context=Root, name='tokens', request_method='GET', permission=P.ACCOUNT,
             renderer='tokens.jinja2')
def tokens_page(context, request):
    if wants_json(request):
        request.override_renderer = 'json'
        return {'tokens': token_list(context, request.user)}
    return page_data(context, request.user)


def _scope_and_expiry(body):
    """The ``scope`` and ``expires_in_days`` of a new token (form fields or JSON)."""
    scope = body.get('scope', 'full')
    if scope in (None, ''):
        scope = 'full'
    if scope not in SCOPES:
        raise api_error(400, '"scope" must be "full" or "read"')
    days = body.get('expires_in_days')
    if days in (None, '', 'never'):
        return scope, None
    if isinstance(days, str) and days.strip().isdigit():
        days = int(days.strip())
    if isinstance(days, bool) or not isinstance(days, int) \
            or not 1 <= days <= MAX_EXPIRY_DAYS:
        raise api_error(400, '"expires_in_days" must be a whole number of days from 1 to '
                             '%d, or left out for a token that does not expire'
                        % MAX_EXPIRY_DAYS)
    return scope, time.time() + days * 86400


@view_config(context=Root, name='tokens', request_method='POST', permission=P.ACCOUNT,
             renderer='tokens.jinja2')
def create_token_view(context, request):
    if via_token(request):
        # A leaked token must not be able to make more (revoking it would leave them).
        raise api_error(403, 'an API token cannot create tokens: log in and create it on '
                             'the /tokens page')
    body = form_of(request)
    label = get_str(body, 'label', '', max_length=100) if isinstance(body, dict) \
        else body.get('label', '')
    label = ' '.join((label or '').split())
    if len(label) > 100:
        raise api_error(400, '"label" is longer than 100 characters')
    scope, expires = _scope_and_expiry(body)
    user = request.user
    token, prefix = tokens.new_token(request, context, user, label, scope, expires)
    request.response.status = 201
    made = {'token': token, 'prefix': prefix, 'label': label, 'scope': scope,
            'expires': expires}
    if wants_json(request):
        request.override_renderer = 'json'
        return made
    return page_data(context, user, made)


@view_config(context=Root, name='revoke_token', request_method='POST', permission=P.ACCOUNT,
             renderer='json')
def revoke_token_view(context, request):
    body = form_of(request)
    prefix = get_str(body, 'prefix', '', max_length=64) if isinstance(body, dict) \
        else body.get('prefix', '')
    prefix = (prefix or '').strip()
    # A whole prefix as listed, so that a short one cannot revoke by accident.
    if not re.fullmatch(r'[0-9a-f]{12,64}', prefix):
        raise api_error(400, '"prefix" must be a token prefix as listed (12 hex digits)')
    tokens.revoke(request, context, request.user, prefix, only=request.environ.get(
        'sagenb.token_digest') if via_token(request) else None)
    if wants_json(request):
        return {'revoked': prefix}
    request.session.flash('The token %s is revoked.' % prefix)
    return HTTPFound(request.application_url + '/tokens')


@view_config(context=Root, name='default_system', request_method='POST',
             permission=P.ACCOUNT, renderer='json')
def default_system(context, request):
    body = form_of(request)
    worksheets.set_default_system(request.user,
                                  body.get('system') if body is not None else None)
    if wants_json(request):
        return {'default_system': request.user.default_system}
    request.session.flash('New worksheets will use %s.' % request.user.default_system)
    return HTTPFound(request.application_url + '/account')
