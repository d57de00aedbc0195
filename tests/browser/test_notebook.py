"""The notebook experience in a real browser (Playwright + Debian's Chromium, real Sage):
completion, introspection, help pages, percent directives, the worksheet's system, data
files managed in the page, the typeset toggle and ``input()``."""
import re

import pytest

from ..support.browser import log_in

SAGE_TIMEOUT = 120_000  # the first evaluation starts Sage's fork server


@pytest.fixture
def page(browser, live_server):  # noqa: F811
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


def csrf(page):
    return page.locator('meta[name=csrf-token]').get_attribute('content')


def call(page, method, url, body=None):
    """A JSON request with the page's session, as the page's own script sends them."""
    answer = page.request.fetch(
        url, method=method, data=body,
        headers={'Accept': 'application/json', 'X-CSRF-Token': csrf(page)})
    return answer


@pytest.fixture
def worksheet(page, live_server):  # noqa: F811
    """A new worksheet of alice, open in the page; its Sage process stops afterwards."""
    base = live_server
    log_in(page, base)
    page.fill('input[name=name]', 'Notebook features')
    page.click('[data-action=new-worksheet]')
    page.wait_for_url(base + '/home/alice/*/')
    page.wait_for_selector('#worksheet[data-ready=true]')
    url = page.url
    yield url
    try:
        call(page, 'POST', url + 'restart', {})
    except Exception:  # noqa: BLE001 - the page may be gone already
        pass


def expect():
    from playwright.sync_api import expect as _expect
    return _expect


def cells(page):
    return page.locator('.compute-cell')


def set_input(cell, text):
    cell.evaluate('(el, text) => el.cell.setInput(text)', text)


def run(page, cell, text=None):
    """Evaluate a compute cell (typing nothing when ``text`` is None) and wait for it."""
    if text is not None:
        set_input(cell, text)
    cell.locator('.cm-content').click()
    page.keyboard.press('Shift+Enter')
    expect()(cell).to_have_attribute('data-status', re.compile('^(done|error)$'),
                                      timeout=SAGE_TIMEOUT)
    return cell.locator('.output')


def add_cell(page, input_text, url):
    """A compute cell made through the API (the page is reloaded to show it)."""
    answer = call(page, 'POST', url + 'cells', {'input': input_text})
    assert answer.status == 201, answer.text()
    return answer.json()['id']


def editor_text(cell):
    return cell.evaluate('el => el.cell.getInput()')


# --- completion and introspection --------------------------------------------------------

def test_tab_completion_list_single_match_and_indent(page, worksheet):
    cell = cells(page).first
    cell.locator('.cm-content').click()
    page.keyboard.type('fact')
    page.keyboard.press('Tab')
    popup = page.locator('.cm-tooltip-autocomplete')
    popup.wait_for(timeout=SAGE_TIMEOUT)
    labels = popup.locator('.cm-completionLabel').all_inner_texts()
    assert 'factorial' in labels and 'factor' in labels, labels
    # a click on a match inserts it, replacing what was typed
    popup.locator('.cm-completionLabel', has_text=re.compile(r'^factorial$')).click()
    expect()(popup).to_have_count(0)
    assert editor_text(cell) == 'factorial'

    # the keyboard: arrows move, Tab accepts
    page.keyboard.type('; print(fact')
    page.keyboard.press('Tab')
    popup.wait_for()
    for _ in range(len(labels) + 1):
        if popup.locator('li[aria-selected] .cm-completionLabel').inner_text() == 'factor':
            break
        page.keyboard.press('ArrowDown')
    page.keyboard.press('Tab')
    expect()(popup).to_have_count(0)
    assert editor_text(cell) == 'factorial; print(factor)'

    # Escape closes the list and changes nothing
    page.keyboard.press('End')
    page.keyboard.type('; is_pr')
    page.keyboard.press('Tab')
    popup.wait_for()
    page.keyboard.press('Escape')
    expect()(popup).to_have_count(0)
    assert editor_text(cell) == 'factorial; print(factor); is_pr'
    assert cell.get_attribute('data-status') != 'running'

    # a single match is inserted at once, without a list
    set_input(cell, 'integer_ce')
    cell.locator('.cm-content').click()
    page.keyboard.press('End')
    page.keyboard.press('Tab')
    page.wait_for_function(
        "() => document.querySelector('.compute-cell').cell.getInput() === 'integer_ceil'")
    assert popup.count() == 0

    # after a blank, Tab indents as before
    set_input(cell, 'for i in range(3):\n')
    cell.locator('.cm-content').click()
    page.keyboard.press('Control+End')
    page.keyboard.press('Tab')
    assert re.fullmatch(r'for i in range\(3\):\n\s+', editor_text(cell))
    assert popup.count() == 0


