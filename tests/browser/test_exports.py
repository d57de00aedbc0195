"""``download.html`` opened as a person opens a downloaded file (issue 22): from disk, in
Chromium, with the network off.  It shows the outputs, the plot and the math, and runs
nothing of the payload battery (tests/support/trust.py): no script, no request."""
import webtest

from ..support.exports import build
from ..support.notebook import Notebook
from ..support.trust import Battery


def test_the_html_export_opens_offline_shows_everything_and_runs_nothing(
        browser, listener, tmp_path):
    nb = Notebook(tmp_path / 'data')
    try:
        nb.add_user('alice')
        with nb.transaction() as root:
            url = build(root, battery=Battery(listener.port))
        app = webtest.TestApp(nb.app, extra_environ={'HTTP_HOST': 'localhost:80'})
        body = app.get(url + 'download.html',
                       headers={'Authorization': 'Bearer ' + nb.token('alice')}).body
    finally:
        nb.close()
    target = tmp_path / 'worksheet.html'
    target.write_bytes(body)

    context = browser.new_context(offline=True)
    requests, errors = [], []
    page = context.new_page()
    page.on('request', lambda r: requests.append(r.url))
    page.on('console', lambda m: errors.append(m.text) if m.type == 'error' else None)
    try:
        page.goto(target.as_uri())
        page.wait_for_load_state('load')
        # The outputs, the plot (a data: image that decoded) and the math (MathML laid
        # out by the browser: boxes of some size).
        assert '3 * 5 * 17 * 257 * 641 * 65537 * 6700417' in page.inner_text('body')
        image = page.locator('img.output-image').first
        assert page.evaluate('img => img.complete && img.naturalWidth === 3',
                             image.element_handle())
        # (The worksheet's own cells: the battery's TeX may well come out empty.)
        sizes = page.evaluate("""() => Array.from(document.querySelectorAll(
            '#cell-1 math, #cell-8 math, #cell-9 math, #cell-11 math'))
            .map(m => m.getBoundingClientRect()).map(r => [r.width, r.height])""")
        assert len(sizes) >= 6 and all(w > 0 and h > 0 for w, h in sizes), sizes
        assert page.locator('.output-latex math mfrac').count() >= 1
        assert page.locator('.text-rendered strong', has_text='bold').count() == 1
        # Nothing ran: no marker, no script element, every link clicked did nothing.
        page.evaluate("""() => { for (const a of document.querySelectorAll('a')) {
            const href = a.getAttribute('href') || '';
            if (!/^https?:/.test(href)) a.dispatchEvent(new MouseEvent('click',
                {bubbles: true, cancelable: true})); } }""")
        page.mouse.click(300, 300)
        page.wait_for_timeout(500)
        assert page.evaluate('window.__pwned') is None
        assert page.evaluate("document.querySelectorAll('script').length") == 0
        assert page.evaluate("document.querySelectorAll('[onerror], [onload], iframe, "
                             "object, embed, form, link').length") == 0
        # The only request is the file itself: no image, style or script from elsewhere.
        assert requests == [target.as_uri()], requests
        assert listener.hits == []
    finally:
        context.close()
