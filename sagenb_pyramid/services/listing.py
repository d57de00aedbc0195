"""A home's listing: which worksheets it shows, in which order; and the name a new or
renamed worksheet gets."""
from .. import names
from ..web import get_str

SORTS = {
    'modified': (lambda w: w.modified, True),
    'name': (lambda w: w.name.lower(), False),
}


def listed(context, request, state, sort, tag=None):
    """The worksheets of the home ``context`` in ``state`` for the requester (with the
    tag ``tag`` if given), sorted."""
    user_id = request.user.id
    worksheets = [w for w in context.worksheets()
                  if (state == 'all' or w.state_for(user_id) == state)
                  and (tag is None or tag in w.tags)]
    key, reverse = SORTS[sort]
    return sorted(worksheets, key=key, reverse=reverse)


def new_worksheet_name(body_or_form):
    name = get_str(body_or_form, 'name', 'Untitled', max_length=names.MAX_WORKSHEET_NAME)
    return names.clean_worksheet_name(name)
