"""A user's home: the worksheet listing, creating worksheets, and listing actions."""
from pyramid.httpexceptions import HTTPFound
from pyramid.view import view_config

from ..resources import WORKSHEET_STATES, User
from ..security import P
from ..services import worksheets as worksheet_service
from ..services.listing import SORTS, listed, shared_listing
from ..services.worksheets import new_worksheet_name
from ..services.tags import tag_filter
from ..services.serialize import worksheet_summary
from ..web import api_error, json_body, wants_json

@view_config(context=User, request_method='GET', permission=P.VIEW,
             renderer='listing.jinja2')
def listing(context, request):
    state = request.params.get('state', 'active')
    sort = request.params.get('sort', 'modified')
    if state not in WORKSHEET_STATES + ('all', 'shared'):
        raise api_error(400, 'state must be one of active, archive, trash, all, shared')
    if sort not in SORTS:
        raise api_error(400, 'sort must be "modified" or "name"')
    tag = tag_filter(request.params.get('tag'))
    if state == 'shared':  # what others share with this home's user
        return shared_listing(context, request, sort)
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
    try:
        chosen = worksheet_service.selected(context, request.POST.getall('ids'))
    except worksheet_service.Unselected as note:
        request.session.flash(str(note))
        return HTTPFound(request.resource_url(context))
    try:
        worksheet_service.listing_action(
            request, context, request.user, request.POST.get('action'), chosen,
            request.POST.get('new_name', ''))
    except worksheet_service.Unselected as note:
        request.session.flash(str(note))
    return HTTPFound(request.resource_url(context, query={'state': request.POST.get(
        'state', 'active')}))


@view_config(context=User, name='empty_trash', request_method='POST', permission=P.EDIT,
             renderer='json')
def empty_trash(context, request):
    trashed = worksheet_service.empty_trash(request, context, request.user)
    if wants_json(request):
        return {'deleted': [w.number for w in trashed]}
    request.session.flash('Deleted %d worksheet(s) for good.' % len(trashed))
    return HTTPFound(request.resource_url(context, query={'state': 'trash'}))
