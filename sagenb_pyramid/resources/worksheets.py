"""Worksheets and what they hold: ``Worksheet`` -> ``cells`` (``Cells``) -> ``Cell``, whose
``CellOutput`` is a persistent object of its own (outputs change often, inputs rarely);
``data/`` (``DataFiles``: ``DataFile`` over a ZODB blob) and ``revisions/``
(``Revisions``: ``Revision``), made when first needed.
"""
import copy
import shutil
import time
from difflib import SequenceMatcher

from BTrees.OOBTree import OOBTree
from merge3 import Merge3
from persistent import Persistent
from persistent.list import PersistentList
from ZODB.blob import Blob

from .. import search
from ..acl import ALL_PERMISSIONS, Allow, P, admin_principal, admin_reads_only, user_principal
from .blobs import bytes_blob, copy_blob, guess_type, read_blob
from .folder import Folder, owner_of, root_of, stored
from .shareindex import index_shares

CELL_TYPES = ('compute', 'text')
WORKSHEET_STATES = ('active', 'archive', 'trash')
# The states a cell's output passes through; ``queued`` and ``running`` are "busy".
CELL_STATUSES = ('new', 'queued', 'running', 'done', 'error')
BUSY = ('queued', 'running')
# Deleted cells a worksheet remembers (``Worksheet.removed``) for the ``since`` answers
# of services/live.py; a client further behind gets the whole worksheet.
REMOVED_KEPT = 200
# Earlier inputs a cell keeps (``Cell.past_inputs``) as bases of three-way merges: at most
# so many, and fewer when their text passes PAST_INPUT_CHARS.
PAST_INPUTS_KEPT = 8
PAST_INPUT_CHARS = 100_000


# Views of a worksheet (``<worksheet>/<view name>``).  A data file may also be reached as
# ``<worksheet>/<file name>`` (text cells of legacy worksheets refer to data files that
# way) unless its name is one of these; ``<worksheet>/data/<file name>`` always works.
WORKSHEET_VIEW_NAMES = frozenset({
    'alive', 'copy', 'evaluate_all', 'clear_outputs', 'interrupt', 'restart',
    'download.sws', 'download.ipynb', 'data', 'cells', 'revisions', 'files',
    'complete', 'inspect', 'trust', 'publish', 'print', 'sharing',
    'presence',
})


