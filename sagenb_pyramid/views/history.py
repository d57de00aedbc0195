"""A worksheet's history (``<worksheet>/revisions/``): the list of revisions, one
revision, the difference of two (or of one and the worksheet now), restoring, naming
and pinning.  The logic is in services/history.py."""
from pyramid.events import ContextFound, subscriber
from pyramid.view import view_config

from ..resources import Revision, Revisions, Worksheet
from ..security import P
from ..services import history
from ..web import INLINE_TYPES, api_error, json_body, send_bytes


def worksheet_of(revision):
    return revision.__parent__.__parent__


def require_history(request, worksheet):
    """Viewers (who may not edit) read the history only if the owner allows it; admins,
    who read every worksheet, read it too."""
    if not worksheet.history_for_viewers and not request.user.is_admin \
            and not request.has_permission(P.EDIT, worksheet):
        raise api_error(403, "the owner has not opened this worksheet's history to viewers")


@subscriber(ContextFound)
def burst_over_before_change(event):
    """A request that may change a worksheet (anything but GET and HEAD to it or within
    it): the burst of edits that ended there gets its revision first, of the state
    before the change.  A refused request is rolled back with it (pyramid_tm)."""
    request = event.request
    if request.method in ('GET', 'HEAD'):
        return
    node = request.context
    while node is not None and not isinstance(node, Worksheet):
        node = getattr(node, '__parent__', None)
    if node is not None:
        history.take_pending(node, history.Rules.of(request.registry.settings))


@view_config(context=Revisions, request_method='GET', permission=P.VIEW, renderer='json')
def revisions(context, request):
    worksheet = context.__parent__
    require_history(request, worksheet)
    # A burst of edits that ended since the last revision gets its own now.
    history.take_pending(worksheet, history.Rules.of(request.registry.settings))
    return {'revisions': [history.revision_json(request, rev, worksheet)
                          for rev in context.values()],
            'history_for_viewers': bool(worksheet.history_for_viewers)}


@view_config(context=Revisions, request_method='PATCH', permission=P.SHARE,
             renderer='json')
def history_settings(context, request):
    """``{"history_for_viewers": bool}``: whether viewers may read the history (the
    owner's choice; an admin may only take it away, as with sharing)."""
    value = json_body(request).get('history_for_viewers')
    if not isinstance(value, bool):
        raise api_error(400, '"history_for_viewers" must be true or false')
    worksheet = context.__parent__
    if value and request.user.id != worksheet.owner_id:
        raise api_error(403, 'only the owner of a worksheet may open its history to viewers')
    if value != bool(worksheet.history_for_viewers):
        worksheet.history_for_viewers = value
    return {'history_for_viewers': value}


@view_config(context=Revision, request_method='GET', permission=P.VIEW, renderer='json')
def revision(context, request):
    require_history(request, worksheet_of(context))
    answer = history.revision_json(request, context, worksheet_of(context))
    answer['body'] = context.body
    answer['worksheet_name'] = context.worksheet_name
    answer['cells'] = [history.cell_json(cell) for cell in history.cells_of(context)]
    if context.notebook_metadata:
        answer['notebook_metadata'] = context.notebook_metadata
    return answer


@view_config(context=Revision, name='attachments', request_method='GET', permission=P.VIEW)
def revision_attachment(context, request):
    """``attachments/<cell id>/<name>``: an attachment of a text cell as the revision
    kept it, sent as the worksheet's own are (``web.send_bytes``: the sandboxing CSP)."""
    require_history(request, worksheet_of(context))
    if len(request.subpath) < 2:
        raise api_error(404, 'an attachment of a revision is attachments/<cell id>/<name>')
    cell_id, name = request.subpath[0], '/'.join(request.subpath[1:])
    snap = next((s for s in context.cells or () if str(s.id) == cell_id), None)
    found = snap.attachment(name) if snap is not None else None
    if found is None:
        raise api_error(404, 'cell %s of this revision has no attachment %r' % (cell_id, name))
    kind, content = found
    return send_bytes(request, content, kind, name, inline=kind in INLINE_TYPES)


@view_config(context=Revision, request_method='POST', permission=P.EDIT, renderer='json')
def update_revision(context, request):
    history.update_revision(context, json_body(request))
    return history.revision_json(request, context, worksheet_of(context))


@view_config(context=Revision, name='diff', request_method='GET', permission=P.VIEW,
             renderer='json')
def diff(context, request):
    """``diff``: from this revision to the worksheet now; ``diff/<id>``: to that one."""
    worksheet = worksheet_of(context)
    require_history(request, worksheet)
    if len(request.subpath) > 1:
        raise api_error(404, 'a difference is diff or diff/<revision id>')
    if request.subpath:
        other = context.__parent__.get(request.subpath[0])
        if other is None:
            raise api_error(404, 'this worksheet has no revision %r' % request.subpath[0])
        new, label = history.cells_of(other), other.__name__
    else:
        new, label = history.current_cells(worksheet), 'current'
    answer = history.diff_cells(history.cells_of(context), new, context.__name__, label)
    answer.update({'from': context.__name__, 'to': label})
    return answer


@view_config(context=Revision, name='restore', request_method='POST', permission=P.EDIT,
             renderer='json')
def restore(context, request):
    worksheet = worksheet_of(context)
    made = history.restore(worksheet, context, request.user,
                           history.Rules.of(request.registry.settings))
    return {'restored': context.__name__,
            'revision': history.revision_json(request, made, worksheet),
            'url': request.resource_url(worksheet)}
