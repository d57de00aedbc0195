"""The History panel of the worksheet page (issue 21, static/page/history.js) in real
Chromium: the owner edits a worksheet (a revision an edit: ``sagenb.history.interval``
is a millisecond here), opens the panel, sees the list, views an old revision read
only, compares two side by side with the changed line marked, restores one and sees
its cells back, names and pins one, and lets viewers browse; a viewer then sees the
list but no restore; and a revision whose outputs and text hold scripts (the XSS
battery of tests/support/trust.py), written by a collaborator, runs none of them in
its owner's page, though the owner trusts the worksheet.
"""
import threading
import time

import pytest
import waitress

from sagenb_pyramid.acl import user_principal
from sagenb_pyramid.services import history

from ..support.browser import logged_in
from ..support.notebook import Notebook
from ..support.trust import PAGE_OWN, Battery, Recorder

READY = "() => document.getElementById('worksheet').dataset.ready === 'true'"
RULES = history.Rules(interval=0.001)


@pytest.fixture(scope='module')
def site(tmp_path_factory, listener):
    nb = Notebook(tmp_path_factory.mktemp('browser-history') / 'data',
                  **{'sagenb.history.interval': '0.001'})
    for login in ('olivia', 'vera', 'mallory'):
        nb.add_user(login)
    battery = Battery(listener.port)
    with nb.transaction() as root:
        olivia = root.user_by_login('olivia')
        vera, mallory = root.user_by_login('vera'), root.user_by_login('mallory')
        # Edited in the page by the first test.
        course = olivia.create_worksheet('Course')
        course.ordered_cells()[0].input = 'a = 1\nb = 2\nc = 3'
        text = course.add_cell('text', 'Intro *text*')
        course.trusted = False  # restored cells are then shown without a reload
        # A history of two revisions for a viewer.
        shared = olivia.create_worksheet('Shared')
        cell = shared.ordered_cells()[0]
        cell.input = 'x = 1'
        history.take(shared, [olivia.id], 'auto', RULES, time.time() - 120)
        cell.input = 'x = 2'
        history.take(shared, [olivia.id], 'auto', RULES, time.time() - 60)
        shared.share([], [user_principal(vera.id)])
        # Mallory, a collaborator, left payloads in a revision; the worksheet was
        # cleaned since and its owner trusts it.
        bad = olivia.create_worksheet('Payloads')
        bad.share([user_principal(mallory.id)], [])
        first = bad.ordered_cells()[0]
        first.input = '1 + 1'
        first.output.update('done', battery.outputs('rev-out'), execution_count=1)
        bad.add_cell('text', battery.text('rev-md'))
        bad.add_cell('text', battery.text('rev-html')).format = 'html'
        bad.add_cell('text', battery.actions())
        history.take(bad, [mallory.id], 'auto', RULES, time.time() - 60)
        for extra in bad.ordered_cells()[1:]:
            bad.delete_cell(extra.id)
        first.output.update('new', [])
        bad.trusted = True
        # A long history: 1,000 revisions, a page of them drawn at a time.
        long = olivia.create_worksheet('Long')
        cell = long.ordered_cells()[0]
        start = time.time() - 86000
        for k in range(1000):
            cell.input = 'step = %d' % k
            history.take(long, [olivia.id], 'auto', RULES, start + 60 * k)
        urls = {name: '/home/olivia/%s/' % ws.__name__
                for name, ws in (('course', course), ('shared', shared), ('bad', bad),
                                 ('long', long))}
        ids = {'course': course.ordered_cells()[0].id, 'text': text.id}
    recorder = Recorder(nb.app)
    server = waitress.create_server(recorder, host='127.0.0.1', port=0, threads=8)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield {'base': 'http://127.0.0.1:%s' % server.effective_port, 'nb': nb, 'urls': urls,
           'ids': ids, 'recorder': recorder}
    server.close()
    nb.close()


def open_page(page, site, name):
    page.goto(site['base'] + site['urls'][name])
    page.wait_for_function(READY)


def open_history(page):
    page.click('[data-action=history]')
    dialog = page.locator('[data-role=history-dialog]')
    dialog.wait_for()
    page.locator('[data-role=history-list] [data-history-action=view]').first.wait_for()
    return dialog


def entries(dialog):
    return dialog.locator('[data-role=history-list] li.history-entry')


