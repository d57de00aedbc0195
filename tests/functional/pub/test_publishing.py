"""Publishing (issue 20): publish, the anonymous view (HTML and JSON), publishing again,
``auto``, unpublishing, copies, ratings and comments, the ``/pub/`` list, print views,
and the refusals of bad input (which change nothing).  WebTest on a real ZODB; no Sage
process (outputs are written to the database as the worker writes them)."""
import base64
import re

import pytest
import webtest

from sagenb_pyramid import evolve
from sagenb_pyramid.security import user_principal

from ...conftest import Api, Notebook, csrf_token_of, login

PNG = base64.b64encode(b'\x89PNG\r\n\x1a\n not really a png').decode()
XSS = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'


@pytest.fixture
def nb(tmp_path):
    nb = Notebook(tmp_path / 'data', **{'sagenb.quota.user_mb': '1'})
    for login_name in ('olivia', 'bob', 'carl', 'vera'):
        nb.add_user(login_name)
    nb.add_user('ada', admin=True)
    yield nb
    nb.close()


@pytest.fixture
def app(nb):
    return webtest.TestApp(nb.app, extra_environ={'HTTP_HOST': 'localhost:80'})


@pytest.fixture
def api(nb, app):
    return lambda who: Api(app, nb.token(who))


def make_worksheet(nb, name='Published work', text='The *result*: $x^2$'):
    """A worksheet of olivia with a computed cell (text and a plot) and a text cell, a
    data file and a file kept with the cell; carl collaborates.  Returns its path."""
    with nb.transaction() as root:
        olivia = root.user_by_login('olivia')
        ws = olivia.create_worksheet(name)
        cell = ws.cells[str(ws.cell_order[0])]
        cell.input = 'plot(sin(x))'
        cell.output.update('done', [
            {'output_type': 'execute_result', 'execution_count': 1, 'metadata': {},
             'data': {'text/plain': 'the answer', 'text/latex': '$x^{2}$'}},
            {'output_type': 'display_data', 'metadata': {}, 'data': {'image/png': PNG}}],
            execution_count=1)
        cell.output.add_file('kept.txt', b'kept by the cell')
        ws.add_cell('text', text)
        ws.data_files().add_file('table.csv', b'a,b\n1,2\n')
        ws.collaborators.append(user_principal(root.user_by_login('carl').id))
        return '/home/olivia/%d/' % ws.number


def publish(api, path, auto=None, status=200):
    return api('olivia').post(path + 'publish', {} if auto is None else {'auto': auto},
                              status=status)


def anon_json(app, url, status=200):
    return app.get(url, headers={'Accept': 'application/json'}, status=status)


def count_publications(nb):
    with nb.transaction() as root:
        return len(root.publications)


# --- publish, view, publish again, auto, unpublish ---------------------------------------

def test_publish_and_view_anonymously_in_html_and_json(nb, app, api):
    path = make_worksheet(nb)
    answer = publish(api, path)
    url = answer['url']
    assert re.fullmatch(r'/pub/[A-Za-z0-9_-]{8,}/', url) and answer['auto'] is False
    data = anon_json(app, url).json
    assert data['name'] == 'Published work' and data['owner'] == 'olivia'
    assert data['trusted'] is False and data['url'] == url
    compute, text = data['cells']
    assert compute['input'] == 'plot(sin(x))'
    assert compute['outputs'][1]['data']['image/png'] == PNG
    assert compute['outputs'][0]['data']['text/latex'] == '$x^{2}$'
    assert text['type'] == 'text' and text['input'] == 'The *result*: $x^2$'
    assert data['data_files'][0]['url'] == url + 'data/table.csv'
    page = app.get(url)
    assert page.status_int == 200 and 'Published work' in page.text
    assert 'id="worksheet-data"' in page.text and 'data-mode="published"' in page.text
    # The page's own module, with the request's nonce; nothing of the worksheet runs.
    policy = page.headers['Content-Security-Policy']
    nonce = re.search(r"'nonce-([^']+)'", policy).group(1)
    assert 'nonce="%s"' % nonce in page.text and "'unsafe-inline'" not in \
        policy.split('script-src')[1].split(';')[0]
    assert page.headers['X-Robots-Tag'] == 'noindex, nofollow'
    assert '<meta name="robots" content="noindex, nofollow">' in page.text
    # Without the slash: redirected, so relative URLs of text cells work.
    assert app.get(url[:-1]).status_int == 302
    # Its files, as the page asks for them, for anybody.
    cell_id = compute['id']
    kept = app.get(url + 'cells/%d/files/kept.txt' % cell_id)
    assert kept.body == b'kept by the cell'
    assert kept.headers['Content-Security-Policy'].startswith('sandbox')
    table = app.get(url + 'data/table.csv')
    assert table.body == b'a,b\n1,2\n' and 'sandbox' in table.headers['Content-Security-Policy']
    assert app.get(url + 'table.csv').body == b'a,b\n1,2\n'  # as legacy text cells say
    assert anon_json(app, url + 'cells/%d' % cell_id).json['input'] == 'plot(sin(x))'
    assert anon_json(app, url + 'data/').json['files'][0]['name'] == 'table.csv'
    anon_json(app, url + 'cells/9999', status=404)
    anon_json(app, url + 'data/nothing.csv', status=404)


