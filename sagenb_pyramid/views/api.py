"""``/api/openapi.json``: the OpenAPI description of the JSON API (``openapi.py``).

Open to anyone: it describes what docs/api.md describes and holds no data of the
notebook (no users, no worksheets), so scripts and tools may read it before logging in.
"""
from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.view import view_config

from .. import openapi
from ..resources import Root
from ..web import api_error

# Built once: the description does not change while the server runs.
_SPEC = openapi.spec()


@view_config(context=Root, name='api', request_method='GET',
             permission=NO_PERMISSION_REQUIRED, renderer='json')
def openapi_json(context, request):
    if tuple(request.subpath) != ('openapi.json',):
        raise api_error(404, 'not found: %s (the API is described at /api/openapi.json)'
                        % request.path)
    request.response.cache_control = 'no-cache'
    return _SPEC
