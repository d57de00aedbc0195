"""Unit tests of the resource model (no web application involved)."""
import pytest
import transaction
import ZODB

from sagenb_pyramid.resources import (
    CellOutput, Folder, Root, User, Worksheet, get_root)


@pytest.fixture
def root():
    return Root()


@pytest.fixture
def alice(root):
    return root.add_user('alice', 'hash-a')


@pytest.fixture
def worksheet(alice):
    return alice.create_worksheet('W')


def input_order(worksheet):
    return [c.input for c in worksheet.ordered_cells()]


# --- Folder.add ---------------------------------------------------------------------

class Thing:
    __name__ = None
    __parent__ = None


@pytest.mark.parametrize('name', ['', '/', 'a/b', '@@view', '@@', '.', '..'])
def test_folder_add_rejects_invalid_names(name):
    folder = Folder()
    thing = Thing()
    with pytest.raises(ValueError):
        folder.add(name, thing)
    assert len(folder) == 0
    assert list(folder.keys()) == []
    assert thing.__parent__ is None


def test_folder_add_sets_name_parent_and_length():
    folder = Folder()
    thing = Thing()
    assert folder.add(7, thing) is thing
    assert thing.__name__ == '7'
    assert thing.__parent__ is folder
    assert folder['7'] is thing
    assert folder.get(7) is thing
    assert 7 in folder and '7' in folder
    assert len(folder) == 1


def test_folder_add_rejects_duplicates():
    folder = Folder()
    first, second = Thing(), Thing()
    folder.add('x', first)
    with pytest.raises(KeyError):
        folder.add('x', second)
    assert folder['x'] is first
    assert second.__parent__ is None
    assert len(folder) == 1


def test_folder_add_rejects_object_that_already_has_a_parent():
    one, two = Folder(), Folder()
    thing = Thing()
    one.add('x', thing)
    with pytest.raises(ValueError):
        two.add('y', thing)
    assert thing.__parent__ is one and thing.__name__ == 'x'
    assert 'y' not in two and len(two) == 0


def test_folder_remove_detaches():
    folder = Folder()
    thing = folder.add('x', Thing())
    assert folder.remove('x') is thing
    assert thing.__parent__ is None
    assert len(folder) == 0 and 'x' not in folder
    # Once detached, it may be added elsewhere.
    Folder().add('y', thing)


# --- Root and users -----------------------------------------------------------------

def test_root_add_user_and_lookup(root):
    user = root.add_user('alice', 'hash', is_admin=True, email='a@example.org')
    assert isinstance(user, User)
    assert root.user_by_login('alice') is user
    assert root.users_by_id[user.id] is user
    assert root.home['alice'] is user
    assert user.__parent__ is root.home and user.__name__ == 'alice'
    assert user.is_admin and user.email == 'a@example.org'
    assert root.user_by_login('nobody') is None


def test_user_ids_are_distinct(root):
    a = root.add_user('alice')
    b = root.add_user('bob')
    assert a.id != b.id
    assert a.id not in ('alice', 'bob') and b.id not in ('alice', 'bob')


def test_add_user_rejects_taken_login(root):
    alice = root.add_user('alice')
    with pytest.raises(KeyError):
        root.add_user('alice')
    assert root.user_by_login('alice') is alice
    assert list(root.users_by_id.keys()) == [alice.id]


def test_rename_user_keeps_id(root, alice):
    ws = alice.create_worksheet('W')
    old_id = alice.id
    root.rename_user(alice, 'alicia')
    assert alice.id == old_id
    assert alice.login == 'alicia' and alice.__name__ == 'alicia'
    assert root.user_by_login('alice') is None
    assert root.user_by_login('alicia') is alice
    assert root.users_by_id[old_id] is alice
    assert len(root.home) == 1
    # The worksheet moves along and still names its owner by id.
    assert alice['0'] is ws and ws.owner is alice and ws.owner_id == old_id


def test_rename_user_to_taken_login_changes_nothing(root, alice):
    bob = root.add_user('bob')
    with pytest.raises((KeyError, ValueError)):
        root.rename_user(alice, 'bob')
    assert root.user_by_login('alice') is alice
    assert alice.login == 'alice'
    assert root.user_by_login('bob') is bob
    assert len(root.home) == 2


def test_acl_principals_use_ids_not_logins(root, alice, worksheet):
    principals = alice.principals()
    assert principals == ['userid:' + alice.id]
    assert all('alice' not in p for p in principals)
    assert ('Allow', 'userid:' + alice.id) == tuple(alice.__acl__()[0][:2])
    assert worksheet.__acl__()[0][1] == 'userid:' + alice.id


