"""A worksheet's history (issue 21): automatic revisions after bursts of edits, thinning
of old ones, differences between two states, restoring one, pinning and naming.

A revision is the worksheet's name and its cells as ``CellSnapshot``s; a cell that did
not change since the previous revision keeps that revision's snapshot, so a revision
stores only what changed.  Imported sagenb snapshots are text (``Revision.body``): they
are read with the sws parser whenever their cells are needed (their cells have no ids,
so a difference with them aligns cells by their content).

``edited`` is called by the views that change a worksheet, after the change.  It reads
the revisions of the last ``sagenb.history.interval`` seconds (a range of a tree): if
the editor is an author of one of them, it only notes the editor in
``Revisions.editing`` (the time of their first edit after the newest revision: once per
burst, a key of their own), else it takes a revision naming every editor noted since
the revision before.  Taking a revision leaves the notes as they are (a note older than
the newest revision is spent): clearing them conflicted with every note written at the
same moment, and ten editors at once ran out of pyramid_retry's attempts
(tests/e2e/test_live_soak.py).  Edits of different cells therefore write no object in
common here but at most once a minute.  The last edits of a burst are in the worksheet
itself until the next revision.  Once the worksheet has been left unchanged for the
interval the burst is over, and ``take_pending`` takes its revision (dated when it
ended) at the next read of the history or, before anything else, at the next request
that may change the worksheet (views/history.py, on ``ContextFound``): so the next
burst starts from a revision of the state it changes.  No timer in any process is
needed, and a worksheet nobody looks at costs nothing; what the worksheet holds
meanwhile is its current state, so nothing is lost until then.
"""
import copy
import difflib
import time

from ..formats import sws
from ..resources import Cell, CellSnapshot, OutputSnapshot, Revision, root_of
from ..resources.worksheets import same_attachments
from ..web import api_error

KINDS = ('import', 'auto', 'before-restore', 'restore')
# The clock revisions are taken by (tests move it), and the one of the worksheets'
# ``modified`` (tests move it too, to leave a worksheet alone for a while at once).
clock = time.time
wall_clock = time.time
MAX_NAME = 200


class Rules:
    """The settings of ``sagenb.history.*``: seconds between two automatic revisions of
    one author (0: none), and the ages after which revisions thin out to one an hour
    and one a day."""

    def __init__(self, interval=60.0, keep_all_hours=24.0, hourly_days=30.0):
        self.interval = float(interval)
        self.keep_all = float(keep_all_hours) * 3600
        self.hourly = max(float(hourly_days) * 86400, self.keep_all)

    @classmethod
    def of(cls, settings):
        return cls(settings.get('sagenb.history.interval', 60.0),
                   settings.get('sagenb.history.keep_all_hours', 24.0),
                   settings.get('sagenb.history.hourly_days', 30.0))


def edited(request, worksheet, now=None):
    """``request``'s user just changed ``worksheet``: a revision if their last one is
    older than the interval (see the module's docstring)."""
    return note_edit(worksheet, request.user.id, Rules.of(request.registry.settings), now)


def note_edit(worksheet, user_id, rules, now=None):
    now = clock() if now is None else now
    if rules.interval <= 0:
        return None
    revisions = worksheet.revisions
    if revisions is not None:
        for _key, revision in revisions.between(now - rules.interval, now + 1):
            if revision.kind != 'import' and user_id in revision.author_ids:
                latest = revisions.latest()
                if revisions.editing.get(user_id, -1.0) <= latest.time:
                    revisions.editing[user_id] = now
                return None
    return take(worksheet, [user_id], 'auto', rules, now)


def pending_editors(revisions):
    """The editors noted since the newest revision (none in a revision yet)."""
    latest = revisions.latest()
    after = latest.time if latest is not None else -1.0
    return [user_id for user_id, when in revisions.editing.items() if when > after]


