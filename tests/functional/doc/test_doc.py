"""``/doc/``: Sage's manuals read from a small manual in Sphinx's layout that the test
writes (support/doctree.py), pointed to by ``sagenb.doc.path``.  No Sage process starts
here (tests/e2e/sage/test_doc.py evaluates examples with real Sage)."""
import os
import re

import pytest
import webtest

from ...support.doctree import make_doc_tree
from ...support.notebook import Api, Notebook, csrf_token_of, login

pytestmark = pytest.mark.usefixtures('cheap_password_hashes')
JSON = {'Accept': 'application/json'}
TOUR = 'en/tutorial/tour.html'


@pytest.fixture
def tree(tmp_path):
    return make_doc_tree(tmp_path / 'docs')


def open_notebook(tmp_path, **settings):
    nb = Notebook(tmp_path / 'data', **settings)
    nb.add_user('alice')
    app = webtest.TestApp(nb.app, extra_environ={'HTTP_HOST': 'localhost:80'})
    return nb, app


@pytest.fixture
def docs(tmp_path, tree):
    """A notebook with the manual (no process may start: a limit of 0 per user)."""
    nb, app = open_notebook(tmp_path, **{'sagenb.doc.path': tree,
                                         'sagenb.workers.max_per_user': '0'})
    yield nb, app, Api(app, nb.token('alice'))
    nb.close()


# --- without the manuals ----------------------------------------------------------------

def test_missing_manuals_give_a_page_saying_how_to_install_them(tmp_path):
    empty = tmp_path / 'nothing-here'
    empty.mkdir()
    nb, app = open_notebook(tmp_path, **{'sagenb.doc.path': str(empty)})
    try:
        page = app.get('/doc/', status=404)
        assert page.content_type == 'text/html'
        text = page.html.select_one('[data-role=doc-missing]').get_text(' ')
        assert 'not installed' in text and 'make doc' in text and 'sagenb.doc.path' in text
        for path in ('/doc/live/' + TOUR, '/doc/files/' + TOUR, '/doc/search?q=x'):
            assert 'make doc' in app.get(path, status=404).text
            answer = app.get(path, headers=JSON, status=404).json
            assert 'not installed' in answer['error'] and 'make doc' in answer['error']
        assert 'not installed' in app.get('/doc/lookup?name=factor', headers=JSON,
                                          status=404).json['error']
    finally:
        nb.close()


# --- reading ------------------------------------------------------------------------------

def test_the_index_lists_the_manuals(docs):
    nb, app, api = docs
    manuals = app.get('/doc/', headers=JSON).json['manuals']
    paths = [m['path'] for m in manuals]
    assert paths == ['en/index.html', 'en/reference/calculus/index.html',
                     'en/tutorial/index.html']
    assert manuals[2]['title'] == 'Sage Tutorial (en/tutorial)'
    page = app.get('/doc/')
    links = [a['href'] for a in page.html.select('[data-role=doc-manuals] a')]
    assert 'http://localhost/doc/live/en/tutorial/index.html' in links


def test_a_page_becomes_text_and_examples(docs):
    nb, app, api = docs
    page = app.get('/doc/live/' + TOUR, headers=JSON).json
    assert page['title'] == 'A first tour'
    assert page['examples'] == [
        {'input': '2 + 2', 'expected': '4'},
        {'input': 'a = 6\nb = 7', 'expected': ''},
        {'input': 'a * b', 'expected': '42'},
        {'input': 'for i in range(3):\n    print(i * i)', 'expected': '0\n1\n4'}]
    html = page['html']
    holders = re.findall(r'<div class="sagenb-doc-example" id="sagenb-doc-example-(\d+)">',
                         html)
    assert holders == ['0', '1', '2', '3']
    # Code without prompts stays text; the manual's scripts, handlers and the sidebar go.
    assert 'not an example' in html and 'sidebar text' not in html
    assert '<script' not in html and 'onerror' not in html and 'javascript:' not in html
    assert 'headerlink' not in html
    # Links go to the notebook's addresses: pages live, other files as they are.
    assert 'href="http://localhost/doc/live/en/tutorial/algebra.html#solving"' in html
    assert 'src="http://localhost/doc/files/en/tutorial/_images/plot.png"' in html
    assert 'etc/passwd' not in html
    assert 'href="https://www.sagemath.org/"' in html
    assert page['manual'] == 'http://localhost/doc/live/en/tutorial/index.html'
    assert page['files'] == 'http://localhost/doc/files/' + TOUR


