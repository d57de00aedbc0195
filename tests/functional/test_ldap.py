"""Logging in with LDAP against a real ``slapd`` (tests/support/slapd.py) through the login form.

One directory serves the module; each test gets a fresh notebook.  Tests that change
entries restore them.  No mock of ldap3 or of the directory: every login is a real bind.
"""
import html
import socket
import threading
import time

import pytest
import webtest

from sagenb_pyramid import audit
from sagenb_pyramid.auth.ldap import (
    DIRECTORY_UNAVAILABLE, LOCAL_ACCOUNT, NOT_ALLOWED, WRONG_CREDENTIALS)

from ..support.notebook import PASSWORD, Notebook, csrf_token_of
from ..support.slapd import GROUPS, PASSWORDS, Slapd, free_port, people_dn


# argon2 with its default cost takes ~0.2 s a hash: far too slow for many tests.
pytestmark = pytest.mark.usefixtures('cheap_password_hashes')


@pytest.fixture(scope='module')
def directory(tmp_path_factory):
    server = Slapd(tmp_path_factory.mktemp('slapd')).start()
    yield server
    server.stop()


@pytest.fixture
def make_notebook(tmp_path):
    made = []

    def make(**settings):
        nb = Notebook(tmp_path / ('data%d' % len(made)), **settings)
        made.append(nb)
        return nb
    yield make
    for nb in made:
        nb.close()


@pytest.fixture
def notebook(make_notebook, directory):
    return make_notebook(**directory.settings())


def browser(notebook):
    return webtest.TestApp(notebook.app, extra_environ={'HTTP_HOST': 'localhost:80'})


def post_login(notebook, login_name, password, status='*'):
    app = browser(notebook)
    page = app.get('/login')
    res = app.post('/login', {'login': login_name, 'password': password,
                              'csrf_token': csrf_token_of(page)}, status=status)
    return app, res


def logs_in(notebook, login_name, password):
    app, res = post_login(notebook, login_name, password, status=302)
    assert app.get('/account').status_int == 200
    return app, res


def error_of(res):
    start = res.text.index('class="error"')
    return html.unescape(
        res.text[res.text.index('>', start) + 1:res.text.index('</p>', start)])


def user_info(notebook, login_name):
    with notebook.transaction() as root:
        user = root.user_by_login(login_name)
        if user is None:
            return None
        return {'id': user.id, 'email': user.email, 'fullname': user.fullname,
                'auth_source': user.auth_source, 'ldap_dn': user.ldap_dn,
                'password_hash': user.password_hash, 'is_admin': user.is_admin,
                'groups': sorted((root.groups[g].name, root.groups[g].source)
                                 for g in user.group_ids)}


def audit_actions(notebook):
    with notebook.transaction() as root:
        return [(e.action, e.target, e.detail) for e in audit.entries(root, False)]


def test_ldap_user_logs_in_through_the_form_and_is_created(notebook):
    app, res = logs_in(notebook, 'alice', PASSWORDS['alice'])
    assert res.location.endswith('/home/alice/')
    info = user_info(notebook, 'alice')
    assert info['auth_source'] == 'ldap'
    assert info['email'] == 'alice@example.org'
    assert info['fullname'] == 'Alice Liddell'
    assert info['ldap_dn'] == people_dn('alice')
    assert info['password_hash'] is None
    # displayName wins over cn for the full name.
    logs_in(notebook, 'bob', PASSWORDS['bob'])
    assert user_info(notebook, 'bob')['fullname'] == 'Bob the Builder'
    assert ('login', 'alice', 'ldap') in audit_actions(notebook)


