"""What is done to worksheets as a whole, and to a home's worksheets together: changing
one's name, typesetting, system, state or tags, copying, adding, editing and deleting a
cell, clearing the outputs, the listing's actions (archive, trash, restore, copy,
rename, delete for good) and emptying the trash; the system of a user's new worksheets.

Refusals are ``api_error``s (their status and message reach the user as they are);
``Unselected`` is a listing action that has nothing to act on, which the listing tells
with a note rather than an error.  Deleting needs the request (the worksheets' processes
stop after the commit, ``evaluation.delete_worksheet``); the rest takes plain values.
"""
from .. import names
from ..resources import CELL_TYPES, WORKSHEET_STATES, Worksheet, usage
from ..web import api_error, get_str
from .evaluation import delete_worksheet
from .live import rebase_edit
from .tags import clean_tags
from .quota import require_room

LISTING_ACTIONS = ('active', 'archive', 'trash', 'copy', 'rename', 'delete')
# What ``update`` changes of a worksheet (a PATCH's fields).
WORKSHEET_FIELDS = ('name', 'typeset', 'system', 'state', 'tags')


class Unselected(Exception):
    """A listing action without what it needs (no worksheets ticked, no new name):
    nothing changed; the message says what to do."""


def new_worksheet_name(body_or_form):
    """The name given in a request's ``name`` (cleaned; "Untitled" when missing)."""
    name = get_str(body_or_form, 'name', 'Untitled', max_length=names.MAX_WORKSHEET_NAME)
    return names.clean_worksheet_name(name)


def update(worksheet, user, changes):
    """Change ``worksheet`` as ``user`` (who may edit it) asks: ``changes`` maps some of
    ``WORKSHEET_FIELDS`` to new values (``state`` is the user's own; ``tags`` the
    owner's alone: 403).  400 for a wrong value or nothing asked; a refusal changes
    nothing, and so do values the worksheet already has (its version stays)."""
    values = {}
    if 'name' in changes:
        values['name'] = new_worksheet_name({'name': changes['name']})
    if 'typeset' in changes:
        if not isinstance(changes['typeset'], bool):
            raise api_error(400, '"typeset" must be true or false')
        values['typeset'] = changes['typeset']
    if 'system' in changes:
        if names.system_problem(changes['system']):
            raise api_error(400, '"system" must be the name of a system, e.g. "sage", '
                                 '"python", "gp"')
        values['system'] = changes['system']
    if 'state' in changes and changes['state'] not in WORKSHEET_STATES:
        raise api_error(400, '"state" must be one of ' + ', '.join(WORKSHEET_STATES))
    if 'tags' in changes:
        if user.id != worksheet.owner_id:
            raise api_error(403, 'only the owner sets the tags of a worksheet')
        try:
            values['tags'] = clean_tags(changes['tags'])
        except ValueError as exc:
            raise api_error(400, '"tags": %s' % exc) from None
    if not values and 'state' not in changes:
        raise api_error(400, 'nothing to change: give "name", "typeset", "system", '
                             '"state" or "tags"')
    if 'state' in changes and changes['state'] != worksheet.state_for(user.id):
        worksheet.set_state(user.id, changes['state'])
    changed = {attr: value for attr, value in values.items()
               if getattr(worksheet, attr) != value}
    for attr, value in changed.items():
        setattr(worksheet, attr, value)
    # Only content grows the version (live clients wake on it): the user's own state,
    # or the same values again, are none.
    if changed:
        worksheet.touch()


def set_default_system(user, system):
    """``user``'s new worksheets use ``system`` (spaces around it dropped); 400 for what
    is not the name of a system."""
    if not isinstance(system, str) or names.system_problem(system.strip()):
        raise api_error(400, '"system" must be the name of a system, e.g. "sage", "python" '
                             'or "gp"')
    user.default_system = system.strip()


def copy_worksheet(settings, worksheet, user, name=None):
    """A copy of ``worksheet`` in ``user``'s home, named ``name`` (cleaned) or "Copy of
    ...".  409 when it would pass ``user``'s storage quota."""
    name = names.clean_worksheet_name(name if name is not None else 'Copy of ' + worksheet.name)
    require_room(settings, user, usage(worksheet), 'cannot copy the worksheet', 409)
    return worksheet.copy(user, name)


def add_cell(worksheet, user, cell_type='compute', text='', after=None, before=None):
    """A new cell at the end, or after/before the cell with that id; 400 for a wrong
    type or anchor.  Input typed by ``user`` counts as their change."""
    if cell_type not in CELL_TYPES:
        raise api_error(400, '"type" must be "compute" or "text"')
    anchors = {}
    for key, anchor in (('after', after), ('before', before)):
        if anchor is not None:
            if isinstance(anchor, bool) or not isinstance(anchor, int) \
                    or anchor not in worksheet.cell_order:
                raise api_error(400, '"%s" must be the id of a cell of this worksheet' % key)
            anchors[key] = anchor
    if len(anchors) > 1:
        raise api_error(400, 'give "after" or "before", not both')
    cell = worksheet.add_cell(cell_type, text, **anchors)
    if text:
        worksheet.changed_by(user.id)
    return cell


