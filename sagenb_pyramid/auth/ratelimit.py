"""Failed logins slow down further attempts: per login name and per client address.

The state lives in the database (``root.login_attempts``, an ``OOBTree`` of
``account:<login>`` and ``address:<ip>`` to ``Attempts``), so every app server sees the
same counts.  A login name counts whether or not an account has it, and a locked name
gets the same answer either way: nothing here tells whether an account exists.

After ``sagenb.login.free_attempts`` failures for a name (``free_attempts_per_address``
for an address), each further failure locks it for ``base_delay`` seconds, doubling up
to ``max_delay``.  A success clears the name's count (not the address's: one's own
account must not reset the count of guesses at others); counts are forgotten
``forget_after`` seconds after the last failure.
"""
import random
import time

from persistent import Persistent


class Attempts(Persistent):
    """Failures of one login name or one address."""

    def __init__(self):
        self.failures = 0
        self.last_failure = 0.0
        self.locked_until = 0.0

    def _p_resolveConflict(self, old, committed, new):
        # Two app servers counted a failure at once: keep both.
        resolved = dict(new)
        base = old.get('failures', 0)
        resolved['failures'] = committed['failures'] + new['failures'] - base
        for key in ('last_failure', 'locked_until'):
            resolved[key] = max(committed.get(key, 0.0), new.get(key, 0.0))
        return resolved


def attempts_tree(root):
    return root.login_attempts


def _keys(login, address):
    keys = [('account:' + (login or '')[:200], 'sagenb.login.free_attempts')]
    if address:
        keys.append(('address:' + address, 'sagenb.login.free_attempts_per_address'))
    return keys


def _setting(settings, key):
    return settings[key]


def locked_for(request, login, now=None):
    """Seconds to wait before ``login`` may be tried from this client (0: go ahead)."""
    now = time.time() if now is None else now
    tree = request.root.login_attempts
    forget_after = _setting(request.registry.settings, 'sagenb.login.forget_after')
    wait = 0.0
    for key, _ in _keys(login, request.client_addr):
        record = tree.get(key)
        if record is None or now - record.last_failure > forget_after:
            continue
        wait = max(wait, record.locked_until - now)
    return int(wait + 0.999) if wait > 0 else 0


def record_failure(request, login, now=None):
    """Count a failed attempt; returns the seconds the name or address is now locked."""
    now = time.time() if now is None else now
    settings = request.registry.settings
    tree = attempts_tree(request.root)
    forget_after = _setting(settings, 'sagenb.login.forget_after')
    base = _setting(settings, 'sagenb.login.base_delay')
    cap = _setting(settings, 'sagenb.login.max_delay')
    for key, free_setting in _keys(login, request.client_addr):
        record = tree.get(key)
        if record is None:
            record = tree[key] = Attempts()
        elif now - record.last_failure > forget_after:
            record.failures = 0
            record.locked_until = 0.0
        record.failures += 1
        record.last_failure = now
        beyond = record.failures - int(_setting(settings, free_setting))
        if beyond > 0:
            record.locked_until = now + min(cap, base * 2 ** min(beyond - 1, 30))
    # Now and then, drop what is forgotten anyway, so garbage names do not pile up.
    if random.random() < 0.01:
        prune(tree, now, forget_after)
    return locked_for(request, login, now)


def record_success(request, login):
    """A correct password: the name's count starts again."""
    tree = getattr(request.root, 'login_attempts', None)
    if tree is not None:
        key = _keys(login, None)[0][0]
        if key in tree:
            del tree[key]


def clear_account(root, login):
    """Forget the failures of a name (its password was just reset by mail)."""
    tree = root.login_attempts
    if tree is not None and 'account:' + login in tree:
        del tree['account:' + login]


def prune(tree, now, forget_after):
    for key in [k for k, r in tree.items() if now - r.last_failure > forget_after]:
        del tree[key]
