"""Two transactions that insert, move or delete cells of one worksheet at once
(resources/worksheets.py, ``CellOrder``, ``merge_order``): the orders merge three-way
instead of one request running again; a cell moved to two different places, or a
worksheet left without cells, is still a conflict.  A real FileStorage, two
connections from the same snapshot (as test_worksheet_merges.py).

The cells' folder (an OOBTree by name) has conflicts of its own: two deletions of one
cell, and a deletion of its first name ('0') with any other change, still run again."""
import pytest
from ZODB import DB
from ZODB.FileStorage import FileStorage
from ZODB.POSException import ConflictError

from sagenb_pyramid.resources import CellOrder, Worksheet
from sagenb_pyramid.resources.worksheets import merge_order

from ...support.merges import two_at_once



@pytest.fixture
def db(tmp_path):
    database = DB(FileStorage(str(tmp_path / 'Data.fs')))
    with database.transaction() as conn:
        ws = conn.root()['ws'] = Worksheet('w', 'owner')
        ws.delete_all_cells()
        for text in ('a', 'b', 'c', 'd', 'e'):
            ws.add_cell('compute', text)
    yield database
    database.close()



def order(db):
    """The order, checked against the cells stored and the deletion log."""
    with db.transaction() as conn:
        ws = conn.root()['ws']
        ids = list(ws.cell_order)
        assert sorted(ids) == sorted(int(name) for name in ws.cells.keys())
        assert len(ws.cells) == len(ids)
        return ids


def inputs(db):
    with db.transaction() as conn:
        return [c.input for c in conn.root()['ws'].ordered_cells()]


def delete(cell_id):
    return lambda ws: ws.delete_cell(cell_id)


def move(cell_id, direction):
    return lambda ws: ws.move_cell(cell_id, direction)


def test_a_new_worksheet_stores_a_cell_order(db):
    with db.transaction() as conn:
        assert type(conn.root()['ws'].cell_order) is CellOrder
    assert order(db) == [0, 1, 2, 3, 4]


def test_inserts_at_one_place_both_stay_the_first_committed_first(db):
    """Two cells given different ids (an id given by a request run again after a
    conflict, or by a restore) inserted after the same cell."""
    def insert(text, skip=0):
        def change(ws):
            ws.next_cell_id += skip
            ws.add_cell('text', text, after=1)
        return change

    two_at_once(db, insert('first'), insert('second', skip=1))
    assert order(db) == [0, 1, 5, 6, 2, 3, 4]
    assert inputs(db) == ['a', 'b', 'first', 'second', 'c', 'd', 'e']
    with db.transaction() as conn:
        assert conn.root()['ws'].next_cell_id == 7  # past both ids


def test_two_inserts_given_one_id_conflict_and_merge_when_run_again(db):
    """Both took the next id: the cells' folder cannot hold two cells under one name.
    The one that lost runs again (pyramid_retry) and merges with the other."""
    with pytest.raises(ConflictError):
        two_at_once(db, lambda ws: ws.add_cell('text', 'first', after=1),
                    lambda ws: ws.add_cell('text', 'lost', before=3))
    assert inputs(db) == ['a', 'b', 'first', 'c', 'd', 'e']
    two_at_once(db, lambda ws: ws.add_cell('text', 'x', after=4),
                lambda ws: ws.delete_cell(2))
    assert order(db) == [0, 1, 5, 3, 4, 6]


def test_an_insert_and_a_deletion_of_its_neighbour_both_commit(db):
    with db.transaction() as conn:
        version = conn.root()['ws'].version
    two_at_once(db, lambda ws: ws.add_cell('text', 'new', after=2), delete(2))
    assert order(db) == [0, 1, 5, 3, 4]
    two_at_once(db, delete(3), lambda ws: ws.add_cell('text', 'newer', before=3))
    assert order(db) == [0, 1, 5, 6, 4]
    with db.transaction() as conn:
        ws = conn.root()['ws']
        assert [cell_id for _, cell_id in ws.removed] == [2, 3]
        assert ws.version == version + 4  # four changes, each counted


