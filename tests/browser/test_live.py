"""Live collaboration in real Chromium (issue 21, static/page/live.js): two windows on one
worksheet, olivia (its owner) in one and carl (a collaborator) in the other.

An edit in one window reaches the other with its cursor, selection and unsaved typing
kept; new, deleted and moved cells and a rename reach it too; edits of different lines
of one cell merge; the same line shows a conflict ("keep mine", "take theirs"); a cell
deleted while the other typed in it can be restored as a new cell; a window that was
offline saves what it kept when it is back, merged with what happened meanwhile;
outputs cleared in one window go in the other.

Holding a window's saves (``Held``: its PATCH requests wait in Playwright's router) makes
its typing unsaved for as long as a test needs, whatever the autosave's timing.
"""
import threading
from urllib.parse import parse_qs, urlsplit

import pytest
import waitress

from sagenb_pyramid.acl import user_principal

from ..support.browser import logged_in
from ..support.notebook import Notebook

ARRIVES = 15_000  # ms: a generous bound for a change to reach the other window


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    nb = Notebook(tmp_path_factory.mktemp('browser-live') / 'data')
    nb.add_user('olivia')
    nb.add_user('carl')
    server = waitress.create_server(nb.app, host='127.0.0.1', port=0, threads=8)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield {'base': 'http://127.0.0.1:%s' % server.effective_port, 'nb': nb}
    server.close()
    nb.close()


@pytest.fixture(scope='module')
def windows(browser, site):
    """Olivia's window and carl's, each in a browser context of its own."""
    a_ctx, a = logged_in(browser, site['base'], 'olivia')
    b_ctx, b = logged_in(browser, site['base'], 'carl')
    yield a, b
    a_ctx.close()
    b_ctx.close()


def worksheet(site, name, inputs, text_cell=None):
    """A worksheet of olivia's shared with carl, with compute cells of ``inputs`` (and a
    text cell of ``text_cell`` last): its URL and the cells' ids."""
    with site['nb'].transaction() as root:
        olivia = root.user_by_login('olivia')
        ws = olivia.create_worksheet(name)
        first = ws.ordered_cells()[0]
        first.input = inputs[0]
        ids = [first.id] + [ws.add_cell('compute', text).id for text in inputs[1:]]
        if text_cell is not None:
            ids.append(ws.add_cell('text', text_cell).id)
        ws.share([user_principal(root.user_by_login('carl').id)], [])
        return '%s/home/olivia/%s/' % (site['base'], ws.__name__), ids


def stored(site, url):
    """The worksheet's cells as the database has them: [(id, input)] in order."""
    number = url.rstrip('/').rsplit('/', 1)[1]
    with site['nb'].transaction() as root:
        ws = root.user_by_login('olivia')[number]
        return [(c.id, c.input) for c in ws.ordered_cells()]


def open_page(page, url):
    page.goto(url)
    page.wait_for_function("() => document.getElementById('worksheet').dataset.ready === 'true'")


def text(page, cell_id):
    return page.evaluate('id => sagenb.getInput(id)', cell_id)


def wait_text(page, cell_id, expected):
    page.wait_for_function('([id, t]) => sagenb.getInput(id) === t', arg=[cell_id, expected],
                           timeout=ARRIVES)


def wait_saved(page, cell_id, expected):
    """The window's cell has ``expected`` saved (the server answered it)."""
    page.wait_for_function(
        '([id, t]) => { const c = sagenb.cells.get(id); return c && c.savedInput === t'
        ' && !c.isDirty(); }', arg=[cell_id, expected], timeout=ARRIVES)


def put_cursor(page, cell_id, anchor, head=None):
    page.evaluate("""([id, anchor, head]) => {
        const view = sagenb.cells.get(id).view;
        view.focus();
        view.dispatch({selection: {anchor, head: head === null ? anchor : head}});
    }""", [cell_id, anchor, head])