def test_completion_while_cells_run_says_busy(page, worksheet):
    first = cells(page).first
    first.locator('.cm-content').click()
    page.keyboard.type('is_pri')
    page.keyboard.press('Tab')  # Sage starts, and answers
    page.locator('.cm-tooltip-autocomplete').wait_for(timeout=SAGE_TIMEOUT)
    page.keyboard.press('Escape')
    page.keyboard.press('Alt+Enter')  # a cell that keeps Sage busy
    page.wait_for_function("() => document.querySelectorAll('.compute-cell').length === 2")
    page.keyboard.type('sleep(60)')
    page.keyboard.press('Shift+Enter')
    second = cells(page).nth(1)
    expect()(second).to_have_attribute('data-status', 'running', timeout=SAGE_TIMEOUT)
    first.locator('.cm-content').click()
    page.keyboard.press('End')
    page.keyboard.press('Tab')
    page.keyboard.type('_x')  # the page is not blocked meanwhile
    note = first.locator('.cell-note')
    expect()(note).to_contain_text('busy', timeout=30_000)
    assert page.locator('.cm-tooltip-autocomplete').count() == 0
    assert editor_text(first) == 'is_pri_x'
    assert page.locator('#message.error').count() == 0 or page.locator('#message').is_hidden()
    call(page, 'POST', worksheet + 'interrupt', {})
    expect()(second).to_have_attribute('data-status', 'error', timeout=SAGE_TIMEOUT)


def test_shift_tab_shows_the_docstring(page, worksheet):
    cell = cells(page).first
    cell.locator('.cm-content').click()
    page.keyboard.type('factor')
    page.keyboard.press('Shift+Tab')
    tip = page.locator('.inspect-tooltip')
    tip.wait_for(timeout=SAGE_TIMEOUT)
    text = tip.inner_text()
    assert 'Return the factorization' in text
    assert 'Signature' in text
    assert '\x1b' not in text and '[31m' not in text and '[39m' not in text
    assert tip.locator('.ansi-red').count() > 0  # the colours are rendered
    assert tip.is_visible()
    # near the cell
    box, cell_box = tip.bounding_box(), cell.bounding_box()
    assert cell_box['y'] <= box['y'] <= cell_box['y'] + cell_box['height'] + 40
    # Escape closes it (and does not interrupt anything)
    page.keyboard.press('Escape')
    expect()(tip).to_have_count(0)
    assert editor_text(cell) == 'factor'
    # Source (as foo?? shows it)
    page.keyboard.press('Shift+Tab')
    tip.wait_for()
    tip.locator('.inspect-source').click()
    expect()(tip).to_have_attribute('data-level', '1')
    assert 'def factor' in tip.inner_text()
    # typing closes it
    cell.locator('.cm-content').click()
    page.keyboard.type('(')
    expect()(tip).to_have_count(0)


def test_help_pages_render_as_text(page, worksheet):
    cell = cells(page).first
    output = run(page, cell, 'factor?')
    help_page = output.locator('.output-page')
    help_page.wait_for()
    text = help_page.inner_text()
    assert 'Signature:' in text and 'Return the factorization' in text
    assert '\x1b' not in text and '[31m' not in text
    assert help_page.locator('.ansi-red').count() > 0
    assert output.locator('iframe').count() == 0
    # long: folded, with a button to see it all
    assert 'folded' in help_page.get_attribute('class')
    folded_height = help_page.bounding_box()['height']
    help_page.locator('.output-page-toggle').click()
    assert 'folded' not in help_page.get_attribute('class')
    assert help_page.bounding_box()['height'] > folded_height

    output = run(page, cell, 'is_prime??')
    source = output.locator('.output-page')
    source.wait_for()
    assert 'def is_prime' in source.inner_text()


# --- percent directives and the worksheet's system -----------------------------------------

