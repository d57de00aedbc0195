"""What another person wrote runs no script in the viewer's session: an XSS payload
battery in real Chromium (Playwright driving Debian's Chromium).

Mallory, an ordinary user, fills a worksheet with payloads (HTML, SVG, MathML, Markdown,
TeX, stored outputs, widget state, a worksheet name, data file names, his full name) and
shares it with Victor; Victor also imports a notebook Mallory mailed him.  Victor and the
admin open each worksheet and click once in the middle of the page (the overlays cover
it), then on every link of the rendered content.  Every payload tries to set a marker in
the window, to fetch a URL on a loopback listener the test runs, and to make Mallory an
admin with the viewer's session and CSRF token.  The test proves that none of it
happened: no marker in any frame, no hit on the listener, Mallory no admin, no request
but the page's own (GETs of the page, static files, the cells) with the viewer's cookie,
and stored outputs untouched (page actions planted as ``data-action`` overlays).

One module, one server, one browser: the whole battery costs seconds.
"""
import json
import threading
import urllib.request

import pytest
import waitress

from ..support.browser import logged_in
from ..support.notebook import Notebook
from ..support.trust import (
    VIEW_MIME, Battery, Recorder, assert_nothing_ran, outputs_of, view_and_click)

@pytest.fixture(scope='module')
def site(tmp_path_factory, listener):
    nb = Notebook(tmp_path_factory.mktemp('browser-trust') / 'data')
    nb.add_user('boss', admin=True)
    nb.add_user('victor')
    nb.add_user('mallory')
    battery = Battery(listener.port)
    with nb.transaction() as root:
        mallory = root.user_by_login('mallory')
        victor = root.user_by_login('victor')
        mallory.fullname = '<img src=x onerror="%s">' % battery.js('fullname')
        ws = mallory.create_worksheet('<img src=x onerror="%s">' % battery.js('wsname'))
        ws.viewers.append('userid:' + victor.id)
        first = ws.ordered_cells()[0]
        first.input = '1 + 1'
        first.output.update('done', battery.outputs('mallory-out'), execution_count=1)
        ws.add_cell('text', battery.text('mallory-md'))
        legacy = ws.add_cell('text', battery.text('mallory-html'))
        legacy.format = 'html'
        widgets = ws.add_cell('compute', '@interact\ndef f(): pass')
        widgets.output.update('done', [{'output_type': 'display_data', 'metadata': {},
                                        'data': {VIEW_MIME: {'model_id': 'box'}}}])
        widgets.output.set_widgets({
            'box': {'model_name': 'VBoxModel',
                    'state': {'children': ['IPY_MODEL_h', 'IPY_MODEL_m', 'IPY_MODEL_o']}},
            'h': {'model_name': 'HTMLModel',
                  'state': {'value': '<img src=x onerror="%s">' % battery.js('widget')}},
            'm': {'model_name': 'HTMLMathModel',
                  'state': {'value': r'$\href{javascript:%s}{\text{widget math}}$'
                                     % battery.js('widget-math')}},
            'o': {'model_name': 'OutputModel',
                  'state': {'outputs': battery.outputs('widget-out')}},
        })
        folder = ws.data_files()
        # File names hold no '/': the payload only sets the marker.
        folder.add_file('<img src=x onerror="window.__pwned=1">.txt', b'x')
        first.output.add_file('<svg onload="window.__pwned=2">.txt', b'x')
        ws.add_cell('text', battery.actions())
        mallory_url = '/home/mallory/%s/' % ws.__name__
    recorder = Recorder(nb.app)
    server = waitress.create_server(recorder, host='127.0.0.1', port=0, threads=8)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = 'http://127.0.0.1:%s' % server.effective_port
    yield {'base': base, 'nb': nb, 'recorder': recorder, 'battery': battery,
           'mallory_url': mallory_url}
    server.close()
    nb.close()


def imported_notebook(battery):
    """The .ipynb Mallory mails Victor: Markdown cells and stored outputs."""
    cells = [
        {'cell_type': 'markdown', 'metadata': {}, 'source': battery.text('ipynb')},
        {'cell_type': 'code', 'metadata': {}, 'execution_count': 1, 'source': '2 + 2',
         'outputs': [dict(o, **({'execution_count': None}
                                if o['output_type'] == 'execute_result' else {}))
                     for o in battery.outputs('ipynb-out')]},
        {'cell_type': 'markdown', 'metadata': {}, 'source': battery.actions()},
    ]
    return json.dumps({'nbformat': 4, 'nbformat_minor': 5, 'cells': cells, 'metadata': {
        'kernelspec': {'name': 'sagemath', 'display_name': 'SageMath'}}}).encode()


def import_for(site, login_name, content, filename):
    token = site['nb'].token(login_name)
    boundary = 'battery-boundary'
    body = (('--%s\r\nContent-Disposition: form-data; name="file"; filename="%s"\r\n'
             'Content-Type: application/octet-stream\r\n\r\n' % (boundary, filename))
            .encode() + content + ('\r\n--%s--\r\n' % boundary).encode())
    request = urllib.request.Request(
        site['base'] + '/home/%s/import' % login_name, data=body, method='POST', headers={
            'Authorization': 'Bearer ' + token, 'Accept': 'application/json',
            'Content-Type': 'multipart/form-data; boundary=' + boundary})
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 201
        url = json.load(answer)['worksheets'][0]['url']
    return url[len(site['base']):] if url.startswith(site['base']) else url


def test_a_worksheet_of_another_user_viewed_and_clicked(browser, site, listener):  # noqa: F811
    for login in ('victor', 'boss'):
        context, page = logged_in(browser, site['base'], login)
        try:
            result = view_and_click(site, listener, page, site['mallory_url'])
            assert_nothing_ran(result)
            # The payloads were there and rendered (the test is not vacuous).
            assert page.locator('.text-rendered').count() == 3
            assert 'TeX link' in page.locator('#cells').inner_text() or \
                page.locator('#cells mjx-container').count() > 5
        finally:
            context.close()


