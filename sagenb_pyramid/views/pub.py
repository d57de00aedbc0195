"""Publishing (issue 20): ``<worksheet>/publish`` and ``<worksheet>/print``; ``/pub/``
(the list), ``/pub/<id>/`` (one publication, its cells and files, ratings, copy, print).

Everything below ``/pub/`` is public (``P.VIEW`` for everybody, logged in or not);
rating takes a login (``P.RATE``), publishing and hiding comments the worksheet's owner
(``P.PUBLISH``).  Published content is rendered untrusted for every visitor: the page
runs only its own scripts (CSP nonce), HTML outputs are sanitized (docs/security.md).
"""
from pyramid.httpexceptions import HTTPFound
from pyramid.view import view_config

from .. import names
from ..resources import Publication, Publications, PubCell, PubFile, PubFiles, Worksheet
from ..security import P
from ..services import publishing, transfer
from ..services.serialize import cell_json, script_safe_json
from ..web import api_error, fmt_time, form_of, get_str, json_body, wants_json


# --- a worksheet: publish, stop, print ------------------------------------------------

@view_config(context=Worksheet, name='publish', request_method='POST',
             permission=P.PUBLISH, renderer='json')
def publish(context, request):
    """Publish (or publish again, at the same URL); ``{"auto": true}`` follows every
    change.  A form's ``auto`` is a checkbox."""
    if wants_json(request):
        auto = json_body(request, required=False).get('auto', False)
        if not isinstance(auto, bool):
            raise api_error(400, '"auto" must be true or false')
    else:
        auto = request.POST.get('auto') in ('1', 'true', 'on')
    publication = publishing.publish(request, context, auto)
    if not wants_json(request):
        return HTTPFound(request.resource_url(publication))
    return publishing.publication_state(request, context)


@view_config(context=Worksheet, name='publish', request_method='DELETE',
             permission=P.PUBLISH, renderer='json')
def unpublish(context, request):
    """Stop publishing: the ``/pub/`` URL answers 404 from now on."""
    publishing.unpublish(request, context)
    return {'published': None}


@view_config(context=Worksheet, name='print', request_method='GET', permission=P.VIEW,
             renderer='print.jinja2')
def print_worksheet(context, request):
    """The cells as ``download.html`` shows them (one renderer), without a script."""
    return {'name': context.name, 'cells': transfer.print_cells(context),
            'owner': context.owner.login, 'when': fmt_time(context.modified),
            'noindex': False}


# --- /pub/ ----------------------------------------------------------------------------

def positive_int(request, key, default, maximum):
    raw = request.GET.get(key)
    if raw is None or raw == '':
        return default
    try:
        value = int(raw)
    except ValueError:
        raise api_error(400, '"%s" must be a whole number' % key) from None
    if not 1 <= value <= maximum:
        raise api_error(400, '"%s" must be from 1 to %d' % (key, maximum))
    return value


@view_config(context=Publications, request_method='GET', permission=P.VIEW,
             renderer='pub_list.jinja2')
