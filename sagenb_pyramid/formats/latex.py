"""A worksheet as LaTeX (``download.tex``: a zip of ``<name>.tex`` and ``images/``) and,
where TeX is installed on the server, as PDF (``pdf``).

Text cells: Markdown through mistletoe's LaTeX renderer, with its text escaped by
pylatexenc (mistletoe's own escaping leaves ``\\``, ``~`` and non-ASCII characters as
they are) and raw HTML reduced to its text; sagenb's HTML text cells are turned into
Markdown first (markdownify).  The TeX of text cells and typeset outputs goes into the
document as written (it is math: the point of the export), inputs and plain outputs
are listings, plots ``\\includegraphics`` of the images beside the ``.tex``.

The PDF is made by ``pdflatex`` (or what ``sagenb.export.pdflatex`` names) in a
temporary folder, with no shell escape, files read and written only below that folder
(``openin_any=p``, ``openout_any=p``), a time limit, and nothing kept.
"""
import functools
import html
import os
import re
import shutil
import subprocess
import tempfile

import markdownify
import mistletoe
import nh3
from mistletoe.block_token import HtmlBlock
from mistletoe.latex_renderer import LaTeXRenderer
from mistletoe.span_token import HtmlSpan
from pylatexenc.latexencode import UnicodeToLatexEncoder

from . import htmlpage, textcells


def _placeholder(char):
    """What stands for a character pdflatex cannot typeset (CJK, emoji...): its code, a
    line break allowed after it (Chinese has no spaces)."""
    return '\\texttt{[U+%04X]}\\allowbreak{}' % ord(char)


_encoder = UnicodeToLatexEncoder(non_ascii_only=False, unknown_char_policy=_placeholder,
                                 unknown_char_warning=False,
                                 replacement_latex_protection='braces-all')
# What pylatexenc writes for some characters needs fonts or packages the document does not
# load (Cyrillic's T2A, mathrsfs, tipa, wasysym...) or is math used as text: found by
# compiling every character pylatexenc knows (tests/unit/formats/test_latex.py does).
UNTYPESETTABLE = re.compile(
    r'\\(CYR[A-Za-z]*|cyr[A-Za-z]*|C|U|DownArrowUpArrow|VDash|allequal|approxnotequal|'
    r'arrowwaveleft|arrowwaveright|clockoint|clwintegral|dblarrowupdown|estimates|flat|'
    r'forcesextra|hermitconjmatrix|homothetic|image|lazysinv|mathscr|natural|'
    r'notgreaterless|notlessgreater|nument|original|precedesnotsimilar|quarternote|'
    r'recorder|rightangle|rightanglearc|sharp|sqrint|starequal|surfintegral|textfrac|'
    r'textglotstop|texthvlig|textnrleg|textphi|textschwa|textturnk|tildetrpl|truestate|'
    r'udots|varperspcorrespond|verymuchgreater|verymuchless|volintegral)(?![A-Za-z])')
UNTYPESETTABLE_CHARS = '\u025b\u0390\u03d2'  # \varepsilon, \Upsilon... outside math
# Characters that only join or vary their neighbours (zero-width joiner, variation
# selectors, emoji skin tones, tags): nothing to show beside an emoji's placeholder.
INVISIBLE = re.compile('[\u200b-\u200f\u2060-\u2064\ufe00-\ufe0f\U0001f3fb-\U0001f3ff'
                       '\U000e0000-\U000e007f]')
CONTROL = re.compile('[\x00-\x08\x0b-\x1f\x7f-\x9f]')  # all but tab and newline
IMAGE_EXT = {'image/png': '.png', 'image/jpeg': '.jpg', 'image/gif': '.gif',
             'image/svg+xml': '.svg'}
INCLUDABLE = ('.png', '.jpg', '.pdf')  # what pdflatex's graphicx reads