def test_publishing_again_updates_the_same_url_and_a_snapshot_hides_later_edits(
        nb, app, api):
    path = make_worksheet(nb)
    url = publish(api, path)['url']
    owner = api('olivia')
    cell_id = owner.get(path)['cells'][0]['id']
    owner.patch(path + 'cells/%d' % cell_id, {'input': 'secret draft'}, status=200)
    owner.patch(path, {'name': 'Renamed draft'}, status=200)
    owner.post(path + 'data', {'name': 'draft.txt', 'content': 'unpublished'}, status=201)
    with nb.transaction() as root:
        ws = root.user_by_login('olivia')[path.split('/')[3]]
        ws.cells[str(cell_id)].output.update('done', [
            {'output_type': 'stream', 'name': 'stdout', 'text': 'draft output'}])
    # Not published yet: the snapshot is what was published, everywhere.
    data = anon_json(app, url).json
    assert data['name'] == 'Published work'
    assert data['cells'][0]['input'] == 'plot(sin(x))'
    assert 'draft' not in anon_json(app, url).text
    assert 'secret draft' not in app.get(url).text
    assert 'draft' not in anon_json(app, url + 'cells/%d' % cell_id).text
    anon_json(app, url + 'data/draft.txt', status=404)
    assert 'secret draft' not in app.get(url + 'print').text
    listed = anon_json(app, '/pub/').json['publications']
    assert [p['name'] for p in listed] == ['Published work']
    # Published again: the same URL shows the edits.
    again = publish(api, path)
    assert again['url'] == url and count_publications(nb) == 1
    data = anon_json(app, url).json
    assert data['name'] == 'Renamed draft' and data['cells'][0]['input'] == 'secret draft'
    assert data['cells'][0]['outputs'][0]['text'] == 'draft output'
    assert app.get(url + 'data/draft.txt').body == b'unpublished'


def test_auto_follows_every_change(nb, app, api):
    path = make_worksheet(nb)
    answer = publish(api, path, auto=True)
    url = answer['url']
    assert answer['auto'] is True
    owner = api('olivia')
    cell_id = owner.get(path)['cells'][0]['id']
    owner.patch(path + 'cells/%d' % cell_id, {'input': 'factor(2^64-1)'}, status=200)
    owner.patch(path, {'name': 'Live'}, status=200)
    data = anon_json(app, url).json
    assert data['auto'] is True and data['name'] == 'Live'
    assert data['cells'][0]['input'] == 'factor(2^64-1)'
    assert anon_json(app, url + 'cells/%d' % cell_id).json['input'] == 'factor(2^64-1)'
    # A collaborator's change too, and the listing shows the live name.
    api('carl').patch(path + 'cells/%d' % cell_id, {'input': 'carl was here'}, status=200)
    assert anon_json(app, url).json['cells'][0]['input'] == 'carl was here'
    assert anon_json(app, '/pub/').json['publications'][0]['name'] == 'Live'
    # Back to a snapshot: later changes are not shown any more.
    assert publish(api, path, auto=False)['url'] == url
    owner.patch(path + 'cells/%d' % cell_id, {'input': 'after the snapshot'}, status=200)
    assert anon_json(app, url).json['cells'][0]['input'] == 'carl was here'


