"""Sage's HTML manuals at ``/doc/``: where they are, their files, a page as a read-only
worksheet (its ``sage:`` examples as compute cells), the index of names and pages, and
the documentation worksheet each user's examples run in.

The manuals are package content (docs/doc.md says which packages): read from the disk at
each request, never stored in ZODB.  Pages are parsed with lxml; what a page
shows is sanitized again in the browser, and no script of the manuals runs in the
notebook's origin (docs/security.md, "The manuals").
"""
import html as html_module
import json
import os
import posixpath
import re
import sys
import threading
from urllib.parse import quote, unquote, urlsplit

import lxml.html

from .. import names
from ..resources import DOC_WORKSHEET_NUMBER, Worksheet
from ..web import api_error
from .evaluation import queue_cell
from .quota import require_room

# Where the packages put the manuals: passagemath's (sage.env.SAGE_DOC of this
# environment, <venv>/share/doc/sage) and Debian's sagemath-doc.
PACKAGE_PATHS = (os.path.join(sys.prefix, 'share', 'doc', 'sage', 'html'),
                 '/usr/share/doc/sagemath/html')
INSTALL_HINT = ('Sage\'s manuals are not installed on this server. An administrator '
                'installs them with "make doc" (Debian\'s sagemath-doc, 75 MB to download, '
                '444 MB on disk) or points sagenb.doc.path at a folder of Sage\'s HTML '
                'documentation (docs/doc.md).')

