"""``GET /search``: full-text search over the worksheets the caller may see."""
from pyramid.view import view_config

from ..resources import Root
from ..security import P
from ..services.finding import find, paging


@view_config(context=Root, name='search', request_method='GET', permission=P.ACCOUNT,
             renderer='json')
def search_view(context, request):
    """Logged-in users only (``P.ACCOUNT``): anonymous visitors search published
    worksheets on ``/pub/``."""
    offset, limit = paging(request.GET)
    return find(request, context, request.GET.get('q', ''),
                request.GET.get('scope', 'all'), offset, limit)