def test_a_move_and_a_deletion_of_another_cell_both_commit(db):
    two_at_once(db, move(1, 'down'), delete(3))
    assert order(db) == [0, 2, 1, 4]
    two_at_once(db, delete(2), move(4, 'up'))
    assert order(db) == [0, 4, 1]


def test_a_move_and_a_deletion_of_the_same_cell_leave_it_deleted(db):
    """The deletion wins whichever commits first: the moved cell is gone."""
    two_at_once(db, move(1, 'down'), delete(1))
    assert order(db) == [0, 2, 3, 4]
    two_at_once(db, delete(3), move(3, 'up'))
    assert order(db) == [0, 2, 4]


def test_moves_of_different_cells_both_commit(db):
    two_at_once(db, move(0, 'down'), move(4, 'up'))
    assert order(db) == [1, 0, 2, 4, 3]


def test_the_same_cell_moved_differently_by_both_is_a_conflict(db):
    with pytest.raises(ConflictError):
        two_at_once(db, move(2, 'up'), move(2, 'down'))
    assert order(db) == [0, 2, 1, 3, 4]  # the first one's move, nothing of the second


def test_the_same_move_by_both_is_made_once(db):
    two_at_once(db, move(2, 'up'), move(2, 'up'))
    assert order(db) == [0, 2, 1, 3, 4]


def test_a_cell_deleted_by_both_is_deleted_once(db):
    """The orders merge (the id gone once), but the cells' folder refuses two
    deletions of one name: the second runs again and finds the cell gone (404)."""
    assert merge_order([0, 1, 2, 3], [0, 1, 3], [0, 1, 3]) == [0, 1, 3]
    with pytest.raises(ConflictError) as refused:
        two_at_once(db, delete(2), delete(2))
    assert 'OOBTree' in str(refused.value)  # the folder's, not the order's
    assert order(db) == [0, 1, 3, 4]


def test_deleting_the_last_cells_at_once_is_a_conflict(db):
    """A worksheet keeps one cell: each request checked it, the merge checks both."""
    with db.transaction() as conn:
        ws = conn.root()['ws']
        for cell_id in (2, 3, 4):
            ws.delete_cell(cell_id)
    with pytest.raises(ConflictError) as refused:
        two_at_once(db, delete(1), delete(0))
    assert 'CellOrder' in str(refused.value)
    assert order(db) == [0]


@pytest.mark.parametrize('old, committed, new, merged', [
    # Inserts by both at one place: the first committed first.
    ([1, 2], [1, 7, 2], [1, 8, 2], [1, 7, 8, 2]),
    # Inserts at the ends.
    ([1, 2], [0, 1, 2], [1, 2, 3], [0, 1, 2, 3]),
    # A move down across a cell the other inserted after.
    ([0, 1, 2, 3], [0, 2, 1, 3], [0, 1, 7, 2, 3], [0, 2, 1, 7, 3]),
    # A move far away, and an insert where it was.
    ([0, 1, 2, 3, 4, 5], [0, 2, 3, 4, 1, 5], [0, 9, 1, 2, 3, 4, 5], [0, 9, 2, 3, 4, 1, 5]),
    # Moves of different cells, apart.
    ([0, 1, 2, 3], [1, 0, 2, 3], [0, 1, 3, 2], [1, 0, 3, 2]),
    # Deletions of different cells, side by side.
    ([0, 1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 3]),
])
def test_merge_order(old, committed, new, merged):
    assert merge_order(old, committed, new) == merged


@pytest.mark.parametrize('old, committed, new', [
    ([0, 1, 2, 3], [0, 2, 1, 3], [0, 1, 3, 2]),      # one move each, overlapping
    ([0, 1, 2, 3], [0, 2, 3, 1], [1, 0, 2, 3]),      # one cell, two places
    ([0, 1], [0], [1]),                              # nothing left
])
def test_merge_order_conflicts(old, committed, new):
    with pytest.raises(ConflictError):
        merge_order(old, committed, new)
