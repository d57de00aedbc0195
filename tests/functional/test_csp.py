"""Security headers of every response (csp.py), the scripts of the pages, the output
frame, and the trust flag of worksheets (WebTest; no browser, no Sage)."""
import html.parser
import json
import re

import pytest
import webtest

from ..support.notebook import Api, Notebook, login

pytestmark = pytest.mark.usefixtures('cheap_password_hashes')

JSON = {'Accept': 'application/json'}


@pytest.fixture
def site(notebook):
    notebook.add_user('boss', admin=True)
    notebook.add_user('alice')
    notebook.add_user('bob')
    with notebook.transaction() as root:
        alice, bob = root.user_by_login('alice'), root.user_by_login('bob')
        ws = alice.create_worksheet('Shared')
        ws.ordered_cells()[0].input = '1 + 1'
        ws.collaborators.append('userid:' + bob.id)
        ws.data_files().add_file('page.html', b'<script>alert(1)</script>')
    return notebook


def browser_for(notebook, login_name):
    app = webtest.TestApp(notebook.app, extra_environ={'HTTP_HOST': 'localhost:80'})
    login(app, login_name)
    return app


def directives(response):
    policy = response.headers.get('Content-Security-Policy')
    assert policy, 'no Content-Security-Policy on %s' % response.request.path
    return {part.split()[0]: part.split()[1:] for part in policy.split(';') if part.strip()}


