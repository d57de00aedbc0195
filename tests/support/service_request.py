"""What a service that writes the audit log, sends mail or acts after the commit needs
of a request, without a web request: scripts and tests call the services this way.

``ServiceRequest(notebook, root, user)`` inside ``with notebook.transaction() as root``:
its ``tm`` is that transaction's (after-commit hooks run when the block commits), and
``workers`` records what would be asked of the worker hosts.
"""


class Workers:
    """Records the worker hosts' operations the services ask for after a commit."""

    def __init__(self):
        self.discarded = []
        self.applied = []

    def discard(self, key):
        self.discarded.append(key)

    def apply_settings(self, live):
        self.applied.append(live)


class ServiceRequest:
    def __init__(self, notebook, root, user=None, address='192.0.2.7'):
        self.root = root
        self.user = user
        self.client_addr = address
        self.registry = notebook.registry
        self.tm = root._p_jar.transaction_manager
        self.workers = Workers()
        self.environ = {'wsgi.url_scheme': 'http', 'SERVER_PORT': '8080'}
