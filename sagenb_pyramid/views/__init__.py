"""Views, by the resource they publish: accounts, homes (listings), worksheets, cells.

Shared here: how a request says it wants JSON, how JSON bodies are read, and the error
views that turn every failure into a clear status and message (JSON for scripts and
the page's own requests, a short HTML page for browsers), never a traceback.
"""
import json
import logging

from pyramid.httpexceptions import HTTPException, HTTPFound, status_map
from pyramid.view import (
    exception_view_config, forbidden_view_config, notfound_view_config)

from ..security import P, REFUSALS
from ..workers.hosts import NoCapacity
from ..workers.registry import WorkerProblem

log = logging.getLogger(__name__)


def wants_json(request):
    if request.environ.get('sagenb.via_token'):
        return True
    if request.content_type == 'application/json':
        return True
    offers = request.accept.acceptable_offers(['text/html', 'application/json'])
    return bool(offers) and offers[0][0] == 'application/json'


def api_error(status, message):
    """An HTTP error whose message is shown to the user or returned as ``{"error"}``."""
    exc = status_map[status](detail=message)
    exc.user_message = message
    return exc


def json_body(request, required=True):
    """The request's JSON object, or a 400 that says what is wrong with it."""
    if not request.body:
        if required:
            raise api_error(400, 'the request needs a JSON body')
        return {}
    try:
        body = json.loads(request.body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise api_error(400, 'malformed JSON: %s' % exc) from None
    if not isinstance(body, dict):
        raise api_error(400, 'the JSON body must be an object')
    return body


def form_of(request):
    """The request's fields: a JSON body, or the form."""
    if request.content_type == 'application/json':
        return json_body(request, required=False)
    return request.POST


def get_str(body, key, default=None, max_length=1_000_000, allow_empty=True):
    if key not in body:
        return default
    value = body[key]
    if value is None and default is None:
        return None
    if not isinstance(value, str):
        raise api_error(400, '"%s" must be a string' % key)
    if len(value) > max_length:
        raise api_error(400, '"%s" is longer than %d characters' % (key, max_length))
    if not allow_empty and not value.strip():
        raise api_error(400, '"%s" must not be empty' % key)
    return value


def error_response(request, status, message):
    request.response.status = status
    if wants_json(request):
        request.override_renderer = 'json'
        return {'error': message}
    request.override_renderer = 'error.jinja2'
    return {'status': request.response.status, 'message': message}


def login_needed(request):
    """What an anonymous visitor gets for anything that is not public: the login page
    (browsers) or 401 (scripts), whether or not the thing exists."""
    if wants_json(request):
        return error_response(request, 401, request.environ.get('sagenb.token_problem')
                              or 'log in or send an API token')
    return HTTPFound(request.application_url + '/login?came_from='
                     + request.path_qs.replace('&', '%26'))


def not_found(request, exc=None):
    return error_response(request, 404, getattr(exc, 'user_message', None)
                          or 'not found: %s' % request.path)


@forbidden_view_config(renderer='json')
def forbidden(exc, request):
    if request.identity is None:
        return login_needed(request)
    context = getattr(request, 'context', None)
    # Refused before any view ran, by someone who may not even see the thing: the
    # answer of a missing thing, so existence is not told (docs/security.md).  The
    # root (account pages) hides nothing; a view that refuses had let its visitor in.
    if not request.environ.get('sagenb.view_reached') and context is not None \
            and getattr(context, '__parent__', None) is not None \
            and not request.has_permission(P.VIEW, context):
        return not_found(request)
    missing = getattr(getattr(exc, 'result', None), 'permission', None)
    return error_response(request, 403, getattr(exc, 'user_message', None)
                          or REFUSALS.get(str(missing)) or 'you may not do that here')


@notfound_view_config(renderer='json')
def notfound(exc, request):
    # Below the root (homes, the admin section) names are users', groups' and
    # worksheets': anonymous visitors get the login page whether or not they exist.  A
    # miss at the root itself (/nowhere) names nothing of anybody's (the root's names
    # are the application's own, the same on every server): an honest 404.
    if request.identity is None and not request.environ.get('sagenb.view_reached') \
            and not is_root(getattr(request, 'context', None)):
        return login_needed(request)
    return not_found(request, exc)


def is_root(context):
    from ..resources import Root
    return isinstance(context, Root)


@exception_view_config(HTTPException, renderer='json')
def http_error(exc, request):
    if exc.code < 400:
        return exc
    message = getattr(exc, 'user_message', None) or exc.title
    if exc.code == 400 and exc.detail and isinstance(exc.detail, str):
        message = exc.detail  # e.g. "bad CSRF token" from Pyramid itself
    if 'Retry-After' in exc.headers:  # the response the view had is gone by now
        request.response.headers['Retry-After'] = exc.headers['Retry-After']
    return error_response(request, exc.code, message)


@exception_view_config(NoCapacity, renderer='json')
def no_capacity(exc, request):
    """No Sage process may start for the worksheet (limits of the user, of the hosts)."""
    return error_response(request, 409, str(exc))


@exception_view_config(WorkerProblem, renderer='json')
def worker_problem(exc, request):
    """The worksheet's worker host could not be reached or could not answer."""
    return error_response(request, 503, str(exc))


@exception_view_config(Exception, renderer='json', retryable_error=False)
@exception_view_config(Exception, renderer='json', last_retry_attempt=True)
def server_error(exc, request):
    log.exception('error while handling %s %s', request.method, request.path)
    return error_response(request, 500, 'the server failed to handle this request; '
                                        'nothing was changed')

