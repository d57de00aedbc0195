"""A real application on a real ZODB FileStorage in a temporary folder, and the ways
into it that tests share.

``Notebook`` builds the WSGI application from ``testing.ini`` the way pserve does, with
handy ways into its database (users are created directly there); ``login`` logs a WebTest
browser in through the form; ``Api`` sends JSON with an API token, as a script would.
"""
import functools
import os
import re

import transaction

from sagenb_pyramid import database, main
from sagenb_pyramid.auth.passwords import hash_password
from sagenb_pyramid.auth.tokens import create_token
from sagenb_pyramid.resources import get_root

# The repository: tests/support/ is two folders below it.
HERE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TESTING_INI = os.path.join(HERE, 'testing.ini')
PASSWORD = 'correct horse battery'


class Notebook:
    """A running application and handy ways into its database."""

    def __init__(self, data_dir, **settings):
        base = dict(testing_settings())
        base.update(settings)
        self.app = main({'__file__': TESTING_INI, 'here': HERE, 'data_dir': str(data_dir)},
                        **base)
        self.registry = self.app.registry
        self.db = database(self.registry)
        # The app server's side of the worker hosts, and its embedded host.
        self.workers = self.registry.workers
        self.host = self.registry.worker_host

    def transaction(self):
        return _RootTransaction(self.db)

    def add_user(self, login, password=PASSWORD, admin=False):
        with self.transaction() as root:
            return root.add_user(login, hash_password(password), is_admin=admin).id

    def token(self, login):
        with self.transaction() as root:
            return create_token(root, root.user_by_login(login))

    def close(self):
        self.workers.shutdown()
        self.db.close()


@functools.lru_cache(maxsize=None)
def testing_settings():
    """testing.ini's ``[app:main]``, read once: plaster looks its loader up among every
    installed distribution's entry points (half of a ``Notebook``'s setup otherwise)."""
    from plaster import get_settings
    return tuple(get_settings(TESTING_INI, 'app:main').items())


class _RootTransaction:
    def __init__(self, db):
        self.tm = transaction.TransactionManager(explicit=True)
        self.conn = db.open(transaction_manager=self.tm)

    def __enter__(self):
        self.tm.begin()
        return get_root(self.conn.root())

    def __exit__(self, kind, value, tb):
        try:
            if kind is None:
                self.tm.commit()
            else:
                self.tm.abort()
        finally:
            self.conn.close()


def csrf_token_of(response):
    match = re.search(r'name="csrf_token" value="([^"]+)"', response.text) or \
        re.search(r'name="csrf-token" content="([^"]+)"', response.text)
    assert match, 'no CSRF token in the page'
    return match.group(1)


def login(testapp, login_name, password=PASSWORD):
    """Log in through the form; returns the CSRF token of the new session."""
    page = testapp.get('/login')
    page = testapp.post('/login', {'login': login_name, 'password': password,
                                   'csrf_token': csrf_token_of(page)}, status=302)
    return csrf_token_of(testapp.get('/account'))


class Api:
    """JSON requests with an API token, as a script would send them."""

    def __init__(self, testapp, token):
        self.testapp = testapp
        self.headers = {'Authorization': 'Bearer ' + token}

    def get(self, url, status=200, **params):
        return self.testapp.get(url, params=params, headers=self.headers, status=status).json

    def post(self, url, body=None, status='*'):
        res = self.testapp.post_json(url, body if body is not None else {},
                                     headers=self.headers, status=status)
        return res.json

    def patch(self, url, body, status='*'):
        return self.testapp.patch_json(url, body, headers=self.headers, status=status).json

    def put(self, url, body, status='*'):
        return self.testapp.put_json(url, body, headers=self.headers, status=status).json

    def delete(self, url, status='*'):
        return self.testapp.delete(url, headers=self.headers, status=status).json
