"""Finding worksheets (issue 20): the index of search.py (words, reindex, unindex, the
transaction it is written in), every path that changes a worksheet's text keeping it
right, ``GET /search`` confined to what the caller may see, and tags."""
import re
import shutil

import pytest
import transaction
import webtest

from sagenb_pyramid import evolve, search
from sagenb_pyramid.acl import group_principal, user_principal
from sagenb_pyramid.resources import Root
from sagenb_pyramid.services.tags import clean_tags

from ..support.fakekernel import FakeKernels
from ..support.legacy import OLD_DATABASE, legacy_notebook
from ..support.notebook import Api, Notebook, login

pytestmark = pytest.mark.usefixtures('cheap_password_hashes')


# === words ================================================================================

def words(text):
    return list(search.words_of(text))


def test_words_of_sage_code_text_and_unicode():
    assert words('x^2+1') == ['x', '2', '1']
    assert words('def f(x):\n    return x**2') == ['def', 'f', 'x', 'return', 'x', '2']
    assert words('plot_vector_field((x, -y))') == [
        'plot_vector_field', 'plot', 'vector', 'field', 'x', 'y']
    assert words('__init__') == ['__init__']
    # Case-folded and NFKC: "Straße" is found as "strasse", the ligature as "fi".
    assert words('Große Straße ﬁnite Ärger') == ['grosse', 'strasse', 'finite', 'ärger']
    assert words('群の表現 αβγ') == ['群の表現', 'αβγ']
    assert words('a' * 100) == ['a' * search.MAX_WORD]
    assert words('$\\int_0^1 f$ **bold**') == ['int_0', 'int', '0', '1', 'f', 'bold']


def test_parse_query():
    assert search.parse_query('Integrate x^2') == [('integrate', False), ('x', False),
                                                   ('2', False)]
    assert search.parse_query('integ* x x') == [('integ', True), ('x', False)]
    for bad, message in (('', 'type something'), ('   ', 'type something'),
                         ('+-*', 'no words'), ('x' * 201, 'too long'),
                         ('a b c d e f g h i', 'too many'), ('i*', '2 letters')):
        with pytest.raises(search.BadQuery, match=message):
            search.parse_query(bad)


# === the index ============================================================================

def postings(root):
    return sorted(tuple(p.split(search.SEP)) for p in root.search_index.postings())


def test_reindex_and_unindex_in_memory():
    root = Root()
    search.reindex(root, 'w:u-1/0', ['Algebra', 'factor(2^64-1)'])
    search.reindex(root, 'w:u-2/0', ['factor it'])
    assert search.matching(root, [('factor', False)]) == {'w:u-1/0', 'w:u-2/0'}
    assert search.matching(root, [('factor', False), ('algebra', False)]) == {'w:u-1/0'}
    assert search.matching(root, [('factor', False)], 'w:u-2/') == {'w:u-2/0'}
    assert search.matching(root, [('fac', True)]) == {'w:u-1/0', 'w:u-2/0'}
    assert search.matching(root, [('fac', False)]) == set()
    search.reindex(root, 'w:u-1/0', ['Geometry'])
    assert postings(root) == [('factor', 'w:u-2/0'), ('geometry', 'w:u-1/0'),
                              ('it', 'w:u-2/0')]
    assert root.search_index.count() == 2
    search.unindex(root, 'w:u-1/0')
    search.unindex(root, 'w:u-1/0')  # twice: nothing more happens
    assert postings(root) == [('factor', 'w:u-2/0'), ('it', 'w:u-2/0')]
    assert root.search_index.count() == 1 and list(root.search_index.docs) == ['w:u-2/0']


def test_snippet_is_plain_text_around_the_first_match():
    terms = search.parse_query('needle')
    text = 'hay ' * 40 + 'the <b>Needle</b> here ' + 'straw ' * 40
    got = search.snippet(['A name', text], terms)
    assert got.startswith('…') and got.endswith('…') and '<b>Needle</b>' in got
    assert len(got) <= 162
    assert search.snippet(['Needle in the name', text], terms) == 'Needle in the name'
    # No match as written (a case folding that changes letters): the folded text.
    assert search.snippet(['', 'STRASSE'], search.parse_query('straße')) == 'STRASSE'
    assert search.snippet(['Name only', ''], search.parse_query('zzz')) == 'Name only'


