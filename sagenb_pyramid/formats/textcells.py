"""Text cells and typeset math for the static exports (HTML, LaTeX) and the print view.

Markdown is markdown-it-py (CommonMark, raw HTML kept, links only from URLs with a
scheme: what the page's markdown-it does, static/page/markdown.js), with the TeX set
aside first so that ``a_1 * b_2`` stays math, and handed back to the caller's ``math``
function.  Math becomes MathML with latex2mathml (browsers draw MathML themselves: the
exported file needs no script), after Sage's macros (``\\ZZ``, ``\\Bold{Q}`` ...) are
expanded.  What the HTML says is cleaned with nh3 (Ammonia) by ``sanitize``: no script,
no handler, no style element, no frame or form, no image but a ``data:`` one.
"""
import html
import re
import secrets
from urllib.parse import unquote

import latex2mathml.converter
import nh3
from markdown_it import MarkdownIt

_md = MarkdownIt('commonmark', {'html': True, 'linkify': True}).enable(
    ['linkify', 'table', 'strikethrough'])
# As the page: only URLs with their scheme become links ("README.md" stays text).
_md.linkify.set({'fuzzy_link': False, 'fuzzy_email': False})

FENCED_CODE = re.compile(r'^ {0,3}(```|~~~)[^\n]*\n[\s\S]*?^ {0,3}\1[ \t]*$', re.M)
INLINE_CODE = re.compile(r'(`+)(?:[^`\n]|[^`\n][\s\S]*?[^`\n])\1(?!`)')
MATH = re.compile(r'\$\$[\s\S]+?\$\$|\\\[[\s\S]+?\\\]|\\\([\s\S]+?\\\)'
                  r'|\\begin\{([a-zA-Z]+\*?)\}[\s\S]+?\\end\{\1\}'
                  r'|(?<![\\$])\$(?=[^\s$])(?:[^$\n\\]|\\[\s\S])*?\$')

# Sage's LaTeX macros (static/page/math.js has the same list for MathJax).
SAGE_MACROS = {
    'ZZ': r'\mathbf{Z}', 'NN': r'\mathbf{N}', 'RR': r'\mathbf{R}', 'CC': r'\mathbf{C}',
    'QQ': r'\mathbf{Q}', 'QQbar': r'\overline{\mathbf{Q}}', 'FF': r'\mathbf{F}',
    'CDF': r'\mathbf{C}', 'CIF': r'\mathbf{C}', 'CLF': r'\mathbf{C}', 'RDF': r'\mathbf{R}',
    'RIF': r'\mathbf{I} \mathbf{R}', 'RLF': r'\mathbf{R}', 'CFF': r'\mathbf{CFF}',
    'SL': r'\mathrm{SL}', 'PSL': r'\mathrm{PSL}', 'lcm': r'\operatorname{lcm}',
    'dist': r'\mathrm{dist}', 'Disk': r'\mathbb{D}', 'im': r'\operatorname{im}',
}
SAGE_MACROS_1 = {'Bold': r'\mathbf{%s}', 'GF': r'\mathbf{F}_{%s}', 'Zp': r'\mathbf{Z}_{%s}',
                 'Qp': r'\mathbf{Q}_{%s}', 'Zmod': r'\mathbf{Z}/%s\mathbf{Z}'}
_MACRO = re.compile(r'\\(%s)(?![A-Za-z])' % '|'.join(sorted(SAGE_MACROS, key=len, reverse=True)))
_MACRO_1 = re.compile(r'\\(%s)\s*\{([^{}]*)\}' % '|'.join(SAGE_MACROS_1))


def expand_sage_macros(tex):
    for _ in range(3):  # \GF{p} inside \Bold{...}
        tex = _MACRO_1.sub(lambda m: SAGE_MACROS_1[m.group(1)] % m.group(2), tex)
    return _MACRO.sub(lambda m: SAGE_MACROS[m.group(1)], tex)


def split_math(tex):
    """``(math, display)`` of TeX written with its delimiters, or ``(tex, True)``."""
    s = tex.strip()
    for open_, close, display in (('$$', '$$', True), ('\\[', '\\]', True),
                                  ('\\(', '\\)', False), ('$', '$', False)):
        if len(s) >= len(open_) + len(close) and s.startswith(open_) and s.endswith(close):
            inner = s[len(open_):len(s) - len(close)]
            if open_ == '$' and re.search(r'(^|[^\\])\$', inner):
                break
            return re.sub(r'^\s*\\displaystyle\b', '', inner).strip(), display
    return s, True


