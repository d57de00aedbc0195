"""Fixtures of the functional tests (WebTest through the whole application)."""
import pytest

from ..support.notebook import login
from ..support.webapp import make_worksheet


@pytest.fixture
def alice_browser(notebook, testapp):
    """alice logged in with a worksheet 0 of cells 0 (compute) and 1 (text)."""
    notebook.add_user('alice')
    make_worksheet(notebook, 'alice', 'First', cells=[('text', 'hello')])
    return login(testapp, 'alice')