@stored
class Worksheet(Persistent):
    """A numbered worksheet of one owner, with its ordered cells.

    ``files`` holds the worksheet's data files, ``revisions`` earlier versions of its
    text; both are created on first use (worksheets stored before they existed lack
    them).  ``source`` says where an imported worksheet came from.
    """

    files = None
    revisions = None
    source = None
    # Bytes an import stored in the cells (see ``usage``); 0 for worksheets made here.
    imported_bytes = 0
    # Whether the owner vouches for the content (Jupyter's trust model): imports start
    # untrusted, and so does a worksheet once someone else changed a cell.  Only the
    # owner's view of a trusted worksheet runs the scripts of its HTML outputs.
    trusted = True
    # Whether its viewers (not only the owner and collaborators) may read its history.
    history_for_viewers = False
    # Who has it open (resources/presence.py), made at the first page's first heartbeat.
    presence = None
    # An imported notebook's metadata (less what the worksheet holds itself), written
    # back by download.ipynb: a plain dict replaced whole, or None (an optional part).
    notebook_metadata = None
    # cell id -> (version, output version, time) of its last evaluation handed over
    # (``note_run``; ``Cell.run_version``): a plain dict replaced whole, None until the
    # first evaluation (an optional part).  Here rather than on the cells for the same
    # reason as ``cell_versions``.
    run_versions = None

    def __init__(self, name, owner_id, typeset=True, system='sage'):
        self.name = name
        self.owner_id = owner_id
        self.system = system
        self.typeset = typeset
        self.created = self.modified = time.time()
        # Principal ids (``userid:...`` or ``group:...``); the sharing UI edits these.
        self.collaborators = PersistentList()
        self.viewers = PersistentList()
        # user id -> 'active' | 'archive' | 'trash'; missing means active.
        self.states = OOBTree()
        self.cells = Cells()
        self.cells.__parent__ = self
        self.cells.__name__ = 'cells'
        self.cell_order = CellOrder()
        self.next_cell_id = 0
        # The id of its publication in ``root.publications`` (None: not published).
        self.publication_id = None
        # Words the owner files it under (services/tags.py checks them), sorted.
        self.tags = ()
        self.history_for_viewers = False
        # Grows with every change of content (touch); cells record it (input_version).
        self.version = 0
        # ((version, cell id), ...) of the last REMOVED_KEPT deletions, and the version
        # of the last one forgotten: a ``since`` below it gets the whole worksheet.
        self.removed = ()
        self.removed_floor = 0
        # cell id -> the version of its last input or type change (``Cell.input_version``),
        # here rather than on the cells so that concurrent edits of different cells merge
        # (``_p_resolveConflict``) with each cell's version moved past the other's.
        self.cell_versions = {}

    @property
    def number(self):
        return int(self.__name__)

    @property
    def owner(self):
        return self.__parent__

    def __getitem__(self, name):
        if name == 'cells':
            return self.cells
        if name == 'data' and self.files is not None:
            return self.files
        if name == 'revisions':
            return self.history()
        if self.files is not None and name not in WORKSHEET_VIEW_NAMES:
            return self.files[name]
        raise KeyError(name)

    def data_files(self):
        """The folder of data files, created when first needed."""
        if self.files is None:
            self.files = DataFiles()
            self.files.__parent__ = self
            self.files.__name__ = 'data'
        return self.files

    def history(self, create=False):
        """Its ``Revisions``; one in no database (empty) while none was made, unless
        ``create``."""
        if self.revisions is not None:
            return self.revisions
        revisions = Revisions()
        revisions.__parent__ = self
        revisions.__name__ = 'revisions'
        if create:
            self.revisions = revisions
        return revisions

    def add_revision(self, when, body, author_id=None):
        return self.history(create=True).add_revision(when, body, author_id)

    def trusted_by(self, user):
        """Whether ``user`` wrote (or vouched for) everything in the worksheet."""
        return bool(self.trusted) and user is not None and user.id == self.owner_id

    def changed_by(self, user_id):
        """A cell was changed by ``user_id``: content of anyone but the owner makes the
        worksheet untrusted until the owner trusts it again."""
        if user_id != self.owner_id and self.trusted:
            self.trusted = False

    def __acl__(self):
        acl = [(Allow, user_principal(self.owner_id), ALL_PERMISSIONS)]
        for principal in self.collaborators:
            acl.append((Allow, principal, (P.VIEW, P.EDIT, P.EVALUATE)))
        for principal in self.viewers:
            acl.append((Allow, principal, (P.VIEW,)))
        # An admin may take sharing away (moderation), never give it: the sharing
        # service refuses them anything but removals (docs/security.md, "Sharing").
        acl.append((Allow, admin_principal(), (P.SHARE,)))
        return acl + admin_reads_only()

    def shared_principals(self):
        return set(self.collaborators) | set(self.viewers)

    def share(self, collaborators, viewers):
        """New lists of principals (``userid:``/``group:``); the root's index of
        shared worksheets follows in the same transaction."""
        before = self.shared_principals()
        if list(self.collaborators) != list(collaborators):
            self.collaborators[:] = list(collaborators)
        if list(self.viewers) != list(viewers):
            self.viewers[:] = list(viewers)
        after = self.shared_principals()
        if owner_of(self) is not None:
            root = root_of(self)
            index_shares(root, self, before - after, False)
            index_shares(root, self, after - before, True)
            search.changed(self)  # its readers: candidates of "shared" searches

    def touch(self):
        """Something of the worksheet changed: every change of its name, tags, settings,
        cells or cell inputs calls this, which grows its ``version`` (what live clients
        ask about, services/live.py) and reindexes it for search when the transaction
        commits (search.changed)."""
        self.modified = time.time()
        self.version += 1
        search.changed(self)

    def forget_cell(self, cell_id):
        """Note the deletion of ``cell_id`` at the current version (after ``touch``)."""
        self.removed, self.removed_floor = _trim_removed(
            self.removed + ((self.version, cell_id),), self.removed_floor)
        if cell_id in self.cell_versions:
            versions = dict(self.cell_versions)
            del versions[cell_id]
            self.cell_versions = versions
        if self.run_versions and cell_id in self.run_versions:
            runs = dict(self.run_versions)
            del runs[cell_id]
            self.run_versions = runs

    def note_input(self, cell):
        """``cell``'s input or type changed at the current version (after ``touch``)."""
        self.cell_versions = {**self.cell_versions, cell.id: self.version}
        cell.written_version = self.version

    def note_run(self, cell, bump=True):
        """``cell`` was handed over for evaluation: live clients waiting on the worksheet
        are woken and told (``Cell.run_version``), even when its input did not change.
        ``bump``: grow the version (once per request, however many cells it queues).
        Not a change of content: ``modified`` and the search index stay as they are."""
        if bump:
            self.version += 1
        self.run_versions = {**(self.run_versions or {}),
                             cell.id: (self.version, cell.output.version, time.time())}

    def note_cleared(self, cell, bump=True):
        """``cell``'s outputs were cleared: live clients are told as of a run (its
        ``run_version`` moves on, ``bump`` as for ``note_run``).  The rest of the run
        noted stays: the clear moved the output past it, so the cell reads as what it
        is, not as queued (serialize.run_pending).  Not a change of content either."""
        if bump:
            self.version += 1
        _, *rest = (self.run_versions or {}).get(cell.id, (0, 0, 0.0))
        self.run_versions = {**(self.run_versions or {}), cell.id: (self.version, *rest)}

    def _p_resolveConflict(self, old, committed, new):
        """Two transactions changed the worksheet at once: edits of different cells (or
        one's cell and the other's name) both stay, without running a request again.
        Each grew the version; the one committing second has its numbers moved past the
        first's.  Anything else both changed differently is a conflict, as before."""
        return resolve_worksheet(old, committed, new)

    def state_for(self, user_id):
        return self.states.get(user_id, 'active')

    def set_state(self, user_id, state):
        if state not in WORKSHEET_STATES:
            raise ValueError('state must be one of %s' % ', '.join(WORKSHEET_STATES))
        self.states[user_id] = state

    def add_cell(self, type, input='', after=None, before=None):
        if type not in CELL_TYPES:
            raise ValueError('type must be "compute" or "text"')
        if after is not None and before is not None:
            raise ValueError('give "after" or "before", not both')
        anchor = after if after is not None else before
        if anchor is not None and anchor not in self.cell_order:
            raise KeyError(anchor)
        cell_id = self.next_cell_id
        self.next_cell_id = cell_id + 1
        cell = Cell(cell_id, type, input)
        self.cells.add(str(cell_id), cell)
        if anchor is None:
            self.cell_order.append(cell_id)
        else:
            index = self.cell_order.index(anchor)
            self.cell_order.insert(index + 1 if after is not None else index, cell_id)
        self.touch()
        self.note_input(cell)
        return cell

    def delete_cell(self, cell_id):
        if len(self.cell_order) <= 1:
            raise ValueError('a worksheet keeps at least one cell')
        self.cell_order.remove(cell_id)
        self.cells.remove(str(cell_id))
        self.touch()
        self.forget_cell(cell_id)

    def move_cell(self, cell_id, direction):
        order = list(self.cell_order)
        index = order.index(cell_id)
        target = index - 1 if direction == 'up' else index + 1
        if direction not in ('up', 'down'):
            raise ValueError('direction must be "up" or "down"')
        if 0 <= target < len(order):
            order[index], order[target] = order[target], order[index]
            self.cell_order[:] = order
            self.touch()
        return order

    def ordered_cells(self):
        return [self.cells[str(cell_id)] for cell_id in self.cell_order]

    def charge_import(self, nbytes):
        """Count ``nbytes`` an import stored in the cells against the owner's quota."""
        owner = owner_of(self)
        if owner is not None:
            owner.storage_use().change(nbytes)
        self.imported_bytes += nbytes

    def copy(self, owner, name):
        twin = owner.create_worksheet(name, typeset=self.typeset, system=self.system)
        if self.imported_bytes:
            twin.charge_import(self.imported_bytes)
        # A copy of someone else's worksheet is content its new owner did not write.
        twin.trusted = bool(self.trusted) and owner.id == self.owner_id
        twin.delete_all_cells()
        twin.notebook_metadata = copy.deepcopy(self.notebook_metadata)
        for cell in self.ordered_cells():
            new = twin.add_cell(cell.type, cell.input)
            new.format = cell.format
            new.copy_notebook_parts(cell)
            new.output.replace(cell.output)
        if self.files is not None:
            for data_file in self.files.values():
                twin.data_files().add(data_file.__name__, data_file.copy())
        return twin

    def snapshot(self):
        """A detached copy of the worksheet as it is now (cells with their outputs and
        files, data files) for a publication: in nobody's home, counted in no quota."""
        twin = Worksheet(self.name, self.owner_id, typeset=self.typeset, system=self.system)
        # What a publication shows is rendered untrusted for everybody.
        twin.trusted = False
        for cell in self.ordered_cells():
            # The same ids as the original's cells (a cell's URL names the same cell).
            new = twin.cells.add(str(cell.id), Cell(cell.id, cell.type, cell.input))
            twin.cell_order.append(cell.id)
            new.format = cell.format
            new.copy_notebook_parts(cell)
            new.output.replace(cell.output)
            # Outputs are replaced whole by evaluations, but a snapshot must share nothing.
            new.output.outputs = copy.deepcopy(new.output.outputs)
        twin.next_cell_id = self.next_cell_id
        twin.version = self.version
        twin.cell_versions = dict(self.cell_versions)
        if self.files is not None:
            for data_file in self.files.values():
                twin.data_files().add(data_file.__name__, data_file.copy())
        twin.created, twin.modified = self.created, self.modified
        twin.notebook_metadata = copy.deepcopy(self.notebook_metadata)
        return twin

    def delete_all_cells(self):
        cell_ids = list(self.cell_order)
        for cell_id in cell_ids:
            self.cells.remove(str(cell_id))
        del self.cell_order[:]
        self.touch()
        for cell_id in cell_ids:
            self.forget_cell(cell_id)