def test_hide_hideall_and_auto_markers(page, worksheet):
    url = worksheet
    hidden = add_cell(page, '%hide\nprint("the input is hidden")', url)
    everything = add_cell(page, '%hideall\nprint("all of it is hidden")', url)
    auto = add_cell(page, '%auto\nauto_value = 7', url)
    for cell_id in (hidden, everything):
        answer = call(page, 'POST', url + 'cells/%d/evaluate' % cell_id, {'wait': 60})
        assert answer.json()['status'] == 'done', answer.text()
    page.reload()
    page.wait_for_selector('#worksheet[data-ready=true]')

    cell = page.locator('.cell[data-cell-id="%d"]' % hidden)
    assert cell.locator('.cm-editor').is_hidden()
    bar = cell.locator('.cell-reveal')
    assert bar.is_visible() and '%hide' in bar.inner_text()
    assert 'the input is hidden' in cell.locator('.output').inner_text()
    bar.click()
    assert cell.locator('.cm-editor').is_visible()
    assert bar.is_hidden()
    assert editor_text(cell).startswith('%hide')
    cell.locator('.btn-hide').click()  # and folded again
    assert cell.locator('.cm-editor').is_hidden()

    cell = page.locator('.cell[data-cell-id="%d"]' % everything)
    assert cell.locator('.cm-editor').is_hidden()
    assert cell.locator('.output').is_hidden()
    bar = cell.locator('.cell-reveal')
    assert '%hideall' in bar.inner_text()
    bar.click()
    assert cell.locator('.cm-editor').is_visible()
    assert 'all of it is hidden' in cell.locator('.output').inner_text()

    cell = page.locator('.cell[data-cell-id="%d"]' % auto)
    assert cell.locator('.badge-auto').is_visible()
    assert cell.locator('.cm-editor').is_visible()
    assert page.locator('.badge-auto').count() == 1
    # a marker follows the input as it is typed
    first = cells(page).first
    set_input(first, '%auto\n1')
    expect()(first.locator('.badge-auto')).to_be_visible()
    set_input(first, '1')
    expect()(first.locator('.badge-auto')).to_have_count(0)


def test_system_selector(page, worksheet):
    url = worksheet
    select = page.locator('select[name=system]')
    assert select.input_value() == 'sage'
    values = select.locator('option').evaluate_all('os => os.map(o => o.value)')
    for system in ('sage', 'python', 'gp', 'gap', 'singular', 'sh', 'html', 'latex'):
        assert system in values
    with page.expect_response(lambda r: r.request.method == 'PATCH'):
        select.select_option('python')
    assert call(page, 'GET', url).json()['system'] == 'python'
    cell = cells(page).first
    output = run(page, cell, '2^3')
    expect()(output).to_have_text(re.compile(r'^\s*1\s*$'))
    # back to Sage
    with page.expect_response(lambda r: r.request.method == 'PATCH'):
        select.select_option('sage')
    output = run(page, cell)
    expect()(output).to_have_text(re.compile(r'^\s*8\s*$'))
    # the page shows the worksheet's system when it is not one of the list
    answer = call(page, 'PATCH', url, {'system': 'maxima'})
    assert answer.status == 200
    page.reload()
    assert page.locator('select[name=system]').input_value() == 'maxima'


def test_typeset_toggle(page, worksheet):
    cell = cells(page).first
    box = page.locator('input[name=typeset]')
    assert box.is_checked()
    output = run(page, cell, 'x^2/2')
    math = output.locator('mjx-container')
    math.wait_for()
    with page.expect_response(lambda r: r.request.method == 'PATCH'):
        box.uncheck()
    expect()(math).to_have_count(0)
    expect()(output).to_have_text(re.compile(r'^\s*1/2\*x\^2\s*$'))
    with page.expect_response(lambda r: r.request.method == 'PATCH'):
        box.check()
    math.wait_for()
    assert '1/2*x^2' not in output.inner_text()
    # the choice is the worksheet's: a reload keeps it
    with page.expect_response(lambda r: r.request.method == 'PATCH'):
        box.uncheck()
    page.reload()
    assert not page.locator('input[name=typeset]').is_checked()
    expect()(cells(page).first.locator('.output')).to_have_text(re.compile(r'1/2\*x\^2'))


# --- data files ------------------------------------------------------------------------------

PROGRESS_WATCH = """() => {
  const bar = document.querySelector('[data-role=data-upload-progress]');
  window.__progress = [];
  new MutationObserver(() => window.__progress.push({hidden: bar.hidden, value: bar.value}))
    .observe(bar, {attributes: true});
}"""