@pytest.fixture
def nb(tmp_path):
    notebook = Notebook(tmp_path / 'data')
    for login_name in ('alice', 'bob', 'carol', 'root'):
        notebook.add_user(login_name, admin=login_name == 'root')
    yield notebook
    notebook.close()


@pytest.fixture
def app(nb):
    return webtest.TestApp(nb.app, extra_environ={'HTTP_HOST': 'localhost:80'})


@pytest.fixture
def api(nb, app):
    tokens = {}

    def make(login_name):
        if login_name not in tokens:
            tokens[login_name] = nb.token(login_name)
        return Api(app, tokens[login_name])
    return make


def indexed(nb, key):
    """The words the index holds for ``key`` (None: not indexed), and checks the
    postings agree with them."""
    with nb.transaction() as root:
        index = root.search_index
        doc = index.docs.get(key)
        listed = {p.split(search.SEP)[0] for p in index.postings()
                  if p.split(search.SEP)[1] == key}
        if doc is None:
            assert not listed
            return None
        assert set(doc.words) == listed
        return set(doc.words)


def key_of(nb, login_name, number):
    with nb.transaction() as root:
        return 'w:%s/%s' % (root.user_by_login(login_name).id, number)


def test_the_index_is_written_with_the_change_and_only_at_commit(nb):
    with nb.transaction() as root:
        ws = root.user_by_login('alice').create_worksheet('Topology')
        number = ws.number
    key = key_of(nb, 'alice', number)
    assert indexed(nb, key) == {'topology'}
    # An aborted change leaves the index as it was.
    tm = transaction.TransactionManager(explicit=True)
    conn = nb.db.open(transaction_manager=tm)
    try:
        tm.begin()
        ws = conn.root()['sagenb'].user_by_login('alice')[str(number)]
        ws.cells[str(ws.cell_order[0])].input = 'homotopy'
        ws.touch()
        assert indexed(nb, key) == {'topology'}  # not before the commit
        tm.abort()
        assert indexed(nb, key) == {'topology'}
        # Several changes in one transaction: indexed once, at commit.
        tm.begin()
        calls = []
        real = search.reindex
        try:
            search.reindex = lambda *a: (calls.append(a[1]), real(*a))
            for word in ('homotopy', 'homology', 'fundamental group'):
                ws.cells[str(ws.cell_order[0])].input = word
                ws.touch()
            ws.name = 'Algebraic topology'
            ws.touch()
            tm.commit()
        finally:
            search.reindex = real
        assert calls == [key]
        assert indexed(nb, key) == {'algebraic', 'topology', 'fundamental', 'group'}
        # The same words again: the index is not written at all.
        tm.begin()
        ws.touch()
        search.reindex_worksheet(conn.root()['sagenb'], ws)
        assert [o for o in conn._registered_objects if not isinstance(o, type(ws))] == []
        tm.abort()
    finally:
        conn.close()


# === every path that changes text =========================================================

