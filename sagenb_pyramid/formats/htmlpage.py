"""A worksheet as one static HTML file (``download.html``), and the cells of the print
view: one renderer, two outputs.

The file holds everything it shows (plots as ``data:`` images, its stylesheet inline,
math as MathML, which browsers draw themselves) and runs no script at all: its
Content-Security-Policy (a meta tag, since a file opened from disk has no headers) is
``default-src 'none'``, with images only from ``data:`` and inline styles; every piece
of the worksheet's HTML (text cells, HTML outputs) is sanitized by nh3 as well
(``textcells.sanitize``).  Outputs are drawn as the page draws an untrusted worksheet
(static/page/outputs.js): no HTML output runs in a frame; widgets and files kept with a
cell are named, not shown.
"""
import base64
import html
import re

from . import textcells

FILE_CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
            "font-src data:; base-uri 'none'; form-action 'none'")
IMAGE_TYPES = ('image/png', 'image/jpeg', 'image/gif')
ANSI = re.compile(r'\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07')
# Sage's old-style HTML around math, shown as math (outputs.js: htmlAsLatex).
HTML_AS_LATEX = re.compile(
    r'^\s*(?:<html>)?\s*(?:<script type="math/tex(?:; *mode=display)?">([\s\S]*?)</script>'
    r'|(\\\[[\s\S]*\\\]|\$\$[\s\S]*\$\$))\s*(?:</html>)?\s*$')
DATA_TYPES = {'.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg',
              '.gif': 'image/gif', '.svg': 'image/svg+xml', '.webp': 'image/webp'}


def join_text(value):
    return ''.join(value) if isinstance(value, list) else str(value or '')


def plain_text(value):
    """Text of a stream or an output without its ANSI colours and carriage returns
    (what a terminal would show last on each line)."""
    text = ANSI.sub('', join_text(value))
    return '\n'.join(line.rsplit('\r', 1)[-1] for line in text.split('\n'))


def image_urls(data_files):
    """``{name: data: URL}`` of a worksheet's image data files (legacy text cells refer
    to them as ``<img src="name">``)."""
    urls = {}
    for name, content in (data_files or {}).items():
        kind = DATA_TYPES.get(name[name.rfind('.'):].lower()) if '.' in name else None
        if kind:
            urls[name] = 'data:%s;base64,%s' % (kind, base64.b64encode(content).decode())
    return urls


def attachment_urls(attachments):
    """``{"attachment:<name>": data: URL}`` of a text cell's attachments (images only:
    the first image type of each)."""
    urls = {}
    for name, bundle in (attachments or {}).items():
        for mime in IMAGE_TYPES + ('image/svg+xml',):
            if mime in (bundle or {}):
                urls['attachment:' + name] = 'data:%s;base64,%s' % (
                    mime, base64.b64encode(bundle[mime]).decode())
                break
    return urls


def output_images(output):
    """The images of an output as ``(mime, bytes)``: what the LaTeX export saves."""
    data = output.get('data') or {}
    for mime in IMAGE_TYPES:
        if mime in data:
            return mime, base64.b64decode(re.sub(r'\s+', '', join_text(data[mime])))
    if 'image/svg+xml' in data:
        return 'image/svg+xml', join_text(data['image/svg+xml']).encode('utf-8')
    return None


def merged_outputs(outputs):
    """Consecutive stream chunks of one name as one."""
    items = []
    for out in outputs or []:
        if not isinstance(out, dict):
            continue
        if out.get('output_type') == 'stream':
            text = join_text(out.get('text'))
            name = out.get('name') or 'stdout'
            if items and items[-1].get('output_type') == 'stream' and items[-1]['name'] == name:
                items[-1]['text'] += text
            else:
                items.append({'output_type': 'stream', 'name': name, 'text': text})
        else:
            items.append(out)
    return items


def cell_images(outputs):
    """``{file name: data: URL}`` of a cell's inline images (legacy ``cell://name``)."""
    found = {}
    for out in outputs or []:
        if not isinstance(out, dict):
            continue
        name = ((out.get('metadata') or {}).get('sagenb') or {}).get('file')
        image = output_images(out)
        if isinstance(name, str) and image and image[0] in IMAGE_TYPES:
            found[name] = 'data:%s;base64,%s' % (image[0], base64.b64encode(image[1]).decode())
    return found


def prefers_plain(output, typeset):
    data = output.get('data') or {}
    return output.get('output_type') == 'execute_result' and not typeset \
        and 'text/plain' in data


def widget_or_file(output):
    """What a static page says instead of an output it cannot show, or None."""
    data = output.get('data') or {}
    meta = (output.get('metadata') or {}).get('sagenb') or {}
    if 'application/vnd.jupyter.widget-view+json' in data:
        return '[an interactive control: open the worksheet in the notebook to use it]'
    name = meta.get('file')
    if isinstance(name, str) and name and not output_images(output):
        return '[file: %s]' % name
    return None


