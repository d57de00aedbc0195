"""services/worksheets.py and services/datafiles.py called directly, as a script would:
copying, adding cells, the listing's actions, emptying the trash, data files."""
import pytest
from pyramid.httpexceptions import HTTPException

from sagenb_pyramid.services import datafiles, worksheets
from sagenb_pyramid.services.evaluation import worksheet_key

from ...support.service_request import ServiceRequest

MB = 2**20
SETTINGS = {'sagenb.quota.user_mb': 1.0, 'sagenb.data.max_mb': 1}


def refused(status, call, *args, **kwargs):
    """The ``api_error`` ``call`` raises: its status must be ``status``."""
    with pytest.raises(HTTPException) as caught:
        call(*args, **kwargs)
    assert caught.value.code == status, caught.value.user_message
    return caught.value.user_message


def test_copy_worksheet(notebook):
    notebook.add_user('alice')
    notebook.add_user('bob')
    with notebook.transaction() as root:
        alice, bob = root.user_by_login('alice'), root.user_by_login('bob')
        original = alice.create_worksheet('Notes')
        original.add_cell('compute', '1+1')
        copy = worksheets.copy_worksheet(SETTINGS, original, bob)
        named = worksheets.copy_worksheet(SETTINGS, original, bob, '  Mine\n')
        assert copy.owner is bob and copy.name == 'Copy of Notes'
        assert named.name == 'Mine'
        assert [c.input for c in copy.ordered_cells()] == \
            [c.input for c in original.ordered_cells()]
        original.data_files().add_file('big.bin', b'x' * (MB // 2 + 1))
        # Bob has room for one copy of half a megabyte, not two.
        worksheets.copy_worksheet(SETTINGS, original, bob)
        message = refused(409, worksheets.copy_worksheet, SETTINGS, original, bob)
        assert 'cannot copy the worksheet' in message and 'quota' in message
        assert len(bob.worksheets()) == 3


def test_add_cell_places_it_and_checks_the_anchor(notebook):
    notebook.add_user('alice')
    notebook.add_user('bob')
    with notebook.transaction() as root:
        alice, bob = root.user_by_login('alice'), root.user_by_login('bob')
        worksheet = alice.create_worksheet('W')
        first = worksheet.cell_order[0]
        last = worksheets.add_cell(worksheet, alice, 'compute', 'x = 1')
        before = worksheets.add_cell(worksheet, alice, 'text', 'hi', before=last.id)
        after = worksheets.add_cell(worksheet, alice, after=first)
        assert worksheet.cell_order == [first, after.id, before.id, last.id]
        assert before.type == 'text' and after.type == 'compute' and after.input == ''
        refused(400, worksheets.add_cell, worksheet, alice, 'markdown')
        refused(400, worksheets.add_cell, worksheet, alice, after=999)
        refused(400, worksheets.add_cell, worksheet, alice, after=True)
        refused(400, worksheets.add_cell, worksheet, alice, after='1')
        refused(400, worksheets.add_cell, worksheet, alice, after=first, before=last.id)
        assert len(worksheet.cell_order) == 4  # the refusals added nothing
        # Input typed by someone else untrusts the worksheet; an empty cell does not.
        worksheet.trusted = True
        worksheets.add_cell(worksheet, bob)
        assert worksheet.trusted
        worksheets.add_cell(worksheet, bob, text='print(1)')
        assert not worksheet.trusted


def test_listing_actions(notebook):
    notebook.add_user('alice')
    with notebook.transaction() as root:
        alice = root.user_by_login('alice')
        request = ServiceRequest(notebook, root, alice)
        one, two = alice.create_worksheet('one'), alice.create_worksheet('two')
        numbers = [str(one.number), str(two.number)]
        with pytest.raises(worksheets.Unselected):
            worksheets.selected(alice, [])
        with pytest.raises(worksheets.Unselected):
            worksheets.selected(alice, numbers + ['404'])
        chosen = worksheets.selected(alice, numbers)
        assert chosen == [one, two]

        worksheets.listing_action(request, alice, alice, 'archive', chosen)
        assert {w.state_for(alice.id) for w in chosen} == {'archive'}
        worksheets.listing_action(request, alice, alice, 'copy', chosen)
        assert sorted(w.name for w in alice.worksheets()) == \
            ['Copy of one', 'Copy of two', 'one', 'two']
        with pytest.raises(worksheets.Unselected, match='one worksheet'):
            worksheets.listing_action(request, alice, alice, 'rename', chosen, 'x')
        with pytest.raises(worksheets.Unselected, match='new name'):
            worksheets.listing_action(request, alice, alice, 'rename', [one], '  ')
        worksheets.listing_action(request, alice, alice, 'rename', [one], ' First ')
        assert one.name == 'First'
        refused(400, worksheets.listing_action, request, alice, alice, 'burn', chosen)
        message = refused(409, worksheets.listing_action, request, alice, alice, 'delete',
                          chosen)
        assert 'trash' in message
        worksheets.listing_action(request, alice, alice, 'trash', [two])
        worksheets.listing_action(request, alice, alice, 'delete', [two])
        assert two.number not in [w.number for w in alice.worksheets()]
        key = worksheet_key(two)
        assert request.workers.discarded == []  # the process stops after the commit
    assert request.workers.discarded == [key]


def test_empty_trash_deletes_only_the_trash_after_the_commit(notebook):
    notebook.add_user('alice')
    with notebook.transaction() as root:
        alice = root.user_by_login('alice')
        alice.create_worksheet('kept')
        gone = alice.create_worksheet('gone')
        gone.set_state(alice.id, 'trash')
        keys = [worksheet_key(gone)]
    # A transaction that aborts deletes nothing and stops nothing.
    with pytest.raises(RuntimeError):
        with notebook.transaction() as root:
            request = ServiceRequest(notebook, root, root.user_by_login('alice'))
            worksheets.empty_trash(request, request.user, request.user)
            raise RuntimeError('the request failed')
    assert request.workers.discarded == []
    with notebook.transaction() as root:
        alice = root.user_by_login('alice')
        request = ServiceRequest(notebook, root, alice)
        assert [w.name for w in worksheets.empty_trash(request, alice, alice)] == ['gone']
    assert request.workers.discarded == keys
    with notebook.transaction() as root:
        assert [w.name for w in root.user_by_login('alice').worksheets()] == ['kept']


def test_data_files(notebook):
    notebook.add_user('alice')
    with notebook.transaction() as root:
        worksheet = root.user_by_login('alice').create_worksheet('W')
        data_file = datafiles.add_file(SETTINGS, worksheet, 'a.txt', b'hello')
        assert data_file.read() == b'hello'
        assert datafiles.worksheet_of(worksheet.files) is worksheet
        refused(409, datafiles.add_file, SETTINGS, worksheet, 'a.txt', b'again')
        datafiles.add_file(SETTINGS, worksheet, 'a.txt', b'again', replace=True)
        assert worksheet.files['a.txt'].read() == b'again'
        refused(400, datafiles.add_file, SETTINGS, worksheet, '../a.txt', b'')
        refused(400, datafiles.add_file, SETTINGS, worksheet, None, b'')
        assert 'at most 1 MB' in refused(413, datafiles.add_file, SETTINGS, worksheet,
                                         'big', b'x' * (MB + 1))
        # Under the per-file limit, past the quota (1 MB) with what is there.
        datafiles.add_file(SETTINGS, worksheet, 'half', b'x' * (MB // 2))
        assert 'quota' in refused(413, datafiles.add_file, SETTINGS, worksheet, 'more',
                                  b'x' * (MB // 2))
        # Replacing counts only the difference.
        datafiles.add_file(SETTINGS, worksheet, 'half', b'y' * (MB // 2), replace=True)

        edited = datafiles.edit_file(SETTINGS, worksheet.files['a.txt'], 'ünïcode')
        assert edited.read() == 'ünïcode'.encode('utf-8')
        refused(413, datafiles.edit_file, SETTINGS, edited, 'x' * (MB // 2 + 100))
        assert edited.read() == 'ünïcode'.encode('utf-8')

        renamed = datafiles.rename_file(edited, 'b.txt')
        assert sorted(worksheet.files.keys()) == ['b.txt', 'half']
        assert datafiles.rename_file(renamed, 'b.txt') is renamed
        refused(409, datafiles.rename_file, renamed, 'half')
        refused(400, datafiles.rename_file, renamed, '')
        assert worksheet.files['b.txt'] is renamed


def test_update_checks_every_value_then_changes(notebook):
    notebook.add_user('alice')
    notebook.add_user('bob')
    with notebook.transaction() as root:
        alice, bob = root.user_by_login('alice'), root.user_by_login('bob')
        worksheet = alice.create_worksheet('W')
        before = worksheet.modified
        worksheets.update(worksheet, alice, {'name': ' New\nname ', 'typeset': True,
                                             'system': 'gp', 'tags': ['b', 'a', 'a']})
        assert (worksheet.name, worksheet.typeset, worksheet.system, worksheet.tags) == \
            ('New name', True, 'gp', ('a', 'b'))
        assert worksheet.modified >= before
        # The state is the user's own.
        worksheets.update(worksheet, bob, {'state': 'archive'})
        assert worksheet.state_for(bob.id) == 'archive'
        assert worksheet.state_for(alice.id) == 'active'
        for changes in ({'name': 3}, {'typeset': 'yes'}, {'system': 'no such!'},
                        {'state': 'gone'}, {'tags': 'a'}, {}):
            refused(400, worksheets.update, worksheet, alice, changes)
        assert 'owner' in refused(403, worksheets.update, worksheet, bob, {'tags': []})
        # A refusal changes nothing, even what came before the wrong value.
        refused(400, worksheets.update, worksheet, alice,
                {'name': 'Other', 'state': 'trash', 'tags': 5})
        refused(403, worksheets.update, worksheet, bob, {'state': 'trash', 'tags': []})
        assert worksheet.name == 'New name' and worksheet.state_for(alice.id) == 'active'
        assert worksheet.state_for(bob.id) == 'archive'


def test_set_default_system(notebook):
    notebook.add_user('alice')
    with notebook.transaction() as root:
        alice = root.user_by_login('alice')
        worksheets.set_default_system(alice, ' python ')
        assert alice.default_system == 'python'
        for wrong in (None, 3, '', 'rm -rf'):
            refused(400, worksheets.set_default_system, alice, wrong)
        assert alice.default_system == 'python'


def test_edit_delete_and_clear_cells(notebook):
    notebook.add_user('alice')
    notebook.add_user('bob')
    with notebook.transaction() as root:
        alice, bob = root.user_by_login('alice'), root.user_by_login('bob')
        worksheet = alice.create_worksheet('W')
        cell = worksheets.add_cell(worksheet, alice, 'compute', '1+1')
        worksheet.trusted = True
        worksheets.edit_cell(cell, alice, {'input': '2+2', 'type': 'text'})
        assert (cell.input, cell.type) == ('2+2', 'text') and worksheet.trusted
        refused(400, worksheets.edit_cell, cell, alice, {'input': 'x', 'type': 'markdown'})
        refused(400, worksheets.edit_cell, cell, alice, {'type': None})
        assert (cell.input, cell.type) == ('2+2', 'text')
        # The same input again is no change of bob's; new input of his untrusts.
        worksheets.edit_cell(cell, bob, {'input': '2+2'})
        assert worksheet.trusted
        worksheets.edit_cell(cell, bob, {'input': None, 'type': 'compute'})
        assert worksheet.trusted and cell.type == 'compute'
        worksheets.edit_cell(cell, bob, {'input': 'evil()'})
        assert not worksheet.trusted and cell.input == 'evil()'
        cell.output.outputs = [{'output_type': 'stream', 'name': 'stdout', 'text': '4'}]
        assert worksheets.clear_outputs(worksheet) == [cell]
        assert not cell.output.outputs and worksheets.clear_outputs(worksheet) == []
        first = worksheet.cell_order[0]
        worksheets.delete_cell(cell)
        assert worksheet.cell_order == [first]
        assert 'at least one cell' in refused(409, worksheets.delete_cell,
                                              worksheet.cells[str(first)])
        assert worksheet.cell_order == [first]
