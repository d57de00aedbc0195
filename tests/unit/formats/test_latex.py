"""formats/latex.py: the ``.tex`` of a worksheet compiles whatever the worksheet holds
(Markdown, non-Latin scripts and emoji, every special character in inputs, broken or
MathJax-only math), and the PDF holds the cells' text and math.

Every test checks the LaTeX text it is about; where ``pdflatex`` is on the PATH it also
compiles it (``latex.pdf``, as download.pdf does) and reads the PDF's text back with
pypdf.  Where there is none, ``typeset`` asserts that ``find_pdflatex`` says so, so
neither branch is a silent skip (docs/api.md: what a server needs for PDFs)."""
import base64
import io
import re
import shutil

import pypdf
import pytest
from pylatexenc.latexencode import get_builtin_conversion_rules

from sagenb_pyramid.formats import CellData, WorksheetData, latex

from ...support.exports import PNG

HAVE_TEX = shutil.which('pdflatex') is not None


def typeset(tex, images=None):
    """The text of the PDF of ``tex`` (spaces squeezed), or None without TeX."""
    if not HAVE_TEX:
        with pytest.raises(latex.TexUnavailable, match='no TeX installation was found'):
            latex.find_pdflatex(None)
        return None
    pdf = latex.pdf(tex, images or {}, latex.find_pdflatex(None))
    assert pdf.startswith(b'%PDF-')
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return re.sub(r'\s+', ' ', ' '.join(page.extract_text() for page in reader.pages))


def document(*cells, name='Stress', typeset_outputs=True):
    data = WorksheetData(name=name, typeset=typeset_outputs, cells=list(cells))
    return latex.write_latex(data, 'alice')


def text(source, fmt='markdown'):
    return CellData(type='text', input=source, format=fmt)


def compute(source, *outputs):
    return CellData(type='compute', input=source, outputs=list(outputs))


def result(**data):
    return {'output_type': 'execute_result', 'execution_count': 1, 'metadata': {},
            'data': {k.replace('_', '/', 1): v for k, v in data.items()}}


def test_markdown_of_every_kind_compiles():
    tex, images = document(text(
        '# Heading one\n\n## Heading two\n\n- apple\n- banana\n  1. nested\n\n'
        '| left | right |\n|---|---|\n| cellone | celltwo |\n\n| solo |\n|---|\n| only |\n\n'
        '```python\nx = {1: 2}\n```\n\n`inline ~ \\ {`\n\n'
        '[a link](https://example.com/a_b%20c#x~y) <https://example.com/?q=1&r=2> '
        '*emphasis* **strong** ~~struck~~\n\n<div>raw <b>html</b></div>\n\n'
        '> quoted words\n\n---\n\nline one  \nline two\n\n'
        + '\n'.join('  ' * k + '- level%d' % k for k in range(7)) + '\n\n'
        + '> ' * 7 + 'deep quote\n\n## Sum $\\sum_i x_i$ and $$\\begin{align}a&=b\\end{align}$$'))
    # No package the preamble does not load (csquotes, ulem's \sout without ulem).
    assert '\\begin{quote}' in tex and 'displayquote' not in tex
    assert '\\begin{tabular}{l}' in tex and '\\begin{tabular}{ll}' in tex
    # LaTeX nests lists 4 deep; a heading's math is inline.
    assert tex.count('\\begin{itemize}') == 5 and '--- level6' in tex
    assert tex.count('\\begin{quote}') == 5
    assert '\\subsection{Sum $\\sum_i x_i$ and $\\begin{aligned}a&=b\\end{aligned}$}' in tex
    assert '\\IfFileExists{ulem.sty}' in tex and '\\providecommand{\\sout}[1]{#1}' in tex
    out = typeset(tex)
    if out is not None:
        for words in ('Heading one', 'Heading two', 'apple', 'nested', 'cellone', 'only',
                      'x = {1: 2}', 'a link', 'emphasis', 'struck', 'raw html',
                      'quoted words', 'line two', 'level6', 'deep quote', 'Sum'):
            assert words in out, words


