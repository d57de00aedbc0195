"""The admin pages (users, groups, server settings, audit log), suspension, and each
user's API tokens and default system, through WebTest on a real database.

Every admin action is tried by a normal user and an anonymous visitor (refused, nothing
changes) and by an admin (it works, and lands in the audit log)."""
import re
import time
from urllib.parse import urlparse

import pytest
import webtest

from sagenb_pyramid import audit
from sagenb_pyramid.security import token_digest

from ..support.notebook import PASSWORD, Api, csrf_token_of, login

JSON = {'Accept': 'application/json'}


# argon2 with its default cost takes ~0.2 s a hash: far too slow for many tests.
pytestmark = pytest.mark.usefixtures('cheap_password_hashes')


def new_browser(notebook):
    return webtest.TestApp(notebook.app, extra_environ={'HTTP_HOST': 'localhost:80',
                                                        'REMOTE_ADDR': '192.0.2.7'})


class Browser:
    """A logged-in browser session and its CSRF token."""

    def __init__(self, notebook, login_name, password=PASSWORD):
        self.app = new_browser(notebook)
        self.csrf = login(self.app, login_name, password)

    def get(self, url, status=200, **kw):
        return self.app.get(url, status=status, **kw)

    def post(self, url, params=None, status=302):
        params = dict(params or {})
        params['csrf_token'] = self.csrf
        return self.app.post(url, params, status=status)


def logged_in(app):
    return app.get('/account', status='*').status_int == 200


@pytest.fixture
def admin(notebook):
    notebook.add_user('root1', admin=True)
    return Browser(notebook, 'root1')


def user_state(notebook, login_name):
    with notebook.transaction() as root:
        user = root.user_by_login(login_name)
        if user is None:
            return None
        return {'admin': user.is_admin, 'suspended': user.suspended,
                'groups': sorted(root.groups[g].name for g in user.group_ids),
                'worksheets': sorted(w.number for w in user.worksheets()),
                'hash': user.password_hash, 'epoch': user.session_epoch}


def fingerprint(notebook):
    """Everything an admin action could change."""
    with notebook.transaction() as root:
        return {
            'users': {login_name: (u.is_admin, u.suspended, u.session_epoch,
                                   u.password_hash, u.email, u.fullname,
                                   tuple(sorted(u.group_ids)), tuple(sorted(u.keys())))
                      for login_name, u in root.home.items()},
            'groups': {g.id: (g.name, g.source) for g in root.groups.values()},
            'settings': dict(getattr(root, 'server_settings', None) or {}),
            'tokens': sorted(root.tokens.keys()),
            'links': len(getattr(root, 'account_tokens', None) or {}),
            'audit': [(e.action, e.target) for e in audit.entries(root)],
        }


def audited(notebook, action, target=None):
    with notebook.transaction() as root:
        return [(e.actor, e.target, e.detail) for e in audit.entries(root)
                if e.action == action and (target is None or e.target == target)]


def make_group(notebook, name, source='local', members=()):
    with notebook.transaction() as root:
        group = root.add_group(name, source)
        for login_name in members:
            root.user_by_login(login_name).group_ids.add(group.id)
        return group.id


def make_worksheets(notebook, login_name, names):
    with notebook.transaction() as root:
        user = root.user_by_login(login_name)
        numbers = []
        for name in names:
            ws = user.create_worksheet(name)
            ws.add_cell('compute', 'print(%r)' % name)
            numbers.append(ws.number)
        return numbers


# === refused to everyone but admins ================================================

def admin_actions(group_id):
    """(method, url, form fields) of every admin page and action."""
    return [
        ('GET', '/admin/', {}),
        ('GET', '/admin/users/', {}),
        ('GET', '/admin/users/?q=bob', {}),
        ('GET', '/admin/users/bob/', {}),
        ('GET', '/admin/groups/', {}),
        ('GET', '/admin/groups/%s/' % group_id, {}),
        ('GET', '/admin/settings', {}),
        ('GET', '/admin/audit', {}),
        ('POST', '/admin/users/', {'login': 'mallory2'}),
        ('POST', '/admin/users/bob/suspend', {}),
        ('POST', '/admin/users/carol/reinstate', {}),
        ('POST', '/admin/users/bob/grant_admin', {}),
        ('POST', '/admin/users/root1/revoke_admin', {}),
        ('POST', '/admin/users/bob/reset_password', {}),
        ('POST', '/admin/users/bob/delete', {'worksheets': 'delete'}),
        ('POST', '/admin/users/bob/delete', {'worksheets': 'handover', 'heir': 'mallory'}),
        ('POST', '/admin/groups/', {'name': 'evil'}),
        ('POST', '/admin/groups/%s/rename' % group_id, {'name': 'evil'}),
        ('POST', '/admin/groups/%s/delete' % group_id, {}),
        ('POST', '/admin/groups/%s/add_member' % group_id, {'login': 'mallory'}),
        ('POST', '/admin/groups/%s/remove_member' % group_id, {'login': 'bob'}),
        ('POST', '/admin/settings', {'sagenb.allow_signup': 'true'}),
    ]


