"""Files in and out: importing worksheets, exporting them, data and cell files.

``POST <home>/import`` takes a ``.sws``, ``.txt``, ``.ipynb`` or ``.zip`` of those;
``<worksheet>/download.sws`` and ``download.ipynb`` export one worksheet and
``<home>/download.zip`` several.  Files a user uploaded are served with a sandboxing
Content-Security-Policy, so an HTML or SVG file opened directly runs no script on the
notebook's origin.
"""
import re
import time
import urllib.parse

from pyramid.httpexceptions import HTTPFound
from pyramid.view import view_config

from .. import importing
from ..formats import FormatError, TooLarge, ipynb, sws
from ..resources import (
    Cell, DataFile, Revision, Revisions, User, WORKSHEET_STATES, Worksheet, guess_type, read_blob)
from ..security import P
from ..services.listing import listed
from ..services.worksheets import new_worksheet_name
from ..services.quota import quota_problem
from ..web import api_error, get_str, wants_json

FILE_CSP = "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'"
INLINE_TYPES = ('image/png', 'image/jpeg', 'image/gif', 'text/plain')


def download_name(name, ext):
    """A file name for Content-Disposition: the worksheet's name, made harmless."""
    cleaned = re.sub(r'[\x00-\x1f\x7f/\\:*?"<>|]+', '_', name).strip(' .') or 'worksheet'
    return cleaned[:120] + ext


def content_disposition(kind, filename):
    ascii_name = filename.encode('ascii', 'replace').decode('ascii').replace('?', '_')
    return '%s; filename="%s"; filename*=UTF-8\'\'%s' % (
        kind, ascii_name.replace('"', '_'), urllib.parse.quote(filename, safe=''))


def send_bytes(request, content, content_type, filename, inline=False):
    response = request.response
    response.content_type = content_type
    if content_type.startswith('text/'):
        response.charset = 'utf-8'
    response.body = content
    response.content_disposition = content_disposition(
        'inline' if inline else 'attachment', filename)
    response.headers['Content-Security-Policy'] = FILE_CSP
    response.headers['X-Content-Type-Options'] = 'nosniff'
    response.cache_control = 'private, no-cache'
    return response


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
            created, notes, skipped = _import(context, request, upload, name)
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


def _import(user, request, upload, name):
    limits = importing.limits_from_settings(request.registry.settings)
    data = upload.file.read(limits.max_bytes + 1)
    found, skipped = importing.read_upload(upload.filename or '', data, limits)
    del data
    total = sum(importing.import_bytes(item) for item in found)
    problem = quota_problem(request.registry.settings, user, total)
    if problem:
        raise TooLarge(problem)
    created = [importing.create_worksheet(user, item, name=name if len(found) == 1
                                          else None)
               for item in found]
    for worksheet in created:
        worksheet.source = 'upload:' + (upload.filename or '')
    return created, [note for item in found for note in item.notes], skipped


# --- export ---------------------------------------------------------------------------

@view_config(context=Worksheet, name='download.sws', request_method='GET',
             permission=P.VIEW)
def download_sws(context, request):
    content = sws.write_sws(importing.worksheet_data(context), owner=context.owner.login,
                            modified=context.modified)
    return send_bytes(request, content, 'application/x-bzip2',
                      download_name(context.name, '.sws'))


@view_config(context=Worksheet, name='download.ipynb', request_method='GET',
             permission=P.VIEW)
def download_ipynb(context, request):
    content = ipynb.write_ipynb(importing.worksheet_data(context))
    return send_bytes(request, content, 'application/x-ipynb+json',
                      download_name(context.name, '.ipynb'))


@view_config(context=User, name='download.zip', request_method='GET', permission=P.VIEW)
def download_zip(context, request):
    """Several worksheets in one zip: ``ids=1,4,5`` or every one in ``state``."""
    kind = request.params.get('format', 'sws')
    if kind not in ('sws', 'ipynb'):
        raise api_error(400, '"format" must be "sws" or "ipynb"')
    ids = get_str(request.params, 'ids', '')
    if ids.strip():
        try:
            numbers = [int(part) for part in ids.split(',') if part.strip()]
        except ValueError:
            raise api_error(400, '"ids" must be worksheet numbers separated by commas') \
                from None
        worksheets = []
        for number in numbers:
            worksheet = context.get(str(number))
            if not isinstance(worksheet, Worksheet):
                raise api_error(404, 'no worksheet %d here' % number)
            worksheets.append(worksheet)
    else:
        state = request.params.get('state', 'all')
        if state not in WORKSHEET_STATES + ('all',):
            raise api_error(400, '"state" must be one of active, archive, trash, all')
        worksheets = listed(context, request, state, 'modified')
    if not worksheets:
        raise api_error(404, 'no worksheets to download')
    entries = []
    for worksheet in sorted(worksheets, key=lambda w: w.number):
        data = importing.worksheet_data(worksheet)
        if kind == 'sws':
            content = sws.write_sws(data, owner=context.login, modified=worksheet.modified)
        else:
            content = ipynb.write_ipynb(data)
        entries.append((download_name(worksheet.name, '.' + kind), content))
    stamp = time.strftime('%Y-%m-%d')
    return send_bytes(request, importing.zip_of(entries), 'application/zip',
                      download_name('%s-worksheets-%s' % (context.login, stamp), '.zip'))


# --- data files, cell files, revisions --------------------------------------------------

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


@view_config(context=Revisions, request_method='GET', permission=P.VIEW, renderer='json')
def revisions(context, request):
    return {'revisions': [{'id': name, 'time': rev.time,
                           'url': request.resource_path(rev)}
                          for name, rev in context.items()]}


@view_config(context=Revision, request_method='GET', permission=P.VIEW, renderer='json')
def revision(context, request):
    return {'id': context.__name__, 'time': context.time, 'body': context.body}