def test_unpublish_makes_the_url_a_plain_404(nb, app, api):
    path = make_worksheet(nb)
    url = publish(api, path)['url']
    cell_id = anon_json(app, url).json['cells'][0]['id']
    owner = api('olivia')
    assert owner.delete(path + 'publish', status=200) == {'published': None}
    for who in (None, 'olivia', 'bob'):
        headers = {'Accept': 'application/json'}
        if who:
            headers['Authorization'] = 'Bearer ' + nb.token(who)
        res = app.get(url, headers=headers, status=404)
        assert res.json['error']
    # A browser without login: a 404 page, not the login page.
    assert app.get(url, status=404).content_type == 'text/html'
    app.get(url + 'cells/%d' % cell_id, status=404)
    app.get(url + 'data/table.csv', status=404)
    app.get('/pub/nosuchid/', status=404)
    assert anon_json(app, '/pub/').json['total'] == 0
    # Not published: a second DELETE says so and changes nothing.
    assert owner.delete(path + 'publish', status=404)['error']
    # Publishing again makes a new URL; the old one stays gone.
    new = publish(api, path)['url']
    assert new != url
    app.get(url, status=404)
    app.get(new, status=200)


def test_a_deleted_worksheet_is_no_longer_published(nb, app, api):
    path = make_worksheet(nb)
    url = publish(api, path)['url']
    api('olivia').delete(path, status=200)
    app.get(url, status=404)
    assert anon_json(app, '/pub/').json['total'] == 0


def test_who_may_publish_and_bad_input(nb, app, api):
    path = make_worksheet(nb)
    for who, status in (('carl', 403), ('ada', 403), ('bob', 404)):
        assert api(who).post(path + 'publish', {}, status=status)['error']
        assert api(who).delete(path + 'publish', status=status)['error']
    for body in ({'auto': 'yes'}, {'auto': 1}, {'auto': None}):
        assert '"auto"' in api('olivia').post(path + 'publish', body, status=400)['error']
    res = app.post(path + 'publish', 'not json', headers={
        'Authorization': 'Bearer ' + nb.token('olivia'), 'Content-Type': 'application/json'},
        status=400)
    assert 'JSON' in res.json['error']
    app.post(path + 'publish', status=302)  # anonymous browser: the login page
    assert count_publications(nb) == 0
    with nb.transaction() as root:
        assert root.user_by_login('olivia')[path.split('/')[3]].publication_id is None


def test_publish_from_a_browser_form(nb, app):
    path = make_worksheet(nb)
    token = login(app, 'carl')
    page = app.get(path)
    assert 'data-role="print"' in page.text and 'data-role="publish"' not in page.text
    app.post('/logout', {'csrf_token': token})
    token = login(app, 'olivia')
    assert 'data-role="publish"' in app.get(path).text
    res = app.post(path + 'publish', {'csrf_token': token, 'auto': 'on'}, status=302)
    assert re.search(r'/pub/[^/]+/$', res.location)
    page = res.follow()
    assert 'follows every change' in page.text and 'Publish again' in page.text
    url = res.location.replace('http://localhost', '')
    # The worksheet page says where it is published; its owner may take it down there.
    page = app.get(path).text
    assert 'data-role="published-link"' in page and 'href="%s"' % url in page
    assert 'data-action="unpublish"' in page and 'Publish again' in page
    app.post('/logout', {'csrf_token': token})
    login(app, 'carl')
    page = app.get(path).text
    assert 'href="%s"' % url in page and 'data-action="unpublish"' not in page
    # Every page's top bar leads to /pub/, logged in or not.
    assert 'href="http://localhost/pub/">Published' in page
    app.reset()
    assert 'href="http://localhost/pub/">Published' in app.get('/login').text


