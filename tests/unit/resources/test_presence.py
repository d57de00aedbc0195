"""Who has a worksheet open (resources/presence.py) on a real FileStorage: heartbeats,
expiry and pruning, the stamp clients wait on, what a heartbeat writes, and two
transactions of different pages at once (two connections from the same snapshot), which
must both commit."""
import pytest
from ZODB import DB
from ZODB.FileStorage import FileStorage

from sagenb_pyramid.resources import Presence, Worksheet, presence as presence_module, \
    presence_of

from ...support import merges

T0 = 1_000_000.0


@pytest.fixture
def db(tmp_path):
    database = DB(FileStorage(str(tmp_path / 'Data.fs')))
    with database.transaction() as conn:
        conn.root()['ws'] = Worksheet('w', 'owner')
    yield database
    database.close()


def run(db, change):
    with db.transaction() as conn:
        return change(conn.root()['ws'])


def seen(db, now):
    return run(db, lambda ws: sorted(
        (key, e.user_id, e.cell) for key, e in presence_of(ws).entries(now)))


def stamp(db, now):
    return run(db, lambda ws: presence_of(ws).visible_stamp(now))


def written(db, change):
    """The oids a committed ``change`` wrote (empty when it wrote nothing)."""
    before = db.lastTransaction()
    run(db, change)
    after = db.lastTransaction()
    if after == before:
        return set()
    records = next(iter(db.storage.iterator(start=after, stop=after)))
    return {record.oid for record in records}


def oids(db, *names):
    def read(ws):
        presence = presence_of(ws)
        found = {'worksheet': ws._p_oid, 'presence': presence._p_oid,
                 'stamp': presence.stamp._p_oid}
        for key, entry in presence.sessions.items():
            found[key] = entry._p_oid
        return [found[name] for name in names]
    return run(db, read)


def test_no_presence_until_a_page_reports_itself(db):
    assert run(db, presence_of) is None
    run(db, lambda ws: presence_of(ws, create=True).heartbeat('page-a', 'u1', 3, T0))
    assert seen(db, T0) == [('page-a', 'u1', 3)]
    assert stamp(db, T0) == 1


def test_the_stamp_grows_with_every_change_of_the_list_only(db):
    def beat(session, user, cell, now):
        return run(db, lambda ws: presence_of(ws, create=True).heartbeat(
            session, user, cell, now))

    assert beat('page-a', 'u1', 0, T0) is True
    assert beat('page-b', 'u2', None, T0 + 1) is True
    assert stamp(db, T0 + 2) == 2
    # Still there, same cell: no change of the list.
    assert beat('page-a', 'u1', 0, T0 + 5) is False
    assert stamp(db, T0 + 6) == 2
    assert beat('page-a', 'u1', 1, T0 + 7) is True  # another cell
    assert stamp(db, T0 + 8) == 3
    assert run(db, lambda ws: presence_of(ws).leave('page-b', T0 + 9)) is True
    assert run(db, lambda ws: presence_of(ws).leave('page-b', T0 + 9)) is False
    assert seen(db, T0 + 10) == [('page-a', 'u1', 1)]
    assert stamp(db, T0 + 10) == 4


def test_an_entry_not_seen_for_the_ttl_is_gone_on_read_then_pruned(db):
    ttl = presence_module.TTL
    run(db, lambda ws: presence_of(ws, create=True).heartbeat('page-a', 'u1', 0, T0))
    run(db, lambda ws: presence_of(ws).heartbeat('page-b', 'u2', 0, T0 + 30))
    before = stamp(db, T0 + ttl - 1)
    assert [k for k, *_ in seen(db, T0 + ttl - 1)] == ['page-a', 'page-b']
    # Expired, nobody wrote: gone on read, and the stamp clients see has grown.
    assert [k for k, *_ in seen(db, T0 + ttl)] == ['page-b']
    assert stamp(db, T0 + ttl) == before + 1
    # The next write prunes it: the list and the stamp seen stay as they were.
    run(db, lambda ws: presence_of(ws).heartbeat('page-b', 'u2', 0, T0 + ttl + 1))
    assert run(db, lambda ws: list(presence_of(ws).sessions)) == ['page-b']
    assert stamp(db, T0 + ttl + 1) == before + 1
    # The expired page comes back (a tab that slept): a new arrival, the stamp grows.
    run(db, lambda ws: presence_of(ws).heartbeat('page-a', 'u1', 0, T0 + ttl + 2))
    assert stamp(db, T0 + ttl + 2) == before + 2
    # The next expiry: page-b's, whose heartbeat at T0 + ttl + 1 rewrote its time.
    assert run(db, lambda ws: presence_of(ws).next_expiry(T0 + ttl + 2)) == pytest.approx(
        ttl - 1)


