"""services/history.py on a real database: what the history writes when two people
edit different cells of one worksheet at the same time."""
import transaction

from sagenb_pyramid.resources import get_root
from sagenb_pyramid.services import history

T0 = 1_800_000_000.0
RULES = history.Rules(60)


def test_concurrent_edits_of_different_cells_do_not_conflict_in_the_history(notebook):
    with notebook.transaction() as root:
        olivia, carl = root.add_user('olivia'), root.add_user('carl')
        ws = olivia.create_worksheet('w')
        ws.add_cell('compute', 'b')
        history.take(ws, [olivia.id, carl.id], 'auto', RULES, T0)
        ids = olivia.id, carl.id
    # Two requests at once (two connections), each an edit within the minute of a
    # revision both are authors of: each notes its author, nothing else.
    sessions = []
    for index, user_id in enumerate(ids):
        tm = transaction.TransactionManager(explicit=True)
        conn = notebook.db.open(transaction_manager=tm)
        tm.begin()
        ws = get_root(conn.root()).user_by_login('olivia')['0']
        cell = ws.ordered_cells()[index]
        cell.input = 'edited by %s' % user_id
        assert history.note_edit(ws, user_id, RULES, T0 + 10) is None
        sessions.append((tm, conn))
    for tm, conn in sessions:
        tm.commit()  # a ConflictError here would fail the test
        conn.close()
    with notebook.transaction() as root:
        ws = root.user_by_login('olivia')['0']
        assert sorted(ws.revisions.editing.keys()) == sorted(ids)
        assert [c.input for c in ws.ordered_cells()] == ['edited by %s' % i for i in ids]
        # The next revision names both, and spends the notes.
        made = history.note_edit(ws, ids[0], RULES, T0 + 70)
        assert sorted(made.author_ids) == sorted(ids)
        assert history.pending_editors(ws.revisions) == []
        assert made.summary['changed'] == 2


def test_a_revision_taken_while_another_editor_is_noted_does_not_conflict(notebook):
    """carl's first edit takes a revision (naming olivia, noted before) while greta,
    author of a revision of the last minute, edits another cell and is noted: both
    commit (the revision leaves the notes alone; a note older than the newest revision
    is spent), and greta is named by the next revision, olivia by carl's only."""
    with notebook.transaction() as root:
        olivia, carl, greta = (root.add_user(n) for n in ('olivia', 'carl', 'greta'))
        ws = olivia.create_worksheet('w')
        for text in ('b', 'c'):
            ws.add_cell('compute', text)
        history.take(ws, [olivia.id, greta.id], 'auto', RULES, T0)
        assert history.note_edit(ws, olivia.id, RULES, T0 + 5) is None
        ids = olivia.id, carl.id, greta.id
    sessions = []
    for index, (user_id, when) in enumerate(((ids[1], T0 + 11), (ids[2], T0 + 12))):
        tm = transaction.TransactionManager(explicit=True)
        conn = notebook.db.open(transaction_manager=tm)
        tm.begin()
        ws = get_root(conn.root()).user_by_login('olivia')['0']
        ws.ordered_cells()[index + 1].input = 'edited by %s' % user_id
        sessions.append((tm, conn, history.note_edit(ws, user_id, RULES, when)))
    assert sessions[0][2] is not None and sessions[1][2] is None
    for tm, conn, _ in sessions:
        tm.commit()  # a ConflictError here would fail the test
        conn.close()
    with notebook.transaction() as root:
        ws = root.user_by_login('olivia')['0']
        revisions = list(ws.revisions.values())
        assert [sorted(r.author_ids) for r in revisions] == [
            sorted(ids[::2]), sorted(ids[:2])]
        assert history.pending_editors(ws.revisions) == [ids[2]]
        made = history.note_edit(ws, ids[1], RULES, T0 + 80)
        assert sorted(made.author_ids) == sorted(ids[1:])
        assert history.pending_editors(ws.revisions) == []


def test_two_revisions_taken_at_once_both_commit(notebook):
    """carl and greta start editing at the same moment, each taking a revision (both
    move the time the history was thinned until): both commit, both are listed."""
    with notebook.transaction() as root:
        olivia, carl, greta = (root.add_user(n) for n in ('olivia', 'carl', 'greta'))
        ws = olivia.create_worksheet('w')
        ws.add_cell('compute', 'b')
        history.take(ws, [olivia.id], 'auto', RULES, T0)
        ids = carl.id, greta.id
    sessions = []
    for index, user_id in enumerate(ids):
        tm = transaction.TransactionManager(explicit=True)
        conn = notebook.db.open(transaction_manager=tm)
        tm.begin()
        ws = get_root(conn.root()).user_by_login('olivia')['0']
        ws.ordered_cells()[index].input = 'edited by %s' % user_id
        assert history.note_edit(ws, user_id, RULES, T0 + 10 + index) is not None
        sessions.append((tm, conn))
    for tm, conn in sessions:
        tm.commit()  # a ConflictError here would fail the test
        conn.close()
    with notebook.transaction() as root:
        revisions = root.user_by_login('olivia')['0'].revisions
        first = root.user_by_login('olivia').id
        assert [r.author_ids for r in revisions.values()] == [(first,), (ids[0],),
                                                               (ids[1],)]
        assert revisions.thinned_until == T0 + 11


def blob_bytes(notebook):
    """The bytes of every blob file of the database."""
    import os
    base = notebook.db.storage.fshelper.base_dir
    return sum(os.path.getsize(os.path.join(folder, name))
               for folder, _, names in os.walk(base) for name in names
               if name.endswith('.blob'))


def test_a_revision_references_a_cells_attachments_and_copies_no_bytes(notebook):
    """A revision of a worksheet whose text cell has a 200 kB attachment: the revision's
    snapshot names the cell's blob (no blob written, a few hundred bytes of records);
    the next revision, the cell unchanged, shares its snapshot."""
    picture = bytes(range(256)) * 800
    with notebook.transaction() as root:
        olivia = root.add_user('olivia')
        ws = olivia.create_worksheet('w')
        ws.notebook_metadata = {'x_unknown': {'nested': [1, 2]}}
        cell = ws.add_cell('text', '![p](attachment:p.png)')
        cell.set_attachments({'p.png': {'image/png': picture}})
        cell.metadata = {'tags': ['intro'], 'slideshow': {'slide_type': 'slide'}}
        ws.add_cell('compute', '1 + 1')
    storage = notebook.db.storage
    size, blobs = storage.getSize(), blob_bytes(notebook)
    assert blobs >= len(picture)
    with notebook.transaction() as root:
        ws = root.user_by_login('olivia')['0']
        history.take(ws, [ws.owner_id], 'auto', RULES, T0)
    grown = storage.getSize() - size
    assert blob_bytes(notebook) == blobs
    # The records of a first revision of three cells (about 3.7 kB, with its folder and
    # trees), far from the attachment's 200 kB.
    assert grown < 6000, grown
    with notebook.transaction() as root:
        ws = root.user_by_login('olivia')['0']
        cell = ws.ordered_cells()[1]
        [revision] = ws.revisions.values()
        snap = revision.cells[1]
        assert snap.attachments['p.png']['image/png']._p_oid == \
            cell.attachments['p.png']['image/png']._p_oid
        assert snap.metadata == cell.metadata
        assert revision.notebook_metadata == {'x_unknown': {'nested': [1, 2]}}
        ws.ordered_cells()[2].input = '2 + 2'
        later = history.take(ws, [ws.owner_id], 'auto', RULES, T0 + 100)
        assert later.cells[1] is snap and later.cells[2] is not revision.cells[2]
