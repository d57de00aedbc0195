"""Seeing the server run: ``/health`` for load balancers and ``/metrics`` for Prometheus.

Both are routes, not traversal: they answer without reading the application root, so
``/health`` can say the database is down instead of failing with it.  ``/health`` is
open to anyone and says nothing secret (services/system.py); ``/metrics`` is for
admins, or a scraper sending ``Authorization: Bearer <sagenb.metrics.token>``.
"""
import hmac

from pyramid.response import Response
from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.view import view_config

from ..services import system
from ..web import api_error


@view_config(route_name='health', request_method='GET',  # HEAD too (Pyramid)
             permission=NO_PERMISSION_REQUIRED, renderer='json')
def health(request):
    status, body = system.health(request.registry)
    request.response.status = status
    request.response.cache_control = 'no-store'
    return body


def scraper_token_ok(request):
    token = request.registry.settings['sagenb.metrics.token']
    sent = request.headers.get('Authorization', '')
    return bool(token) and sent.startswith('Bearer ') and \
        hmac.compare_digest(sent[7:].strip().encode(), token.encode())


@view_config(route_name='metrics', request_method='GET',
             permission=NO_PERMISSION_REQUIRED)
def metrics(request):
    if not scraper_token_ok(request):
        # Not the scraper: an admin's session or API token, else refused.
        user = request.user
        if user is None:
            raise api_error(401, 'log in as an admin, or send the scraper token '
                                 '(sagenb.metrics.token) as a Bearer token')
        if not user.is_admin:
            raise api_error(403, 'only admins may read the metrics')
    figures = request.registry.metrics
    return Response(body=figures.render(), content_type=figures.content_type.split(';')[0],
                    charset='utf-8', cache_control='no-store')
