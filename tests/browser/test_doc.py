"""A page of the manuals in Chromium (static/doc.js): read by anyone, its examples run in
place by a logged-in user with real Sage, copied to a new worksheet; the manual's own
scripts never run; ``diff?`` in a worksheet links to the manual."""
import threading

import pytest
import waitress
import webtest

from ..support.browser import log_in
from ..support.doctree import make_doc_tree
from ..support.notebook import Api, Notebook

TOUR = '/doc/live/en/tutorial/tour.html'


@pytest.fixture(scope='module')
def doc_server(tmp_path_factory):
    nb = Notebook(tmp_path_factory.mktemp('docbrowser') / 'data', **{
        'sagenb.doc.path': make_doc_tree(tmp_path_factory.mktemp('manual'))})
    nb.add_user('alice')
    server = waitress.create_server(nb.app, host='127.0.0.1', port=0, threads=8)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield 'http://127.0.0.1:%s' % server.effective_port, nb
    server.close()
    nb.close()


@pytest.fixture
def doc_page(browser, doc_server):
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


def test_anonymous_visitors_read_the_page_with_its_math_and_no_script_of_the_manual(
        doc_page, doc_server):
    base, nb = doc_server
    page = doc_page
    refused = []
    page.on('console', lambda msg: refused.append(msg.text)
            if 'Content Security Policy' in msg.text else None)
    page.goto(base + TOUR)
    cells = page.locator('[data-role=doc-example]')
    cells.first.wait_for()
    assert cells.count() == 4
    assert page.locator('[data-role=doc-example] textarea').nth(2).input_value() == 'a * b'
    assert page.locator('[data-action=evaluate]').count() == 0
    assert 'Log in' in page.locator('[data-role=doc-note]').inner_text()
    page.locator('.doc-article mjx-container').first.wait_for()  # \(2+2\) typeset
    assert page.locator('.doc-article a[href$="algebra.html#solving"]').count() == 1
    page.wait_for_timeout(300)
    # Neither the manual's inline script nor an onerror handler ran.
    assert page.title() != 'owned' and 'owned' not in page.title()


def test_examples_run_in_place_then_the_page_is_copied(doc_page, doc_server):
    base, nb = doc_server
    page = doc_page
    log_in(page, base)
    try:
        page.goto(base + TOUR)
        cells = page.locator('[data-role=doc-example]')
        cells.first.wait_for()
        cells.nth(0).locator('[data-action=evaluate]').click()
        first = cells.nth(0).locator('[data-role=doc-output]')
        first.locator('text=4').wait_for()
        # Edited in place and run with Shift-Enter; the next example sees the variables.
        cells.nth(1).locator('textarea').fill('a = 60\nb = 7')
        cells.nth(1).locator('textarea').press('Shift+Enter')
        page.wait_for_function(
            "() => document.querySelectorAll('[data-role=doc-example]')[1]"
            ".querySelector('.doc-status').textContent.startsWith('Done')")
        cells.nth(2).locator('[data-action=evaluate]').click()
        cells.nth(2).locator('[data-role=doc-output]').locator('text=420').wait_for()
        # A long example is interrupted from its cell.
        cells.nth(3).locator('textarea').fill('sleep(60r)')
        cells.nth(3).locator('[data-action=evaluate]').click()
        cells.nth(3).locator('[data-action=interrupt]').click()
        cells.nth(3).locator('[data-role=doc-output] .ename:has-text("KeyboardInterrupt")').wait_for()

        page.click('[data-role=doc-copy] button')
        page.wait_for_url(base + '/home/alice/*/')
        editors = page.locator('.cell .cm-content')
        editors.first.wait_for()
        assert 'a * b' in editors.all_inner_texts()
        assert 'Sage adds numbers' in page.locator('.worksheet').inner_text()
    finally:
        Api(webtest.TestApp(nb.app), nb.token('alice')).post('/doc/restart', status=200)


def test_help_in_a_cell_links_to_the_manual(doc_page, doc_server):
    base, nb = doc_server
    page = doc_page
    api = Api(webtest.TestApp(nb.app), nb.token('alice'))
    ws = api.post('/home/alice/', {'name': 'help'}, status=201)['url']
    try:
        cell = api.post(ws + 'cells', {'input': 'diff?'}, status=201)['id']
        api.post('%scells/%d/evaluate' % (ws, cell), {'wait': 60}, status=200)
        log_in(page, base)
        page.goto(base + ws if ws.startswith('/') else ws)
        link = page.locator('[data-role=manual-link]')
        link.wait_for()
        assert link.inner_text() == 'sage.calculus.functional.diff'
        assert link.get_attribute('href').endswith(
            '/doc/live/en/reference/calculus/sage/calculus/functional.html'
            '#sage.calculus.functional.diff')
    finally:
        api.post(ws + 'restart', status=200)
