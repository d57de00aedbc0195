"""Outsiders cannot tell what exists: an anonymous visitor gets the same answer (the
login page for browsers, 401 for scripts) for an account, worksheet, cell, data file or
admin page that exists and for one that does not; a logged-in user who may not see a
thing gets the 404 of a missing one.  Tried in every traversal context."""
import re
import time

import pytest
import webtest

from ...support.notebook import Api, csrf_token_of, login

pytestmark = pytest.mark.usefixtures('cheap_password_hashes')

JSON = {'Accept': 'application/json'}


@pytest.fixture
def world(notebook):
    """alice's worksheet with cells, a data file, a revision, a cell file; a group."""
    notebook.add_user('alice')
    notebook.add_user('bob')
    with notebook.transaction() as root:
        alice = root.user_by_login('alice')
        ws = alice.create_worksheet('Secret plans')
        ws.add_cell('text', 'the plan')
        ws.data_files().add_file('notes.txt', b'notes')
        ws.add_revision(time.time(), 'old text', alice.id)
        revision = next(iter(ws.revisions.keys()))
        ws.cells['0'].output.add_file('plot.png', b'\x89PNG')
        group = root.add_group('staff')
    return {'revision': revision, 'group': group.id}


def pairs(world):
    """(method, path that exists, path that does not) in every traversal context."""
    rev, group = world['revision'], world['group']
    gets = [
        ('/home/alice/', '/home/nobody/'),
        ('/home/alice/0/', '/home/alice/7/'),
        ('/home/alice/0/', '/home/nobody/0/'),
        ('/home/alice/0/alive', '/home/alice/7/alive'),
        ('/home/alice/0/cells/1', '/home/alice/0/cells/99'),
        ('/home/alice/0/cells/1/output.txt', '/home/alice/0/cells/99/output.txt'),
        ('/home/alice/0/cells/1?since=0&wait=1', '/home/alice/0/cells/99?since=0&wait=1'),
        ('/home/alice/0/cells/0/files/plot.png', '/home/alice/0/cells/99/files/plot.png'),
        ('/home/alice/0/data/', '/home/alice/7/data/'),
        ('/home/alice/0/data/notes.txt', '/home/alice/0/data/other.txt'),
        ('/home/alice/0/notes.txt', '/home/alice/0/other.txt'),
        ('/home/alice/0/revisions/', '/home/alice/7/revisions/'),
        ('/home/alice/0/revisions/' + rev, '/home/alice/0/revisions/1.000'),
        ('/home/alice/0/download.sws', '/home/alice/7/download.sws'),
        ('/home/alice/0/download.ipynb', '/home/nobody/0/download.ipynb'),
        ('/home/alice/download.zip', '/home/nobody/download.zip'),
        ('/admin/users/alice/', '/admin/users/nobody/'),
        ('/admin/groups/%s/' % group, '/admin/groups/g-0000000000000000/'),
    ]
    changes = [
        ('POST', '/home/alice/', '/home/nobody/'),
        ('PATCH', '/home/alice/0/', '/home/alice/7/'),
        ('DELETE', '/home/alice/0/', '/home/nobody/0/'),
        ('POST', '/home/alice/0/copy', '/home/alice/7/copy'),
        ('POST', '/home/alice/0/cells', '/home/alice/7/cells'),
        ('PATCH', '/home/alice/0/cells/1', '/home/alice/0/cells/99'),
        ('POST', '/home/alice/0/cells/0/evaluate', '/home/alice/0/cells/99/evaluate'),
        ('DELETE', '/home/alice/0/data/notes.txt', '/home/alice/0/data/other.txt'),
        ('POST', '/home/alice/0/data/notes.txt/rename', '/home/alice/0/data/x.txt/rename'),
        ('PUT', '/home/alice/0/data/notes.txt', '/home/alice/0/data/other.txt'),
        ('POST', '/home/alice/0/data/', '/home/alice/7/data/'),
        ('POST', '/home/alice/0/complete', '/home/alice/7/complete'),
        ('POST', '/home/alice/0/interrupt', '/home/alice/7/interrupt'),
        ('POST', '/home/alice/0/cells/1/move', '/home/alice/0/cells/99/move'),
        ('POST', '/home/alice/action', '/home/nobody/action'),
        ('POST', '/home/alice/import', '/home/nobody/import'),
        ('POST', '/admin/users/alice/suspend', '/admin/users/nobody/suspend'),
        ('POST', '/admin/groups/%s/delete' % group, '/admin/groups/g-0000000000000000/delete'),
    ]
    return [('GET', a, b) for a, b in gets] + changes


def answer(app, method, path, headers=None, json=False, csrf=None):
    """(status, Location, body) with the path itself and per-session tokens taken out."""
    headers = dict(headers or {})
    if json:
        headers.update(JSON)
    if method == 'GET':
        res = app.get(path, headers=headers, status='*')
    elif json:
        res = app.request(path, method=method, body=b'{"name": "x", "input": "x"}',
                          content_type='application/json', headers=headers,
                          expect_errors=True)
    else:
        res = app.request(path, method=method, body=('csrf_token=%s' % csrf).encode(),
                          content_type='application/x-www-form-urlencoded',
                          headers=headers, expect_errors=True)
    def unpathed(text):
        for form in (path.replace('&', '%26'), path, path.split('?')[0]):
            text = text.replace(form, '<path>')
        return text
    body = unpathed(res.text)
    body = re.sub(r'(name="csrf[-_]token" (?:value|content)=)"[^"]*"', r'\1""', body)
    location = unpathed(res.headers.get('Location', ''))
    return res.status_int, location, res.content_type, body