def test_second_login_updates_email_and_name(notebook, directory):
    logs_in(notebook, 'frank', PASSWORDS['frank'])
    first = user_info(notebook, 'frank')
    assert (first['email'], first['fullname']) == ('frank@example.org', 'Frank Zappa')
    directory.modify('dn: %s\nchangetype: modify\nreplace: mail\nmail: fz@example.org\n-\n'
                     'add: displayName\ndisplayName: Frank Vincent Zappa\n'
                     % people_dn('frank'))
    try:
        logs_in(notebook, 'frank', PASSWORDS['frank'])
    finally:
        directory.modify('dn: %s\nchangetype: modify\nreplace: mail\n'
                         'mail: frank@example.org\n-\ndelete: displayName\n'
                         % people_dn('frank'))
    second = user_info(notebook, 'frank')
    assert second['id'] == first['id']
    assert (second['email'], second['fullname']) == ('fz@example.org', 'Frank Vincent Zappa')


def test_wrong_password_and_unknown_user_are_refused_alike(notebook):
    _, wrong = post_login(notebook, 'alice', 'not her password', status=400)
    _, unknown = post_login(notebook, 'nobody', 'not her password', status=400)
    assert error_of(wrong) == error_of(unknown) == WRONG_CREDENTIALS
    assert user_info(notebook, 'alice') is None
    assert user_info(notebook, 'nobody') is None
    actions = audit_actions(notebook)
    assert ('login_failed', 'alice', 'ldap: wrong password') in actions
    assert ('login_failed', 'nobody', 'ldap: no such user') in actions


