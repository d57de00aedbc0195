"""Presence (issue 21): the pages that have a worksheet open say so (``heartbeat``,
``leave``), and every ``?since=`` answer lists them (``listing``) with the stamp live
clients wait on (services/live.py).  What is stored: resources/presence.py.

Anyone who may view the worksheet appears; the cell of someone who may not edit it is
not shown (a viewer changes no cell, so their marker would warn of nothing, and a class
viewing a worksheet is not followed cell by cell).  A page's session id is its own
random name; only its user may move or close it.
"""
import hashlib
import re
import time

from ..acl import P
from ..resources import presence_of
from ..web import api_error

# The clock of heartbeats and expiry (tests move it).
clock = time.time
# Pages of one user on one worksheet at once (tabs, windows): a script cannot fill the
# list.
MAX_PAGES_PER_USER = 10
SESSION = re.compile(r'^[A-Za-z0-9_-]{8,64}$')
# Markers' colours: white text on each has a contrast of at least 4.5:1 (WCAG AA).
PALETTE = ('#b71c1c', '#0d47a1', '#1b5e20', '#6a1b9a', '#bf360c', '#006064', '#880e4f',
           '#4e342e', '#283593', '#00695c', '#37474f', '#ad1457')


def color_of(login):
    """A user's colour: the same on every page and app server."""
    digest = hashlib.sha256(login.encode('utf-8')).digest()
    return PALETTE[int.from_bytes(digest[:4], 'big') % len(PALETTE)]


def session_id(value, name='session'):
    if not isinstance(value, str) or not SESSION.match(value):
        raise api_error(400, '"%s" must be the page\'s id: 8 to 64 letters, digits, "-" '
                             'or "_"' % name)
    return value


def cell_id(worksheet, value):
    """The cell a heartbeat names (None: none, or a cell deleted meanwhile)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise api_error(400, '"cell" must be a cell id or null')
    return value if value in worksheet.cell_order else None


def _check_owner(presence, session, user):
    entry = presence.sessions.get(session) if presence is not None else None
    if entry is not None and entry.user_id != user.id:
        raise api_error(403, 'this page id is another user\'s')


def heartbeat(request, worksheet, session, cell, now=None):
    """``request``'s page ``session`` has the worksheet open, in ``cell``."""
    now = clock() if now is None else now
    user = request.user
    if not request.has_permission(P.EDIT, worksheet):
        cell = None
    presence = presence_of(worksheet)
    _check_owner(presence, session, user)
    if presence is None or session not in presence.sessions:
        mine = sum(1 for _, entry in (presence.entries(now) if presence else ())
                   if entry.user_id == user.id)
        if mine >= MAX_PAGES_PER_USER:
            raise api_error(429, 'you have this worksheet open in %d pages already; close '
                                 'one of them' % mine)
    presence = presence_of(worksheet, create=True)
    presence.heartbeat(session, user.id, cell, now)


def leave(request, worksheet, session, now=None):
    """``request``'s page ``session`` is closed (nothing to do when it is not listed)."""
    now = clock() if now is None else now
    presence = presence_of(worksheet)
    _check_owner(presence, session, request.user)
    if presence is not None:
        presence.leave(session, now)


def stamp(worksheet, now=None):
    presence = presence_of(worksheet)
    if presence is None:
        return 0
    return presence.visible_stamp(clock() if now is None else now)


def listing(request, worksheet, session=None, now=None):
    """``{"presence": [entry...], "presence_stamp"}`` for the ``?since=`` answers; the
    caller's own page (``session``, or any of the caller's without one) has
    ``"self": true``."""
    now = clock() if now is None else now
    presence = presence_of(worksheet)
    if presence is None:
        return {'presence': [], 'presence_stamp': 0}
    users = request.root.users_by_id
    me = request.user.id if request.user is not None else None
    found = []
    for key, entry in presence.entries(now):
        user = users.get(entry.user_id)
        if user is None:  # an account deleted meanwhile
            continue
        item = {'session': key, 'user': user.login, 'name': user.fullname or user.login,
                'cell': entry.cell, 'color': color_of(user.login), 'seen': entry.seen}
        if (key == session) if session is not None else (entry.user_id == me):
            item['self'] = True
        found.append(item)
    found.sort(key=lambda item: (item['name'].lower(), item['user'], item['session']))
    return {'presence': found, 'presence_stamp': presence.visible_stamp(now)}


def watched(worksheet):
    """The oid whose commits change the presence stamp (None: no presence yet)."""
    presence = presence_of(worksheet)
    return presence.stamp._p_oid if presence is not None else None


def seconds_to_expiry(worksheet, now=None):
    presence = presence_of(worksheet)
    if presence is None:
        return None
    return presence.next_expiry(clock() if now is None else now)
