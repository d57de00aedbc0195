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

_encoder = UnicodeToLatexEncoder(non_ascii_only=False, unknown_char_policy='keep',
                                 replacement_latex_protection='braces-all')
IMAGE_EXT = {'image/png': '.png', 'image/jpeg': '.jpg', 'image/gif': '.gif',
             'image/svg+xml': '.svg'}
INCLUDABLE = ('.png', '.jpg', '.pdf')  # what pdflatex's graphicx reads

PREAMBLE = r'''\documentclass[11pt]{article}
\usepackage[utf8]{inputenc}
\usepackage[T1]{fontenc}
\usepackage{amsmath,amssymb}
\usepackage{graphicx}
\usepackage{listings}
\usepackage[hidelinks]{hyperref}
\lstset{basicstyle=\ttfamily\small,breaklines=true,columns=fullflexible,
  keepspaces=true,upquote=true,extendedchars=true}
\lstdefinestyle{input}{frame=single,framerule=0.4pt}
\lstdefinestyle{output}{frame=none,xleftmargin=1.5em}
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
\title{%s}
\date{%s}
\begin{document}
\maketitle
'''


def tex_escape(text):
    """Text as LaTeX that typesets it (``\\``, ``{``, ``~``, ``é`` ...)."""
    return _encoder.unicode_to_latex(text)


def listing(text, style):
    """``text`` in a listing; ``\\end{lstlisting}`` inside cannot end it."""
    text = re.sub(r'\\end(\s*)\{lstlisting\}', r'\\end \1{lstlisting}', text)
    return '\\begin{lstlisting}[style=%s]\n%s\n\\end{lstlisting}\n' % (style, text.rstrip('\n'))


class _Renderer(LaTeXRenderer):
    """mistletoe's LaTeX, every piece of text escaped, raw HTML as its text."""

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

    def render_html_block(self, token):
        text = html.unescape(nh3.clean(token.content, tags=set()))
        return '\n%s\n' % tex_escape(text)


def text_cell_latex(source, fmt):
    """A text cell as LaTeX (its math as written)."""
    if fmt == 'html':
        text, formulas, token = textcells.protect_math(source)
        text = markdownify.markdownify(nh3.clean(text), heading_style='ATX')
    else:
        text, formulas, token = textcells.protect_math(source)
    with _Renderer(HtmlBlock, HtmlSpan) as renderer:
        body = renderer.render_inner(mistletoe.Document(text))
    return textcells.restore_math(body, formulas, token,
                                  lambda tex: html.unescape(tex) if fmt == 'html' else tex)


def math_latex(tex):
    """A typeset result: displayed, as the page shows it."""
    return '\\[%s\\]' % textcells.split_math(tex)[0]


def output_latex(output, typeset, cell_number, images):
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
            return text_cell_latex(tex, 'markdown')
        return math_latex(tex) + '\n'
    if 'text/html' in data and not plain:
        source = htmlpage.join_text(data['text/html'])
        as_tex = htmlpage.HTML_AS_LATEX.match(source)
        if as_tex:
            return math_latex('\\[%s\\]' % as_tex.group(1) if as_tex.group(1) is not None
                              else as_tex.group(2)) + '\n'
        if 'text/plain' not in data:
            return text_cell_latex(source, 'html')
    if 'text/plain' in data:
        return listing(htmlpage.plain_text(data['text/plain']), 'output')
    if 'text/markdown' in data:
        return text_cell_latex(htmlpage.join_text(data['text/markdown']), 'markdown')
    return ''


def write_latex(data, meta=''):
    """``(tex source, {image name: bytes})`` of a :class:`WorksheetData`."""
    images = {}
    parts = [PREAMBLE % (tex_escape(data.name), tex_escape(meta))]
    for number, cell in enumerate(data.cells, 1):
        if cell.type == 'text':
            parts.append('%% text cell %d\n%s\n' % (number, text_cell_latex(cell.input,
                                                                              cell.format)))
            continue
        parts.append('%% cell %d\n%s' % (number, listing(cell.input, 'input')))
        for out in htmlpage.merged_outputs(cell.outputs):
            parts.append(output_latex(out, data.typeset, number, images))
    parts.append('\\end{document}\n')
    return ''.join(parts), images


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
            '(Debian: texlive-latex-recommended) or set sagenb.export.pdflatex; '
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
                    log = f.read()[-1500:]
            except OSError:
                pass
            raise TexFailed('pdflatex made no PDF:\n' + log)
        with open(target, 'rb') as f:
            return f.read()
