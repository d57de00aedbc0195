"""The keyboard people arrive with (issue 22), in Chromium: Shift-Enter moves on, split,
join, deleting an empty cell and undoing a deletion, the arrows between cells, the
shortcut help, and evaluating from a cell down with the queue shown; and, with the
server's answers slow to arrive (SLOW), the keyboard and the cells left where they are."""
from ..support.browser import log_in


def new_worksheet(page, base):
    log_in(page, base)
    page.click('[data-action=new-worksheet]')
    page.wait_for_url(base + '/home/alice/*/')
    page.wait_for_selector('#worksheet[data-ready=true]')


def inputs(page):
    return page.evaluate("() => sagenb.page.actions.allCells().map((c) => c.getInput())")


def focused_cell(page):
    """The index of the cell the keyboard is in (-1: none)."""
    return page.evaluate("""() => sagenb.page.actions.allCells()
        .findIndex((c) => c.el.contains(document.activeElement))""")


def saved(page):
    """The cells' (type, input) as the server has them."""
    page.evaluate("() => sagenb.page.actions.saveAll()")
    data = page.evaluate("() => sagenb.api('GET', './')")
    return [(c['type'], c['input']) for c in data['cells']]


def test_newcomer_shift_enter_then_evaluate_from_here_down(page, live_server):
    base = live_server
    new_worksheet(page, base)
    page.locator('.cell .cm-content').first.click()
    page.keyboard.type('factor(2^64-1)')
    page.keyboard.press('Shift+Enter')
    # The next line goes into a new cell, not onto the end of the first one.
    page.keyboard.type('2^10')
    page.keyboard.press('Shift+Enter')
    cells = page.locator('#cells > .cell')
    page.wait_for_function("() => document.querySelectorAll('#cells > .cell').length === 3")
    assert focused_cell(page) == 2
    first = cells.nth(0)
    first.locator('.cell-status.finished').wait_for()
    assert page.evaluate("() => sagenb.page.actions.allCells()[0].data.outputs[0].data['text/plain']") \
        == '3 * 5 * 17 * 257 * 641 * 65537 * 6700417'
    cells.nth(1).locator('.cell-status.finished').wait_for()
    assert cells.nth(1).locator('.output').inner_text().strip() == '1024'
    assert inputs(page) == ['factor(2^64-1)', '2^10', '']

    # Ctrl-Enter evaluates and stays.
    page.keyboard.type('x = 7')
    page.keyboard.press('Control+Enter')
    cells.nth(2).locator('.cell-status.finished').wait_for()
    assert page.locator('#cells > .cell').count() == 3 and focused_cell(page) == 2

    # Evaluate from here down: the cell and those below it, the queue in the toolbar, the
    # running cell's elapsed time.
    page.keyboard.press('Shift+Enter')
    page.keyboard.type('sleep(2); x += 1')
    page.keyboard.press('Alt+Enter')
    page.keyboard.type('sleep(2); x * 10')
    page.keyboard.press('Control+Enter')
    cells.nth(4).locator('.cell-status.finished').wait_for()
    assert cells.nth(4).locator('.output').inner_text().strip() == '80'
    above = cells.nth(2).locator('.prompt').first.inner_text()
    cells.nth(3).locator('[data-action=evaluate-below]').click()
    queue = page.locator('[data-role=queue]')
    page.wait_for_function(
        "() => document.querySelector('[data-role=queue]').textContent === '1 running, 1 waiting'")
    page.wait_for_function("""() => document.querySelectorAll('#cells > .cell')[3]
        .querySelector('.cell-status.running').textContent === 'running\u2026 1s'""")
    cells.nth(4).locator('.output').get_by_text('90').wait_for()
    page.wait_for_function("() => document.querySelector('[data-role=queue]').hidden")
    assert queue.text_content() == ''
    # The cells above were not evaluated again.
    assert cells.nth(2).locator('.prompt').first.inner_text() == above


