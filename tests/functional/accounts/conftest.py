"""Fixtures of the account tests: a real SMTP server on loopback, and notebooks that
send their mail to it."""
import pytest

from ...support.notebook import Notebook
from ...support.smtp import SmtpServer


@pytest.fixture
def smtp():
    with SmtpServer() as server:
        yield server


@pytest.fixture
def make_notebook(tmp_path, smtp):
    """Notebooks that send mail to the test's SMTP server; closed at the end."""
    made = []

    def make(name='data', **settings):
        base = {'sagenb.mail.host': '127.0.0.1', 'sagenb.mail.port': str(smtp.port),
                'sagenb.mail.sender': 'notebook@example.org'}
        base.update(settings)
        nb = Notebook(tmp_path / name, **base)
        made.append(nb)
        return nb
    yield make
    for nb in made:
        nb.close()
