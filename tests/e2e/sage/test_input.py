"""Real Sage: ``input()`` asks the page, and can be interrupted."""
import time

from ...support.sage import evaluate_later, plain, run, wait_status


# --- input() ----------------------------------------------------------------------------

def test_input_asks_the_page_and_gets_the_answer(api, worksheet):
    cell = evaluate_later(api, worksheet, "name = input('Your name? '); print('Hello', name)")
    deadline = time.monotonic() + 30
    while True:
        data = api.get('%scells/%d' % (worksheet, cell))
        if 'input_request' in data:
            break
        assert time.monotonic() < deadline, data
        time.sleep(0.05)
    assert data['input_request'] == {'prompt': 'Your name? ', 'password': False}
    assert data['status'] == 'running'
    api.post('%scells/%d/stdin' % (worksheet, cell), {'value': 'Ada'}, status=200)
    done = wait_status(api, worksheet, cell, ('done', 'error'))
    assert plain(done) == 'Your name? Ada\nHello Ada\n'
    assert 'input_request' not in done
    res = api.post('%scells/%d/stdin' % (worksheet, cell), {'value': 'late'}, status=409)
    assert 'not waiting for input' in res['error']


def test_input_can_be_interrupted(api, worksheet):
    cell = evaluate_later(api, worksheet, "input('never answered: ')")
    deadline = time.monotonic() + 30
    while 'input_request' not in api.get('%scells/%d' % (worksheet, cell)):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    api.post(worksheet + 'interrupt', status=200)
    done = wait_status(api, worksheet, cell, ('error',))
    assert done['outputs'][-1]['ename'] == 'KeyboardInterrupt'
    assert plain(run(api, worksheet, '1+1')) == '2'
