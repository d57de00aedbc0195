"""Views, by the resource they publish: accounts, homes (listings), worksheets, cells.

A view parses the request, checks its permission (its ``view_config``), calls a
service (``sagenb_pyramid/services/``) and renders the answer.  No view module imports
another: what two of them share goes to a service, or to ``sagenb_pyramid/web.py`` (how
a request says it wants JSON, JSON bodies and fields, ``api_error``), which
tests/unit/test_layers.py checks.

Here: the error views that turn every failure into a clear status and message (JSON for
scripts and the page's own requests, a short HTML page for browsers), never a traceback.
"""
import logging

from ZODB.POSException import ConflictError
from pyramid.httpexceptions import HTTPException, HTTPFound
from ZEO.Exceptions import ClientDisconnected
from pyramid.view import (
    exception_view_config, forbidden_view_config, notfound_view_config)

from .. import outages
from ..security import P, REFUSALS
from ..services.live import deleted_cell_message
from ..web import error_response, wants_json
from ..workers.contract import NoCapacity, WorkerProblem

log = logging.getLogger(__name__)


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
    # are the application's own, the same on every server), nor one below /pub/ (public
    # by design): an honest 404.
    if request.identity is None and not request.environ.get('sagenb.view_reached') \
            and not is_public(getattr(request, 'context', None)):
        return login_needed(request)
    deleted = deleted_cell_message(request)  # a cell deleted by someone else meanwhile
    if deleted is not None:
        return error_response(request, 404, deleted)
    return not_found(request, exc)


def is_public(context):
    from ..resources import Root
    return isinstance(context, Root) or getattr(context, 'public', False)


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


@exception_view_config(ConflictError, renderer='json', last_retry_attempt=True)
def still_conflicting(exc, request):
    """Others changed the same objects each time the request ran (pyramid_retry's
    attempts): nothing was saved, and sending it again soon will do (503 with
    Retry-After, not a server failure)."""
    log.warning('%s %s conflicted on every attempt: %s', request.method, request.path, exc)
    request.response.headers['Retry-After'] = '1'
    return error_response(request, 503, 'others changed this at the same moment each '
                                        'time it was tried: nothing was changed; send it '
                                        'again')


@exception_view_config(outages.Unavailable, renderer='json')
@exception_view_config(ClientDisconnected, renderer='json')
@exception_view_config(OSError, renderer='json')
def unavailable(exc, request):
    """The database cannot be reached (503) or its disk is full (507): said plainly,
    for any attempt (outages.py stops pyramid_retry from running it again)."""
    kind = outages.outage_of(exc)
    if kind is None:  # another OSError: a failure of the server
        return server_error(exc, request)
    log.warning('%s %s: %s (%s: %s)', request.method, request.path, outages.MESSAGES[kind],
                type(exc).__name__, exc)
    request.response.headers['Retry-After'] = outages.RETRY_AFTER
    return error_response(request, outages.STATUS[kind], outages.MESSAGES[kind])


# PostgreSQL's (psycopg2, RelStorage): the same view, which tells outages from failures.
for _raised in outages.database_error_classes():
    unavailable = exception_view_config(_raised, renderer='json')(unavailable)


@exception_view_config(Exception, renderer='json', retryable_error=False)
@exception_view_config(Exception, renderer='json', last_retry_attempt=True)
def server_error(exc, request):
    log.exception('error while handling %s %s', request.method, request.path)
    return error_response(request, 500, 'the server failed to handle this request; '
                                        'nothing was changed')