def selection(page, cell_id):
    return page.evaluate("""id => {
        const s = sagenb.cells.get(id).view.state.selection.main;
        return [s.anchor, s.head];
    }""", cell_id)


def type_at(page, cell_id, pos, keys):
    put_cursor(page, cell_id, pos)
    page.keyboard.type(keys)


def leave_editor(page):
    """Focus off the editors (their blur saves)."""
    page.evaluate('() => document.activeElement && document.activeElement.blur()')


class Held:
    """A window's saves (PATCH of cells) held until ``release``."""

    def __init__(self, page):
        self.page = page
        self.routes = []
        page.route('**/cells/*', self.handle)

    def handle(self, route):
        if route.request.method == 'PATCH':
            self.routes.append(route)
        else:
            route.continue_()

    def wait(self, count=1):
        for _ in range(300):
            if len(self.routes) >= count:
                return
            self.page.wait_for_timeout(50)
        raise AssertionError('the window sent no save to hold')

    def release(self):
        routes, self.routes = self.routes, []
        for route in routes:
            route.continue_()
        self.page.unroute('**/cells/*', self.handle)


def test_edits_new_moved_deleted_cells_and_a_rename_reach_the_other_window(windows, site):
    a, b = windows
    url, (c0, c1, t) = worksheet(site, 'live one', ['x = 1\ny = 2\nz = 3', 'a = 1'], 'Hello')
    open_page(a, url)
    b.set_viewport_size({'width': 900, 'height': 260})
    open_page(b, url)

    # Carl's selection in the first cell ("z = 3" selected on line 3), then unsaved
    # typing in the second, which keeps his focus; the page scrolled down to it.
    put_cursor(b, c0, 12, 17)
    held = Held(b)
    type_at(b, c1, 5, '  # carl')
    held.wait()
    b.evaluate('() => window.scrollTo(0, document.scrollingElement.scrollHeight)')
    where = "id => sagenb.cells.get(id).el.getBoundingClientRect().top"
    top = b.evaluate(where, c1)
    assert b.evaluate('() => window.scrollY') > 0

    # Olivia adds a line above carl's selection and saves.
    type_at(a, c0, 0, 'w = 0\n')
    leave_editor(a)
    wait_saved(a, c0, 'w = 0\nx = 1\ny = 2\nz = 3')
    wait_text(b, c0, 'w = 0\nx = 1\ny = 2\nz = 3')
    # His selection moved with the text (still "z = 3"), his typing and focus stayed,
    # and the cell he types in stayed where it was on the screen.
    assert selection(b, c0) == [18, 23]
    assert text(b, c1) == 'a = 1  # carl'
    assert b.evaluate("id => sagenb.cells.get(id).el.contains(document.activeElement)", c1)
    assert abs(b.evaluate(where, c1) - top) < 2
    held.release()
    wait_saved(b, c1, 'a = 1  # carl')
    wait_text(a, c1, 'a = 1  # carl')

    # A text cell edited: shown rendered.
    a.evaluate('id => sagenb.setInput(id, "# Title")', t)
    a.locator('.cell[data-cell-id="%d"] [data-action=save-text]' % t).click()
    b.locator('.cell[data-cell-id="%d"] .text-rendered h1' % t).wait_for(timeout=ARRIVES)
    assert b.locator('.cell[data-cell-id="%d"] .text-rendered' % t).inner_text() == 'Title'

    # A new cell below the second, typed in; then moved up; the name changes.
    a.locator('.cell[data-cell-id="%d"] [data-action=add-below]' % c1).click()
    a.keyboard.type('new = 5')
    leave_editor(a)
    a.wait_for_function('() => sagenb.page.actions.allCells().every(c => c.id !== null'
                        ' && !c.isDirty())')
    c2 = a.evaluate('() => sagenb.page.actions.allCells()[2].id')
    order = ("() => [...document.querySelectorAll('#cells > .cell')]"
             ".map(e => e.dataset.cellId).join(' ')")
    b.wait_for_function('o => (%s)() === o' % order, arg='%d %d %d %d' % (c0, c1, c2, t),
                        timeout=ARRIVES)
    wait_text(b, c2, 'new = 5')
    a.locator('.cell[data-cell-id="%d"] [data-action=move-up]' % c2).click()
    b.wait_for_function('o => (%s)() === o' % order, arg='%d %d %d %d' % (c0, c2, c1, t),
                        timeout=ARRIVES)

    a.once('dialog', lambda d: d.accept('Renamed live'))
    a.locator('[data-role=worksheet-name]').click()
    b.wait_for_function("() => document.querySelector('[data-role=worksheet-name]')"
                        ".textContent === 'Renamed live'", timeout=ARRIVES)

    # A clean cell someone deletes just goes away.
    a.locator('.cell[data-cell-id="%d"] [data-action=delete]' % c2).click()
    b.wait_for_function('id => !sagenb.cells.has(id) && !document.querySelector('
                        '`.cell[data-cell-id="${id}"]`)', arg=c2, timeout=ARRIVES)
    assert b.locator('[data-role=cell-deleted]').count() == 0
    final = [(c0, 'w = 0\nx = 1\ny = 2\nz = 3'), (c1, 'a = 1  # carl'), (t, '# Title')]
    assert stored(site, url) == final

    # A version the server does not know: the whole worksheet comes ("full"), the same.
    b.evaluate('() => { sagenb.page.version = 10 ** 9; sagenb.page.live.refreshNow(); }')
    b.wait_for_function('() => sagenb.page.version < 10 ** 9', timeout=ARRIVES)
    assert b.evaluate(order) == '%d %d %d' % (c0, c1, t)
    assert [(i, text(b, i) if i != t else b.evaluate('id => sagenb.cells.get(id).savedInput', t))
            for i in (c0, c1, t)] == final