def test_worksheet_paths_keep_the_index_right(nb, app, api):
    alice = api('alice')
    ws = alice.post('/home/alice/', {'name': 'Calculus notes'}, status=201)
    url, number = ws['url'], ws['id']
    key = key_of(nb, 'alice', number)
    assert indexed(nb, key) == {'calculus', 'notes'}
    # Rename (PATCH).
    alice.patch(url, {'name': 'Linear algebra'}, status=200)
    assert indexed(nb, key) == {'linear', 'algebra'}
    # A compute cell's input (PATCH), a new text cell with input, a new empty cell.
    first = alice.get(url)['cells'][0]['id']
    alice.patch('%scells/%d' % (url, first), {'input': 'M = matrix(QQ, 2)'}, status=200)
    assert indexed(nb, key) == {'linear', 'algebra', 'm', 'matrix', 'qq', '2'}
    text = alice.post(url + 'cells', {'type': 'text', 'input': 'Eigenvalues *here*'},
                      status=201)['id']
    assert 'eigenvalues' in indexed(nb, key)
    # A text cell's input edited, and its type changed.
    alice.patch('%scells/%d' % (url, text), {'input': 'Determinants'}, status=200)
    assert 'determinants' in indexed(nb, key) and 'eigenvalues' not in indexed(nb, key)
    alice.patch('%scells/%d' % (url, text), {'type': 'compute'}, status=200)
    assert 'determinants' in indexed(nb, key)
    # A deleted cell takes its words with it.
    alice.delete('%scells/%d' % (url, text), status=200)
    assert indexed(nb, key) == {'linear', 'algebra', 'm', 'matrix', 'qq', '2'}
    # Tags (PATCH) are indexed too.
    alice.patch(url, {'tags': ['Homework', 'week-3']}, status=200)
    assert {'homework', 'week', '3'} <= indexed(nb, key)
    # The listing's rename (a form).
    csrf = login(app, 'alice')
    app.post('/home/alice/action', {'action': 'rename', 'ids': str(number),
                                     'new_name': 'Spectral theory', 'csrf_token': csrf},
             status=302)
    assert {'spectral', 'theory'} <= indexed(nb, key) and 'linear' not in indexed(nb, key)
    # Copies: through the API, and the listing's copy action.
    copy = alice.post(url + 'copy', {'name': 'Copy one'}, status=201)
    assert {'copy', 'one', 'matrix'} <= indexed(nb, key_of(nb, 'alice', copy['id']))
    app.post('/home/alice/action', {'action': 'copy', 'ids': str(number),
                                     'csrf_token': csrf}, status=302)
    listing = alice.get('/home/alice/')['worksheets']
    twin = [w for w in listing if w['name'] == 'Copy of Spectral theory'][0]
    assert {'copy', 'of', 'spectral', 'matrix'} <= indexed(nb, key_of(nb, 'alice', twin['id']))
    # Another user's copy of a shared worksheet is indexed under the copier's key.
    with nb.transaction() as root:
        root.user_by_login('alice')[str(number)].viewers.append(
            user_principal(root.user_by_login('bob').id))
    theirs = api('bob').post(url + 'copy', {}, status=201)
    assert 'spectral' in indexed(nb, key_of(nb, 'bob', theirs['id']))
    # Deleted: trashed then deleted (DELETE), and by emptying the trash.
    alice.delete(url, status=200)
    assert indexed(nb, key) is None
    alice.patch(copy['url'], {'state': 'trash'}, status=200)
    alice.post('/home/alice/empty_trash', status=200)
    assert indexed(nb, key_of(nb, 'alice', copy['id'])) is None
    # The listing's delete for good.
    app.post('/home/alice/action', {'action': 'trash', 'ids': str(twin['id']),
                                     'csrf_token': csrf}, status=302)
    app.post('/home/alice/action', {'action': 'delete', 'ids': str(twin['id']),
                                     'state': 'trash', 'csrf_token': csrf}, status=302)
    assert indexed(nb, key_of(nb, 'alice', twin['id'])) is None


def test_import_is_indexed(nb, app, api):
    notebook = ('{"cells": [{"cell_type": "code", "source": "integrate(sin(x), x)", '
                '"metadata": {}, "outputs": [], "execution_count": null}, '
                '{"cell_type": "markdown", "source": "Riemann sums", "metadata": {}}], '
                '"metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    res = app.post('/home/alice/import', {'name': 'Imported'},
                   upload_files=[('file', 'n.ipynb', notebook.encode())],
                   headers={'Authorization': 'Bearer ' + nb.token('alice')}, status=201)
    number = res.json['worksheets'][0]['id']
    assert {'imported', 'integrate', 'sin', 'x', 'riemann', 'sums'} == \
        indexed(nb, key_of(nb, 'alice', number))