# --- copies ---------------------------------------------------------------------------

def test_copy_gives_an_independent_worksheet(nb, app, api):
    path = make_worksheet(nb)
    url = publish(api, path)['url']
    # Anonymous: log in first (401 for scripts).
    assert app.post(url + 'copy', headers={'Accept': 'application/json'},
                    status=401).json['error']
    bob = api('bob')
    copy = bob.post(url + 'copy', {}, status=201)
    assert copy['url'].startswith('http://localhost/home/bob/') and copy['owner'] == 'bob'
    assert copy['name'] == 'Published work'
    mine = bob.get(copy['url'])
    assert mine['cells'][0]['input'] == 'plot(sin(x))' and mine['trusted'] is False
    assert mine['cells'][0]['outputs'][1]['data']['image/png'] == PNG
    assert mine['data_files'][0]['name'] == 'table.csv'
    # Bob's edits change neither the publication nor the original, and the other way.
    bob.patch(copy['url'] + 'cells/%d' % mine['cells'][0]['id'], {'input': 'bob'},
              status=200)
    assert anon_json(app, url).json['cells'][0]['input'] == 'plot(sin(x))'
    original = api('olivia').get(path)
    assert original['cells'][0]['input'] == 'plot(sin(x))'
    api('olivia').patch(path + 'cells/%d' % original['cells'][0]['id'],
                        {'input': 'olivia'}, status=200)
    publish(api, path)
    assert bob.get(copy['url'])['cells'][0]['input'] == 'bob'
    # A name of one's own; a bad one is refused and makes nothing.
    assert bob.post(url + 'copy', {'name': 'Mine'}, status=201)['name'] == 'Mine'
    assert bob.post(url + 'copy', {'name': 42}, status=400)['error']
    with nb.transaction() as root:
        assert len(root.user_by_login('bob').worksheets()) == 2


def test_copy_counts_against_the_quota(nb, app, api):
    path = make_worksheet(nb)
    api('olivia').post(path + 'data', {'name': 'big.txt', 'content': 'x' * 700_000},
                       status=201)
    url = publish(api, path)['url']
    bob = api('bob')
    bob.post(url + 'copy', {}, status=201)
    refused = bob.post(url + 'copy', {}, status=409)
    assert 'quota' in refused['error']
    with nb.transaction() as root:
        assert len(root.user_by_login('bob').worksheets()) == 1


def test_copy_from_a_browser(nb, app, api):
    path = make_worksheet(nb)
    url = publish(api, path)['url']
    page = app.get(url)
    assert 'Log in to edit a copy' in page.text
    token = login(app, 'bob')
    page = app.get(url)
    assert 'Edit a copy' in page.text
    res = app.post(url + 'copy', {'csrf_token': token}, status=302)
    assert '/home/bob/' in res.location


# --- ratings and comments ---------------------------------------------------------------

def test_ratings_rules(nb, app, api):
    path = make_worksheet(nb)
    url = publish(api, path)['url']
    assert app.post_json(url + 'rate', {'rating': 3}, status=401).json['error']
    assert api('olivia').post(url + 'rate', {'rating': 4}, status=403)['error']
    bob, vera = api('bob'), api('vera')
    for bad in ({'rating': 5}, {'rating': -1}, {'rating': 'x'}, {'rating': True},
                {'rating': 2.5}, {}, {'rating': 2, 'comment': 7},
                {'rating': 2, 'comment': 'x' * 2001}):
        assert bob.post(url + 'rate', bad, status=400)['error'], bad
    assert anon_json(app, url + 'ratings').json['count'] == 0
    assert bob.post(url + 'rate', {'rating': 4, 'comment': 'great'}, status=200)['mean'] == 4
    # One rating per user, changeable.
    changed = bob.post(url + 'rate', {'rating': 2, 'comment': 'on second thought'},
                       status=200)
    assert changed['count'] == 1 and changed['mean'] == 2
    assert changed['yours'] == {'rating': 2, 'comment': 'on second thought'}
    both = vera.post(url + 'rate', {'rating': 3}, status=200)
    assert both['count'] == 2 and both['mean'] == 2.5
    listed = anon_json(app, '/pub/').json['publications'][0]
    assert listed['rating'] == 2.5 and listed['ratings'] == 2
    assert anon_json(app, url).json['rating'] == 2.5
    # Admins rate as anyone logged in.
    assert api('ada').post(url + 'rate', {'rating': 1}, status=200)['count'] == 3


