"""services/admin.py called directly, as a script would: users, groups, the editable
settings and the audit log, with the audit entries each change writes."""
import pytest
from pyramid.httpexceptions import HTTPException

from sagenb_pyramid import audit, server_settings
from sagenb_pyramid.auth.passwords import verify_password
from sagenb_pyramid.services import admin
from sagenb_pyramid.services.evaluation import worksheet_key

from ...support.service_request import ServiceRequest


def refused(status, call, *args, **kwargs):
    with pytest.raises(HTTPException) as caught:
        call(*args, **kwargs)
    assert caught.value.code == status, caught.value.user_message
    return caught.value.user_message


def actions(root):
    return [(e.action, e.actor, e.target) for e in audit.entries(root, newest_first=False)]


def test_add_user(notebook):
    notebook.add_user('root', admin=True)
    with notebook.transaction() as root:
        request = ServiceRequest(notebook, root, root.user_by_login('root'))
        user, password = admin.add_user(request, root, 'alice', email='a@example.org',
                                        fullname='Alice', admin=True)
        assert verify_password(user, password) and user.is_admin
        assert admin.user_info(root, user, full=True) == {
            'login': 'alice', 'id': user.id, 'fullname': 'Alice', 'email': 'a@example.org',
            'is_admin': True, 'suspended': False, 'created': user.created, 'groups': [],
            'worksheets': 0}
        assert 'taken' in refused(409, admin.add_user, request, root, 'ALICE')
        refused(400, admin.add_user, request, root, 'no spaces please')
        refused(400, admin.add_user, request, root, 'bob', email='not an address')
        # testing.ini sends no mail: no invitation.
        assert 'no mail' in refused(409, admin.add_user, request, root, 'bob',
                                    email='b@example.org', invite=True)
        assert actions(root) == [('user_added', 'root', 'alice')]
        assert root.user_by_login('bob') is None


def test_the_last_active_admin_stays(notebook):
    notebook.add_user('root', admin=True)
    notebook.add_user('alice')
    with notebook.transaction() as root:
        boss, alice = root.user_by_login('root'), root.user_by_login('alice')
        request = ServiceRequest(notebook, root, alice)  # a script acting as nobody
        refused(409, admin.suspend_user, request, root, boss)
        refused(409, admin.revoke_admin, request, root, boss)
        refused(409, admin.delete_user, request, root, boss, 'delete')
        assert boss.is_admin and not boss.suspended
        admin.grant_admin(request, alice)
        epoch = boss.session_epoch
        admin.suspend_user(request, root, boss)  # alice is an active admin now
        assert boss.suspended and boss.session_epoch == epoch + 1
        admin.suspend_user(request, root, boss)  # once: no second entry
        refused(409, admin.revoke_admin, request, root, alice)
        admin.reinstate_user(request, boss)
        admin.revoke_admin(request, root, alice)
        assert not alice.is_admin and not boss.suspended
        assert [a for a, _, _ in actions(root)] == [
            'admin_granted', 'user_suspended', 'user_reinstated', 'admin_revoked']


def test_delete_user_hands_over_or_deletes_after_the_commit(notebook):
    notebook.add_user('root', admin=True)
    notebook.add_user('alice')
    notebook.add_user('bob')
    with notebook.transaction() as root:
        boss = root.user_by_login('root')
        alice, bob = root.user_by_login('alice'), root.user_by_login('bob')
        alices = worksheet_key(alice.create_worksheet('a'))
        bob.create_worksheet('b')
        request = ServiceRequest(notebook, root, boss)
        refused(409, admin.delete_user, request, root, boss, 'delete')  # oneself
        refused(400, admin.delete_user, request, root, alice, 'keep')
        refused(400, admin.delete_user, request, root, alice, 'handover', 'nobody')
        refused(400, admin.delete_user, request, root, alice, 'handover', '')
        refused(400, admin.delete_user, request, root, alice, 'handover', 'alice')
        detail = admin.delete_user(request, root, alice, 'handover', 'bob')
        assert detail == '1 worksheet(s) handed to bob'
        assert sorted(w.name for w in bob.worksheets()) == ['a', 'b']
        bobs = [worksheet_key(w) for w in bob.worksheets()]
        assert admin.delete_user(request, root, bob, 'delete') == '2 worksheet(s) deleted'
        assert request.workers.discarded == []
    # The handed-over worksheet's process goes too (it ran under alice's key).
    assert sorted(request.workers.discarded) == sorted([alices] + bobs)
    with notebook.transaction() as root:
        assert root.user_by_login('alice') is None and root.user_by_login('bob') is None
        assert [(a, t) for a, _, t in actions(root)] == [
            ('user_deleted', 'alice'), ('user_deleted', 'bob')]


