"""Unit tests of the ACLs and of the identity lookup (no web application involved)."""
import pytest
from pyramid import testing
from pyramid.authorization import ACLHelper, Authenticated, Everyone

from sagenb_pyramid import resources
from sagenb_pyramid.auth.tokens import create_token, revoke_token, user_tokens
from sagenb_pyramid.security import (
    SESSION_EPOCH_KEY, SESSION_ID_KEY, SESSION_USER_KEY, P, SecurityPolicy, end_sessions,
    live_sessions, token_digest)

PERMISSIONS = ('view', 'edit', 'evaluate', 'delete', 'share', 'trust')


def principals_of(user):
    if user is None:
        return [Everyone]
    return [Everyone, Authenticated] + user.principals()


def allowed(context, user):
    helper = ACLHelper()
    return {p for p in PERMISSIONS if helper.permits(context, principals_of(user), p)}


def test_the_acl_vocabulary_is_pyramids():
    """acl.py writes Pyramid's ACE values without importing Pyramid (the admin commands
    load the resources without it): they mean to Pyramid what its own do."""
    import pyramid.authorization as pyramid_acl
    from sagenb_pyramid import acl
    assert (acl.Allow, acl.Deny, acl.Everyone, acl.Authenticated) == (
        pyramid_acl.Allow, pyramid_acl.Deny, pyramid_acl.Everyone, pyramid_acl.Authenticated)
    assert list(acl.ALL_PERMISSIONS) == list(pyramid_acl.ALL_PERMISSIONS) == []

    class Context:
        __acl__ = [(acl.Allow, 'p', acl.ALL_PERMISSIONS), (acl.Deny, 'q', acl.ALL_PERMISSIONS),
                   (acl.Allow, 'q', 'view'), acl.DENY_ALL, (acl.Allow, Everyone, 'view')]
    helper = ACLHelper()
    assert helper.permits(Context(), [Everyone, 'p'], 'any permission')
    assert not helper.permits(Context(), [Everyone, 'q'], 'view')
    assert not helper.permits(Context(), [Everyone], 'view')
    assert helper.principals_allowed_by_permission(Context(), 'view') == {'p'}


@pytest.fixture
def world():
    root = resources.Root()
    owner = root.add_user('owner')
    collaborator = root.add_user('collab')
    viewer = root.add_user('viewer')
    other = root.add_user('other')
    admin = root.add_user('admin', is_admin=True)
    worksheet = owner.create_worksheet('W')
    worksheet.collaborators.append('userid:' + collaborator.id)
    worksheet.viewers.append('userid:' + viewer.id)
    return dict(root=root, owner=owner, collaborator=collaborator, viewer=viewer,
                other=other, admin=admin, anonymous=None, worksheet=worksheet)


EXPECTED = {
    'owner': set(PERMISSIONS),
    'collaborator': {'view', 'edit', 'evaluate'},
    'viewer': {'view'},
    'other': set(),
    'anonymous': set(),
    # Admins see other users' worksheets read-only (issue 18): not even DELETE.  SHARE:
    # an admin may take sharing away, never add a person or a right (services/sharing.py,
    # tests/functional/worksheet/test_sharing.py).
    'admin': {'view', 'share'},
}


@pytest.mark.parametrize('who', sorted(EXPECTED))
@pytest.mark.parametrize('permission', PERMISSIONS)
def test_worksheet_permission_table(world, who, permission):
    user = world[who]
    helper = ACLHelper()
    result = helper.permits(world['worksheet'], principals_of(user), permission)
    assert bool(result) == (permission in EXPECTED[who])


@pytest.mark.parametrize('who', sorted(EXPECTED))
def test_cells_inherit_worksheet_acl(world, who):
    cell = world['worksheet'].ordered_cells()[0]
    assert allowed(cell, world[who]) == EXPECTED[who]
    assert allowed(world['worksheet'].cells, world[who]) == EXPECTED[who]


def test_permission_enum_is_the_string():
    helper = ACLHelper()
    assert P.EDIT == 'edit' and str(P.EDIT) == 'edit'
    ws = resources.Root().add_user('a').create_worksheet('W')
    assert helper.permits(ws, ['userid:' + ws.owner_id], P.DELETE)


def test_anonymous_has_only_everyone(world):
    policy = SecurityPolicy()
    request = testing.DummyRequest()
    request.environ['sagenb.identity'] = None
    assert policy.effective_principals(request) == [Everyone]
    assert policy.authenticated_userid(request) is None


def test_logged_in_principals(world):
    policy = SecurityPolicy()
    request = testing.DummyRequest()
    request.environ['sagenb.identity'] = world['collaborator']
    principals = policy.effective_principals(request)
    assert principals == [Everyone, Authenticated, 'userid:' + world['collaborator'].id]
    assert policy.authenticated_userid(request) == world['collaborator'].id
    assert not policy.permits(request, world['worksheet'], 'delete')
    assert policy.permits(request, world['worksheet'], 'edit')