def _trim_removed(removed, floor):
    """The log of deletions cut to its last REMOVED_KEPT, and the new floor."""
    if len(removed) > REMOVED_KEPT:
        floor = max(floor, removed[-REMOVED_KEPT - 1][0])
        removed = removed[-REMOVED_KEPT:]
    return removed, floor


_MISSING = object()
# What ``resolve_worksheet`` merges itself; any other attribute changed by both
# transactions to different values is a conflict.
_MERGED = frozenset({'version', 'modified', 'cell_versions', 'removed', 'removed_floor',
                     'trusted', 'run_versions', 'next_cell_id'})


def _same(a, b):
    if a is b:
        return True
    try:
        return bool(a == b)
    except ValueError:  # two different persistent references
        return False


def merge_attributes(old, committed, new, skip=()):
    """``committed`` with what ``new`` changed from ``old`` (leaving the keys ``skip``
    to the caller); ConflictError for a key both changed to different values."""
    from ZODB.POSException import ConflictError
    result = dict(committed)
    for key in (set(old) | set(committed) | set(new)) - set(skip):
        was, theirs, mine = (s.get(key, _MISSING) for s in (old, committed, new))
        if _same(mine, was):
            continue
        if not (_same(theirs, was) or _same(theirs, mine)):
            raise ConflictError
        if mine is _MISSING:
            result.pop(key, None)
        else:
            result[key] = mine
    return result


