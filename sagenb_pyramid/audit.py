"""The audit log: logins, failed logins and admin actions (who, when, what, from where).

Entries live in the database (``root.audit``, an ``IOBTree`` keyed by a growing
number), so every app server writes to the same log and an admin page can search it.
"""
import time

from BTrees.IOBTree import IOBTree
from BTrees.Length import Length
from persistent import Persistent


class AuditEntry(Persistent):
    def __init__(self, action, actor, target, detail, address):
        self.time = time.time()
        self.action = action      # e.g. 'login', 'login_failed', 'user_suspended'
        self.actor = actor        # login of who did it ('' for anonymous)
        self.target = target      # what it was done to (a login, a group name ...)
        self.detail = detail
        self.address = address    # the client's address


def audit_log(root):
    log = getattr(root, 'audit', None)
    if log is None:
        log = root.audit = IOBTree()
        root.audit_count = Length()
    return log


def record(request, action, target='', detail='', actor=None, root=None):
    """Add an entry; ``actor`` defaults to the request's user (if any)."""
    root = root if root is not None else request.root
    if actor is None:
        actor = request.user.login if getattr(request, 'user', None) is not None else ''
    log = audit_log(root)
    number = root.audit_count() + 1
    # Two app servers may pick the same number: the later commit conflicts and
    # pyramid_retry runs its request again, with the next number.
    log[number] = AuditEntry(action, actor, target, detail,
                             getattr(request, 'client_addr', '') or '')
    root.audit_count.change(1)
    return log[number]


def entries(root, newest_first=True):
    log = getattr(root, 'audit', None)
    if log is None:
        return []
    keys = reversed(log.keys()) if newest_first else log.keys()
    return (log[k] for k in keys)