def test_an_imported_notebook_opened_and_clicked(browser, site, listener):  # noqa: F811
    path = import_for(site, 'victor', imported_notebook(site['battery']), 'mail.ipynb')
    for login in ('victor', 'boss'):
        context, page = logged_in(browser, site['base'], login)
        try:
            assert_nothing_ran(view_and_click(site, listener, page, path))
        finally:
            context.close()


def test_names_in_listings_and_admin_pages(browser, site, listener):  # noqa: F811
    """Mallory's worksheet name, file names and full name where others see them."""
    for login, paths in (('victor', ['/home/victor/']),
                         ('boss', ['/admin/users/', '/admin/users/mallory/',
                                   '/home/mallory/'])):
        context, page = logged_in(browser, site['base'], login)
        try:
            for path in paths:
                del listener.hits[:]
                page.goto(site['base'] + path)
                page.wait_for_timeout(500)
                size = page.viewport_size
                page.mouse.click(size['width'] // 2, size['height'] // 2)
                page.wait_for_timeout(300)
                assert page.evaluate('window.__pwned') is None, path
                assert listener.hits == [], path
            if login == 'boss':
                assert 'onerror' in page.locator('main').inner_text()  # shown as text
        finally:
            context.close()
    with site['nb'].transaction() as root:
        assert root.user_by_login('mallory').is_admin is False


def test_a_planted_page_action_does_nothing(browser, site, listener):  # noqa: F811
    """Even if a sanitizer let a data-action through, a click inside rendered content
    is no page action: the owner's click on it deletes no output."""
    path = import_for(site, 'victor', imported_notebook(site['battery']), 'actions.ipynb')
    context, page = logged_in(browser, site['base'], 'victor')
    try:
        before = outputs_of(site, path)
        assert any(before)
        page.goto(site['base'] + path)
        page.wait_for_function(
            "() => document.getElementById('worksheet').dataset.ready === 'true'")
        del site['recorder'].requests[:]
        page.evaluate("""() => {
          const target = document.querySelector('.text-rendered');
          for (const action of ['clear-all', 'restart', 'evaluate-all']) {
            const b = document.createElement('button');
            b.dataset.action = action;
            b.id = 'planted-' + action;
            b.textContent = action;
            target.append(b);
          }
        }""")
        for action in ('clear-all', 'restart', 'evaluate-all'):
            page.click('#planted-' + action)
        page.wait_for_timeout(1000)
        # No write but the page's own presence heartbeat (every 5 s while alone).
        assert [r for r in site['recorder'].requests
                if r[0] != 'GET' and r[1] != path.rstrip('/') + '/presence'] == []
        assert outputs_of(site, path) == before
        # The page's own button still works (the check above is not vacuous).
        page.click('.ws-actions [data-action=clear-all]')
        page.wait_for_function(
            "() => !document.querySelector('.compute-cell .output-item')")
        assert not any(outputs_of(site, path))
    finally:
        context.close()


def test_the_policy_stops_script_the_sanitizer_let_by(browser, site, listener):  # noqa: F811
    """The CSP alone: markup put into the page past every sanitizer runs no handler and
    no javascript: link."""
    context, page = logged_in(browser, site['base'], 'victor')
    try:
        page.goto(site['base'] + site['mallory_url'])
        page.wait_for_function(
            "() => document.getElementById('worksheet').dataset.ready === 'true'")
        page.evaluate("""() => {
          window.__violations = 0;
          document.addEventListener('securitypolicyviolation', () => window.__violations++);
          const div = document.createElement('div');
          div.innerHTML = '<img src="data:," onerror="window.__pwned=1">' +
            '<a id="planted-link" href="javascript:window.__pwned=2">x</a>' +
            '<svg><a id="planted-svg" href="javascript:window.__pwned=3"><text y="20">y</text></a></svg>' +
            '<iframe srcdoc="<script>parent.__pwned=4</script>"></iframe>';
          document.getElementById('cells').append(div);
        }""")
        page.click('#planted-link')
        page.locator('#planted-svg').dispatch_event('click')
        page.wait_for_timeout(500)
        assert page.evaluate('window.__pwned') is None
        assert page.evaluate('window.__violations') >= 3  # each was seen and refused
    finally:
        context.close()


def test_a_trusted_notebook_runs_scripts_only_in_opaque_frames(browser, site, listener):  # noqa: F811
    """Once Victor trusts the import, its HTML outputs run their scripts, in frames of
    an opaque origin: nothing reaches his page, his cookies or the listener."""
    path = import_for(site, 'victor', imported_notebook(site['battery']), 'trusted.ipynb')
    context, page = logged_in(browser, site['base'], 'victor')
    try:
        page.goto(site['base'] + path)
        page.click('[data-action=trust]')
        page.locator('iframe.output-html').first.wait_for()
        result = view_and_click(site, listener, page, path)
        in_frames = [value for url, value in result['markers'] if url == 'about:blank'
                     or '/_frame' in url]
        assert in_frames, result['markers']  # the output's script did run, in its frame
        assert [m for m in result['markers'] if m[1] not in in_frames] == []
        frames = [f for f in page.frames[1:] if '/_frame' in f.url]
        assert frames
        for frame in frames:
            assert frame.evaluate(
                "() => { let c; try { c = document.cookie; } catch (e) { c = 'refused'; }"
                " return [self.origin, c]; }") == ['null', 'refused']
        result['markers'] = []
        assert_nothing_ran(result)
    finally:
        context.close()