def take_pending(worksheet, rules):
    """The revision of a burst of edits not yet in one (``Revisions.editing`` names its
    editors) when the worksheet is unchanged since the interval (the burst is over):
    taken now, dated at its last change (``modified``); None when there is none to
    take.  The history's readers call it, so its list ends with the last burst."""
    revisions = worksheet.revisions
    if rules.interval <= 0 or revisions is None:
        return None
    pending = pending_editors(revisions)
    # ``modified`` is the wall clock's, whatever ``clock`` the revisions are taken by.
    if not pending or wall_clock() - worksheet.modified < rules.interval:
        return None
    latest = revisions.latest()
    # After the notes it holds (so that they are spent) and the revision before.
    when = max([min(clock(), worksheet.modified)] +
               [revisions.editing[user_id] + 0.001 for user_id in pending] +
               ([latest.time + 0.001] if latest is not None else []))
    return take(worksheet, [], 'auto', rules, when)


def snapshot_of(cell, old=None):
    """A new snapshot of ``cell``, sharing ``old``'s outputs if they did not change."""
    output = old.output if old is not None and old.output.same_as(cell.output) else \
        OutputSnapshot(list(cell.output.outputs), cell.output.execution_count)
    # The attachments' blobs are the cell's own (referenced: a revision costs no copy).
    return CellSnapshot(cell.id, cell.type, cell.format, cell.input, output,
                        attachments=cell.attachments, metadata=cell.metadata)


def take(worksheet, author_ids, kind, rules, now=None, note=None):
    """A new revision of ``worksheet`` as it is now, by ``author_ids`` and the editors
    noted since the last one; old revisions thinned (``rules``).  Returns it."""
    now = clock() if now is None else now
    revisions = worksheet.history(create=True)
    previous = revisions.latest()
    shared = {}
    if previous is not None and previous.cells is not None:
        shared = {snap.id: snap for snap in previous.cells}
    snaps = []
    for cell in worksheet.ordered_cells():
        old = shared.get(cell.id)
        snaps.append(old if old is not None and old.same_as(cell) else snapshot_of(cell, old))
    authors = set(author_ids) | set(pending_editors(revisions))
    summary = summarize(previous, snaps, worksheet.name)
    if note:
        summary.update(note)
    revision = Revision(now, None, cells=tuple(snaps), worksheet_name=worksheet.name,
                        author_ids=sorted(authors), summary=summary, kind=kind,
                        notebook_metadata=worksheet.notebook_metadata)
    revisions.add(revisions.free_key(now), revision)
    thin(revisions, rules, now)
    return revision


# --- thinning ---------------------------------------------------------------------------

def thin(revisions, rules, now):
    """Thin what became older than ``rules.keep_all`` (to one an hour) and than
    ``rules.hourly`` (to one a day) since the last thinning, with the rest of their hour
    (day): the work is bounded by what was added and what one hour (day) keeps.  Pinned
    and imported revisions and the newest one stay."""
    since = revisions.thinned_until or 0.0
    _thin_window(revisions, since - rules.keep_all, now - rules.keep_all, 3600)
    _thin_window(revisions, since - rules.hourly, now - rules.hourly, 86400)
    revisions.thinned_until = now