def test_split_join_arrows_delete_and_undo(page, live_server):
    base = live_server
    new_worksheet(page, base)
    page.locator('.cell .cm-content').first.click()
    page.keyboard.type('a = 1\nb = 2')
    page.keyboard.press('ArrowUp')
    page.keyboard.press('End')
    # Split at the cursor (the newline at the cut goes).
    page.keyboard.press('Control+;')
    page.wait_for_function("() => sagenb.page.actions.allCells().length === 2")
    assert inputs(page) == ['a = 1', 'b = 2'] and focused_cell(page) == 1
    page.keyboard.type('c')  # the cursor is at the start of the new cell
    assert inputs(page) == ['a = 1', 'cb = 2']
    page.keyboard.press('Backspace')

    # The arrows go between cells at the first and last lines.
    page.keyboard.press('ArrowUp')
    assert focused_cell(page) == 0
    page.keyboard.press('ArrowDown')
    assert focused_cell(page) == 1
    page.keyboard.press('ArrowDown')  # the last line of the last cell: stays
    assert focused_cell(page) == 1

    # Join with the cell above at the start; the cursor where they meet.
    page.keyboard.press('Home')
    page.keyboard.press('Control+Backspace')
    page.wait_for_function("() => sagenb.page.actions.allCells().length === 1")
    page.keyboard.type('#')
    assert inputs(page) == ['a = 1\n#b = 2']
    assert saved(page) == [('compute', 'a = 1\n#b = 2')]

    # Split at the end makes an empty cell; Backspace there deletes it, the cursor goes to
    # the end of the cell above, and Alt-Shift-Z brings it back.
    page.keyboard.press('Control+End')
    page.keyboard.press('Control+;')
    page.wait_for_function("() => sagenb.page.actions.allCells().length === 2")
    page.keyboard.type('y = 3')
    page.wait_for_function("() => sagenb.page.actions.allCells().every((c) => c.id !== null)")
    page.locator('#cells > .cell').nth(0).locator('[data-action=delete]').click()
    page.locator('[data-role=undo-toast]').wait_for()
    page.wait_for_function("() => sagenb.page.actions.allCells().length === 1")
    assert inputs(page) == ['y = 3']
    page.keyboard.press('Alt+Shift+Z')
    page.wait_for_function("() => sagenb.page.actions.allCells().length === 2")
    assert inputs(page) == ['a = 1\n#b = 2', 'y = 3']
    page.keyboard.press('Control+End')
    page.keyboard.press('Control+;')
    page.wait_for_function("() => sagenb.page.actions.allCells().length === 3")
    page.keyboard.press('Backspace')
    page.wait_for_function("() => sagenb.page.actions.allCells().length === 2")
    assert focused_cell(page) == 0
    page.keyboard.type('!')
    assert inputs(page) == ['a = 1\n#b = 2!', 'y = 3']
    # The toast's Undo brings the empty cell back too; z outside an editor as well.
    page.locator('[data-role=undo-delete]').click()
    page.wait_for_function("() => sagenb.page.actions.allCells().length === 3")
    assert inputs(page) == ['a = 1\n#b = 2!', '', 'y = 3']
    page.locator('#cells > .cell').nth(2).locator('[data-action=delete]').click()
    page.wait_for_function("() => sagenb.page.actions.allCells().length === 2")
    page.locator('.ws-name').focus()
    page.evaluate("() => document.activeElement.blur()")
    page.keyboard.press('z')
    page.wait_for_function("() => sagenb.page.actions.allCells().length === 3")
    assert saved(page) == [('compute', 'a = 1\n#b = 2!'), ('compute', ''), ('compute', 'y = 3')]

    # A text cell: Shift-Enter saves it and goes to the next compute cell.
    page.locator('#cells > .cell').nth(0).locator('[data-action=add-text-below]').click()
    page.locator('.cell textarea').first.wait_for()
    page.keyboard.type('Some *notes*')
    page.keyboard.press('Shift+Enter')
    page.locator('.text-cell em').wait_for()
    # The text is shown once its save is answered; the keyboard moved on at the key.
    page.wait_for_function("() => sagenb.page.actions.allCells()"
                           ".findIndex((c) => c.el.contains(document.activeElement)) === 2",
                           timeout=5000)
    page.reload()
    page.wait_for_selector('#worksheet[data-ready=true]')
    assert saved(page) == [('compute', 'a = 1\n#b = 2!'), ('text', 'Some *notes*'),
                           ('compute', ''), ('compute', 'y = 3')]