@pytest.fixture
def populated(notebook):
    notebook.add_user('root1', admin=True)
    notebook.add_user('bob')
    notebook.add_user('carol')
    notebook.add_user('mallory')
    with notebook.transaction() as root:
        root.user_by_login('carol').suspended = True
    make_worksheets(notebook, 'bob', ['b0'])
    return make_group(notebook, 'staff', members=['bob'])


def test_a_normal_user_is_refused_every_admin_action(notebook, populated):
    mallory = Browser(notebook, 'mallory')
    api = Api(mallory.app, notebook.token('mallory'))
    before = fingerprint(notebook)
    # The admin pages are not there for her: 404, as for a user that does not exist.
    for method, url, fields in admin_actions(populated):
        path = urlparse(url).path
        if method == 'GET':
            res = mallory.get(url, status=404)
            assert 'not found: ' + path in res.text
            assert api.get(url, status=404) == {'error': 'not found: ' + path}
            assert mallory.get(url, status=404, headers=JSON).json['error']
        else:
            mallory.post(url, fields, status=404)
            assert api.post(url, fields, status=404) == {'error': 'not found: ' + path}
    assert 'Admin' not in mallory.get('/account').text
    assert fingerprint(notebook) == before


def test_an_anonymous_visitor_is_refused_every_admin_action(notebook, populated):
    visitor = new_browser(notebook)
    csrf = csrf_token_of(visitor.get('/login'))
    before = fingerprint(notebook)
    for method, url, fields in admin_actions(populated):
        if method == 'GET':
            res = visitor.get(url, status=302)
            assert '/login?came_from=' in res.headers['Location']
            assert visitor.get(url, headers=JSON, status=401).json['error']
        else:
            res = visitor.post(url, dict(fields, csrf_token=csrf), status=302)
            assert '/login' in res.headers['Location']
            assert visitor.post_json(url, fields, headers=JSON, status=401).json['error']
        # A token that is not (or no longer) one is no way in either.
        visitor.request(url, method=method, headers={'Authorization': 'Bearer snb_nonsense'},
                        status=401)
    assert fingerprint(notebook) == before


def test_admin_actions_need_the_csrf_token(notebook, populated):
    admin = Browser(notebook, 'root1')
    before = fingerprint(notebook)
    for method, url, fields in admin_actions(populated):
        if method == 'POST':
            res = admin.app.post(url, fields, status=400)
            assert 'token' in res.text.lower()
    assert fingerprint(notebook) == before


def test_admin_actions_are_never_gets(notebook, populated):
    admin = Browser(notebook, 'root1')
    before = fingerprint(notebook)
    for method, url, fields in admin_actions(populated):
        if method == 'POST':
            # A page shares its URL with its form's action; the actions have none.
            page = url.endswith('/') or url.endswith('/settings')
            admin.get(url, params=fields, status=200 if page else 404)
    assert fingerprint(notebook) == before


# === users ===========================================================================

def test_admin_link_and_pages_for_an_admin(notebook, admin):
    assert 'id="admin-link"' in admin.get('/account').text
    res = admin.get('/admin/', status=302)
    assert res.headers['Location'].endswith('/admin/users/')
    page = admin.get('/admin/users/')
    assert 'root1' in page.text and 'Add a user' in page.text


def test_add_user_shows_a_temporary_password_that_works(notebook, admin):
    res = admin.post('/admin/users/', {'login': 'newbie', 'email': 'n@example.org',
                                       'fullname': 'New Bie'}, status=201)
    password = re.search(r'id="temporary-password">([^<]+)<', res.text).group(1)
    assert len(password) >= 12
    with notebook.transaction() as root:
        user = root.user_by_login('newbie')
        assert (user.email, user.fullname, user.is_admin) == ('n@example.org', 'New Bie',
                                                              False)
        assert password not in user.password_hash  # only its hash is stored
    assert logged_in(Browser(notebook, 'newbie', password).app)
    assert audited(notebook, 'user_added', 'newbie') == [('root1', 'newbie', '')]
    # Taken, invalid names are refused with a message.
    res = admin.post('/admin/users/', {'login': 'newbie'}, status=409)
    assert 'taken' in res.text
    res = admin.post('/admin/users/', {'login': '1bad name'}, status=400)
    assert 'A username has' in res.text
    res = admin.post('/admin/users/', {'login': 'okname', 'email': 'nope'}, status=400)
    assert 'e-mail' in res.text
    # An admin can be made at once.
    admin.post('/admin/users/', {'login': 'boss2', 'admin': 'true'}, status=201)
    assert user_state(notebook, 'boss2')['admin'] is True