def test_comments_are_escaped_and_the_owner_may_hide_them(nb, app, api):
    path = make_worksheet(nb)
    url = publish(api, path)['url']
    api('bob').post(url + 'rate', {'rating': 1, 'comment': XSS}, status=200)
    page = app.get(url)
    assert XSS not in page.text and '&lt;script&gt;window.__pwned=2&lt;/script&gt;' in page.text
    # Only the owner hides (or shows) a comment.
    for who, status in (('bob', 403), ('ada', 403), ('carl', 403)):
        assert api(who).post(url + 'hide', {'user': 'bob'}, status=status)['error']
    owner = api('olivia')
    assert owner.post(url + 'hide', {'user': 'nobody'}, status=400)['error']
    assert owner.post(url + 'hide', {'user': 'vera'}, status=400)['error']  # no rating
    assert owner.post(url + 'hide', {'user': 'bob', 'hidden': 'maybe'}, status=400)
    hidden = owner.post(url + 'hide', {'user': 'bob'}, status=200)['ratings'][0]
    assert hidden['hidden'] is True and hidden['comment'] == XSS  # the owner sees it
    seen = anon_json(app, url + 'ratings').json['ratings'][0]
    assert seen == {'user': 'bob', 'rating': 1, 'time': seen['time'], 'hidden': True,
                    'comment': None}
    assert 'pwned' not in app.get(url).text
    # Rewriting it does not bring it back; the owner can.
    api('bob').post(url + 'rate', {'rating': 2, 'comment': 'nicer now'}, status=200)
    assert anon_json(app, url + 'ratings').json['ratings'][0]['comment'] is None
    shown = owner.post(url + 'hide', {'user': 'bob', 'hidden': False}, status=200)
    assert shown['ratings'][0]['hidden'] is False
    assert anon_json(app, url + 'ratings').json['ratings'][0]['comment'] == 'nicer now'


def test_rating_and_hiding_from_a_browser(nb, app, api):
    path = make_worksheet(nb)
    url = publish(api, path)['url']
    token = login(app, 'bob')
    res = app.post(url + 'rate', {'csrf_token': token, 'rating': '3',
                                  'comment': 'fine'}, status=302)
    assert res.location.endswith('#ratings')
    assert 'fine' in app.get(url).text
    app.post('/logout', {'csrf_token': token})
    token = login(app, 'olivia')
    page = app.get(url)
    assert 'Hide comment' in page.text and 'name="rating"' not in page.text
    app.post(url + 'hide', {'csrf_token': token, 'user': 'bob', 'hidden': 'true'},
             status=302)
    assert 'Show comment' in app.get(url).text


# --- the list of /pub/ ------------------------------------------------------------------