def test_shortcut_help_lists_every_key(page, live_server):
    base = live_server
    new_worksheet(page, base)
    page.keyboard.press('h')
    dialog = page.locator('[data-role=shortcuts]')
    dialog.wait_for()
    text = dialog.inner_text()
    for key in ('Shift-Enter', 'Ctrl-Enter', 'Alt-Enter', 'Ctrl-Shift-Enter', 'Ctrl-;',
                'Ctrl-Backspace', 'Alt-Shift-Z', 'Tab', 'Escape'):
        assert key in text, key
    assert 'Split the cell at the cursor' in text and 'This list of shortcuts' in text
    # One row for each row of the table the key handlers are made from.
    counts = page.evaluate("""async () => {
        const { KEYS } = await import(new URL('page/keys.js', document.querySelector(
            'script[type=module][src*=worksheet]').src).href);
        return [KEYS.filter((r) => r.compute || r.text).length, KEYS.filter((r) => r.page).length,
                document.querySelectorAll('[data-role=keys-in-cells] tbody tr').length,
                document.querySelectorAll('[data-role=keys-on-page] tbody tr').length];
    }""")
    assert counts[0] == counts[2] and counts[1] == counts[3] and counts[0] > 8
    page.keyboard.press('Escape')
    dialog.wait_for(state='hidden')
    # Typing "h" in a cell is typing.
    page.locator('.cell .cm-content').first.click()
    page.keyboard.type('h')
    assert not dialog.is_visible() and inputs(page) == ['h']
    page.click('[data-action=shortcuts]')
    dialog.wait_for()
    page.click('[data-role=keys-close]')
    dialog.wait_for(state='hidden')


