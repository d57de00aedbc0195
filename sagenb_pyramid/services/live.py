"""Live editing: what changed in a worksheet since a version a client has, waiting for
the next change, and merging an edit based on an older input of a cell.

Every change of a worksheet's content grows ``Worksheet.version`` (``touch``), and so
does every evaluation handed over (``note_run``: an evaluation of an unchanged input
must reach the other windows too) and every clearing of outputs (``note_cleared``); a
cell records the version of its last input or type change (``input_version``) and of
its last evaluation or clearing (``run_version``), a
worksheet the versions of its last deletions (``removed``).  A client that holds version ``v``
asks ``GET <worksheet>/?since=v&wait=s`` and gets the cells changed after ``v``, the
order, the ids removed after ``v``: nothing missed, nothing twice.  The wait listens to
the commit news of the worksheet's record (workers/news.py), which every change writes,
so it wakes on a commit of any app server (ZEO) and holds no thread busy.  A request
to a cell deleted meanwhile is told so (``deleted_cell_message``, views' 404).
Every answer lists who has the worksheet open (``presence``, services/presence.py) with
its ``presence_stamp``; a wait given the stamp a client holds also ends when it changes.

An edit (``PATCH .../cells/<id>`` with ``base_version``) of an input that changed since
is merged three-way with ``merge3`` (Breezy's merge, by lines): edits of different lines
both stay, overlapping ones are refused (``EditConflict``, 409) and change nothing.
"""
import time

from merge3 import Merge3

from ..acl import P
from ..resources import Cells

from . import presence as presence_service
from .serialize import cell_json, data_files_json, worksheet_json


class EditConflict(Exception):
    """An edit that cannot be merged with the cell's current input (409)."""

    def __init__(self, message, cell):
        super().__init__(message)
        self.message = message
        self.input = cell.input
        self.input_version = cell.input_version

    def json(self):
        return {'error': self.message, 'input': self.input,
                'input_version': self.input_version}


def _lines(text):
    # A last line without its newline would differ from the same line followed by one
    # added below it: merge whole lines, then drop the newline added here.
    return (text if text.endswith('\n') else text + '\n').splitlines(True)


def merge_inputs(base, mine, theirs):
    """``mine`` (edited from ``base``) merged with ``theirs`` (the input now, also from
    ``base``); None when both changed the same lines differently."""
    base_lines, mine_lines, their_lines = _lines(base), _lines(mine), _lines(theirs)
    merged = []
    for region in Merge3(base_lines, mine_lines, their_lines).merge_regions():
        kind = region[0]
        if kind == 'conflict':
            return None
        if kind == 'unchanged':
            merged.extend(base_lines[region[1]:region[2]])
        elif kind in ('a', 'same'):
            merged.extend(mine_lines[region[1]:region[2]])
        else:  # 'b'
            merged.extend(their_lines[region[1]:region[2]])
    text = ''.join(merged)
    if not (mine.endswith('\n') or theirs.endswith('\n')):
        text = text[:-1]
    return text


def rebase_edit(cell, text, base_version, base_input=None):
    """The input to store for an edit ``text`` based on the cell's input at
    ``base_version`` (or ``base_input``, the client's copy, when the cell no longer
    keeps that version): ``text`` itself when nothing changed since, else the merge.
    Raises ``EditConflict``."""
    if base_version in (cell.input_version, cell.written_version):
        return text
    base = cell.input_at(base_version)
    if base is None:
        base = base_input
    if base is None:
        raise EditConflict(
            'cell %d changed since version %d, which is no longer kept to merge your '
            'edit with: here is its current input; send your edit again based on it '
            '(or send "base_input", the text your edit started from)'
            % (cell.id, base_version), cell)
    merged = merge_inputs(base, text, cell.input)
    if merged is None:
        raise EditConflict(
            'cell %d was changed by someone else on the same lines since version %d: '
            'nothing was saved; here is its current input to resolve the conflict with'
            % (cell.id, base_version), cell)
    return merged


def changes_since(request, worksheet, since, session=None):
    """What changed in ``worksheet`` after version ``since``; the whole worksheet with
    ``"full": true`` when deletions before it are forgotten (or ``since`` is ahead).
    With who has it open (``session``: the caller's page, services/presence.py)."""
    present = presence_service.listing(request, worksheet, session)
    if since < worksheet.removed_floor or since > worksheet.version:
        data = worksheet_json(request, worksheet)
        data.update(version=worksheet.version, since=since, full=True,
                    order=list(worksheet.cell_order), removed=[], **present)
        return data
    cells = [cell_json(request, c) for c in worksheet.ordered_cells()
             if c.input_version > since or c.run_version > since]
    return {'version': worksheet.version, 'since': since, 'full': False,
            'cells': cells, 'order': list(worksheet.cell_order),
            'removed': [cell_id for version, cell_id in worksheet.removed
                        if version > since],
            'name': worksheet.name, 'typeset': worksheet.typeset,
            'system': worksheet.system, 'tags': list(worksheet.tags),
            'modified': worksheet.modified, 'data_files': data_files_json(request, worksheet),
            'trusted': worksheet.trusted_by(request.user), **present}


def wait_for_version(request, worksheet, timeout, since, presence=None):
    """Hold the request until the worksheet's version is past ``since`` (True; at once
    when ``since`` asks for the whole worksheet), or its presence stamp is not
    ``presence`` (when given), or ``timeout`` seconds have passed (False).

    Every change writes the worksheet's record, and every change of presence its stamp,
    so their commit news wakes the wait (whichever app server committed); the wait also
    ends when an entry expires.  A storage without news is looked at every half
    second."""
    workers = request.workers
    hooked = getattr(getattr(workers, 'workers', None), 'news', None)
    hooked = hooked is not None and hooked.hooked
    deadline = time.monotonic() + timeout
    while True:
        oids = [worksheet._p_oid]
        news = workers.watch(oids[0])
        if presence is not None and presence_service.watched(worksheet) is not None:
            oids.append(presence_service.watched(worksheet))
            workers.watch(oids[1], news)
        try:
            # Newer, or a ``since`` this worksheet never had / forgot: answer at once.
            if worksheet.version != since or since < worksheet.removed_floor:
                return True
            if presence is not None and presence_service.stamp(worksheet) != presence:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            workers.seen(worksheet._p_jar, oids, news)  # news of before the watch
            step = remaining if hooked else min(remaining, 0.5)
            expiry = presence_service.seconds_to_expiry(worksheet) \
                if presence is not None else None
            if expiry is not None:
                step = min(step, expiry + 0.05)  # past the moment it expires
            news.wait(step)
        finally:
            for oid in oids:
                workers.unwatch(oid, news)
        # A fresh view of the database: begin() syncs the connection.
        request.tm.abort()
        request.tm.begin()


def deleted_cell_message(request):
    """For a request to a cell that is no longer there (someone deleted it): a message
    saying so, to whoever may see the worksheet; None for anything else."""
    context = getattr(request, 'context', None)
    name = request.view_name or ''
    if not isinstance(context, Cells) or not name.isdigit():
        return None
    worksheet = context.__parent__
    if not request.has_permission(P.VIEW, worksheet) or int(name) >= worksheet.next_cell_id:
        return None
    when = [v for v, cell_id in worksheet.removed if cell_id == int(name)]
    message = 'cell %s was deleted from this worksheet%s' % (
        name, ' (at version %d)' % when[-1] if when else '')
    if request.method in ('GET', 'HEAD'):
        return message
    return message + '; your change was not saved: add its text as a new cell to keep it'