def test_data_file_upload_with_progress_then_read_in_a_cell(page, worksheet):
    panel = page.locator('#data-files')
    assert panel.is_visible()  # even without files: it is where they are uploaded
    assert '(0)' in panel.locator('summary').inner_text()
    panel.locator('summary').click()
    page.evaluate(PROGRESS_WATCH)
    content = b'a,b\n1,2\n' + b''.join(b'%d,%d\n' % (i, i * i) for i in range(3, 400_000))
    assert len(content) > 4_000_000
    page.locator('[data-role=data-upload-input]').set_input_files(
        files=[{'name': 'x.csv', 'mimeType': 'text/csv', 'buffer': content}])
    row = panel.locator('.data-file[data-name="x.csv"]')
    row.wait_for()
    expect()(panel.locator('[data-role=data-upload-status]')).to_have_text('Uploaded x.csv.')
    states = page.evaluate('window.__progress')
    assert any(not s['hidden'] for s in states), states       # the bar was shown
    assert max(s['value'] for s in states) == 100, states    # and went to the end
    assert panel.locator('[data-role=data-upload-progress]').is_hidden()
    assert '(1)' in panel.locator('summary').inner_text()
    assert row.locator('.data-file-size').inner_text().endswith('MB')
    href = row.locator('a.data-file-download').get_attribute('href')
    assert page.request.get(href).body() == content

    cell = cells(page).first
    output = run(page, cell, "print(open(DATA+'x.csv').read()[:12])")
    expect()(output).to_have_text(re.compile(r'^\s*a,b\s+1,2\s+3,9\s*$'))

    # the same name again: the error says so, inline, with a way to replace it
    page.locator('[data-role=data-upload-input]').set_input_files(
        files=[{'name': 'x.csv', 'mimeType': 'text/csv', 'buffer': b'x,y\n'}])
    error = panel.locator('[role=alert]')
    expect()(error).to_contain_text('exists')
    error.locator('button', has_text='Replace').click()
    expect()(panel.locator('[data-role=data-upload-status]')).to_have_text('Uploaded x.csv.')
    expect()(error).to_be_empty()
    assert page.request.get(href).body() == b'x,y\n'
    output = run(page, cell, "print(repr(open(DATA+'x.csv').read()))")
    expect()(output).to_have_text(re.compile(r"^\s*'x,y\\n'\s*$"))


def test_data_file_create_edit_rename_delete(page, worksheet):
    panel = page.locator('#data-files')
    panel.locator('summary').click()
    # a bad name: the server's error, inline
    panel.locator('[data-file-action=new]').click()
    panel.locator('[data-role=data-new-form] input[name=name]').fill('a/b')
    panel.locator('[data-role=data-new-form] button[type=submit]').click()
    expect()(panel.locator('[role=alert]')).to_contain_text('name')

    panel.locator('[data-role=data-new-form] input[name=name]').fill('notes.txt')
    panel.locator('[data-role=data-new-form] button[type=submit]').click()
    editor = panel.locator('[data-role=data-file-editor]')
    expect()(editor).to_be_visible()
    assert editor.locator('[data-role=data-editor-name]').inner_text() == 'notes.txt'
    assert panel.locator('[role=alert]').inner_text() == ''
    text = editor.locator('textarea')
    assert text.input_value() == ''
    text.fill('hello from the editor\nsecond line, caf\u00e9\n')
    editor.locator('[data-file-action=editor-save]').click()
    expect()(editor.locator('[data-role=data-editor-status]')).to_have_text('Saved.')

    cell = cells(page).first
    output = run(page, cell, "print(open(DATA+'notes.txt').read())")
    expect()(output).to_contain_text('hello from the editor')
    expect()(output).to_contain_text('second line, caf\u00e9')

    # edited again (Ctrl-S saves), then the cell sees the new text
    text.fill('changed\n')
    text.press('Control+s')
    expect()(editor.locator('[data-role=data-editor-status]')).to_have_text('Saved.')
    output = run(page, cell)
    expect()(output).to_have_text(re.compile(r'^\s*changed\s*$'))
    editor.locator('[data-file-action=editor-close]').click()
    expect()(editor).to_be_hidden()

    # reopened from the list
    row = panel.locator('.data-file[data-name="notes.txt"]')
    row.locator('[data-file-action=edit]').click()
    expect()(text).to_have_value('changed\n')

    # renamed in place
    row.locator('[data-file-action=rename]').click()
    row.locator('.data-rename-input').fill('renamed.txt')
    row.locator('.data-rename-input').press('Enter')
    renamed = panel.locator('.data-file[data-name="renamed.txt"]')
    renamed.wait_for()
    assert panel.locator('.data-file[data-name="notes.txt"]').count() == 0
    assert editor.locator('[data-role=data-editor-name]').inner_text() == 'renamed.txt'
    output = run(page, cell, "print(open(DATA+'renamed.txt').read())")
    expect()(output).to_contain_text('changed')

    # deleted, after a confirmation
    page.once('dialog', lambda dialog: dialog.accept())
    renamed.locator('[data-file-action=delete]').click()
    expect()(renamed).to_have_count(0)
    expect()(editor).to_be_hidden()
    assert '(0)' in panel.locator('summary').inner_text()
    assert call(page, 'GET', worksheet + 'data').json() == {'files': []}