def test_evaluating_with_a_new_input_is_indexed(nb, api):
    kernels = FakeKernels()
    nb.host.kernel_factory = kernels
    alice = api('alice')
    url = alice.post('/home/alice/', {'name': 'Run'}, status=201)['url']
    cell = alice.get(url)['cells'][0]['id']
    done = alice.post('%scells/%d/evaluate' % (url, cell),
                      {'input': 'print evaluated', 'wait': 10}, status=200)
    assert done['status'] == 'done'
    assert indexed(nb, key_of(nb, 'alice', 0)) == {'run', 'print', 'evaluated'}


def test_migrated_worksheets_are_indexed(nb, tmp_path):
    from sagenb_pyramid.migrate import migrate
    folder = legacy_notebook(tmp_path)
    with nb.transaction() as root:
        migrate(root, str(folder))
    with nb.transaction() as root:
        alice = root.user_by_login('alice')
        worksheets = {w.name: w for w in alice.worksheets()}
        key = 'w:%s/%s' % (alice.id, worksheets["Alice's notes"].__name__)
        every = [(u.id, w.__name__) for u in root.users_by_id.values()
                 for w in u.worksheets()]
    assert {'alice', 's', 'notes', 'groups', 'symmetricgroup', '3'} <= indexed(nb, key)
    for owner_id, number in every:
        assert indexed(nb, 'w:%s/%s' % (owner_id, number)) is not None


def test_a_deleted_user_leaves_the_index_and_an_heir_takes_over(nb):
    with nb.transaction() as root:
        bob = root.user_by_login('bob')
        ws = bob.create_worksheet('Inherited theorem')
        gone = root.user_by_login('carol').create_worksheet('Forgotten lemma')
        old_key, gone_key = 'w:%s/%s' % (bob.id, ws.__name__), \
            'w:%s/%s' % (gone.owner_id, gone.__name__)
    with nb.transaction() as root:
        root.delete_user(root.user_by_login('carol'))
        heir = root.user_by_login('alice')
        root.delete_user(root.user_by_login('bob'), heir=heir)
        new_key = 'w:%s/%s' % (heir.id, [w for w in heir.worksheets()
                                         if w.name == 'Inherited theorem'][0].__name__)
    assert indexed(nb, gone_key) is None and indexed(nb, old_key) is None
    assert indexed(nb, new_key) == {'inherited', 'theorem'}


def test_evolving_an_old_database_builds_the_index(tmp_path):
    folder = tmp_path / 'old'
    shutil.copytree(OLD_DATABASE, folder, ignore=shutil.ignore_patterns('*.py'))
    notebook = Notebook(folder, **{'sagenb.evolve_at_start': 'true'})
    try:
        with notebook.transaction() as root:
            assert {'worksheet-tags', 'search-index'} <= set(evolve.done(root))
            alice = root.user_by_login('alice')
            assert alice['0'].tags == ()
            key = 'w:%s/0' % alice.id
            assert search.matching(root, search.parse_query('factor')) == {key}
            total = sum(len(u.worksheets()) for u in root.users_by_id.values())
            assert root.search_index.count() == total > 0
        app = webtest.TestApp(notebook.app, extra_environ={'HTTP_HOST': 'localhost:80'})
        found = Api(app, notebook.token('alice')).get('/search', q='factor')
        assert [r['url'] for r in found['results']] == ['http://localhost/home/alice/0/']
    finally:
        notebook.close()


# === GET /search ==========================================================================

def make(nb, login_name, name, *inputs, **shares):
    """A worksheet of ``login_name`` with ``inputs``; ``viewers=``/``collaborators=``
    lists of logins or ``group:<name>``.  Returns its URL path."""
    with nb.transaction() as root:
        owner = root.user_by_login(login_name)
        ws = owner.create_worksheet(name)
        ws.delete_all_cells()
        for text in inputs:
            ws.add_cell('compute', text)
        for role in ('viewers', 'collaborators'):
            for who in shares.get(role, ()):
                if who.startswith('group:'):
                    group = root.group_by_name(who[6:]) or root.add_group(who[6:])
                    getattr(ws, role).append(group_principal(group.id))
                else:
                    getattr(ws, role).append(user_principal(root.user_by_login(who).id))
        return '/home/%s/%s/' % (login_name, ws.__name__)


