"""Sharing: a worksheet's sharing (``<worksheet>/sharing``) and the users and groups the
share dialog may offer (``/people``).  The logic is in services/sharing.py."""
from pyramid.view import view_config

from ..resources import Root, Worksheet
from ..security import P
from ..services import sharing
from ..web import get_str, json_body


@view_config(context=Worksheet, name='sharing', request_method='GET', permission=P.VIEW,
             renderer='json')
def get_sharing(context, request):
    return sharing.sharing_json(request, context)


@view_config(context=Worksheet, name='sharing', request_method='PUT', permission=P.SHARE,
             renderer='json')
def put_sharing(context, request):
    """The whole sharing at once: ``{"collaborators": [...], "viewers": [...]}``."""
    collaborators, viewers = sharing.parse_sharing(request, context, json_body(request))
    sharing.change_sharing(request, context, collaborators, viewers)
    return sharing.sharing_json(request, context)


@view_config(context=Root, name='people', request_method='GET', permission=P.ACCOUNT,
             renderer='json')
def people(context, request):
    """The share dialog's type-ahead: ``?q=`` part of a name."""
    query = get_str(request.GET, 'q', '', max_length=200)
    return sharing.candidates(request, query)
