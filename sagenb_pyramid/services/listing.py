"""A home's listing: which worksheets it shows, in which order; and the name a new or
renamed worksheet gets."""
from ..web import wants_json
from . import sharing
from .serialize import worksheet_summary

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


def shared_listing(context, request, sort):
    """``?state=shared``: the worksheets others share with the home's user, each with
    its owner and the user's role (JSON, or the listing's "Shared with me" tab)."""
    key, reverse = SORTS[sort]
    found = sorted(sharing.shared_with(request, context), key=lambda pair: key(pair[0]),
                   reverse=reverse)
    if wants_json(request):
        request.override_renderer = 'json'
        return {'worksheets': [dict(worksheet_summary(request, w, context.id), role=role)
                               for w, role in found]}
    return {'home': context, 'worksheets': [], 'shared': found, 'state': 'shared',
            'sort': sort, 'user_id': request.user.id}