def test_the_live_page_runs_only_the_notebooks_script(docs):
    nb, app, api = docs
    page = app.get('/doc/live/' + TOUR)
    policy = page.headers['Content-Security-Policy']
    assert re.search(r"script-src 'nonce-[^']+' 'strict-dynamic'", policy)
    scripts = page.html.select('script')
    # The page's module (with the nonce) and its data (JSON, which never runs).
    assert [s.get('type') for s in scripts] == ['application/json', 'module']
    assert scripts[1]['nonce'] in policy and scripts[1]['src'].endswith('/static/doc.js')
    # The page's HTML sits in the JSON escaped: it cannot end the element early.
    assert page.text.count('</script>') == 2 and '\\u003csection' in scripts[0].string
    # Anonymous visitors read; logging in runs the examples.
    assert page.html.select_one('#doc-page')['data-can-evaluate'] == 'false'
    assert 'Log in' in page.html.select_one('[data-role=doc-note]').get_text()
    assert page.html.select_one('[data-role=doc-copy]') is None
    login(app, 'alice')
    page = app.get('/doc/live/' + TOUR)
    assert page.html.select_one('#doc-page')['data-can-evaluate'] == 'true'
    assert page.html.select_one('[data-role=doc-copy] input[name=page]')['value'] == TOUR


def test_files_are_sent_as_they_are_in_a_sandbox_without_scripts(docs, tree):
    nb, app, api = docs
    raw = app.get('/doc/files/' + TOUR)
    assert raw.content_type == 'text/html' and 'document.title' in raw.text
    policy = raw.headers['Content-Security-Policy']
    assert policy.startswith('sandbox ') and 'allow-scripts' not in policy
    assert 'allow-same-origin' not in policy and "default-src 'none'" in policy
    assert raw.headers['X-Content-Type-Options'] == 'nosniff'
    image = app.get('/doc/files/en/tutorial/_images/plot.png')
    assert image.content_type == 'image/png' and image.body.startswith(b'\x89PNG')
    assert app.get('/doc/files/en/tutorial/_static/basic.css').content_type == 'text/css'
    # The manuals' scripts are not served at all.
    refused = app.get('/doc/files/en/tutorial/_static/doctools.js', headers=JSON, status=404)
    assert 'not served' in refused.json['error']


@pytest.mark.parametrize('path', [
    '/doc/files/en/../../secret.txt', '/doc/files/en/%2e%2e/%2e%2e/secret.txt',
    '/doc/files/en/tutorial/.hidden.txt', '/doc/files/en/tutorial/escape.txt',
    '/doc/live/en/tutorial/escape.html', '/doc/files/en/tutorial/nothing.html',
    '/doc/live/en/tutorial/_images/plot.png'])
def test_nothing_outside_the_manuals_is_read(docs, tree, path):
    nb, app, api = docs
    secret = os.path.join(os.path.dirname(tree), 'secret.txt')
    with open(secret, 'w') as f:
        f.write('do not show me')
    with open(os.path.join(tree, 'en', 'tutorial', '.hidden.txt'), 'w') as f:
        f.write('do not show me')
    for name in ('escape.txt', 'escape.html'):
        os.symlink(secret, os.path.join(tree, 'en', 'tutorial', name))
    # The manuals are there (a file beside those refused is sent) ...
    app.get('/doc/files/en/tutorial/_images/plot.png', status=200)
    # ... and nothing out of their folder, hidden, or a page as a file is.
    answer = app.get(path, headers=JSON, status=404)
    assert 'do not show me' not in answer.text
    assert answer.json['error']


# --- search, and the link of foo? --------------------------------------------------------

