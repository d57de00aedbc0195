"""The ``[server:main]`` runner: waitress, with the port overridable on the command line.

``pserve development.ini http_port=6601`` passes ``http_port`` in the global
configuration; PasteDeploy does not let such a variable override a value written in
the file, so the runner reads it itself.
"""
import waitress


def serve(app, global_conf, **settings):
    port = global_conf.get('http_port') or settings.pop('port', '6543')
    host = settings.pop('host', '127.0.0.1')
    settings.pop('port', None)
    settings.setdefault('listen', '%s:%s' % (host, port))
    waitress.serve(app, **settings)