def test_search_and_pagination(notebook, admin):
    with notebook.transaction() as root:
        for i in range(120):
            root.add_user('user%03d' % i, email='u%d@%s.org' % (i, 'odd' if i % 2 else 'even'),
                          fullname='Person Number %d' % i)
    page1 = admin.get('/admin/users/', headers=JSON).json
    assert page1['total'] == 121 and page1['pages'] == 3 and len(page1['users']) == 50
    assert page1['users'][0]['login'] == 'root1'
    page3 = admin.get('/admin/users/?page=3', headers=JSON).json
    assert [u['login'] for u in page3['users']] == ['user%03d' % i for i in range(99, 120)]
    # By login, by name and by e-mail, in any case.
    assert [u['login'] for u in admin.get('/admin/users/?q=USER05', headers=JSON).json[
        'users']] == ['user%03d' % i for i in range(50, 60)]
    found = admin.get('/admin/users/?q=number 7', headers=JSON).json
    assert {u['login'] for u in found['users']} == {'user007'} | {
        'user%03d' % i for i in range(70, 80)}
    assert admin.get('/admin/users/?q=@odd.org', headers=JSON).json['total'] == 60
    html = admin.get('/admin/users/?q=odd.org&page=2')
    assert '60 users matching' in html.text and 'Page 2 of 2' in html.text
    assert 'rel="prev"' in html.text and 'rel="next"' not in html.text
    admin.get('/admin/users/?page=0', status=400)
    admin.get('/admin/users/?page=x', status=400)
    assert admin.get('/admin/users/?q=zzz', headers=JSON).json['users'] == []


def test_user_page_shows_details(notebook, admin):
    notebook.add_user('bob')
    make_worksheets(notebook, 'bob', ['one', 'two'])
    make_group(notebook, 'staff', members=['bob'])
    info = admin.get('/admin/users/bob/', headers=JSON).json
    assert info['groups'] == ['staff'] and info['worksheets'] == 2
    assert not info['suspended'] and not info['is_admin']
    page = admin.get('/admin/users/bob/')
    assert 'data-action="suspend"' in page.text and 'staff' in page.text
    admin.get('/admin/users/nobody/', status=404)


def test_suspension_cuts_sessions_and_tokens_at_once(notebook, admin):
    notebook.add_user('bob')
    bob = Browser(notebook, 'bob')
    bob_api = Api(bob.app, notebook.token('bob'))
    assert logged_in(bob.app)
    assert bob_api.get('/home/bob/')['worksheets'] == []

    admin.post('/admin/users/bob/suspend')
    # The very next request of either is anonymous.
    res = bob.get('/home/bob/', status=302)
    assert '/login' in res.headers['Location']
    assert bob_api.get('/home/bob/', status=401)['error']
    bob_api.post('/home/bob/', {'name': 'sneaky'}, status=401)
    assert user_state(notebook, 'bob')['worksheets'] == []
    # Logging in again does not get them in either.
    relogin = new_browser(notebook)
    page = relogin.get('/login')
    relogin.post('/login', {'login': 'bob', 'password': PASSWORD,
                            'csrf_token': csrf_token_of(page)}, status='*')
    assert not logged_in(relogin)
    assert 'suspended' in admin.get('/admin/users/bob/').text
    assert audited(notebook, 'user_suspended', 'bob') == [('root1', 'bob', '')]

    admin.post('/admin/users/bob/reinstate')
    # Tokens work again; the session of before the suspension stays dead.
    assert bob_api.get('/home/bob/')['worksheets'] == []
    assert not logged_in(bob.app)
    assert logged_in(Browser(notebook, 'bob').app)
    assert audited(notebook, 'user_reinstated', 'bob') == [('root1', 'bob', '')]


def test_grant_and_revoke_admin(notebook, admin):
    notebook.add_user('bob')
    bob = Browser(notebook, 'bob')
    bob.get('/admin/users/', status=404)
    admin.post('/admin/users/bob/grant_admin')
    assert bob.get('/admin/users/').status_int == 200  # at once, same session
    admin.post('/admin/users/bob/revoke_admin')
    bob.get('/admin/users/', status=404)
    assert [a for a, t, d in audited(notebook, 'admin_granted')] == ['root1']
    assert [a for a, t, d in audited(notebook, 'admin_revoked')] == ['root1']