def publications(context, request):
    """Published worksheets, newest first; ``q`` searches names, cells and owners' logins
    (the full-text index)."""
    query = get_str(request.GET, 'q', '', max_length=200)
    page = positive_int(request, 'page', 1, 10**6)
    per_page = positive_int(request, 'per_page', publishing.PAGE_SIZE,
                            publishing.MAX_PAGE_SIZE)
    rows, total = publishing.listing(request, query, page, per_page)
    publishing.noindex(request, request.response)
    data = {'publications': rows, 'total': total, 'page': page, 'per_page': per_page}
    if wants_json(request):
        request.override_renderer = 'json'
        return data
    for row in rows:
        row['when'] = fmt_time(row['time'])
    data.update(query=query, pages=max(1, -(-total // per_page)),
                noindex=request.registry.settings['sagenb.publish.noindex'])
    return data


# --- one publication ------------------------------------------------------------------

def page_values(request, context, data):
    return {'data': script_safe_json(data), 'name': data['name'], 'owner': data['owner'],
            'when': fmt_time(data['time']), 'page_url': request.resource_url(context),
            'trusted': False,
            'noindex': request.registry.settings['sagenb.publish.noindex']}


@view_config(context=Publication, request_method='GET', permission=P.VIEW,
             renderer='publication.jinja2')
def publication(context, request):
    data = publishing.publication_json(request, context)
    publishing.noindex(request, request.response)
    if wants_json(request):
        request.override_renderer = 'json'
        return data
    if not request.path_info.endswith('/'):
        # Relative URLs of legacy text cells (<img src="plot.png">) need the slash.
        return HTTPFound(request.resource_url(context))
    values = page_values(request, context, data)
    user = request.user
    values.update(publication=context, rating=data['rating'],
                  ratings=publishing.ratings_json(request, context),
                  is_owner=user is not None and user.id == context.owner_id,
                  logged_in=user is not None,
                  worksheet_url=request.resource_url(context.worksheet)
                  if user is not None and user.id == context.owner_id else None)
    return values


@view_config(context=Publication, name='print', request_method='GET', permission=P.VIEW,
             renderer='print.jinja2')
def print_publication(context, request):
    data = publishing.publication_json(request, context)
    publishing.noindex(request, request.response)
    values = page_values(request, context, data)
    values['cells'] = transfer.print_cells(publishing.shown_or_404(context))
    return values


@view_config(context=Publication, name='copy', request_method='POST', permission=P.CREATE,
             renderer='json')
def copy_publication(context, request):
    """An editable copy in the caller's home (logged in; the storage quota applies)."""
    if not request.has_permission(P.CREATE, request.user):
        raise api_error(403, 'you may not create worksheets')
    shown = publishing.shown_or_404(context)
    body = form_of(request)
    name = names.clean_worksheet_name(get_str(body, 'name', shown.name,
                                              max_length=names.MAX_WORKSHEET_NAME))
    twin, summary = publishing.copy(request, context, name)
    if not wants_json(request):
        return HTTPFound(request.resource_url(twin))
    request.response.status = 201
    return summary


@view_config(context=Publication, name='ratings', request_method='GET', permission=P.VIEW,
             renderer='json')
def ratings(context, request):
    publishing.shown_or_404(context)
    return publishing.ratings_json(request, context)


@view_config(context=Publication, name='rate', request_method='POST', permission=P.RATE,
             renderer='json')
def rate(context, request):
    """``{"rating": 0-4, "comment": "..."}``: one rating per user, changed by rating
    again."""
    publishing.shown_or_404(context)
    rating, comment = publishing.parse_rating(form_of(request))
    publishing.rate(request, context, rating, comment)
    if not wants_json(request):
        return HTTPFound(request.resource_url(context, anchor='ratings'))
    return publishing.ratings_json(request, context)


@view_config(context=Publication, name='hide', request_method='POST',
             permission=P.PUBLISH, renderer='json')
def hide(context, request):
    """The owner hides (``"hidden": false``: shows again) the comment of ``"user"``."""
    publishing.shown_or_404(context)
    body = form_of(request)
    hidden = body.get('hidden', True)
    if isinstance(hidden, str):
        hidden = {'true': True, 'on': True, '1': True,
                  'false': False, 'off': False, '0': False}.get(hidden, hidden)
    if not isinstance(hidden, bool):
        raise api_error(400, '"hidden" must be true or false')
    publishing.hide_comment(request, context, body.get('user'), hidden)
    if not wants_json(request):
        return HTTPFound(request.resource_url(context, anchor='ratings'))
    return publishing.ratings_json(request, context)


# --- its cells and files (what the page reads) ---------------------------------------

@view_config(context=PubCell, request_method='GET', permission=P.VIEW, renderer='json')
def cell(context, request):
    """A cell as the publication shows it (no waiting: nobody runs it from here)."""
    return cell_json(request, context.cell)


@view_config(context=PubCell, name='files', request_method='GET', permission=P.VIEW)
def cell_file(context, request):
    name = '/'.join(request.subpath)
    files = context.cell.output.files
    if not name or files is None or name not in files:
        raise api_error(404, 'this cell has no file %r' % name)
    return publishing.file_response(request, publishing.blob_bytes(files[name]),
                                    publishing.guess_type(name), name.rsplit('/', 1)[-1])


@view_config(context=PubCell, name='attachments', request_method='GET', permission=P.VIEW)
def cell_attachment(context, request):
    content, kind, name = transfer.attachment(context.cell, '/'.join(request.subpath))
    return publishing.file_response(request, content, kind, name)


@view_config(context=PubCell, name='output.txt', request_method='GET', permission=P.VIEW)
def full_output(context, request):
    blob = context.cell.output.full_text
    if blob is None:
        raise api_error(404, 'this cell has no cut output to download')
    return publishing.file_response(request, publishing.blob_bytes(blob), 'text/plain',
                                    'cell-%s-output.txt' % context.__name__)


@view_config(context=PubFiles, request_method='GET', permission=P.VIEW, renderer='json')
def data_files(context, request):
    return {'files': publishing.publication_json(request, context.__parent__)['data_files']}


@view_config(context=PubFile, request_method='GET', permission=P.VIEW)
def data_file(context, request):
    return publishing.file_response(request, context.file.read(),
                                    context.file.content_type, context.__name__)