PREAMBLE = r'''\documentclass[11pt]{article}
\usepackage[utf8]{inputenc}
\usepackage[T1]{fontenc}
\IfFileExists{lmodern.sty}{\usepackage{lmodern}}{}
\usepackage{amsmath,amssymb}
\usepackage{graphicx}
\usepackage{listings}
\usepackage[hidelinks]{hyperref}
\lstset{basicstyle=\ttfamily\small,breaklines=true,columns=fullflexible,
  keepspaces=true,upquote=true,extendedchars=true}
\lstdefinestyle{input}{frame=single,framerule=0.4pt}
\lstdefinestyle{output}{frame=none,xleftmargin=1.5em}
\IfFileExists{ulem.sty}{\usepackage[normalem]{ulem}}{}\providecommand{\sout}[1]{#1}
%% Sage's macros, as Sage's own LaTeX output uses them
\newcommand{\Bold}[1]{\mathbf{#1}}
\newcommand{\ZZ}{\Bold{Z}}\newcommand{\NN}{\Bold{N}}\newcommand{\RR}{\Bold{R}}
\newcommand{\CC}{\Bold{C}}\newcommand{\QQ}{\Bold{Q}}\newcommand{\FF}{\Bold{F}}
\newcommand{\QQbar}{\overline{\QQ}}\newcommand{\GF}[1]{\Bold{F}_{#1}}
\newcommand{\Zp}[1]{\ZZ_{#1}}\newcommand{\Qp}[1]{\QQ_{#1}}\newcommand{\Zmod}[1]{\ZZ/#1\ZZ}
\newcommand{\CDF}{\Bold{C}}\newcommand{\CIF}{\Bold{C}}\newcommand{\CLF}{\Bold{C}}
\newcommand{\RDF}{\Bold{R}}\newcommand{\RIF}{\Bold{I}\Bold{R}}\newcommand{\RLF}{\Bold{R}}
\newcommand{\CFF}{\Bold{CFF}}
\providecommand{\SL}{\mathrm{SL}}\providecommand{\PSL}{\mathrm{PSL}}
\providecommand{\lcm}{\operatorname{lcm}}\providecommand{\dist}{\mathrm{dist}}
%s\title{%s}
\date{%s}
\begin{document}
%s\maketitle
'''


@functools.lru_cache(maxsize=4096)
def char_latex(char):
    """One character as LaTeX pdflatex typesets, or its placeholder."""
    tex = _encoder.unicode_to_latex(char)
    if char in UNTYPESETTABLE_CHARS or UNTYPESETTABLE.search(tex):
        return _placeholder(char)
    return tex


def clean_text(text):
    """``text`` less what a page does not show either (control and joining characters),
    with its line ends as ``\n``."""
    text = str(text).replace('\r\n', '\n').replace('\r', '\n')
    return INVISIBLE.sub('', CONTROL.sub('', text))


def tex_escape(text):
    """Text as LaTeX that typesets it (``\\``, ``{``, ``~``, ``é`` ...); what pdflatex
    cannot typeset (Chinese, emoji...) as its code point."""
    return re.sub(r'[^A-Za-z0-9 \n]', lambda m: char_latex(m.group(0)), clean_text(text))


def _wrap_placeholders(line, width=80):
    """A line cut where its placeholders make it wider than ``width`` columns: listings
    breaks lines at spaces only, and too long a line is an error ("Dimension too
    large"), not an overfull box."""
    if not any(char_latex(c).startswith('\\texttt{[U+') for c in set(line) if c > '\x7f'):
        return line
    out, column = [], 0
    for c in line:
        column += 9 if char_latex(c).startswith('\\texttt{[U+') else 1
        if column > width and out:
            out.append('\n')
            column = 0
        out.append(c)
    return ''.join(out)


def listing(text, style):
    """``text`` in a listing; ``\\end{lstlisting}`` inside cannot end it.  Characters
    beyond ASCII are given to listings as ``literate`` replacements (it reads bytes, and
    UTF-8 in a listing is an error)."""
    text = clean_text(text)
    text = re.sub(r'\\end(\s*)\{lstlisting\}', r'\\end \1{lstlisting}', text)
    text = '\n'.join(_wrap_placeholders(line) for line in text.split('\n'))
    literate = ' '.join('{%s}{{%s}}1' % (c, char_latex(c))
                        for c in sorted(set(re.findall(r'[^\x00-\x7f]', text))))
    options = 'style=%s' % style + (',literate=%s' % literate if literate else '')
    return '\\begin{lstlisting}[%s]\n%s\n\\end{lstlisting}\n' % (options, text.rstrip('\n'))


# --- math --------------------------------------------------------------------------------

# Environments that are displayed math themselves (an error inside \[ \], as MathJax lets
# people write them), and the others, which need math around them.
DISPLAY_ENVIRONMENTS = re.compile(
    r'\\begin\{((?:equation|align|alignat|flalign|gather|multline|eqnarray)\*?)\}'
    r'[\s\S]*\\end\{\1\}')
