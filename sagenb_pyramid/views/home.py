"""A user's home: the worksheet listing, creating worksheets, and listing actions."""
from pyramid.httpexceptions import HTTPFound
from pyramid.view import view_config

from ..resources import WORKSHEET_STATES, User, Worksheet, usage
from ..security import P
from ..services.evaluation import delete_worksheet
from ..services.finding import tag_filter
from ..services.listing import SORTS, listed, new_worksheet_name
from ..services.quota import require_room
from ..services.serialize import worksheet_summary
from ..web import api_error, json_body, wants_json

@view_config(context=User, request_method='GET', permission=P.VIEW,
             renderer='listing.jinja2')
def listing(context, request):
    state = request.params.get('state', 'active')
    sort = request.params.get('sort', 'modified')
    if state not in WORKSHEET_STATES + ('all',):
        raise api_error(400, 'state must be one of active, archive, trash, all')
    if sort not in SORTS:
        raise api_error(400, 'sort must be "modified" or "name"')
    tag = tag_filter(request.params.get('tag'))
    worksheets = listed(context, request, state, sort, tag)
    if wants_json(request):
        request.override_renderer = 'json'
        return {'worksheets': [worksheet_summary(request, w, request.user.id)
                               for w in worksheets]}
    return {'home': context, 'worksheets': worksheets, 'state': state, 'sort': sort,
            'user_id': request.user.id, 'tag': tag}


@view_config(context=User, request_method='POST', permission=P.CREATE, renderer='json')
def create_worksheet(context, request):
    if request.content_type == 'application/json' or wants_json(request):
        name = new_worksheet_name(json_body(request, required=False))
    else:
        name = new_worksheet_name(request.POST)
    typeset = request.registry.settings['sagenb.typeset_default']
    worksheet = context.create_worksheet(name, typeset=typeset)
    url = request.resource_url(worksheet)
    if not wants_json(request):
        return HTTPFound(url)
    request.response.status = 201
    return {'id': worksheet.number, 'url': request.resource_path(worksheet), 'name': name}


@view_config(context=User, name='action', request_method='POST', permission=P.EDIT)
def listing_action(context, request):
    """The listing's buttons: archive, trash, restore, copy, rename, delete for good."""
    action = request.POST.get('action')
    numbers = request.POST.getall('ids')
    worksheets = [context.get(n) for n in numbers]
    if not worksheets or any(not isinstance(w, Worksheet) for w in worksheets):
        request.session.flash('Select one or more worksheets first.')
        return HTTPFound(request.resource_url(context))
    user_id = request.user.id
    if action in ('active', 'archive', 'trash'):
        for worksheet in worksheets:
            worksheet.set_state(user_id, action)
    elif action == 'copy':
        require_room(request, context, sum(usage(w) for w in worksheets),
                     'cannot copy the worksheets', 409)
        for worksheet in worksheets:
            worksheet.copy(context, 'Copy of ' + worksheet.name)
    elif action == 'rename':
        if len(worksheets) != 1:
            request.session.flash('Select one worksheet to rename.')
        elif not request.POST.get('new_name', '').strip():
            request.session.flash('Type the new name first.')
        else:
            worksheets[0].name = new_worksheet_name({'name': request.POST.get('new_name', '')})
            worksheets[0].touch()
    elif action == 'delete':
        if any(w.state_for(user_id) != 'trash' for w in worksheets):
            raise api_error(409, 'only worksheets in the trash can be deleted for good')
        for worksheet in worksheets:
            delete_worksheet(request, worksheet)
    else:
        raise api_error(400, 'unknown action %r' % action)
    return HTTPFound(request.resource_url(context, query={'state': request.POST.get(
        'state', 'active')}))


@view_config(context=User, name='empty_trash', request_method='POST', permission=P.EDIT,
             renderer='json')
def empty_trash(context, request):
    trashed = [w for w in context.worksheets() if w.state_for(request.user.id) == 'trash']
    for worksheet in trashed:
        delete_worksheet(request, worksheet)
    if wants_json(request):
        return {'deleted': [w.number for w in trashed]}
    request.session.flash('Deleted %d worksheet(s) for good.' % len(trashed))
    return HTTPFound(request.resource_url(context, query={'state': 'trash'}))
