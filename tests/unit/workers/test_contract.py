"""The workers' contract (workers/contract.py) and the pieces around it, without Sage:
every implementation has every operation, each operation crosses a real host door with
its arguments' types, the IOPub-to-nbformat mapping, signing, the configuration, and
no import circles among the worker modules."""
import ast
import os
import time

import pytest

from sagenb_pyramid.settings import DEFAULTS, SettingsError
from sagenb_pyramid.workers import cellwriter, contract
from sagenb_pyramid.workers.config import WorkerConfig
from sagenb_pyramid.workers.contract import (HostOperations, Job, KernelOperations,
                                             WorksheetOperations, missing_operations,
                                             operations)
from sagenb_pyramid.workers.hostapi import HostApi, serve, stop
from sagenb_pyramid.workers.hosts import RemoteHost, Routes
from sagenb_pyramid.workers.kernel import ForkedKernel, SpawnedKernel
from sagenb_pyramid.workers.registry import WorkerRegistry
from sagenb_pyramid.workers.signing import Verifier, signed_headers

from ...support.fakekernel import FakeKernel

SECRET = b'a worker secret'


@pytest.mark.parametrize('implementation, protocol', [
    (WorkerRegistry, HostOperations),
    (RemoteHost, HostOperations),
    (Routes, WorksheetOperations),
    (ForkedKernel, KernelOperations),
    (SpawnedKernel, KernelOperations),
    (FakeKernel, KernelOperations),
])
def test_every_implementation_has_every_operation(implementation, protocol):
    assert missing_operations(implementation, protocol) == []


def test_the_door_serves_exactly_the_host_operations():
    assert set(HostApi.operations) == set(operations(HostOperations))


def test_a_missing_or_different_operation_is_found():
    class Partial:
        def submit(self, job):
            pass

        def ask(self, key, kind, content):  # no timeout
            pass
    missing = missing_operations(Partial)
    assert "ask('key', 'kind', 'content')" in missing
    assert 'touch' in missing and 'make_room' in missing and 'submit' not in missing


KEY = ('u-1', 3)
JOB = Job('u-1', 3, 4, 'run-1', 'print hi', typeset=True,
          data_files=(('a.csv', 'stamp', '/blobs/a'),), awaited=True)
# Arguments of each operation, and what the recorder answers.
CALLS = {
    'submit': ((JOB,), None),
    'ask': ((KEY, 'complete', {'code': 'x', 'cursor_pos': 1}, 2.5), {'matches': ['xy']}),
    'send_comm': ((KEY, 4, 'run-1', 'comm-1', {'method': 'update', 'state': {'v': 2}}),
                  'these controls are not live'),
    'send_input': ((KEY, 4, 'an answer'), True),
    'interrupt': ((KEY,), True),
    'restart': ((KEY,), 2),
    'discard': ((KEY,), None),
    'touch': ((KEY,), None),
    'has_process': ((KEY,), True),
    'is_running': ((KEY,), False),
    'make_room': ((), True),
    'processes': ((), [{'worksheet': 'u-1/3', 'pid': 4242, 'memory': 123456789,
                        'cpu_seconds': 1.5, 'idle_seconds': 12.0, 'running': True,
                        'queued': 2, 'started': 1765000000.5}]),
}


class Recorder:
    """A host that records its calls, with the operations of the contract."""
    server_name, boot_id = 'recorder', 'boot-1'

    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        if name not in CALLS:
            raise AttributeError(name)

        names = list(operations(HostOperations)[name].parameters)[1:]

        def operation(**arguments):  # the door calls with the arguments by name
            self.calls.append((name, tuple(arguments[n] for n in names)))
            return CALLS[name][1]
        return operation


def test_the_calls_cover_every_operation():
    assert set(CALLS) == set(operations(HostOperations))


@pytest.fixture(scope='module')
def door():
    recorder = Recorder()
    server = serve(recorder, SECRET, '127.0.0.1:0')
    yield RemoteHost('recorder', recorder.address, SECRET, timeout=10), recorder
    stop(server)


@pytest.mark.parametrize('op', sorted(CALLS))
def test_each_operation_crosses_the_door_with_its_types(door, op):
    remote, recorder = door
    recorder.calls.clear()
    args, answer = CALLS[op]
    assert getattr(remote, op)(*args) == answer
    assert recorder.calls == [(op, args)]
    assert [type(a) for a in recorder.calls[0][1]] == [type(a) for a in args]


def test_the_door_answers_ping_and_refuses_unknown_arguments(door):
    remote, recorder = door
    assert remote.ping() == {'name': 'recorder', 'boot': 'boot-1'}
    with pytest.raises(contract.WorkerProblem, match='unknown arguments'):
        remote.call('interrupt', {'key': ['u-1', 3], 'extra': 1})
    with pytest.raises(contract.WorkerProblem, match='bad request'):
        remote.call('interrupt', {})


