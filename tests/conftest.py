"""Shared fixtures: a real application on a real ZODB FileStorage in a temporary folder.

``notebook`` is a ``Notebook`` (tests/support/notebook.py, built from ``testing.ini`` the
way pserve does); ``testapp`` wraps it in WebTest.  Sage processes started by a test are
stopped when its application is torn down.  Where a new test goes: tests/README.md.
"""
import pytest
import webtest

# Re-exported: test modules written before tests/support/ import these from here.
from .support.notebook import (  # noqa: F401
    HERE, PASSWORD, TESTING_INI, Api, Notebook, csrf_token_of, login)
# A ZEO server on loopback, for the tests of several app servers (functional and e2e).
from .support.zeo import restartable_zeo, zeo_server  # noqa: F401
# PostgreSQL from Debian's binaries, one for the session (RelStorage's tests).
from .support.postgres import postgres, restartable_postgres  # noqa: F401


@pytest.fixture(autouse=True)
def forget_database_outages():
    """When this process last met the database away (outages.py: heartbeats count from
    then) is one test's: another's hosts must not look alive for it."""
    yield
    from sagenb_pyramid import outages
    outages._database_away[0] = 0.0


@pytest.fixture
def cheap_password_hashes(monkeypatch):
    """argon2 at its lowest cost: modules with many logins use it (pytestmark)."""
    from argon2 import PasswordHasher
    from sagenb_pyramid.auth import passwords
    monkeypatch.setattr(passwords, '_hasher', PasswordHasher(
        time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def notebook(tmp_path):
    nb = Notebook(tmp_path / 'data')
    yield nb
    nb.close()


@pytest.fixture
def testapp(notebook):
    return webtest.TestApp(notebook.app, extra_environ={'HTTP_HOST': 'localhost:80'})


@pytest.fixture
def api_for(notebook, testapp):
    def make(login_name):
        return Api(testapp, notebook.token(login_name))
    return make
