"""Logging in and out, signing up (when enabled) and changing one's password."""
import logging

from pyramid.httpexceptions import HTTPFound, HTTPNotFound
from pyramid.security import NO_PERMISSION_REQUIRED, forget, remember
from pyramid.view import view_config

from .. import audit, server_settings
from ..auth import captcha, ratelimit
from ..auth.passwords import (
    burn_time, check_login_name, hash_password, new_password_problems, verify_password)
from ..auth.ldap import LoginRefused, ldap_applies, ldap_login
from ..auth.mail import mail_enabled
from ..resources import Root
from ..security import P, end_sessions
from ..services.accounts import check_email, login_taken
from ..services.links import send_confirmation, unconfirmed_login
from ..web import api_error, home_url, safe_came_from, wants_json

log = logging.getLogger(__name__)


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
        wait = ratelimit.locked_for(request, login_name)
        if wait:
            # Counted for any name typed, account or not: this tells nothing either.
            error = ('Too many failed attempts for this username or from your address. '
                     'Wait %d seconds, then try again.' % wait)
            request.response.status = 429
            request.response.headers['Retry-After'] = str(wait)
        elif ldap_applies(request.registry.settings, user):
            # Directory accounts (auth/ldap.py); a local account never logs in this way.
            try:
                user = ldap_login(request, context, login_name, password)
            except LoginRefused as refused:
                error = refused.message
                request.response.status = refused.status
            else:
                ratelimit.record_success(request, login_name)
                headers = remember(request, user.id)
                target = safe_came_from(request, came_from) or home_url(request, user)
                return HTTPFound(target, headers=headers)
        elif user is None:
            burn_time(password)
        elif verify_password(user, password):
            ratelimit.record_success(request, login_name)
            # Signed up where the address must be confirmed first (views/account.py).
            error = unconfirmed_login(request, user)
            if error is None and user.suspended:
                # Only after the right password: the answer tells nothing to others.
                error = 'This account is suspended; ask an administrator.'
                audit.record(request, 'login_failed', user.login, 'suspended', actor='')
            if error is None:
                audit.record_after_commit(request, 'login', user.login, actor=user.login)
                headers = remember(request, user.id)
                target = safe_came_from(request, came_from) or home_url(request, user)
                return HTTPFound(target, headers=headers)
            request.response.status = 403
        if error is None:
            # One message whatever was wrong: the page does not tell who has an account.
            error = 'Wrong username or password.'
            request.response.status = 400
            audit.record_after_commit(request, 'login_failed', login_name[:100])
        if request.response.status_int == 400:
            ratelimit.record_failure(request, login_name)
    return {'error': error, 'login': login_name, 'came_from': came_from,
            'allow_signup': server_settings.get(request, 'sagenb.allow_signup'),
            'can_reset': mail_enabled(request),
            'no_users': len(context.home) == 0}


@view_config(context=Root, name='logout', request_method='POST',
             permission=NO_PERMISSION_REQUIRED)
def logout(context, request):
    # Ends this session in the database too: a copy of its cookie no longer works.
    headers = forget(request)
    return HTTPFound(request.application_url + '/login', headers=headers)


@view_config(context=Root, name='logout-everywhere', request_method='POST',
             permission=P.ACCOUNT, renderer='json')
def logout_everywhere(context, request):
    """End every session of the user, on every browser and app server (tokens stay)."""
    user = request.user
    end_sessions(user)
    audit.record(request, 'logout_everywhere', user.login, actor=user.login)
    if wants_json(request):
        return {'message': 'every session of %s ended' % user.login}
    headers = forget(request)
    request.session.flash('You are logged out everywhere.')
    return HTTPFound(request.application_url + '/login', headers=headers)


@view_config(context=Root, name='signup', renderer='signup.jinja2',
             permission=NO_PERMISSION_REQUIRED)
def signup(context, request):
    if not server_settings.get(request, 'sagenb.allow_signup'):
        raise HTTPNotFound('sign-up is not enabled on this server')
    # Captcha, e-mail and confirmation: views/account.py and auth/captcha.py.
    confirm = server_settings.get(request, 'sagenb.signup.require_email_confirmation')
    if confirm and not mail_enabled(request):
        raise api_error(503, 'sign-up needs a confirmed e-mail address, but this server '
                             'sends no mail; tell its administrator (sagenb.mail.host)')
    errors = []
    login_name = email = ''
    if request.method == 'POST':
        login_name = request.POST.get('login', '').strip()
        password = request.POST.get('password', '')
        email = request.POST.get('email', '').strip()
        errors = [e for e in [check_login_name(login_name)] if e]
        errors += new_password_problems(password, request.POST.get('password2', ''),
                                        login_name)
        if email or confirm:
            errors.extend(e for e in [check_email(email)] if e)
        try:
            errors.extend(e for e in [captcha.check(request, request.POST)] if e)
        except captcha.CaptchaUnavailable as exc:
            log.error('sign-up challenge not checked: %s', exc)
            errors.append('The challenge could not be checked just now; try again later.')
            request.response.status = 503
        if not errors and login_taken(context, login_name):
            errors.append('That username is taken; choose another.')
        if not errors:
            user = context.add_user(login_name, hash_password(password), email=email)
            audit.record(request, 'signup', user.login, email, actor=user.login)
            if confirm:
                user.awaiting_confirmation = True
                send_confirmation(request, user, email, 'confirm')
                return {'sent_to': email, 'errors': [], 'login': login_name}
            if email and mail_enabled(request):
                send_confirmation(request, user, email, 'confirm')
            headers = remember(request, user.id)
            return HTTPFound(home_url(request, user), headers=headers)
        if request.response.status_int < 400:
            request.response.status = 400
    return {'errors': errors, 'login': login_name, 'email': email, 'require_email': confirm,
            'captcha': captcha.template_data(request)}


@view_config(context=Root, name='account', renderer='account.jinja2', permission=P.ACCOUNT)
def account(context, request):
    user = request.user
    errors = []
    if request.method == 'POST':
        current = request.POST.get('current_password', '')
        new = request.POST.get('new_password', '')
        if user.auth_source == 'ldap':
            errors.append('Your password is managed by the directory (LDAP); change it '
                          'there.')
        elif user.password_hash and not verify_password(user, current):
            # Accounts made by an OAuth login have no password yet: they may set one.
            errors.append('The current password is wrong.')
        else:
            errors = new_password_problems(new, request.POST.get('new_password2', ''),
                                           user.login, 'The two new passwords differ.')
        if not errors:
            user.password_hash = hash_password(new)
            # Every other session of this user ends; this one goes on (a new id).
            end_sessions(user)
            headers = remember(request, user.id)
            request.session.flash('Your password was changed.')
            return HTTPFound(request.application_url + '/account', headers=headers)
        request.response.status = 400
    return {'errors': errors, 'user': user}