def test_one_cell_edited_on_both_sides_merges_or_shows_the_conflict(windows, site):
    a, b = windows
    url, (c0,) = worksheet(site, 'live two', ['a = 1\nb = 2\nc = 3'])
    open_page(a, url)
    open_page(b, url)

    # Different lines: both edits stay, in both windows.
    held = Held(b)
    type_at(b, c0, 17, '0')  # c = 30
    held.wait()
    type_at(a, c0, 5, '0')  # a = 10
    leave_editor(a)
    wait_saved(a, c0, 'a = 10\nb = 2\nc = 3')
    held.release()
    merged = 'a = 10\nb = 2\nc = 30'
    wait_saved(b, c0, merged)
    wait_text(b, c0, merged)
    wait_text(a, c0, merged)
    # His cursor stayed after what he typed.
    assert selection(b, c0) == [19, 19]

    # The same line: carl's save is refused and shown as a conflict; he edits his text
    # by hand and keeps it.
    held = Held(b)
    type_at(b, c0, 12, '2')  # b = 22
    held.wait()
    type_at(a, c0, 12, '9')  # b = 29
    leave_editor(a)
    wait_saved(a, c0, 'a = 10\nb = 29\nc = 30')
    held.release()
    conflict = b.locator('.cell[data-cell-id="%d"] [data-role=conflict]' % c0)
    conflict.wait_for(timeout=ARRIVES)
    assert conflict.locator('[data-role=conflict-mine]').inner_text() == 'a = 10\nb = 22\nc = 30'
    assert conflict.locator('[data-role=conflict-theirs]').inner_text() == 'a = 10\nb = 29\nc = 30'
    # Nothing typed is lost meanwhile, nor saved over theirs.
    assert text(b, c0) == 'a = 10\nb = 22\nc = 30'
    assert stored(site, url) == [(c0, 'a = 10\nb = 29\nc = 30')]
    type_at(b, c0, 13, '2')  # b = 222, by hand
    b.wait_for_timeout(1500)  # past the autosave: held while the conflict is shown
    assert stored(site, url) == [(c0, 'a = 10\nb = 29\nc = 30')]
    conflict.locator('[data-conflict=keep-mine]').click()
    wait_saved(b, c0, 'a = 10\nb = 222\nc = 30')
    wait_text(a, c0, 'a = 10\nb = 222\nc = 30')
    assert conflict.count() == 0

    # Again, and this time he takes theirs.
    held = Held(b)
    type_at(b, c0, 6, '1')  # a = 101
    held.wait()
    type_at(a, c0, 6, '7')  # a = 107
    leave_editor(a)
    wait_saved(a, c0, 'a = 107\nb = 222\nc = 30')
    held.release()
    conflict.wait_for(timeout=ARRIVES)
    conflict.locator('[data-conflict=take-theirs]').click()
    wait_saved(b, c0, 'a = 107\nb = 222\nc = 30')
    assert conflict.count() == 0
    b.wait_for_timeout(1200)  # nothing else is saved
    assert stored(site, url) == [(c0, 'a = 107\nb = 222\nc = 30')]


