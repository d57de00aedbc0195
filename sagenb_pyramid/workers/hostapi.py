"""A worker host's door for app servers of other processes: signed JSON over HTTP.

Each operation of ``contract.HostOperations`` is ``POST /<operation>`` with its
arguments by name in a JSON object, decoded by their annotations in the contract, and
answered ``{"result": ...}``; ``ping`` is the door's own.  Requests are signed by the
client (``hosts.RemoteHost``) and checked here (signing.py): a captured request cannot
be replayed.  The host trusts app servers (they check permissions); nothing else should
reach this port: bind it to loopback or a private network.

Whoever opens the door owns it: ``start_host`` returns a ``Door`` that its caller (the
app's ``start_workers``, scripts/worker.py) stops before the registry.
"""
import json
import logging
import threading

from .. import watchdog
from ..logs import REQUEST_ID, accepted_id
from ..resources import in_transaction
from ..server import close
from ..settings import SettingsError
from .contract import HostOperations, Job, Key, WorkerBusy, WorkerProblem, operations
from .hosts import RemoteHost
from .signing import MAX_SKEW, Verifier, workers_secret  # noqa: F401 (MAX_SKEW: kept name)

log = logging.getLogger(__name__)

MAX_BODY = 16 * 1024 ** 2


def _key(value):
    owner, number = value
    return (str(owner), int(number))


# How the door decodes an argument of each annotation of the contract.
DECODERS = {Key: _key, Job: Job.from_dict, str: str, int: int, float: float, dict: dict}
# The door's own operations (not a host's): who answers here.
DOOR_OPERATIONS = ('ping',)


def decoders(protocol=HostOperations):
    """``{operation: {argument: decoder}}`` of every operation of ``protocol``; a
    TypeError names an annotation the door cannot decode (a new operation's)."""
    found = {}
    for name, signature in operations(protocol).items():
        arguments = {}
        for parameter in list(signature.parameters.values())[1:]:
            decoder = DECODERS.get(parameter.annotation)
            if decoder is None:
                raise TypeError('the host door cannot decode %s of %s (%r): add it to '
                                'DECODERS' % (parameter.name, name, parameter.annotation))
            arguments[parameter.name] = decoder
        found[name] = arguments
    return found


class HostApi:
    """The WSGI application of a worker host."""

    operations = decoders()

    def __init__(self, registry, secret):
        self.registry = registry
        self.verifier = Verifier(secret)

    def __call__(self, environ, start_response):
        # The app server's request id (logs.py): this host's log lines name it too.
        token = REQUEST_ID.set(accepted_id(environ.get('HTTP_X_REQUEST_ID')))
        try:
            status, answer = self.handle(environ)
        finally:
            REQUEST_ID.reset(token)
        body = json.dumps(answer).encode('utf-8')
        start_response(status, [('Content-Type', 'application/json'),
                                ('Content-Length', str(len(body)))])
        return [body]

    def handle(self, environ):
        if environ['REQUEST_METHOD'] != 'POST':
            return '405 Method Not Allowed', {'error': 'POST only'}
        op = environ.get('PATH_INFO', '').strip('/')
        if op in self.operations:
            handler = self.operation(op)
        else:
            handler = getattr(self, 'op_' + op, None) if op in DOOR_OPERATIONS else None
        try:
            length = int(environ.get('CONTENT_LENGTH') or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            return '400 Bad Request', {'error': 'bad body length'}
        body = environ['wsgi.input'].read(length)
        problem = self.verifier.check(environ, op, body)
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

    def operation(self, op):
        """The handler of the host operation ``op``: its arguments decoded, the
        registry's method called, its value answered."""
        arguments = self.operations[op]
        method = getattr(self.registry, op)

        def handler(payload):
            unknown = set(payload) - set(arguments)
            if unknown:
                raise TypeError('unknown arguments %s' % sorted(unknown))
            return {'result': method(**{name: decode(payload[name])
                                        for name, decode in arguments.items()})}
        return handler

    def op_ping(self, payload):
        return {'name': self.registry.server_name, 'boot': self.registry.boot_id}


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
    watchdog.release(server.loop_thread)
    close(server, server.loop_thread, timeout)


# zodburi schemes of databases only this process opens.
PRIVATE_SCHEMES = ('file', 'memory', 'demo')


def shared_database(uri):
    """Other processes may open the database of ``uri`` at the same time (ZEO,
    RelStorage's postgres://, ...), so app servers may reach this host."""
    return uri.split('://', 1)[0].lower() not in PRIVATE_SCHEMES


def listen_address(settings):
    """Where the host listens for app servers: ``sagenb.workers.listen``; ``auto`` is
    loopback on a free port when the database is shared (ZEO, PostgreSQL), else
    nowhere."""
    listen = settings['sagenb.workers.listen'].strip()
    if listen == 'auto':
        return '127.0.0.1:0' if shared_database(settings.get('zodbconn.uri', '')) else None
    return listen or None


class Door:
    """An open door of a host; its opener stops it (before the registry behind it)."""

    def __init__(self, server):
        self.server = server

    def stop(self, timeout=5):
        stop(self.server, timeout)


def start_host(registry, settings):
    """Open the host's door (if it has one) and start the host; returns the ``Door``
    (None: no door), which the caller stops when the host stops."""
    door = None
    listen = listen_address(settings)
    if listen:
        secret = workers_secret(settings)
        check_name_free(registry, secret)
        door = Door(serve(registry, secret, listen,
                          settings.get('sagenb.workers.advertise', '').strip() or None))
    registry.start()
    return door


def check_name_free(registry, secret):
    """Refuse to start while another host of the same name answers at its door (two
    hosts of one name would overwrite each other's record).  A record whose door does
    not answer is of an earlier run of this host that died: this one takes over."""
    def address_of(root):
        record = root.worker_hosts.get(registry.server_name)
        return record.address if record is not None else None
    address = in_transaction(registry.db, address_of)
    if not address:
        return
    try:
        answer = RemoteHost(registry.server_name, address, secret, timeout=5).ping()
    except WorkerProblem:
        return
    raise SettingsError(
        'a worker host named %r is running at %s (boot %s): give this one another '
        'sagenb.workers.server_name' % (registry.server_name, address, answer.get('boot')))
