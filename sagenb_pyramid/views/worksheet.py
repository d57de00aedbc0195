"""A worksheet: its page, its JSON, and what is done to it as a whole."""
from pyramid.httpexceptions import HTTPFound
from pyramid.view import view_config

from .. import names
from ..resources import Cells, Worksheet
from ..security import P
from ..services import evaluation, history, live, presence, publishing, sharing, worksheets
from ..services.evaluation import ask_worker, delete_worksheet, worksheet_key
from ..services.serialize import (cell_json, script_safe_json, worksheet_json,
                                  worksheet_summary)
from ..waits import wait_seconds, wait_slot
from ..web import api_error, get_str, json_body, wants_json


@view_config(context=Worksheet, request_method='GET', permission=P.VIEW,
             renderer='worksheet.jinja2')
def worksheet_view(context, request):
    request.workers.touch(worksheet_key(context))
    if 'since' in request.params:
        request.override_renderer = 'json'
        return changes(context, request)
    data = worksheet_json(request, context)
    if wants_json(request):
        request.override_renderer = 'json'
        return data
    if not request.path_info.endswith('/'):
        # Relative URLs in legacy text cells (<img src="plot.png">) need the slash.
        return HTTPFound(request.resource_url(context, query=request.GET))
    user = request.user
    return {'worksheet': context, 'worksheet_json': script_safe_json(data),
            'can_edit': can_edit_in_page(request, context),
            'trusted': data['trusted'],
            'is_owner': user is not None and user.id == context.owner_id,
            'worksheet_url': request.resource_url(context),
            # Sharing (services/sharing.py): the Share button, the roles line.
            'can_share': bool(request.has_permission(P.SHARE, context)),
            'role': sharing.role_of(context, user),
            'share_counts': sharing.counts(request.root, context),
            'published': publishing.publication_state(request, context)}


def changes(context, request):
    """``?since=<version>[&wait=<s>][&presence=<stamp>][&session=<page id>]``: what
    changed after that version, once there is something (or ``wait`` seconds have
    passed, capped as the cells' waits, holding one of the user's waiting slots), or
    once who has it open changed from ``presence``: services/live.py."""
    since = request.params['since']
    if not since.isdigit():
        raise api_error(400, '"since" must be a version number (0 or more)')
    since = int(since)
    stamp = request.params.get('presence')
    if stamp is not None and not stamp.isdigit():
        raise api_error(400, '"presence" must be a presence stamp (0 or more)')
    session = request.params.get('session')
    if session is not None:
        session = presence.session_id(session)
    wait = wait_seconds(request, request.params.get('wait'))
    if wait:
        with wait_slot(request):
            live.wait_for_version(request, context, wait, since,
                                  presence=None if stamp is None else int(stamp))
    return live.changes_since(request, context, since, session=session)


@view_config(context=Worksheet, name='presence', request_method='POST', permission=P.VIEW,
             renderer='json')
def presence_heartbeat(context, request):
    """A page has the worksheet open (``{"session", "cell"}``), or closes
    (``"gone": true``, what a page can send as it goes): services/presence.py."""
    body = json_body(request)
    session = presence.session_id(body.get('session'))
    gone = body.get('gone', False)
    if not isinstance(gone, bool):
        raise api_error(400, '"gone" must be true or false')
    if gone:
        presence.leave(request, context, session)
    else:
        presence.heartbeat(request, context, session,
                           presence.cell_id(context, body.get('cell')))
    answer = presence.listing(request, context, session)
    # A page alone on the worksheet holds no long poll (static/page/live.js): its
    # heartbeats tell it when someone arrives, and when the worksheet changed.
    answer['others'] = sum(1 for entry in answer['presence'] if entry['session'] != session)
    answer['version'] = context.version
    return answer


@view_config(context=Worksheet, name='presence', request_method='DELETE',
             permission=P.VIEW, renderer='json')
def presence_leave(context, request):
    """``?session=<page id>``: that page closed."""
    session = presence.session_id(request.params.get('session'))
    presence.leave(request, context, session)
    return presence.listing(request, context, session)


def can_edit_in_page(request, worksheet):
    """The page edits for the owner and collaborators only: the ACL gives an admin
    who is neither ``P.VIEW`` alone on someone else's worksheet."""
    return request.user is not None and bool(request.has_permission(P.EDIT, worksheet))


@view_config(context=Worksheet, name='trust', request_method='POST', permission=P.TRUST,
             renderer='json')
def trust_worksheet(context, request):
    """The owner vouches for the worksheet's content (or takes it back with
    ``{"trusted": false}``): its HTML outputs then run their scripts in the owner's page.
    ``P.TRUST`` is the owner's alone (not collaborators', not admins')."""
    body = json_body(request, required=False) if wants_json(request) else {}
    trusted = body.get('trusted', True)
    if not isinstance(trusted, bool):
        raise api_error(400, '"trusted" must be true or false')
    context.trusted = trusted
    if not wants_json(request):
        return HTTPFound(request.resource_url(context))
    return {'trusted': context.trusted_by(request.user)}


@view_config(context=Worksheet, name='alive', request_method='GET', permission=P.VIEW,
             renderer='json')