def same_answers(app, world, **kw):
    for method, there, missing in pairs(world):
        got = answer(app, method, there, **kw)
        expected = answer(app, method, missing, **kw)
        yield method, there, got, expected


def test_anonymous_browsers_get_the_login_page_for_all(notebook, world):
    visitor = webtest.TestApp(notebook.app, extra_environ={'HTTP_HOST': 'localhost:80'})
    csrf = csrf_token_of(visitor.get('/login'))
    for method, there, got, expected in same_answers(visitor, world, csrf=csrf):
        assert got == expected, (method, there)
        assert got[0] == 302 and got[1].startswith('http://localhost/login?came_from=<path>')


def test_anonymous_scripts_get_401_for_all(notebook, world):
    visitor = webtest.TestApp(notebook.app, extra_environ={'HTTP_HOST': 'localhost:80'})
    for headers in ({}, {'Authorization': 'Bearer snb_not-a-token'}):
        for method, there, got, expected in same_answers(visitor, world, json=True,
                                                         headers=headers):
            assert got == expected, (method, there)
            assert got[0] == 401 and got[2] == 'application/json', got


def test_a_user_who_may_not_see_gets_404_for_all(notebook, world):
    bob = webtest.TestApp(notebook.app, extra_environ={'HTTP_HOST': 'localhost:80'})
    csrf = login(bob, 'bob')
    for method, there, got, expected in same_answers(bob, world, csrf=csrf):
        assert got == expected, (method, there)
        assert got[0] == 404 and 'not found: <path>' in got[3], got
    api = Api(bob, notebook.token('bob'))
    for method, there, got, expected in same_answers(bob, world, json=True,
                                                     headers=api.headers):
        assert got == expected, (method, there)
        assert got[0] == 404 and got[3] == '{"error": "not found: <path>"}', got


def test_who_may_see_is_still_told_what_they_may_not_do(notebook, world):
    """A viewer knows the worksheet exists: a change is 403 with a message, not 404."""
    notebook.add_user('vera')
    with notebook.transaction() as root:
        ws = root.user_by_login('alice')['0']
        ws.viewers.append('userid:' + root.user_by_login('vera').id)
    vera = Api(webtest.TestApp(notebook.app, extra_environ={'HTTP_HOST': 'localhost:80'}),
               notebook.token('vera'))
    assert vera.get('/home/alice/0/')['name'] == 'Secret plans'
    assert vera.patch('/home/alice/0/', {'name': 'mine'}, status=403)['error']
    assert vera.get('/home/alice/0/cells/99', status=404) == {
        'error': 'not found: /home/alice/0/cells/99'}


def test_public_pages_still_say_what_they_say(notebook):
    """A 404 that a public page gives on purpose is not turned into a login page."""
    visitor = webtest.TestApp(notebook.app, extra_environ={'HTTP_HOST': 'localhost:80'})
    visitor.get('/static/no-such-file.css', status=404)
    res = visitor.get('/forgot', status=404)  # this server sends no mail
    assert 'sends no mail' in res.text


def test_without_the_csrf_token_the_answers_are_the_same_too(notebook, world):
    """The CSRF check comes after the permission check: a form posted without its token
    tells no more than one with it."""
    visitor = webtest.TestApp(notebook.app, extra_environ={'HTTP_HOST': 'localhost:80'})
    for method, there, got, expected in same_answers(visitor, world, csrf=''):
        assert got == expected and got[0] == 302, (method, there)
    bob = webtest.TestApp(notebook.app, extra_environ={'HTTP_HOST': 'localhost:80'})
    login(bob, 'bob')
    for method, there, got, expected in same_answers(bob, world, csrf=''):
        assert got == expected and got[0] == 404, (method, there)


def test_a_miss_at_the_root_is_an_honest_404(notebook, world):
    """The root's names are the application's own, the same on every server: a path that
    names none of them tells nothing about anybody, so an anonymous visitor gets 404
    there (a typo is not sent round the login page); below the root, the login page."""
    visitor = webtest.TestApp(notebook.app, extra_environ={'HTTP_HOST': 'localhost:80'})
    res = visitor.get('/nowhere', status=404)
    assert 'not found: /nowhere' in res.text
    assert visitor.get('/nowhere/deeper', headers=JSON, status=404).json == {
        'error': 'not found: /nowhere/deeper'}
    for path in ('/home/nobody/', '/home/alice/nowhere', '/admin/nowhere',
                 '/admin/users/nobody/'):
        assert visitor.get(path, status=302).location.startswith(
            'http://localhost/login?came_from=' + path), path
        assert visitor.get(path, headers=JSON, status=401).json['error']