def revisions_of(site, name):
    with site['nb'].transaction() as root:
        ws = root.user_by_login('olivia')[site['urls'][name].split('/')[3]]
        return [(r.kind, r.name, bool(r.pinned), [s.input for s in r.cells])
                for r in ws.revisions.values()]


def test_owner_lists_views_compares_restores_names_and_pins(browser, site):
    ctx, page = logged_in(browser, site['base'], 'olivia')
    try:
        open_page(page, site, 'course')
        cell, text_cell = site['ids']['course'], site['ids']['text']
        # Three edits through the page's own API client, the last of the text cell: a
        # revision each.
        for edited, text in ((cell, 'a = 1\nb = 20\nc = 3'), (cell, 'a = 10\nb = 20\nc = 3\nd = 4'),
                             (text_cell, 'Intro *changed*')):
            page.evaluate('([id, text]) => window.sagenb.api("PATCH", "cells/" + id, {input: text})',
                          [edited, text])
            page.wait_for_timeout(20)
        assert [r[0] for r in revisions_of(site, 'course')] == ['auto'] * 3
        # The page as it is now (the live part would have shown the edits already).
        open_page(page, site, 'course')
        page.locator('#cells .text-rendered:has-text("Intro changed")').wait_for()

        dialog = open_history(page)
        rows = entries(dialog)
        assert rows.count() == 3
        newest = rows.nth(0).inner_text()
        assert 'olivia' in newest and '1 cell changed' in newest
        # Times in the viewer's locale, as the <time> says.
        assert rows.nth(0).locator('time').get_attribute('datetime').endswith('Z')

        # The oldest revision, read only: its input, no editor.
        rows.nth(2).locator('[data-history-action=view]').click()
        cells = dialog.locator('[data-role=history-cells]')
        cells.wait_for()
        assert cells.locator('[data-role=history-input]').first.inner_text() == 'a = 1\nb = 20\nc = 3'
        assert 'Intro' in cells.locator('.text-rendered').inner_text()
        assert cells.locator('.cm-editor, textarea, [contenteditable=true]').count() == 0

        # The two older ones compared (ticked), side by side: a changed line and an
        # added one.
        rows.nth(2).locator('[data-role=history-pick]').check()
        rows.nth(1).locator('[data-role=history-pick]').check()
        dialog.locator('[data-role=history-compare-picked]').click()
        diff = dialog.locator('[data-role=history-diff]')
        diff.wait_for()
        changed = diff.locator('[data-role=history-diff-cell][data-change=changed]')
        assert changed.count() == 1
        row = changed.locator('tr[data-kind=change]')
        assert row.count() == 1
        assert [td.inner_text() for td in row.locator('td').all()] == ['1', 'a = 1', '1', 'a = 10']
        added = changed.locator('tr[data-kind=add]')
        assert [td.inner_text() for td in added.locator('td').all()] == ['', '', '4', 'd = 4']
        assert changed.locator('tr[data-kind=same]').count() == 2

        # Restore the oldest: confirmed first; the page's cell shows it again.
        rows.nth(2).locator('[data-history-action=view]').click()
        dialog.locator('[data-role=history-restore]').click()
        dialog.locator('[data-role=history-restore-confirm-button]').click()
        page.wait_for_function(
            '([id, text]) => window.sagenb.getInput(id) === text',
            arg=[cell, 'a = 1\nb = 20\nc = 3'])
        page.locator('#cells .text-rendered:has-text("Intro text")').wait_for()
        dialog.locator('[data-role=history-restored]').wait_for()
        kinds = [r[0] for r in revisions_of(site, 'course')]
        assert kinds == ['auto'] * 3 + ['before-restore', 'restore']
        assert rows.count() == 5
        assert revisions_of(site, 'course')[-2][3] == ['a = 10\nb = 20\nc = 3\nd = 4',
                                                       'Intro *changed*']

        # Name and pin the second oldest ("submitted version").
        rows.nth(3).locator('[data-history-action=view]').click()
        dialog.locator('[data-role=history-name]').fill('submitted version')
        dialog.locator('[data-role=history-save-name]').click()
        dialog.locator('[data-role=history-entry-name]').wait_for()
        dialog.locator('[data-role=history-pin]').click()
        rows.nth(3).locator('[data-role=history-pinned]').wait_for()
        assert revisions_of(site, 'course')[1][1:3] == ('submitted version', True)
        assert 'submitted version' in rows.nth(3).inner_text()

        # Escape closes the panel.
        page.keyboard.press('Escape')
        dialog.wait_for(state='hidden')
    finally:
        ctx.close()


