"""Finding worksheets: ``GET /search`` over the index of search.py, confined to what the
caller may see (worksheet tags are services/tags.py's).

Which documents a caller may see is decided here from the live objects, for every
match, never from anything stored in the index: ``mine`` are the caller's worksheets
(a narrow range of the index: their keys start with the caller's id), ``shared`` those
naming the caller or one of their groups as collaborator or viewer (an admin is not
shown everyone's: being an admin is no share), ``published`` the publications
(``root.publications``, the publishing part's).  Worksheets in the caller's trash are
left out.  Results are ordered by their last change, newest first.
"""
from .. import search
from ..acl import user_principal
from ..resources import Worksheet
from ..web import api_error
from . import sharing

SCOPES = ('mine', 'shared', 'published', 'all')
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_OFFSET = 10_000

def paging(params):
    def number(name, default, low, high):
        raw = params.get(name)
        if raw is None or raw == '':
            return default
        try:
            value = int(raw)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise api_error(400, '"%s" must be a whole number from %d to %d' % (name, low, high))
        return value
    return (number('offset', 0, 0, MAX_OFFSET),
            number('limit', DEFAULT_LIMIT, 1, MAX_LIMIT))


def worksheet_of(root, key):
    owner_id, _, number = key[2:].partition('/')
    owner = root.users_by_id.get(owner_id)
    worksheet = owner.get(number) if owner is not None else None
    return worksheet if isinstance(worksheet, Worksheet) else None


class Found:
    """One visible result, before it is shown."""

    def __init__(self, key, obj, role, modified):
        self.key, self.obj, self.role, self.modified = key, obj, role, modified


def visible(request, root, terms, scope):
    """The documents matching ``terms`` that the caller may see in ``scope``."""
    user = request.user
    mine = 'w:%s/' % user.id
    # The caller's own principals: ``role:admin`` shares nothing.
    principals = {user_principal(user.id)} | {p for p in user.principals()
                                              if p.startswith('group:')}
    found = []
    if scope in ('mine', 'all'):
        for key in search.matching(root, terms, mine):
            worksheet = worksheet_of(root, key)
            if worksheet is not None and worksheet.state_for(user.id) != 'trash':
                found.append(Found(key, worksheet, 'owner', worksheet.modified))
    if scope in ('shared', 'all'):
        # Candidates: the worksheets indexed as shared with the caller; each is checked
        # against the live worksheet (a share revoked since is not shown).
        candidates = search.shared_with(root, principals)
        for key in search.matching(root, terms, among=candidates):
            if key.startswith(mine):
                continue
            worksheet = worksheet_of(root, key)
            if worksheet is None or worksheet.state_for(user.id) == 'trash':
                continue
            role = sharing.role_of(worksheet, user)  # the role the worksheet's ACL gives
            if role in ('collaborator', 'viewer'):
                found.append(Found(key, worksheet, role, worksheet.modified))
    if scope in ('published', 'all'):
        for key in search.matching(root, terms, 'p:'):
            publication = root.publications.get(key[2:])
            # One whose worksheet was deleted shows nothing (its URL is a 404).
            if publication is not None and publication.shown() is not None:
                found.append(Found(key, publication, 'published', publication.shown_time()))
    found.sort(key=lambda f: (-f.modified, f.key))
    return found


def result_json(request, root, item, terms):
    obj = item.obj
    if item.role == 'published':
        owner = root.users_by_id.get(obj.owner_id)
        url = request.resource_url(obj)
        texts = obj.texts()
    else:
        owner = obj.owner
        url = request.resource_url(obj)
        texts = search.worksheet_texts(obj)
    return {'url': url, 'name': obj.name, 'owner': owner.login if owner is not None else None,
            'role': item.role, 'snippet': search.snippet(texts, terms)}


def find(request, root, q, scope, offset, limit):
    """``{"results", "total", "offset", "limit"}`` for the query ``q``; 400 for a bad one."""
    if scope not in SCOPES:
        raise api_error(400, '"scope" must be one of ' + ', '.join(SCOPES))
    try:
        terms = search.parse_query(q)
    except search.BadQuery as exc:
        raise api_error(400, str(exc)) from None
    found = visible(request, root, terms, scope)
    page = found[offset:offset + limit]
    return {'results': [result_json(request, root, item, terms) for item in page],
            'total': len(found), 'offset': offset, 'limit': limit}