def alive(context, request):
    """An open page says it is there: the worksheet's process is not idle."""
    key = worksheet_key(context)
    request.workers.touch(key)
    return {'process': request.workers.is_running(key)}


@view_config(context=Worksheet, request_method='PATCH', permission=P.EDIT, renderer='json')
def update_worksheet(context, request):
    body = json_body(request)
    worksheets.update(context, request.user,
                      {key: body[key] for key in worksheets.WORKSHEET_FIELDS if key in body})
    if 'name' in body:
        history.edited(request, context)
    return worksheet_json(request, context, cells=False)


@view_config(context=Worksheet, request_method='DELETE', permission=P.DELETE,
             renderer='json')
def delete_worksheet_view(context, request):
    delete_worksheet(request, context)
    return {'deleted': context.number}


@view_config(context=Worksheet, name='copy', request_method='POST', permission=P.VIEW,
             renderer='json')
def copy_worksheet(context, request):
    """A copy in the requester's own home (collaborators and viewers may copy too)."""
    if not request.has_permission(P.CREATE, request.user):
        raise api_error(403, 'you may not create worksheets')
    body = json_body(request, required=False) if wants_json(request) else request.POST
    name = get_str(body, 'name', 'Copy of ' + context.name,
                   max_length=names.MAX_WORKSHEET_NAME)
    twin = worksheets.copy_worksheet(request.registry.settings, context, request.user, name)
    if not wants_json(request):
        return HTTPFound(request.resource_url(twin))
    request.response.status = 201
    return worksheet_summary(request, twin, request.user.id)


@view_config(context=Cells, request_method='POST', permission=P.EDIT, renderer='json')
def add_cell(cells, request):
    context = cells.__parent__
    body = json_body(request)
    cell = worksheets.add_cell(context, request.user, body.get('type', 'compute'),
                               get_str(body, 'input', ''), after=body.get('after'),
                               before=body.get('before'))
    history.edited(request, context)
    request.response.status = 201
    return {'id': cell.id, 'cell': cell_json(request, cell)}


@view_config(context=Worksheet, name='evaluate_all', request_method='POST',
             permission=P.EVALUATE, renderer='json')
def evaluate_all(context, request):
    # ``from``: that cell and the ones below it only ("evaluate from here down").
    start = json_body(request, required=False).get('from')
    if start is not None and (isinstance(start, bool) or not isinstance(start, int)
                              or start not in context.cell_order):
        raise api_error(400, '"from" must be the id of a cell of this worksheet')
    # A process that starts runs the %auto cells first (in order), and only once.
    cells = evaluation.evaluate_all(request, context, start)
    history.edited(request, context)
    return {'queued': [c.id for c in cells]}


@view_config(context=Worksheet, name='clear_outputs', request_method='POST',
             permission=P.EDIT, renderer='json')
def clear_outputs(context, request):
    cleared = worksheets.clear_outputs(context)
    # Other pages of the worksheet take the cleared cells from their ``?since=`` poll.
    for cell in cleared:
        evaluation.note_cleared(request, context, cell)
    history.edited(request, context)
    return {'cleared': len(cleared)}


@view_config(context=Worksheet, name='interrupt', request_method='POST',
             permission=P.EVALUATE, renderer='json')
def interrupt(context, request):
    return {'ok': True, 'interrupted': request.workers.interrupt(worksheet_key(context))}


@view_config(context=Worksheet, name='restart', request_method='POST',
             permission=P.EVALUATE, renderer='json')
def restart(context, request):
    cancelled = request.workers.restart(worksheet_key(context))
    return {'ok': True, 'cancelled': cancelled}


def code_and_cursor(request):
    body = json_body(request)
    code = get_str(body, 'code', max_length=100_000)
    if code is None:
        raise api_error(400, '"code" is required')
    cursor = body.get('cursor_pos', len(code))
    if isinstance(cursor, bool) or not isinstance(cursor, int) or not 0 <= cursor <= len(code):
        raise api_error(400, '"cursor_pos" must be a position in "code" (0 to %d)' % len(code))
    return body, code, cursor


@view_config(context=Worksheet, name='complete', request_method='POST',
             permission=P.EVALUATE, renderer='json')
def complete(context, request):
    """Names that complete the code at the cursor (Jupyter's ``complete_request``)."""
    _, code, cursor = code_and_cursor(request)
    reply = ask_worker(request, context, 'complete', {'code': code, 'cursor_pos': cursor})
    return {'matches': reply.get('matches', []),
            'cursor_start': reply.get('cursor_start', cursor),
            'cursor_end': reply.get('cursor_end', cursor),
            'metadata': reply.get('metadata', {})}


@view_config(context=Worksheet, name='inspect', request_method='POST',
             permission=P.EVALUATE, renderer='json')
def inspect(context, request):
    """The docstring (``detail_level`` 0) or source (1) of the name at the cursor."""
    body, code, cursor = code_and_cursor(request)
    detail = body.get('detail_level', 0)
    if detail not in (0, 1) or isinstance(detail, bool):
        raise api_error(400, '"detail_level" must be 0 or 1')
    reply = ask_worker(request, context, 'inspect',
                       {'code': code, 'cursor_pos': cursor, 'detail_level': detail})
    return {'found': bool(reply.get('found')), 'data': reply.get('data', {}),
            'metadata': reply.get('metadata', {})}