def _thin_window(revisions, start, end, bucket_seconds):
    if end <= start:
        return
    newest = revisions.data.maxKey() if len(revisions.data) else None
    # From the start of the first bucket: what crossed earlier in it is thinned with
    # what crosses now (a bucket keeps one revision, whatever the passes).
    start = max(start, 0.0) // bucket_seconds * bucket_seconds
    buckets = {}
    for key, revision in list(revisions.between(start, end)):
        buckets.setdefault(int(revision.time // bucket_seconds), []).append((key, revision))
    for members in buckets.values():
        members.sort(key=lambda item: item[1].time)
        for key, revision in members[:-1]:
            if not revision.pinned and revision.kind != 'import' and key != newest:
                revisions.remove(key)


# --- reading revisions ------------------------------------------------------------------

def cells_of(revision):
    """The cells of a revision as dicts (``id`` None for an imported text's cells);
    ``attachments`` (name -> {mime type: Blob}) and ``metadata`` are None where the
    revision did not keep them (``Revision.holds_notebook_parts``)."""
    if revision.cells is not None:
        kept = bool(revision.holds_notebook_parts)
        return [{'id': s.id, 'type': s.type, 'format': s.format, 'input': s.input,
                 'outputs': list(s.outputs), 'execution_count': s.execution_count,
                 'attachments': (s.attachments or {}) if kept else None,
                 'metadata': (s.metadata or {}) if kept else None}
                for s in revision.cells]
    cells, raw = sws.parse_body(revision.body or '')
    return [{'id': None, 'type': c.type, 'format': c.format, 'input': c.input,
             'outputs': sws.text_outputs(text) if text is not None else [],
             'execution_count': None, 'attachments': {}, 'metadata': {}}
            for c, text in zip(cells, raw, strict=True)]


def current_cells(worksheet):
    return [{'id': c.id, 'type': c.type, 'format': c.format, 'input': c.input,
             'outputs': list(c.output.outputs), 'execution_count': c.output.execution_count,
             'attachments': c.attachments or {}, 'metadata': c.metadata or {}}
            for c in worksheet.ordered_cells()]


def cell_json(cell):
    """A ``cells_of`` dict as the API shows it: its attachments' names, not blobs."""
    data = dict(cell)
    attachments = data.pop('attachments')
    if attachments:
        data['attachments'] = sorted(attachments)
    if not data['metadata']:
        data.pop('metadata')
    return data


def _parts_changed(a, b, key):
    """Whether cells ``a`` and ``b`` (``cells_of`` dicts) differ in their ``attachments``
    (by blob: bytes are not compared) or ``metadata``; not when either side did not
    keep them."""
    if a[key] is None or b[key] is None:
        return False
    if key == 'attachments':
        return not same_attachments(a[key], b[key])
    return a[key] != b[key]


def logins(worksheet, user_ids):
    root = root_of(worksheet)
    users = root.users_by_id if root is not None else {}
    found = []
    for user_id in user_ids:
        user = users.get(user_id)
        found.append(user.login if user is not None else user_id)
    return found


def revision_json(request, revision, worksheet):
    authors = logins(worksheet, revision.author_ids)
    return {'id': revision.__name__, 'time': revision.time,
            'url': request.resource_path(revision), 'kind': revision.kind,
            'author': authors[0] if authors else None, 'authors': authors,
            'summary': revision.summary, 'name': revision.name or '',
            'pinned': bool(revision.pinned)}


# --- differences ------------------------------------------------------------------------

def _pairs(old, new):
    """(old index or None, new index or None) of matching cells: by id when both sides
    have ids, else by content (difflib's alignment of (type, input))."""
    if all(c['id'] is not None for c in old + new):
        where = {c['id']: i for i, c in enumerate(old)}
        pairs = [(where.pop(c['id'], None), j) for j, c in enumerate(new)]
        return pairs + [(i, None) for i in sorted(where.values())]
    matcher = difflib.SequenceMatcher(None, [(c['type'], c['input']) for c in old],
                                      [(c['type'], c['input']) for c in new], autojunk=False)
    pairs = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == 'equal' or tag == 'replace':
            common = min(i2 - i1, j2 - j1)
            pairs += [(i1 + k, j1 + k) for k in range(common)]
            pairs += [(i, None) for i in range(i1 + common, i2)]
            pairs += [(None, j) for j in range(j1 + common, j2)]
        elif tag == 'delete':
            pairs += [(i, None) for i in range(i1, i2)]
        else:
            pairs += [(None, j) for j in range(j1, j2)]
    return pairs


def diff_cells(old, new, old_label='a', new_label='b'):
    """Per-cell differences from ``old`` to ``new`` (lists of ``cells_of`` dicts):
    ``cells`` lists each added, removed, changed or moved cell (``input_diff``: the
    unified diff of its input; ``outputs_changed``); ``unchanged`` counts the rest."""
    pairs = _pairs(old, new)
    matched = [(i, j) for i, j in pairs if i is not None and j is not None]
    # Moved: matched cells outside the longest run kept in the same relative order.
    order = [i for i, _ in sorted(matched, key=lambda p: p[1])]
    steady = set()
    for block in difflib.SequenceMatcher(None, sorted(order), order,
                                         autojunk=False).get_matching_blocks():
        steady.update(order[block.b:block.b + block.size])
    entries, unchanged = [], 0
    for i, j in pairs:
        a = old[i] if i is not None else None
        b = new[j] if j is not None else None
        if a is None or b is None:
            cell = b or a
            entries.append({'id': cell['id'], 'change': 'added' if a is None else 'removed',
                            'position': j if a is None else i, 'type': cell['type'],
                            'input_diff': _lines(a, b, old_label, new_label),
                            'outputs_changed': bool(cell['outputs'])})
            continue
        moved = i not in steady
        outputs_changed = (a['outputs'] != b['outputs']
                           or a['execution_count'] != b['execution_count'])
        input_diff = _lines(a, b, old_label, new_label)
        attachments_changed = _parts_changed(a, b, 'attachments')
        metadata_changed = _parts_changed(a, b, 'metadata')
        changed = bool(input_diff) or a['type'] != b['type'] or a['format'] != b['format'] \
            or attachments_changed or metadata_changed
        if not (changed or moved or outputs_changed):
            unchanged += 1
            continue
        entries.append({'id': b['id'], 'change': 'changed' if changed else
                        ('moved' if moved else 'outputs'),
                        'position': j, 'moved': moved, 'type': b['type'],
                        'type_changed': a['type'] != b['type'], 'input_diff': input_diff,
                        'outputs_changed': outputs_changed,
                        'attachments_changed': attachments_changed,
                        'metadata_changed': metadata_changed})
    return {'cells': entries, 'unchanged': unchanged}


def _lines(a, b, old_label, new_label):
    before = a['input'].splitlines() if a is not None else []
    after = b['input'].splitlines() if b is not None else []
    if before == after:
        return []
    return list(difflib.unified_diff(before, after, old_label, new_label, lineterm=''))


def summarize(previous, snaps, worksheet_name):
    """Cells added, changed, removed and moved, and evaluations (cells whose outputs
    changed), from ``previous`` (a revision or None) to ``snaps``."""
    old = cells_of(previous) if previous is not None else []
    new = [{'id': s.id, 'type': s.type, 'format': s.format, 'input': s.input,
            'outputs': list(s.outputs), 'execution_count': s.execution_count,
            'attachments': s.attachments or {}, 'metadata': s.metadata or {}}
           for s in snaps]
    counts = {'added': 0, 'changed': 0, 'removed': 0, 'moved': 0, 'evaluations': 0}
    for entry in diff_cells(old, new)['cells']:
        if entry['change'] in ('added', 'removed', 'changed'):
            counts[entry['change']] += 1
        elif entry.get('moved'):
            counts['moved'] += 1
        if entry['change'] != 'removed' and entry['outputs_changed']:
            counts['evaluations'] += 1
    counts['renamed'] = previous is not None and previous.worksheet_name is not None \
        and previous.worksheet_name != worksheet_name
    return counts


# --- changing the history ---------------------------------------------------------------

def restore(worksheet, revision, user, rules, now=None):
    """Make ``worksheet`` look like ``revision``: a ``before-restore`` revision of the
    state it replaces first, then the cells (ids kept where the revision has them; a
    running cell keeps its outputs), then a ``restore`` revision.  Restored content
    may come from anyone: the worksheet becomes untrusted.  Returns the new revision."""
    now = clock() if now is None else now
    target = cells_of(revision)
    take(worksheet, [user.id], 'before-restore', rules, now)
    cells = worksheet.cells
    order = []
    changed = []  # cells made or changed: live clients get them (note_input below)
    for entry in target:
        cell_id = entry['id']
        if cell_id is not None and cell_id in cells:
            cell = cells[str(cell_id)]
        else:
            if cell_id is None or cell_id in order or cell_id >= worksheet.next_cell_id:
                cell_id = worksheet.next_cell_id
                worksheet.next_cell_id = cell_id + 1
            cell = cells.add(str(cell_id), Cell(cell_id, entry['type'], entry['input']))
            changed.append(cell)
        if (cell.type, cell.input) != (entry['type'], entry['input']):
            cell.set_input(entry['input'], entry['type'])
            changed.append(cell)
        if cell.format != entry['format']:
            cell.format = entry['format']
            changed.append(cell)
        if restore_parts(cell, entry):
            changed.append(cell)
        output = cell.output
        if output.status not in ('queued', 'running') and (
                list(output.outputs) != entry['outputs']
                or output.execution_count != entry['execution_count']):
            output.outputs = list(entry['outputs'])
            output.execution_count = entry['execution_count']
            output.status = 'done' if entry['outputs'] else 'new'
            output.full_text = output.files = output.widgets = None
            output.version += 1
            changed.append(cell)
        order.append(cell.id)
    if not order:  # a worksheet keeps at least one cell
        raise api_error(409, 'this revision has no cells to restore')
    gone = [cell_id for cell_id in worksheet.cell_order if cell_id not in order]
    for cell_id in gone:
        cells.remove(str(cell_id))
    worksheet.cell_order[:] = order
    if revision.worksheet_name and revision.worksheet_name != worksheet.name:
        worksheet.name = revision.worksheet_name
    if revision.holds_notebook_parts and \
            (revision.notebook_metadata or None) != (worksheet.notebook_metadata or None):
        worksheet.notebook_metadata = copy.deepcopy(revision.notebook_metadata)
    worksheet.trusted = False
    worksheet.touch()
    # What live clients are told (services/live.py): the cells changed, those removed.
    for cell in {id(c): c for c in changed}.values():
        worksheet.note_input(cell)
    for cell_id in gone:
        worksheet.forget_cell(cell_id)
    return take(worksheet, [user.id], 'restore', rules, now + 0.001,
                note={'restored': revision.__name__})


def restore_parts(cell, entry):
    """The attachments (the revision's blobs themselves: never changed, so shared) and
    metadata of ``entry`` (a ``cells_of`` dict) put back on ``cell``; nothing for a
    revision that did not keep them.  Whether anything changed."""
    changed = False
    if entry['attachments'] is not None and \
            not same_attachments(entry['attachments'], cell.attachments):
        cell.attachments = {name: dict(bundle)
                            for name, bundle in entry['attachments'].items()} or None
        changed = True
    if entry['metadata'] is not None and entry['metadata'] != (cell.metadata or {}):
        cell.metadata = copy.deepcopy(entry['metadata']) or None
        changed = True
    return changed


def update_revision(revision, body):
    """A revision's ``name`` (a string, at most 200 characters) and/or ``pinned``."""
    if 'name' not in body and 'pinned' not in body:
        raise api_error(400, 'nothing to change: give "name" or "pinned"')
    name = body.get('name', revision.name or '')
    if not isinstance(name, str) or len(name) > MAX_NAME:
        raise api_error(400, '"name" must be a string of at most %d characters' % MAX_NAME)
    pinned = body.get('pinned', bool(revision.pinned))
    if not isinstance(pinned, bool):
        raise api_error(400, '"pinned" must be true or false')
    if name.strip() != (revision.name or ''):
        revision.name = name.strip()
    if pinned != bool(revision.pinned):
        revision.pinned = pinned
