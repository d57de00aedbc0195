"""How long a request may wait (``wait_seconds``), and how many requests of one user
may wait at once (the ``wait`` long-polls of ``views/cells.py`` and a worksheet's
``?since=``), so that one user's scripts cannot hold every thread of the server.

Counted per app server (waiting holds this process's threads), per user; a request over
``sagenb.api.max_waits_per_user`` is refused at once with 429 before it changes
anything.  The count is taken and given back under a lock, and given back however the
waiting ends (answer, error, retry).
"""
import contextlib
import threading

from .web import api_error

_REGISTRY_LOCK = threading.Lock()


class WaitCounter:
    def __init__(self, limit):
        self.limit = limit
        self.waiting = {}
        self.lock = threading.Lock()

    def acquire(self, key):
        with self.lock:
            count = self.waiting.get(key, 0)
            if count >= self.limit:
                return False
            self.waiting[key] = count + 1
            return True

    def release(self, key):
        with self.lock:
            count = self.waiting.get(key, 0) - 1
            if count > 0:
                self.waiting[key] = count
            else:
                self.waiting.pop(key, None)


def counter(registry):
    found = getattr(registry, 'sagenb_waits', None)
    if found is None:
        with _REGISTRY_LOCK:
            found = getattr(registry, 'sagenb_waits', None)
            if found is None:
                limit = registry.settings['sagenb.api.max_waits_per_user']
                found = registry.sagenb_waits = WaitCounter(max(1, limit))
    return found


def hold_limit(request):
    """How long a request may wait: the API's cap for scripts, a few seconds for pages."""
    settings = request.registry.settings
    if request.environ.get('sagenb.via_token'):
        return settings['sagenb.api.max_wait']
    return settings['sagenb.poll_hold']


def wait_seconds(request, value):
    """The seconds a request's ``wait`` asks for (0 when missing), capped by
    ``hold_limit``; 400 for what is not a number of seconds."""
    if value is None or value == '':
        return 0.0
    try:
        wait = float(value)
    except (TypeError, ValueError):
        raise api_error(400, '"wait" must be a number of seconds') from None
    if isinstance(value, bool) or wait < 0 or wait != wait:
        raise api_error(400, '"wait" must be a number of seconds, 0 or more')
    return min(wait, hold_limit(request))


@contextlib.contextmanager
def wait_slot(request):
    """Hold one of the user's waiting slots for the ``with`` block, or raise 429."""
    waits = counter(request.registry)
    key = request.authenticated_userid or 'addr:%s' % request.client_addr
    if not waits.acquire(key):
        exc = api_error(429, 'you have %d requests waiting already (the most one user may '
                             'have, sagenb.api.max_waits_per_user); wait for one to '
                             'answer, or ask without "wait"' % waits.limit)
        exc.headers['Retry-After'] = '1'
        raise exc
    polls = request.registry.metrics.long_polls
    polls.inc()
    try:
        yield
    finally:
        polls.dec()
        waits.release(key)