def test_the_list_is_public_searchable_and_paged(nb, app, api):
    for n in range(5):
        publish(api, make_worksheet(nb, name='Topic %d' % n))
    with nb.transaction() as root:
        bob = root.user_by_login('bob')
        ws = bob.create_worksheet('Bob alone')
        root.publications.publish(ws)
    first = anon_json(app, '/pub/', status=200).json
    assert first['total'] == 6 and first['page'] == 1
    assert [p['name'] for p in first['publications']][:2] == ['Bob alone', 'Topic 4']
    row = first['publications'][1]
    assert set(row) == {'id', 'url', 'name', 'owner', 'time', 'auto', 'rating', 'ratings'}
    paged = anon_json(app, '/pub/?per_page=2&page=3').json
    assert [p['name'] for p in paged['publications']] == ['Topic 1', 'Topic 0']
    assert anon_json(app, '/pub/?per_page=2&page=9').json['publications'] == []
    assert anon_json(app, '/pub/?q=topic 3').json['total'] == 1
    assert [p['owner'] for p in anon_json(app, '/pub/?q=BOB').json['publications']] == \
        ['bob']
    assert anon_json(app, '/pub/?q=olivia').json['total'] == 5
    # Full text: the words of the cells too, and a prefix; a query without words is 400.
    assert anon_json(app, '/pub/?q=sin plot').json['total'] == 5
    assert anon_json(app, '/pub/?q=alo*').json['total'] == 1
    assert 'no words' in anon_json(app, '/pub/?q=%2B%2B', status=400).json['error']
    for bad in ('page=0', 'page=x', 'per_page=201', 'per_page=-1'):
        assert anon_json(app, '/pub/?' + bad, status=400).json['error']
    page = app.get('/pub/?per_page=2&q=topic')
    assert page.text.count('data-role="publication"') == 2
    assert 'page 1 of 3' in page.text and 'Topic 4' in page.text
    assert page.headers['X-Robots-Tag'] == 'noindex, nofollow'


def test_names_in_the_list_are_escaped(nb, app, api):
    publish(api, make_worksheet(nb, name=XSS))
    page = app.get('/pub/')
    assert XSS not in page.text and '&lt;script&gt;' in page.text
    url = anon_json(app, '/pub/').json['publications'][0]['url']
    one = app.get(url)
    assert '<script>window.__pwned' not in one.text


def test_search_engines_may_index_when_the_setting_says_so(tmp_path):
    nb = Notebook(tmp_path / 'open', **{'sagenb.publish.noindex': 'false'})
    try:
        for login_name in ('olivia', 'carl'):
            nb.add_user(login_name)
        app = webtest.TestApp(nb.app, extra_environ={'HTTP_HOST': 'localhost:80'})
        url = Api(app, nb.token('olivia')).post(make_worksheet(nb) + 'publish', {},
                                                status=200)['url']
        page = app.get(url)
        assert 'X-Robots-Tag' not in page.headers and 'name="robots"' not in page.text
        assert 'X-Robots-Tag' not in app.get('/pub/').headers
    finally:
        nb.close()


# --- print views -------------------------------------------------------------------------

def test_print_views(nb, app, api):
    path = make_worksheet(nb, text='A text cell with $\\int x\\,dx$')
    url = publish(api, path)['url']
    page = app.get(url + 'print')
    # The cells drawn on the server as download.html draws them (issue 22), no script.
    assert 'data-mode="print"' in page.text and '<script' not in page.text
    assert 'static/export.css' in page.text and 'class="topbar"' not in page.text
    assert 'data-action' not in page.text and 'Edit a copy' not in page.text
    assert '<mo>∫</mo><mi>x</mi>' in page.text  # the text cell's math, as MathML
    # A worksheet's print view: whoever may view it.
    token = login(app, 'carl')
    own = app.get(path + 'print')
    assert 'data-mode="print"' in own.text and 'plot(sin(x))' in own.text
    assert csrf_token_of(app.get('/account')) == token
    app.post('/logout', {'csrf_token': token})
    login(app, 'bob')
    app.get(path + 'print', status=404)
    app.post('/logout', {'csrf_token': csrf_token_of(app.get('/account'))})
    assert app.get(path + 'print', status=302).location.startswith('http://localhost/login')


# --- search's view of a publication, and the evolve step --------------------------------

def test_texts_are_what_the_publication_shows(nb, api):
    path = make_worksheet(nb)
    publish(api, path)
    api('olivia').patch(path, {'name': 'Later'}, status=200)
    with nb.transaction() as root:
        publication = next(iter(root.publications.values()))
        ws = root.user_by_login('olivia')[path.split('/')[3]]
        assert publication.texts() == ['Published work', 'plot(sin(x))',
                                       'The *result*: $x^2$']
        assert publication.worksheet_key == '%s/%d' % (ws.owner_id, ws.number)
        assert publication.owner_id == ws.owner_id and publication.id == ws.publication_id
        assert publication.name == 'Published work' and publication.auto is False
        publication.auto = True
        assert publication.texts()[0] == 'Later'


