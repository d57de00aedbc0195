"""The pages of the links sent by mail (``services/links.py`` makes and uses them):
asking for a password reset, choosing the new password, confirming an address, and
starting a change of address.

The reset request answers with the same page and status whether or not an account
matches, and the mail goes out after the response, so neither the page nor its timing
tells who has an account.
"""
from pyramid.httpexceptions import HTTPFound
from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.view import view_config

from ..auth.mail import mail_enabled
from ..auth.passwords import new_password_problems
from ..resources import Root
from ..security import P
from ..services import links
from ..services.accounts import email_change_problem
from ..web import api_error


def _no_referrer(request):
    # The token is in the URL: it must not leak through the Referer header.
    request.response.headers['Referrer-Policy'] = 'no-referrer'


def _mail_off():
    return api_error(404, 'this server sends no mail, so passwords cannot be reset by '
                          'mail; ask an administrator')


@view_config(context=Root, name='forgot', renderer='reset_request.jinja2',
             permission=NO_PERMISSION_REQUIRED)
def reset_request(context, request):
    """Ask for a reset link by login or e-mail; the answer is the same either way."""
    if not mail_enabled(request):
        raise _mail_off()
    error = None
    sent = False
    who = ''
    if request.method == 'POST':
        who = request.POST.get('who', '').strip()[:254]
        if not who:
            error = 'Give your username or your e-mail address.'
            request.response.status = 400
        else:
            links.request_reset(request, context, who)
            sent = True
    return {'error': error, 'sent': sent, 'who': who,
            'max_age': links.minutes(links.link_max_age(request, 'reset'))}


@view_config(context=Root, name='reset', renderer='reset.jinja2',
             permission=NO_PERMISSION_REQUIRED)
def reset(context, request):
    """``/reset/<token>``: choose a new password."""
    _no_referrer(request)
    token = request.subpath[0] if len(request.subpath) == 1 else ''
    record = links.find_token(context, token, ('reset',))
    if record is None:
        raise api_error(400, 'This link is wrong, was already used or has expired. '
                             'Ask for a new one on the "Forgot your password?" page.')
    user = context.users_by_id[record.user_id]
    errors = []
    if request.method == 'POST':
        password = request.POST.get('password', '')
        errors = new_password_problems(password, request.POST.get('password2', ''),
                                       user.login)
        if not errors:
            links.set_password(request, context, user, record, password)
            request.session.flash('Your new password is set; log in with it.')
            return HTTPFound(request.application_url + '/login')
        request.response.status = 400
    return {'errors': errors, 'user': user, 'action': request.path_url}


@view_config(context=Root, name='confirm', renderer='confirm.jinja2',
             permission=NO_PERMISSION_REQUIRED)
def confirm(context, request):
    """``/confirm/<token>``: confirm an e-mail address (sign-up or change)."""
    _no_referrer(request)
    token = request.subpath[0] if len(request.subpath) == 1 else ''
    record = links.find_token(context, token, ('confirm', 'email'))
    if record is None:
        raise api_error(400, 'This link is wrong, was already used or has expired.')
    user = context.users_by_id[record.user_id]
    if request.method == 'POST':
        request.session.flash(links.confirm_address(request, context, token, record))
        target = '/account' if request.user is not None else '/login'
        return HTTPFound(request.application_url + target)
    return {'user': user, 'email': record.email, 'purpose': record.purpose,
            'action': request.path_url}


@view_config(context=Root, name='change-email', request_method='POST',
             renderer='email_change.jinja2', permission=P.ACCOUNT)
def change_email(context, request):
    """Start a change of address: a link goes to the new address; the old one stays
    until it is followed."""
    user = request.user
    if not mail_enabled(request):
        raise api_error(404, 'this server sends no mail, so addresses cannot be confirmed; '
                             'ask an administrator to change yours')
    new = request.POST.get('email', '').strip()
    error = email_change_problem(user, new, request.POST.get('current_password', ''))
    if error is not None:
        request.response.status = 400
        return {'error': error, 'email': new}
    links.start_email_change(request, user, new)
    request.session.flash('We sent a link to %s: your address changes when you follow it.'
                          % new)
    return HTTPFound(request.application_url + '/account')