def resolve_worksheet(old, committed, new):
    """The state of a worksheet two transactions changed from ``old`` (see
    ``Worksheet._p_resolveConflict``); raises ConflictError when they cannot merge."""
    from ZODB.POSException import ConflictError
    if not all(isinstance(state, dict) for state in (old, committed, new)):
        raise ConflictError
    result = merge_attributes(old, committed, new, _MERGED)
    offset = committed.get('version', 0) - old.get('version', 0)
    result['version'] = committed.get('version', 0) + new.get('version', 0) - \
        old.get('version', 0)
    result['modified'] = max(committed.get('modified', 0), new.get('modified', 0))
    # Past every id either gave: two cells given one id conflict in ``Cells`` itself.
    result['next_cell_id'] = max(s.get('next_cell_id', 0) for s in (committed, new))
    was, theirs, mine = (s.get('trusted', True) for s in (old, committed, new))
    result['trusted'] = (mine and theirs) if mine != was and theirs != was else (
        mine if mine != was else theirs)
    versions = dict(committed.get('cell_versions') or {})
    old_versions = old.get('cell_versions') or {}
    new_versions = new.get('cell_versions') or {}
    for cell_id, version in new_versions.items():
        if old_versions.get(cell_id) != version:
            if cell_id in old_versions and cell_id not in versions:
                raise ConflictError  # an edit of a cell deleted meanwhile: run it again
            versions[cell_id] = version + offset
    for cell_id in old_versions:
        if cell_id not in new_versions:
            versions.pop(cell_id, None)
    result['cell_versions'] = versions
    runs = _merge_runs(old, committed, new, offset)
    if runs is None:
        result.pop('run_versions', None)
    else:
        result['run_versions'] = runs
    old_removed = set(old.get('removed') or ())
    added = tuple((version + offset, cell_id) for version, cell_id in new.get('removed') or ()
                  if (version, cell_id) not in old_removed)
    result['removed'], result['removed_floor'] = _trim_removed(
        tuple(committed.get('removed') or ()) + added,
        max(committed.get('removed_floor', 0), new.get('removed_floor', 0)))
    return result


def _merge_runs(old, committed, new, offset):
    """``run_versions`` of two transactions merged: the evaluations noted by ``new``
    moved past ``committed``'s version; an evaluation of a cell ``committed`` deleted
    is a conflict (run again, it is told the cell is gone).  None: neither has one."""
    from ZODB.POSException import ConflictError
    was, theirs, mine = (s.get('run_versions') for s in (old, committed, new))
    if mine is None or _same(mine, was):
        return theirs
    deleted = {cell_id for _, cell_id in committed.get('removed') or ()} - \
        {cell_id for _, cell_id in old.get('removed') or ()}
    runs = dict(theirs or {})
    was = was or {}
    for cell_id, (version, *rest) in mine.items():
        if was.get(cell_id) != (version, *rest):
            if cell_id in deleted:
                raise ConflictError
            runs[cell_id] = (version + offset, *rest)
    for cell_id in was:
        if cell_id not in mine:
            runs.pop(cell_id, None)
    return runs


@stored
class CellOrder(PersistentList):
    """The ids of a worksheet's cells in order: a list of its own so that concurrent
    inserts, moves and deletions merge (``merge_order``) instead of running again."""

    def _p_resolveConflict(self, old, committed, new):
        from ZODB.POSException import ConflictError
        if not all(isinstance(state, dict) for state in (old, committed, new)):
            raise ConflictError
        result = merge_attributes(old, committed, new, ('data',))
        result['data'] = merge_order(old.get('data', []), committed.get('data', []),
                                     new.get('data', []))
        return result