def found(api, q, scope='all', **params):
    res = api.get('/search', q=q, scope=scope, **params)
    return [(r['url'].replace('http://localhost', ''), r['role']) for r in res['results']]


def test_scopes_roles_and_confinement(nb, api):
    mine = make(nb, 'alice', 'Group theory', 'G = SymmetricGroup(4)')
    viewed = make(nb, 'bob', 'Bob shows groups', 'SymmetricGroup(5).order()',
                  viewers=['alice'])
    collab = make(nb, 'carol', 'Carol group work', 'H = SymmetricGroup(3)',
                  collaborators=['group:algebraists'], viewers=['alice'])
    secret = make(nb, 'bob', 'Private', 'SymmetricGroup(6)  # not shared')
    make(nb, 'root', "The admin's", 'SymmetricGroup(7)')
    with nb.transaction() as root:
        root.user_by_login('alice').group_ids.add(root.group_by_name('algebraists').id)
    alice = api('alice')
    assert found(alice, 'symmetricgroup', 'mine') == [(mine, 'owner')]
    assert sorted(found(alice, 'symmetricgroup', 'shared')) == sorted(
        [(viewed, 'viewer'), (collab, 'collaborator')])
    assert sorted(found(alice, 'symmetricgroup')) == sorted(
        [(mine, 'owner'), (viewed, 'viewer'), (collab, 'collaborator')])
    assert found(alice, 'symmetricgroup', 'published') == []
    # Bob sees his own two and nothing of the others; the admin only theirs.
    assert sorted(found(api('bob'), 'symmetricgroup')) == sorted(
        [(viewed, 'owner'), (secret, 'owner')])
    assert len(found(api('root'), 'symmetricgroup')) == 1
    assert found(api('root'), 'symmetricgroup', 'shared') == []
    # The answer's fields.
    res = alice.get('/search', q='order', scope='shared')
    assert res['total'] == 1 and res['results'] == [{
        'url': 'http://localhost' + viewed, 'name': 'Bob shows groups', 'owner': 'bob',
        'role': 'viewer', 'snippet': 'SymmetricGroup(5).order()'}]
    # A share made later is found once the worksheet is reindexed (the sharing code
    # calls search.changed); without it, it is not a candidate.
    later = make(nb, 'bob', 'Later', 'SymmetricGroup(8)')
    assert (later, 'viewer') not in found(alice, 'symmetricgroup', 'shared')
    with nb.transaction() as root:
        ws = root.user_by_login('bob')[later.split('/')[3]]
        ws.viewers.append(user_principal(root.user_by_login('alice').id))
        search.changed(ws)
    assert (later, 'viewer') in found(alice, 'symmetricgroup', 'shared')
    with nb.transaction() as root:
        ws = root.user_by_login('bob')[later.split('/')[3]]
        del ws.viewers[:]
        search.changed(ws)
    with nb.transaction() as root:
        assert search.shared_with(root, [user_principal(root.user_by_login('alice').id)]) \
            == {'w:%s/%s' % (ws.owner_id, ws.__name__) for ws in (
                root.user_by_login('bob')[viewed.split('/')[3]],
                root.user_by_login('carol')[collab.split('/')[3]])}
    # A revoked share stops showing at once (no reindex); so does leaving the group.
    with nb.transaction() as root:
        ws = root.user_by_login('bob')[viewed.split('/')[3]]
        ws.viewers.remove(user_principal(root.user_by_login('alice').id))
    assert found(alice, 'symmetricgroup', 'shared') == [(collab, 'collaborator')]
    with nb.transaction() as root:
        root.user_by_login('alice').group_ids.remove(root.group_by_name('algebraists').id)
    # Still a viewer of Carol's by name.
    assert found(alice, 'symmetricgroup', 'shared') == [(collab, 'viewer')]
    # The caller's trash is left out; restored, it shows again.
    alice.patch(mine, {'state': 'trash'}, status=200)
    assert found(alice, 'symmetricgroup', 'mine') == []
    alice.patch(mine, {'state': 'archive'}, status=200)
    assert found(alice, 'symmetricgroup', 'mine') == [(mine, 'owner')]


