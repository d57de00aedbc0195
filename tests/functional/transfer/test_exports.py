"""The exports that leave the notebook (issue 22): ``download.sage``, ``.py``, ``.html``,
``.tex`` (a zip) and ``.pdf``, and the print view that shows what ``download.html``
holds.  A worksheet with text cells (Markdown with HTML, a script tag, math; a legacy
HTML cell), compute cells with percent directives, a plot, a typeset output and the
payload battery's outputs (tests/support/trust.py).  Running the scripts in Sage and
opening the HTML in Chromium: tests/e2e/sage/test_exports.py,
tests/browser/test_exports.py."""
import ast
import base64
import io
import re
import shutil
import zipfile

import pypdf
import pytest
import webtest
from sage.repl.preparse import preparse_file

from ...support.exports import PNG, build
from ...support.notebook import Notebook
from ...support.trust import Battery


@pytest.fixture
def alice(notebook, testapp):
    notebook.add_user('alice')
    notebook.add_user('bob')
    return {'Authorization': 'Bearer ' + notebook.token('alice')}


@pytest.fixture
def path(notebook, alice):
    with notebook.transaction() as root:
        first = root.user_by_login('alice').create_worksheet('placeholder')
        assert first is not None
        return build(root, battery=Battery(9))


def download(testapp, headers, url, status=200):
    return testapp.get(url, headers=headers, status=status)


def check_file_headers(res, content_type, filename):
    assert res.content_type == content_type
    assert res.headers['Content-Disposition'].startswith('attachment; filename="%s"'
                                                         % filename)
    assert res.headers['Content-Security-Policy'].startswith('sandbox')


# --- .sage ------------------------------------------------------------------------------

def test_sage_script_keeps_inputs_in_order_with_text_and_directives_as_comments(
        testapp, alice, path):
    res = download(testapp, alice, path + 'download.sage')
    check_file_headers(res, 'text/x-sage', 'Exports _test_.sage')
    text = res.text
    # Inputs in their order.
    order = [text.index(s) for s in ('Results of', '_show(factor(2^64-1))',
                                     'print(2**10)', 'x = 3', "gp.eval('factor(91)')",
                                     'shown by the notebook', 'plot(sin(x)', '1/0',
                                     'A sagenb cell')]
    assert order == sorted(order)
    # Text cells: every line a comment (the script tag too).
    assert '# # Results of $x_1$' in text
    assert '# <script>' in text or '<script>window' in text.split('# Some **bold**')[1][:200]
    for line in text.splitlines():
        if 'window.__pwned' in line or 'Results of' in line:
            assert line.startswith('#'), line
    # Directives: comments; the systems run as a script can run them.
    assert '\n# %python\nprint(2**10)\n_show(7/2)\n' in text
    assert '\n# %hide\n# %time\nx = 3\n# %display plain\n_show(x^2)\n' in text
    assert "\n# %gp\nprint(gp.eval('factor(91)'))\n" in text
    assert '# %html\n# (%html: shown by the notebook, not run by a script)\n' \
           '# <b>shown by the notebook</b>' in text
    # What is left is Sage: the preparser makes Python of all of it.
    ast.parse(preparse_file(text))


def test_python_script_is_preparsed_python(testapp, alice, path):
    res = download(testapp, alice, path + 'download.py')
    check_file_headers(res, 'text/x-python', 'Exports _test_.py')
    text = res.text
    ast.parse(text)
    assert '\nfrom sage.all import *\n' in text
    assert '_show(factor(Integer(2)**Integer(64)-Integer(1)))' in text
    # %python cells run unpreparsed in the notebook: kept as they are.
    assert '\n# %python\nprint(2**10)\n_show(7/2)\n' in text
    assert '_show(x**Integer(2))' in text and '^' not in text.split('# %display')[1][:40]


# --- .html ------------------------------------------------------------------------------

def test_html_is_one_file_with_outputs_plots_and_math_and_no_script(testapp, alice, path):
    res = download(testapp, alice, path + 'download.html')
    check_file_headers(res, 'text/html', 'Exports _test_.html')
    page = res.text
    meta = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', page)
    assert meta and "default-src 'none'" in meta.group(1) and 'script-src' not in meta.group(1)
    # Outputs, the plot as a data: URL, math as MathML, the text cells rendered.
    assert '3 * 5 * 17 * 257 * 641 * 65537 * 6700417' in page
    assert 'data:image/png;base64,%s' % base64.b64encode(PNG).decode() in page
    assert page.count('<math') >= 6
    assert '<mfrac><mrow><mn>1</mn></mrow><mrow><mn>3</mn></mrow></mfrac>' in page
    assert '<mi>𝐙</mi>' in page  # Sage's \Bold{Z}
    assert '<strong>bold</strong>' in page and '<b>raw HTML</b>' in page
    assert '<i>italics</i>' in page and 'ZeroDivisionError' in page
    assert '\x1b' not in page
    # Nothing that could run or load: no script element, handler, javascript: URL,
    # frame, style element, remote image.
    lowered = page.lower()
    assert '<script' not in lowered
    assert not re.search(r'<[^>]+\son\w+\s*=', lowered)
    assert not re.search(r'(href|src|action|data)\s*=\s*"\s*javascript:', lowered)
    for tag in ('<iframe', '<object', '<embed', '<form', '<style>@import', '<link', '<svg'):
        assert tag not in lowered
    assert not re.search(r'src="(?!data:)', page)
    assert not re.search(r'href="(?!https?:|mailto:|#)', page)


