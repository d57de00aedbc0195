"""Two transactions that change one worksheet at once (resources/worksheets.py,
``resolve_worksheet``): edits of different cells both commit, with versions that stay
distinct and ordered (what ``?since=`` relies on); what both changed differently, or an
edit of a cell deleted meanwhile, is still a conflict.  A real FileStorage, two
connections from the same snapshot."""
import pytest
from ZODB import DB
from ZODB.FileStorage import FileStorage
from ZODB.POSException import ConflictError

from sagenb_pyramid.resources import Worksheet
from sagenb_pyramid.services.worksheets import edit_cell

from ...support.merges import two_at_once


class Owner:
    id = 'owner'


@pytest.fixture
def db(tmp_path):
    database = DB(FileStorage(str(tmp_path / 'Data.fs')))
    with database.transaction() as conn:
        ws = conn.root()['ws'] = Worksheet('w', 'owner')
        for text in ('a', 'b', 'c'):
            ws.add_cell('compute', text)
    yield database
    database.close()



def state(db):
    with db.transaction() as conn:
        ws = conn.root()['ws']
        return ws.version, {c.id: (c.input, c.input_version) for c in ws.ordered_cells()}


def test_edits_of_different_cells_both_commit_with_distinct_versions(db):
    version, _ = state(db)
    two_at_once(db, lambda ws: edit_cell(ws.cells['0'], Owner, {'input': 'A'}),
                lambda ws: edit_cell(ws.cells['1'], Owner, {'input': 'B'}))
    after, cells = state(db)
    assert after == version + 2
    assert cells == {0: ('A', version + 1), 1: ('B', version + 2), 2: ('c', 3)}


def test_an_edit_and_a_deletion_of_other_cells_both_commit(db):
    version, _ = state(db)

    def delete(ws):
        ws.delete_cell(2)

    two_at_once(db, lambda ws: edit_cell(ws.cells['0'], Owner, {'input': 'A'}), delete)
    after, cells = state(db)
    assert after == version + 2 and cells == {0: ('A', version + 1), 1: ('b', 2)}
    with db.transaction() as conn:
        assert conn.root()['ws'].removed == ((version + 2, 2),)


def test_an_edit_of_a_cell_deleted_meanwhile_is_a_conflict(db):
    def delete(ws):
        ws.delete_cell(1)

    with pytest.raises(ConflictError):
        two_at_once(db, delete, lambda ws: edit_cell(ws.cells['1'], Owner, {'input': 'B'}))
    _, cells = state(db)
    assert 1 not in cells


def test_two_different_names_are_a_conflict(db):
    def name(text):
        def change(ws):
            ws.name = text
            ws.touch()
        return change

    with pytest.raises(ConflictError):
        two_at_once(db, name('one'), name('two'))
    with db.transaction() as conn:
        assert conn.root()['ws'].name == 'one'


def test_the_version_an_edit_was_answered_with_stays_a_base_after_a_resolved_conflict(db):
    """An edit whose commit was merged with another's (its worksheet numbers moved on by
    ``resolve_worksheet``) was answered with the number it had before: that number stays
    a base of three-way merges after later edits of the cell, as any other version the
    cell answered with (no 409 "no longer kept" while the text is kept)."""
    with db.transaction() as conn:
        ws = conn.root()['ws']
        edit_cell(ws.cells['1'], Owner, {'input': 'x\ny\nz\nw'})
        base = ws.cells['1'].input_version
        # carl changes the first line; olivia, from the same base, the third: merged.
        edit_cell(ws.cells['1'], Owner, {'input': 'X\ny\nz\nw'}, base)
    answered = {}

    def olivia(ws):
        edit_cell(ws.cells['1'], Owner, {'input': 'x\ny\nZ\nw'}, base)
        # What the view answers (cell_json, before the commit).
        answered['input'] = ws.cells['1'].input
        answered['version'] = ws.cells['1'].input_version

    two_at_once(db, lambda ws: edit_cell(ws.cells['0'], Owner, {'input': 'A'}), olivia)
    assert answered['input'] == 'X\ny\nZ\nw'
    _, cells = state(db)
    assert cells[1][0] == 'X\ny\nZ\nw' and cells[1][1] != answered['version']
    # greta changes the second line, then olivia the last one from her answer.
    with db.transaction() as conn:
        cell = conn.root()['ws'].cells['1']
        edit_cell(cell, Owner, {'input': 'X\nY\nZ\nw'}, cell.input_version)
    with db.transaction() as conn:
        edit_cell(conn.root()['ws'].cells['1'], Owner, {'input': 'X\ny\nZ\nW'},
                  answered['version'])
    assert state(db)[1][1][0] == 'X\nY\nZ\nW'


def runs(db):
    with db.transaction() as conn:
        ws = conn.root()['ws']
        return ws.version, {c.id: c.run_version for c in ws.ordered_cells()}


def test_evaluations_of_different_cells_both_commit_with_distinct_run_versions(db):
    """Each evaluation grows the version (``note_run``): two at once merge like two
    edits, the second's run version moved past the first's, so a client that saw the
    first commit's version still gets the second's cell."""
    version, _ = runs(db)
    two_at_once(db, lambda ws: ws.note_run(ws.cells['0']),
                lambda ws: ws.note_run(ws.cells['1']))
    after, cells = runs(db)
    assert after == version + 2
    assert cells == {0: version + 1, 1: version + 2, 2: 0}


def test_an_evaluation_and_an_edit_of_one_cell_both_commit(db):
    version, _ = runs(db)
    two_at_once(db, lambda ws: edit_cell(ws.cells['0'], Owner, {'input': 'A'}),
                lambda ws: ws.note_run(ws.cells['0']))
    after, cells = runs(db)
    _, inputs = state(db)
    assert after == version + 2 and cells[0] == version + 2
    assert inputs[0] == ('A', version + 1)


def test_two_evaluations_of_one_cell_both_commit(db):
    version, _ = runs(db)
    two_at_once(db, lambda ws: ws.note_run(ws.cells['2']),
                lambda ws: ws.note_run(ws.cells['2']))
    after, cells = runs(db)
    assert after == version + 2 and cells[2] == version + 2


def test_an_evaluation_of_a_cell_deleted_meanwhile_is_a_conflict(db):
    with db.transaction() as conn:
        conn.root()['ws'].note_run(conn.root()['ws'].cells['1'])

    def delete(ws):
        ws.delete_cell(1)

    with pytest.raises(ConflictError):
        two_at_once(db, delete, lambda ws: ws.note_run(ws.cells['1']))
    # Deleting a cell drops its run version.
    with db.transaction() as conn:
        assert 1 not in (conn.root()['ws'].run_versions or {})