def test_characters_pdflatex_cannot_typeset_degrade_to_their_code_points():
    tex, _ = document(
        text('Latin é ß naïve, Greek α, Chinese 中文, Cyrillic Я, emoji 😀 👍🏽 '
             '👨\u200d👩\u200d👧 ❤️, sharp ♯, bell \x07 here'),
        compute('s = "é ß 中文 😀 Я"  # \x0c form feed', {
            'output_type': 'stream', 'name': 'stdout', 'text': 'out é 中 😀\n'}),
        compute('x', result(text_latex='$\\displaystyle \\text{é 中} é$', text_plain='x')),
        # A long line of them: listings breaks at spaces only, TeX where it is allowed.
        compute('long = "%s"' % ('中' * 600)), text('长' * 600),
        name='Name é 中 😀 <odd> & $x$ % # ~ ^ _ \\ { }')
    assert '\\texttt{[U+4E2D]}\\allowbreak{}\\texttt{[U+6587]}' in tex          # text
    assert '\\texttt{[U+1F44D]}' in tex and '[U+1F3FD]' not in tex  # skin tone dropped
    assert '[U+200D]' not in tex and '[U+FE0F]' not in tex and '\x07' not in tex
    assert '\\texttt{[U+042F]}' in tex and '\\texttt{[U+266F]}' in tex
    # Listings get what is beyond ASCII as literate replacements.
    assert "literate={é}{{{\\'e}}}1" in tex and '{中}{{\\texttt{[U+4E2D]}\\allowbreak{}}}1' in tex
    assert '\x0c' not in tex
    longest = max(tex.split('\n'), key=lambda line: line.count('中'))
    assert longest.count('中') < 10
    # In math, as text.
    assert '\\text{\\texttt{[U+4E2D]}\\allowbreak{}}' in tex and "\\text{{\\'e}}" in tex
    out = typeset(tex)
    if out is not None:
        for words in ('Latin', 'Greek', 'Chinese [U+4E2D][U+6587]', 'emoji [U+1F600]',
                      's = "', '[U+042F]', 'out', 'form feed', 'Name'):
            assert words in out, words


def test_every_character_pylatexenc_knows_compiles():
    """The encodings listed in UNTYPESETTABLE are the ones that fail with PREAMBLE."""
    rules = get_builtin_conversion_rules('defaults')[0].rule
    chars = ''.join(chr(c) for c in sorted(rules) if c > 31)
    tex, _ = document(text(chars), compute(chars), text('$%s$' % chars[200:]))
    assert not re.search(r'\\(CYR[A-Z]|cyr[a-z]|mathscr|textfrac\{)', tex)
    assert '\\texttt{[U+042F]}' in tex and '{\\textperthousand}' in tex
    typeset(tex)


def test_inputs_with_every_special_character_and_long_lines_compile():
    source = ('\\ { } $ & # ^ _ % ~ \\\\ \\end{lstlisting} \\end {lstlisting}\n'
              + 'x' * 400 + '\n\tindented\r\nwindows line\rold mac line\n'
              + '\\begin{document}\\input{/etc/passwd}')
    tex, _ = document(compute(source), compute(''), text(''))
    assert '\\end{lstlisting} \\end' not in tex
    assert '\r' not in tex
    out = typeset(tex)
    if out is not None:
        assert '\\ { } $ & # ^ _ % ~' in out
        assert 'windows line' in out and 'old mac line' in out and 'xxxxxxxxxx' in out


def test_math_sage_writes_compiles_and_shows():
    tex, _ = document(
        text('Integers $\\ZZ$, $\\Bold{Z}[x]$, $\\GF{7}$ and\n\n'
             '$$\\left(\\begin{array}{rr} 1 & 2 \\\\ 3 & 4 \\end{array}\\right)$$'),
        compute('ZZ', result(text_html='<html>\\[\\Bold{Z}\\]</html>',
                             text_plain='Integer Ring')),
        compute('m', result(text_latex='$\\displaystyle \\left(\\begin{array}{rr}\n17 & 2 '
                                       '\\\\\n3 & 4\n\\end{array}\\right)$', text_plain='m')),
        compute('R', result(text_latex='$\\displaystyle \\verb|Ringy|\\ \\Bold{Q}$',
                            text_plain='R')),
        compute('f', result(text_latex='$\\displaystyle \\frac{1}{3} \\, x^{3}$',
                            text_plain='1/3*x^3')),
        # latex(Tableau([[1, 2], [3]])): $ inside, as Sage writes it.
        compute('t', result(text_latex=(
            '$\\displaystyle {\\def\\lr#1{\\multicolumn{1}{|@{\\hspace{.6ex}}c@{\\hspace'
            '{.6ex}}|}{\\raisebox{-.3ex}{$#1$}}}\n\\raisebox{-.6ex}{$\\begin{array}[b]{*{2}c}'
            '\\cline{1-2}\n\\lr{1}&\\lr{2}\\\\\\cline{1-2}\n\\lr{3}\\\\\\cline{1-1}\n'
            '\\end{array}$}\n}$'), text_plain='t')),
        # latex(Graph(...)) is TikZ, which neither MathJax nor this preamble has.
        compute('g', result(text_latex='\\begin{tikzpicture}\n\\node at (0,0) {$v_0$};'
                                       '\n\\end{tikzpicture}', text_plain='g')))
    assert '\\[\\Bold{Z}\\]' in tex and '\\[\\frac{1}{3} \\, x^{3}\\]' in tex
    assert '{\\textbackslash}begin{\\{}tikzpicture{\\}}' in tex
    out = typeset(tex)
    if out is not None:
        assert 'Integers Z' in out and 'Ringy' in out
        assert 'begin{tikzpicture}' in out
        assert '( 17 2 3 4 )' in out and 'F7' in out and '1 3 x3' in out


