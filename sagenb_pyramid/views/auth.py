"""Logging in and out, signing up (when enabled) and changing one's password."""
from urllib.parse import urlparse

from pyramid.httpexceptions import HTTPFound, HTTPNotFound
from pyramid.security import NO_PERMISSION_REQUIRED, forget, remember
from pyramid.settings import asbool
from pyramid.view import view_config

from ..auth.passwords import (
    burn_time, check_login_name, check_password, hash_password, verify_password)
from ..resources import Root
from ..security import P


def home_url(request, user):
    return request.resource_url(user)


def safe_came_from(request, came_from):
    """Only a path on this server: never a redirect elsewhere."""
    parsed = urlparse(came_from or '')
    if came_from and not parsed.scheme and not parsed.netloc and came_from.startswith('/') \
            and not came_from.startswith('//'):
        return request.application_url + came_from
    return None


@view_config(context=Root, request_method='GET', permission=NO_PERMISSION_REQUIRED)
def root_view(context, request):
    if request.user is not None:
        return HTTPFound(home_url(request, request.user))
    return HTTPFound(request.application_url + '/login')


@view_config(context=Root, name='login', renderer='login.jinja2',
             permission=NO_PERMISSION_REQUIRED)
def login(context, request):
    came_from = request.params.get('came_from', '')
    error = None
    login_name = ''
    if request.method == 'POST':
        login_name = request.POST.get('login', '').strip()
        password = request.POST.get('password', '')
        user = context.user_by_login(login_name)
        if user is None:
            burn_time(password)
        elif verify_password(user, password):
            headers = remember(request, user.id)
            target = safe_came_from(request, came_from) or home_url(request, user)
            return HTTPFound(target, headers=headers)
        # One message whatever was wrong: the page does not tell who has an account.
        error = 'Wrong username or password.'
        request.response.status = 400
    return {'error': error, 'login': login_name, 'came_from': came_from,
            'allow_signup': asbool(request.registry.settings['sagenb.allow_signup']),
            'no_users': len(context.home) == 0}


@view_config(context=Root, name='logout', request_method='POST',
             permission=NO_PERMISSION_REQUIRED)
def logout(context, request):
    headers = forget(request)
    return HTTPFound(request.application_url + '/login', headers=headers)


@view_config(context=Root, name='signup', renderer='signup.jinja2',
             permission=NO_PERMISSION_REQUIRED)
def signup(context, request):
    if not asbool(request.registry.settings['sagenb.allow_signup']):
        raise HTTPNotFound('sign-up is not enabled on this server')
    errors = []
    login_name = ''
    if request.method == 'POST':
        login_name = request.POST.get('login', '').strip()
        password = request.POST.get('password', '')
        errors = [e for e in (check_login_name(login_name),
                              check_password(password, login_name)) if e]
        if password != request.POST.get('password2', ''):
            errors.append('The two passwords differ.')
        if not errors and context.user_by_login(login_name) is not None:
            errors.append('That username is taken; choose another.')
        if not errors:
            user = context.add_user(login_name, hash_password(password))
            headers = remember(request, user.id)
            return HTTPFound(home_url(request, user), headers=headers)
        request.response.status = 400
    return {'errors': errors, 'login': login_name}


@view_config(context=Root, name='account', renderer='account.jinja2', permission=P.ACCOUNT)
def account(context, request):
    user = request.user
    errors = []
    if request.method == 'POST':
        current = request.POST.get('current_password', '')
        new = request.POST.get('new_password', '')
        if not verify_password(user, current):
            errors.append('The current password is wrong.')
        else:
            errors = [e for e in [check_password(new, user.login)] if e]
            if new != request.POST.get('new_password2', ''):
                errors.append('The two new passwords differ.')
        if not errors:
            user.password_hash = hash_password(new)
            # Every other session of this user ends; this one goes on.
            user.session_epoch += 1
            headers = remember(request, user.id)
            request.session.flash('Your password was changed.')
            return HTTPFound(request.application_url + '/account', headers=headers)
        request.response.status = 400
    return {'errors': errors, 'user': user}