LOCKED = {
    'editable': 'cell %d is locked against editing: its notebook says "editable": '
                'false. Unlock it first (the Unlock button, or "editable": true).',
    'deletable': 'cell %d is locked against deletion: its notebook says "deletable": '
                 'false. Unlock it first (the Unlock button, or "deletable": true).',
}


def edit_cell(cell, user, changes, base_version=None, base_input=None):
    """Change ``cell`` as ``user`` asks: ``changes`` has its new ``input`` (a string;
    None leaves it) and/or ``type``, and/or its locks (``editable``, ``deletable``:
    booleans, Jupyter's metadata); 400 for a wrong type or lock, 409 for a change of a
    cell locked against editing (unlocking in the same request is allowed).  Input
    changed by ``user`` counts as their change.  With ``base_version`` (the
    ``input_version`` the edit started from) an input changed since is merged
    (``live.rebase_edit``; an edit that cannot be merged raises ``live.EditConflict``
    and changes nothing)."""
    if 'type' in changes and changes['type'] not in CELL_TYPES:
        raise api_error(400, '"type" must be "compute" or "text"')
    locks = {key: changes[key] for key in LOCKED if key in changes}
    for key, value in locks.items():
        if not isinstance(value, bool):
            raise api_error(400, '"%s" must be true or false' % key)
    text = changes.get('input')
    if text is not None and base_version is not None:
        text = rebase_edit(cell, text, base_version, base_input)
    new_input = text is not None and text != cell.input
    new_type = 'type' in changes and changes['type'] != cell.type
    editable = locks.get('editable', not cell.locked('editable'))
    if (new_input or new_type) and not editable:
        raise api_error(409, LOCKED['editable'] % cell.id)
    new_locks = {key: value for key, value in locks.items()
                 if value != (not cell.locked(key))}
    if not (new_input or new_type or new_locks):
        return
    if new_input:
        cell.worksheet.changed_by(user.id)
    worksheet = cell.worksheet
    if new_locks:
        metadata = dict(cell.metadata or {})
        for key, value in new_locks.items():
            if value:
                metadata.pop(key, None)  # unlocked: as a notebook without the key
            else:
                metadata[key] = False
        cell.metadata = metadata or None
    # Also when only a lock changed: live clients get the cell (note_input below), and
    # the input it had stays a base of merges.
    cell.set_input(text if new_input else cell.input, changes['type'] if new_type else None)
    worksheet.touch()
    worksheet.note_input(cell)


def delete_cell(cell):
    """Delete ``cell``; 409 for the last cell of its worksheet, or a cell locked against
    deletion."""
    worksheet = cell.worksheet
    if cell.locked('deletable'):
        raise api_error(409, LOCKED['deletable'] % cell.id)
    if len(worksheet.cell_order) <= 1:
        raise api_error(409, 'a worksheet keeps at least one cell')
    worksheet.delete_cell(cell.id)


def clear_outputs(worksheet):
    """Clear the outputs of every cell of ``worksheet``; returns those that had some."""
    cells = [c for c in worksheet.ordered_cells() if c.output.outputs]
    for cell in cells:
        cell.output.clear()
    return cells


def selected(home, numbers):
    """The worksheets of ``home`` numbered ``numbers`` (strings, as a form sends them);
    ``Unselected`` when there are none or one is not a worksheet here."""
    worksheets = [home.get(n) for n in numbers]
    if not worksheets or any(not isinstance(w, Worksheet) for w in worksheets):
        raise Unselected('Select one or more worksheets first.')
    return worksheets


def listing_action(request, home, user, action, worksheets, new_name=''):
    """One of the listing's buttons (``LISTING_ACTIONS``) on ``worksheets`` of ``home``,
    done by ``user`` (their owner): 400 for an unknown action, 409 for deleting a
    worksheet not in the trash or copying past the quota."""
    if action not in LISTING_ACTIONS:
        raise api_error(400, 'unknown action %r' % action)
    if action in ('active', 'archive', 'trash'):
        for worksheet in worksheets:
            worksheet.set_state(user.id, action)
    elif action == 'copy':
        require_room(request.registry.settings, home, sum(usage(w) for w in worksheets),
                     'cannot copy the worksheets', 409)
        for worksheet in worksheets:
            worksheet.copy(home, 'Copy of ' + worksheet.name)
    elif action == 'rename':
        if len(worksheets) != 1:
            raise Unselected('Select one worksheet to rename.')
        if not (new_name or '').strip():
            raise Unselected('Type the new name first.')
        worksheets[0].name = new_worksheet_name({'name': new_name})
        worksheets[0].touch()
    else:  # delete for good
        if any(w.state_for(user.id) != 'trash' for w in worksheets):
            raise api_error(409, 'only worksheets in the trash can be deleted for good')
        for worksheet in worksheets:
            delete_worksheet(request, worksheet)


def empty_trash(request, home, user):
    """Delete for good every worksheet of ``home`` in ``user``'s trash; returns them."""
    trashed = [w for w in home.worksheets() if w.state_for(user.id) == 'trash']
    for worksheet in trashed:
        delete_worksheet(request, worksheet)
    return trashed
