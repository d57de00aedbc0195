"""The Sage tests' fixtures: a notebook with alice (one a module), her API client and a
fresh worksheet whose process is stopped after the test."""
import pytest
import webtest

from ...support.notebook import Api, Notebook


@pytest.fixture(scope='module')
def sage_notebook(tmp_path_factory):
    nb = Notebook(tmp_path_factory.mktemp('sage') / 'data')
    nb.add_user('alice')
    yield nb
    nb.close()


@pytest.fixture(scope='module')
def api(sage_notebook):
    app = webtest.TestApp(sage_notebook.app, extra_environ={'HTTP_HOST': 'localhost:80'})
    return Api(app, sage_notebook.token('alice'))


@pytest.fixture
def worksheet(api):
    created = api.post('/home/alice/', {'name': 'sage test'}, status=201)
    yield created['url']
    # Stop its process: the module's notebook would reach the per-user limit.
    api.post(created['url'] + 'restart', status=200)
