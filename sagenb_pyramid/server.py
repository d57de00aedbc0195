"""The ``[server:main]`` runner: waitress, with the port overridable on the command line.

``pserve development.ini http_port=6601`` passes ``http_port`` in the global
configuration; PasteDeploy does not let such a variable override a value written in
the file, so the runner reads it itself.  It also pins the server to its CPUs
(``sagenb.server_cpus``, see cpus.py).
"""
import gc

import waitress

from .cpus import pin_server


def serve(app, global_conf, **settings):
    port = global_conf.get('http_port') or settings.pop('port', '6543')
    host = settings.pop('host', '127.0.0.1')
    settings.pop('port', None)
    settings.setdefault('listen', '%s:%s' % (host, port))
    # Checked when the application was made (settings.prepare).
    pin_server(app.registry.settings['sagenb.server_cpus'], port)
    freeze_loaded_objects()
    waitress.serve(app, **settings)


def freeze_loaded_objects():
    """Before a long-running process serves: the objects of the loaded application (a
    quarter of a million: modules, Pyramid's registry, jupyter_client) live as long as
    it does.  Frozen, the collector never scans them again; a full collection took
    135 ms with them, a pause that every request and cell in flight waited out."""
    gc.collect()
    gc.freeze()