def test_mathjax_only_and_broken_math_does_not_stop_the_document():
    tex, _ = document(text(
        'Unknown $\\cancel{y}$ and $\\bbox[red]{z}$, a typo $\\fracc{1}{2}$.\n\n'
        '$$\\begin{align}a &= b \\\\ c &= d\\end{align}$$\n\n'
        '$$\\begin{align}x\\end{align} + y$$\n\n'
        '\\begin{pmatrix}5 & 6\\end{pmatrix}\n\n'
        'Spaced $ \\pdfannot{} x $ dollars. '
        'Broken ${x$ and $\\left( x$ and $x \\end{document}$ and $50%$ and $a & b$ and $#$.'
        '\n\n$\\newcommand{\\R}{\\mathbb{R}}$ then $\\R^n$; $\\newcommand{\\ZZ}{\\mathbb{Z}}$ '
        '$\\DeclareMathOperator{\\Tr}{Tr} \\Tr A$ and later $\\Tr B$.'))
    # Unknown names typeset as their name; displayed environments outside \[ \].
    assert '\\ifdefined\\cancel\\else\\def\\cancel{' in tex
    assert '\n\\begin{align}a &= b' in tex and '\\[\\begin{align}a' not in tex
    assert '$$\\begin{aligned}x\\end{aligned} + y$$' in tex
    assert '\\[\\begin{pmatrix}5 & 6\\end{pmatrix}\\]' in tex
    # Broken formulas as their source; comments, parameters and stray & escaped.
    assert '\\texttt{{\\$}{\\{}x{\\$}}' in tex and '$50\\%$' in tex and '$a \\& b$' in tex
    assert '$\\#$' in tex and '{\\$} {\\textbackslash}pdfannot' in tex
    # Definitions go to the preamble (\DeclareMathOperator is a preamble command).
    preamble = tex.split('\\begin{document}')[0]
    assert '\\sagenbdefine{\\R}{\\mathbb{R}}' in preamble
    assert '\\sagenbdefine{\\Tr}{\\operatorname{Tr}}' in preamble
    assert '\\sagenbdefine{\\ZZ}{\\mathbb{Z}}' in preamble
    out = typeset(tex)
    if out is not None:
        assert '\\cancel' in out and 'Unknown' in out and 'typo' in out
        assert 'Broken' in out and 'later Tr B' in out and '5 6' in out


def test_tex_that_writes_into_the_pdf_or_reads_files_is_shown_not_run():
    tex, _ = document(text(
        '$\\pdfannot{/Subtype/Link/A<</S/JavaScript/JS(app.alert(1))>>} x$ '
        '$\\csname pdfcatalog\\endcsname{/OpenAction 1}$ $\\pdf^^61nnot{}$ '
        '$\\input{worksheet.tex}$ [js](javascript:alert(1)) [ok](https://example.com/)'))
    body = tex.split('\\begin{document}')[1]
    assert not re.search(r'(?<!textbackslash\})\\(pdfannot|csname|input)', body)
    assert 'javascript' not in tex and '\\href{https://example.com/}{ok}' in tex
    out = typeset(tex)
    if out is not None:
        assert '\\pdfannot' in out and 'JavaScript' in out and 'js ok' in out


def test_plots_png_included_svg_named():
    png = {'output_type': 'display_data', 'metadata': {},
           'data': {'image/png': base64.b64encode(PNG).decode(), 'text/plain': 'G'}}
    svg = {'output_type': 'display_data', 'metadata': {},
           'data': {'image/svg+xml': '<svg xmlns="http://www.w3.org/2000/svg"/>',
                    'text/plain': 'G'}}
    tex, images = document(compute('plot(sin)', png), compute('plot(cos)', svg))
    assert images['images/cell-1-1.png'] == PNG and 'images/cell-2-2.svg' in images
    assert '\\includegraphics[width=0.7\\linewidth]{images/cell-1-1.png}' in tex
    out = typeset(tex, images)
    if out is not None:
        assert 'images/cell-2-2.svg' in out


def test_a_failed_run_says_why():
    if not HAVE_TEX:
        typeset('')
        return
    with pytest.raises(latex.TexFailed, match='Undefined control sequence'):
        latex.pdf('\\documentclass{article}\\begin{document}\\nosuchthing\\end{document}',
                  {}, latex.find_pdflatex(None))
