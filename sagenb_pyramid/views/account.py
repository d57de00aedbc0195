"""Links sent by mail: password reset, confirmation of the address given at sign-up,
change of e-mail address (confirmed at the new address).

Each link holds a random token; only its SHA-256 is stored (``root.account_tokens``)
with the user, the purpose and an expiry.  A link works once: it is deleted when used.
Opening a link shows a page with a button (a POST with the CSRF token): mail scanners
that fetch links do not use them up or change anything.

Every link in a mail starts with ``sagenb.public_url`` (``auth/mail.public_url``), never
with the request's ``Host``, which whoever sends the request chooses.

The reset request answers with the same page and status whether or not an account
matches, and the mail goes out after the response (``auth/mail.py``), so neither the
page nor its timing tells who has an account.
"""
import hashlib
import re
import time

from pyramid.httpexceptions import HTTPFound
from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.settings import asbool
from pyramid.view import view_config

from .. import audit, server_settings
from ..auth import ratelimit
from ..auth.mail import mail_enabled, public_url, send_mail
from ..auth.passwords import hash_password, new_password_problems, verify_password
from ..resources import AccountToken, Root
from ..security import P, end_sessions
from . import api_error

EMAIL_RE = re.compile(r'^[^@\s<>,;"]+@[^@\s<>,;"]+\.[^@\s<>,;"]+$')
# A second reset mail for the same account waits this long (no mail bombing).
RESET_RESEND_AFTER = 60
PURPOSES = ('reset', 'confirm', 'email')


def check_email(address):
    if len(address) > 254 or not EMAIL_RE.match(address):
        return 'That is not an e-mail address.'
    return None


def account_tokens(root):
    return root.account_tokens


def _digest(token):
    return hashlib.sha256(token.encode('utf-8', 'replace')).hexdigest()


def issue_token(root, user, purpose, max_age, email=''):
    """A new single-use token for ``user``; returns the token (shown only in the mail)."""
    import secrets
    if purpose not in PURPOSES:
        raise ValueError(purpose)
    tree = account_tokens(root)
    now = time.time()
    for digest in [d for d, t in tree.items() if t.expires < now]:
        del tree[digest]
    token = secrets.token_urlsafe(32)
    tree[_digest(token)] = AccountToken(user.id, purpose, now + max_age, email)
    return token


def find_token(root, token, purposes):
    """The live ``AccountToken`` for ``token`` of one of ``purposes``, or None."""
    if not token or len(token) > 200:
        return None
    record = root.account_tokens.get(_digest(token))
    if record is None or record.purpose not in purposes or record.expires < time.time():
        return None
    if root.users_by_id.get(record.user_id) is None:
        return None
    return record


def drop_tokens(root, user, purpose):
    tree = account_tokens(root)
    for digest in [d for d, t in tree.items()
                   if t.user_id == user.id and t.purpose == purpose]:
        del tree[digest]


def _max_age(request, which):
    return int(request.registry.settings['sagenb.account.%s_link_max_age' % which])