def merge_order(old, committed, new):
    """The cell order two transactions changed from ``old``, merged three-way (merge3
    over the id sequences): ids either added stay where they were put among their
    neighbours (two inserts at one place: ``committed``'s first), ids either removed
    go, a move (removed and added by one side) stays.  ConflictError when the same id
    was moved differently by both, a region both changed cannot be ordered, or no cell
    would be left (a worksheet keeps one)."""
    from ZODB.POSException import ConflictError
    merged = []
    for region in Merge3(old, committed, new).merge_regions():
        kind = region[0]
        if kind == 'unchanged':
            merged.extend(old[region[1]:region[2]])
        elif kind in ('a', 'same'):
            merged.extend(committed[region[1]:region[2]])
        elif kind == 'b':
            merged.extend(new[region[1]:region[2]])
        else:
            _, z1, z2, a1, a2, b1, b2 = region
            merged.extend(_merge_region(old[z1:z2], committed[a1:a2], new[b1:b2]))
    before, theirs, mine = set(old), set(committed), set(new)
    gone = (before - theirs) | (before - mine)
    # A cell one side moved and the other deleted: its move was merged as an insert.
    merged = [cell_id for cell_id in merged if cell_id not in gone]
    expected = (before & theirs & mine) | (theirs - before) | (mine - before)
    if len(merged) != len(set(merged)) or set(merged) != expected or not merged:
        raise ConflictError  # moved to two places, or lost in a region: run it again
    _check_moves(old, committed, new, merged)
    return merged


def _check_moves(old, committed, new, merged):
    """ConflictError unless ``merged`` keeps each side's moves (the ids of the cells
    all three keep, outside the longest run of them a side left in order: where the
    side put them among the others) and the old order of the cells neither moved."""
    from ZODB.POSException import ConflictError
    kept = set(old) & set(committed) & set(new)
    result = [cell_id for cell_id in merged if cell_id in kept]
    at = {cell_id: index for index, cell_id in enumerate(result)}
    before = [cell_id for cell_id in old if cell_id in kept]
    moved = set()
    for side in (committed, new):
        after = [cell_id for cell_id in side if cell_id in kept]
        stayed = set()
        for a, _, size in SequenceMatcher(None, before, after, autojunk=False) \
                .get_matching_blocks():
            stayed.update(before[a:a + size])
        placed = {cell_id: index for index, cell_id in enumerate(after)}
        for cell_id in set(after) - stayed:
            moved.add(cell_id)
            for other in result:
                if other != cell_id and (placed[cell_id] < placed[other]) != \
                        (at[cell_id] < at[other]):
                    raise ConflictError  # a move lost or overlapping another
    rank = {cell_id: index for index, cell_id in enumerate(before)}
    rest = [rank[cell_id] for cell_id in result if cell_id not in moved]
    if rest != sorted(rest):
        raise ConflictError


def _merge_region(base, theirs, mine):
    """Where both changed the order: each side's new ids kept after the base id they
    followed; base ids either side removed dropped.  ConflictError when a side reordered
    the base ids left in the region (a move that overlaps the other side's changes)."""
    from ZODB.POSException import ConflictError
    removed = (set(base) - set(theirs)) | (set(base) - set(mine))
    gaps = [[] for _ in range(len(base) + 1)]  # gaps[i]: the ids added before base[i]
    for side in (theirs, mine):
        at = 0
        for cell_id in side:
            if cell_id in removed:
                continue  # moved by one side, deleted by the other
            if cell_id in base:
                index = base.index(cell_id)
                if index < at:
                    raise ConflictError
                at = index + 1
            elif cell_id not in gaps[at]:
                gaps[at].append(cell_id)
    merged = []
    for index, added in enumerate(gaps):
        merged.extend(added)
        if index < len(base) and base[index] not in removed:
            merged.append(base[index])
    return merged


@stored
class Cells(Folder):
    """``<worksheet>/cells/``: cells by id (the order lives on the worksheet)."""


