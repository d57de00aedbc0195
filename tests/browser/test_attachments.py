"""A Jupyter notebook's pasted images (cell attachments) shown in real Chromium
(Playwright driving Debian's Chromium): in the worksheet page, where ``attachment:<name>``
links of a text cell resolve to the cell's attachments, and in the published page seen
without login, and in the History panel, where a revision's text cells show the
attachments the revision kept (a deleted cell's too, which a restore brings back).  The
SVG attachment's script does not run; the cell's lock (``editable: false``) keeps it from
being edited, with a message saying why."""
import json
import time
import threading
import urllib.request

import pytest
import waitress

from sagenb_pyramid import importing
from sagenb_pyramid.formats import Limits
from sagenb_pyramid.formats.ipynb import read_ipynb

from ..support.browser import logged_in
from ..support.ipynb import dumps, fidelity_notebook
from ..support.notebook import Notebook


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    nb = Notebook(tmp_path_factory.mktemp('browser-attachments') / 'data')
    nb.add_user('alice')
    data = read_ipynb(dumps(fidelity_notebook()), Limits(), fallback_name='Slides')
    with nb.transaction() as root:
        ws = importing.create_worksheet(root.user_by_login('alice'), data)
        path = '/home/alice/%d/' % ws.number
    server = waitress.create_server(nb.app, host='127.0.0.1', port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield {'base': 'http://127.0.0.1:%s' % server.effective_port, 'nb': nb, 'path': path}
    server.close()
    nb.close()


def publish(site):
    request = urllib.request.Request(
        site['base'] + site['path'] + 'publish', method='POST', data=b'{}',
        headers={'Authorization': 'Bearer ' + site['nb'].token('alice'),
                 'Content-Type': 'application/json', 'Accept': 'application/json'})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.load(answer)['url']


def images_shown(page):
    """The natural widths of the first text cell's images, once they have loaded."""
    page.wait_for_function(
        "() => document.getElementById('worksheet').dataset.ready === 'true'")
    first = page.locator('.text-cell').first
    for alt, width in (('the plot', 4), ('drawing', 20)):
        image = first.locator('img[alt="%s"]' % alt)
        image.wait_for()
        page.wait_for_function('([img, w]) => img.complete && img.naturalWidth === w',
                               arg=[image.element_handle(), width])
    shot = page.locator('.text-cell').nth(1).locator('img[alt=shot]')
    shot.wait_for()
    page.wait_for_function('img => img.complete && img.naturalWidth === 2',
                           arg=shot.element_handle())
    return first.locator('img[alt="the plot"]').get_attribute('src')


def test_attachments_show_in_the_page_and_the_publication(browser, site):
    base = site['base']
    context, page = logged_in(browser, base, 'alice')
    try:
        page.goto(base + site['path'])
        src = images_shown(page)
        # Relative to the worksheet: the cell's attachment, as the server serves it.
        assert src.startswith('cells/') and src.endswith('/attachments/image.png')
        assert page.title() != 'svg script ran'
        # The cell is locked by its notebook: no editor, a message saying why.
        page.locator('.text-cell .text-rendered').first.dblclick()
        message = page.locator('#message')
        message.wait_for()
        assert 'locked against editing' in message.inner_text()
        assert page.locator('.text-cell').first.locator('.text-editor').is_hidden()
        # Unlocked (the page is drawn again), it is edited as any text cell.
        with page.expect_navigation():
            page.locator('.text-cell').first.locator('button.btn-unlock').click()
        images_shown(page)
        assert page.locator('.text-cell').first.locator('button.btn-unlock').count() == 0
        page.locator('.text-cell .text-rendered').first.dblclick()
        page.locator('.text-cell').first.locator('.text-editor').wait_for()
    finally:
        context.close()

    url = publish(site)
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto(base + url)
        assert page.url == base + url  # no login
        src = images_shown(page)
        assert src.startswith('cells/') and src.endswith('/attachments/image.png')
        assert page.title() != 'svg script ran'
    finally:
        context.close()


def loaded(page, image, width):
    image.wait_for()
    page.wait_for_function('([img, w]) => img.complete && img.naturalWidth === w',
                           arg=[image.element_handle(), width])
    return image.get_attribute('src')


def test_a_revision_shows_its_attachments_and_a_restore_brings_them_back(browser, site):
    """A revision of the notebook, then its text cell with the screenshot deleted: the
    History panel shows the revision's images (served from the revision), and restoring
    it brings the cell back with its image."""
    from sagenb_pyramid.services import history
    data = read_ipynb(dumps(fidelity_notebook()), Limits(), fallback_name='Kept')
    with site['nb'].transaction() as root:
        alice = root.user_by_login('alice')
        ws = importing.create_worksheet(alice, data)
        history.take(ws, [alice.id], 'auto', history.Rules(60), time.time() - 120)
        first, notes = ws.ordered_cells()[0], ws.ordered_cells()[2]
        assert first.attachments and notes.attachments
        ws.delete_cell(notes.id)
        path = '/home/alice/%d/' % ws.number
    base = site['base']
    context, page = logged_in(browser, base, 'alice')
    try:
        page.goto(base + path)
        page.wait_for_function(
            "() => document.getElementById('worksheet').dataset.ready === 'true'")
        assert page.locator('.text-cell').count() == 1
        page.click('[data-action=history]')
        dialog = page.locator('[data-role=history-dialog]')
        dialog.wait_for()
        page.locator('[data-role=history-list] [data-history-action=view]').first.click()
        cells = dialog.locator('[data-role=history-cells]')
        cells.wait_for()
        texts = cells.locator('.history-text-cell')
        assert texts.count() == 2
        src = loaded(page, texts.nth(0).locator('img[alt="the plot"]'), 4)
        assert src.startswith('revisions/') and \
            src.endswith('/attachments/%d/image.png' % first.id)
        loaded(page, texts.nth(0).locator('img[alt=drawing]'), 20)
        src = loaded(page, texts.nth(1).locator('img[alt=shot]'), 2)
        assert src.endswith('/attachments/%d/screen%%20shot.png' % notes.id)
        assert page.title() != 'svg script ran'
        dialog.locator('[data-role=history-restore]').click()
        dialog.locator('[data-role=history-restore-confirm-button]').click()
        dialog.locator('[data-role=history-restored]').wait_for()
        shot = page.locator('#cells .text-cell').nth(1).locator('img[alt=shot]')
        src = loaded(page, shot, 2)
        assert src == 'cells/%d/attachments/screen%%20shot.png' % notes.id
    finally:
        context.close()
