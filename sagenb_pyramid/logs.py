"""Request ids and structured logs.

Every request gets an id (``X-Request-Id``: the one a proxy sent, if it looks like an
id, else a new one), answered in the same header and kept in ``REQUEST_ID`` while the
request runs, so every log line it causes can name it.  Calls to a worker host on
another machine carry it (``hosts.RemoteHost.call``), and the host's door takes it on
(``hostapi.py``), so one id follows a request across app server and worker host.

``JSONFormatter`` writes one JSON object a line (time, level, logger, message, request
id, and the exception's traceback): log collectors read it as it is.  It is optional:
choose it in the ``.ini``'s logging sections (README, "Logs").
"""
import contextvars
import json
import logging
import re
import time
import uuid

REQUEST_ID = contextvars.ContextVar('sagenb_request_id', default=None)
HEADER = 'X-Request-Id'
_SANE = re.compile(r'[A-Za-z0-9._:-]{8,128}')


def new_request_id():
    return uuid.uuid4().hex


def accepted_id(value):
    """A request id sent by a proxy or an app server, or None when it is not one."""
    return value if value and _SANE.fullmatch(value) else None


def request_id_tween_factory(handler, registry):
    def tween(request):
        rid = accepted_id(request.headers.get(HEADER)) or new_request_id()
        request.environ['sagenb.request_id'] = rid
        token = REQUEST_ID.set(rid)
        try:
            response = handler(request)
            response.headers[HEADER] = rid
            return response
        finally:
            REQUEST_ID.reset(token)
    return tween


class JSONFormatter(logging.Formatter):
    """One JSON object a line: ``time`` (ISO 8601, UTC), ``level``, ``logger``,
    ``message``, ``request_id`` (when a request caused it), ``thread``, and ``exception``
    (the traceback) when there is one."""

    def format(self, record):
        entry = {
            'time': time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(record.created))
            + '.%03dZ' % record.msecs,
            'level': record.levelname, 'logger': record.name,
            'message': record.getMessage(), 'thread': record.threadName,
        }
        rid = REQUEST_ID.get()
        if rid is not None:
            entry['request_id'] = rid
        if record.exc_info:
            entry['exception'] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def includeme(config):
    from pyramid.tweens import INGRESS
    # Outermost, over the metrics' tween: the id is set before anything logs.
    config.add_tween('sagenb_pyramid.logs.request_id_tween_factory', under=INGRESS)
