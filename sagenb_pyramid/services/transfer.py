"""Worksheets in from uploaded files and out as files: an import within the limits and
the owner's quota, one worksheet as a ``.sws`` or ``.ipynb``, and several of a home in
one zip.  Reading and writing the formats is ``importing.py`` and ``formats/``; the views
(``views/transfer.py``) read the request, hold the import gate and send the bytes.

Refusals: ``FormatError`` (``TooLarge`` among them) for an upload, with its status;
``api_error`` for a selection.  A refused import creates nothing.
"""
import os
import re
import time

from .. import importing
from ..formats import TooLarge, htmlpage, ipynb, latex, script, sws
from ..resources import WORKSHEET_STATES, Worksheet
from ..web import api_error
from .quota import quota_problem

# The formats a worksheet is exported in, and their content types.
EXPORT_TYPES = {'sws': 'application/x-bzip2', 'ipynb': 'application/x-ipynb+json'}


def download_name(name, ext):
    """A file name for Content-Disposition: the worksheet's name, made harmless."""
    cleaned = re.sub(r'[\x00-\x1f\x7f/\\:*?"<>|]+', '_', name).strip(' .') or 'worksheet'
    return cleaned[:120] + ext


def import_upload(settings, home, filename, stream, name=None):
    """The worksheets of the uploaded file ``filename`` (its bytes read from ``stream``)
    made in ``home``, named ``name`` when the file holds one worksheet: ``(created,
    notes, skipped)``.  ``FormatError`` for a file that is not worksheets or passes
    the import limits, ``TooLarge`` for one that passes the owner's quota."""
    limits = importing.limits_from_settings(settings)
    data = stream.read(limits.max_bytes + 1)
    found, skipped = importing.read_upload(filename or '', data, limits)
    del data
    total = sum(importing.import_bytes(item) for item in found)
    problem = quota_problem(settings, home, total)
    if problem:
        raise TooLarge(problem)
    created = [importing.create_worksheet(home, item, name=name if len(found) == 1
                                          else None)
               for item in found]
    for worksheet in created:
        worksheet.source = 'upload:' + (filename or '')
    return created, [note for item in found for note in item.notes], skipped


def export(worksheet, kind):
    """``worksheet`` as a file of ``kind`` (``EXPORT_TYPES``): ``(content, content
    type, file name)``."""
    data = importing.worksheet_data(worksheet)
    if kind == 'sws':
        content = sws.write_sws(data, owner=worksheet.owner.login,
                                modified=worksheet.modified)
    else:
        content = ipynb.write_ipynb(data)
    return content, EXPORT_TYPES[kind], download_name(worksheet.name, '.' + kind)


def attachment(cell, name):
    """``(bytes, mime type, name)`` of the attachment ``name`` of ``cell``; 404 when it
    has none of that name."""
    found = cell.attachment(name) if name else None
    if found is None:
        raise api_error(404, 'this cell has no attachment %r' % name)
    kind, content = found
    return content, kind, name


# The exports read by people and programs, not imported again (formats/script.py,
# htmlpage.py, latex.py), and their content types.
STATIC_TYPES = {'sage': 'text/x-sage', 'py': 'text/x-python', 'html': 'text/html',
                'tex': 'application/zip', 'pdf': 'application/pdf'}
EXPORT_CSS = os.path.join(os.path.dirname(os.path.dirname(__file__)), 'static', 'export.css')


def export_css():
    with open(EXPORT_CSS, encoding='utf-8') as f:
        return f.read()


def byline(worksheet):
    return '%s \u00b7 %s' % (worksheet.owner.login, time.strftime(
        '%Y-%m-%d', time.gmtime(worksheet.modified or time.time())))


def print_cells(worksheet):
    """The cells of the print view: the HTML export's (``htmlpage.cells_html``)."""
    return htmlpage.cells_html(importing.worksheet_data(worksheet))


def static_export(settings, worksheet, kind):
    """``worksheet`` as a file of ``kind`` (``STATIC_TYPES``): ``(content, content type,
    file name)``.  ``latex.TexUnavailable``/``TexFailed`` for a PDF that cannot be made."""
    data = importing.worksheet_data(worksheet)
    if kind in ('sage', 'py'):
        # In the app server: it loads five small modules (about 1 ms and 160 kB once
        # the app is imported; docs/api.md), not Sage.
        from sage.repl.preparse import preparse, preparse_file
        if kind == 'sage':
            content = script.write_sage(data, preparse)
        else:
            content = script.write_python(
                data, lambda code: preparse_file(code, numeric_literals=False))
        content = content.encode('utf-8')
    elif kind == 'html':
        content = htmlpage.write_html(data, export_css(), byline(worksheet))
    else:
        tex, images = latex.write_latex(data, byline(worksheet))
        if kind == 'pdf':
            command = latex.find_pdflatex(settings['sagenb.export.pdflatex'])
            content = latex.pdf(tex, images, command,
                                settings['sagenb.export.pdflatex_timeout'])
        else:
            stem = download_name(worksheet.name, '')
            content = importing.zip_of([(stem + '.tex', tex.encode('utf-8'))] + sorted(
                images.items()))
    return content, STATIC_TYPES[kind], download_name(worksheet.name, '.' + kind if
                                                       kind != 'tex' else '.zip')


def selection(home, viewer, numbers=None, state='all'):
    """The worksheets of ``home`` numbered ``numbers`` (a list), or when it is None
    every one in ``state`` for ``viewer`` (or ``all``): 404 for a number that is no
    worksheet here or when there are none, 400 for an unknown state."""
    if numbers is not None:
        worksheets = []
        for number in numbers:
            worksheet = home.get(str(number))
            if not isinstance(worksheet, Worksheet):
                raise api_error(404, 'no worksheet %d here' % number)
            worksheets.append(worksheet)
    else:
        if state not in WORKSHEET_STATES + ('all',):
            raise api_error(400, '"state" must be one of active, archive, trash, all')
        worksheets = [w for w in home.worksheets()
                      if state == 'all' or w.state_for(viewer.id) == state]
    if not worksheets:
        raise api_error(404, 'no worksheets to download')
    return worksheets


def zip_export(home, worksheets, kind):
    """``worksheets`` of ``home``, each a file of ``kind``, in one zip (in the order of
    their numbers): ``(content, file name)``."""
    entries = []
    for worksheet in sorted(worksheets, key=lambda w: w.number):
        content, _, filename = export(worksheet, kind)
        entries.append((filename, content))
    stamp = time.strftime('%Y-%m-%d')
    return (importing.zip_of(entries),
            download_name('%s-worksheets-%s' % (home.login, stamp), '.zip'))