def test_the_last_admin_cannot_be_removed(notebook, admin):
    before = fingerprint(notebook)
    for action in ('revoke_admin', 'suspend'):
        res = admin.post('/admin/users/root1/' + action, status=409)
        assert 'last active admin' in res.text
    res = admin.post('/admin/users/root1/delete', {'worksheets': 'delete'}, status=409)
    assert 'own account' in res.text
    assert fingerprint(notebook) == before
    # A suspended admin is no admin: the other active one is still the last.
    notebook.add_user('root2', admin=True)
    admin.post('/admin/users/root2/suspend')
    admin.post('/admin/users/root1/revoke_admin', status=409)
    root2_api = Api(admin.app, notebook.token('root2'))
    root2_api.post('/admin/users/root1/revoke_admin', status=401)
    admin.post('/admin/users/root2/reinstate')
    # With a second admin, one may step down (and is sent away from the admin pages).
    res = admin.post('/admin/users/root1/revoke_admin')
    assert res.headers['Location'] == 'http://localhost/'
    assert not user_state(notebook, 'root1')['admin']
    admin.get('/admin/users/', status=404)
    # ... and now root2 is the last one, also for suspension and deletion by a token.
    res = root2_api.post('/admin/users/root2/suspend', status=409)
    assert 'last active admin' in res['error']
    res = root2_api.post('/admin/users/root2/delete', {'worksheets': 'delete'}, status=409)
    assert res['error']
    assert user_state(notebook, 'root2')['admin'] and not user_state(notebook, 'root2')[
        'suspended']


def choose_password(notebook, path, password):
    """Follow a reset link (a path) and set ``password``; returns the visitor's app."""
    visitor = new_browser(notebook)
    form = visitor.get(path)
    assert 'New password for' in form.text
    visitor.post(path, {'password': password, 'password2': password,
                        'csrf_token': csrf_token_of(form)}, status=302)
    return visitor


def test_reset_link_without_mail_is_shown_to_the_admin(notebook, admin):
    notebook.add_user('bob')
    bob = Browser(notebook, 'bob')
    admin.post('/admin/users/bob/reset_password')
    page = admin.get('/admin/users/bob/')
    link = re.search(r'(http://localhost/reset/[\w-]+)', page.text).group(1)
    assert link not in admin.get('/admin/users/bob/').text  # shown once
    assert audited(notebook, 'password_reset_link', 'bob') == [
        ('root1', 'bob', 'shown to the admin')]
    assert logged_in(bob.app)  # the old password works until the link is used
    path = urlparse(link).path
    choose_password(notebook, path, 'a brand new one')
    assert logged_in(Browser(notebook, 'bob', 'a brand new one').app)
    assert not logged_in(bob.app)  # the old session ended
    new_browser(notebook).get(path, status=400)  # used up
    # By the API the link comes back in the answer.
    api = Api(admin.app, notebook.token('root1'))
    answer = api.post('/admin/users/bob/reset_password', status=200)
    assert answer['reset_link'].startswith('http://localhost/reset/')


@pytest.fixture
def smtp():
    from ..support.smtp import SmtpServer
    with SmtpServer() as server:
        yield server


@pytest.fixture
def mailing_notebook(tmp_path, smtp):
    from ..support.notebook import Notebook
    nb = Notebook(tmp_path / 'mail', **{'sagenb.mail.host': '127.0.0.1',
                                        'sagenb.mail.port': str(smtp.port)})
    yield nb
    nb.close()


def test_with_mail_reset_links_and_invitations_go_by_mail(mailing_notebook, smtp):
    notebook = mailing_notebook
    notebook.add_user('root1', admin=True)
    notebook.add_user('bob')
    with notebook.transaction() as root:
        root.user_by_login('bob').email = 'bob@example.org'
    admin = Browser(notebook, 'root1')
    res = admin.post('/admin/users/bob/reset_password')
    assert 'admin_reset_link' not in res.text
    [mail] = smtp.wait(1)
    assert mail.recipients == ['bob@example.org']
    assert '/reset/' not in admin.get('/admin/users/bob/').text  # nothing for the admin
    # A second one at once is refused (no mail bombing through the admin either).
    admin.post('/admin/users/bob/reset_password', status=429)
    [link] = [u for u in mail.links() if '/reset/' in u]
    choose_password(notebook, urlparse(link).path, 'chosen by bob')
    assert logged_in(Browser(notebook, 'bob', 'chosen by bob').app)

    # An invitation: no password at all until the link is followed.
    page = admin.get('/admin/users/')
    assert 'name="invite"' in page.text
    admin.post('/admin/users/', {'login': 'invitee', 'invite': 'true'}, status=400)
    res = admin.post('/admin/users/', {'login': 'invitee', 'email': 'inv@example.org',
                                       'invite': 'true'}, status=201)
    assert 'on its way to inv@example.org' in res.text
    assert 'temporary-password' not in res.text
    mail = smtp.wait(2)[1]
    assert mail.recipients == ['inv@example.org'] and 'invitee' in mail.body
    with notebook.transaction() as root:
        assert root.user_by_login('invitee').password_hash is None
    [link] = [u for u in mail.links() if '/reset/' in u]
    choose_password(notebook, urlparse(link).path, 'invited and in')
    assert logged_in(Browser(notebook, 'invitee', 'invited and in').app)
    assert audited(notebook, 'user_added', 'invitee') == [
        ('root1', 'invitee', 'invited by mail')]


