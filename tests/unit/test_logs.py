"""Request ids and the JSON log lines (logs.py): an id per request, answered in
``X-Request-Id``, named by every log line the request causes, and carried to a worker
host on another machine, whose own log lines name it too."""
import json
import logging
import sys

import pytest
import webtest
from pyramid.config import Configurator

from sagenb_pyramid.logs import REQUEST_ID, JSONFormatter, accepted_id
from sagenb_pyramid.workers.hostapi import serve, stop
from sagenb_pyramid.workers.hosts import RemoteHost

SECRET = b'a worker secret'
log = logging.getLogger('sagenb_pyramid.tests.logs')


def json_line(msg, args=(), exc_info=None):
    record = logging.LogRecord('sagenb_pyramid.x', logging.WARNING, __file__, 1,
                               msg, args, exc_info)
    return json.loads(JSONFormatter().format(record))


def test_a_json_line_has_time_level_logger_message():
    entry = json_line('%d cells %s', (3, 'lost'))
    assert entry['message'] == '3 cells lost'
    assert (entry['level'], entry['logger']) == ('WARNING', 'sagenb_pyramid.x')
    assert entry['time'].endswith('Z') and 'T' in entry['time']
    assert 'request_id' not in entry and 'exception' not in entry


def test_a_json_line_names_the_request_and_the_exception():
    token = REQUEST_ID.set('abcdef0123456789')
    try:
        try:
            raise ValueError('bad "quote"\nand a line')
        except ValueError:
            entry = json_line('failed', exc_info=sys.exc_info())
    finally:
        REQUEST_ID.reset(token)
    assert entry['request_id'] == 'abcdef0123456789'
    assert entry['exception'].splitlines()[-2:] == ['ValueError: bad "quote"', 'and a line']


@pytest.mark.parametrize('value, ok', [
    ('0123456789abcdef', True), ('req-1234.5678:9', True), ('short', False),
    ('has space in it', False), ('x' * 129, False), ('<script>alert(1)</script>', False),
    ('', False), (None, False)])
def test_only_sane_ids_are_taken_from_outside(value, ok):
    assert accepted_id(value) == (value if ok else None)


def app_logging_its_id(seen):
    def view(request):
        log.warning('answering')
        seen.append(REQUEST_ID.get())
        return request.response
    with Configurator() as config:
        config.include('sagenb_pyramid.logs')
        config.add_view(view, name='x')
        return webtest.TestApp(config.make_wsgi_app())


def test_every_request_gets_an_id_answered_and_logged(caplog):
    seen = []
    app = app_logging_its_id(seen)
    first = app.get('/x').headers['X-Request-Id']
    second = app.get('/x').headers['X-Request-Id']
    assert first != second and seen == [first, second] and len(first) == 32
    # A proxy's id is kept; a strange one is replaced.
    assert app.get('/x', headers={'X-Request-Id': 'lb-00000001'}).headers['X-Request-Id'] \
        == 'lb-00000001'
    assert app.get('/x', headers={'X-Request-Id': 'bad id'}).headers['X-Request-Id'] \
        != 'bad id'
    assert REQUEST_ID.get() is None  # nothing left behind in this thread


class Host:
    """A worker host whose ``has_process`` records the request id it ran under."""
    server_name, boot_id = 'h', 'b'

    def __init__(self):
        self.ids = []

    def has_process(self, key):
        self.ids.append(REQUEST_ID.get())
        return False


def test_the_id_goes_with_a_call_to_a_worker_host():
    host = Host()
    server = serve(host, SECRET, '127.0.0.1:0')
    try:
        remote = RemoteHost('h', host.address, SECRET, timeout=10)
        token = REQUEST_ID.set('app-request-0001')
        try:
            remote.has_process(('u-1', 0))
        finally:
            REQUEST_ID.reset(token)
        remote.has_process(('u-1', 0))  # outside a request: none
    finally:
        stop(server)
    assert host.ids == ['app-request-0001', None]
