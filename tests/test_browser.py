"""The notebook in a real browser: Playwright driving Debian's Chromium."""
import os
import threading

import pytest
import waitress

from .conftest import PASSWORD, Notebook

CHROMIUM = os.environ.get('SAGENB_TEST_CHROMIUM', '/usr/bin/chromium')


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


def log_in(page, base):
    page.goto(base + '/')
    assert page.url.startswith(base + '/login')
    page.fill('input[name=login]', 'alice')
    page.fill('input[name=password]', PASSWORD)
    page.click('button[type=submit]')
    page.wait_for_url(base + '/home/alice/')


def test_login_create_evaluate_typeset_plot_and_reload(page, live_server):
    base = live_server
    log_in(page, base)
    page.fill('input[name=name]', 'Browser sheet')
    page.click('[data-action=new-worksheet]')
    page.wait_for_url(base + '/home/alice/*/')
    worksheet_url = page.url

    first = page.locator('.cell').first
    first.locator('.cm-content').click()
    page.keyboard.type('integrate(sin(x)^2, x)')
    page.keyboard.press('Shift+Enter')
    done = page.locator('.cell[data-status=done]').first
    math = done.locator('.output mjx-container')
    math.wait_for()
    assert '1/2*x' not in done.locator('.output').inner_text()  # typeset, not plain text
    # MathJax's MathML for screen readers stays out of sight (no second, unstyled copy).
    assert page.evaluate(
        "getComputedStyle(document.querySelector('.output mjx-assistive-mml')).position"
    ) == 'absolute'

    # Alt-Enter evaluates and opens a new cell below, focused.
    first.locator('.cm-content').click()
    page.keyboard.press('Alt+Enter')
    page.wait_for_function("document.querySelectorAll('.cell').length >= 2")
    page.keyboard.type('plot(sin(x),(x,0,6))')
    page.keyboard.press('Shift+Enter')
    image = page.locator('.cell img.output-image').first
    image.wait_for()
    assert page.evaluate(
        "img => img.naturalWidth > 100", image.element_handle())

    # An error shows its name and a collapsible traceback.
    last = page.locator('.cell').last
    last.locator('.cm-content').click()
    page.keyboard.press('Alt+Enter')
    page.wait_for_function("document.querySelectorAll('.cell').length >= 3")
    page.keyboard.type('1/0')
    page.keyboard.press('Shift+Enter')
    error = page.locator('.cell .output-error').first
    error.wait_for()
    assert 'ZeroDivisionError' in error.inner_text()

    page.wait_for_timeout(1500)  # let the page save the last inputs
    page.goto(worksheet_url)
    page.locator('.cell .output mjx-container').first.wait_for()
    page.locator('.cell img.output-image').first.wait_for()
    assert 'ZeroDivisionError' in page.locator('.cell .output-error').first.inner_text()
    editors = page.locator('.cell .cm-content').all_inner_texts()
    assert editors[:3] == ['integrate(sin(x)^2, x)', 'plot(sin(x),(x,0,6))', '1/0']


def test_output_keeps_coming_after_the_page_is_closed(browser, live_server):
    base = live_server
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(60_000)
    log_in(page, base)
    page.click('[data-action=new-worksheet]')
    page.wait_for_url(base + '/home/alice/*/')
    url = page.url
    page.locator('.cell .cm-content').first.click()
    page.keyboard.type('for i in range(4): print("line", i); sleep(1)')
    page.keyboard.press('Shift+Enter')
    page.locator('.cell[data-status=running]').first.wait_for()
    page.close()  # nobody watches while the cell prints
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.wait_for_timeout(4500)
    page.goto(url)
    page.locator('.cell[data-status=done]').first.wait_for()
    text = page.locator('.cell .output').first.inner_text()
    for i in range(4):
        assert 'line %d' % i in text
    context.close()


def test_text_cell_markdown_math_and_no_scripts(page, live_server):
    base = live_server
    log_in(page, base)
    page.click('[data-action=new-worksheet]')
    page.wait_for_url(base + '/home/alice/*/')
    page.locator('.cell [data-action=add-text-below]').first.click()
    editor = page.locator('.cell textarea').first
    editor.fill('# Title\n\nEuler: $e^{i\\pi}+1=0$\n\n$$\\int_0^1 x^2\\,dx$$\n\n'
                '<script>window.__xss = 1</script><img src="x" onerror="window.__xss = 2">'
                '<b>bold</b>')
    page.keyboard.press('Shift+Enter')
    text = page.locator('.cell').nth(1)
    text.locator('h1').wait_for()
    page.wait_for_timeout(1500)  # saved, then reload
    page.reload()
    text = page.locator('.cell').nth(1)
    text.locator('h1').wait_for()
    assert text.locator('h1').inner_text() == 'Title'
    text.locator('mjx-container').nth(1).wait_for()
    assert text.locator('mjx-container').count() == 2
    assert text.locator('b').inner_text() == 'bold'
    assert text.locator('script').count() == 0
    assert page.evaluate('window.__xss') is None
