"""services/identities.py called directly, as a script would: a provider's profile
turned into an identity, the user it logs in as (linked, new, or a username to choose),
linking, what the provider's groups grant and take back, the identity waiting in the
session.  The providers themselves are real ``auth/oauth.py`` objects (no network: the
profile is what their callback would have made)."""
import time

import pytest
from pyramid.httpexceptions import HTTPException

from sagenb_pyramid import audit
from sagenb_pyramid.auth.oauth import Provider
from sagenb_pyramid.services import identities

from ...support.service_request import ServiceRequest


def provider(**kw):
    return Provider('corp', 'client', 'secret', label='Corp SSO', **kw)


def profile(subject='s-1', username='alice', email='alice@corp.example', groups=()):
    return {'accounts': [{'domain': 'corp', 'userid': subject}],
            'preferredUsername': username, 'verifiedEmail': email,
            'displayName': 'Alice A.', 'groups': list(groups)}


def refused(status, call, *args):
    with pytest.raises(HTTPException) as caught:
        call(*args)
    assert caught.value.code == status, caught.value.user_message
    return caught.value.user_message


def actions(root):
    return [(e.action, e.target, e.detail) for e in audit.entries(root, newest_first=False)]


def test_identity_from_a_profile():
    identity = identities.identity_from(provider(), {
        'accounts': [{'userid': 42}], 'emails': [{'value': 'first@x.example'}]})
    assert identity == {'provider': 'corp', 'subject': '42', 'username': '',
                        'email': 'first@x.example', 'fullname': '', 'groups': []}
    assert identities.identity_key(identity) == 'corp:42'
    assert identities.suggested_login('9.Ann Lee!') == 'Ann_Lee_'
    assert identities.suggested_login('___') == ''


def test_a_new_identity_makes_a_user_and_then_logs_in_as_it(notebook):
    corp = provider()
    identity = identities.identity_from(corp, profile())
    with notebook.transaction() as root:
        request = ServiceRequest(notebook, root)
        user = identities.user_of(request, root, corp, identity)
        assert user.login == 'alice' and user.email == 'alice@corp.example'
        identities.log_in(request, root, user, corp, identity)
        assert root.user_by_identity('corp:s-1') is user
        assert user.identities['corp:s-1']['label'] == 'Corp SSO'
        # The second time: the linked user, no new one.
        assert identities.user_of(request, root, corp, identity) is user
        assert actions(root) == [('user_created', 'alice', 'oauth:corp'),
                                 ('login', 'alice', 'oauth:corp')]


def test_a_taken_name_is_never_linked_by_name(notebook):
    """A local ``alice`` exists: the provider's ``alice`` must choose another name."""
    notebook.add_user('alice')
    corp = provider()
    identity = identities.identity_from(corp, profile())
    with notebook.transaction() as root:
        request = ServiceRequest(notebook, root)
        assert identities.user_of(request, root, corp, identity) is None
        assert root.user_by_identity('corp:s-1') is None
        assert identities.username_problems(root, 'alice') == [
            'That username is taken; choose another.']
        assert identities.username_problems(root, '') != []
        assert identities.username_problems(root, 'alice2') == []
        user = identities.user_named(request, root, corp, identity, 'alice2')
        assert user.login == 'alice2' and user is not root.user_by_login('alice')
        identities.log_in(request, root, user, corp, identity)
        # Linked meanwhile (another tab): that user, not a second new one.
        assert identities.user_named(request, root, corp, identity, 'alice3') is user
        assert root.user_by_login('alice3') is None


def test_allowed_groups_refuse_before_anything_is_made(notebook):
    corp = provider(allowed_groups=['staff'])
    outsider = identities.identity_from(corp, profile(groups=['guests']))
    with notebook.transaction() as root:
        request = ServiceRequest(notebook, root)
        message = refused(403, identities.user_of, request, root, corp, outsider)
        assert 'Corp SSO' in message
        refused(403, identities.user_named, request, root, corp, outsider, 'bob')
        assert root.user_by_login('alice') is None and root.user_by_login('bob') is None
        staff = identities.identity_from(corp, profile(groups=['staff']))
        assert identities.user_of(request, root, corp, staff).login == 'alice'


def test_groups_and_the_admin_right_follow_the_provider(notebook):
    corp = provider(groups_claim='groups', admin_groups=['ops'])
    with notebook.transaction() as root:
        request = ServiceRequest(notebook, root)
        ops = identities.identity_from(corp, profile(groups=['ops', 'math']))
        user = identities.user_of(request, root, corp, ops)
        identities.log_in(request, root, user, corp, ops)
        assert user.is_admin
        assert {root.groups[g].name for g in user.group_ids} == {'ops', 'math'}
        # Out of ops at the provider: the right it granted goes, with the group.
        identities.log_in(request, root, user, corp,
                          identities.identity_from(corp, profile(groups=['math'])))
        assert not user.is_admin
        assert {root.groups[g].name for g in user.group_ids} == {'math'}


def test_an_admin_right_not_granted_by_the_provider_stays(notebook):
    notebook.add_user('root', admin=True)
    corp = provider(admin_groups=['ops'])
    with notebook.transaction() as root:
        request = ServiceRequest(notebook, root)
        admin = root.user_by_login('root')
        identities.link(request, root, admin, corp,
                        identities.identity_from(corp, profile(username='r00t')))
        assert admin.is_admin


def test_a_suspended_user_is_refused_and_it_is_recorded(notebook):
    corp = provider()
    identity = identities.identity_from(corp, profile())
    with notebook.transaction() as root:
        request = ServiceRequest(notebook, root)
        user = identities.user_of(request, root, corp, identity)
        user.suspended = True
        with pytest.raises(identities.Suspended):
            identities.log_in(request, root, user, corp, identity)
        assert not user.identities  # nothing applied
        assert actions(root)[-1] == ('login_failed', 'alice', 'oauth:corp: suspended')
        refused(403, identities.link, request, root, user, corp, identity)


def test_link_refuses_an_identity_of_another_account(notebook):
    notebook.add_user('alice')
    notebook.add_user('bob')
    corp = provider()
    identity = identities.identity_from(corp, profile(subject='s-9', username='al'))
    with notebook.transaction() as root:
        request = ServiceRequest(notebook, root)
        alice, bob = root.user_by_login('alice'), root.user_by_login('bob')
        identities.link(request, root, alice, corp, identity)
        assert root.user_by_identity('corp:s-9') is alice
        assert actions(root)[-1] == ('oauth_link', 'alice', 'corp:s-9 (al)')
        assert 'already linked' in refused(409, identities.link, request, root, bob, corp,
                                           identity)
        identities.link(request, root, alice, corp, identity)  # again: fine
        assert root.user_by_identity('corp:s-9') is alice


def test_the_pending_identity_waits_a_while(monkeypatch):
    session = {}
    identity = identities.identity_from(provider(), profile())
    assert identities.pending(session) is None
    identities.keep_pending(session, identity, '/home/x')
    waiting = identities.pending(session)
    assert waiting['subject'] == 's-1' and waiting['came_from'] == '/home/x'
    later = time.time() + identities.PENDING_IDENTITY_TIMEOUT + 1
    monkeypatch.setattr(identities.time, 'time', lambda: later)
    assert identities.pending(session) is None
    assert session == {}  # dropped
    session[identities.PENDING_IDENTITY_KEY] = 'not a dict'
    assert identities.pending(session) is None and session == {}
