"""The browser tests' fixtures: a live server on loopback (module-scoped, with alice),
Debian's Chromium through Playwright (module-scoped) and a fresh page in its own context."""
import os
import threading

import pytest
import waitress

from ..support.browser import CHROMIUM
from ..support.notebook import Notebook
from ..support.trust import Listener


@pytest.fixture(scope='module')
def live_server(tmp_path_factory):
    nb = Notebook(tmp_path_factory.mktemp('browser') / 'data')
    nb.add_user('alice')
    server = waitress.create_server(nb.app, host='127.0.0.1', port=0, threads=8)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield 'http://127.0.0.1:%s' % server.effective_port
    server.close()
    nb.close()


@pytest.fixture(scope='module')
def browser():
    if not os.path.exists(CHROMIUM):
        raise AssertionError(
            'the browser tests need Chromium at %s (apt-get install chromium, or set '
            'SAGENB_TEST_CHROMIUM)' % CHROMIUM)
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                  '--disable-background-networking', '--disable-component-update',
                  '--disable-sync'])
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


@pytest.fixture(scope='module')
def listener():
    server = Listener()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
