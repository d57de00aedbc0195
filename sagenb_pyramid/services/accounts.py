"""Checks of what a new or changed account brings: its e-mail address, its login."""
import re

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