def test_a_cell_deleted_while_the_other_types_in_it_is_restored_as_a_new_cell(windows, site):
    a, b = windows
    url, (c0, c1) = worksheet(site, 'live three', ['keep = 1', 'doomed = 2'])
    open_page(a, url)
    open_page(b, url)
    held = Held(b)
    type_at(b, c1, 10, '\nmore = 3')
    held.wait()
    a.locator('.cell[data-cell-id="%d"] [data-action=delete]' % c1).click()
    gone = b.locator('.cell[data-cell-id="%d"] [data-role=cell-deleted]' % c1)
    gone.wait_for(timeout=ARRIVES)
    held.release()  # the save of a deleted cell: 404, the text stays
    b.wait_for_timeout(500)
    assert text(b, c1) is None  # no longer one of the worksheet's cells...
    assert b.locator('.cell[data-cell-id="%d"] .cm-content' % c1).inner_text() == \
        'doomed = 2\nmore = 3'  # ...but its text is on the page
    gone.locator('[data-orphan=restore]').click()
    b.wait_for_function('() => sagenb.page.actions.allCells().length === 2 &&'
                        ' sagenb.page.actions.allCells().every(c => c.id !== null)')
    restored = b.evaluate('() => sagenb.page.actions.allCells()[1].id')
    assert restored not in (c0, c1)
    wait_text(a, restored, 'doomed = 2\nmore = 3')
    assert stored(site, url) == [(c0, 'keep = 1'), (restored, 'doomed = 2\nmore = 3')]


def test_an_offline_window_keeps_its_edits_and_merges_them_when_back(windows, site):
    a, b = windows
    url, (c0,) = worksheet(site, 'live four', ['p = 1\nq = 2\nr = 3'])
    open_page(a, url)
    open_page(b, url)
    b.context.set_offline(True)
    try:
        type_at(b, c0, 17, '0')  # r = 30
        leave_editor(b)
        type_at(a, c0, 5, '0')  # p = 10
        leave_editor(a)
        wait_saved(a, c0, 'p = 10\nq = 2\nr = 3')
        a.locator('.cell[data-cell-id="%d"] [data-action=add-below]' % c0).click()
        a.keyboard.type('s = 4')
        leave_editor(a)
        a.wait_for_function('() => sagenb.page.actions.allCells().every(c => c.id !== null'
                            ' && !c.isDirty())')
        c1 = a.evaluate('() => sagenb.page.actions.allCells()[1].id')
        b.wait_for_timeout(3000)  # offline for a while: its saves fail, its text stays
        assert text(b, c0) == 'p = 1\nq = 2\nr = 30'
        assert b.evaluate('id => sagenb.cells.get(id).isDirty()', c0)
    finally:
        b.context.set_offline(False)
    merged = 'p = 10\nq = 2\nr = 30'
    wait_saved(b, c0, merged)
    wait_text(b, c1, 's = 4')
    wait_text(a, c0, merged)
    assert stored(site, url) == [(c0, merged), (c1, 's = 4')]