def test_a_long_worksheet_makes_editors_near_the_screen_only(page, live_server):
    """A worksheet of many cells (bench/page.py measures 1,000) opens without an editor
    for each cell: the far ones are made when they come near, and work as the others."""
    import json
    base = live_server
    log_in(page, base)
    notebook = {'cells': [{'cell_type': 'code', 'source': 'x_%d = %d' % (k, k), 'metadata': {},
                           'outputs': [], 'execution_count': None} for k in range(150)],
                'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5}
    token = page.evaluate("document.querySelector('meta[name=csrf-token]').content")
    res = page.request.post(base + '/home/alice/import', headers={
        'X-CSRF-Token': token, 'Accept': 'application/json'}, multipart={
        'file': {'name': 'long.ipynb', 'mimeType': 'application/json',
                 'buffer': json.dumps(notebook).encode()}})
    assert res.status == 201, res.text()
    page.goto(base + res.json()['worksheets'][0]['url'])
    page.wait_for_selector('#worksheet[data-ready=true]')
    cells = page.locator('#cells > .cell')
    assert cells.count() == 150
    cells.first.locator('.cm-editor').wait_for()
    assert page.locator('.cm-editor').count() < 100
    assert inputs(page)[-1] == 'x_149 = 149'
    # Far cells show their input; scrolled to, they get their editor.
    last = cells.last
    assert last.locator('.cell-input-static').inner_text() == 'x_149 = 149'
    last.scroll_into_view_if_needed()
    last.locator('.cm-editor').wait_for()
    last.locator('.cm-content').click()
    page.keyboard.press('Control+End')
    page.keyboard.type(' + 1')
    assert inputs(page)[-1] == 'x_149 = 149 + 1'
    # The arrows go up into a cell whose editor was not made yet.
    page.evaluate("() => sagenb.page.actions.allCells()[60].focus('end')")
    page.keyboard.press('ArrowUp')
    assert focused_cell(page) == 59
    page.keyboard.type('#')
    assert inputs(page)[59] == 'x_59 = 59#'



# The page's answers from the server, received, are handed to it `ms[kind]` later (a
# loaded server: an answer computed, then slow to arrive), its requests sent `before[kind]`
# later; kind: "since" for the worksheet's `?since=` polls, else the method.
# `answered[kind]`: answers received of requests sent after `mark`; `inflight[kind]`:
# requests not handed over yet.
SLOW = """(() => {
    const real = window.fetch.bind(window);
    const slow = window.__slow = { ms: {}, before: {}, sent: 0, mark: 0, answered: {}, inflight: {} };
    window.fetch = async (input, init) => {
        const url = String(input && input.url ? input.url : input);
        const kind = url.includes('?since=') ? 'since' : ((init && init.method) || 'GET').toUpperCase();
        const seq = ++slow.sent;
        const ms = slow.ms[kind] || 0;
        slow.inflight[kind] = (slow.inflight[kind] || 0) + 1;
        try {
            if (slow.before[kind]) await new Promise((resolve) => setTimeout(resolve, slow.before[kind]));
            const resp = await real(input, init);
            if (seq > slow.mark) slow.answered[kind] = (slow.answered[kind] || 0) + 1;
            if (ms) await new Promise((resolve) => setTimeout(resolve, ms));
            return resp;
        } finally {
            slow.inflight[kind]--;
        }
    };
})()"""


def caught_up(page):
    """Until the page has the worksheet's latest version, with no `?since=` on its way."""
    for _ in range(300):
        if page.evaluate("""async () => {
                if (window.__slow.inflight.since) return false;
                if ((await sagenb.api('GET', './')).version === sagenb.page.version) return true;
                sagenb.page.live.refreshNow();
                return false;
            }"""):
            return
        page.wait_for_timeout(100)
    raise AssertionError('the page never caught up with the worksheet')


def cell_made_then_a_slow_poll(page):
    """A compute cell `b = 2` made after the first, then a poll asked at once, whose
    answer (it lists the cell) reaches the page 2 s later: returns once it was answered
    by the server (the page has not seen it yet)."""
    page.evaluate("""async () => {
        const [a] = sagenb.page.actions.allCells();
        window.__slow.ms.since = 2000;
        await sagenb.page.actions.addCell({ type: 'compute', after: a, input: 'b = 2', focus: false }).ready;
        window.__slow.mark = window.__slow.sent;
        sagenb.page.live.refreshNow();
    }""")
    page.wait_for_function("() => window.__slow.answered.since > 0")


def kinds(page):
    return page.evaluate("() => sagenb.page.actions.allCells().map((c) => c.data.type)")


def test_a_text_cell_being_written_keeps_its_place_and_the_keyboard(page, live_server):
    """A late `?since=` answer, computed before a text cell was made here, leaves the cell
    where it is (it used to go to the end, and back with the next answer, the keyboard
    lost: tests/browser/test_keyboard.py::test_split_join_arrows_delete_and_undo failed so
    once under load); a cell moved while its text is being written keeps the keyboard."""
    page.add_init_script(SLOW)
    new_worksheet(page, live_server)
    caught_up(page)
    # A cell made here, which the page's poll has not brought yet; the poll asked now is
    # answered before the text cell below exists, and handed to the page 2 s later.
    cell_made_then_a_slow_poll(page)
    # Every order of the cells the page shows from now on.
    page.evaluate("""() => {
        window.__orders = [];
        new MutationObserver(() => window.__orders.push(sagenb.page.actions.allCells().map((c) => c.data.type)))
            .observe(document.getElementById('cells'), { childList: true });
    }""")
    page.locator('#cells > .cell').nth(0).locator('[data-action=add-text-below]').click()
    page.locator('.cell textarea').first.wait_for()
    page.keyboard.type('Some *notes*')
    page.wait_for_function("() => sagenb.page.actions.allCells().every((c) => c.id !== null)")
    caught_up(page)
    assert page.evaluate("() => window.__orders") == [['compute', 'text', 'compute']]
    assert focused_cell(page) == 1

    # Someone moves the cell above down while the text is written: the keyboard stays.
    page.evaluate("""() => sagenb.api('POST', `cells/${sagenb.page.actions.allCells()[0].id}/move`,
                                      { direction: 'down' })""")
    caught_up(page)
    assert kinds(page) == ['text', 'compute', 'compute']
    assert focused_cell(page) == 0
    page.keyboard.type(' too')
    assert inputs(page) == ['Some *notes* too', '', 'b = 2']
    page.keyboard.press('Shift+Enter')
    page.locator('.text-cell em').wait_for()
    assert focused_cell(page) == 1
    assert saved(page) == [('text', 'Some *notes* too'), ('compute', ''), ('compute', 'b = 2')]


def test_a_slow_deletion_does_not_take_the_keyboard_back(page, live_server):
    """The cell after a deleted one gets the keyboard when the server answers, unless the
    person went on to type elsewhere meanwhile."""
    page.add_init_script(SLOW)
    new_worksheet(page, live_server)
    page.evaluate("""async () => {
        const actions = sagenb.page.actions;
        const [y] = actions.allCells();
        const x = actions.addCell({ type: 'compute', after: y, input: 'x', focus: false });
        await actions.addCell({ type: 'compute', after: x, input: 'z', focus: false }).ready;
        await x.ready;
        // The deletion's answer first (the poll's would take the cell away before it).
        window.__slow.ms.DELETE = 1500;
        window.__slow.ms.since = 4000;
    }""")
    cells = page.locator('#cells > .cell')
    cells.nth(1).locator('[data-action=delete]').click()
    cells.nth(0).locator('.cm-content').click()
    page.keyboard.type('a')
    page.wait_for_function("() => sagenb.page.actions.allCells().length === 2 && !window.__slow.inflight.DELETE")
    page.keyboard.type('b')
    assert inputs(page) == ['ab', 'z'] and focused_cell(page) == 0
    # Nowhere else: the keyboard goes to the cell that took the deleted one's place.
    cells.nth(0).locator('[data-action=delete]').click()
    page.wait_for_function("() => sagenb.page.actions.allCells().length === 1 && !window.__slow.inflight.DELETE")
    assert focused_cell(page) == 0
    page.keyboard.type('#')
    assert inputs(page) == ['#z']
    # The page's poll takes the cell away before the deletion is answered: the same.
    page.evaluate("""async () => {
        const actions = sagenb.page.actions;
        const [z] = actions.allCells();
        const u = actions.addCell({ type: 'compute', after: z, input: 'u', focus: false });
        await actions.addCell({ type: 'compute', after: u, input: 'v', focus: false }).ready;
        await u.ready;
        window.__slow.ms.since = 0;
    }""")
    caught_up(page)
    page.evaluate("() => { window.__slow.mark = window.__slow.sent; }")
    cells.nth(1).locator('[data-action=delete]').click()
    page.wait_for_function("() => window.__slow.answered.DELETE > 0")
    page.evaluate("() => sagenb.page.live.refreshNow()")
    page.wait_for_function("() => sagenb.page.actions.allCells().length === 2")
    assert page.evaluate("() => window.__slow.inflight.DELETE") == 1
    page.wait_for_function("() => !window.__slow.inflight.DELETE")
    assert focused_cell(page) == 1
    page.keyboard.type('!')
    assert inputs(page) == ['#z', '!v']


def test_a_late_answer_does_not_undo_a_saved_text_cell(page, live_server):
    """A `?since=` answer computed before a text cell's Shift-Enter saved it, and handed
    over after, does not show the text from before (the cell showed empty until the next
    answer, and an edit started then began from the empty text)."""
    page.add_init_script(SLOW)
    new_worksheet(page, live_server)
    caught_up(page)
    page.evaluate("() => { window.__slow.ms.since = 2000; }")
    page.locator('#cells > .cell').nth(0).locator('[data-action=add-text-below]').click()
    page.locator('.cell textarea').first.wait_for()
    page.wait_for_function("() => sagenb.page.actions.allCells().every((c) => c.id !== null)")
    # The server answers the poll (the text cell empty) before the save.
    page.evaluate("""() => {
        window.__slow.mark = window.__slow.sent;
        sagenb.page.live.refreshNow();
    }""")
    page.wait_for_function("() => window.__slow.answered.since > 0")
    page.keyboard.type('Some *notes*')
    page.keyboard.press('Shift+Enter')
    page.locator('.text-cell em').wait_for()
    # What the text cell shows from now on.
    page.evaluate("""() => {
        const shown = document.querySelector('.text-cell .text-rendered');
        window.__shown = [];
        new MutationObserver(() => window.__shown.push(shown.textContent.trim()))
            .observe(shown, { childList: true, subtree: true, characterData: true });
    }""")
    caught_up(page)
    shown = page.evaluate("() => window.__shown")
    assert set(shown) <= {'Some notes'}, shown
    assert page.evaluate("() => sagenb.page.actions.allCells()[1].savedInput") == 'Some *notes*'
    page.locator('.text-cell .text-rendered').dblclick()
    assert page.locator('.text-cell textarea').input_value() == 'Some *notes*'
    assert saved(page) == [('compute', ''), ('text', 'Some *notes*'), ('compute', '')]


def test_a_late_answer_does_not_bring_back_a_deleted_cell(page, live_server):
    """A `?since=` answer computed before this page deleted a cell, and handed over after,
    does not put the cell back (it came back until the next answer, and typing in it
    then said that someone else had deleted it)."""
    page.add_init_script(SLOW)
    new_worksheet(page, live_server)
    caught_up(page)
    # A cell made here, which the answer of the poll asked now lists; it is deleted
    # before the page gets that answer.
    cell_made_then_a_slow_poll(page)
    page.locator('#cells > .cell').nth(1).locator('[data-action=delete]').click()
    page.wait_for_function("() => sagenb.page.actions.allCells().length === 1")
    page.evaluate("""() => {
        window.__inputs = [];
        new MutationObserver(() => window.__inputs.push(sagenb.page.actions.allCells().map((c) => c.getInput())))
            .observe(document.getElementById('cells'), { childList: true });
    }""")
    caught_up(page)
    assert page.evaluate("() => window.__inputs") == [] and inputs(page) == ['']
    # The Undo brings it back as a new cell, which later answers keep.
    page.locator('[data-role=undo-delete]').click()
    page.wait_for_function("() => sagenb.page.actions.allCells().every((c) => c.id !== null)")
    caught_up(page)
    assert inputs(page) == ['', 'b = 2']
    assert saved(page) == [('compute', ''), ('compute', 'b = 2')]


def test_deleting_a_cell_just_typed_in_is_not_someone_elses_deletion(page, live_server):
    """The save of a cell's text as its Delete button is clicked (the editor's blur) goes
    before the deletion: reaching the server after it, its 404 showed the cell as deleted
    by someone else, kept on the page."""
    page.add_init_script(SLOW)
    new_worksheet(page, live_server)
    page.evaluate("""async () => {
        const [a] = sagenb.page.actions.allCells();
        await sagenb.page.actions.addCell({ type: 'compute', after: a, input: 'b', focus: false }).ready;
        window.__slow.before.PATCH = 300;
        window.__slow.ms.DELETE = 1000;
    }""")
    cells = page.locator('#cells > .cell')
    cells.nth(1).locator('.cm-content').click()
    page.keyboard.type(' = 2')
    page.evaluate("() => { window.__slow.mark = window.__slow.sent; }")
    cells.nth(1).locator('[data-action=delete]').click()
    page.wait_for_function("() => window.__slow.answered.DELETE && !window.__slow.inflight.DELETE"
                           " && !window.__slow.inflight.PATCH")
    assert page.locator('[data-role=cell-deleted]').count() == 0
    assert inputs(page) == [''] and saved(page) == [('compute', '')]
    # The Undo brings back what was typed.
    page.locator('[data-role=undo-delete]').click()
    page.wait_for_function("() => sagenb.page.actions.allCells().length === 2")
    assert inputs(page) == ['', 'b = 2']