def test_iopub_messages_map_to_nbformat_outputs():
    output = cellwriter.output_from_message
    assert output('stream', {'name': 'stderr', 'text': 'oops\n'}) == {
        'output_type': 'stream', 'name': 'stderr', 'text': 'oops\n'}
    assert output('execute_result', {'data': {'text/plain': '2'}, 'execution_count': 7}) == {
        'output_type': 'execute_result', 'data': {'text/plain': '2'}, 'metadata': {},
        'execution_count': 7}
    assert output('display_data', {'data': {'image/png': 'AAA'},
                                   'metadata': {'width': 3}, 'transient': {}}) == {
        'output_type': 'display_data', 'data': {'image/png': 'AAA'},
        'metadata': {'width': 3}}
    assert output('error', {'ename': 'ValueError', 'evalue': 'bad',
                            'traceback': ['t1', 't2']}) == {
        'output_type': 'error', 'ename': 'ValueError', 'evalue': 'bad',
        'traceback': ['t1', 't2']}
    for kind in ('status', 'clear_output', 'execute_input', 'comm_msg'):
        assert output(kind, {}) is None
    assert cellwriter.page_outputs({'payload': [
        {'source': 'page', 'data': {'text/plain': 'Docstring'}},
        {'source': 'set_next_input', 'text': 'x'},
        {'source': 'page', 'data': {}}]}) == [
        {'output_type': 'display_data', 'data': {'text/plain': 'Docstring'},
         'metadata': {'sagenb': {'page': True}}}]
    assert cellwriter.page_outputs(None) == []


def environ_of(headers):
    return {'HTTP_' + name.upper().replace('-', '_'): value
            for name, value in headers.items()}


def test_signed_requests_pass_once_and_only_with_the_secret():
    body = b'{"key": ["u-1", 3]}'
    headers = signed_headers(SECRET, 'touch', body)
    verifier = Verifier(SECRET)
    assert verifier.check(environ_of(headers), 'touch', body) is None
    assert verifier.check(environ_of(headers), 'touch', body) == 'replayed request'
    headers = signed_headers(SECRET, 'touch', body)
    assert Verifier(b'another').check(environ_of(headers), 'touch', body).startswith(
        'bad signature')
    assert Verifier(SECRET).check(environ_of(headers), 'discard', body).startswith(
        'bad signature')
    old = dict(headers, **{'X-Sagenb-Time': '%.3f' % (time.time() - 3600)})
    assert Verifier(SECRET).check(environ_of(old), 'touch', body).startswith(
        'timestamp off by')


def settings(**changes):
    values = dict(DEFAULTS, data_dir='/srv/nb')
    values.update(changes)
    return values


def test_the_worker_configuration_is_typed_once():
    config = WorkerConfig.from_settings(settings(**{
        'sagenb.workers.max_total': '12', 'sagenb.workers.uids': '20000-20002, 20010',
        'sagenb.workers.limit.cpu_seconds': '0'}))
    assert config.max_total == 12
    assert config.uids == [20000, 20001, 20002, 20010]
    assert config.limits['cpu_seconds'] is None
    assert isinstance(config.flush_interval, float) and isinstance(config.spare_count, int)
    assert config.prestart is True and config.mode == 'fork'
    assert config.work_root == os.path.join('/srv/nb', 'work')
    assert WorkerConfig.from_settings(settings()).max_total is None  # auto


@pytest.mark.parametrize('key, value, message', [
    ('sagenb.workers.flush_interval', 'soon', 'sagenb.workers.flush_interval is a number'),
    ('sagenb.workers.max_total', 'many', 'sagenb.workers.max_total is a number'),
    ('sagenb.workers.uids', '0-10', 'must not contain root'),
    ('sagenb.workers.uids', 'www-data', 'sagenb.workers.uids is a list of uids'),
    ('sagenb.workers.mode', 'thread', '"fork" or "spawn"'),
])
def test_a_wrong_worker_setting_is_named(key, value, message):
    with pytest.raises(SettingsError, match=message):
        WorkerConfig.from_settings(settings(**{key: value}))


WORKERS = os.path.join(os.path.dirname(contract.__file__))


def worker_imports():
    """``{module: {worker modules it imports}}`` for sagenb_pyramid/workers/, at any
    depth of the module (an import inside a function counts: it is how circles hide)."""
    graph = {}
    for name in os.listdir(WORKERS):
        if not name.endswith('.py'):
            continue
        module = name[:-3]
        with open(os.path.join(WORKERS, name)) as source:
            tree = ast.parse(source.read())
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                if node.level == 1 and node.module:
                    found.add(node.module.split('.')[0])
                elif node.level == 1:
                    found.update(alias.name for alias in node.names)
                elif node.module and node.module.startswith('sagenb_pyramid.workers.'):
                    found.add(node.module.split('.')[2])
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith('sagenb_pyramid.workers.'):
                        found.add(alias.name.split('.')[2])
        graph[module] = found - {module}
    return graph


def circles(graph):
    """Every import circle (a list of modules) found by a depth-first search."""
    found, state = [], {}

    def visit(module, path):
        state[module] = 'open'
        for other in sorted(graph.get(module, ())):
            if state.get(other) == 'open':
                found.append(path[path.index(other):] + [other])
            elif other not in state:
                visit(other, path + [other])
        state[module] = 'done'
    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return found


def test_the_worker_modules_import_each_other_without_circles():
    graph = worker_imports()
    assert 'hostapi' not in graph['registry'] and 'hosts' not in graph['registry']
    assert graph['contract'] == set()
    assert circles(graph) == []
    # The search does find one.
    assert circles({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == [['a', 'b', 'c', 'a']]