def test_a_re_run_in_one_window_shows_its_new_output_in_the_other(windows, site):
    """Olivia runs a cell, then runs it again unchanged (real Sage): carl's window shows
    each result, the second too, though the cell's input never changed."""
    a, b = windows
    counter = 'k = globals().get("k", 0) + 1\nk'
    url, (cell,) = worksheet(site, 'live rerun', [counter])
    open_page(a, url)
    open_page(b, url)
    output = '.cell[data-cell-id="%d"] .output' % cell
    shows = "([sel, t]) => { const el = document.querySelector(sel); " \
            "return el && el.textContent.trim() === t; }"
    for expected in ('1', '2'):
        a.locator('.cell[data-cell-id="%d"] [data-action=evaluate]' % cell).click()
        a.wait_for_function(shows, arg=[output, expected], timeout=120_000)
        b.wait_for_function(shows, arg=[output, expected], timeout=ARRIVES)


def test_outputs_cleared_in_one_window_go_in_the_other(windows, site):
    """Olivia clears one cell's output, then every output: carl's window takes each
    clear from its poll of the worksheet (before, it kept the old outputs until a
    reload)."""
    a, b = windows
    url, cells = worksheet(site, 'live clear', ['1 + 1', '2 + 2'])
    number = url.rstrip('/').rsplit('/', 1)[1]
    with site['nb'].transaction() as root:
        ws = root.user_by_login('olivia')[number]
        for count, (cell_id, value) in enumerate(zip(cells, ('2', '4'), strict=True), 1):
            ws.cells[str(cell_id)].output.update('done', [{
                'output_type': 'execute_result', 'execution_count': count, 'metadata': {},
                'data': {'text/plain': value}}], execution_count=count)
    open_page(a, url)
    open_page(b, url)
    output = '.cell[data-cell-id="%d"] .output'
    shows = "([sel, t]) => { const el = document.querySelector(sel); " \
            "return el && el.textContent.trim() === t; }"
    for cell_id, value in zip(cells, ('2', '4'), strict=True):
        b.wait_for_function(shows, arg=[output % cell_id, value], timeout=ARRIVES)
    a.evaluate('id => sagenb.cells.get(id).clear()', cells[0])
    b.wait_for_function(shows, arg=[output % cells[0], ''], timeout=ARRIVES)
    assert b.locator(output % cells[1]).inner_text().strip() == '4'
    a.locator('[data-action=clear-all]').click()
    b.wait_for_function(shows, arg=[output % cells[1], ''], timeout=ARRIVES)


def test_a_page_alone_holds_no_long_poll_until_someone_arrives(windows, site):
    """Olivia's page, alone on its worksheet, asks ``?since=`` only with ``wait=0`` (it
    holds none of the server's threads); once carl opens the worksheet it learns of him
    at its next heartbeat and long polls, and carl's edit reaches it."""
    a, b = windows
    url, (cell,) = worksheet(site, 'live alone', ['x = 1'])
    path = url.split('://', 1)[1].split('/', 1)[1]
    waits = []

    def seen(request):
        if path in request.url and 'since=' in request.url:
            waits.append(parse_qs(urlsplit(request.url).query)['wait'][0])

    a.on('request', seen)
    try:
        open_page(a, url)
        a.wait_for_timeout(7000)  # more than a heartbeat of a page alone (5 s)
        assert waits and set(waits) == {'0'}, waits
        assert a.evaluate('() => sagenb.page.presence.alone') is True
        open_page(b, url)
        a.wait_for_function('() => !sagenb.page.presence.alone', timeout=ARRIVES)
        for _ in range(100):
            if waits[-1] != '0':
                break
            a.wait_for_timeout(100)
        assert waits[-1] == '25', waits
        b.evaluate('([id, t]) => sagenb.api("PATCH", "cells/" + id, {input: t})',
                   [cell, 'x = 2'])
        wait_text(a, cell, 'x = 2')
    finally:
        a.remove_listener('request', seen)