def test_words_and_prefixes_and_unicode(nb, api):
    a = make(nb, 'alice', 'Plots', 'plot(x^2+1, (x, -2, 2))', 'def f(x):\n    return x')
    b = make(nb, 'alice', 'Größen', 'Integration über ℝ')
    alice = api('alice')
    assert found(alice, 'x^2+1') == [(a, 'owner')]
    assert found(alice, 'def f') == [(a, 'owner')]
    assert found(alice, 'GRÖSSEN') == [(b, 'owner')]
    assert found(alice, 'integ*') == [(b, 'owner')]
    assert found(alice, 'plot integration') == []
    assert found(alice, 'nothing-like-this') == []
    snippet = alice.get('/search', q='über')['results'][0]['snippet']
    assert snippet == 'Integration über ℝ'


def test_paging_newest_first(nb, api):
    urls = [make(nb, 'alice', 'Sheet %d' % i, 'common words') for i in range(5)]
    alice = api('alice')
    everything = alice.get('/search', q='common')
    assert everything['total'] == 5
    assert [r['url'][len('http://localhost'):] for r in everything['results']] == urls[::-1]
    page = alice.get('/search', q='common', offset='2', limit='2')
    assert page['total'] == 5 and page['offset'] == 2 and page['limit'] == 2
    assert [r['name'] for r in page['results']] == ['Sheet 2', 'Sheet 1']
    assert alice.get('/search', q='common', offset='5')['results'] == []


@pytest.mark.parametrize('params, message', [
    ({}, 'type something'), ({'q': ''}, 'type something'), ({'q': 'x' * 201}, 'too long'),
    ({'q': '+++'}, 'no words'), ({'q': 'x', 'scope': 'everyone'}, '"scope"'),
    ({'q': 'x', 'limit': '0'}, '"limit"'), ({'q': 'x', 'limit': '101'}, '"limit"'),
    ({'q': 'x', 'offset': '-1'}, '"offset"'), ({'q': 'x', 'offset': 'a'}, '"offset"'),
])
def test_bad_searches_are_400(nb, app, params, message):
    res = app.get('/search', params=params, status=400,
                  headers={'Authorization': 'Bearer ' + nb.token('alice')})
    assert message in res.json['error']


def test_anonymous_must_log_in(nb, app):
    res = app.get('/search', params={'q': 'x'}, headers={'Accept': 'application/json'},
                  status=401)
    assert res.json['error']
    page = app.get('/search', params={'q': 'x'}, status=302)
    assert page.location.startswith('http://localhost/login?came_from=/search')


def publish(api, path, auto=False):
    return api('bob').post(path + 'publish', {'auto': auto})['url'].replace(
        'http://localhost', '')


def test_published_scope_finds_what_publications_show(nb, api):
    snap = make(nb, 'bob', 'Published galois', 'GaloisGroup of x^3-2')
    live = make(nb, 'bob', 'Followed galois', 'GaloisGroup of x^5-1')
    make(nb, 'bob', 'Unpublished galois', 'GaloisGroup')
    snap_url, live_url = publish(api, snap), publish(api, live, auto=True)
    res = api('alice').get('/search', q='galoisgroup', scope='published')
    assert res['total'] == 2
    assert {r['url'].replace('http://localhost', '') for r in res['results']} == \
        {snap_url, live_url}
    assert {r['role'] for r in res['results']} == {'published'}
    assert {r['owner'] for r in res['results']} == {'bob'}
    assert found(api('alice'), 'galoisgroup', 'mine') == []
    # Later edits: a snapshot shows (and is found by) what was published; a
    # publication that follows its worksheet is found by its new words at once.
    for path in (snap, live):
        cell = api('bob').get(path)['cells'][0]['id']
        api('bob').patch(path + 'cells/%d' % cell, {'input': 'AbelianGroup(6)'})
    assert found(api('alice'), 'abeliangroup', 'published') == [(live_url, 'published')]
    assert found(api('alice'), 'galoisgroup', 'published') == [(snap_url, 'published')]
    # Published again, the snapshot is found by its new words; stopped, by nothing.
    publish(api, snap)
    assert {u for u, _ in found(api('alice'), 'abeliangroup', 'published')} == \
        {snap_url, live_url}
    api('bob').delete(live + 'publish')
    assert found(api('alice'), 'abeliangroup', 'published') == [(snap_url, 'published')]