def test_invitation_without_mail_is_refused(notebook, admin):
    assert 'name="invite"' not in admin.get('/admin/users/').text
    before = fingerprint(notebook)
    res = admin.post('/admin/users/', {'login': 'invitee', 'email': 'i@example.org',
                                       'invite': 'true'}, status=409)
    assert 'sends no mail' in res.text
    assert fingerprint(notebook) == before


def test_delete_user_and_their_worksheets(notebook, admin):
    notebook.add_user('bob')
    make_worksheets(notebook, 'bob', ['one', 'two'])
    bob_token = notebook.token('bob')
    bob = Browser(notebook, 'bob')
    res = admin.post('/admin/users/bob/delete', {'worksheets': 'bad'}, status=400)
    assert 'delete' in res.text
    admin.post('/admin/users/bob/delete', {'worksheets': 'handover', 'heir': 'ghost'},
               status=400)
    admin.post('/admin/users/bob/delete', {'worksheets': 'handover', 'heir': 'bob'},
               status=400)
    assert user_state(notebook, 'bob') is not None
    res = admin.post('/admin/users/bob/delete', {'worksheets': 'delete'})
    assert res.headers['Location'].endswith('/admin/users/')
    assert user_state(notebook, 'bob') is None
    with notebook.transaction() as root:
        assert token_digest(bob_token) not in root.tokens
        assert all(u.login != 'bob' for u in root.users_by_id.values())
    assert not logged_in(bob.app)
    Api(bob.app, bob_token).get('/tokens', status=401)
    admin.get('/home/bob/1/', status=404)
    assert audited(notebook, 'user_deleted', 'bob') == [
        ('root1', 'bob', '2 worksheet(s) deleted')]


def test_an_admin_only_reads_other_users_worksheets(notebook, admin):
    """Issue 18: admins see other users' worksheets read-only, through the API too: an
    admin's token may look, download and copy, and nothing else; each refusal says why
    and changes nothing.  Their own worksheets and the admin pages work as before."""
    notebook.add_user('bob')
    make_worksheets(notebook, 'bob', ['plans'])
    with notebook.transaction() as root:
        ws = root.user_by_login('bob')['0']
        ws.add_cell('text', 'the plan')
        ws.data_files().add_file('notes.txt', b'notes')
    boss = Api(admin.app, notebook.token('root1'))
    ws_path = '/home/bob/0/'
    before = boss.get(ws_path)
    assert before['name'] == 'plans' and before['trusted'] is False
    cell = before['cells'][-1]['id']
    assert admin.app.get(ws_path + 'download.ipynb', headers=boss.headers).status_int == 200
    assert admin.app.get('/home/bob/download.zip', headers=boss.headers).status_int == 200
    assert boss.get('/home/bob/')['worksheets'][0]['name'] == 'plans'
    copy = boss.post(ws_path + 'copy', {'name': 'for review'}, status=201)
    assert copy['owner'] == 'root1'
    refused = [
        (boss.patch, ws_path, {'name': 'mine'}, 'not change it'),
        (boss.patch, ws_path + 'cells/%d' % cell, {'input': 'changed'}, 'not change it'),
        (boss.post, ws_path + 'cells', {'type': 'text'}, 'not change it'),
        (boss.post, ws_path + 'cells/%d/evaluate' % cell, {}, 'not run'),
        (boss.post, ws_path + 'evaluate_all', {}, 'not run'),
        (boss.post, ws_path + 'interrupt', {}, 'not run'),
        (boss.post, ws_path + 'restart', {}, 'not run'),
        (boss.post, ws_path + 'clear_outputs', {}, 'not change it'),
        (boss.post, ws_path + 'data', {'name': 'x.txt', 'content': 'x'}, 'not change it'),
        (boss.post, ws_path + 'data/notes.txt/rename', {'name': 'y.txt'}, 'not change it'),
        (boss.post, ws_path + 'trust', {}, 'only the owner'),
        (boss.post, '/home/bob/', {'name': 'planted'}, 'only the owner'),
    ]
    for method, path, body, says in refused:
        answer = method(path, body, status=403)
        assert says in answer['error'], (path, answer)
    for path in (ws_path + 'data/notes.txt', ws_path):
        assert says_only_the_owner(boss.delete(path, status=403)), path
    res = admin.app.post('/home/bob/import', upload_files=[
        ('file', 'n.ipynb', b'{"cells": [], "metadata": {}, "nbformat": 4, '
                            b'"nbformat_minor": 5}')], headers=boss.headers, status=403)
    assert res.json['error']
    after = Api(admin.app, notebook.token('bob')).get(ws_path)
    assert after['cells'] == before['cells'] and after['name'] == 'plans'
    assert [f['name'] for f in after['data_files']] == ['notes.txt']
    with notebook.transaction() as root:
        assert sorted(root.user_by_login('bob').keys()) == ['0']
    # Their own worksheet (the copy) is theirs to change; the admin pages still work.
    own = copy['url'].replace('http://localhost', '')
    assert boss.patch(own, {'name': 'reviewed'}, status=200)['name'] == 'reviewed'
    assert boss.post('/admin/users/bob/suspend', {}, status=200)['suspended'] is True
    assert boss.post('/admin/users/bob/reinstate', {}, status=200)['suspended'] is False