@stored
class Cell(Persistent):
    # How a text cell's input is written: ``markdown`` (with HTML allowed, as Jupyter)
    # or ``html`` (legacy worksheets, whose text is HTML with $math$).
    format = 'markdown'
    # Optional parts (None until an import brings them): a Jupyter markdown cell's
    # attachments, name -> {mime type: Blob} (blobs: the cell is stored again at every
    # edit of its input, its attachments are not), and its notebook metadata (tags,
    # slideshow, editable...); plain dicts, replaced whole, never changed in place.
    attachments = None
    metadata = None

    def __init__(self, cell_id, type, input=''):
        self.id = cell_id
        self.type = type
        self.input = input
        self.output = CellOutput()
        # The worksheet's version when this input was written (the worksheet's
        # ``cell_versions`` has it too, moved on when a conflict was resolved), and
        # ((input_version, input, written_version), ...) before it: the bases of merges
        # (services/live.py); entries stored before written_version was kept have two.
        self.written_version = 0
        self.past_inputs = ()

    @property
    def run_version(self):
        """The worksheet's version when the cell was last handed over for evaluation or
        had its outputs cleared (0: never since runs were noted): ``Worksheet.note_run``,
        ``note_cleared``."""
        return self.run_info()[0]

    def run_info(self):
        """``(run_version, output version then, time)`` of its last evaluation noted."""
        worksheet = self.__parent__.__parent__ if self.__parent__ is not None else None
        runs = getattr(worksheet, 'run_versions', None) or {}
        return runs.get(self.id, (0, 0, 0.0))

    @property
    def input_version(self):
        """The worksheet's version at the last change of the input or type."""
        worksheet = self.__parent__.__parent__ if self.__parent__ is not None else None
        versions = getattr(worksheet, 'cell_versions', None) or {}
        return versions.get(self.id, self.written_version)

    def set_input(self, text, type=None):
        """A new input (and/or type), noted by the worksheet (``note_input``) after its
        ``touch``; the one before is kept among the last PAST_INPUTS_KEPT (fewer past
        PAST_INPUT_CHARS)."""
        # Both numbers: an edit whose commit was merged with another's was answered
        # with the written one, and its client bases its next edit on that.
        past = self.past_inputs + ((self.input_version, self.input, self.written_version),)
        while len(past) > PAST_INPUTS_KEPT or (
                len(past) > 1 and sum(len(kept[1]) for kept in past) > PAST_INPUT_CHARS):
            past = past[1:]
        self.past_inputs = past
        self.input = text
        if type is not None:
            self.type = type

    def input_at(self, version):
        """The input as it was at ``version`` (None when no longer kept).  The number
        the edit was answered with names that input too (current or kept), even when a
        resolved conflict moved its ``input_version`` on."""
        if version in (self.input_version, self.written_version):
            return self.input
        for kept in self.past_inputs:
            if version == kept[0] or version in kept[2:]:
                return kept[1]
        return None

    @property
    def worksheet(self):
        return self.__parent__.__parent__

    def set_attachments(self, attachments):
        """``attachments``: name -> {mime type: bytes} (an import's), stored as blobs."""
        self.attachments = {name: {mime: bytes_blob(content)
                                   for mime, content in bundle.items()}
                            for name, bundle in attachments.items()} or None

    def attachment(self, name):
        """``(mime type, bytes)`` of the attachment ``name`` (its first type, as Jupyter
        shows it), or None."""
        return first_attachment(self.attachments, name)

    def attachments_data(self):
        """The attachments as name -> {mime type: bytes} (for an export)."""
        return {name: {mime: read_blob(blob) for mime, blob in bundle.items()}
                for name, bundle in (self.attachments or {}).items()}

    def locked(self, what):
        """Whether the notebook the cell came from locks it: ``what`` is ``editable`` or
        ``deletable`` (Jupyter's metadata, false to lock)."""
        return (self.metadata or {}).get(what) is False

    def copy_notebook_parts(self, other):
        """The attachments (blobs copied) and metadata of ``other``, another cell."""
        if other.attachments:
            self.attachments = {name: {mime: copy_blob(blob) for mime, blob in bundle.items()}
                                for name, bundle in other.attachments.items()}
        if other.metadata:
            self.metadata = copy.deepcopy(other.metadata)


