"""A user's own settings besides the password: API tokens (``/tokens``: list, create,
revoke) and the system of their new worksheets (``/default_system``).

A token is shown once, when it is made; afterwards it is known by the first characters
of its hash (``prefix``), which is also how it is revoked.
"""
import re

from pyramid.httpexceptions import HTTPFound
from pyramid.view import view_config

from .. import audit, names
from ..auth.tokens import create_token, revoke_token, user_tokens
from ..resources import Root
from ..security import P, token_digest
from . import api_error, form_of, get_str, wants_json
from .admin import fmt_time

# Offered on the account page; any system name (names.system_problem) from the API.
SYSTEMS = ('sage', 'python', 'gp', 'gap', 'maxima', 'singular', 'r', 'sh', 'html', 'latex')
MAX_TOKENS = 50


def token_list(root, user):
    found = sorted(user_tokens(root, user), key=lambda item: item[1].created)
    return [{'prefix': prefix, 'label': record.label, 'created': record.created,
             'last_used': record.last_used} for prefix, record in found]


@view_config(context=Root, name='tokens', request_method='GET', permission=P.ACCOUNT,
             renderer='tokens.jinja2')
def tokens_page(context, request):
    tokens = token_list(context, request.user)
    if wants_json(request):
        request.override_renderer = 'json'
        return {'tokens': tokens}
    return {'tokens': tokens, 'new_token': None, 'fmt_time': fmt_time}


@view_config(context=Root, name='tokens', request_method='POST', permission=P.ACCOUNT,
             renderer='tokens.jinja2')
def create_token_view(context, request):
    body = form_of(request)
    label = get_str(body, 'label', '', max_length=100) if isinstance(body, dict) \
        else body.get('label', '')
    label = ' '.join((label or '').split())
    if len(label) > 100:
        raise api_error(400, '"label" is longer than 100 characters')
    user = request.user
    if len(user_tokens(context, user)) >= MAX_TOKENS:
        raise api_error(409, 'you have %d tokens already; revoke some first' % MAX_TOKENS)
    token = create_token(context, user, label)
    prefix = token_digest(token)[:12]
    audit.record(request, 'token_created', user.login, prefix)
    request.response.status = 201
    if wants_json(request):
        request.override_renderer = 'json'
        return {'token': token, 'prefix': prefix, 'label': label}
    return {'tokens': token_list(context, user), 'fmt_time': fmt_time,
            'new_token': {'token': token, 'prefix': prefix, 'label': label}}


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
    if not revoke_token(context, request.user, prefix):
        raise api_error(404, 'you have no token %s' % prefix)
    audit.record(request, 'token_revoked', request.user.login, prefix)
    if wants_json(request):
        return {'revoked': prefix}
    request.session.flash('The token %s is revoked.' % prefix)
    return HTTPFound(request.application_url + '/tokens')


@view_config(context=Root, name='default_system', request_method='POST',
             permission=P.ACCOUNT, renderer='json')
def default_system(context, request):
    body = form_of(request)
    system = body.get('system') if body is not None else None
    if not isinstance(system, str) or names.system_problem(system.strip()):
        raise api_error(400, '"system" must be the name of a system, e.g. "sage", "python" '
                             'or "gp"')
    request.user.default_system = system.strip()
    if wants_json(request):
        return {'default_system': request.user.default_system}
    request.session.flash('New worksheets will use %s.' % request.user.default_system)
    return HTTPFound(request.application_url + '/account')