def says_only_the_owner(answer):
    return 'not change it' in answer['error'] or 'only the owner' in answer['error']


def test_delete_user_hands_worksheets_to_another(notebook, admin):
    notebook.add_user('bob')
    notebook.add_user('heir')
    notebook.add_user('carol')
    make_worksheets(notebook, 'heir', ['mine0', 'mine1', 'mine2'])
    make_worksheets(notebook, 'bob', ['b0', 'b1'])
    with notebook.transaction() as root:
        heir, carol = root.user_by_login('heir'), root.user_by_login('carol')
        shared = root.user_by_login('bob')['1']
        shared.collaborators.append('userid:' + heir.id)
        shared.viewers.append('userid:' + carol.id)
        shared.set_state(root.user_by_login('bob').id, 'archive')
    admin.post('/admin/users/bob/delete', {'worksheets': 'handover', 'heir': 'heir'})
    assert user_state(notebook, 'bob') is None
    with notebook.transaction() as root:
        heir = root.user_by_login('heir')
        got = {w.number: (w.name, w.owner_id, w.cells[str(w.cell_order[-1])].input)
               for w in heir.worksheets()}
        assert got[3] == ('b0', heir.id, "print('b0')")
        assert got[4] == ('b1', heir.id, "print('b1')")
        moved = heir['4']
        assert list(moved.collaborators) == []  # the owner needs no share
        assert list(moved.viewers) == ['userid:' + carol.id]
        assert moved.state_for(heir.id) == 'archive'
        assert heir.next_worksheet_number == 5
    heir_browser = Browser(notebook, 'heir')
    assert 'b1' in heir_browser.get('/home/heir/4/').text
    listing = Api(heir_browser.app, notebook.token('heir')).get('/home/heir/', state='all')
    assert len(listing['worksheets']) == 5
    assert audited(notebook, 'user_deleted', 'bob') == [
        ('root1', 'bob', '2 worksheet(s) handed to heir')]


def test_deleting_a_user_stops_their_sage_processes(notebook, admin):
    """The worker registry is told to drop the worksheets' processes after the commit."""
    notebook.add_user('bob')
    numbers = make_worksheets(notebook, 'bob', ['a', 'b'])
    with notebook.transaction() as root:
        bob_id = root.user_by_login('bob').id
    discarded = []
    real = notebook.workers.discard
    notebook.workers.discard = lambda key: (discarded.append(key), real(key))
    try:
        admin.post('/admin/users/bob/delete', {'worksheets': 'delete'})
    finally:
        notebook.workers.discard = real
    assert sorted(discarded) == [(bob_id, n) for n in numbers]


# === groups ==========================================================================

def test_groups_create_rename_members_delete(notebook, admin):
    notebook.add_user('bob')
    notebook.add_user('carol')
    res = admin.post('/admin/groups/', {'name': 'Algebra 101'})
    group_id = res.headers['Location'].rstrip('/').rsplit('/', 1)[1]
    assert group_id.startswith('g-')
    admin.post('/admin/groups/', {'name': 'Algebra 101'}, status=409)
    admin.post('/admin/groups/', {'name': ''}, status=400)
    admin.post('/admin/groups/', {'name': 'a/b'}, status=400)
    base = '/admin/groups/%s/' % group_id
    admin.post(base + 'add_member', {'login': 'bob'})
    admin.post(base + 'add_member', {'login': 'carol'})
    admin.post(base + 'add_member', {'login': 'ghost'}, status=400)
    assert user_state(notebook, 'bob')['groups'] == ['Algebra 101']
    page = admin.get(base)
    assert 'data-login="bob"' in page.text and 'data-login="carol"' in page.text
    assert 'userid' not in page.text
    # Members become the group's principal at once.
    bob = Browser(notebook, 'bob')
    with notebook.transaction() as root:
        assert 'group:' + group_id in root.user_by_login('bob').principals()
    admin.post(base + 'remove_member', {'login': 'carol'})
    assert user_state(notebook, 'carol')['groups'] == []
    admin.post(base + 'rename', {'name': 'Algebra 102'})
    assert user_state(notebook, 'bob')['groups'] == ['Algebra 102']
    listing = admin.get('/admin/groups/', headers=JSON).json['groups']
    assert listing == [{'id': group_id, 'name': 'Algebra 102', 'source': 'local',
                        'members': 1}]
    admin.post(base + 'delete')
    assert user_state(notebook, 'bob')['groups'] == []
    admin.get(base, status=404)
    actions = [e for e in ('group_added', 'group_member_added', 'group_member_removed',
                           'group_renamed', 'group_deleted') if audited(notebook, e)]
    assert len(actions) == 5
    assert logged_in(bob.app)