@stored
class CellOutput(Persistent):
    """What evaluation produced: written by the worker, often, apart from the input.

    ``run_id`` names the evaluation the outputs belong to, so a late write from an
    earlier run never lands on a newer one.  ``version`` grows with every change;
    pollers ask for anything newer than the version they have.  ``full_text`` is a blob
    with the whole text of an output that was cut.
    """

    full_text = None
    # Files the evaluation wrote that are kept with it (name -> Blob), or None.
    files = None
    # While the running code waits in ``input()``: {"prompt", "password"}.
    input_request = None
    # ipywidgets models the evaluation made (@interact): {model_id: {model_name, state}}.
    widgets = None

    def __init__(self):
        self.status = 'new'
        self.outputs = []
        self.execution_count = None
        self.version = 0
        self.run_id = None
        self.server = None
        self.started = None
        self.finished = None
        self.full_text = None

    def keep_full_text(self, source):
        """Store the whole text of a cut output (a file object) as a blob."""
        blob = Blob()
        with blob.open('w') as f:
            shutil.copyfileobj(source, f)
        self.full_text = blob

    def replace(self, other):
        self.status = other.status if other.status not in BUSY else 'new'
        self.outputs = list(other.outputs)
        self.execution_count = other.execution_count
        self.full_text = other.full_text
        self.widgets = copy.deepcopy(other.widgets)
        self.files = None
        if other.files is not None:
            self.files = OOBTree({name: copy_blob(blob) for name, blob in other.files.items()})
        self.version += 1

    def set_widgets(self, widgets):
        self.widgets = widgets
        self.version += 1

    def add_file(self, name, content):
        if self.files is None:
            self.files = OOBTree()
        self.files[name] = bytes_blob(content)

    def queue(self, run_id, server):
        self.status = 'queued'
        self.outputs = []
        self.execution_count = None
        self.run_id = run_id
        self.server = server
        self.started = self.finished = None
        self.full_text = None
        self.files = None
        self.widgets = None
        self.version += 1

    def clear(self):
        """No outputs (a busy cell stays busy); whether a reader sees a change."""
        seen = bool(self.outputs or self.full_text or self.files or self.widgets) or (
            self.status not in BUSY and (self.status != 'new' or
                                         self.execution_count is not None))
        self.outputs = []
        self.full_text = None
        self.files = None
        self.widgets = None
        if self.status not in BUSY:
            self.status = 'new'
            self.execution_count = None
        self.version += 1
        return seen

    def update(self, status, outputs, execution_count=None, started=None, finished=None,
               input_request=None):
        self.status = status
        self.outputs = outputs
        if input_request != self.input_request:
            self.input_request = input_request
        if execution_count is not None:
            self.execution_count = execution_count
        if started is not None:
            self.started = started
        if finished is not None:
            self.finished = finished
        self.version += 1


@stored
class DataFiles(Folder):
    """``<worksheet>/data/``: the worksheet's data files by name.  Adding and removing
    a file changes the owner's storage total in the same transaction."""

    def add_file(self, name, content):
        if name in self:
            self.remove(name)
        return self.add(name, DataFile(content))

    def _owner(self):
        return owner_of(self.__parent__) if self.__parent__ is not None else None

    def add(self, name, obj):
        owner = self._owner()
        use = owner.storage_use() if owner is not None else None
        super().add(name, obj)
        if use is not None:
            use.change(obj.byte_size())
        return obj

    def remove(self, name):
        owner = self._owner()
        if owner is not None:
            owner.storage_use().change(-self.data[str(name)].byte_size())
        return super().remove(name)


@stored
class DataFile(Persistent):
    """A file of a worksheet, kept in a ZODB blob."""

    def __init__(self, content=b'', blob=None):
        self.blob = blob if blob is not None else bytes_blob(content)
        self.size = len(content) if blob is None else None
        self.modified = time.time()

    @property
    def content_type(self):
        return guess_type(self.__name__)

    def read(self):
        return read_blob(self.blob)

    def byte_size(self):
        if self.size is None:  # made from a blob without its size
            with self.blob.open('r') as f:
                self.size = f.seek(0, 2)
        return self.size

    def write(self, content):
        """New content; the owner's storage total follows."""
        folder = self.__parent__
        owner = folder._owner() if isinstance(folder, DataFiles) else None
        if owner is not None:
            owner.storage_use().change(len(content) - self.byte_size())
        self.blob = bytes_blob(content)
        self.size = len(content)
        self.modified = time.time()

    def copy(self):
        twin = DataFile(blob=copy_blob(self.blob))
        twin.size = self.size
        return twin


@stored
class Revisions(Folder):
    """``<worksheet>/revisions/``: earlier states of the worksheet, by time (the key is
    the time with three decimals).  Imported sagenb snapshots are text (``body``);
    revisions taken here list ``CellSnapshot``s, shared with the previous revision
    for every cell that did not change (services/history.py takes and thins them).

    ``editing``: author id -> time of their first edit after the newest revision then
    (written once per burst of each author, a key of their own: concurrent editors of
    different cells do not conflict on it; a time older than the newest revision is a
    spent note, never cleared, so that taking a revision writes nothing here)."""

    editing = None
    # Revisions older than the thinning rules' ages up to this time were thinned.
    thinned_until = 0.0

    def __init__(self):
        super().__init__()
        self.editing = OOBTree()
        self.thinned_until = 0.0

    def _p_resolveConflict(self, old, committed, new):
        """Two revisions taken at once (editors starting at the same moment) both
        advanced ``thinned_until``: the later stays; the revisions themselves are in
        ``data``, whose tree merges them.  Anything else changed is a conflict."""
        from ZODB.POSException import ConflictError
        if not all(isinstance(state, dict) for state in (old, committed, new)):
            raise ConflictError
        result = merge_attributes(old, committed, new, ('thinned_until',))
        result['thinned_until'] = max(committed.get('thinned_until', 0.0),
                                      new.get('thinned_until', 0.0))
        return result

    def free_key(self, when):
        """The key of a revision taken at ``when`` (a millisecond later while taken)."""
        name = '%.3f' % when
        while name in self:
            when += 0.001
            name = '%.3f' % when
        return name

    def add_revision(self, when, body, author_id=None):
        name = '%.3f' % when
        if name in self:
            return self[name]
        return self.add(name, Revision(when, body, author_id))

    def between(self, start, end):
        """The (key, revision) pairs taken from ``start`` to ``end`` (times), oldest
        first: a range of the tree, whatever its size."""
        return self.data.items('%.3f' % start, '%.3f' % end)

    def latest(self):
        """The newest revision, or None."""
        if not len(self.data):
            return None
        return self.data[self.data.maxKey()]


