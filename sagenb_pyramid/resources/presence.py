"""Presence (issue 21): who has a worksheet open, and in which cell, shared by every app
server through the database.

A worksheet's ``Presence`` is made at its first visitor's first heartbeat
(``presence_of``) and is a persistent object of its own, so that heartbeats never
write the worksheet's record (which would conflict with its edits and wake every
waiting client).  It maps page sessions to ``PresenceEntry``s, one small record per
open page: a heartbeat that only says "still here" rewrites that record and nothing
else.  ``stamp`` is a ``Length``: concurrent increments add up.  Two app servers'
heartbeats of different pages at once both commit: the map resolves its own conflicts
session by session (``_p_resolveConflict``; BTrees would refuse some, e.g. removing a
bucket's first key).

The stamp grows with every change of the list (a page arrives, moves to another cell,
leaves, or is pruned).  An entry not seen for ``TTL`` seconds counts as gone on read
before anybody prunes it, so what a client is told, ``visible_stamp``, is the stamp
plus the number of such entries: it grows the moment an entry expires, and pruning
moves that count into the stamp (no change then).
"""
from BTrees.Length import Length
from persistent import Persistent

from .folder import stored

# Seconds after its last heartbeat an entry is gone (the page says it is there every
# 20 s), and after which a heartbeat changing nothing else rewrites ``seen``.
TTL = 60.0
REFRESH = 20.0


@stored
class PresenceEntry(Persistent):
    """One open page: its user, the cell it is in (None: none), when it was last seen."""

    def __init__(self, user_id, cell, seen):
        self.user_id = user_id
        self.cell = cell
        self.seen = seen


@stored
class Presence(Persistent):
    """The open pages of one worksheet (see the module's docstring)."""

    def __init__(self):
        # session -> PresenceEntry; a dict replaced whole (its record is this object's).
        self.sessions = {}
        self.stamp = Length()

    def _p_resolveConflict(self, old, committed, new):
        """Two transactions changed the map at once: each session takes the side that
        changed it (a page pruned by one and back again in the other stays); anything
        else both changed is a conflict."""
        from ZODB.POSException import ConflictError
        if not all(isinstance(state, dict) for state in (old, committed, new)) or \
                set(old) != {'sessions', 'stamp'} or \
                not (_same(old['stamp'], committed.get('stamp'))
                     and _same(old['stamp'], new.get('stamp'))) or \
                set(committed) != set(old) or set(new) != set(old):
            raise ConflictError
        was, theirs, mine = old['sessions'], committed['sessions'], new['sessions']
        merged = {}
        for key in set(was) | set(theirs) | set(mine):
            before, other, own = (m.get(key) for m in (was, theirs, mine))
            if _same(own, before):
                chosen = other
            elif _same(other, before):
                chosen = own
            else:  # both changed it: a page that is there beats one pruned
                chosen = other if other is not None else own
            if chosen is not None:
                merged[key] = chosen
        return dict(committed, sessions=merged)

    def entries(self, now):
        """``[(session, entry)]`` of the pages seen in the last ``TTL`` seconds."""
        return [(session, entry) for session, entry in self.sessions.items()
                if entry.seen > now - TTL]

    def expired(self, now):
        return [session for session, entry in self.sessions.items()
                if entry.seen <= now - TTL]

    def visible_stamp(self, now):
        return self.stamp() + len(self.expired(now))

    def next_expiry(self, now):
        """Seconds until the next entry seen now expires (None: no entry)."""
        left = [entry.seen + TTL - now for _, entry in self.entries(now)]
        return max(min(left), 0.0) if left else None

    def prune(self, now):
        gone = self.expired(now)
        if gone:
            self.sessions = {key: entry for key, entry in self.sessions.items()
                             if key not in gone}
            self.stamp.change(len(gone))
        return len(gone)

    def heartbeat(self, session, user_id, cell, now):
        """The page ``session`` of ``user_id`` is there, in ``cell``; expired entries are
        pruned.  Writes ``seen`` alone only when older than ``REFRESH`` seconds.
        Returns whether the list changed (the stamp grew)."""
        pruned = self.prune(now)
        entry = self.sessions.get(session)
        if entry is None:
            self.sessions = {**self.sessions, session: PresenceEntry(user_id, cell, now)}
            self.stamp.change(1)
            return True
        if entry.cell != cell:
            entry.cell, entry.seen = cell, now
            self.stamp.change(1)
            return True
        if now - entry.seen >= REFRESH:
            entry.seen = now
        return bool(pruned)

    def leave(self, session, now):
        """The page ``session`` is closed; returns whether it was listed."""
        self.prune(now)
        if session not in self.sessions:
            return False
        self.sessions = {key: entry for key, entry in self.sessions.items()
                         if key != session}
        self.stamp.change(1)
        return True


def _same(a, b):
    """Whether two values of a stored state are the same (persistent references by
    their oids)."""
    if a is None or b is None:
        return a is b
    return getattr(a, 'oid', a) == getattr(b, 'oid', b)


def presence_of(worksheet, create=False):
    """The worksheet's ``Presence``; None while no page reported itself (unless
    ``create``, which stores one: a write of the worksheet's record, once)."""
    presence = getattr(worksheet, 'presence', None)
    if presence is None and create:
        presence = worksheet.presence = Presence()
    return presence