def test_home_folder_acl(world):
    owner_home = world['owner']
    assert allowed(owner_home, world['owner']) >= {'view', 'edit', 'delete'}
    helper = ACLHelper()
    assert helper.permits(owner_home, principals_of(world['owner']), 'create')
    assert not helper.permits(owner_home, principals_of(world['other']), 'create')
    assert not helper.permits(owner_home, principals_of(world['other']), 'view')
    assert not helper.permits(owner_home, principals_of(world['collaborator']), 'create')
    assert not helper.permits(owner_home, principals_of(None), 'view')
    # An admin may look at another's home (list it, download it), not change it.
    assert helper.permits(owner_home, principals_of(world['admin']), 'view')
    for permission in ('create', 'edit', 'delete'):
        assert not helper.permits(owner_home, principals_of(world['admin']), permission)
    assert allowed(world['admin'], world['admin']) >= {'view', 'edit', 'delete'}
    assert helper.permits(world['admin'], principals_of(world['admin']), 'create')


def test_account_permission_for_any_logged_in_user(world):
    helper = ACLHelper()
    assert helper.permits(world['root'], principals_of(world['other']), 'account')
    assert not helper.permits(world['root'], principals_of(None), 'account')
    assert not helper.permits(world['root'], principals_of(world['other']), 'admin')
    assert helper.permits(world['root'], principals_of(world['admin']), 'admin')


def test_renamed_users_keep_their_access(world):
    root, ws = world['root'], world['worksheet']
    root.rename_user(world['owner'], 'owner2')
    root.rename_user(world['collaborator'], 'collab2')
    root.rename_user(world['viewer'], 'viewer2')
    assert allowed(ws, world['owner']) == set(PERMISSIONS)
    assert allowed(ws, world['collaborator']) == {'view', 'edit', 'evaluate'}
    assert allowed(ws, world['viewer']) == {'view'}
    assert ws.owner is world['owner']


def test_new_user_with_a_former_login_gets_no_access(world):
    root, ws = world['root'], world['worksheet']
    root.rename_user(world['collaborator'], 'collab2')
    impostor = root.add_user('collab')
    assert allowed(ws, impostor) == set()


def test_group_collaborator_can_edit(world):
    root, ws = world['root'], world['worksheet']
    group = root.add_group('g')
    member = root.add_user('member')
    outsider = root.add_user('outsider')
    assert allowed(ws, member) == set()
    ws.collaborators.append('group:' + group.id)
    assert allowed(ws, member) == set()
    member.group_ids.add(group.id)
    assert allowed(ws, member) == {'view', 'edit', 'evaluate'}
    assert allowed(ws, outsider) == set()
    member.group_ids.remove(group.id)
    assert allowed(ws, member) == set()


def test_group_viewer_can_only_view(world):
    root, ws = world['root'], world['worksheet']
    group = root.add_group('readers')
    member = root.add_user('member')
    member.group_ids.add(group.id)
    ws.viewers.append('group:' + group.id)
    assert allowed(ws, member) == {'view'}


def test_removing_a_collaborator_revokes_access(world):
    ws = world['worksheet']
    ws.collaborators.remove('userid:' + world['collaborator'].id)
    assert allowed(ws, world['collaborator']) == set()


def test_admin_role_comes_from_flag(world):
    other = world['other']
    assert allowed(world['worksheet'], other) == set()
    other.is_admin = True
    assert allowed(world['worksheet'], other) == EXPECTED['admin']
    assert allowed(world['root'], other) == set(PERMISSIONS)


def test_an_admin_named_on_a_worksheet_has_what_the_name_gives(world):
    """Read-only is for worksheets an admin is not named on: an admin's own worksheets
    and those shared with them as a collaborator work as for anybody."""
    admin, ws = world['admin'], world['worksheet']
    assert allowed(admin.create_worksheet('mine'), admin) == set(PERMISSIONS)
    ws.collaborators.append('userid:' + admin.id)
    # (and SHARE, which admins have on every worksheet: to take sharing away)
    assert allowed(ws, admin) == {'view', 'edit', 'evaluate', 'share'}
    assert allowed(ws.ordered_cells()[0], admin) == {'view', 'edit', 'evaluate', 'share'}


# --- API tokens ---------------------------------------------------------------------

def test_token_is_stored_only_as_digest(world):
    root, owner = world['root'], world['owner']
    token = create_token(root, owner, 'script')
    digest = token_digest(token)
    assert token not in root.tokens
    assert list(root.tokens.keys()) == [digest]
    assert digest != token and len(digest) == 64
    record = root.tokens[digest]
    assert record.user_id == owner.id and record.label == 'script'
    assert token_digest(token) == digest
    assert token_digest(token + 'x') not in root.tokens
    assert create_token(root, owner) != token


def test_revoke_token(world):
    root, owner, other = world['root'], world['owner'], world['other']
    token = create_token(root, owner)
    create_token(root, other)
    [(prefix, record)] = user_tokens(root, owner)
    assert record.user_id == owner.id
    assert not revoke_token(root, other, prefix)
    assert token_digest(token) in root.tokens
    assert revoke_token(root, owner, prefix)
    assert token_digest(token) not in root.tokens
    assert len(root.tokens) == 1