def test_evolve_turns_a_published_mark_into_a_publication(nb):
    """A worksheet marked ``published`` (a time: sagenb's migration before this step)
    gets a publication of its content at that time."""
    with nb.transaction() as root:
        ws = root.user_by_login('olivia').create_worksheet('Old publication')
        ws.cells[str(ws.cell_order[0])].input = '1 + 1'
        other = root.user_by_login('bob').create_worksheet('Not published')
    # Then made as the code before the step stored them (the index of the worksheets
    # just made was written at the commit above, as it was then).
    with nb.transaction() as root:
        ws, other = root.user_by_login('olivia')['0'], root.user_by_login('bob')['0']
        ws.published = 1_300_000_000.0
        for worksheet in (ws, other):
            del worksheet.__dict__['publication_id']
            worksheet._p_changed = True
        del root.__dict__['publications']
        root._p_changed = True
        root.evolved.remove('publications')
    assert [s.name for s in evolve.evolve(nb.db)] == ['publications']
    with nb.transaction() as root:
        ws = root.user_by_login('olivia')['0']
        assert 'published' not in evolve.own(ws)
        publication = root.publications[ws.publication_id]
        assert publication.time == 1_300_000_000.0 and not publication.auto
        assert publication.texts() == ['Old publication', '1 + 1']
        assert root.user_by_login('bob')['0'].publication_id is None
        assert len(root.publications) == 1


# --- the index of /pub/ by time (a page reads only that page) ---------------------------

def listed_names(app, query=''):
    return [p['name'] for p in anon_json(app, '/pub/' + query).json['publications']]


def loaded(nb):
    """Objects the database's connections hold loaded (not ghosts)."""
    return sum(d['ngsize'] for d in nb.db.cacheDetailSize())


def test_a_page_of_the_list_reads_only_that_page(nb, app):
    with nb.transaction() as root:
        owners = [root.user_by_login(name) for name in ('olivia', 'bob', 'carl')]
        for n in range(300):
            ws = owners[n % 3].create_worksheet('Paper %03d' % n)
            ws.cells[str(ws.cell_order[0])].input = 'factor(%d)' % n
            root.publications.publish(ws, auto=n % 10 == 0, when=1_600_000_000.0 + n)
    anon_json(app, '/pub/?per_page=10')  # the application's own first-request work
    for query, first in (('', 'Paper 299'), ('&page=20', 'Paper 109')):
        nb.db.cacheMinimize()
        before = loaded(nb)
        data = anon_json(app, '/pub/?per_page=10' + query).json
        # Ten rows (each: the publication, its worksheet, owner, two rating counters)
        # and the index's buckets up to the page, not 300 publications and worksheets.
        assert loaded(nb) - before < 150
        assert data['total'] == 300 and len(data['publications']) == 10
        assert data['publications'][0]['name'] == first


def test_the_list_is_ordered_by_when_each_was_published(nb, app, api):
    """An ``auto`` publication is placed by when it was published, not by its edits
    (which would write to the index at every change of the worksheet)."""
    live = make_worksheet(nb, name='Live one')
    publish(api, live, auto=True)
    publish(api, make_worksheet(nb, name='Snapshot'))
    api('olivia').patch(live, {'name': 'Live one, edited'}, status=200)
    assert listed_names(app) == ['Snapshot', 'Live one, edited']
    publish(api, live, auto=True)
    assert listed_names(app) == ['Live one, edited', 'Snapshot']


def test_publishing_again_and_unpublishing_keep_the_index(nb, app, api):
    paths = [make_worksheet(nb, name=name) for name in ('A', 'B', 'C')]
    for path in paths:
        publish(api, path)
    assert listed_names(app) == ['C', 'B', 'A']
    publish(api, paths[0])
    assert listed_names(app) == ['A', 'C', 'B']
    api('olivia').delete(paths[2] + 'publish', status=200)
    data = anon_json(app, '/pub/').json
    assert [p['name'] for p in data['publications']] == ['A', 'B'] and data['total'] == 2
    assert listed_names(app, '?q=c') == [] and listed_names(app, '?q=a') == ['A']
    with nb.transaction() as root:
        index = root.publications.by_time
        assert len(index) == len(root.publications) == 2
        assert sorted(p.name for p in index.values()) == ['A', 'B']