def test_a_new_share_is_found_at_once(nb, api):
    path = make(nb, 'bob', 'Sharing later', 'QuaternionAlgebra(-1, -1)')
    assert found(api('alice'), 'quaternionalgebra', 'shared') == []
    api('bob').put(path + 'sharing', {'collaborators': ['alice'], 'viewers': []})
    assert found(api('alice'), 'quaternionalgebra', 'shared') == [(path, 'collaborator')]
    api('bob').put(path + 'sharing', {'collaborators': [], 'viewers': []})
    assert found(api('alice'), 'quaternionalgebra', 'shared') == []


# === tags =================================================================================

def test_clean_tags():
    assert clean_tags(['Calculus', 'calculus ', 'week-3', 'C++', 'Ω']) == \
        ('c++', 'calculus', 'week-3', 'ω')
    assert clean_tags([]) == ()
    for bad in (['two words'], [''], ['x' * 33], ['-x'], [3], 'calculus',
                ['t%d' % i for i in range(11)], ['<b>']):
        with pytest.raises(ValueError):
            clean_tags(bad)


def test_tags_set_by_the_owner_listed_and_filtered(nb, api):
    alice = api('alice')
    url = alice.post('/home/alice/', {'name': 'Tagged'}, status=201)['url']
    other = alice.post('/home/alice/', {'name': 'Other'}, status=201)['url']
    got = alice.patch(url, {'tags': ['Calculus', 'week-3']}, status=200)
    assert got['tags'] == ['calculus', 'week-3']
    assert alice.get(url)['tags'] == ['calculus', 'week-3']
    listing = alice.get('/home/alice/')['worksheets']
    assert {w['name']: w['tags'] for w in listing} == {
        'Tagged': ['calculus', 'week-3'], 'Other': []}
    assert [w['name'] for w in alice.get('/home/alice/', tag='Calculus')['worksheets']] == \
        ['Tagged']
    assert alice.get('/home/alice/', tag='nope')['worksheets'] == []
    assert 'tag' in alice.get('/home/alice/', status=400, tag='a b')['error']
    # Refused: bad tags (nothing changes), a collaborator setting them.
    for bad in (['a b'], 'x', ['t%d' % i for i in range(11)]):
        assert '"tags"' in alice.patch(url, {'tags': bad}, status=400)['error']
    assert alice.get(url)['tags'] == ['calculus', 'week-3']
    with nb.transaction() as root:
        root.user_by_login('alice')['0'].collaborators.append(
            user_principal(root.user_by_login('bob').id))
    refused = api('bob').patch(url, {'tags': []}, status=403)
    assert 'owner' in refused['error']
    assert alice.patch(other, {'tags': []}, status=200)['tags'] == []
    # Found by search through the tag.
    assert found(alice, 'calculus') == [(url.replace('http://localhost', ''), 'owner')]


def test_listing_page_has_the_search_box_and_tag_chips(nb, app, api):
    alice = api('alice')
    url = alice.post('/home/alice/', {'name': 'Tagged'}, status=201)['url']
    alice.patch(url, {'tags': ['calculus']}, status=200)
    alice.post('/home/alice/', {'name': 'Untagged'}, status=201)
    login(app, 'alice')
    page = app.get('/home/alice/')
    assert 'data-role="search"' in page.text
    assert re.search(r'<a class="tag" href="http://localhost/home/alice/\?[^"]*tag=calculus"',
                     page.text)
    filtered = app.get('/home/alice/?tag=calculus')
    assert 'Tagged' in filtered.text and 'Untagged' not in filtered.text
