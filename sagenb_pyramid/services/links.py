"""Links sent by mail: password reset, confirmation of the address given at sign-up,
change of e-mail address (confirmed at the new address), invitations by an admin.

Each link holds a random token; only its SHA-256 is stored (``root.account_tokens``)
with the user, the purpose and an expiry.  A link works once: it is deleted when used.
The pages that open a link (``views/account.py``) show a button (a POST with the CSRF
token): mail scanners that fetch links do not use them up or change anything.

Every link in a mail starts with ``sagenb.public_url`` (``auth/mail.public_url``), never
with the request's ``Host``, which whoever sends the request chooses.  Mails go out
after the request commits (``auth/mail.py``), so neither the page nor its timing tells
who has an account.
"""
import hashlib
import secrets
import time


from .. import audit, server_settings
from ..auth import ratelimit
from ..auth.mail import mail_enabled, public_url, send_mail
from ..auth.passwords import hash_password
from ..resources import AccountToken
from ..security import end_sessions
from ..web import api_error

# A second reset mail for the same account waits this long (no mail bombing).
RESET_RESEND_AFTER = 60
PURPOSES = ('reset', 'confirm', 'email')
# How long a reset link that an admin passes on by hand, or an invitation, stays valid
# (a reset link the user asked for lasts ``sagenb.account.reset_link_max_age``).
ADMIN_LINK_SECONDS = 7 * 24 * 3600


def account_tokens(root):
    return root.account_tokens


def digest(token):
    return hashlib.sha256(token.encode('utf-8', 'replace')).hexdigest()


def issue_token(root, user, purpose, max_age, email=''):
    """A new single-use token for ``user``; returns the token (shown only in the mail)."""
    if purpose not in PURPOSES:
        raise ValueError(purpose)
    tree = account_tokens(root)
    now = time.time()
    for key in [d for d, t in tree.items() if t.expires < now]:
        del tree[key]
    token = secrets.token_urlsafe(32)
    tree[digest(token)] = AccountToken(user.id, purpose, now + max_age, email)
    return token


def find_token(root, token, purposes):
    """The live ``AccountToken`` for ``token`` of one of ``purposes``, or None."""
    if not token or len(token) > 200:
        return None
    record = root.account_tokens.get(digest(token))
    if record is None or record.purpose not in purposes or record.expires < time.time():
        return None
    if root.users_by_id.get(record.user_id) is None:
        return None
    return record


def drop_tokens(root, user, purpose):
    tree = account_tokens(root)
    for key in [d for d, t in tree.items()
                if t.user_id == user.id and t.purpose == purpose]:
        del tree[key]


LINK_MAX_AGE = {'reset': 'sagenb.account.reset_link_max_age',
                'confirm': 'sagenb.account.confirm_link_max_age'}


def link_max_age(request, which):
    """Seconds a ``reset`` or ``confirm`` link the user asked for stays valid."""
    return request.registry.settings[LINK_MAX_AGE[which]]


def minutes(seconds):
    """A link's lifetime as a mail or page says it."""
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
    max_age = link_max_age(request, 'reset')
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
        % (user.fullname or user.login, user.login, base, minutes(max_age), link)))
    return True


def send_confirmation(request, user, email, purpose):
    """Mail a confirmation link to ``email``: ``confirm`` (sign-up) or ``email`` (change)."""
    max_age = link_max_age(request, 'confirm')
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
        % (user.fullname or user.login, what, base, minutes(max_age), link)))


def unconfirmed_login(request, user):
    """None if ``user`` may log in; else the message for the login page (the password
    was right).  A new link goes out, so a lost or expired mail is no dead end."""
    if not user.awaiting_confirmation or not server_settings.get(
            request, 'sagenb.signup.require_email_confirmation'):
        return None
    if mail_enabled(request) and user.email:
        send_confirmation(request, user, user.email, 'confirm')
    return ('Confirm your e-mail address first: we sent a new link to the address you '
            'signed up with. Follow it, then log in.')


def users_for(root, who):
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
    return [u for u in found if u.auth_source == 'local' and not u.suspended]


def request_reset(request, root, who):
    """Mail a reset link to every account ``who`` (a login or an address) names; the
    caller answers the same whether or not there was one."""
    for user in users_for(root, who):
        if send_reset_link(request, user):
            audit.record(request, 'password_reset_requested', user.login)


def set_password(request, root, user, record, password):
    """Use the reset link ``record``: ``password`` becomes ``user``'s, every session of
    theirs ends, and the link (and any other reset link) is used up."""
    user.password_hash = hash_password(password)
    end_sessions(user)
    drop_tokens(root, user, 'reset')
    if record.email and record.email == user.email:
        user.email_confirmed = True
    ratelimit.clear_account(root, user.login)
    audit.record(request, 'password_reset', user.login, actor=user.login)


def confirm_address(request, root, token, record):
    """Use the confirmation link ``token`` (its ``record``): the sign-up address is
    confirmed, or the pending new address becomes the account's.  Returns the message
    for the user; 409 when the account changed since the link was sent."""
    user = root.users_by_id[record.user_id]
    del account_tokens(root)[digest(token)]
    if record.purpose == 'email':
        if user.pending_email != record.email:
            raise api_error(409, 'A newer change of address replaced this one.')
        old = user.email
        user.email = record.email
        user.pending_email = ''
        user.email_confirmed = True
        audit.record(request, 'email_changed', user.login, '%s -> %s' % (old, user.email),
                     actor=user.login)
        return 'Your e-mail address is now %s.' % user.email
    if user.email != record.email:
        raise api_error(409, 'The address of this account changed since.')
    user.email_confirmed = True
    user.awaiting_confirmation = False
    audit.record(request, 'email_confirmed', user.login, user.email, actor=user.login)
    return 'Your e-mail address is confirmed.'


def start_email_change(request, user, new):
    """A link goes to the new address ``new``; the old address is told, and stays the
    account's until the link is followed."""
    user.pending_email = new
    send_confirmation(request, user, new, 'email')
    if user.email:
        send_mail(request, user.email, 'Your Sage Notebook address is about to change', (
            'Hello %s,\n\nsomeone logged in as "%s" on %s/ asked to change the account\'s '
            'e-mail address to %s.\nNothing changes until the link sent there is '
            'followed. If this was not you, change your password.\n'
            % (user.fullname or user.login, user.login, public_url(request), new)))
    audit.record(request, 'email_change_requested', user.login, new)


def send_invitation(request, user):
    """Mail a new account made by an admin a link to choose its password."""
    token = issue_token(request.root, user, 'reset', ADMIN_LINK_SECONDS, email=user.email)
    send_mail(request, user.email, 'Your account on the Sage Notebook', (
        'Hello %s,\n\n'
        'an administrator made you an account on the Sage Notebook at\n%s/\n\n'
        'Your username is: %s\n\n'
        'Choose your password by opening this link within %d days (it works once):\n\n'
        '%s/reset/%s\n'
        % (user.fullname or user.login, public_url(request), user.login,
           ADMIN_LINK_SECONDS // 86400, public_url(request), token)))


def admin_reset_link(request, root, user):
    """A reset link for an admin to pass on by hand (valid ``ADMIN_LINK_SECONDS``)."""
    token = issue_token(root, user, 'reset', ADMIN_LINK_SECONDS)
    return '%s/reset/%s' % (public_url(request), token)