def test_search_finds_names_and_pages(docs):
    nb, app, api = docs
    found = app.get('/doc/search?q=diff', headers=JSON).json
    assert [n['name'] for n in found['names']] == [
        'sage.calculus.functional.diff', 'sage.symbolic.expression.Expression.diff']
    assert found['names'][0]['url'] == ('http://localhost/doc/live/en/reference/calculus/'
                                        'sage/calculus/functional.html'
                                        '#sage.calculus.functional.diff')
    assert found['names'][0]['type'] == 'Python function'
    pages = app.get('/doc/search?q=first TOUR', headers=JSON).json
    assert [p['title'] for p in pages['pages']] == ['A first tour']
    assert pages['pages'][0]['url'] == 'http://localhost/doc/live/' + TOUR
    nothing = app.get('/doc/search?q=nosuchname', headers=JSON).json
    assert nothing['names'] == [] and nothing['pages'] == []
    html = app.get('/doc/search?q=functional')
    names = html.html.select('[data-role=doc-name] a')
    assert [a.get_text() for a in names] == [
        'sage.calculus.functional', 'sage.calculus.functional.diff',
        'sage.calculus.functional.integral']
    assert names[0]['href'].endswith('functional.html#module-sage.calculus.functional')
    assert [a.get_text() for a in html.html.select('[data-role=doc-page] a')] == [
        'Functional notation']


def test_lookup_gives_the_page_of_a_name_from_its_help(docs):
    nb, app, api = docs
    site = '/venv/lib/python3.11/site-packages/sage/'
    found = app.get('/doc/lookup', {'name': 'diff', 'file': site + 'calculus/functional.py'},
                    headers=JSON).json
    assert found['name'] == 'sage.calculus.functional.diff'
    assert found['url'].endswith('functional.html#sage.calculus.functional.diff')
    method = app.get('/doc/lookup', {'name': 'diff',
                                     'file': site + 'symbolic/expression.pyx'},
                     headers=JSON).json
    assert method['name'] == 'sage.symbolic.expression.Expression.diff'
    full = app.get('/doc/lookup', {'name': 'sage.calculus.functional.integral'},
                   headers=JSON).json
    assert full['url'].endswith('#sage.calculus.functional.integral')
    missing = app.get('/doc/lookup', {'name': 'no_such_function'}, headers=JSON, status=404)
    assert 'no page for no_such_function' in missing.json['error']
    assert '"name" is required' in app.get('/doc/lookup', headers=JSON,
                                           status=400).json['error']


# --- examples and copies -------------------------------------------------------------------

def test_anonymous_visitors_evaluate_nothing(docs):
    nb, app, api = docs
    refused = app.post_json('/doc/evaluate', {'input': '1 + 1'}, headers=JSON, status=401)
    assert refused.json['error']
    assert app.post_json('/doc/copy', {'page': TOUR}, headers=JSON, status=401).json['error']
    with nb.transaction() as root:
        assert root.user_by_login('alice').doc_worksheet is None


def test_an_example_counts_against_the_users_process_limit(docs):
    """A limit of 0 running worksheets: an example may not start a process either, and
    the refused request leaves nothing behind."""
    nb, app, api = docs
    refused = api.post('/doc/evaluate', {'input': '2 + 2', 'wait': 1}, status=409)
    assert 'worksheets of this user are running' in refused['error']
    with nb.transaction() as root:
        assert root.user_by_login('alice').doc_worksheet is None


@pytest.mark.parametrize('body, says', [
    ({}, '"input" must be the code'), ({'input': '  '}, '"input" must be the code'),
    ({'input': 5}, '"input" must be a string'),
    ({'input': '1', 'wait': 'soon'}, '"wait" must be a number')])
def test_bad_evaluations_are_refused_clearly(docs, body, says):
    nb, app, api = docs
    assert says in api.post('/doc/evaluate', body, status=400)['error']


def test_results_of_examples_are_the_callers_only(docs):
    nb, app, api = docs
    assert 'must be numbers' in api.get('/doc/result', status=400, cell='x')['error']
    assert 'no example 3' in api.get('/doc/result', status=404, cell='3')['error']
    from sagenb_pyramid.services.doc import doc_worksheet
    with nb.transaction() as root:
        cell = doc_worksheet(root.user_by_login('alice')).add_cell('compute', '6 * 7')
        cell_id = cell.id
    assert api.get('/doc/result', cell=str(cell_id))['input'] == '6 * 7'
    nb.add_user('bob')
    bob = Api(app, nb.token('bob'))
    assert 'no example' in bob.get('/doc/result', status=404, cell=str(cell_id))['error']