def test_principals_include_groups_and_admin(root):
    group = root.add_group('staff')
    assert root.groups[group.id] is group and group.name == 'staff'
    user = root.add_user('carol', is_admin=True)
    user.group_ids.add(group.id)
    assert set(user.principals()) == {
        'userid:' + user.id, 'group:' + group.id, 'role:admin'}


# --- Worksheet numbering ------------------------------------------------------------

def test_create_worksheet_numbering(alice):
    numbers = [alice.create_worksheet('W%d' % i).number for i in range(3)]
    assert numbers == [0, 1, 2]
    assert sorted(alice.keys()) == ['0', '1', '2']


def test_worksheet_numbers_never_reused(alice):
    for i in range(3):
        alice.create_worksheet('W%d' % i)
    alice.remove('2')
    alice.remove('1')
    new = alice.create_worksheet('again')
    assert new.number == 3
    assert sorted(alice.keys()) == ['0', '3']
    assert len(alice.worksheets()) == 2


def test_new_worksheet_has_one_empty_compute_cell(alice):
    ws = alice.create_worksheet('W', typeset=False, system='python')
    assert isinstance(ws, Worksheet)
    assert ws.owner is alice and ws.owner_id == alice.id
    assert ws.typeset is False and ws.system == 'python'
    cells = ws.ordered_cells()
    assert len(cells) == 1
    assert cells[0].type == 'compute' and cells[0].input == ''
    assert cells[0].output.status == 'new'


# --- Cells --------------------------------------------------------------------------

def test_add_cell_appends_by_default(worksheet):
    a = worksheet.add_cell('compute', 'a')
    b = worksheet.add_cell('text', 'b')
    assert input_order(worksheet) == ['', 'a', 'b']
    assert worksheet.cell_order[-2:] == [a.id, b.id]
    assert b.type == 'text'
    assert a.worksheet is worksheet


def test_add_cell_after_and_before(worksheet):
    first = worksheet.ordered_cells()[0]
    first.input = 'first'
    last = worksheet.add_cell('compute', 'last')
    worksheet.add_cell('compute', 'after first', after=first.id)
    worksheet.add_cell('compute', 'before first', before=first.id)
    worksheet.add_cell('compute', 'after last', after=last.id)
    worksheet.add_cell('compute', 'before last', before=last.id)
    assert input_order(worksheet) == [
        'before first', 'first', 'after first', 'before last', 'last', 'after last']


def test_add_cell_ids_unique_and_increasing(worksheet):
    ids = [worksheet.add_cell('compute').id for _ in range(3)]
    worksheet.delete_cell(ids[-1])
    again = worksheet.add_cell('compute')
    assert again.id == ids[-1] + 1
    assert len(set(worksheet.cell_order)) == len(worksheet.cell_order)


def test_add_cell_rejects_bad_arguments(worksheet):
    before = list(worksheet.cell_order)
    first = before[0]
    with pytest.raises(ValueError):
        worksheet.add_cell('markdown')
    with pytest.raises(KeyError):
        worksheet.add_cell('compute', after=999)
    with pytest.raises(KeyError):
        worksheet.add_cell('compute', before=999)
    with pytest.raises(ValueError):
        worksheet.add_cell('compute', after=first, before=first)
    assert list(worksheet.cell_order) == before
    assert len(worksheet.cells) == len(before)


def test_delete_cell(worksheet):
    keep = worksheet.cell_order[0]
    gone = worksheet.add_cell('compute', 'x')
    worksheet.delete_cell(gone.id)
    assert list(worksheet.cell_order) == [keep]
    assert str(gone.id) not in worksheet.cells
    assert len(worksheet.cells) == 1


def test_delete_cell_refuses_last_cell(worksheet):
    only = worksheet.cell_order[0]
    with pytest.raises(ValueError):
        worksheet.delete_cell(only)
    assert list(worksheet.cell_order) == [only]
    assert str(only) in worksheet.cells


def test_move_cell(worksheet):
    worksheet.ordered_cells()[0].input = 'a'
    b = worksheet.add_cell('compute', 'b')
    worksheet.add_cell('compute', 'c')
    a = worksheet.ordered_cells()[0]
    # At the edges nothing moves.
    worksheet.move_cell(a.id, 'up')
    assert input_order(worksheet) == ['a', 'b', 'c']
    c = worksheet.ordered_cells()[-1]
    worksheet.move_cell(c.id, 'down')
    assert input_order(worksheet) == ['a', 'b', 'c']
    # In the middle, cells swap.
    order = worksheet.move_cell(b.id, 'up')
    assert input_order(worksheet) == ['b', 'a', 'c']
    assert order == list(worksheet.cell_order)
    worksheet.move_cell(b.id, 'down')
    worksheet.move_cell(b.id, 'down')
    assert input_order(worksheet) == ['a', 'c', 'b']


