"""Logging in with a password (local or directory accounts), signing up, and changing
one's password: the checks, the rate limit's bookkeeping and the audit entries.

``Refused`` carries what the page says and its status; the views (``views/auth.py``)
set the session cookie and redirect.  A failed login answers the same whether or not
the account exists (same message, same work: ``burn_time``).
"""
from .. import audit
from ..auth import ratelimit
from ..auth.ldap import LoginRefused, ldap_applies, ldap_login
from ..auth.passwords import (
    burn_time, check_login_name, hash_password, new_password_problems, verify_password)
from ..metrics import count_login_failure
from ..security import end_sessions
from .accounts import check_email, login_taken
from .links import send_confirmation, unconfirmed_login

WRONG = 'Wrong username or password.'


class Refused(Exception):
    """A login or sign-up that did not happen: ``message`` for the page, ``status`` for
    the answer, ``retry_after`` (seconds) when it may be tried again later."""

    def __init__(self, message, status, retry_after=None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after


def password_login(request, root, login_name, password):
    """The user ``login_name`` and ``password`` log in as, or ``Refused``: 429 while the
    name or the address is locked out, 400 for a wrong name or password (counted
    towards the lock), 403 for a right password of an account that may not log in
    (suspended, address not confirmed), or a directory's refusal."""
    user = root.user_by_login(login_name)
    wait = ratelimit.locked_for(request, login_name)
    if wait:
        # Counted for any name typed, account or not: this tells nothing either.
        raise Refused('Too many failed attempts for this username or from your address. '
                      'Wait %d seconds, then try again.' % wait, 429, retry_after=wait)
    if ldap_applies(request.registry.settings, user):
        # Directory accounts (auth/ldap.py); a local account never logs in this way.
        try:
            user = ldap_login(request, root, login_name, password)
        except LoginRefused as refused:
            _refuse(request, login_name, refused.message, refused.status)
        ratelimit.record_success(request, login_name)
        return user
    if user is None:
        burn_time(password)
    elif verify_password(user, password):
        ratelimit.record_success(request, login_name)
        # Signed up where the address must be confirmed first (views/account.py).
        error = unconfirmed_login(request, user)
        if error is None and user.suspended:
            # Only after the right password: the answer tells nothing to others.
            error = 'This account is suspended; ask an administrator.'
            audit.record(request, 'login_failed', user.login, 'suspended', actor='')
        if error is not None:
            count_login_failure(request)
            raise Refused(error, 403)
        audit.record_after_commit(request, 'login', user.login, actor=user.login)
        return user
    # One message whatever was wrong: the page does not tell who has an account.
    audit.record_after_commit(request, 'login_failed', login_name[:100])
    _refuse(request, login_name, WRONG, 400)


def _refuse(request, login_name, message, status):
    count_login_failure(request)
    if status == 400:  # a wrong name or password, not a refusal of a known account
        ratelimit.record_failure(request, login_name)
    raise Refused(message, status)


def signup_problems(login_name, password, password2, email, need_email):
    """What is wrong with a sign-up form's values (a list of messages)."""
    errors = [e for e in [check_login_name(login_name)] if e]
    errors += new_password_problems(password, password2, login_name)
    if email or need_email:
        errors.extend(e for e in [check_email(email)] if e)
    return errors


def sign_up(request, root, login_name, password, email, confirm, mail):
    """A new local account (its values checked by ``signup_problems``).  ``confirm``:
    it may log in only once the link mailed to ``email`` is followed; else, with
    ``mail`` (the server sends mail), a link to confirm the address goes out anyway.
    ``Refused`` (400) when the name is taken."""
    if login_taken(root, login_name):
        raise Refused('That username is taken; choose another.', 400)
    user = root.add_user(login_name, hash_password(password), email=email)
    audit.record(request, 'signup', user.login, email, actor=user.login)
    if confirm:
        user.awaiting_confirmation = True
    if confirm or (email and mail):
        send_confirmation(request, user, email, 'confirm')
    return user


def change_password(user, current, new, new2):
    """Set ``user``'s password to ``new``; returns what is wrong instead (a list of
    messages, empty when done).  Every session of the user ends: the caller gives its
    own a new one."""
    if user.auth_source == 'ldap':
        return ['Your password is managed by the directory (LDAP); change it there.']
    if user.password_hash and not verify_password(user, current):
        # Accounts made by an OAuth login have no password yet: they may set one.
        return ['The current password is wrong.']
    errors = new_password_problems(new, new2, user.login, 'The two new passwords differ.')
    if not errors:
        user.password_hash = hash_password(new)
        end_sessions(user)
    return errors