def test_directory_groups_are_not_edited_by_hand(notebook, admin):
    notebook.add_user('bob')
    group_id = make_group(notebook, 'physics', source='ldap', members=['bob'])
    base = '/admin/groups/%s/' % group_id
    page = admin.get(base)
    assert 'comes from ldap' in page.text and 'add_member' not in page.text
    assert 'synced at login' in admin.get('/admin/groups/').text
    before = fingerprint(notebook)
    for action, fields in (('rename', {'name': 'x'}), ('add_member', {'login': 'root1'}),
                           ('remove_member', {'login': 'bob'})):
        res = admin.post(base + action, fields, status=409)
        assert 'synced' in res.text
    assert fingerprint(notebook) == before
    # A local group of the same name may exist beside it.
    admin.post('/admin/groups/', {'name': 'physics'})
    admin.post(base + 'delete')
    assert user_state(notebook, 'bob')['groups'] == []


# === settings ========================================================================

def test_server_settings_page(notebook, admin):
    page = admin.get('/admin/settings')
    assert 'sagenb.allow_signup' in page.text
    assert 'name="sagenb.allow_signup" value="true" checked' in page.text  # testing.ini
    form = {'sagenb.signup.captcha': 'builtin', 'sagenb.workers.max_per_user': '3',
            'sagenb.workers.idle_timeout': '900'}  # the sign-up checkbox left unticked
    admin.post('/admin/settings', form)
    with notebook.transaction() as root:
        assert dict(root.server_settings) == {
            'sagenb.allow_signup': 'false', 'sagenb.signup.captcha': 'builtin',
            'sagenb.workers.max_per_user': '3', 'sagenb.workers.idle_timeout': '900',
            'sagenb.signup.require_email_confirmation': 'false'} or \
            root.server_settings['sagenb.allow_signup'] == 'false'
    assert notebook.workers.max_per_user == 3 and notebook.host.idle_timeout == 900
    assert admin.get('/admin/settings', headers=JSON).json['settings'][
        'sagenb.workers.max_per_user'] == '3'
    assert [t for a, t, d in audited(notebook, 'setting_changed')].count(
        'sagenb.workers.max_per_user') == 1
    before = fingerprint(notebook)
    for bad in ({'sagenb.workers.max_per_user': '-1'}, {'sagenb.workers.max_per_user': 'x'},
                {'sagenb.signup.captcha': 'magic'}, {'sagenb.secret': 'x'},
                {'data_dir': '/tmp'}):
        res = admin.post('/admin/settings', dict(form, **bad), status=400)
        assert 'Traceback' not in res.text
    api = Api(admin.app, notebook.token('root1'))
    assert api.post('/admin/settings', {'sagenb.allow_signup': 'maybe'}, status=400)['error']
    assert fingerprint(notebook)['settings'] == before['settings']
    answer = api.post('/admin/settings', {'sagenb.allow_signup': True}, status=200)
    assert answer['changed'] == {'sagenb.allow_signup': 'true'}


# === audit log =======================================================================

def test_audit_log_page_search_and_pages(notebook, admin):
    notebook.add_user('bob')
    admin.post('/admin/users/bob/suspend')
    admin.post('/admin/users/bob/reinstate')
    with notebook.transaction() as root:
        for i in range(60):
            audit.record(None, 'filler', 'thing%d' % i, actor='script', root=root)
    page = admin.get('/admin/audit')
    assert 'thing59' in page.text and 'user_suspended' not in page.text
    assert 'rel="next"' in page.text
    older = admin.get('/admin/audit?page=2')
    assert 'user_suspended' in older.text and 'root1' in older.text
    found = admin.get('/admin/audit?q=SUSPENDED', headers=JSON).json['entries']
    assert [(e['actor'], e['action'], e['target']) for e in found] == [
        ('root1', 'user_suspended', 'bob')]
    assert found[0]['address'] == '192.0.2.7' and found[0]['time'] > time.time() - 60
    assert admin.get('/admin/audit?q=nothing-like-it', headers=JSON).json['entries'] == []


# === 10,000 users ====================================================================