def mime_html(output, typeset, images):
    data = output.get('data') or {}
    meta = (output.get('metadata') or {}).get('sagenb') or {}
    if meta.get('page'):  # help (foo?): its text
        return '<pre class="output-text">%s</pre>' % html.escape(plain_text(
            data.get('text/plain', '')))
    instead = widget_or_file(output)
    if instead is not None:
        return '<p class="output-note">%s</p>' % html.escape(instead)
    alt = html.escape(plain_text(data.get('text/plain', ''))[:200] or 'output image', quote=True)
    image = output_images(output)
    if image:
        mime, content = image
        return '<img class="output-image" alt="%s" src="data:%s;base64,%s">' % (
            alt, mime, base64.b64encode(content).decode())
    plain = prefers_plain(output, typeset)
    if 'text/latex' in data and not plain:
        tex = join_text(data['text/latex'])
        if textcells.has_text_math(tex):
            return '<div class="output-latex">%s</div>' % textcells.text_cell_html(
                tex, 'html')
        return '<div class="output-latex">%s</div>' % textcells.math_html(tex, output=True)
    if 'text/html' in data and not plain:
        source = join_text(data['text/html'])
        source = re.sub(r'cell://([^"\'<>\s]+)',
                        lambda m: images.get(m.group(1), m.group(0)), source)
        as_tex = HTML_AS_LATEX.match(source)
        if as_tex:
            tex = '\\[%s\\]' % as_tex.group(1) if as_tex.group(1) is not None \
                else as_tex.group(2)
            return '<div class="output-latex">%s</div>' % textcells.math_html(tex, output=True)
        return '<div class="output-html">%s</div>' % textcells.text_cell_html(source, 'html')
    if 'text/plain' in data:
        return '<pre class="output-text">%s</pre>' % html.escape(plain_text(data['text/plain']))
    if 'text/markdown' in data:
        return '<div class="output-markdown">%s</div>' % textcells.text_cell_html(
            join_text(data['text/markdown']), 'markdown')
    return '<pre class="output-text">[%s]</pre>' % html.escape(', '.join(data) or 'empty output')


def output_html(output, typeset, images):
    kind = output.get('output_type')
    if kind == 'stream':
        name = 'stderr' if output.get('name') == 'stderr' else 'stdout'
        return '<pre class="output-stream %s">%s</pre>' % (name, html.escape(
            plain_text(output.get('text'))))
    if kind == 'error':
        head = '<div class="error-line"><span class="ename">%s</span>%s</div>' % (
            html.escape(plain_text(output.get('ename') or 'Error')),
            ': ' + html.escape(plain_text(output.get('evalue'))) if output.get('evalue') else '')
        tb = plain_text('\n'.join(map(str, output.get('traceback') or [])))
        return '<div class="output-error">%s%s</div>' % (
            head, '<pre class="traceback-text">%s</pre>' % html.escape(tb) if tb else '')
    if kind in ('execute_result', 'display_data'):
        return mime_html(output, typeset, images)
    return ''


def cells_html(data):
    """The cells of a :class:`WorksheetData` as safe HTML (the print view's and the
    file's)."""
    images = image_urls(data.data_files)
    parts = []
    for number, cell in enumerate(data.cells, 1):
        if cell.type == 'text':
            parts.append('<section class="cell text-cell" id="cell-%d"><div class="text-rendered">'
                         '%s</div></section>' % (number, textcells.text_cell_html(
                             cell.input, cell.format,
                             dict(images, **attachment_urls(cell.attachments)))))
            continue
        outputs = ''.join('<div class="output-item">%s</div>' % output_html(
            out, data.typeset, cell_images(cell.outputs))
            for out in merged_outputs(cell.outputs))
        count = '[%d]' % cell.execution_count if cell.execution_count else ''
        parts.append(
            '<section class="cell compute-cell" id="cell-%d"><div class="input">'
            '<span class="prompt">%s</span><pre class="input-code"><code>%s</code></pre></div>'
            '<div class="output">%s</div></section>' % (
                number, count, html.escape(cell.input), outputs))
    return '\n'.join(parts)


def write_html(data, css, meta=''):
    """The whole file (bytes): ``css`` (the stylesheet) inline, ``meta`` a line under
    the title (owner, date)."""
    return ('<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            '<meta http-equiv="Content-Security-Policy" content="%s">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            '<meta name="generator" content="Sage notebook">\n'
            '<title>%s</title>\n<style>\n%s\n</style>\n</head>\n<body class="export">\n'
            '<main>\n<header class="print-head"><h1>%s</h1><p class="print-meta">%s</p>'
            '</header>\n<div class="cells">\n%s\n</div>\n</main>\n</body>\n</html>\n' % (
                FILE_CSP, html.escape(data.name), css, html.escape(data.name),
                html.escape(meta), cells_html(data))).encode('utf-8')