def test_a_heartbeat_that_changes_nothing_writes_nothing_then_only_its_entry(db):
    run(db, lambda ws: presence_of(ws, create=True).heartbeat('page-a', 'u1', 0, T0))
    entry, worksheet, stamp_oid = oids(db, 'page-a', 'worksheet', 'stamp')
    # Seen less than REFRESH seconds ago: nothing is written at all.
    assert written(db, lambda ws: presence_of(ws).heartbeat('page-a', 'u1', 0, T0 + 5)) \
        == set()
    # Older: its own small record only (not the worksheet, not the stamp, not the tree).
    later = T0 + presence_module.REFRESH + 1
    assert written(db, lambda ws: presence_of(ws).heartbeat('page-a', 'u1', 0, later)) \
        == {entry}
    # Another cell: the entry and the stamp, never the worksheet's record.
    changed = written(db, lambda ws: presence_of(ws).heartbeat('page-a', 'u1', 4, later + 1))
    assert changed == {entry, stamp_oid} and worksheet not in changed


def two_at_once(db, first, second):
    """``first`` and ``second`` (functions of the worksheet's ``Presence``) in
    transactions begun from the same state; the first commits, then the second (which
    must resolve the conflict, not raise it)."""
    merges.two_at_once(db, lambda ws: first(presence_of(ws)),
                       lambda ws: second(presence_of(ws)))


def test_two_pages_arriving_at_once_both_commit(db):
    run(db, lambda ws: presence_of(ws, create=True).heartbeat('page-0', 'u0', 0, T0))
    two_at_once(db, lambda p: p.heartbeat('page-a', 'u1', 0, T0 + 1),
                lambda p: p.heartbeat('page-b', 'u2', 1, T0 + 1))
    assert seen(db, T0 + 2) == [('page-0', 'u0', 0), ('page-a', 'u1', 0),
                                ('page-b', 'u2', 1)]
    assert stamp(db, T0 + 2) == 3  # both increments


def test_two_pages_moving_and_refreshing_at_once_both_commit(db):
    for key, user in (('page-a', 'u1'), ('page-b', 'u2')):
        run(db, lambda ws, key=key, user=user: presence_of(ws, create=True).heartbeat(
            key, user, 0, T0))
    before = stamp(db, T0)
    two_at_once(db, lambda p: p.heartbeat('page-a', 'u1', 5, T0 + 1),
                lambda p: p.heartbeat('page-b', 'u2', 6, T0 + 1))
    assert seen(db, T0 + 2) == [('page-a', 'u1', 5), ('page-b', 'u2', 6)]
    assert stamp(db, T0 + 2) == before + 2
    refresh = T0 + presence_module.REFRESH + 2
    two_at_once(db, lambda p: p.heartbeat('page-a', 'u1', 5, refresh),
                lambda p: p.heartbeat('page-b', 'u2', 7, refresh))
    assert seen(db, refresh) == [('page-a', 'u1', 5), ('page-b', 'u2', 7)]
    # One page leaving while another arrives.
    two_at_once(db, lambda p: p.leave('page-a', refresh + 1),
                lambda p: p.heartbeat('page-c', 'u3', None, refresh + 1))
    assert seen(db, refresh + 2) == [('page-b', 'u2', 7), ('page-c', 'u3', None)]


def test_a_presence_is_no_part_of_copies_and_snapshots(db):
    run(db, lambda ws: presence_of(ws, create=True).heartbeat('page-a', 'u1', 0, T0))
    assert run(db, lambda ws: ws.snapshot().presence) is None
    assert isinstance(run(db, presence_of), Presence)


def test_pruning_at_once_with_a_return_or_another_prune_commits(db):
    ttl = presence_module.TTL
    for key, user in (('page-a', 'u1'), ('page-b', 'u2'), ('page-c', 'u3')):
        run(db, lambda ws, key=key, user=user: presence_of(ws, create=True).heartbeat(
            key, user, 0, T0))
    run(db, lambda ws: presence_of(ws).heartbeat('page-c', 'u3', 1, T0 + ttl - 1))
    # page-a and page-b expired; both transactions prune them, and page-a's tab wakes up
    # in the second one.
    two_at_once(db, lambda p: p.heartbeat('page-c', 'u3', 2, T0 + ttl + 1),
                lambda p: p.heartbeat('page-a', 'u1', 3, T0 + ttl + 1))
    assert seen(db, T0 + ttl + 2) == [('page-a', 'u1', 3), ('page-c', 'u3', 2)]
    # The same page's two heartbeats as it arrives (two tabs' requests racing): one stays.
    two_at_once(db, lambda p: p.heartbeat('page-d', 'u4', 0, T0 + ttl + 3),
                lambda p: p.heartbeat('page-d', 'u4', 0, T0 + ttl + 3))
    assert [k for k, *_ in seen(db, T0 + ttl + 4)] == ['page-a', 'page-c', 'page-d']