def test_print_view_shows_what_the_html_file_holds(testapp, alice, path):
    exported = download(testapp, alice, path + 'download.html').text
    cells = exported.split('<div class="cells">\n', 1)[1].rsplit('\n</div>\n</main>', 1)[0]
    printed = testapp.get(path + 'print', headers=alice).text
    assert cells in printed and 'data:image/png;base64' in printed
    assert '<script' not in printed.lower()


# --- .tex -------------------------------------------------------------------------------

def test_latex_zip_holds_the_tex_and_its_images(testapp, alice, path):
    res = download(testapp, alice, path + 'download.tex')
    check_file_headers(res, 'application/zip', 'Exports _test_.zip')
    archive = zipfile.ZipFile(io.BytesIO(res.body))
    names = archive.namelist()
    assert 'Exports _test_.tex' in names
    tex = archive.read('Exports _test_.tex').decode('utf-8')
    included = re.findall(r'\\includegraphics\[[^]]*\]\{([^}]+)\}', tex)
    assert included and all(name in names for name in included)
    assert archive.read(included[0]) == PNG
    assert tex.startswith('\\documentclass') and tex.rstrip().endswith('\\end{document}')
    # Text: Markdown made LaTeX, its math kept, its text escaped.
    assert '\\section{Results of $x_1$}' in tex
    assert '\\textbf{bold}' in tex and '$$\\int_0^1 x\\,dx$$' in tex
    assert '{\\textbackslash}input{\\{}/etc/passwd{\\}}' in tex
    assert '{\\%}' in tex and '{\\&}' in tex and '{\\#}1' in tex
    assert '\\input{' not in tex
    assert 'A sagenb cell with $\\sqrt{2}$ {\\&} \\textit{italics}' in tex
    # Inputs as listings, typeset outputs as math, plain ones as listings.
    assert '\\begin{lstlisting}[style=input]\nfactor(2^64-1)\n\\end{lstlisting}' in tex
    assert '\\[\\frac{1}{3} \\, x^{3}\\]' in tex and '\\[\\Bold{Z}\\]' in tex
    assert '3 * 5 * 17 * 257 * 641 * 65537 * 6700417' in tex
    # A listing cannot be ended from inside.
    assert tex.count('\\begin{lstlisting}') == tex.count('\\end{lstlisting}')


# --- .pdf -------------------------------------------------------------------------------

def test_pdf_without_tex_says_it_is_unavailable(tmp_path):
    """A pdflatex that does not exist: 404 and what to do, as JSON and as a page."""
    nb = Notebook(tmp_path / 'data', **{'sagenb.export.pdflatex': str(tmp_path / 'no-tex')})
    try:
        nb.add_user('alice')
        with nb.transaction() as root:
            url = build(root)
        app = webtest.TestApp(nb.app, extra_environ={'HTTP_HOST': 'localhost:80'})
        headers = {'Authorization': 'Bearer ' + nb.token('alice')}
        res = app.get(url + 'download.pdf', headers=headers, status=404)
        assert 'PDF export is not available on this server' in res.json['error']
        assert 'download.tex' in res.json['error']
    finally:
        nb.close()


def test_pdf_is_made_where_tex_is_installed_and_refused_clearly_where_not(
        testapp, alice, path):
    """The machine's own TeX: a PDF when pdflatex is on the PATH, else the 404."""
    res = testapp.get(path + 'download.pdf', headers=alice, status='*')
    if shutil.which('pdflatex'):
        assert res.status_int == 200, res.text[:2000]
        assert res.body.startswith(b'%PDF-') and res.content_type == 'application/pdf'
        # The PDF holds the cells: text, inputs, outputs, math (read back with pypdf).
        pages = pypdf.PdfReader(io.BytesIO(res.body)).pages
        text = re.sub(r'\s+', ' ', ' '.join(page.extract_text() for page in pages))
        for words in ('Exports <test>', 'Results of x1', 'Some bold text', 'raw HTML',
                      'factor(2^64-1)', '3 * 5 * 17 * 257 * 641 * 65537 * 6700417',
                      'print(2**10)', '1024', '1 3 x3', 'ZeroDivisionError',
                      'A sagenb cell with', 'italics', '\\input{/etc/passwd} ~ 100% & #1'):
            assert words in text, words
        assert re.search(r'Z\s*1/0', text)  # \Bold{Z}, then the next cell's input
    else:
        assert res.status_int == 404
        assert 'no TeX installation was found' in res.json['error']


# --- who may download -------------------------------------------------------------------

@pytest.mark.parametrize('name', ['download.sage', 'download.py', 'download.html',
                                  'download.tex'])
def test_others_get_nothing(testapp, notebook, alice, path, name):
    bob = {'Authorization': 'Bearer ' + notebook.token('bob')}
    res = testapp.get(path + name, headers=bob, status=404)
    assert 'error' in res.json
