"""The notebook in a real browser: Playwright driving Debian's Chromium."""
import io
import zipfile
from ..support.browser import log_in, sws_fixture


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
    page.wait_for_function("() => document.querySelectorAll('.cell').length >= 2")
    page.keyboard.type('plot(sin(x),(x,0,6))')
    page.keyboard.press('Shift+Enter')
    image = page.locator('.cell img.output-image').first
    image.wait_for()
    assert page.evaluate(
        "img => img.naturalWidth > 100", image.element_handle())

    # An error shows its name and a collapsible traceback (Shift-Enter went on to a new
    # cell, where the cursor is).
    page.wait_for_function("() => document.querySelectorAll('.cell').length >= 3")
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


# What the Markdown of text cells leaves to MathJax: the TeX as written (no emphasis made
# of its underscores and stars, no line breaks of its backslashes), code untouched, \$ as
# written (MathJax shows a dollar), and Markdown around it.
MARKDOWN_CASES = [
    ('$a_1 * b_2$ and *em* and a_b_c', ['$a_1 * b_2$', '<em>em</em>', 'a_b_c']),
    ('`$x$` and `a*b*c`', ['<code>$x$</code>', '<code>a*b*c</code>']),
    ('costs \\$5 and \\$6, **bold**', ['costs \\$5 and \\$6', '<strong>bold</strong>']),
    ('$$\na_1\n\nb_2\n$$', ['$$\na_1\n\nb_2\n$$']),
    ('\\begin{align}a_1 &= b_1 \\\\ c\\end{align}',
     ['\\begin{align}a_1 &amp;= b_1 \\\\ c\\end{align}']),
    ('\\(x_1 < y\\) and \\[y_2\\]', ['\\(x_1 &lt; y\\)', '\\[y_2\\]']),
    ('```\n$x$ *y*\n```', ['<pre><code>$x$ *y*']),
    ('# Title\n\n- one\n- two', ['<h1>Title</h1>', '<li>one</li>']),
    ('see https://example.org/a_b.', ['<a href="https://example.org/a_b">']),
]


def test_markdown_keeps_math_code_and_escapes(page, live_server):
    base = live_server
    log_in(page, base)
    page.click('[data-action=new-worksheet]')
    page.wait_for_url(base + '/home/alice/*/')
    page.wait_for_function('() => window.sagenb && window.sagenb.renderMarkdown')
    for source, expected in MARKDOWN_CASES:
        html = page.evaluate('src => window.sagenb.renderMarkdown(src)', source)
        for part in expected:
            assert part in html, (source, part, html)
    assert '<em>' not in page.evaluate('src => window.sagenb.renderMarkdown(src)',
                                       '$a_1 * b_2 * c_3$')


# --- import and export -------------------------------------------------------------------
def worksheet_count(page, base):
    answer = page.request.get(base + '/home/alice/?state=all',
                              headers={'Accept': 'application/json'})
    assert answer.status == 200
    return len(answer.json()['worksheets'])


def image_loaded(page, locator):
    locator.wait_for()
    page.wait_for_function('img => img.complete && img.naturalWidth > 0',
                           arg=locator.element_handle(), timeout=20_000)
    return True


def test_upload_sws_through_the_listing_then_data_files_images_and_download(page, live_server):
    base = live_server
    log_in(page, base)
    upload = page.locator('form[data-upload]')
    upload.locator('input[type=file]').set_input_files(
        str(sws_fixture('days60_number_theory_talk.sws')))
    upload.locator('[data-action=upload]').click()
    page.wait_for_url(base + '/home/alice/*/')
    worksheet_url = page.url
    assert worksheet_url.endswith('/')
    assert page.locator('[data-role=worksheet-name]').inner_text() == 'number_theory_talk'

    # A legacy text cell: HTML with $math$, typeset; its <img> is a data file of the
    # worksheet, named relative to the worksheet's URL.
    first_text = page.locator('.text-cell').first
    assert 'Analytic Number Theory' in first_text.locator('h1').inner_text()
    first_text.locator('mjx-container').first.wait_for()
    assert image_loaded(page, page.locator('.text-cell img[src="arith_3_5_12_14_2000.png"]'))
    assert image_loaded(page, page.locator('.text-cell img[src="sage_2mul_300.png"]'))

    # Output images (complex_plot) are shown.
    images = page.locator('.compute-cell img.output-image')
    images.first.wait_for()
    assert images.count() >= 2
    for k in range(images.count()):
        assert images.nth(k).is_visible()
        assert image_loaded(page, images.nth(k))

    # The data files, as links with their sizes.
    panel = page.locator('#data-files')
    assert panel.is_visible()
    links = panel.locator('a.data-file-link')
    assert '(6)' in panel.locator('summary').inner_text()
    panel.locator('summary').click()
    assert links.count() == 6
    assert links.first.is_visible()
    assert 'arith_3_5_12_14_2000.png' in links.all_inner_texts()
    assert all(size.endswith('KB') for size in
               panel.locator('.data-file-size').all_inner_texts())
    answer = page.request.get(links.first.evaluate('a => a.href'))
    assert answer.status == 200 and answer.body()[:8] == b'\x89PNG\r\n\x1a\n'

    with page.expect_download() as info:
        page.click('[data-role=download-sws]')
    download = info.value
    assert download.suggested_filename.endswith('.sws')
    with open(download.path(), 'rb') as f:
        assert f.read(3) == b'BZh'

    # Opened without its trailing slash, the page still finds the data files (and its
    # address becomes the worksheet's own).
    page.goto(worksheet_url.rstrip('/'))
    assert image_loaded(page, page.locator('.text-cell img[src="arith_3_5_12_14_2000.png"]'))
    assert page.url == worksheet_url
    page.locator('.text-cell mjx-container').first.wait_for()


