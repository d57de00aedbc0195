"""What is done to worksheets as a whole, and to a home's worksheets together: copying,
adding a cell, the listing's actions (archive, trash, restore, copy, rename, delete for
good) and emptying the trash.

Refusals are ``api_error``s (their status and message reach the user as they are);
``Unselected`` is a listing action that has nothing to act on, which the listing tells
with a note rather than an error.  Deleting needs the request (the worksheets' processes
stop after the commit, ``evaluation.delete_worksheet``); the rest takes plain values.
"""
from .. import names
from ..resources import CELL_TYPES, Worksheet, usage
from ..web import api_error, get_str
from .evaluation import delete_worksheet
from .quota import require_room

LISTING_ACTIONS = ('active', 'archive', 'trash', 'copy', 'rename', 'delete')


class Unselected(Exception):
    """A listing action without what it needs (no worksheets ticked, no new name):
    nothing changed; the message says what to do."""


def new_worksheet_name(body_or_form):
    """The name given in a request's ``name`` (cleaned; "Untitled" when missing)."""
    name = get_str(body_or_form, 'name', 'Untitled', max_length=names.MAX_WORKSHEET_NAME)
    return names.clean_worksheet_name(name)


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
