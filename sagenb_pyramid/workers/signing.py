"""Signed requests between app servers and worker hosts: both ends of the host's door.

A request to a host (``hosts.RemoteHost``) carries an HMAC-SHA256 over the operation, a
timestamp, a nonce and the body, with the shared secret (``workers_secret``).  The host
(``hostapi.HostApi``) checks it with a ``Verifier``: requests older than ``MAX_SKEW``
seconds, or with a nonce seen before, are refused, so a captured request cannot be
replayed.  The signature authenticates; it does not encrypt.
"""
import hmac
import secrets
import threading
import time
from hashlib import sha256

from ..settings import session_secret

MAX_SKEW = 60
KEPT_NONCES = 10000  # past this many, nonces older than twice the skew are forgotten


def workers_secret(settings):
    """The key signing app servers' requests to worker hosts."""
    secret = settings.get('sagenb.workers.secret')
    if secret:
        return secret.encode('utf-8')
    return hmac.new(session_secret(settings).encode('utf-8'), b'sagenb worker hosts',
                    sha256).digest()


def sign(secret, op, stamp, nonce, body):
    mac = hmac.new(secret, ('%s\n%s\n%s\n' % (op, stamp, nonce)).encode('utf-8', 'replace'),
                   sha256)
    mac.update(body)
    return mac.hexdigest()


def signed_headers(secret, op, body):
    """The headers of a request for ``op`` with ``body`` (bytes)."""
    stamp, nonce = '%.3f' % time.time(), secrets.token_hex(12)
    return {'Content-Type': 'application/json',
            'X-Sagenb-Time': stamp, 'X-Sagenb-Nonce': nonce,
            'X-Sagenb-Signature': sign(secret, op, stamp, nonce, body)}


class Verifier:
    """The host's end: checks signatures and remembers the nonces it has seen."""

    def __init__(self, secret):
        self.secret = secret
        self._nonces = {}
        self._lock = threading.Lock()

    def check(self, environ, op, body):
        """None when the WSGI request ``environ`` for ``op`` is signed, fresh and
        unseen; else why it is refused."""
        stamp = environ.get('HTTP_X_SAGENB_TIME', '')
        nonce = environ.get('HTTP_X_SAGENB_NONCE', '')
        signature = environ.get('HTTP_X_SAGENB_SIGNATURE', '')
        try:
            skew = abs(time.time() - float(stamp))
        except ValueError:
            return 'no timestamp'
        if not skew <= MAX_SKEW:  # also refuses nan and inf
            return 'timestamp off by %.0f s (clocks out of step?)' % skew
        if not nonce or len(nonce) > 64 or not signature:
            return 'unsigned'
        if not hmac.compare_digest(sign(self.secret, op, stamp, nonce, body), signature):
            return 'bad signature (is SAGENB_WORKERS_SECRET the same everywhere?)'
        now = time.time()
        with self._lock:
            if nonce in self._nonces:
                return 'replayed request'
            self._nonces[nonce] = now
            if len(self._nonces) > KEPT_NONCES:
                self._nonces = {n: t for n, t in self._nonces.items()
                                if now - t < 2 * MAX_SKEW}
        return None