class Listener:
    """A TCP port that accepts connections and never answers (counts them)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self):
        self.sock.close()
        for conn in self.accepted:
            conn.close()


def test_empty_password_is_refused_without_contacting_the_directory(
        make_notebook, directory):
    # A real directory would accept an empty password as an anonymous bind.
    nb = make_notebook(**directory.settings())
    _, res = post_login(nb, 'alice', '', status=400)
    assert error_of(res) == WRONG_CREDENTIALS
    assert user_info(nb, 'alice') is None
    listener = Listener()
    try:
        silent = make_notebook(**directory.settings(
            uri='ldap://127.0.0.1:%d' % listener.port, timeout='1'))
        _, res = post_login(silent, 'alice', '', status=400)
        assert error_of(res) == WRONG_CREDENTIALS
        time.sleep(0.1)
        assert listener.accepted == []
        # The same server is contacted (and times out) for a non-empty password.
        _, res = post_login(silent, 'alice', 'x', status=503)
        assert listener.accepted
    finally:
        listener.close()


@pytest.mark.parametrize('typed', ['alic*', '*', ')(uid=*', 'alice)(uid=*',
                                   '*)(|(uid=*', 'alice\\2a', 'alice\x00'])
def test_filter_injection_is_refused(notebook, typed):
    _, res = post_login(notebook, typed, PASSWORDS['alice'], status=400)
    assert error_of(res) == WRONG_CREDENTIALS
    assert user_info(notebook, 'alice') is None


def test_more_than_one_entry_is_refused(notebook):
    # uid=twin exists under ou=people and ou=others.
    _, res = post_login(notebook, 'twin', PASSWORDS['twin'], status=400)
    assert error_of(res) == WRONG_CREDENTIALS
    assert user_info(notebook, 'twin') is None


def test_directory_groups_of_all_kinds_become_notebook_groups(notebook):
    logs_in(notebook, 'alice', PASSWORDS['alice'])   # member (x2), memberUid
    logs_in(notebook, 'bob', PASSWORDS['bob'])       # memberUid, uniqueMember
    assert user_info(notebook, 'alice')['groups'] == [
        ('nbadmins', 'ldap'), ('staff', 'ldap'), ('students', 'ldap')]
    assert user_info(notebook, 'bob')['groups'] == [('research', 'ldap'), ('students', 'ldap')]
    with notebook.transaction() as root:
        # One notebook group per directory group, shared by its members.
        assert sorted(g.name for g in root.groups.values()) == [
            'nbadmins', 'research', 'staff', 'students']
        club = root.add_group('club')
        root.user_by_login('alice').group_ids.add(club.id)
    # A local group is left alone by the sync.
    logs_in(notebook, 'alice', PASSWORDS['alice'])
    assert ('club', 'local') in user_info(notebook, 'alice')['groups']
    # Without admin_groups nobody becomes admin.
    assert not user_info(notebook, 'alice')['is_admin']


def test_admin_groups_grant_and_revoke_admin_and_groups_follow_removal(
        make_notebook, directory):
    nb = make_notebook(**directory.settings(admin_groups='nbadmins, other admins'))
    nb.add_user('local1')
    erin, _ = logs_in(nb, 'erin', PASSWORDS['erin'])
    info = user_info(nb, 'erin')
    assert info['is_admin']
    assert info['groups'] == [('nbadmins', 'ldap'), ('staff', 'ldap')]
    # Admin rights are effective: another user's home is open to erin.
    erin.get('/home/local1/', status=200)
    bob, _ = logs_in(nb, 'bob', PASSWORDS['bob'])
    assert not user_info(nb, 'bob')['is_admin']
    bob.get('/home/local1/', status=404)

    remove = ('dn: cn=%s,' + GROUPS + '\nchangetype: modify\ndelete: member\nmember: '
              + people_dn('erin') + '\n')
    add = remove.replace('delete: member', 'add: member')
    directory.modify(remove % 'nbadmins' + '\n' + remove % 'staff')
    try:
        erin, _ = logs_in(nb, 'erin', PASSWORDS['erin'])
    finally:
        directory.modify(add % 'nbadmins' + '\n' + add % 'staff')
    info = user_info(nb, 'erin')
    assert not info['is_admin']
    assert info['groups'] == []
    erin.get('/home/local1/', status=404)


def test_allowed_groups_are_enforced(make_notebook, directory):
    nb = make_notebook(**directory.settings(allowed_groups='Staff,research'))
    _, res = post_login(nb, 'carol', PASSWORDS['carol'], status=403)
    assert error_of(res) == NOT_ALLOWED
    assert user_info(nb, 'carol') is None
    assert ('login_failed', 'carol', 'ldap: not in allowed_groups') in audit_actions(nb)
    logs_in(nb, 'bob', PASSWORDS['bob'])      # research, by uniqueMember
    logs_in(nb, 'alice', PASSWORDS['alice'])  # staff (compared without case)


def test_unreachable_directory_is_reported_and_local_accounts_keep_working(
        make_notebook, directory):
    closed = make_notebook(**directory.settings(uri='ldap://127.0.0.1:%d' % free_port()))
    closed.add_user('local1')
    _, res = post_login(closed, 'alice', PASSWORDS['alice'], status=503)
    assert error_of(res) == DIRECTORY_UNAVAILABLE
    logs_in(closed, 'local1', PASSWORD)
    assert any(a == 'login_failed' and d.startswith('ldap: LDAPSocketOpenError')
               for a, _, d in audit_actions(closed))

    listener = Listener()  # accepts, never answers: the timeout ends the wait
    try:
        hanging = make_notebook(**directory.settings(
            uri='ldap://127.0.0.1:%d' % listener.port, timeout='1'))
        started = time.monotonic()
        _, res = post_login(hanging, 'alice', PASSWORDS['alice'], status=503)
        assert time.monotonic() - started < 5
        assert error_of(res) == DIRECTORY_UNAVAILABLE
    finally:
        listener.close()


def test_stopped_directory(make_notebook, tmp_path):
    server = Slapd(tmp_path / 'slapd').start()
    try:
        nb = make_notebook(**server.settings())
        nb.add_user('local1')
        logs_in(nb, 'alice', PASSWORDS['alice'])
        server.stop()
        _, res = post_login(nb, 'alice', PASSWORDS['alice'], status=503)
        assert error_of(res) == DIRECTORY_UNAVAILABLE
        logs_in(nb, 'local1', PASSWORD)
    finally:
        server.stop()


def test_wrong_service_account_password_is_directory_unavailable(make_notebook, directory):
    nb = make_notebook(**directory.settings(bind_password='wrong'))
    _, res = post_login(nb, 'alice', PASSWORDS['alice'], status=503)
    assert error_of(res) == DIRECTORY_UNAVAILABLE


def test_misconfiguration_is_directory_unavailable(make_notebook, directory):
    nb = make_notebook(**directory.settings(uri='http://127.0.0.1:1'))
    nb.add_user('local1')
    _, res = post_login(nb, 'alice', PASSWORDS['alice'], status=503)
    assert error_of(res) == DIRECTORY_UNAVAILABLE
    logs_in(nb, 'local1', PASSWORD)


def test_ldap_login_never_takes_over_a_local_account(notebook):
    notebook.add_user('dora')   # local account; the directory has uid=dora too
    logs_in(notebook, 'dora', PASSWORD)
    _, res = post_login(notebook, 'dora', PASSWORDS['dora'], status=400)
    assert error_of(res) == WRONG_CREDENTIALS
    # Another spelling reaches the directory, whose entry names the local account.
    _, res = post_login(notebook, 'DORA', PASSWORDS['dora'], status=403)
    assert error_of(res) == LOCAL_ACCOUNT
    info = user_info(notebook, 'dora')
    assert info['auth_source'] == 'local' and info['ldap_dn'] is None
    assert user_info(notebook, 'DORA') is None


def test_login_is_searched_as_typed_and_stored_as_the_directory_spells_it(notebook):
    _, res = logs_in(notebook, 'ALICE', PASSWORDS['alice'])
    assert res.location.endswith('/home/alice/')
    assert user_info(notebook, 'ALICE') is None
    first = user_info(notebook, 'alice')
    logs_in(notebook, 'alice', PASSWORDS['alice'])
    assert user_info(notebook, 'alice')['id'] == first['id']


def test_directory_username_that_is_no_valid_login_is_refused(make_notebook, directory):
    nb = make_notebook(**directory.settings())
    _, res = post_login(nb, '1up', PASSWORDS['1up'], status=400)
    assert '"1up" cannot be used on this server' in error_of(res)
    assert 'starts with a letter' in error_of(res)
    assert user_info(nb, '1up') is None
    # cn as the username attribute: "Alice Liddell" holds a space.
    by_cn = make_notebook(**directory.settings(username_attribute='cn'))
    _, res = post_login(by_cn, 'Alice Liddell', PASSWORDS['alice'], status=400)
    assert 'cannot be used on this server' in error_of(res)


def test_ldap_users_cannot_log_in_when_ldap_is_off(tmp_path, directory):
    nb = Notebook(tmp_path / 'data', **directory.settings())
    try:
        logs_in(nb, 'alice', PASSWORDS['alice'])
    finally:
        nb.close()
    # The same database with LDAP turned off: no local password to fall back on.
    off = Notebook(tmp_path / 'data')
    try:
        for password in (PASSWORDS['alice'], '', 'x'):
            _, res = post_login(off, 'alice', password, status=400)
            assert error_of(res) == WRONG_CREDENTIALS
        assert user_info(off, 'alice')['auth_source'] == 'ldap'
    finally:
        off.close()


def test_starttls_with_the_self_signed_certificate(make_notebook, directory):
    trusted = make_notebook(**directory.settings(start_tls='true', ca_file=directory.ca_file))
    logs_in(trusted, 'alice', PASSWORDS['alice'])
    # Verification is on by default: the self-signed certificate is not trusted.
    untrusted = make_notebook(**directory.settings(start_tls='true'))
    _, res = post_login(untrusted, 'alice', PASSWORDS['alice'], status=503)
    assert error_of(res) == DIRECTORY_UNAVAILABLE
    assert user_info(untrusted, 'alice') is None


def test_ldaps(make_notebook, directory):
    trusted = make_notebook(**directory.settings(uri=directory.ldaps_uri,
                                                 ca_file=directory.ca_file))
    logs_in(trusted, 'alice', PASSWORDS['alice'])
    untrusted = make_notebook(**directory.settings(uri=directory.ldaps_uri))
    _, res = post_login(untrusted, 'alice', PASSWORDS['alice'], status=503)
    assert error_of(res) == DIRECTORY_UNAVAILABLE