# --- input() ---------------------------------------------------------------------------------

def test_input_in_a_cell(page, worksheet):
    cell = cells(page).first
    set_input(cell, 'name = input("Your name? ")\nprint("Hello,", name)')
    cell.locator('.cm-content').click()
    page.keyboard.press('Shift+Enter')
    box = cell.locator('.cell-stdin input')
    box.wait_for(timeout=SAGE_TIMEOUT)
    assert box.get_attribute('type') == 'text'
    assert 'Your name?' in cell.locator('.cell-stdin').inner_text()
    expect()(box).to_be_focused()
    box.fill('Ada')
    box.press('Enter')
    expect()(cell.locator('.cell-stdin')).to_be_hidden()
    expect()(cell).to_have_attribute('data-status', 'done', timeout=SAGE_TIMEOUT)
    expect()(cell.locator('.output')).to_contain_text('Hello, Ada')

    # a password is asked in a password box; two questions in a row
    set_input(cell, 'import getpass\nsecret = getpass.getpass("Secret: ")\n'
                    'again = input("Again? ")\nprint(len(secret), again)')
    cell.locator('.cm-content').click()
    page.keyboard.press('Shift+Enter')
    box = cell.locator('.cell-stdin input')
    box.wait_for(timeout=SAGE_TIMEOUT)
    assert box.get_attribute('type') == 'password'
    box.fill('abcd')
    box.press('Enter')
    expect()(cell.locator('.cell-stdin')).to_contain_text('Again?', timeout=SAGE_TIMEOUT)
    box = cell.locator('.cell-stdin input')
    assert box.get_attribute('type') == 'text'
    box.fill('yes')
    box.press('Enter')
    expect()(cell).to_have_attribute('data-status', 'done', timeout=SAGE_TIMEOUT)
    output = cell.locator('.output')
    expect()(output).to_contain_text('4 yes')
    assert 'abcd' not in output.inner_text()


def test_directives_render_in_the_page(page, worksheet):
    url = worksheet
    cells = {
        'html': add_cell(page, '%html\n<b id="bold">bold</b> and <i>italic</i>', url),
        'latex': add_cell(page, '%latex\nThe area is $\\pi r^2$.', url),
        'time': add_cell(page, '%time\nfactor(2^64-1)', url),
        'python': add_cell(page, '%python\n2^3', url),
        'sh': add_cell(page, '%sh\necho from the shell', url),
    }
    for cell_id in cells.values():
        answer = call(page, 'POST', url + 'cells/%d/evaluate' % cell_id, {'wait': 60})
        assert answer.json()['status'] == 'done', answer.text()
    page.reload()
    page.wait_for_selector('#worksheet[data-ready=true]')

    def cell(name):
        return page.locator('.cell[data-cell-id="%d"]' % cells[name])

    frame = page.frame_locator('.cell[data-cell-id="%d"] iframe.output-html' % cells['html'])
    assert frame.locator('#bold').inner_text() == 'bold'
    cell('latex').locator('.output mjx-container').first.wait_for()
    assert 'The area is' in cell('latex').locator('.output').inner_text()
    time_text = cell('time').locator('.output').inner_text()
    assert 'Wall time' in time_text and '6700417' in time_text
    assert cell('python').locator('.output').inner_text().strip() == '1'
    assert cell('sh').locator('.output').inner_text().strip() == 'from the shell'
