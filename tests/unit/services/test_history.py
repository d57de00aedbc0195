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
        # The next revision names both, and clears the notes.
        made = history.note_edit(ws, ids[0], RULES, T0 + 70)
        assert sorted(made.author_ids) == sorted(ids) and len(ws.revisions.editing) == 0
        assert made.summary['changed'] == 2
