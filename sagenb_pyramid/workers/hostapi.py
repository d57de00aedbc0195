"""A worker host's door for app servers of other processes: signed JSON over HTTP.

Each operation of the ``WorkerRegistry`` is ``POST /<operation>`` with a JSON body,
signed by the client (``hosts.RemoteHost``) with the shared secret over the operation,
a timestamp, a nonce and the body.  Requests older than ``MAX_SKEW`` seconds or with a
nonce seen before are refused, so a captured request cannot be replayed.  The host
trusts app servers (they check permissions); nothing else should reach this port:
bind it to loopback or a private network.
"""
import hmac
import json
import logging
import threading
import time

from .. import watchdog
from .hosts import sign
from .registry import Job, WorkerBusy, WorkerProblem

log = logging.getLogger(__name__)

MAX_SKEW = 60
MAX_BODY = 16 * 1024 ** 2


class HostApi:
    """The WSGI application of a worker host."""

    def __init__(self, registry, secret):
        self.registry = registry
        self.secret = secret
        self._nonces = {}
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        status, answer = self.handle(environ)
        body = json.dumps(answer).encode('utf-8')
        start_response(status, [('Content-Type', 'application/json'),
                                ('Content-Length', str(len(body)))])
        return [body]

    def handle(self, environ):
        if environ['REQUEST_METHOD'] != 'POST':
            return '405 Method Not Allowed', {'error': 'POST only'}
        op = environ.get('PATH_INFO', '').strip('/')
        handler = getattr(self, 'op_' + op, None)
        try:
            length = int(environ.get('CONTENT_LENGTH') or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            return '400 Bad Request', {'error': 'bad body length'}
        body = environ['wsgi.input'].read(length)
        problem = self.check(environ, op, body)
        if problem:
            log.warning('refused a request to the worker host: %s', problem)
            return '403 Forbidden', {'error': problem}
        if handler is None:
            return '404 Not Found', {'error': 'no operation %r' % op}
        try:
            payload = json.loads(body)
            if not isinstance(payload, dict):
                raise ValueError('not an object')
        except ValueError as exc:
            return '400 Bad Request', {'error': 'bad JSON: %s' % exc}
        try:
            return '200 OK', handler(payload)
        except WorkerBusy as exc:
            return '409 Conflict', {'error': str(exc)}
        except WorkerProblem as exc:
            return '502 Bad Gateway', {'error': str(exc)}
        except (KeyError, TypeError, ValueError) as exc:
            return '400 Bad Request', {'error': 'bad request: %r' % exc}
        except Exception:
            log.exception('worker host operation %s failed', op)
            return '500 Internal Server Error', {'error': 'the worker host failed'}

    def check(self, environ, op, body):
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
            if len(self._nonces) > 10000:
                self._nonces = {n: t for n, t in self._nonces.items()
                                if now - t < 2 * MAX_SKEW}
        return None

    # -- operations -------------------------------------------------------------------
    @staticmethod
    def _key(payload):
        owner, number = payload['key']
        return (str(owner), int(number))

    def op_submit(self, payload):
        fields = dict(payload['job'])
        fields['data_files'] = tuple(tuple(entry) for entry in fields.get('data_files', ()))
        self.registry.submit(Job(**fields))
        return {}

    def op_ask(self, payload):
        reply = self.registry.ask(self._key(payload), str(payload['kind']),
                                  dict(payload['content']), float(payload['timeout']))
        return {'reply': reply}

    def op_comm(self, payload):
        return {'problem': self.registry.send_comm(
            self._key(payload), int(payload['cell_id']), payload['run_id'],
            str(payload['comm_id']), dict(payload['data']))}

    def op_input(self, payload):
        return {'ok': self.registry.send_input(self._key(payload), int(payload['cell_id']),
                                               str(payload['value']))}

    def op_interrupt(self, payload):
        return {'interrupted': self.registry.interrupt(self._key(payload))}

    def op_restart(self, payload):
        return {'cancelled': self.registry.restart(self._key(payload))}

    def op_discard(self, payload):
        self.registry.discard(self._key(payload))
        return {}

    def op_touch(self, payload):
        self.registry.touch(self._key(payload))
        return {}

    def op_make_room(self, payload):
        return {'freed': self.registry.make_room()}

    def op_ping(self, payload):
        return {'name': self.registry.server_name, 'boot': self.registry.boot_id}

    def op_state(self, payload):
        key = self._key(payload)
        return {'has_process': self.registry.has_process(key),
                'is_running': self.registry.is_running(key)}


def serve(registry, secret, listen, advertise=None, threads=16):
    """Serve ``registry`` on ``listen`` (``HOST:PORT``, port 0: any free one) in a
    thread; the host publishes ``advertise`` (default: the address bound) to app
    servers.  Returns the waitress server (``stop`` stops it)."""
    from waitress.server import create_server
    host, _, port = listen.rpartition(':')
    server = create_server(HostApi(registry, secret), host=host.strip('[]') or '127.0.0.1',
                           port=int(port), threads=threads, ident='sagenb-worker',
                           clear_untrusted_proxy_headers=True, asyncore_use_poll=True)
    bound = '%s:%s' % (server.effective_host, server.effective_port)
    if not advertise and server.effective_host in ('0.0.0.0', '::'):
        raise ValueError('sagenb.workers.listen = %s needs sagenb.workers.advertise (the '
                         'address app servers use to reach this host)' % listen)
    registry.address = advertise or bound
    server.loop_thread = threading.Thread(target=server.run, name='worker-host-api',
                                         daemon=True)
    watchdog.essential(server.loop_thread, "the worker host's door")
    server.loop_thread.start()
    return server


def stop(server, timeout=5):
    """Stop a server made by ``serve``: its loop ends, then its request threads,
    those still answering within ``timeout`` seconds (``server.close``)."""
    from ..server import close
    watchdog.release(server.loop_thread)
    close(server, server.loop_thread, timeout)


def listen_address(settings):
    """Where the host listens for app servers: ``sagenb.workers.listen``; ``auto`` is
    loopback on a free port when the database is shared (ZEO), else nowhere."""
    listen = settings['sagenb.workers.listen'].strip()
    if listen == 'auto':
        shared = settings.get('zodbconn.uri', '').startswith('zeo://')
        return '127.0.0.1:0' if shared else None
    return listen or None


def start_host(registry, settings):
    """Open the host's door (if it has one) and start it; returns the door's server."""
    from .hosts import workers_secret
    server = None
    listen = listen_address(settings)
    if listen:
        secret = workers_secret(settings)
        check_name_free(registry, secret)
        server = serve(registry, secret, listen,
                       settings.get('sagenb.workers.advertise', '').strip() or None)
    registry.start()
    return server


def check_name_free(registry, secret):
    """Refuse to start while another host of the same name answers at its door (two
    hosts of one name would overwrite each other's record).  A record whose door does
    not answer is of an earlier run of this host that died: this one takes over."""
    from ..resources import in_transaction
    from ..settings import SettingsError
    from .hosts import RemoteHost

    def address_of(root):
        record = (root.worker_hosts or {}).get(registry.server_name)
        return record.address if record is not None else None
    address = in_transaction(registry.db, address_of)
    if not address:
        return
    try:
        answer = RemoteHost(registry.server_name, address, secret, timeout=5).call('ping', {})
    except WorkerProblem:
        return
    raise SettingsError(
        'a worker host named %r is running at %s (boot %s): give this one another '
        'sagenb.workers.server_name' % (registry.server_name, address, answer.get('boot')))