# What a displayed environment is within other math (an environment beside other TeX).
INNER_ENVIRONMENT = {'equation': 'gathered', 'gather': 'gathered', 'multline': 'gathered',
                     'align': 'aligned', 'flalign': 'aligned', 'eqnarray': 'aligned',
                     'alignat': 'alignedat'}
# The environments a formula may hold: MathJax's that amsmath and LaTeX define (MathJax
# shows any other as its source too: tikzpicture, CD, dcases...).
MATH_ENVIRONMENTS = {
    name + star for star in ('', '*') for name in (
        'array', 'matrix', 'pmatrix', 'bmatrix', 'Bmatrix', 'vmatrix', 'Vmatrix',
        'smallmatrix', 'cases', 'aligned', 'alignedat', 'gathered', 'split', 'subarray',
        'equation', 'align', 'alignat', 'flalign', 'gather', 'multline', 'eqnarray')}
_BEGIN_END = re.compile(r'\\(begin|end)\s*\{([^{}]*)\}')
DEFINITION = re.compile(r'\\(?:re)?newcommand\*?\s*(?:\{\s*\\([A-Za-z]+)\s*\}|\\([A-Za-z]+))'
                        r'\s*(\[\d\])?\s*(\[[^\]]*\])?\s*\{'
                        r'|\\DeclareMathOperator\*?\s*(?:\{\s*\\([A-Za-z]+)\s*\}|\\([A-Za-z]+))'
                        r'\s*\{'
                        r'|\\def\s*\\([A-Za-z]+)\s*\{')


def _braced(tex, start):
    """The end of the group opening at ``tex[start - 1]`` (a ``{``), or None."""
    depth, i = 1, start
    while i < len(tex):
        c = tex[i]
        if c == '\\':
            i += 2
            continue
        depth += {'{': 1, '}': -1}.get(c, 0)
        if depth == 0:
            return i + 1
        i += 1
    return None


# TeX that writes into the PDF itself (annotations, actions, JavaScript), reads or writes
# files, or makes a control sequence out of characters, which would get past this list:
# a formula holding one is shown as its source.
UNSAFE_MATH = re.compile(r'\\(pdf[A-Za-z]*|special|immediate|write|openout|openin|read|'
                         r'input|include|endinput|csname|scantokens|catcode|every[A-Za-z]+|'
                         r'output|lccode|uccode|directlua)(?![A-Za-z])|\^\^')


def math_is_sound(tex):
    """Whether TeX typesets ``tex`` without an error of structure: braces, ``\\left`` and
    ``\\right``, ``\\begin`` and ``\\end`` paired (MathJax shows a broken formula in
    red; pdflatex would stop the whole document)."""
    depth, i = 0, 0
    while i < len(tex):
        c = tex[i]
        if c == '\\':
            i += 2
            continue
        depth += {'{': 1, '}': -1}.get(c, 0)
        if depth < 0:
            return False
        i += 1
    if depth:
        return False
    if len(re.findall(r'\\left(?![A-Za-z])', tex)) != len(re.findall(r'\\right(?![A-Za-z])', tex)):
        return False
    stack = []
    for kind, name in _BEGIN_END.findall(tex):
        if name not in MATH_ENVIRONMENTS:
            return False
        if kind == 'begin':
            stack.append(name)
        elif not stack or stack.pop() != name:
            return False
    return not stack and '\\end{document}' not in tex