@stored
class Revision(Persistent):
    """One earlier state: an imported text (``body``, ``cells`` None) or the worksheet's
    name and cells (``cells``: ``CellSnapshot``s in order, ``body`` None).  ``kind``:
    ``import``, ``auto`` (after edits), ``before-restore``, ``restore``; ``summary``
    counts what changed since the revision before; ``name`` and ``pinned`` are the
    editors' (a pinned revision is never thinned out)."""

    cells = None
    worksheet_name = None
    author_ids = ()
    summary = None
    kind = 'import'
    name = ''
    pinned = False
    # Whether its snapshots hold the cells' attachments and metadata and it holds the
    # notebook's metadata: False for revisions taken before they did (their None means
    # "not kept", and a restore leaves the worksheet's as they are).
    holds_notebook_parts = False
    # The worksheet's ``notebook_metadata`` then (a plain dict), or None.
    notebook_metadata = None

    def __init__(self, when, body, author_id=None, cells=None, worksheet_name=None,
                 author_ids=None, summary=None, kind='import', notebook_metadata=None):
        self.time = when
        self.body = body
        self.author_id = author_id
        self.cells = cells
        self.worksheet_name = worksheet_name
        self.author_ids = tuple(author_ids if author_ids is not None
                                else ([author_id] if author_id else ()))
        self.summary = summary
        self.kind = kind
        self.name = ''
        self.pinned = False
        if cells is not None:
            self.holds_notebook_parts = True
            if notebook_metadata:
                self.notebook_metadata = copy.deepcopy(notebook_metadata)


@stored
class CellSnapshot(Persistent):
    """A cell as it was: never changed once made, so that revisions share it.  Its
    outputs are an ``OutputSnapshot`` of their own, shared too while only the input
    changes.  A text cell's attachments are the cell's own blobs (name -> {mime type:
    Blob}), referenced, not copied: an attachment is never changed, only replaced; its
    metadata a plain dict.  Both None when the cell has none (and in snapshots taken
    before they were kept: ``Revision.holds_notebook_parts``)."""

    attachments = None
    metadata = None

    def __init__(self, cell_id, type, format, input, output, attachments=None,
                 metadata=None):
        self.id = cell_id
        self.type = type
        self.format = format
        self.input = input
        self.output = output
        if attachments:
            self.attachments = {name: dict(bundle) for name, bundle in attachments.items()}
        if metadata:
            self.metadata = copy.deepcopy(metadata)

    @property
    def outputs(self):
        return self.output.outputs

    @property
    def execution_count(self):
        return self.output.execution_count

    def attachment(self, name):
        """As ``Cell.attachment``: ``(mime type, bytes)`` or None."""
        return first_attachment(self.attachments, name)

    def same_as(self, cell):
        """Whether ``cell`` (a live ``Cell``) still looks like this snapshot."""
        return (cell.id == self.id and cell.type == self.type and cell.format == self.format
                and cell.input == self.input and self.output.same_as(cell.output)
                and same_attachments(self.attachments, cell.attachments)
                and (self.metadata or None) == (cell.metadata or None))


def first_attachment(attachments, name):
    """``(mime type, bytes)`` of the attachment ``name`` of a cell's (or a snapshot's)
    ``attachments`` (its first type, as Jupyter shows it), or None."""
    bundle = (attachments or {}).get(name)
    if not bundle:
        return None
    mime, blob = next(iter(bundle.items()))
    return mime, read_blob(blob)


def same_attachments(a, b):
    """Whether two cells' attachments (name -> {mime type: Blob}, or None) are the same
    blobs under the same names: an attachment is replaced, never changed in place."""
    a, b = a or {}, b or {}
    if a.keys() != b.keys():
        return False
    for name, bundle in a.items():
        other = b[name]
        if bundle.keys() != other.keys() or any(
                blob is not other[mime] for mime, blob in bundle.items()):
            return False
    return True


@stored
class OutputSnapshot(Persistent):
    """A cell's outputs as they were (never changed once made)."""

    def __init__(self, outputs, execution_count):
        self.outputs = tuple(outputs)
        self.execution_count = execution_count

    def same_as(self, output):
        return (output.execution_count == self.execution_count
                and tuple(output.outputs) == self.outputs)
