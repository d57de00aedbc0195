"""What every view (and the services they call) shares about requests and answers: how
a request says it wants JSON, how JSON bodies and fields are read, the errors shown to
the user (``api_error``), the error answer itself, and a few helpers of the pages.

It lives outside ``views/`` so that views, services and the rest import it without
importing one another (no view module imports another: tests/unit/test_layers.py).
"""
import json
import time
from urllib.parse import urlparse

from pyramid.httpexceptions import status_map


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


def fmt_time(when):
    """A stored time as the pages show it."""
    if not when:
        return ''
    return time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(when))


def home_url(request, user):
    """Where a user lands after logging in."""
    return request.resource_url(user)


def safe_came_from(request, came_from):
    """Only a path on this server: never a redirect elsewhere."""
    parsed = urlparse(came_from or '')
    if came_from and not parsed.scheme and not parsed.netloc and came_from.startswith('/') \
            and not came_from.startswith('//'):
        return request.application_url + came_from
    return None