class Math:
    """The formulas of one document: each made safe to typeset (``formula``), and the
    definitions (``\\newcommand`` ...) and names its formulas use, for the preamble."""

    def __init__(self):
        self.definitions = []
        self.names = set()

    def _hoist(self, tex):
        """``tex`` less its definitions, which go to the preamble (MathJax's hold for the
        whole page; ``\\DeclareMathOperator`` is a preamble command in LaTeX)."""
        out, pos = [], 0
        for m in DEFINITION.finditer(tex):
            if m.start() < pos:
                continue
            end = _braced(tex, m.end())
            if end is None:
                continue
            name = next(g for g in (m.group(1), m.group(2), m.group(5), m.group(6),
                                    m.group(7)) if g)
            body = tex[m.end():end - 1]
            if not math_is_sound(body):
                continue
            if m.group(5) or m.group(6):
                self.definitions.append('\\sagenbdefine{\\%s}{\\operatorname{%s}}'
                                        % (name, body))
            else:
                self.definitions.append('\\sagenbdefine{\\%s}%s%s{%s}'
                                        % (name, m.group(3) or '', m.group(4) or '', body))
            self.names.add(name)
            self.names.update(re.findall(r'\\([A-Za-z]+)', body))
            out.append(tex[pos:m.start()])
            pos = end
        out.append(tex[pos:])
        return ''.join(out)

    def formula(self, tex, inline=False):
        """A formula as written in a text cell or output (with its delimiters), as
        LaTeX that compiles: non-ASCII characters as text, displayed environments
        outside ``\\[ \\]``, a broken formula as its source in type; ``inline`` (in a
        heading) as ``$...$`` whatever its delimiters."""
        tex = clean_text(tex)
        if UNSAFE_MATH.search(tex):
            return '\\texttt{%s}' % tex_escape(tex)
        tex = re.sub(r'[^\x00-\x7f]', lambda m: '\\text{%s}' % char_latex(m.group(0)), tex)
        tex = self._hoist(tex)
        # A comment or a parameter in a formula is an error, or eats its end, in LaTeX;
        # so is & outside an environment that aligns.
        tex = re.sub(r'(?<!\\)((?:\\\\)*)([%#])', r'\1\\\2', tex)
        if '\\begin' not in tex:
            tex = re.sub(r'(?<!\\)((?:\\\\)*)&', r'\1\\&', tex)
        inner, _ = textcells.split_math(tex)
        if not math_is_sound(tex):
            return '\\texttt{%s}' % tex_escape(tex)
        if not inner.strip():
            return ''
        self.names.update(re.findall(r'\\([A-Za-z]+)', tex))
        if inline:
            tex = '$%s$' % inner
        elif DISPLAY_ENVIRONMENTS.fullmatch(inner.strip()):
            return '\n%s\n' % inner.strip()
        tex = re.sub(r'\\(begin|end)\s*\{(%s)\*?\}' % '|'.join(INNER_ENVIRONMENT),
                     lambda m: '\\%s{%s}' % (m.group(1), INNER_ENVIRONMENT[m.group(2)]), tex)
        if tex.strip().startswith('\\begin') and not inline:
            return '\\[%s\\]' % tex.strip()
        return tex

    def preamble(self):
        """The definitions found, after a fallback that keeps a redefinition from
        being an error."""
        if not self.definitions:
            return ''
        return ('\\newcommand{\\sagenbdefine}[1]{\\ifdefined#1\\expandafter\\renewcommand'
                '\\else\\expandafter\\newcommand\\fi#1}\n' + '\n'.join(self.definitions) + '\n')

    def fallbacks(self):
        """Every name the formulas use that LaTeX does not define (``\\cancel``,
        ``\\bbox``, a typo) typeset as its name rather than stopping the document."""
        return ''.join('\\ifdefined\\%s\\else\\def\\%s{\\textnormal{\\ttfamily'
                       '\\textbackslash %s}}\\fi\n' % (n, n, n) for n in sorted(self.names))


