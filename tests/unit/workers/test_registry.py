"""The worker registry, the output store, the long-poll and fault handling on a fake
kernel (tests/support/fakekernel.py): the real application on a real FileStorage, through the
JSON API, with every Sage process played by a thread.  Milliseconds a test where the
same with Sage (tests/e2e/sage/) takes seconds; what only Sage shows stays there."""
import time

import pytest
import webtest

from ...support.fakekernel import FakeKernels
from ...support.notebook import Api, Notebook


@pytest.fixture
def fake(tmp_path):
    """(notebook, api, worksheet url, kernels): a notebook whose host makes fake kernels."""
    nb = Notebook(tmp_path / 'data')
    kernels = FakeKernels()
    nb.host.kernel_factory = kernels
    nb.add_user('ann')
    api = Api(webtest.TestApp(nb.app, extra_environ={'HTTP_HOST': 'localhost:80'}),
              nb.token('ann'))
    ws = api.post('/home/ann/', {'name': 'fake'}, status=201)['url']
    yield nb, api, ws, kernels
    nb.close()


def cell_of(api, ws, code):
    return api.post(ws + 'cells', {'input': code}, status=201)['id']


def evaluate(api, ws, cell, wait=30):
    return api.post('%scells/%d/evaluate' % (ws, cell), {'wait': wait}, status=200)


def run(api, ws, code, wait=30):
    return evaluate(api, ws, cell_of(api, ws, code), wait)


