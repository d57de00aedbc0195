"""Files in and out: importing worksheets, exporting them, data and cell files.

``POST <home>/import`` takes a ``.sws``, ``.txt``, ``.ipynb`` or ``.zip`` of those;
``<worksheet>/download.sws`` and ``download.ipynb`` export one worksheet (and
``download.sage``, ``.py``, ``.html``, ``.tex``, ``.pdf`` make it a script, a page, a
document), and
``<home>/download.zip`` several.  Files a user uploaded are served with a sandboxing
Content-Security-Policy, so an HTML or SVG file opened directly runs no script on the
notebook's origin.
"""

from pyramid.httpexceptions import HTTPFound
from pyramid.view import view_config

from .. import importing
from ..formats import FormatError, latex
from ..resources import Cell, DataFile, User, Worksheet, guess_type, read_blob
from ..security import P
from ..services import transfer
from ..services.worksheets import new_worksheet_name
from ..web import INLINE_TYPES, api_error, get_str, send_bytes, wants_json

# --- import ---------------------------------------------------------------------------

@view_config(context=User, name='import', request_method='POST', permission=P.CREATE)
def import_worksheets(context, request):
    """Refusals: 400 (not a worksheet, a bad file name), 413 (a file past
    ``sagenb.data.max_mb``, or the owner's quota), 429/503 (imports in progress of
    this user / on this server).  A refused import creates nothing."""
    upload = request.POST.get('file')
    if upload is None or not hasattr(upload, 'file'):
        raise api_error(400, 'send the file as the multipart form field "file"')
    shown = upload.filename or 'the file'
    name = None
    if request.POST.get('name', '').strip():
        name = new_worksheet_name(request.POST)
    try:
        with importing.gate_of(request.registry).slot(request.user.id):
            created, notes, skipped = transfer.import_upload(
                request.registry.settings, context, upload.filename, upload.file, name)
    except importing.ImportBusy as exc:
        raise api_error(exc.status, 'cannot import %s now: %s' % (shown, exc)) from None
    except FormatError as exc:
        raise api_error(exc.status, 'cannot import %s: %s' % (shown, exc)) from None
    if not wants_json(request):
        for note in notes:
            request.session.flash('Imported with a change: %s' % note)
        target = created[0] if len(created) == 1 else context
        return HTTPFound(request.resource_url(target))
    request.response.status = 201
    request.response.content_type = 'application/json'
    request.response.json_body = {
        'worksheets': [{'id': w.number, 'url': request.resource_path(w), 'name': w.name}
                       for w in created],
        'skipped': skipped, 'notes': notes}
    return request.response


# --- export ---------------------------------------------------------------------------

@view_config(context=Worksheet, name='download.sws', request_method='GET',
             permission=P.VIEW)
def download_sws(context, request):
    return send_bytes(request, *transfer.export(context, 'sws'))


@view_config(context=Worksheet, name='download.ipynb', request_method='GET',
             permission=P.VIEW)
def download_ipynb(context, request):
    return send_bytes(request, *transfer.export(context, 'ipynb'))


# The exports made from the worksheet alone (transfer.static_export): the inputs as a Sage
# script (formats/script.py says what each cell becomes), that script preparsed (Python with
# ``from sage.all import *``), one HTML file with the outputs, plots and math that runs no
# script, a zip of the LaTeX source and its images, and that LaTeX made into a PDF by the
# server's TeX (404 saying so where it has none).
STATIC_EXPORTS = ('sage', 'py', 'html', 'tex', 'pdf')


def download_static(context, request):
    kind = request.view_name.rpartition('.')[2]
    try:
        content, content_type, filename = transfer.static_export(
            request.registry.settings, context, kind)
    except latex.TexUnavailable as exc:
        raise api_error(404, str(exc)) from None
    except latex.TexFailed as exc:
        raise api_error(409, 'the PDF could not be made (download.tex has the LaTeX): %s'
                        % exc) from None
    return send_bytes(request, content, content_type, filename)


for _kind in STATIC_EXPORTS:
    download_static = view_config(context=Worksheet, name='download.' + _kind,
                                  request_method='GET', permission=P.VIEW)(download_static)


@view_config(context=User, name='download.zip', request_method='GET', permission=P.VIEW)
def download_zip(context, request):
    """Several worksheets in one zip: ``ids=1,4,5`` or every one in ``state``."""
    kind = request.params.get('format', 'sws')
    if kind not in transfer.EXPORT_TYPES:
        raise api_error(400, '"format" must be "sws" or "ipynb"')
    ids = get_str(request.params, 'ids', '')
    numbers = None
    if ids.strip():
        try:
            numbers = [int(part) for part in ids.split(',') if part.strip()]
        except ValueError:
            raise api_error(400, '"ids" must be worksheet numbers separated by commas') \
                from None
    worksheets = transfer.selection(context, request.user, numbers,
                                    request.params.get('state', 'all'))
    content, filename = transfer.zip_export(context, worksheets, kind)
    return send_bytes(request, content, 'application/zip', filename)


# --- data files, cell files --------------------------------------------------------

@view_config(context=DataFile, request_method='GET', permission=P.VIEW)
def data_file(context, request):
    kind = context.content_type
    return send_bytes(request, context.read(), kind, context.__name__,
                      inline=kind in INLINE_TYPES)


@view_config(context=Cell, name='files', request_method='GET', permission=P.VIEW)
def cell_file(context, request):
    name = '/'.join(request.subpath)
    files = context.output.files
    if not name or files is None or name not in files:
        raise api_error(404, 'this cell has no file %r' % name)
    kind = guess_type(name)
    return send_bytes(request, read_blob(files[name]), kind, name.rsplit('/', 1)[-1],
                      inline=kind in INLINE_TYPES)


@view_config(context=Cell, name='attachments', request_method='GET', permission=P.VIEW)
def cell_attachment(context, request):
    """An attachment of a text cell (what its text shows as ``attachment:<name>``),
    sent as data files are: the sandboxing CSP, so an SVG opened directly runs nothing."""
    content, kind, name = transfer.attachment(context, '/'.join(request.subpath))
    return send_bytes(request, content, kind, name, inline=kind in INLINE_TYPES)
