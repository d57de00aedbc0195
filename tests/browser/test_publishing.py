"""Published worksheets in real Chromium (Playwright driving Debian's Chromium): a
worksheet evaluated by real Sage (typeset math and a plot) is published and opened in a
fresh browser without login, and in its print view; a published worksheet full of XSS
payloads (tests/browser/test_trust.py's battery) runs nothing in the viewer's window,
anonymous or an admin's."""
import json
import threading
import urllib.request

import pytest
import waitress

from ..support.notebook import Notebook
from ..support.browser import logged_in
from ..support.trust import (
    Battery, Recorder, assert_nothing_ran, payload_worksheet, view_and_click)


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    nb = Notebook(tmp_path_factory.mktemp('browser-pub') / 'data')
    for login_name in ('olivia', 'mallory'):
        nb.add_user(login_name)
    nb.add_user('boss', admin=True)
    recorder = Recorder(nb.app)
    server = waitress.create_server(recorder, host='127.0.0.1', port=0, threads=8)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield {'base': 'http://127.0.0.1:%s' % server.effective_port, 'nb': nb,
           'recorder': recorder}
    server.close()
    nb.close()


def call(site, login_name, method, path, body=None, timeout=120):
    request = urllib.request.Request(
        site['base'] + path, method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={'Authorization': 'Bearer ' + site['nb'].token(login_name),
                 'Content-Type': 'application/json', 'Accept': 'application/json'})
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        return json.load(answer)


def anonymous_page(browser):  # noqa: F811
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(60_000)
    return context, page


def test_a_published_plot_and_typeset_math_seen_without_login(browser, site):  # noqa: F811
    base = site['base']
    made = call(site, 'olivia', 'POST', '/home/olivia/', {'name': 'Curves'})
    ws = '/home/olivia/%d/' % made['id']
    first = call(site, 'olivia', 'GET', ws)['cells'][0]['id']
    plot = call(site, 'olivia', 'POST', ws + 'cells', {'input': 'plot(sin(x), (x, 0, 6))'})
    call(site, 'olivia', 'POST', ws + 'cells', {'type': 'text',
                                                'input': 'The area is $\\int_0^1 x\\,dx$.'})
    # Real Sage: a typeset result and a plot.
    for cell_id, code in ((first, 'integrate(sin(x)^2, x)'),
                          (plot['id'], 'plot(sin(x), (x, 0, 6))')):
        done = call(site, 'olivia', 'POST', ws + 'cells/%d/evaluate' % cell_id,
                    {'wait': 90, 'input': code}, timeout=150)
        assert done['status'] == 'done', done
    url = call(site, 'olivia', 'POST', ws + 'publish', {})['url']

    context, page = anonymous_page(browser)
    try:
        page.goto(base + url)
        assert page.url == base + url  # no login page
        page.wait_for_function(
            "() => document.getElementById('worksheet').dataset.ready === 'true'")
        page.locator('.cell .output mjx-container').first.wait_for()
        assert '1/2*x' not in page.locator('.cell').first.locator('.output').inner_text()
        page.locator('.text-rendered mjx-container').first.wait_for()
        image = page.locator('.cell img.output-image').first
        image.wait_for()
        page.wait_for_function('img => img.complete && img.naturalWidth > 100',
                               arg=image.element_handle())
        # Read only: no editing controls, no evaluation.
        assert page.locator('[data-action=evaluate], [data-action=evaluate-all]').count() == 0
        assert page.locator('text=Log in to edit a copy').count() == 1

        # Printed, the page keeps the cells and drops its furniture.
        page.emulate_media(media='print')
        assert page.locator('.topbar').is_hidden() and page.locator('#ratings').is_hidden()
        assert image.is_visible()

        # The print view: the cells of download.html (math as MathML), no script.
        page.goto(base + url + 'print')
        page.locator('.cell .output math').first.wait_for()
        page.locator('.text-rendered math').first.wait_for()
        printed = page.locator('.cell img.output-image').first
        printed.wait_for()
        assert printed.is_visible() and page.locator('.topbar').count() == 0
        assert page.locator('.cell [data-action]').count() == 0
    finally:
        context.close()

    # Its owner takes it down from the worksheet page: the address is then not found.
    context, page = logged_in(browser, base, 'olivia')
    try:
        page.goto(base + ws)
        assert page.locator('[data-role=published-link]').get_attribute('href') == url
        page.once('dialog', lambda dialog: dialog.accept())
        page.click('[data-action=unpublish]')
        page.locator('[data-role=publish]', has_text='Publish').wait_for()
        page.wait_for_function(
            "() => !document.querySelector('[data-role=published-link]')")
        answer = page.request.get(base + url, fail_on_status_code=False)
        assert answer.status == 404
    finally:
        context.close()


def test_a_payload_in_a_published_worksheet_runs_nothing(browser, site, listener):  # noqa: F811
    base, nb = site['base'], site['nb']
    battery = Battery(listener.port)
    with nb.transaction() as root:
        ws = payload_worksheet(battery, root.user_by_login('mallory'), 'pub')
        # Mallory trusted it himself: still untrusted for every visitor of /pub/.
        ws.trusted = True
        path = '/home/mallory/%s/' % ws.__name__
    url = call(site, 'mallory', 'POST', path + 'publish', {})['url']
    for who in (None, 'boss'):
        if who is None:
            context, page = anonymous_page(browser)
        else:
            context, page = logged_in(browser, base, who)
        try:
            result = view_and_click(site, listener, page, url, worksheet=path)
            assert_nothing_ran(result)
            # No HTML output was drawn in a frame that runs scripts.
            assert page.locator('iframe').count() == 0, who
        finally:
            context.close()
