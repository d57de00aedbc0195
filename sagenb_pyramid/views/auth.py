"""Logging in and out, signing up (when enabled) and changing one's password."""
import logging

from pyramid.httpexceptions import HTTPFound, HTTPNotFound
from pyramid.security import NO_PERMISSION_REQUIRED, forget, remember
from pyramid.view import view_config

from .. import audit, server_settings
from ..auth import captcha
from ..auth.mail import mail_enabled
from ..resources import Root
from ..security import P, end_sessions
from ..services import login as login_service
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
        try:
            user = login_service.password_login(request, context, login_name,
                                                request.POST.get('password', ''))
        except login_service.Refused as refused:
            error = refused.message
            request.response.status = refused.status
            if refused.retry_after:
                request.response.headers['Retry-After'] = str(refused.retry_after)
        else:
            headers = remember(request, user.id)
            target = safe_came_from(request, came_from) or home_url(request, user)
            return HTTPFound(target, headers=headers)
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
        errors = login_service.signup_problems(
            login_name, password, request.POST.get('password2', ''), email, confirm)
        try:
            errors.extend(e for e in [captcha.check(request, request.POST)] if e)
        except captcha.CaptchaUnavailable as exc:
            log.error('sign-up challenge not checked: %s', exc)
            errors.append('The challenge could not be checked just now; try again later.')
            request.response.status = 503
        if not errors:
            try:
                user = login_service.sign_up(request, context, login_name, password, email,
                                             confirm, mail_enabled(request))
            except login_service.Refused as refused:
                errors.append(refused.message)
            else:
                if confirm:
                    return {'sent_to': email, 'errors': [], 'login': login_name}
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
        errors = login_service.change_password(
            user, request.POST.get('current_password', ''),
            request.POST.get('new_password', ''), request.POST.get('new_password2', ''))
        if not errors:
            # Every other session of this user ends; this one goes on (a new id).
            headers = remember(request, user.id)
            request.session.flash('Your password was changed.')
            return HTTPFound(request.application_url + '/account', headers=headers)
        request.response.status = 400
    return {'errors': errors, 'user': user}