def _minutes(seconds):
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return '%d hour%s' % (hours, '' if hours == 1 else 's')
    return '%d minutes' % max(1, seconds // 60)


def send_reset_link(request, user, root=None):
    """Mail ``user`` a link to set a new password (also for admins and invitations).

    Returns False (and sends nothing) when the user has no e-mail address or was sent
    one less than a minute ago."""
    root = root if root is not None else request.root
    if not user.email:
        return False
    now = time.time()
    max_age = _max_age(request, 'reset')
    for record in account_tokens(root).values():
        if record.user_id == user.id and record.purpose == 'reset' \
                and now - record.created < RESET_RESEND_AFTER:
            return False
    token = issue_token(root, user, 'reset', max_age, email=user.email)
    base = public_url(request)
    link = '%s/reset/%s' % (base, token)
    send_mail(request, user.email, 'Set a new password for the Sage Notebook', (
        'Hello %s,\n\n'
        'someone (hopefully you) asked to set a new password for the account "%s" on\n'
        '%s/\n\n'
        'To choose a new password, open this link within %s (it works once):\n\n'
        '%s\n\n'
        'If you did not ask for this, ignore this mail: your password stays as it is.\n'
        % (user.fullname or user.login, user.login, base, _minutes(max_age), link)))
    return True


def send_confirmation(request, user, email, purpose):
    """Mail a confirmation link to ``email``: ``confirm`` (sign-up) or ``email`` (change)."""
    max_age = _max_age(request, 'confirm')
    drop_tokens(request.root, user, purpose)
    token = issue_token(request.root, user, purpose, max_age, email=email)
    base = public_url(request)
    link = '%s/confirm/%s' % (base, token)
    what = ('to finish creating the account "%s"' % user.login if purpose == 'confirm'
            else 'to make it the address of the account "%s"' % user.login)
    send_mail(request, email, 'Confirm your e-mail address for the Sage Notebook', (
        'Hello %s,\n\n'
        'please confirm this e-mail address %s on\n%s/\n\n'
        'Open this link within %s (it works once):\n\n%s\n\n'
        'If you did not ask for this, ignore this mail.\n'
        % (user.fullname or user.login, what, base, _minutes(max_age), link)))


def login_taken(root, login):
    """Logins are case-sensitive, but a new one may not differ from an existing one
    only in case (``Alice`` beside ``alice`` would fool people)."""
    wanted = login.lower()
    return any(existing.lower() == wanted for existing in root.home.keys())


def unconfirmed_login(request, user):
    """None if ``user`` may log in; else the message for the login page (the password
    was right).  A new link goes out, so a lost or expired mail is no dead end."""
    if not user.awaiting_confirmation or not asbool(server_settings.get(
            request, 'sagenb.signup.require_email_confirmation')):
        return None
    if mail_enabled(request) and user.email:
        send_confirmation(request, user, user.email, 'confirm')
    return ('Confirm your e-mail address first: we sent a new link to the address you '
            'signed up with. Follow it, then log in.')


def _no_referrer(request):
    # The token is in the URL: it must not leak through the Referer header.
    request.response.headers['Referrer-Policy'] = 'no-referrer'


def _users_for(root, who):
    """Local accounts matched by a login or an e-mail address (all of them are looked at,
    so the time taken does not depend on a match)."""
    found = []
    user = root.user_by_login(who)
    if user is not None:
        found.append(user)
    if '@' in who:
        wanted = who.lower()
        for candidate in root.users_by_id.values():
            if (candidate.email or '').lower() == wanted and candidate is not user:
                found.append(candidate)
    return [u for u in found if getattr(u, 'auth_source', 'local') == 'local'
            and not getattr(u, 'suspended', False)]


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
            for user in _users_for(context, who):
                if send_reset_link(request, user):
                    audit.record(request, 'password_reset_requested', user.login)
            sent = True
    return {'error': error, 'sent': sent, 'who': who,
            'max_age': _minutes(_max_age(request, 'reset'))}


@view_config(context=Root, name='reset', renderer='reset.jinja2',
             permission=NO_PERMISSION_REQUIRED)
def reset(context, request):
    """``/reset/<token>``: choose a new password."""
    _no_referrer(request)
    token = request.subpath[0] if len(request.subpath) == 1 else ''
    record = find_token(context, token, ('reset',))
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
            user.password_hash = hash_password(password)
            # Every session of the user ends; the link (and any other) is used up.
            end_sessions(user)
            drop_tokens(context, user, 'reset')
            if record.email and record.email == user.email:
                user.email_confirmed = True
            ratelimit.clear_account(context, user.login)
            audit.record(request, 'password_reset', user.login, actor=user.login)
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
    record = find_token(context, token, ('confirm', 'email'))
    if record is None:
        raise api_error(400, 'This link is wrong, was already used or has expired.')
    user = context.users_by_id[record.user_id]
    if request.method == 'POST':
        del account_tokens(context)[_digest(token)]
        if record.purpose == 'email':
            if user.pending_email != record.email:
                raise api_error(409, 'A newer change of address replaced this one.')
            old = user.email
            user.email = record.email
            user.pending_email = ''
            user.email_confirmed = True
            audit.record(request, 'email_changed', user.login, '%s -> %s' % (old, user.email),
                         actor=user.login)
            request.session.flash('Your e-mail address is now %s.' % user.email)
        else:
            if user.email != record.email:
                raise api_error(409, 'The address of this account changed since.')
            user.email_confirmed = True
            user.awaiting_confirmation = False
            audit.record(request, 'email_confirmed', user.login, user.email, actor=user.login)
            request.session.flash('Your e-mail address is confirmed.')
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
    if getattr(user, 'auth_source', 'local') != 'local':
        raise api_error(409, 'your address comes from your organisation\'s directory or '
                             'identity provider; change it there')
    new = request.POST.get('email', '').strip()
    error = check_email(new)
    if error is None and new.lower() == (user.email or '').lower():
        error = 'That is already your address.'
    if error is None and user.password_hash and \
            not verify_password(user, request.POST.get('current_password', '')):
        error = 'The current password is wrong.'
    if error is not None:
        request.response.status = 400
        return {'error': error, 'email': new}
    user.pending_email = new
    send_confirmation(request, user, new, 'email')
    if user.email:
        send_mail(request, user.email, 'Your Sage Notebook address is about to change', (
            'Hello %s,\n\nsomeone logged in as "%s" on %s/ asked to change the account\'s '
            'e-mail address to %s.\nNothing changes until the link sent there is '
            'followed. If this was not you, change your password.\n'
            % (user.fullname or user.login, user.login, public_url(request), new)))
    audit.record(request, 'email_change_requested', user.login, new)
    request.session.flash('We sent a link to %s: your address changes when you follow it.'
                          % new)
    return HTTPFound(request.application_url + '/account')