def test_move_cell_rejects_bad_direction(worksheet):
    worksheet.add_cell('compute', 'b')
    before = list(worksheet.cell_order)
    with pytest.raises(ValueError):
        worksheet.move_cell(before[1], 'sideways')
    assert list(worksheet.cell_order) == before


def test_add_delete_move_touch_modified(worksheet):
    worksheet.modified = 0
    cell = worksheet.add_cell('compute')
    assert worksheet.modified > 0
    worksheet.modified = 0
    worksheet.move_cell(cell.id, 'up')
    assert worksheet.modified > 0
    worksheet.modified = 0
    worksheet.delete_cell(cell.id)
    assert worksheet.modified > 0


# --- Per-user state -----------------------------------------------------------------

def test_state_is_per_user(root, alice, worksheet):
    bob = root.add_user('bob')
    assert worksheet.state_for(alice.id) == 'active'
    worksheet.set_state(alice.id, 'archive')
    assert worksheet.state_for(alice.id) == 'archive'
    assert worksheet.state_for(bob.id) == 'active'
    worksheet.set_state(bob.id, 'trash')
    assert worksheet.state_for(alice.id) == 'archive'
    assert worksheet.state_for(bob.id) == 'trash'
    worksheet.set_state(alice.id, 'active')
    assert worksheet.state_for(alice.id) == 'active'


@pytest.mark.parametrize('state', ['deleted', '', 'Active', None, 'all'])
def test_set_state_validation(alice, worksheet, state):
    worksheet.set_state(alice.id, 'archive')
    with pytest.raises(ValueError):
        worksheet.set_state(alice.id, state)
    assert worksheet.state_for(alice.id) == 'archive'


# --- Copy ---------------------------------------------------------------------------

def test_copy_into_other_home(root, alice, worksheet):
    bob = root.add_user('bob')
    bob.create_worksheet('bob own')
    worksheet.typeset = False
    worksheet.collaborators.append('userid:' + bob.id)
    first = worksheet.ordered_cells()[0]
    first.input = '1+1'
    first.output.update('done', [{'type': 'text', 'text': '2'}], execution_count=1)
    text = worksheet.add_cell('text', '# Title')
    busy = worksheet.add_cell('compute', 'sleep(10)')
    busy.output.queue('run', 'local')

    twin = worksheet.copy(bob, 'Copy of W')

    assert twin.owner is bob and twin.owner_id == bob.id
    assert twin.number == 1 and bob['1'] is twin
    assert twin.name == 'Copy of W' and twin.typeset is False
    assert list(twin.collaborators) == []
    cells = twin.ordered_cells()
    assert [(c.type, c.input) for c in cells] == [
        ('compute', '1+1'), ('text', '# Title'), ('compute', 'sleep(10)')]
    assert len(twin.cells) == 3
    assert cells[0].output.status == 'done'
    assert cells[0].output.outputs == [{'type': 'text', 'text': '2'}]
    assert cells[0].output.execution_count == 1
    # A cell busy in the original is not busy in the copy (nothing runs it).
    assert cells[2].output.status == 'new'
    # The copy is independent of the original.
    cells[0].input = 'changed'
    cells[0].output.clear()
    assert first.input == '1+1'
    assert first.output.outputs == [{'type': 'text', 'text': '2'}]
    assert first.output.status == 'done'
    assert text.input == '# Title'
    assert input_order(worksheet) == ['1+1', '# Title', 'sleep(10)']


def test_copy_into_own_home_gets_next_number(alice, worksheet):
    twin = worksheet.copy(alice, 'again')
    assert twin.number == 1
    assert sorted(alice.keys()) == ['0', '1']
    assert [c.input for c in twin.ordered_cells()] == ['']


# --- CellOutput ---------------------------------------------------------------------

def test_cell_output_versions():
    out = CellOutput()
    assert (out.status, out.outputs, out.version) == ('new', [], 0)
    out.queue('run1', 'server-a')
    assert (out.status, out.run_id, out.server, out.version) == (
        'queued', 'run1', 'server-a', 1)
    out.update('running', [{'text': 'a'}], started=10.0)
    assert (out.status, out.version, out.started) == ('running', 2, 10.0)
    out.update('done', [{'text': 'a'}, {'text': 'b'}], execution_count=4, finished=11.0)
    assert (out.status, out.version, out.execution_count, out.finished) == (
        'done', 3, 4, 11.0)
    assert out.outputs == [{'text': 'a'}, {'text': 'b'}]
    out.clear()
    assert (out.status, out.outputs, out.execution_count, out.version) == (
        'new', [], None, 4)
    # Queuing again forgets the previous run.
    out.update('done', [{'text': 'x'}], execution_count=5, started=1.0, finished=2.0)
    out.queue('run2', 'server-b')
    assert (out.status, out.outputs, out.execution_count, out.run_id,
            out.started, out.finished, out.version) == (
        'queued', [], None, 'run2', None, None, 6)