def test_reset_password_without_mail_gives_a_link(notebook):
    notebook.add_user('alice')
    with notebook.transaction() as root:
        alice = root.user_by_login('alice')
        request = ServiceRequest(notebook, root)
        how, link = admin.reset_password(request, root, alice)
        assert how == 'link' and link.startswith('http://localhost:8080/reset/')
        alice.auth_source = 'ldap'
        assert 'through ldap' in refused(409, admin.reset_password, request, root, alice)


def test_groups(notebook):
    notebook.add_user('alice')
    with notebook.transaction() as root:
        alice = root.user_by_login('alice')
        request = ServiceRequest(notebook, root)
        group = admin.add_group(request, root, 'Algebra')
        refused(409, admin.add_group, request, root, 'Algebra')
        refused(400, admin.add_group, request, root, 'a/b')
        refused(400, admin.add_group, request, root, '   ')
        admin.add_member(request, group, admin.member(root, 'alice'))
        admin.add_member(request, group, alice)  # already: no second entry
        refused(400, admin.member, root, 'nobody')
        assert admin.rename_group(request, root, group, 'Algebra I') == 'Algebra'
        directory = root.add_group('staff', 'ldap')
        refused(409, admin.rename_group, request, root, directory, 'mine')
        refused(409, admin.add_member, request, directory, alice)
        groups, counts = admin.groups_with_counts(root)
        assert [g.name for g in groups] == ['Algebra I', 'staff']
        assert counts == {group.id: 1, directory.id: 0}
        assert admin.user_info(root, alice, full=True)['groups'] == ['Algebra I']
        admin.remove_member(request, group, alice)
        admin.delete_group(request, root, directory)
        assert [a for a, _, _ in actions(root)] == [
            'group_added', 'group_member_added', 'group_renamed', 'group_member_removed',
            'group_deleted']


def test_save_settings(notebook):
    with notebook.transaction() as root:
        request = ServiceRequest(notebook, root)
        refused(400, admin.save_settings, request, root, {'sagenb.secret': 'x'}, True)
        refused(400, admin.save_settings, request, root,
                {'sagenb.workers.max_per_user': 'many'}, True)
        changed = admin.save_settings(request, root, {'sagenb.workers.max_per_user': 3,
                                                      'sagenb.allow_signup': 'off'}, True)
        assert changed == {'sagenb.workers.max_per_user': '3', 'sagenb.allow_signup': 'false'}
        assert admin.save_settings(request, root, {'sagenb.allow_signup': False}, True) == {}
        # A form sends every setting; an unchecked box sends nothing: false.
        form = {row['key']: row['value'] for row in admin.setting_rows(request)
                if row['kind'] != 'bool'}
        form['sagenb.allow_signup'] = 'on'
        assert admin.save_settings(request, root, form, False) == {
            'sagenb.allow_signup': 'true'}
        del form['sagenb.allow_signup']
        assert admin.save_settings(request, root, form, False) == {
            'sagenb.allow_signup': 'false'}
        assert request.workers.applied == []  # the worker hosts hear of it after the commit
    assert request.workers.applied == [{'max_per_user': 3}]
    with notebook.transaction() as root:
        assert server_settings.get(request, 'sagenb.workers.max_per_user', root) == 3


def test_find_users_and_the_audit_log_page_by_page(notebook):
    with notebook.transaction() as root:
        request = ServiceRequest(notebook, root)
        for n in range(admin.PER_PAGE + 5):
            root.add_user('user%03d' % n)
            audit.record(request, 'note', 'user%03d' % n)
        shown, total, _ = admin.find_users(root, '', 2)
        assert total == admin.PER_PAGE + 5 and admin.pages(total) == 2
        assert [u.login for u in shown] == ['user%03d' % n for n in range(50, 55)]
        shown, total, _ = admin.find_users(root, 'user01', 1)
        assert total == 10 and len(shown) == 10
        first, more = admin.audit_page(root, '', 1)
        assert len(first) == admin.PER_PAGE and more
        assert first[0].target == 'user054'  # newest first
        rest, more = admin.audit_page(root, '', 2)
        assert len(rest) == 5 and not more
        found, more = admin.audit_page(root, 'user007', 1)
        assert [e.target for e in found] == ['user007'] and not more