def wait_until(api, ws, cell, check, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = api.get('%scells/%d' % (ws, cell))
        if check(found):
            return found
        time.sleep(0.02)
    raise AssertionError('cell %d never got there: %s' % (cell, found))


def test_a_cell_runs_and_its_outputs_are_stored(fake):
    nb, api, ws, kernels = fake
    cell = run(api, ws, 'print hello\nresult 2\ndisplay a picture')
    assert cell['status'] == 'done'
    assert cell['outputs'] == [
        {'output_type': 'stream', 'name': 'stdout', 'text': 'hello\n'},
        {'output_type': 'execute_result', 'data': {'text/plain': '2'}, 'metadata': {},
         'execution_count': 1},
        {'output_type': 'display_data', 'data': {'text/plain': 'a picture'},
         'metadata': {}}]
    # The prelude of directives and layouts ran first, in the same process.
    assert len(kernels.made) == 1 and kernels.made[0].quiet_code
    # The process keeps its state between cells.
    assert run(api, ws, 'count')['outputs'][0]['data'] == {'text/plain': '2'}


def test_an_error_ends_the_cell_as_error_and_the_process_lives_on(fake):
    nb, api, ws, kernels = fake
    cell = run(api, ws, 'print before\nerror ZeroDivisionError division by zero')
    assert cell['status'] == 'error'
    assert cell['outputs'][-1]['ename'] == 'ZeroDivisionError'
    assert run(api, ws, 'result fine')['status'] == 'done'
    assert len(kernels.made) == 1


def test_the_long_poll_wakes_at_the_commit_of_the_result(fake):
    """A waiter registered for the cell's output (news.py) is woken by the output
    store's commit of the result, not by a poll."""
    nb, api, ws, kernels = fake
    run(api, ws, 'result warm')  # the process is started
    cell = cell_of(api, ws, 'sleep 0.3\nresult late')
    number = ws.rstrip('/').rsplit('/', 1)[1]

    def output():
        with nb.transaction() as root:
            found = root.user_by_login('ann')[number].cells[str(cell)].output
            return found._p_oid, found.status
    oid, _ = output()
    news = nb.workers.news
    event = news.watch(oid)  # an event is set once, by the next commit of the object
    evaluate(api, ws, cell, wait=0)
    wakes = 0
    while True:  # queued, running, then done: each commit wakes the waiter
        assert event.wait(10), 'no news of a commit of the cell'
        wakes += 1
        event = news.watch(oid)  # before reading: a commit in between is not missed
        if output()[1] == 'done':
            break
        assert wakes < 10
    news.unwatch(oid, event)
    assert api.get('%scells/%d' % (ws, cell))['outputs'][0]['data'] == {
        'text/plain': 'late'}
    # A request waiting for the cell answers with its result.
    cell = cell_of(api, ws, 'sleep 0.2\nresult waited')
    started = time.monotonic()
    answer = evaluate(api, ws, cell, wait=20)
    assert answer['status'] == 'done' and time.monotonic() - started < 10


def test_a_process_that_dies_ends_its_cell_and_the_queued_ones(fake):
    nb, api, ws, kernels = fake
    dying = cell_of(api, ws, 'print going\nsleep 0.3\nexit 3')
    queued = cell_of(api, ws, 'result never')
    evaluate(api, ws, dying, wait=0)
    evaluate(api, ws, queued, wait=0)
    died = wait_until(api, ws, dying, lambda c: c['status'] == 'error')
    assert died['outputs'][-1]['ename'] == 'WorkerDied'
    assert died['outputs'][-1]['evalue'] == 'the Sage process exited with status 3'
    assert died['outputs'][0]['text'] == 'going\n'
    dropped = wait_until(api, ws, queued, lambda c: c['status'] == 'error')
    assert dropped['outputs'] == [{
        'output_type': 'error', 'ename': 'NotRun',
        'evalue': 'the Sage process stopped before this cell ran: the Sage process '
                  'exited with status 3',
        'traceback': ['NotRun: the Sage process stopped before this cell ran: the Sage '
                      'process exited with status 3']}]
    # The next evaluation starts a fresh process.
    assert run(api, ws, 'count')['outputs'][0]['data'] == {'text/plain': '1'}
    assert len(kernels.made) == 2


def test_an_interrupt_stops_the_cell_and_keeps_the_process(fake):
    nb, api, ws, kernels = fake
    cell = cell_of(api, ws, 'sleep 30')
    evaluate(api, ws, cell, wait=0)
    wait_until(api, ws, cell, lambda c: c['status'] == 'running')
    assert api.post(ws + 'interrupt', status=200) == {'ok': True, 'interrupted': True}
    stopped = wait_until(api, ws, cell, lambda c: c['status'] == 'error')
    assert stopped['outputs'][-1]['ename'] == 'KeyboardInterrupt'
    assert run(api, ws, 'count')['outputs'][0]['data'] == {'text/plain': '2'}
    assert len(kernels.made) == 1


def test_a_cell_that_ignores_the_interrupt_gets_its_process_restarted(fake):
    nb, api, ws, kernels = fake
    nb.host.interrupt_timeout = 0.3
    cell = cell_of(api, ws, 'ignore_interrupts\nsleep 30')
    evaluate(api, ws, cell, wait=0)
    wait_until(api, ws, cell, lambda c: c['status'] == 'running')
    started = time.monotonic()
    api.post(ws + 'interrupt', status=200)
    stopped = wait_until(api, ws, cell, lambda c: c['status'] == 'error')
    assert time.monotonic() - started < 5
    assert stopped['outputs'][-1]['ename'] == 'Interrupted'
    assert 'did not stop within 0.3 s of the interrupt' in stopped['outputs'][-1]['evalue']
    assert kernels.made[0].status == -9
    assert run(api, ws, 'count')['outputs'][0]['data'] == {'text/plain': '1'}
    assert len(kernels.made) == 2


def test_a_restart_ends_the_running_cell_and_the_queued_ones_NotRun(fake):
    nb, api, ws, kernels = fake
    running = cell_of(api, ws, 'sleep 30')
    queued = cell_of(api, ws, 'result never')
    evaluate(api, ws, running, wait=0)
    evaluate(api, ws, queued, wait=0)
    wait_until(api, ws, running, lambda c: c['status'] == 'running')
    assert api.post(ws + 'restart', status=200) == {'ok': True, 'cancelled': 1}
    ended = wait_until(api, ws, running, lambda c: c['status'] == 'error')
    assert ended['outputs'][-1]['ename'] == 'Restarted'
    dropped = wait_until(api, ws, queued, lambda c: c['status'] == 'error')
    assert dropped['outputs'][-1]['ename'] == 'NotRun'
    assert dropped['outputs'][-1]['evalue'] == \
        'the worksheet was restarted before this cell ran'
    assert run(api, ws, 'count')['outputs'][0]['data'] == {'text/plain': '1'}


def test_a_process_that_cannot_start_fails_the_cell_with_the_reason(fake):
    nb, api, ws, kernels = fake
    kernels.fail_next = 'out of memory'
    cell = run(api, ws, 'result 1')
    assert cell['status'] == 'error'
    assert cell['outputs'][-1]['ename'] == 'WorkerError'
    assert 'out of memory' in cell['outputs'][-1]['evalue']
    assert run(api, ws, 'result 1')['status'] == 'done'


def test_a_request_the_kernel_does_not_reply_to_is_a_KernelError(fake, monkeypatch):
    """ipykernel logs a request it failed to handle and says "idle" without a reply."""
    from sagenb_pyramid.workers import worksheet
    monkeypatch.setattr(worksheet, 'REPLY_TIMEOUT', 0.3)
    nb, api, ws, kernels = fake
    cell = run(api, ws, 'print partial\nno_reply')
    assert cell['status'] == 'error'
    assert cell['outputs'][-1]['ename'] == 'KernelError'


def test_input_is_asked_of_the_page_and_answered(fake):
    nb, api, ws, kernels = fake
    cell = cell_of(api, ws, 'input Your name?')
    evaluate(api, ws, cell, wait=0)
    waiting = wait_until(api, ws, cell, lambda c: c.get('input_request'))
    assert waiting['input_request'] == {'prompt': 'Your name?', 'password': False}
    api.post('%scells/%d/stdin' % (ws, cell), {'value': 'Ann'}, status=200)
    done = wait_until(api, ws, cell, lambda c: c['status'] == 'done')
    assert [o['text'] for o in done['outputs']] == ['Your name?Ann\ngot Ann\n']
    # Not waiting any more: a second answer is refused.
    api.post('%scells/%d/stdin' % (ws, cell), {'value': 'again'}, status=409)


def test_a_long_output_is_cut_and_kept_whole_in_a_file(fake):
    nb, api, ws, kernels = fake
    nb.host.max_output_chars = 100
    lines = ['line %03d' % n for n in range(100)]
    cell = run(api, ws, '\n'.join('print ' + line for line in lines))
    text = ''.join(o['text'] for o in cell['outputs'])
    assert text.startswith('line 000\n')
    assert '[... ' in text and 'the whole output: cells/%d/output.txt' % cell['id'] in text
    assert text.endswith('line 099\n')
    whole = api.testapp.get('%scells/%d/output.txt' % (ws, cell['id']),
                            headers=api.headers).text
    assert whole == ''.join(line + '\n' for line in lines)


def test_completion_is_asked_between_cells(fake):
    nb, api, ws, kernels = fake
    answer = api.post(ws + 'complete', {'code': 'x = fake_', 'cursor_pos': 9}, status=200)
    assert answer['matches'] == ['fake_one', 'fake_two']


def test_a_completion_slower_than_the_wait_for_cells_is_answered_not_called_busy(fake):
    """``introspect_timeout`` bounds the wait behind running cells; a question the
    process has taken up is answered however slowly (a first completion loads jedi:
    seconds on a busy machine), not refused as "busy" with no cell running."""
    nb, api, ws, kernels = fake
    nb.registry.settings['sagenb.introspect_timeout'] = 0.3
    kernels.answer_delay = 1.0
    run(api, ws, 'print started')
    answer = api.post(ws + 'complete', {'code': 'x = fake_', 'cursor_pos': 9}, status=200)
    assert answer['matches'] == ['fake_one', 'fake_two']
    assert api.post(ws + 'inspect', {'code': 'fake_one'}, status=200)['found'] is True


def test_a_completion_behind_a_running_cell_is_refused_as_busy_after_the_wait(fake):
    nb, api, ws, kernels = fake
    nb.registry.settings['sagenb.introspect_timeout'] = 0.3
    run(api, ws, 'print started')
    cell = cell_of(api, ws, 'sleep 5')
    evaluate(api, ws, cell, wait=0)
    wait_until(api, ws, cell, lambda c: c['status'] == 'running')
    started = time.monotonic()
    answer = api.post(ws + 'complete', {'code': 'x = fake_', 'cursor_pos': 9}, status=409)
    assert time.monotonic() - started < 3
    assert 'busy running cells' in answer['error']
    api.post(ws + 'interrupt', status=200)
    wait_until(api, ws, cell, lambda c: c['status'] == 'error')
    # The question given up on is not answered later to nobody: the next one is.
    answer = api.post(ws + 'complete', {'code': 'x = fake_t', 'cursor_pos': 10}, status=200)
    assert answer['matches'] == ['fake_two']


def test_a_cell_evaluated_again_while_queued_runs_once(fake):
    """Its first run is stale: only the latest run's outputs are stored."""
    nb, api, ws, kernels = fake
    blocker = cell_of(api, ws, 'sleep 0.3')
    cell = cell_of(api, ws, 'count')
    evaluate(api, ws, blocker, wait=0)
    evaluate(api, ws, cell, wait=0)
    final = evaluate(api, ws, cell, wait=20)
    assert final['status'] == 'done'
    # The stale run never reached the process: the blocker, then the latest run.
    assert [code for code in kernels.made[0].executed] == ['sleep 0.3', 'count']