class Scripts(html.parser.HTMLParser):
    """Every <script> of a page, and every attribute that would be an inline handler."""

    def __init__(self):
        super().__init__()
        self.scripts, self.handlers, self.javascript_urls = [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == 'script':
            self.scripts.append(attrs)
        for name, value in attrs.items():
            if name.startswith('on'):
                self.handlers.append((tag, name))
            if value and re.match(r'\s*javascript:', value, re.I):
                self.javascript_urls.append((tag, name))


def page_scripts(response):
    parser = Scripts()
    parser.feed(response.text)
    return parser


def assert_page_policy(response):
    found = directives(response)
    script_src = found['script-src']
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    assert found['object-src'] == ["'none'"]
    assert found['base-uri'] == ["'none'"]
    assert found['frame-ancestors'] == ["'self'"]
    assert found['img-src'] == ["'self'", 'data:', 'blob:']  # no remote images
    assert response.headers['X-Content-Type-Options'] == 'nosniff'
    assert response.headers['Referrer-Policy'] in ('same-origin', 'no-referrer')
    if response.content_type == 'text/html':
        parsed = page_scripts(response)
        assert parsed.handlers == [] and parsed.javascript_urls == []
        nonces = [n[len("'nonce-"):-1] for n in script_src if n.startswith("'nonce-")]
        for script in parsed.scripts:
            if script.get('type') == 'application/json':
                continue  # data, never run
            # Every script the page runs is its own: it carries the request's nonce.
            assert nonces and script.get('nonce') == nonces[0], script
            assert script.get('src'), 'an inline script: %r' % script
    return found


def test_every_kind_of_page_has_the_policy(site):
    anonymous = webtest.TestApp(site.app, extra_environ={'HTTP_HOST': 'localhost:80'})
    for path, status in (('/login', 200), ('/home/alice/', 302), ('/nowhere', 404),
                         ('/static/notebook.css', 200)):
        assert_page_policy(anonymous.get(path, status=status))
    boss = browser_for(site, 'boss')
    alice = browser_for(site, 'alice')
    for app, path in ((alice, '/home/alice/'), (alice, '/home/alice/0/'),
                      (alice, '/account'), (alice, '/tokens'), (boss, '/admin/users/'),
                      (boss, '/admin/users/alice/'), (boss, '/home/alice/0/')):
        res = app.get(path)
        found = assert_page_policy(res)
        if '<script' in res.text:
            assert "'strict-dynamic'" in found['script-src']
        else:
            assert found['script-src'] == ["'none'"]
    assert '<script' in alice.get('/home/alice/0/').text
    # JSON answers and errors too.
    assert_page_policy(alice.get('/home/alice/0/', headers=JSON))
    # (Another's home: 404 to whoever may not see it, issue 18 item 6.)
    assert_page_policy(alice.get('/home/bob/', headers=JSON, status=404))


def test_the_nonce_is_fresh_for_every_request(site):
    alice = browser_for(site, 'alice')
    seen = set()
    for _ in range(3):
        res = alice.get('/home/alice/0/')
        (nonce,) = set(re.findall(r'nonce="([^"]+)"', res.text))
        assert "'nonce-%s'" % nonce in res.headers['Content-Security-Policy']
        assert len(nonce) >= 16
        seen.add(nonce)
    assert len(seen) == 3


def test_a_page_without_scripts_allows_none(site):
    anonymous = webtest.TestApp(site.app, extra_environ={'HTTP_HOST': 'localhost:80'})
    assert directives(anonymous.get('/login'))['script-src'] == ["'none'"]


def test_files_keep_their_sandbox_policy(site):
    alice = browser_for(site, 'alice')
    res = alice.get('/home/alice/0/data/page.html')
    assert res.headers['Content-Security-Policy'].startswith('sandbox')
    assert res.headers['X-Content-Type-Options'] == 'nosniff'


def test_the_output_frame(site):
    anonymous = webtest.TestApp(site.app, extra_environ={'HTTP_HOST': 'localhost:80'})
    res = anonymous.get('/_frame')
    found = directives(res)
    # An opaque origin (no cookies, no notebook), scripts of the output run in it.
    assert found['sandbox'] == ['allow-scripts']
    assert found['connect-src'] == ["'none'"]
    assert found['img-src'] == ["'self'", 'data:', 'blob:']
    assert 'frame.js' in res.text and '<script src=' in res.text


def test_usercontent_url_moves_the_frame_to_another_origin(tmp_path):
    nb = Notebook(tmp_path / 'data', **{
        'sagenb.usercontent_url': 'https://usercontent.example.org/'})
    try:
        nb.add_user('alice')
        app = browser_for(nb, 'alice')
        with nb.transaction() as root:
            root.user_by_login('alice').create_worksheet('W')
        res = app.get('/home/alice/0/')
        assert 'data-frame-url="https://usercontent.example.org/_frame"' in res.text
        assert 'https://usercontent.example.org' in directives(res)['frame-src']
        # The same app answers the frame under the other host name, without a session.
        other = webtest.TestApp(nb.app, extra_environ={
            'HTTP_HOST': 'usercontent.example.org:443', 'wsgi.url_scheme': 'https'})
        frame = other.get('/_frame')
        assert directives(frame)['sandbox'] == ['allow-scripts']
        assert 'frame.js' in frame.text
    finally:
        nb.close()


IPYNB = json.dumps({'nbformat': 4, 'nbformat_minor': 5, 'metadata': {}, 'cells': [
    {'cell_type': 'markdown', 'metadata': {}, 'source': 'hello'}]}).encode()


def worksheet_json(app, path):
    return app.get(path, headers=JSON).json


def test_imports_are_untrusted_until_the_owner_trusts_them(site):
    alice = Api(webtest.TestApp(site.app, extra_environ={'HTTP_HOST': 'localhost:80'}),
                site.token('alice'))
    res = alice.testapp.post('/home/alice/import', headers=alice.headers,
                             upload_files=[('file', 'n.ipynb', IPYNB)], status=201)
    path = res.json['worksheets'][0]['url'].replace('http://localhost', '')
    assert alice.get(path)['trusted'] is False
    browser = browser_for(site, 'alice')
    page = browser.get(path)
    assert 'data-trusted="false"' in page.text and 'data-action="trust"' in page.text
    # Someone else may not vouch for it, not even an admin.
    boss = Api(alice.testapp, site.token('boss'))
    assert boss.post(path + 'trust', {}, status=403)['error']
    assert alice.get(path)['trusted'] is False
    assert alice.post(path + 'trust', {'trusted': 'yes'}, status=400)['error']
    assert alice.post(path + 'trust', {}, status=200) == {'trusted': True}
    assert alice.get(path)['trusted'] is True
    assert 'data-trusted="true"' in browser.get(path).text
    # The admin's view of it stays untrusted and read only.
    admin_page = browser_for(site, 'boss').get(path)
    assert 'data-trusted="false"' in admin_page.text
    assert 'data-can-edit="false"' in admin_page.text
    assert 'data-action="clear-all"' not in admin_page.text


def test_a_collaborators_change_makes_the_worksheet_untrusted(site):
    alice = Api(webtest.TestApp(site.app, extra_environ={'HTTP_HOST': 'localhost:80'}),
                site.token('alice'))
    bob = Api(alice.testapp, site.token('bob'))
    path = '/home/alice/0/'
    assert alice.get(path)['trusted'] is True
    # Bob sees Alice's worksheet untrusted, though he may edit it.
    assert bob.get(path)['trusted'] is False
    bob_page = browser_for(site, 'bob').get(path)
    assert 'data-can-edit="true"' in bob_page.text and 'data-trusted="false"' in bob_page.text
    cell = alice.get(path)['cells'][0]['id']
    alice.patch(path + 'cells/%d' % cell, {'input': '2 + 2'}, status=200)
    assert alice.get(path)['trusted'] is True
    bob.patch(path + 'cells/%d' % cell, {'input': '3 + 3'}, status=200)
    assert alice.get(path)['trusted'] is False
    alice.post(path + 'trust', {}, status=200)
    bob.post(path + 'cells/', {'type': 'text', 'input': '<b>hi</b>'}, status=201)
    assert alice.get(path)['trusted'] is False


def test_a_copy_of_someone_elses_worksheet_is_untrusted(site):
    bob = Api(webtest.TestApp(site.app, extra_environ={'HTTP_HOST': 'localhost:80'}),
              site.token('bob'))
    copy = bob.post('/home/alice/0/copy', {'name': 'Mine now'}, status=201)
    assert bob.get(copy['url'].replace('http://localhost', ''))['trusted'] is False
    alice = Api(bob.testapp, site.token('alice'))
    own = alice.post('/home/alice/0/copy', {'name': 'Again'}, status=201)
    assert alice.get(own['url'].replace('http://localhost', ''))['trusted'] is True


def test_an_admin_sees_other_worksheets_read_only(site):
    boss = browser_for(site, 'boss')
    page = boss.get('/home/alice/0/')
    assert 'data-can-edit="false"' in page.text
    assert 'data-action="evaluate-all"' not in page.text
    own = browser_for(site, 'alice').get('/home/alice/0/')
    assert 'data-can-edit="true"' in own.text and 'data-action="evaluate-all"' in own.text