def test_ten_thousand_users(notebook, admin):
    with notebook.transaction() as root:
        for i in range(10_000):
            root.add_user('student%05d' % i, email='s%05d@uni.example' % i,
                          fullname='Student %d' % i)
    # A fresh connection cache, as on a busy server.
    notebook.db.cacheMinimize()
    timings = {}
    for url in ('/admin/users/', '/admin/users/?page=150', '/admin/users/?q=student0999',
                '/admin/users/?q=S09999@UNI', '/admin/users/?q=nobody-has-this'):
        started = time.perf_counter()
        res = admin.get(url)
        timings[url] = time.perf_counter() - started
        assert res.status_int == 200
    print('\nadmin user list with 10,001 users: ' + ', '.join(
        '%s %.3f s' % (url, t) for url, t in timings.items()))
    assert '10001 users' in admin.get('/admin/users/').text
    assert 'student09999' in admin.get('/admin/users/?q=S09999@UNI').text
    assert admin.get('/admin/users/?q=student0999', headers=JSON).json['total'] == 10


# === API tokens and default system ==================================================

def test_api_tokens_page_list_create_revoke(notebook):
    notebook.add_user('bob')
    notebook.add_user('carol')
    bob = Browser(notebook, 'bob')
    assert 'API tokens' in bob.get('/account').text
    res = bob.post('/tokens', {'label': 'laptop'}, status=201)
    token = re.search(r'<code class="secret">([^<]+)</code>', res.text).group(1)
    prefix = token_digest(token)[:12]
    assert token not in bob.get('/tokens').text  # shown once
    listed = bob.get('/tokens', headers=JSON).json['tokens']
    assert [(t['prefix'], t['label'], t['last_used']) for t in listed] == [
        (prefix, 'laptop', None)]
    api = Api(new_browser(notebook), token)
    assert api.get('/home/bob/')['worksheets'] == []
    listed = bob.get('/tokens', headers=JSON).json['tokens']
    assert listed[0]['last_used'] > time.time() - 60
    # Tokens are per user: carol sees none of bob's and cannot revoke them.
    carol = Browser(notebook, 'carol')
    assert carol.get('/tokens', headers=JSON).json['tokens'] == []
    carol.post('/revoke_token', {'prefix': prefix}, status=404)
    bob.post('/revoke_token', {'prefix': prefix[:4]}, status=400)
    assert api.get('/home/bob/')['worksheets'] == []
    bob.post('/revoke_token', {'prefix': prefix})
    api.get('/home/bob/', status=401)
    assert bob.get('/tokens', headers=JSON).json['tokens'] == []
    # A script makes no tokens (tests/functional/accounts/test_tokens.py), but may list them.
    made = api_for_new_token(notebook, 'bob')
    assert [t['label'] for t in made.get('/tokens')['tokens']] == ['']
    # Anonymous visitors get nothing.
    visitor = new_browser(notebook)
    visitor.get('/tokens', headers=JSON, status=401)
    visitor.post('/tokens', {'label': 'x', 'csrf_token': csrf_token_of(visitor.get('/login'))},
                 status=302)
    assert [a for a, t, d in audited(notebook, 'token_created')] == ['bob']


def api_for_new_token(notebook, login_name):
    return Api(new_browser(notebook), notebook.token(login_name))


def test_default_system_for_new_worksheets(notebook):
    notebook.add_user('bob')
    bob = Browser(notebook, 'bob')
    assert '<option value="sage" selected>' in bob.get('/account').text
    bob.post('/default_system', {'system': 'python'})
    assert '<option value="python" selected>' in bob.get('/account').text
    res = bob.post('/home/bob/', {'name': 'py'})
    with notebook.transaction() as root:
        assert root.user_by_login('bob')['0'].system == 'python'
    assert res.headers['Location'].endswith('/home/bob/0/')
    for bad in ('', 'Py thon', 'x' * 40, '../etc'):
        bob.post('/default_system', {'system': bad}, status=400)
    api = api_for_new_token(notebook, 'bob')
    assert api.post('/default_system', {'system': 'gp'}, status=200) == {
        'default_system': 'gp'}
    api.post('/default_system', {'system': ['gp']}, status=400)


def test_every_app_server_reads_worker_limits_set_in_the_browser(notebook):
    """Other app servers and worker hosts (here: this server's, reading the database)
    take the limits an admin stored, not only the server that saved them."""
    from sagenb_pyramid import server_settings
    assert notebook.workers.max_per_user == 25
    assert notebook.host.idle_timeout == 600
    with notebook.transaction() as root:
        server_settings.set_value(root, 'sagenb.workers.max_per_user', 3)
        server_settings.set_value(root, 'sagenb.workers.idle_timeout', 77)
    with notebook.transaction() as root:
        notebook.workers.read_server_settings(root)
    notebook.host.read_server_settings()
    assert notebook.workers.max_per_user == 3
    assert notebook.host.idle_timeout == 77.0
