"""@interact in Chromium, on the interacts of a real legacy worksheet, with real Sage."""
from ..support.browser import log_in, sws_fixture

FIXTURE = 'education5_InteractQuickstart.sws'


def import_fixture(page, base):  # noqa: F811
    token = page.locator('meta[name=csrf-token]').get_attribute('content')
    res = page.request.post(base + '/home/alice/import', headers={
        'X-CSRF-Token': token, 'Accept': 'application/json'}, multipart={'file': {
            'name': FIXTURE, 'mimeType': 'application/x-bzip2',
            'buffer': sws_fixture(FIXTURE).read_bytes()}})
    assert res.status == 201, res.text()
    return base + res.json()['worksheets'][0]['url']


def evaluate_cell_with(page, text):  # noqa: F811
    # .cell-editor: the editor, or (a far cell of a long worksheet) the input until then.
    cell = page.locator('.cell', has=page.locator('.cell-editor', has_text=text)).first
    cell.locator('.cell-editor').click()
    page.keyboard.press('Shift+Enter')
    cell.locator('.widget-area .widget-output img.output-image').first.wait_for()
    return cell


def plot_of(cell):
    return cell.locator('.widget-output img.output-image').first.get_attribute('src')


def wait_for_new_plot(page, cell, before):  # noqa: F811
    page.wait_for_function(
        "([sel, old]) => { const img = document.querySelector(sel);"
        " return img && img.getAttribute('src') !== old; }",
        arg=['[data-cell-id="%s"] .widget-output img.output-image'
             % cell.get_attribute('data-cell-id'), before])


def test_interacts_of_the_quickstart_render_and_respond(page, live_server):  # noqa: F811
    base = live_server
    log_in(page, base)
    url = import_fixture(page, base)
    page.goto(url)

    # Input boxes and sliders (f=x^2, a=-3, b=3): changing a slider redraws the plot.
    cell = evaluate_cell_with(page, 'def g(f=x^2,a=-3,b=3)')
    assert cell.locator('.widget-area input[type=text]').count() == 1
    sliders = cell.locator('.widget-area input[type=range]')
    assert sliders.count() == 2
    before = plot_of(cell)
    sliders.nth(1).evaluate("(el) => { el.value = String(Number(el.min) + 1);"
                            " el.dispatchEvent(new Event('change', {bubbles: true})); }")
    wait_for_new_plot(page, cell, before)

    # Text box, colour picker, checkboxes and a range slider.
    cell = evaluate_cell_with(page, 'zoom=range_slider(-3,3,default=(-3,3))):\n    show')
    area = cell.locator('.widget-area')
    assert area.locator('input[type=color]').count() == 1
    assert area.locator('input[type=checkbox]').count() == 2
    assert area.locator('.widget-range input[type=range]').count() == 2
    before = plot_of(cell)
    area.locator('input[type=checkbox]').first.click()  # axes off
    wait_for_new_plot(page, cell, before)

    # A selector as buttons and another as a dropdown.
    cell = evaluate_cell_with(page, "selector(['RdBu', 'jet', 'gray','gray_r'],buttons=True)")
    buttons = cell.locator('.widget-toggle button')
    assert buttons.count() == 4
    assert cell.locator('.widget-dropdown select').count() == 1
    before = plot_of(cell)
    buttons.nth(1).click()
    wait_for_new_plot(page, cell, before)
    assert 'active' in buttons.nth(1).get_attribute('class')

    # Reopening the worksheet shows the last outputs of the interacts.
    last = plot_of(cell)
    page.goto(url)
    again = page.locator('[data-cell-id="%s"] .widget-output img.output-image'
                         % cell.get_attribute('data-cell-id')).first
    again.wait_for()
    assert again.get_attribute('src') == last


def tiny_png():
    import struct
    import zlib

    def chunk(kind, data):
        body = kind + data
        return struct.pack('>I', len(data)) + body + struct.pack('>I', zlib.crc32(body))
    raw = b'\x00\xff\x00\x00'  # one red pixel
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 1, 1, 8, 2, 0, 0, 0))
            + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))


def test_cell_urls_in_legacy_html_outputs_resolve(page, live_server):  # noqa: F811
    import io
    import pickle
    import tarfile
    base = live_server
    log_in(page, base)
    body = ("{{{id=0|\nshow(p)\n///\n<html><div class='fig'><img src='cell://sage0.png'>"
            " <b>caption</b></div></html>\n}}}\n").encode()
    members = {'sage_worksheet/worksheet_conf.pickle': pickle.dumps({'name': 'figs'}, 2),
               'sage_worksheet/worksheet.html': body,
               'sage_worksheet/cells/0/sage0.png': tiny_png()}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode='w:bz2') as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    token = page.locator('meta[name=csrf-token]').get_attribute('content')
    res = page.request.post(base + '/home/alice/import', headers={
        'X-CSRF-Token': token, 'Accept': 'application/json'}, multipart={'file': {
            'name': 'figs.sws', 'mimeType': 'application/x-bzip2',
            'buffer': buffer.getvalue()}})
    assert res.status == 201, res.text()
    page.goto(base + res.json()['worksheets'][0]['url'])
    # An import is untrusted: its HTML output is shown sanitized in the page, no frame.
    inline = page.locator('.output-html-inline img')
    inline.wait_for()
    assert inline.get_attribute('src').startswith('data:image/png;base64,')
    page.wait_for_function('img => img.complete && img.naturalWidth === 1',
                           arg=inline.element_handle())
    assert page.locator('.output-html-inline b').inner_text() == 'caption'
    assert page.locator('iframe.output-html').count() == 0
    # Once its owner trusts it, the output is drawn in its sandboxed frame.
    page.click('[data-action=trust]')
    frame = page.locator('iframe.output-html').first
    frame.wait_for()
    assert frame.get_attribute('sandbox') == 'allow-scripts'
    inner = page.frame_locator('iframe.output-html').first.locator('img')
    inner.wait_for()
    assert inner.get_attribute('src').startswith('data:image/png;base64,')
    assert 'cell://' not in inner.get_attribute('src')
    inner.evaluate('img => img.complete ? 0 : new Promise(r => img.onload = r)')
    assert inner.evaluate('img => img.naturalWidth') == 1