def test_cell_output_update_keeps_count_when_not_given():
    out = CellOutput()
    out.update('done', [], execution_count=3)
    out.update('done', [{'text': 'more'}])
    assert out.execution_count == 3


def test_cell_output_clear_while_busy_keeps_status():
    out = CellOutput()
    out.queue('run', 'server')
    out.update('running', [{'text': 'partial'}], execution_count=2)
    out.clear()
    assert out.status == 'running'
    assert out.outputs == []
    assert out.execution_count == 2
    assert out.version == 3


def test_cell_output_replace():
    source = CellOutput()
    source.update('error', [{'ename': 'E'}], execution_count=2)
    target = CellOutput()
    target.replace(source)
    assert (target.status, target.outputs, target.execution_count, target.version) == (
        'error', [{'ename': 'E'}], 2, 1)
    assert target.outputs is not source.outputs


# --- Persistence --------------------------------------------------------------------

@pytest.fixture
def db():
    database = ZODB.DB(None)
    yield database
    database.close()


def open_conn(db):
    tm = transaction.TransactionManager(explicit=True)
    return tm, db.open(transaction_manager=tm)


def test_committed_worksheet_reloads_in_second_connection(db):
    tm1, conn1 = open_conn(db)
    with tm1:
        root = get_root(conn1.root())
        alice = root.add_user('alice', 'hash')
        ws = alice.create_worksheet('Persisted')
        first = ws.ordered_cells()[0]
        first.input = '1+1'
        first.output.update('done', [{'type': 'text', 'text': '2'}], execution_count=1)
        ws.add_cell('text', 'hello', before=first.id)
        ws.set_state(alice.id, 'archive')
        ws.viewers.append('userid:someone')
        group = root.add_group('g')
        alice.group_ids.add(group.id)
        alice_id = alice.id

    tm2, conn2 = open_conn(db)
    with tm2:
        root2 = get_root(conn2.root())
        assert root2 is not root
        alice2 = root2.user_by_login('alice')
        assert alice2.id == alice_id and root2.users_by_id[alice_id] is alice2
        assert len(root2.home) == 1
        ws2 = alice2['0']
        assert ws2.name == 'Persisted' and ws2.owner is alice2
        assert [(c.type, c.input) for c in ws2.ordered_cells()] == [
            ('text', 'hello'), ('compute', '1+1')]
        out = ws2.ordered_cells()[1].output
        assert (out.status, out.outputs, out.execution_count, out.version) == (
            'done', [{'type': 'text', 'text': '2'}], 1, 1)
        assert ws2.state_for(alice_id) == 'archive'
        assert list(ws2.viewers) == ['userid:someone']
        assert list(alice2.group_ids) == [group.id]
        assert alice2.next_worksheet_number == 1
        assert len(ws2.cells) == 2

    # A later change of the output alone is seen by the other connection too.
    with tm1:
        out1 = root.user_by_login('alice')['0'].ordered_cells()[1].output
        out1.update('done', [{'type': 'text', 'text': '3'}], execution_count=2)
    with tm2:
        out2 = get_root(conn2.root()).user_by_login('alice')['0'].ordered_cells()[1].output
        assert out2.outputs == [{'type': 'text', 'text': '3'}]
        assert out2.version == 2
    conn1.close()
    conn2.close()


def test_aborted_changes_are_not_stored(db):
    tm1, conn1 = open_conn(db)
    with tm1:
        get_root(conn1.root()).add_user('alice').create_worksheet('W')
    tm1.begin()
    alice = get_root(conn1.root()).user_by_login('alice')
    alice['0'].add_cell('compute', 'never')
    alice.create_worksheet('never')
    tm1.abort()
    tm2, conn2 = open_conn(db)
    with tm2:
        alice2 = get_root(conn2.root()).user_by_login('alice')
        assert sorted(alice2.keys()) == ['0']
        assert [c.input for c in alice2['0'].ordered_cells()] == ['']
        assert alice2.next_worksheet_number == 1
    conn1.close()
    conn2.close()


def test_get_root_creates_once(db):
    tm, conn = open_conn(db)
    with tm:
        first = get_root(conn.root())
        assert isinstance(first, Root)
        assert get_root(conn.root()) is first
        assert 'home' in first
    conn.close()


def test_deleting_a_user_unlinks_their_identities():
    root = Root()
    user = root.add_user('olga')
    root.link_identity(user, 'oidc:123', {'provider': 'oidc'})
    assert root.user_by_identity('oidc:123') is user
    root.delete_user(user)
    assert root.user_by_identity('oidc:123') is None
    assert 'oidc:123' not in root.identities
