"""What every view (and the services they call) shares about requests and answers: how
a request says it wants JSON, how JSON bodies and fields are read, the errors shown to
the user (``api_error``), the error answer itself, and a few helpers of the pages.

It lives outside ``views/`` so that views, services and the rest import it without
importing one another (no view module imports another: tests/unit/test_layers.py).
"""
import json
import time
from urllib.parse import quote, urlparse

from pyramid.httpexceptions import status_map


def wants_json(request):
    if request.environ.get('sagenb.via_token'):
        return True
    # A script's token, even when it could not be checked (the database away).
    if request.headers.get('Authorization', '').startswith('Bearer '):
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


# --- files sent as downloads ----------------------------------------------------------
# Data files, a cell's files, exports and published files are sent in a sandbox of their
# own, so HTML or SVG opened directly runs no script (docs/security.md).
FILE_CSP = "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'"
INLINE_TYPES = ('image/png', 'image/jpeg', 'image/gif', 'text/plain')


def content_disposition(kind, filename):
    ascii_name = filename.encode('ascii', 'replace').decode('ascii').replace('?', '_')
    return '%s; filename="%s"; filename*=UTF-8\'\'%s' % (
        kind, ascii_name.replace('"', '_'), quote(filename, safe=''))


def send_bytes(request, content, content_type, filename, inline=False,
               cache='private, no-cache'):
    response = request.response
    response.content_type = content_type
    if content_type.startswith('text/'):
        response.charset = 'utf-8'
    response.body = content
    response.content_disposition = content_disposition(
        'inline' if inline else 'attachment', filename)
    response.headers['Content-Security-Policy'] = FILE_CSP
    response.headers['X-Content-Type-Options'] = 'nosniff'
    response.cache_control = cache
    return response