class _Renderer(LaTeXRenderer):
    """mistletoe's LaTeX, every piece of text escaped, raw HTML as its text, and only
    what the preamble loads (no csquotes; a table always has its column types; lists
    and quotes no deeper than LaTeX nests them; a heading's math inline)."""

    MAX_DEPTH = 4  # itemize's limit; LaTeX's lists and quotes together stop at 6

    def __init__(self, *extras, formulas=(), token='', inline_math=None):
        super().__init__(*extras)
        self.formulas, self.token, self.inline_math = formulas, token, inline_math
        self.depth = 0

    def _nested(self, token, begin, end):
        if self.depth >= self.MAX_DEPTH:
            return self.render_inner(token)
        self.depth += 1
        try:
            return begin + self.render_inner(token) + end
        finally:
            self.depth -= 1

    def render_list(self, token):
        tag = 'enumerate' if token.start is not None else 'itemize'
        if self.depth >= self.MAX_DEPTH:  # items as paragraphs
            return ''.join('\n\n--- %s' % self.render_inner(item).lstrip()
                           for item in token.children)
        return self._nested(token, '\\begin{%s}\n' % tag, '\\end{%s}\n' % tag)

    def render_heading(self, token):
        heading = super().render_heading(token)
        return textcells.restore_math(heading, self.formulas, self.token, self.inline_math)

    def render_raw_text(self, token, escape=True):
        return tex_escape(token.content) if escape else token.content

    def render_inline_code(self, token):
        return '\\texttt{%s}' % tex_escape(token.children[0].content)

    def render_block_code(self, token):
        return '\n' + listing(token.children[0].content, 'output')

    def render_image(self, token):
        alt = self.render_inner(token) or 'image'
        return '[%s: \\url{%s}]' % (alt, self.escape_url(token.src))

    def render_link(self, token):
        if not textcells.LINK.match(token.target):  # as the HTML: no javascript: or file:
            return self.render_inner(token)
        return '\\href{%s}{%s}' % (self.escape_url(token.target), self.render_inner(token))

    def render_auto_link(self, token):
        return '\\url{%s}' % self.escape_url(token.target)

    @staticmethod
    def escape_url(raw):
        # hyperref reads the URL verbatim but for # and %; the rest cannot break out
        raw = raw.replace('\\', '%5C').replace('{', '%7B').replace('}', '%7D')
        return re.sub(r'([#%])', r'\\\1', raw)

    def render_html_span(self, token):
        return ''

    def render_math(self, token):
        # mistletoe's own $...$ (one textcells.MATH left as text, "$ x $"): text, not
        # TeX, so it cannot get past Math.formula.
        return tex_escape(token.content)

    def render_quote(self, token):
        return self._nested(token, '\\begin{quote}\n', '\\end{quote}\n')

    def render_table(self, token):
        columns = max([len(token.column_align)] + [len(row.children) for row in
                                                    token.children])
        head = ''
        if hasattr(token, 'header'):
            head = self.render_table_row(token.header) + '\\hline\n'
        return '\\begin{tabular}{%s}\n%s%s\\end{tabular}\n' % (
            'l' * max(columns, 1), head, self.render_inner(token))

    def render_line_break(self, token):
        # \newline where a line cannot end (a paragraph's start) is an error.
        return '\n' if token.soft else '\\leavevmode\\newline\n'

    def render_html_block(self, token):
        text = html.unescape(nh3.clean(token.content, tags=set()))
        return '\n%s\n' % tex_escape(text)


def text_cell_latex(source, fmt, math=None):
    """A text cell as LaTeX (its math as written, made safe by ``math``)."""
    math = math or Math()
    if fmt == 'html':
        text, formulas, token = textcells.protect_math(source)
        text = markdownify.markdownify(nh3.clean(text), heading_style='ATX')
    else:
        text, formulas, token = textcells.protect_math(source)
    unescape = html.unescape if fmt == 'html' else str
    with _Renderer(HtmlBlock, HtmlSpan, formulas=formulas, token=token,
                   inline_math=lambda tex: math.formula(unescape(tex), inline=True)) \
            as renderer:
        body = renderer.render_inner(mistletoe.Document(text))
    return textcells.restore_math(body, formulas, token,
                                  lambda tex: math.formula(unescape(tex)))


def math_latex(tex, math=None):
    """A typeset result: displayed, as the page shows it."""
    return (math or Math()).formula('\\[%s\\]' % textcells.split_math(tex)[0])


def output_latex(output, typeset, cell_number, images, math=None):
    """An output as LaTeX; its image, if any, added to ``images`` (name -> bytes)."""
    kind = output.get('output_type')
    if kind == 'stream':
        return listing(htmlpage.plain_text(output.get('text')), 'output')
    if kind == 'error':
        tb = htmlpage.plain_text('\n'.join(map(str, output.get('traceback') or [])))
        return listing(tb or '%s: %s' % (output.get('ename'), output.get('evalue')),
                       'output')
    if kind not in ('execute_result', 'display_data'):
        return ''
    data = output.get('data') or {}
    instead = htmlpage.widget_or_file(output)
    if instead is not None:
        return '\\emph{%s}\n' % tex_escape(instead)
    image = htmlpage.output_images(output)
    if image:
        name = 'images/cell-%d-%d%s' % (cell_number, len(images) + 1, IMAGE_EXT[image[0]])
        images[name] = image[1]
        if name.endswith(INCLUDABLE):
            return '\\begin{center}\n\\includegraphics[width=0.7\\linewidth]{%s}\n' \
                   '\\end{center}\n' % name
        return '\\emph{[image: %s]}\n' % tex_escape(name)
    plain = htmlpage.prefers_plain(output, typeset)
    if 'text/latex' in data and not plain:
        tex = htmlpage.join_text(data['text/latex'])
        if textcells.has_text_math(tex):
            return text_cell_latex(tex, 'markdown', math)
        return math_latex(tex, math) + '\n'
    if 'text/html' in data and not plain:
        source = htmlpage.join_text(data['text/html'])
        as_tex = htmlpage.HTML_AS_LATEX.match(source)
        if as_tex:
            return math_latex('\\[%s\\]' % as_tex.group(1) if as_tex.group(1) is not None
                              else as_tex.group(2), math) + '\n'
        if 'text/plain' not in data:
            return text_cell_latex(source, 'html', math)
    if 'text/plain' in data:
        return listing(htmlpage.plain_text(data['text/plain']), 'output')
    if 'text/markdown' in data:
        return text_cell_latex(htmlpage.join_text(data['text/markdown']), 'markdown', math)
    return ''


