"""Two transactions begun from the same state of a stored worksheet, committed one
after the other: how the unit tests of conflict resolution make a conflict happen."""
import transaction


def two_at_once(db, first, second):
    """``first`` and ``second`` (functions of the worksheet ``root['ws']``) run in
    transactions begun from the same state; the first commits, then the second."""
    managers = [transaction.TransactionManager() for _ in range(2)]
    conns = [db.open(transaction_manager=tm) for tm in managers]
    try:
        for tm in managers:
            tm.begin()
        for conn, change in zip(conns, (first, second), strict=True):
            change(conn.root()['ws'])
        managers[0].commit()
        managers[1].commit()
    finally:
        for tm in managers:
            tm.abort()
        for conn in conns:
            conn.close()
