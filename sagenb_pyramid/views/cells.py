"""One cell: read (with long-polling), edit (merged with others' edits), move, delete,
clear, evaluate."""
import contextlib

from pyramid.response import FileIter
from pyramid.view import view_config

from ..resources import Cell
from ..security import P
from ..services import evaluation, history, worksheets
from ..services.evaluation import queue_cell, worksheet_key
from ..services.live import EditConflict
from ..services.serialize import cell_json, queued_json
from ..waits import wait_seconds, wait_slot
from ..web import api_error, get_str, json_body


@view_config(context=Cell, request_method='GET', permission=P.VIEW, renderer='json')
def get_cell(context, request):
    since = request.params.get('since')
    if since is not None:
        try:
            since = int(since)
        except ValueError:
            raise api_error(400, '"since" must be a version number') from None
    wait = wait_seconds(request, request.params.get('wait'))
    request.workers.touch(worksheet_key(context.worksheet))
    if wait:
        with wait_slot(request):
            evaluation.wait_for_cell(request, context, wait, since=since)
    return cell_json(request, context)


def version_param(value, name):
    """A version number given by a client (a query string's or a JSON body's)."""
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            value = None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise api_error(400, '"%s" must be a version number (0 or more)' % name)
    return value


@view_config(context=Cell, request_method='PATCH', permission=P.EDIT, renderer='json')
def update_cell(context, request):
    """``base_version`` (the cell's ``input_version`` the edit started from) merges an
    input changed since (409 with the current input when the edits overlap);
    ``base_input`` is the text it started from, for a version the cell no longer keeps.
    ``editable``/``deletable`` (booleans) lock or unlock the cell as Jupyter's metadata
    does: a locked cell's input and type are refused (409), as is deleting it."""
    body = json_body(request)
    if not any(key in body for key in ('input', 'type', 'editable', 'deletable')):
        raise api_error(400, 'nothing to change: give "input", "type", "editable" or '
                        '"deletable"')
    changes = {'input': get_str(body, 'input')}
    for key in ('type', 'editable', 'deletable'):
        if key in body:
            changes[key] = body[key]
    base_version = body.get('base_version')
    if base_version is not None:
        base_version = version_param(base_version, 'base_version')
    base_input = get_str(body, 'base_input')
    try:
        worksheets.edit_cell(context, request.user, changes, base_version, base_input)
    except EditConflict as conflict:
        # Nothing of the request is kept (the history's bookkeeping neither).
        request.tm.doom()
        request.response.status = 409
        return conflict.json()
    history.edited(request, context.worksheet)
    return cell_json(request, context)


@view_config(context=Cell, request_method='DELETE', permission=P.EDIT, renderer='json')
def delete_cell(context, request):
    worksheet = context.worksheet
    worksheets.delete_cell(context)
    history.edited(request, worksheet)
    return {'deleted': context.id}


@view_config(context=Cell, name='move', request_method='POST', permission=P.EDIT,
             renderer='json')
def move_cell(context, request):
    direction = json_body(request).get('direction')
    if direction not in ('up', 'down'):
        raise api_error(400, '"direction" must be "up" or "down"')
    order = context.worksheet.move_cell(context.id, direction)
    history.edited(request, context.worksheet)
    return {'order': order}


@view_config(context=Cell, name='clear', request_method='POST', permission=P.EDIT,
             renderer='json')
def clear_cell(context, request):
    if context.output.clear():
        # Other pages of the worksheet take the cleared cell from their ``?since=`` poll.
        evaluation.note_cleared(request, context.worksheet, context)
    history.edited(request, context.worksheet)
    return cell_json(request, context)


@view_config(context=Cell, name='evaluate', request_method='POST', permission=P.EVALUATE,
             renderer='json')
def evaluate_cell(context, request):
    body = json_body(request, required=False)
    wait = wait_seconds(request, body.get('wait'))
    text = get_str(body, 'input')
    # A slot first: a request refused for too many waits has changed nothing.
    with wait_slot(request) if wait else contextlib.nullcontext():
        if text is not None and text != context.input:
            if not request.has_permission(P.EDIT, context):
                raise api_error(403, 'you may evaluate this cell but not change its input')
            worksheets.edit_cell(context, request.user, {'input': text})
        run_id = queue_cell(request, context, awaited=bool(wait))
        history.edited(request, context.worksheet)
        if wait:
            if evaluation.commit_then_wait(request, context, wait, run_id) or \
                    context.output.run_id == run_id:
                return cell_json(request, context)
    return queued_json(request, context)


@view_config(context=Cell, name='stdin', request_method='POST', permission=P.EVALUATE,
             renderer='json')
def send_input(context, request):
    """The answer to the ``input()`` the cell's code waits in."""
    value = get_str(json_body(request), 'value', max_length=100_000)
    if value is None:
        raise api_error(400, 'send the answer as "value"')
    worksheet = context.worksheet
    if not request.workers.send_input(worksheet_key(worksheet), context.id, value):
        raise api_error(409, 'this cell is not waiting for input')
    return {'ok': True}


@view_config(context=Cell, name='comm', request_method='POST', permission=P.EVALUATE,
             renderer='json')
def widget_change(context, request):
    """A change of a control of the cell (an @interact slider ...) for its process.

    ``{"comm_id": model id, "data": {"method": "update", "state": {...}}}`` (or
    ``"method": "custom"`` with ``"content"`` for a button click).  The result arrives
    as a new version of the cell (its ``widgets``)."""
    body = json_body(request)
    comm_id, data = body.get('comm_id'), body.get('data')
    widgets = context.output.widgets or {}
    if not isinstance(comm_id, str) or comm_id not in widgets:
        raise api_error(400, '"comm_id" must name a control of this cell')
    if not isinstance(data, dict) or data.get('method') not in ('update', 'custom') or (
            data['method'] == 'update' and not isinstance(data.get('state'), dict)):
        raise api_error(400, '"data" must be {"method": "update", "state": {...}} or '
                             '{"method": "custom", "content": {...}}')
    if data['method'] == 'update':
        data = {'method': 'update', 'state': data['state'], 'buffer_paths': []}
    problem = request.workers.send_comm(worksheet_key(context.worksheet), context.id,
                                        context.output.run_id, comm_id, data)
    if problem:
        raise api_error(409, problem)
    request.response.status = 202
    return {'ok': True, 'version': context.output.version}


@view_config(context=Cell, name='output.txt', request_method='GET', permission=P.VIEW)
def full_output(context, request):
    """The whole text of an output that was cut in the page."""
    blob = getattr(context.output, 'full_text', None)
    if blob is None:
        raise api_error(404, 'this cell has no cut output to download')
    response = request.response
    response.content_type = 'text/plain'
    response.charset = 'utf-8'
    response.content_disposition = 'attachment; filename="cell-%d-output.txt"' % context.id
    response.app_iter = FileIter(blob.open('r'))
    return response