def has_text_math(tex):
    """Whether a text/latex output is text with formulas in it (``$a$ and $b$``)."""
    s = tex.strip()
    math, _ = split_math(s)
    return math == s and bool(re.search(r'(^|[^\\])\$|\\\(|\\\[', s))


# --- math as MathML ---------------------------------------------------------------------

MATHML_TAGS = {
    'math', 'semantics', 'annotation', 'mrow', 'mi', 'mn', 'mo', 'ms', 'mtext', 'mspace',
    'mfrac', 'msqrt', 'mroot', 'mstyle', 'merror', 'mpadded', 'mphantom', 'menclose',
    'msub', 'msup', 'msubsup', 'munder', 'mover', 'munderover', 'mmultiscripts',
    'mprescripts', 'none', 'mtable', 'mtr', 'mtd', 'mlabeledtr', 'mfenced'}
MATHML_ATTRIBUTES = {
    'display', 'mathvariant', 'mathsize', 'mathcolor', 'mathbackground', 'stretchy',
    'fence', 'separator', 'lspace', 'rspace', 'minsize', 'maxsize', 'movablelimits',
    'accent', 'accentunder', 'largeop', 'symmetric', 'linethickness', 'displaystyle',
    'scriptlevel', 'columnalign', 'rowalign', 'columnspacing', 'rowspacing',
    'columnlines', 'rowlines', 'frame', 'width', 'height', 'depth', 'voffset', 'notation',
    'open', 'close', 'separators', 'encoding', 'form', 'columnspan', 'rowspan', 'xmlns'}


def mathml(tex, display):
    """TeX (without delimiters) as MathML, or the TeX itself as code when latex2mathml
    cannot read it."""
    try:
        out = latex2mathml.converter.convert(expand_sage_macros(tex),
                                             display='block' if display else 'inline')
    except Exception:  # noqa: BLE001 (any TeX it cannot read: shown as written)
        out = None
    if out:
        cleaned = nh3.clean(out, tags=MATHML_TAGS,
                            attributes={tag: MATHML_ATTRIBUTES for tag in MATHML_TAGS},
                            url_schemes=set(), link_rel=None, strip_comments=True)
        if '<math' in cleaned:
            return cleaned
    return '<code class="latex-source">%s</code>' % html.escape(tex)


def math_html(tex, output=False):
    """TeX with its delimiters (``$x$``, ``\\[x\\]``) as MathML; an ``output`` (a
    typeset result) is displayed whatever its delimiters, as the page shows it."""
    inner, display = split_math(tex)
    return mathml(inner, display or output)


# --- Markdown ---------------------------------------------------------------------------

def protect_math(source, pattern=MATH):
    """``(text, formulas, token)``: the TeX of ``source`` replaced by ``token<n>z``
    markers (a random token the text cannot hold), code set aside first as Markdown
    sees it; ``\\$`` kept as a dollar."""
    token = 'sagenbmath%sq' % secrets.token_hex(6)
    code, formulas = [], []

    def set_code(m):
        code.append(m.group(0))
        return '\x01%d\x02' % (len(code) - 1)

    def un_code(text):
        return re.sub(r'\x01(\d+)\x02', lambda m: code[int(m.group(1))], text)

    def set_tex(m):
        formulas.append(un_code(m.group(0)))
        return '%s%dz' % (token, len(formulas) - 1)

    s = re.sub(r'[\x01-\x03]', '', str(source)).replace('\r\n', '\n').replace('\r', '\n')
    s = INLINE_CODE.sub(set_code, FENCED_CODE.sub(set_code, s))
    s = pattern.sub(set_tex, s)
    return un_code(s), formulas, token


def restore_math(text, formulas, token, render):
    return re.sub(re.escape(token) + r'(\d+)z',
                  lambda m: render(formulas[int(m.group(1))]), text)


def markdown_html(source):
    """Markdown (with TeX) as HTML, not yet sanitized; formulas left as markers:
    ``(html, formulas, token)``."""
    text, formulas, token = protect_math(source)
    return _md.render(text), formulas, token


# --- the sanitizer ----------------------------------------------------------------------