def test_deleting_a_worksheet_or_its_owner_unpublishes_it(nb, app, api):
    """Deleted for good (alone, from the trash, with its owner): the publication goes
    and the list's total counts it no more; given to an heir, it stays published."""
    doomed = make_worksheet(nb, name='Deleted alone')
    trashed = make_worksheet(nb, name='Trashed')
    publish(api, doomed)
    publish(api, trashed)
    owner = api('olivia')
    owner.delete(doomed, status=200)
    assert count_publications(nb) == 1
    owner.patch(trashed, {'state': 'trash'}, status=200)
    assert owner.post('/home/olivia/empty_trash', {}, status=200)['deleted'] == [
        int(trashed.split('/')[3])]
    assert count_publications(nb) == 0
    assert anon_json(app, '/pub/').json['total'] == 0
    with nb.transaction() as root:
        bob, carl = root.user_by_login('bob'), root.user_by_login('carl')
        for who, name in ((bob, 'Bob leaves'), (carl, 'Carl leaves')):
            root.publications.publish(who.create_worksheet(name))
    with nb.transaction() as root:
        root.delete_user(root.user_by_login('bob'))
        root.delete_user(root.user_by_login('carl'), heir=root.user_by_login('vera'))
    data = anon_json(app, '/pub/').json
    assert data['total'] == 1 and count_publications(nb) == 1
    row = data['publications'][0]
    assert (row['name'], row['owner']) == ('Carl leaves', 'vera')
    app.get(row['url'], status=200)
    with nb.transaction() as root:
        assert len(root.publications.by_time) == 1


def test_two_publishers_at_once_do_not_conflict(nb):
    """Publishing different worksheets in concurrent transactions: the index, the
    folder and its counter resolve the conflict, both publications are there."""
    import transaction
    with nb.transaction() as root:
        for name in ('First', 'Second', 'Old'):
            root.user_by_login('olivia').create_worksheet(name)
        root.publications.publish(root.user_by_login('olivia')['2'])
    managers = [transaction.TransactionManager(explicit=True) for _ in range(2)]
    conns = [nb.db.open(transaction_manager=tm) for tm in managers]
    try:
        for number, (tm, conn) in enumerate(zip(managers, conns, strict=True)):
            tm.begin()
            root = conn.root()['sagenb']
            root.publications.publish(root.user_by_login('olivia')[str(number)])
        for tm in managers:
            tm.commit()
    finally:
        for conn in conns:
            conn.close()
    with nb.transaction() as root:
        assert sorted(p.name for p in root.publications.by_time.values()) == \
            ['First', 'Old', 'Second']
        assert len(root.publications) == 3


def test_evolve_indexes_publications_and_drops_those_of_deleted_worksheets(nb, app):
    """A database published before the index: the step builds it, and publications
    whose worksheet was deleted (which showed nothing) go."""
    from sagenb_pyramid.resources import Folder
    with nb.transaction() as root:
        olivia = root.user_by_login('olivia')
        kept, gone, later = (olivia.create_worksheet(n) for n in ('Kept', 'Gone', 'Later'))
        for n, ws in enumerate((kept, gone, later)):
            root.publications.publish(ws, when=1_500_000_000.0 + n)
        # Deleted as the code before this step did: the publication stayed.
        Folder.remove(olivia, gone.__name__)
        del root.publications.__dict__['by_time']
        root.publications._p_changed = True
        root.evolved.remove('publications-by-time')
    assert [s.name for s in evolve.evolve(nb.db)] == ['publications-by-time']
    with nb.transaction() as root:
        assert sorted(p.name for p in root.publications.values()) == ['Kept', 'Later']
        assert len(root.publications) == 2 == len(root.publications.by_time)
    data = anon_json(app, '/pub/').json
    assert [p['name'] for p in data['publications']] == ['Later', 'Kept']
    assert data['total'] == 2
