"""Real Sage: completion and introspection through the JSON API."""
import re

import pytest

from ...support.sage import evaluate_later, run, wait_status


# --- completion and introspection -------------------------------------------------------

def no_ansi(text):
    return re.sub(r'\x1b\[[0-9;]*m', '', text)


def test_complete_names_from_the_worksheet(api, worksheet):
    run(api, worksheet, 'my_polynomial_ring = QQ["t"]')
    code = 'x = my_poly'
    reply = api.post(worksheet + 'complete', {'code': code, 'cursor_pos': len(code)},
                     status=200)
    assert 'my_polynomial_ring' in reply['matches']
    assert (reply['cursor_start'], reply['cursor_end']) == (4, len(code))
    code = 'my_polynomial_ring.gen'
    reply = api.post(worksheet + 'complete', {'code': code}, status=200)
    assert 'my_polynomial_ring.gens' in reply['matches'] or 'gens' in reply['matches']


def test_complete_starts_the_process_of_a_fresh_worksheet(api):
    ws = api.post('/home/alice/', {'name': 'fresh'}, status=201)['url']
    reply = api.post(ws + 'complete', {'code': 'integr', 'cursor_pos': 6}, status=200)
    assert 'integrate' in reply['matches']


def test_inspect_gives_docstring_and_source(api, worksheet):
    doc = api.post(worksheet + 'inspect', {'code': 'factor(', 'cursor_pos': 6,
                                           'detail_level': 0}, status=200)
    assert doc['found'] is True
    assert 'Return the factorization' in doc['data']['text/plain']
    source = api.post(worksheet + 'inspect', {'code': 'factor', 'cursor_pos': 6,
                                              'detail_level': 1}, status=200)
    assert 'def factor(' in no_ansi(source['data']['text/plain'])
    missing = api.post(worksheet + 'inspect', {'code': 'no_such_name_here',
                                               'cursor_pos': 5}, status=200)
    assert missing['found'] is False


def test_question_marks_in_a_cell_show_docstring_and_source(api, worksheet):
    cell = run(api, worksheet, 'factor?')
    page = [o for o in cell['outputs'] if o.get('metadata', {}).get('sagenb', {}).get('page')]
    assert page and 'Return the factorization' in page[0]['data']['text/plain']
    cell = run(api, worksheet, 'factor??')
    page = [o for o in cell['outputs'] if o.get('metadata', {}).get('sagenb', {}).get('page')]
    assert page and 'def factor(' in no_ansi(page[0]['data']['text/plain'])


def test_complete_while_a_cell_runs_says_busy(api, worksheet):
    run(api, worksheet, '1')
    cell = evaluate_later(api, worksheet, 'sleep(8r)')
    wait_status(api, worksheet, cell, ('running',))
    res = api.post(worksheet + 'complete', {'code': 'fac', 'cursor_pos': 3}, status=409)
    assert 'busy' in res['error']
    api.post(worksheet + 'interrupt', status=200)
    wait_status(api, worksheet, cell, ('error', 'done'))
    reply = api.post(worksheet + 'complete', {'code': 'fac', 'cursor_pos': 3}, status=200)
    assert 'factor' in reply['matches']


@pytest.mark.parametrize('body, says', [
    ({}, '"code" is required'),
    ({'code': 'abc', 'cursor_pos': 9}, 'cursor_pos'),
    ({'code': 'abc', 'cursor_pos': 'x'}, 'cursor_pos'),
    ({'code': 5}, '"code" must be a string'),
])


def test_complete_bad_requests(api, worksheet, body, says):
    for name in ('complete', 'inspect'):
        res = api.post(worksheet + name, body, status=400)
        assert says in res['error']


def test_inspect_detail_level_must_be_0_or_1(api, worksheet):
    res = api.post(worksheet + 'inspect', {'code': 'abc', 'detail_level': 3}, status=400)
    assert '"detail_level" must be 0 or 1' in res['error']