def test_viewer_browses_when_allowed_and_cannot_restore(browser, site):
    viewer_ctx, viewer = logged_in(browser, site['base'], 'vera')
    owner_ctx, owner = logged_in(browser, site['base'], 'olivia')
    try:
        open_page(viewer, site, 'shared')
        assert viewer.locator('[data-action=history]').count() == 0
        # The owner opens the history to viewers from the panel.
        open_page(owner, site, 'shared')
        dialog = open_history(owner)
        dialog.locator('[data-role=history-viewers]').check()
        owner.wait_for_function(
            "() => /may now browse/.test(document.querySelector('[data-role=history-status]').textContent)")
        with site['nb'].transaction() as root:
            ws = root.user_by_login('olivia')[site['urls']['shared'].split('/')[3]]
            assert ws.history_for_viewers is True

        open_page(viewer, site, 'shared')
        dialog = open_history(viewer)
        rows = entries(dialog)
        assert rows.count() == 2
        rows.nth(1).locator('[data-history-action=view]').click()
        dialog.locator('[data-role=history-cells]').wait_for()
        assert dialog.locator('[data-role=history-input]').inner_text() == 'x = 1'
        assert dialog.locator('[data-role=history-restore], [data-role=history-pin], '
                              '[data-role=history-name], [data-role=history-viewers]').count() == 0
        dialog.locator('[data-history-action=diff-now]').click()
        dialog.locator('tr[data-kind=change]').wait_for()
    finally:
        viewer_ctx.close()
        owner_ctx.close()


def test_a_revisions_scripts_do_not_run(browser, site, listener):
    ctx, page = logged_in(browser, site['base'], 'olivia')
    try:
        open_page(page, site, 'bad')
        assert page.evaluate('window.sagenb.page.trusted') is True
        del listener.hits[:]
        del site['recorder'].requests[:]
        dialog = open_history(page)
        entries(dialog).nth(0).locator('[data-history-action=view]').click()
        cells = dialog.locator('[data-role=history-cells]')
        cells.wait_for()
        assert 'html output' in cells.inner_text()
        # Its math went through MathJax (where TeX payloads would act), then every
        # link and planted action of the content is clicked.
        cells.locator('.text-rendered mjx-container').first.wait_for()
        page.wait_for_timeout(1000)
        page.evaluate("""() => {
          for (const el of document.querySelectorAll(
              '[data-role=history-cells] a, [data-role=history-cells] [data-action]')) {
            const href = el.getAttribute('href') || el.getAttribute('xlink:href');
            if (href !== null && /^https?:/.test(new URL(href, document.baseURI).protocol)) continue;
            el.dispatchEvent(new MouseEvent('click', {bubbles: true, cancelable: true}));
          }
        }""")
        page.wait_for_timeout(1000)
        assert cells.locator('iframe').count() == 0
        markers = [frame.evaluate('window.__pwned') for frame in page.frames]
        assert markers == [None] * len(markers)
        assert listener.hits == []
        # The page's own requests only (a payload's would name another path).
        own = (site['urls']['bad'],) + PAGE_OWN
        foreign = [(m, p) for m, p, cookie in site['recorder'].requests
                   if cookie and not p.startswith(own)]
        assert foreign == []
        with site['nb'].transaction() as root:
            assert root.user_by_login('mallory').is_admin is False
        # The page still works: the panel's own controls answer.
        dialog.locator('[data-history-action=diff-now]').click()
        dialog.locator('[data-role=history-diff]').wait_for()
    finally:
        ctx.close()


def test_a_thousand_revisions_open_a_page_at_a_time(browser, site):
    ctx, page = logged_in(browser, site['base'], 'olivia')
    try:
        open_page(page, site, 'long')
        started = time.monotonic()
        dialog = open_history(page)
        opened = time.monotonic() - started
        rows = entries(dialog)
        assert rows.count() == 50
        assert 'step' not in rows.nth(0).inner_text()  # the list holds no cells
        more = dialog.locator('[data-role=history-more]')
        assert more.inner_text() == 'Show older (950 more)'
        more.click()
        assert rows.count() == 100
        # The newest of the second page is the 51st newest revision.
        rows.nth(50).locator('[data-history-action=view]').click()
        assert dialog.locator('[data-role=history-input]').inner_text() == 'step = 949'
        # Generous: the list of 1,000 is one request of about 30 ms (docs/benchmarks.md).
        assert opened < 5, opened
    finally:
        ctx.close()