HTML_TAGS = {
    'a', 'abbr', 'b', 'blockquote', 'br', 'caption', 'cite', 'code', 'col', 'colgroup',
    'dd', 'del', 'details', 'dfn', 'div', 'dl', 'dt', 'em', 'figcaption', 'figure', 'font',
    'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'hr', 'i', 'img', 'ins', 'kbd', 'li', 'mark', 'ol',
    'p', 'pre', 'q', 's', 'samp', 'small', 'span', 'strike', 'strong', 'sub', 'summary',
    'sup', 'table', 'tbody', 'td', 'tfoot', 'th', 'thead', 'tr', 'tt', 'u', 'ul', 'var',
    'center', 'section', 'article', 'header', 'footer', 'main', 'nav', 'aside'}
GENERIC_ATTRIBUTES = {'title', 'lang', 'dir', 'class', 'style', 'align', 'valign'}
TAG_ATTRIBUTES = {
    'a': {'href'}, 'img': {'src', 'alt', 'width', 'height'},
    'td': {'colspan', 'rowspan'}, 'th': {'colspan', 'rowspan', 'scope'},
    'ol': {'start', 'type'}, 'font': {'color', 'size', 'face'}, 'col': {'span'},
    'details': {'open'}, 'table': {'border', 'cellpadding', 'cellspacing'},
}
# What a style attribute may set (as the page's sanitizer: no position, z-index,
# transform or opacity, so no overlay; url() never reaches here, the CSP refuses it).
STYLE_PROPERTIES = {
    'color', 'background-color', 'font', 'font-family', 'font-size', 'font-style',
    'font-weight', 'text-align', 'text-decoration', 'text-indent', 'text-transform',
    'vertical-align', 'white-space', 'line-height', 'letter-spacing', 'word-spacing',
    'margin', 'margin-top', 'margin-bottom', 'margin-left', 'margin-right', 'padding',
    'padding-top', 'padding-bottom', 'padding-left', 'padding-right', 'border',
    'border-top', 'border-bottom', 'border-left', 'border-right', 'border-color',
    'border-style', 'border-width', 'border-collapse', 'border-spacing', 'width',
    'height', 'max-width', 'max-height', 'min-width', 'min-height', 'display', 'float',
    'clear', 'overflow', 'list-style-type'}
LINK = re.compile(r'^(https?://|mailto:|#)', re.I)
DATA_IMAGE = re.compile(r'^data:image/(png|jpeg|gif|svg\+xml|webp);base64,[A-Za-z0-9+/=\s]*$')


def sanitize(fragment, images=None):
    """``fragment`` (HTML) with nothing that runs or loads: no script, style element,
    handler, frame, form or ``javascript:`` URL; an image keeps its ``src`` only as a
    ``data:`` image, or when ``images`` (name -> data: URL) has its relative name (or
    ``attachment:<name>``, a Jupyter cell's attachment);
    links only to ``http(s):``, ``mailto:`` or ``#``, with ``rel="noopener noreferrer"``."""
    images = images or {}

    def attribute(element, name, value):
        if element == 'img' and name == 'src':
            if DATA_IMAGE.match(value):
                return value
            if value.startswith('attachment:'):  # a Jupyter cell's own image, by name
                return images.get('attachment:' + unquote(value[len('attachment:'):]))
            return images.get(value.split('?', 1)[0].lstrip('./'))
        if element == 'a' and name == 'href':
            # Links that lead somewhere from a file: no relative or scheme-less URL.
            return value if LINK.match(value) else None
        return value

    return nh3.clean(
        fragment, tags=HTML_TAGS,
        attributes={'*': GENERIC_ATTRIBUTES, **TAG_ATTRIBUTES},
        url_schemes={'http', 'https', 'mailto', 'data', 'attachment'},
        attribute_filter=attribute, filter_style_properties=STYLE_PROPERTIES,
        link_rel='noopener noreferrer', strip_comments=True)


def text_cell_html(source, fmt, images=None):
    """A text cell as safe HTML with its math as MathML: Markdown rendered, or legacy
    HTML (sagenb's, with TeX in it) as it is, then sanitized."""
    if fmt == 'html':
        text, formulas, token = protect_math(source)
    else:
        text, formulas, token = markdown_html(source)
    safe = sanitize(text, images)
    return restore_math(safe, formulas, token, lambda tex: math_html(html.unescape(tex)))
