"""Real Sage: examples of the manuals evaluated in place (``/doc/evaluate``), in a
process of the visitor's that counts against their limit of running worksheets, and the
link of ``foo?`` to the manual found from Sage's own help text."""
import re

import pytest

from ...support.doctree import make_doc_tree
from ...support.sage import own_notebook, plain, run

TOUR = 'en/tutorial/tour.html'


@pytest.fixture(scope='module')
def doc_notebook(tmp_path_factory):
    tree = make_doc_tree(tmp_path_factory.mktemp('manual'))
    # One running worksheet per user: the examples' process takes that place.
    with own_notebook(tmp_path_factory.mktemp('doc') / 'data', ['alice'], **{
            'sagenb.doc.path': tree, 'sagenb.workers.max_per_user': '1'}) as (nb, apis):
        yield nb, apis[0]


def test_examples_of_a_page_run_in_place_one_after_the_other(doc_notebook):
    nb, api = doc_notebook
    try:
        examples = api.get('/doc/live/' + TOUR)['examples']
        first = api.post('/doc/evaluate', {'input': examples[0]['input'], 'wait': 60},
                         status=200)
        assert first['status'] == 'done' and plain(first) == examples[0]['expected'] == '4'
        # The examples of a page share their process: the next one sees a and b.
        api.post('/doc/evaluate', {'input': examples[1]['input'], 'wait': 60}, status=200)
        product = api.post('/doc/evaluate', {'input': examples[2]['input'], 'wait': 60},
                           status=200)
        assert plain(product) == examples[2]['expected'] == '42'
        loop = api.post('/doc/evaluate', {'input': examples[3]['input'], 'wait': 60},
                        status=200)
        assert plain(loop).split() == examples[3]['expected'].split() == ['0', '1', '4']
        # An example still running is read again with result.
        slow = api.post('/doc/evaluate', {'input': 'sleep(0.5r); 6 * 7'}, status=200)
        assert slow['status'] in ('queued', 'running')
        for _ in range(60):
            read = api.get('/doc/result', cell=str(slow['id']), wait='5')
            if read['status'] == 'done':
                break
        assert plain(read) == '42'
    finally:
        api.post('/doc/restart', status=200)


def test_the_examples_process_counts_against_the_users_limit(doc_notebook):
    nb, api = doc_notebook
    ws = api.post('/home/alice/', {'name': 'mine'}, status=201)['url']
    try:
        assert plain(api.post('/doc/evaluate', {'input': '1 + 1', 'wait': 60},
                              status=200)) == '2'
        cell = api.post(ws + 'cells', {'input': '2 + 2'}, status=201)['id']
        refused = api.post('%scells/%d/evaluate' % (ws, cell), {'wait': 60}, status=409)
        assert '1 worksheets of this user are running' in refused['error']
        # Stopping the examples' process gives the place back.
        api.post('/doc/restart', status=200)
        assert plain(run(api, ws, '2 + 2')) == '4'
        refused = api.post('/doc/evaluate', {'input': '1 + 1', 'wait': 60}, status=409)
        assert 'worksheets of this user are running' in refused['error']
    finally:
        api.post(ws + 'restart', status=200)
        api.post('/doc/restart', status=200)


def test_help_in_a_cell_finds_its_page_of_the_manual(doc_notebook):
    """``diff?`` answers Sage's help text; its ``File:`` line names the module, so the
    lookup picks sage.calculus.functional.diff over a method called diff."""
    nb, api = doc_notebook
    ws = api.post('/home/alice/', {'name': 'help'}, status=201)['url']
    try:
        cell = run(api, ws, 'diff?')
        page = [o for o in cell['outputs'] if o.get('metadata', {}).get('sagenb', {}).get('page')]
        text = re.sub(r'\x1b\[[0-9;]*m', '', page[0]['data']['text/plain'])
        found_file = re.search(r'^File:\s*(\S+)', text, re.M)
        assert found_file and found_file.group(1).endswith('sage/calculus/functional.py')
        found = api.get('/doc/lookup', name='diff', file=found_file.group(1))
        assert found['name'] == 'sage.calculus.functional.diff'
        assert found['url'].endswith('functional.html#sage.calculus.functional.diff')
    finally:
        api.post(ws + 'restart', status=200)