def test_the_documentation_worksheet_is_in_no_listing_and_no_search(docs):
    nb, app, api = docs
    from sagenb_pyramid.services.doc import doc_worksheet
    with nb.transaction() as root:
        worksheet = doc_worksheet(root.user_by_login('alice'))
        worksheet.add_cell('compute', 'zanzibarquux = 1')
        assert worksheet.number == -1
    listing = api.get('/home/alice/')
    assert all(w['id'] != -1 for w in listing['worksheets'])
    assert api.get('/search', q='zanzibarquux')['results'] == []
    api.get('/home/alice/-1/', status=404)
    # The worker hosts find its cells by (owner id, -1), as any worksheet's.
    with nb.transaction() as root:
        user = root.user_by_login('alice')
        assert user.worksheet_numbered(-1) is user.doc_worksheet
        assert user.worksheet_numbered(5) is None


def test_copy_a_page_to_a_new_worksheet(docs):
    nb, app, api = docs
    made = api.post('/doc/copy', {'page': TOUR}, status=201)
    assert made['name'] == 'A first tour'
    ws = api.get(made['url'])
    cells = [(c['type'], c['input']) for c in ws['cells']]
    computes = [text for kind, text in cells if kind == 'compute']
    assert computes == ['2 + 2', 'a = 6\nb = 7', 'a * b', 'for i in range(3):\n    print(i * i)']
    assert [kind for kind, _ in cells] == ['text', 'compute', 'text', 'compute', 'text',
                                           'compute', 'text', 'compute', 'text']
    assert 'Sage adds numbers' in cells[0][1] and 'not an example' in cells[-1][1]
    assert all(c['format'] == 'html' for c in ws['cells'] if c['type'] == 'text')
    assert ws['trusted'] is False  # the manual's HTML is shown sanitized


def test_copy_from_the_page_form_goes_to_the_new_worksheet(docs):
    nb, app, api = docs
    login(app, 'alice')
    page = app.get('/doc/live/' + TOUR)
    moved = app.post('/doc/copy', {'page': TOUR, 'csrf_token': csrf_token_of(page)},
                     status=302)
    assert moved.location == 'http://localhost/home/alice/0/'


def test_refused_copies_make_nothing(tmp_path, tree):
    nb, app = open_notebook(tmp_path, **{'sagenb.doc.path': tree,
                                         'sagenb.quota.user_mb': '0.0002'})
    try:
        api = Api(app, nb.token('alice'))
        assert 'no page' in api.post('/doc/copy', {'page': 'en/tutorial/none.html'},
                                     status=404)['error']
        assert '"page" must' in api.post('/doc/copy', {}, status=400)['error']
        # A NUL in the path (found by the schema fuzz: a 500 from os.path.realpath).
        assert 'no page' in api.post('/doc/copy', {'page': 'en/tu\x00torial/index.html'},
                                     status=404)['error']
        over = api.post('/doc/copy', {'page': TOUR}, status=409)
        assert 'storage quota' in over['error']
        assert api.get('/home/alice/')['worksheets'] == []
    finally:
        nb.close()


def test_deleting_a_user_stops_the_process_of_their_examples(docs):
    nb, app, api = docs
    from sagenb_pyramid.services.doc import doc_worksheet
    nb.add_user('ada', admin=True)
    nb.add_user('bob')
    with nb.transaction() as root:
        bob = root.user_by_login('bob')
        doc_worksheet(bob).add_cell('compute', '1 + 1')
        bob_id = bob.id
    discarded = []
    real = nb.workers.discard
    nb.workers.discard = lambda key: (discarded.append(key), real(key))
    try:
        Api(app, nb.token('ada')).post('/admin/users/bob/delete', {'worksheets': 'delete'},
                                       status=200)
    finally:
        nb.workers.discard = real
    assert discarded == [(bob_id, -1)]