@pytest.fixture
def policy_on(world, monkeypatch):
    """A SecurityPolicy whose requests see ``world['root']``."""
    monkeypatch.setattr(resources, 'root_factory', lambda request: world['root'])
    return SecurityPolicy()


def test_identity_from_bearer_token(world, policy_on):
    token = create_token(world['root'], world['viewer'])
    request = testing.DummyRequest(headers={'Authorization': 'Bearer ' + token})
    assert policy_on.identity(request) is world['viewer']
    assert request.environ['sagenb.via_token'] is True


def test_identity_follows_renamed_token_owner(world, policy_on):
    token = create_token(world['root'], world['viewer'])
    world['root'].rename_user(world['viewer'], 'viewer2')
    request = testing.DummyRequest(headers={'Authorization': 'Bearer ' + token})
    assert policy_on.identity(request) is world['viewer']


def test_identity_with_unknown_token_is_nobody(world, policy_on):
    create_token(world['root'], world['owner'])
    request = testing.DummyRequest(headers={'Authorization': 'Bearer snb_wrong'})
    assert policy_on.identity(request) is None
    assert policy_on.effective_principals(request) == [Everyone]
    assert request.environ['sagenb.via_token'] is True


def test_bearer_token_ignores_session(world, policy_on):
    request = testing.DummyRequest(headers={'Authorization': 'Bearer snb_wrong'})
    request.session[SESSION_USER_KEY] = world['owner'].id
    request.session[SESSION_EPOCH_KEY] = world['owner'].session_epoch
    assert policy_on.identity(request) is None


def session_request(user, sid='s-1'):
    """A request whose session names ``user`` and a session id live in the database."""
    live_sessions(user)[sid] = 0.0
    request = testing.DummyRequest()
    request.session[SESSION_USER_KEY] = user.id
    request.session[SESSION_EPOCH_KEY] = user.session_epoch
    request.session[SESSION_ID_KEY] = sid
    return request


def test_identity_from_session(world, policy_on):
    owner = world['owner']
    request = session_request(owner)
    assert policy_on.identity(request) is owner
    assert not request.environ.get('sagenb.via_token')


def test_session_of_an_older_epoch_is_nobody(world, policy_on):
    owner = world['owner']
    request = session_request(owner)
    owner.session_epoch += 1
    assert policy_on.identity(request) is None


def test_session_of_an_unknown_user_is_nobody(world, policy_on):
    request = testing.DummyRequest()
    request.session[SESSION_USER_KEY] = 'u-doesnotexist'
    request.session[SESSION_EPOCH_KEY] = 0
    request.session[SESSION_ID_KEY] = 's-1'
    assert policy_on.identity(request) is None


def test_a_session_needs_a_live_session_id(world, policy_on):
    """A signed cookie naming the user and the epoch is not enough: its id must be
    live in the database (logging out drops it)."""
    owner = world['owner']
    request = session_request(owner)
    del request.session[SESSION_ID_KEY]
    assert policy_on.identity(request) is None
    request = session_request(owner, 's-2')
    del live_sessions(owner)['s-2']
    assert policy_on.identity(request) is None
    assert policy_on.identity(session_request(owner, 's-3')) is owner


def test_end_sessions_ends_every_session(world, policy_on):
    owner = world['owner']
    requests = [session_request(owner, 's-%d' % n) for n in range(3)]
    end_sessions(owner)
    for request in requests:
        request.environ.pop('sagenb.identity', None)
        assert policy_on.identity(request) is None
    assert len(live_sessions(owner)) == 0


def test_expired_token_is_nobody(world, policy_on):
    import time
    token = create_token(world['root'], world['viewer'], expires=time.time() - 1)
    request = testing.DummyRequest(headers={'Authorization': 'Bearer ' + token})
    assert policy_on.identity(request) is None
    assert request.environ['sagenb.token_problem'] == 'this API token has expired'
    token = create_token(world['root'], world['viewer'], expires=time.time() + 60,
                         scope='read')
    request = testing.DummyRequest(headers={'Authorization': 'Bearer ' + token})
    assert policy_on.identity(request) is world['viewer']
    assert request.environ['sagenb.token_scope'] == 'read'


def test_resources_and_security_do_not_import_each_other():
    """acl.py holds what both need: the modules of resources/ import it, never
    security.py (not even inside a function), and acl.py imports nothing of the project."""
    import ast
    import pathlib
    package = pathlib.Path(__file__).resolve().parents[2] / 'sagenb_pyramid'

    def project_imports(name):
        tree = ast.parse((package / name).read_text())
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.level or (
                    node.module or '').startswith('sagenb_pyramid')):
                found.add((node.module or '').rpartition('sagenb_pyramid.')[2]
                          or ','.join(a.name for a in node.names))
        return found
    modules = sorted(p.name for p in (package / 'resources').glob('*.py'))
    assert 'worksheets.py' in modules
    found = {m: project_imports('resources/' + m) for m in modules}
    assert not [m for m in modules if 'security' in found[m]]
    assert [m for m in modules if 'acl' in found[m]]
    assert project_imports('acl.py') == set()
