"""The audit log: logins, failed logins and admin actions (who, when, what, from where).

Entries live in the database, so every app server writes to the same log and an admin
page can search it: ``root.audit_entries``, an ``LOBTree`` keyed by the time in
microseconds with three random digits.  Requests at the same moment (a class logging
in) add different keys, which ZODB merges; the numbered ``root.audit`` of earlier
versions gave them the same number, so all but one failed with a ConflictError and ran
again, a login's password check included, until some answered 500.  The evolve step
``audit-numbered-log`` moved the entries of that older log here.
"""
import logging
import secrets
import time

from persistent import Persistent

from .aftercommit import after_commit
from .resources import in_transaction

logger = logging.getLogger(__name__)


class AuditEntry(Persistent):
    def __init__(self, action, actor, target, detail, address):
        self.time = time.time()
        self.action = action      # e.g. 'login', 'login_failed', 'user_suspended'
        self.actor = actor        # login of who did it ('' for anonymous)
        self.target = target      # what it was done to (a login, a group name ...)
        self.detail = detail
        self.address = address    # the client's address


def audit_log(root):
    return root.audit_entries


def new_key(log):
    key = time.time_ns() // 1000 * 1000 + secrets.randbelow(1000)
    while key in log:
        key += 1
    return key


def add(root, action, actor, target, detail, address):
    log = audit_log(root)
    entry = log[new_key(log)] = AuditEntry(action, actor, target, detail, address)
    return entry


def record(request, action, target='', detail='', actor=None, root=None):
    """Add an entry; ``actor`` defaults to the request's user (if any)."""
    root = root if root is not None else request.root
    if actor is None:
        actor = request.user.login if getattr(request, 'user', None) is not None else ''
    return add(root, action, actor, target, detail,
               getattr(request, 'client_addr', '') or '')


def record_after_commit(request, action, target='', detail='', actor=''):
    """Add an entry once the request's transaction has committed, in a transaction of
    its own.  For logins: when a class logs in at once their entries may still
    conflict (a bucket splits), and the entry alone is written again, not the whole
    login with its password check."""
    from . import database
    db = database(request.registry)
    address = getattr(request, 'client_addr', '') or ''

    def after():
        try:
            in_transaction(db, lambda root: add(root, action, actor, target, detail,
                                                 address), attempts=10)
        except Exception:
            logger.exception('could not write the audit entry %s %s', action, target)
    after_commit(request, after)


def entries(root, newest_first=True):
    log = root.audit_entries
    keys = reversed(log.keys()) if newest_first else log.keys()
    return (log[k] for k in keys)