# Files of the manuals served as they are, by type.  Scripts are not: nothing of the
# manuals runs in the notebook's origin (a page is read through /doc/live/).
SERVED_TYPES = {
    '.html': 'text/html', '.htm': 'text/html', '.css': 'text/css', '.png': 'image/png',
    '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.gif': 'image/gif',
    '.svg': 'image/svg+xml', '.txt': 'text/plain', '.woff': 'font/woff',
    '.woff2': 'font/woff2', '.ttf': 'font/ttf', '.pdf': 'application/pdf',
}
# A file of the manuals opened directly: no script at all (a sandbox without
# allow-scripts), styles, images and fonts of the notebook's own address.
DOC_FILE_CSP = ("sandbox allow-popups allow-top-navigation-by-user-activation; "
                "default-src 'none'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                "font-src 'self' data:; base-uri 'none'; form-action 'none'")
# The most examples of a user's documentation worksheet: older ones are dropped.
DOC_CELLS_KEPT = 30
MAX_PAGE_BYTES = 20_000_000


# --- where the manuals are -------------------------------------------------------------

_roots = {}  # sagenb.doc.path -> the folder found (a folder not found is looked for again)


def doc_root(settings):
    """The folder of the manuals (``sagenb.doc.path``, else the installed package's), or
    None when there is none (looked for again at the next request: installing the
    package needs no restart)."""
    configured = (settings.get('sagenb.doc.path') or '').strip()
    found = _roots.get(configured)
    if found is not None and os.path.isdir(found):
        return found
    candidates = (os.path.expanduser(configured),) if configured else PACKAGE_PATHS
    for path in candidates:
        if os.path.isfile(os.path.join(path, 'index.html')) or manuals_below(path):
            _roots[configured] = os.path.realpath(path)
            return _roots[configured]
    return None


def require_root(request):
    root = doc_root(request.registry.settings)
    if root is None:
        raise api_error(404, INSTALL_HINT)
    return root


def manuals_below(root):
    """The manuals under ``root``: folders holding a Sphinx ``searchindex.js``, as
    ``(relative folder, absolute folder)``.  Module pages (``sage/``) and Sphinx's own
    folders (``_static`` ...) are not walked: 107 manuals of Debian's 90,000 files are
    found in about 10 ms."""
    found = []
    if not os.path.isdir(root):
        return found
    for folder, dirs, files in os.walk(root):
        here = 'searchindex.js' in files
        if here:
            found.append((os.path.relpath(folder, root).replace(os.sep, '/'), folder))
        dirs[:] = sorted(d for d in dirs if not d.startswith(('_', '.'))
                         and not (here and d in ('sage', 'sage_docbuild')))
    return found


def resolve(root, rel):
    """The file ``rel`` (a path below ``root``; a folder means its ``index.html``), or
    None.  Links are followed only while they stay under ``root``."""
    parts = [p for p in rel.split('/') if p]
    # A NUL is no file name (os.path.realpath raises ValueError on one).
    if any(p in ('.', '..') or p.startswith('.') or '\0' in p for p in parts):
        return None
    path = os.path.realpath(os.path.join(root, *parts))
    if path != root and not path.startswith(root + os.sep):
        return None
    if os.path.isdir(path):
        path = os.path.join(path, 'index.html')
    return path if os.path.isfile(path) else None


def served_type(path):
    return SERVED_TYPES.get(os.path.splitext(path)[1].lower())


def manual_list(root):
    """``[{path, title}]`` of the manuals, English first, for the index page."""
    return [{'path': rel, 'title': title} for rel, title in doc_index(root).manuals]


# --- a page as a read-only worksheet ------------------------------------------------------

PROMPT = re.compile(r'^(sage:|\.\.\.\.:)( |$)')


def example_of(text):
    """``(input, expected output)`` of an example block (its ``sage:`` and ``....:``
    lines without the prompts, the other lines), or None when it has no ``sage:``."""
    inputs, expected = [], []
    seen = False
    for line in text.splitlines():
        match = PROMPT.match(line)
        if match:
            seen = seen or match.group(1) == 'sage:'
            inputs.append(line[match.end():])
        elif inputs:
            expected.append(line)
    if not seen:
        return None
    return '\n'.join(inputs).strip('\n'), '\n'.join(expected).strip('\n')


def live_url(request, rel):
    return request.application_url + '/doc/live/' + quote(rel)


def file_url(request, rel):
    return request.application_url + '/doc/files/' + quote(rel)


def _rewrite(request, page_rel, value, page_link):
    """A link of the page at ``page_rel`` to the notebook's address of its target (a page
    at /doc/live/, anything else at /doc/files/); None to drop it."""
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return value if parts.scheme in ('http', 'https', 'mailto') else None
    if not parts.path:
        return value  # within the page
    target = posixpath.normpath(posixpath.join(posixpath.dirname(page_rel),
                                               unquote(parts.path)))
    if target.startswith('../') or target == '..' or target.startswith('/'):
        return None
    fragment = '#' + parts.fragment if parts.fragment else ''
    if page_link and target.endswith(('.html', '.htm')):
        return live_url(request, target) + fragment
    return file_url(request, target) + fragment


def page_json(request, root, rel):
    """A page of the manuals as the live view shows it: ``title``, ``html`` (the page's
    main part, links rewritten, each example a placeholder ``div.sagenb-doc-example``
    with its number as ``id="sagenb-doc-example-<n>"``), ``examples`` (``input``,
    ``expected``), ``manual`` (the manual's index page) and ``files`` (the page as it
    is).  404 for what is not a page."""
    path = resolve(root, rel)
    if path is None or served_type(path) != 'text/html':
        raise api_error(404, 'no page %s in the manuals' % rel)
    rel = os.path.relpath(path, root).replace(os.sep, '/')
    parsed = parsed_page(path)
    if parsed is None:
        raise api_error(413, 'the page %s is too large to show live' % rel)
    html = parsed['html']
    html = LINK_MARK.sub(lambda m: _attribute(request, rel, m.group(1), m.group(2)), html)
    manual = manual_of(root, rel)
    return {'title': parsed['title'] or rel, 'path': rel, 'html': html,
            'examples': parsed['examples'],
            'manual': live_url(request, manual) if manual else None,
            'files': file_url(request, rel), 'url': live_url(request, rel)}


def _attribute(request, rel, name, value):
    target = _rewrite(request, rel, html_module.unescape(value), name == 'href')
    if target is None:
        return 'href="#"' if name == 'href' else 'data-dropped=""'
    return '%s="%s"' % (name, html_module.escape(target))


# Links of a parsed page, marked so that each request writes its own addresses.
LINK_PREFIX = 'sagenb-doc-link:'
LINK_MARK = re.compile(r'\b(href|src)="%s([^"]*)"' % LINK_PREFIX)

# Parsed pages, per process: the largest pages of the reference manual take a quarter
# of a second to parse (lxml), and they do not change while the package does not.
_pages = {}
_pages_lock = threading.Lock()
PAGES_KEPT = 32


def parsed_page(path):
    """The page's title, main part (links marked for ``page_json`` to rewrite) and
    examples, or None when it is too large; kept for the last PAGES_KEPT pages."""
    stat = os.stat(path)
    key = (path, stat.st_mtime_ns, stat.st_size)
    with _pages_lock:
        if key in _pages:
            _pages[key] = _pages.pop(key)  # the most recently used last
            return _pages[key]
    if stat.st_size > MAX_PAGE_BYTES:
        return None
    with open(path, 'rb') as f:
        document = lxml.html.document_fromstring(f.read())
    title = (document.findtext('.//title') or '').split(' \u2014 ')[0].strip()
    main = (document.xpath('//div[@role="main"]') or document.xpath(
        '//div[contains(concat(" ", normalize-space(@class), " "), " body ")]')
        or document.xpath('//body') or [document])[0]
    for junk in main.xpath('.//script | .//style | .//link | .//meta | .//a[contains('
                           'concat(" ", normalize-space(@class), " "), " headerlink ")]'):
        junk.drop_tree()
    for element in main.iter():
        if not isinstance(element.tag, str):
            continue
        for name in [a for a in element.attrib if a.lower().startswith('on')]:
            del element.attrib[name]  # the browser's sanitizer removes them too
        for name in ('href', 'src'):
            if name in element.attrib:  # rewritten per request (the notebook's address)
                element.attrib[name] = LINK_PREFIX + element.attrib[name]
    examples = []
    for pre in list(main.iter('pre')):
        found = example_of(pre.text_content())
        if found is None or pre.getparent() is None:
            continue
        block = (pre.xpath('ancestor::div[starts-with(@class, "highlight-")][1]')
                 or pre.xpath('ancestor::div[contains(@class, "highlight")][1]') or [pre])[0]
        holder = lxml.html.Element('div', {'class': 'sagenb-doc-example',
                                           'id': 'sagenb-doc-example-%d' % len(examples)})
        holder.tail = block.tail
        block.getparent().replace(block, holder)
        examples.append({'input': found[0], 'expected': found[1]})
    html = html_module.escape(main.text or '', quote=False) + ''.join(
        lxml.html.tostring(child, encoding='unicode') for child in main)
    parsed = {'title': title, 'html': html, 'examples': examples}
    with _pages_lock:
        _pages[key] = parsed
        while len(_pages) > PAGES_KEPT:
            _pages.pop(next(iter(_pages)))
    return parsed


def manual_of(root, rel):
    """The index page of the manual ``rel`` belongs to (the deepest folder above it
    with a ``searchindex.js``)."""
    folder = posixpath.dirname(rel)
    while True:
        if os.path.isfile(os.path.join(root, folder, 'searchindex.js')):
            return posixpath.join(folder, 'index.html') if folder else 'index.html'
        if not folder:
            return None
        folder = posixpath.dirname(folder)


def page_cells(page):
    """The page as a worksheet's cells: ``[(type, input)]``, the text between examples
    as HTML text cells (cut at the examples: the browser closes what a cut left open)."""
    cells = []
    pieces = re.split(r'<div class="sagenb-doc-example" id="sagenb-doc-example-(\d+)">'
                      r'</div>', page['html'])
    for i, piece in enumerate(pieces):
        if i % 2:
            cells.append(('compute', page['examples'][int(piece)]['input']))
        elif piece.strip():
            cells.append(('text', piece.strip()))
    return cells


def copy_page(request, root, rel):
    """A new worksheet in the caller's home with the page's text and examples."""
    page = page_json(request, root, rel)
    cells = page_cells(page)
    size = sum(len(text.encode('utf-8')) for _, text in cells)
    user = request.user
    require_room(request.registry.settings, user, size, 'cannot copy the page', 409)
    worksheet = user.create_worksheet(names.clean_worksheet_name(page['title']),
                                      typeset=False, system='sage')
    worksheet.delete_all_cells()
    for kind, text in cells:
        cell = worksheet.add_cell(kind, text)
        if kind == 'text':
            cell.format = 'html'
    if not cells:
        worksheet.add_cell('compute', '')
    # Text of the manuals, not of the new owner: counted as an import would be, and not
    # vouched for (its HTML is shown sanitized).
    worksheet.charge_import(size)
    worksheet.trusted = False
    return worksheet


# --- the index of names and pages -------------------------------------------------------

_indexes = {}
_indexes_lock = threading.Lock()


def _index_of(folder):
    """A manual's ``searchindex.js`` (Sphinx's JSON inside ``Search.setIndex(...)``)."""
    try:
        with open(os.path.join(folder, 'searchindex.js'), encoding='utf-8') as f:
            text = f.read()
        return json.loads(text[text.index('(') + 1:text.rindex(')')])
    except (OSError, ValueError):
        return {}


class DocIndex:
    """Every object (function, class, method, module ...) and page title of the
    manuals, from their ``searchindex.js``.  Built once per process at the first
    search (about a second for Debian's 107 manuals, 42,000 names) and kept in memory:
    package content, the same for everybody, that changes only when the package does;
    nothing of it belongs in the database."""

    def __init__(self, root):
        self.root = root
        self.names = []   # (full name lower, short name lower, full name, type, rel#anchor)
        self.pages = []   # (title lower, title, rel)
        self.manuals = []  # (rel of its index page, title)
        for rel, folder in manuals_below(root):
            self._add(rel, _index_of(folder))
            if rel != '.' and os.path.isfile(os.path.join(folder, 'index.html')):
                title = next((p[1] for p in self.pages if p[2] == rel + '/index.html'), rel)
                self.manuals.append((rel + '/index.html', '%s (%s)' % (title, rel)))
        self.manuals.sort(key=lambda m: (not m[0].startswith('en/'), m[0]))
        self.names.sort(key=lambda n: (not n[4].startswith('en/'), len(n[2]), n[2]))

    def _add(self, rel, index):
        prefix = '' if rel == '.' else rel + '/'
        docnames = index.get('docnames') or []
        titles = index.get('titles') or []
        for docname, title in zip(docnames, titles, strict=False):
            self.pages.append((title.lower(), title, prefix + docname + '.html'))
        objnames = index.get('objnames') or {}
        for module, entries in (index.get('objects') or {}).items():
            for entry in entries:
                if len(entry) < 5 or not isinstance(entry[0], int) \
                        or not 0 <= entry[0] < len(docnames):
                    continue
                doc, kind, _, anchor, name = entry[:5]
                full = '%s.%s' % (module, name) if module else name
                label = objnames.get(str(kind), [None, None, ''])
                if anchor == '':
                    anchor = full
                elif anchor == '-':
                    anchor = '%s-%s' % (label[1], full)
                self.names.append((full.lower(), full.rsplit('.', 1)[-1].lower(), full,
                                   label[2] if len(label) > 2 else '',
                                   '%s%s.html#%s' % (prefix, docnames[doc], anchor)))

    def search(self, query, limit):
        """Names and pages matching ``query`` (every word, case-insensitive): exact
        short names first, then names starting with it, then the rest."""
        words = query.lower().split()
        if not words:
            return [], []
        names_found = []
        for entry in self.names:
            if all(w in entry[0] for w in words):
                short = entry[1]
                rank = 0 if short == words[-1] else 1 if short.startswith(words[-1]) else 2
                names_found.append((rank, entry))
        names_found.sort(key=lambda r: r[0])
        pages_found = [p for p in self.pages if all(w in p[0] for w in words)]
        pages_found.sort(key=lambda p: (not p[2].startswith('en/'), len(p[1])))
        return [e for _, e in names_found[:limit]], pages_found[:limit]

    def lookup(self, name, module=''):
        """The entry of ``name`` (a full name, or a short one, best in ``module``)."""
        name = name.strip().lower()
        short = name.rsplit('.', 1)[-1]
        module = module.lower()
        best = None
        for entry in self.names:
            if entry[0] == name:
                return entry
            if entry[1] != short:
                continue
            score = (0 if module and entry[0] == module + '.' + short else
                     1 if module and entry[0].startswith(module + '.') else
                     2 if entry[0].endswith('.' + name) else 3)
            if best is None or score < best[0]:
                best = (score, entry)
        if best is not None and (best[0] < 3 or '.' not in name):
            return best[1]
        return None


def doc_index(root):
    with _indexes_lock:
        index = _indexes.get(root)
        if index is None:
            index = _indexes[root] = DocIndex(root)
        return index


def search(request, root, query, limit=50):
    names_found, pages_found = doc_index(root).search(query, limit)
    return {
        'query': query,
        'names': [{'name': e[2], 'type': e[3], 'url': live_url(request, e[4].split('#')[0])
                   + '#' + e[4].split('#', 1)[1]} for e in names_found],
        'pages': [{'title': p[1], 'url': live_url(request, p[2])} for p in pages_found],
    }


# A help text's "File:" line (``foo?``): the module the object comes from.
HELP_FILE = re.compile(r'^\s*File:\s*(\S+\.(?:py|pyx|pxd|so))\s*$', re.M)
ANSI = re.compile(r'\x1b\[[0-9;]*[A-Za-z]')


def module_of_file(path):
    """``sage.arith.misc`` for ``.../site-packages/sage/arith/misc.py``."""
    parts = path.replace('\\', '/').split('/')
    if 'sage' not in parts:
        return ''
    start = len(parts) - 1 - parts[::-1].index('sage')
    tail = parts[start:]
    tail[-1] = tail[-1].split('.', 1)[0]
    if tail[-1] == '__init__':
        tail = tail[:-1]
    return '.'.join(tail)


def lookup(request, root, name, help_text=''):
    """The manual's page of ``name`` (what ``foo?`` asked about), the module of its
    help text's ``File:`` line deciding between names alike; None when the manuals
    have none."""
    match = HELP_FILE.search(ANSI.sub('', help_text or ''))
    module = module_of_file(match.group(1)) if match else ''
    entry = doc_index(root).lookup(name, module)
    if entry is None:
        return None
    page, anchor = entry[4].split('#', 1)
    return {'name': entry[2], 'type': entry[3], 'url': live_url(request, page) + '#' + anchor}


# --- the documentation worksheet: where a user's examples run ---------------------------

def doc_worksheet(user):
    """The user's documentation worksheet, made at the first example.  It is in no
    home (User.doc_worksheet): not listed, searched, shared or counted in the quota; its
    process is the user's (``(user id, -1)`` for the worker hosts), so it counts against
    their process limit."""
    worksheet = user.doc_worksheet
    if worksheet is None:
        worksheet = Worksheet('Examples of the manuals', user.id, typeset=False,
                              system='sage')
        worksheet.__parent__ = user
        worksheet.__name__ = str(DOC_WORKSHEET_NUMBER)
        user.doc_worksheet = worksheet
    return worksheet


def evaluate_example(request, text, awaited):
    """A new cell of the caller's documentation worksheet with ``text``, queued; returns
    ``(cell, run id)``.  The oldest examples past DOC_CELLS_KEPT are dropped."""
    worksheet = doc_worksheet(request.user)
    cell = worksheet.add_cell('compute', text)
    for old in worksheet.ordered_cells()[:-DOC_CELLS_KEPT]:
        if old.output.status not in ('queued', 'running'):
            worksheet.delete_cell(old.id)
    return cell, queue_cell(request, cell, awaited=awaited)


def example_cell(request, cell_id):
    """A cell of the caller's documentation worksheet, or 404."""
    worksheet = request.user.doc_worksheet
    cell = worksheet.cells.get(str(cell_id)) if worksheet is not None else None
    if cell is None:
        raise api_error(404, 'no example %s was evaluated here (only the last %d are kept)'
                        % (cell_id, DOC_CELLS_KEPT))
    return cell
