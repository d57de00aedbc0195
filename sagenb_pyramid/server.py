"""The ``[server:main]`` runner: waitress, with the port overridable on the command line.

``pserve development.ini http_port=6601`` passes ``http_port`` in the global
configuration; PasteDeploy does not let such a variable override a value written in
the file, so the runner reads it itself.  It also pins the server to its CPUs
(``sagenb.server_cpus``, see cpus.py).

waitress's loop runs in a thread of its own, with ``poll()`` (``select()`` fails for
descriptors past 1023, which a server with a class's Sage processes reaches); the main
thread watches it and the other essential threads (watchdog.py) and ends the process
with a non-zero status when one of them has stopped.
"""
import gc
import logging
import threading

import waitress.server
from waitress import trigger as waitress_trigger
from waitress import wasyncore

from . import watchdog
from .cpus import pin_server

log = logging.getLogger(__name__)


def serve(app, global_conf, **settings):
    port = global_conf.get('http_port') or settings.pop('port', '6543')
    host = settings.pop('host', '127.0.0.1')
    settings.pop('port', None)
    settings.setdefault('listen', '%s:%s' % (host, port))
    settings.setdefault('asyncore_use_poll', 'true')
    # Checked when the application was made (settings.prepare).
    pin_server(app.registry.settings['sagenb.server_cpus'], port)
    freeze_loaded_objects()
    logging.basicConfig()  # as waitress.serve: idempotent if logging is set up
    server = waitress.server.create_server(app, **settings)
    server.print_listen('Serving on http://{}:{}')
    run(server)


def run(server, stop=None):
    """Serve until Ctrl-C (or ``stop`` is set); exit the process if the loop, a
    listening socket or another essential thread is lost."""
    stop = stop or threading.Event()
    loop = threading.Thread(target=server.run, name='http-loop', daemon=True)
    watchdog.essential(loop, 'the HTTP loop')
    loop.start()
    try:
        watchdog.watch(stop, checks=[listening(server)])
    except KeyboardInterrupt:
        log.info('stopping on Ctrl-C')
    watchdog.release(loop)
    close(server, loop)


def socket_map(server):
    return server.map if isinstance(server, waitress.server.MultiSocketServer) \
        else server._map


def listening(server):
    """A check for ``watchdog.watch``: the server's listening sockets are still in its
    loop (an error on one makes wasyncore close it, and the loop goes on without)."""
    found = socket_map(server)
    listeners = [d for d in list(found.values())
                 if isinstance(d, waitress.server.BaseWSGIServer)]

    def check():
        for listener in listeners:
            if listener._fileno is None or found.get(listener._fileno) is not listener:
                return 'the HTTP server stopped listening on %s:%s' % (
                    listener.effective_host, listener.effective_port)
        return None
    return check


def close(server, loop, timeout=5):
    """Close every socket in the loop's own thread (from another, they would vanish
    under its ``poll``), let the loop end, then stop the request threads."""
    found = socket_map(server)
    trigger = next((d for d in list(found.values())
                    if isinstance(d, waitress_trigger.trigger)), None)
    pulled = False
    if trigger is not None and loop.is_alive():
        try:
            trigger.pull_trigger(lambda: wasyncore.close_all(found))
            pulled = True
        except OSError:  # the trigger closed meanwhile: the loop is ending on its own
            pass
    if pulled:
        loop.join(timeout)
    else:
        wasyncore.close_all(found)
    server.task_dispatcher.shutdown(timeout=timeout)


def freeze_loaded_objects():
    """Before a long-running process serves: the objects of the loaded application (a
    quarter of a million: modules, Pyramid's registry, jupyter_client) live as long as
    it does.  Frozen, the collector never scans them again; a full collection took
    135 ms with them, a pause that every request and cell in flight waited out."""
    gc.collect()
    gc.freeze()