def test_uploading_an_empty_file_shows_the_error_and_creates_nothing(page, live_server):
    from playwright.sync_api import expect
    base = live_server
    log_in(page, base)
    before = worksheet_count(page, base)
    upload = page.locator('form[data-upload]')
    upload.locator('input[type=file]').set_input_files(
        str(sws_fixture('days13_projects_sagenewbie_Ball_motion.sws')))
    upload.locator('[data-action=upload]').click()
    alert = upload.locator('[role=alert]')
    expect(alert).to_contain_text('empty', timeout=30_000)
    assert 'days13_projects_sagenewbie_Ball_motion.sws' in alert.inner_text()
    assert alert.is_visible()
    assert page.url == base + '/home/alice/'
    assert upload.locator('[data-action=upload]').is_enabled()
    assert upload.locator('progress').is_hidden()
    assert worksheet_count(page, base) == before


def test_files_written_by_cells_are_download_links(page, live_server):
    base = live_server
    log_in(page, base)
    token = page.locator('meta[name=csrf-token]').get_attribute('content')
    path = sws_fixture('combinat_EjcGdrIm2012_introduction_a_sage.sws')
    answer = page.request.post(
        base + '/home/alice/import',
        headers={'Accept': 'application/json', 'X-CSRF-Token': token},
        multipart={'file': {'name': path.name, 'mimeType': 'application/octet-stream',
                            'buffer': path.read_bytes()}})
    assert answer.status == 201, answer.text()
    created = answer.json()['worksheets']
    assert len(created) == 1
    number = created[0]['id']
    page.goto(base + created[0]['url'])
    assert page.locator('[data-role=worksheet-name]').inner_text() == 'Introduction à Sage'

    for name in ('sage0-size500.jmol', 'sage0-size500-849054851.jmol.zip'):
        link = page.locator('a.output-file-link', has_text=name).first
        link.wait_for()
        href = link.evaluate('a => a.href')
        assert '/home/alice/%d/cells/' % number in href
        assert href.endswith('/files/' + name)
        assert link.get_attribute('download') == name
        fetched = page.request.get(href)
        assert fetched.status == 200, (href, fetched.status)
        assert len(fetched.body()) > 0

    # The listing: per-row links, "Download selected" and "Download all" (.zip).
    page.goto(base + '/home/alice/')
    row = page.locator('tr', has=page.locator('input[name=ids][value="%d"]' % number))
    assert row.locator('a[href$="/%d/download.ipynb"]' % number).count() == 1
    selected = page.locator('[data-download=selected]')
    assert selected.is_visible() and selected.is_disabled()
    row.locator('input[name=ids]').check()
    assert selected.is_enabled()
    with page.expect_download() as info:
        selected.click()
    with open(info.value.path(), 'rb') as f:
        archive = zipfile.ZipFile(io.BytesIO(f.read()))
    assert [n for n in archive.namelist()] == ['Introduction à Sage.sws']
    page.select_option('select[data-role=download-format]', 'ipynb')
    assert 'format=ipynb' in page.locator('a[data-download=all]').get_attribute('href')


def test_upload_without_javascript_is_a_plain_form_post(browser, live_server):
    base = live_server
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        log_in(page, base)
        upload = page.locator('form[data-upload]')
        upload.locator('input[type=file]').set_input_files(
            str(sws_fixture('days66_Automata_and_Transducers_in_SageMath.sws')))
        upload.locator('input[name=name]').fill('Automata, no script')
        upload.locator('[data-action=upload]').click()
        page.wait_for_url(base + '/home/alice/*/')
        assert page.locator('[data-role=worksheet-name]').inner_text() == 'Automata, no script'
        href = page.locator('[data-role=download-ipynb]').get_attribute('href')
        answer = page.request.get(href)
        assert answer.status == 200 and answer.json()['nbformat'] == 4
    finally:
        context.close()
