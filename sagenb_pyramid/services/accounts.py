"""Checks of what a new or changed account brings: its e-mail address, its login."""
import re

from ..auth.passwords import verify_password
from ..web import api_error

EMAIL_RE = re.compile(r'[^@\s<>,;"]+@[^@\s<>,;"]+\.[^@\s<>,;"]+')


def check_email(address):
    # fullmatch: ``$`` of ``match`` also matched before a final newline ("a@b.c\n").
    if len(address) > 254 or not EMAIL_RE.fullmatch(address):
        return 'That is not an e-mail address.'
    return None


def login_taken(root, login):
    """Logins are case-sensitive, but a new one may not differ from an existing one
    only in case (``Alice`` beside ``alice`` would fool people)."""
    wanted = login.lower()
    return any(existing.lower() == wanted for existing in root.home.keys())


def email_change_problem(user, new, current_password):
    """What is wrong with changing ``user``'s address to ``new`` (a message), or None.
    409 for an account whose address comes from a directory or identity provider."""
    if user.auth_source != 'local':
        raise api_error(409, 'your address comes from your organisation\'s directory or '
                             'identity provider; change it there')
    error = check_email(new)
    if error is None and new.lower() == (user.email or '').lower():
        error = 'That is already your address.'
    if error is None and user.password_hash and \
            not verify_password(user, current_password):
        error = 'The current password is wrong.'
    return error