def write_latex(data, meta=''):
    """``(tex source, {image name: bytes})`` of a :class:`WorksheetData`."""
    images, math, parts = {}, Math(), []
    for number, cell in enumerate(data.cells, 1):
        if cell.type == 'text':
            parts.append('%% text cell %d\n%s\n' % (
                number, text_cell_latex(cell.input, cell.format, math)))
            continue
        parts.append('%% cell %d\n%s' % (number, listing(cell.input, 'input')))
        for out in htmlpage.merged_outputs(cell.outputs):
            parts.append(output_latex(out, data.typeset, number, images, math))
    parts.append('\\end{document}\n')
    head = PREAMBLE % (math.preamble(), tex_escape(data.name), tex_escape(meta),
                       math.fallbacks())
    return head + ''.join(parts), images


# --- PDF --------------------------------------------------------------------------------

class TexUnavailable(Exception):
    """No TeX here (the message says what to install or set)."""


class TexFailed(Exception):
    """pdflatex ran and made no PDF (the message holds the end of its log)."""


def find_pdflatex(setting):
    """The pdflatex to run: ``setting`` (a command name or path) or ``pdflatex`` on
    PATH; ``TexUnavailable`` when there is none."""
    name = setting or 'pdflatex'
    found = shutil.which(name)
    if not found:
        raise TexUnavailable(
            'PDF export is not available on this server: no TeX installation was found '
            '(%s is not on the PATH). An administrator can install TeX Live '
            '(Debian: texlive-latex-recommended lmodern) or set sagenb.export.pdflatex; '
            'download.tex gives the LaTeX source to compile elsewhere.' % name)
    return found


def pdf(tex, images, command, timeout=60):
    """The PDF of ``tex`` (with ``images``) made by ``command`` (a pdflatex), run twice
    for references, sandboxed (module docstring)."""
    with tempfile.TemporaryDirectory(prefix='sagenb-tex-') as folder:
        with open(os.path.join(folder, 'worksheet.tex'), 'w', encoding='utf-8') as f:
            f.write(tex)
        os.mkdir(os.path.join(folder, 'images'))
        for name, content in images.items():
            with open(os.path.join(folder, name), 'wb') as f:
                f.write(content)
        env = dict(os.environ, openin_any='p', openout_any='p', shell_escape='f',
                   TEXMFOUTPUT=folder, HOME=folder)
        args = [command, '-no-shell-escape', '-interaction=nonstopmode', '-halt-on-error',
                'worksheet.tex']
        for _ in range(2):
            try:
                subprocess.run(args, cwd=folder, env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               timeout=timeout, check=False)
            except subprocess.TimeoutExpired:
                raise TexFailed('pdflatex took longer than %d s' % timeout) from None
        target = os.path.join(folder, 'worksheet.pdf')
        if not os.path.exists(target):
            log = ''
            try:
                with open(os.path.join(folder, 'worksheet.log'), errors='replace') as f:
                    log = f.read()
                # The first error and where it was (the log's end is TeX's statistics).
                first = re.search(r'^! ', log, re.M)
                log = log[first.start():][:1500] if first else log[-1500:]
            except OSError:
                pass
            raise TexFailed('pdflatex made no PDF:\n' + log)
        with open(target, 'rb') as f:
            return f.read()
