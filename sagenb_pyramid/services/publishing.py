"""Publishing (issue 20): what ``views/pub.py`` does to worksheets and publications.

A publication (``resources.Publication``, in ``root.publications`` at ``/pub/<id>/``)
shows a snapshot taken when it was published, or with ``auto`` the live worksheet.
Everything here renders what it shows as JSON with URLs below the publication's own
(``/pub/<id>/cells/<cell>/files/...``, ``/pub/<id>/data/...``), so a visitor never
needs, or learns, the original's address.  Ratings, the listing of ``/pub/`` and the
copy into a visitor's home are here too.
"""
import time
from urllib.parse import quote

from pyramid.httpexceptions import HTTPNotFound

from .. import search
from ..resources import guess_type, read_blob, time_key  # noqa: F401 (guess_type: views)
from ..web import INLINE_TYPES, api_error, send_bytes
from .serialize import cell_json, worksheet_summary
from .worksheets import copy_worksheet

RATINGS = range(5)
MAX_COMMENT = 2000
PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
# What published pages and files answer when search engines are told not to index.
NOINDEX = 'noindex, nofollow'


def shown_or_404(publication):
    """What the publication shows; a publication whose worksheet is gone is not there."""
    shown = publication.shown()
    if shown is None:
        raise not_found()
    return shown


def not_found():
    exc = HTTPNotFound()
    exc.user_message = 'no such published worksheet'
    return exc


def publish(request, worksheet, auto):
    return request.root.publications.publish(worksheet, auto=auto)


def unpublish(request, worksheet):
    """Stop publishing; 404 when the worksheet is not published."""
    if request.root.publications.unpublish(worksheet) is None:
        raise api_error(404, 'this worksheet is not published')


def publication_state(request, worksheet):
    """``None`` or ``{"url", "time", "auto"}``: how ``worksheet`` is published (also
    what the sharing API shows as ``published``)."""
    if worksheet.publication_id is None:
        return None
    publication = request.root.publications.get(worksheet.publication_id)
    if publication is None or publication.original() is not worksheet:
        return None
    return {'url': pub_path(request, publication), 'time': publication.time,
            'auto': publication.auto}


def pub_path(request, publication):
    return request.resource_path(publication)


def owner_login(request, publication):
    owner = request.root.users_by_id.get(publication.owner_id)
    return owner.login if owner is not None else ''


def summary(request, publication):
    """A publication as the ``/pub/`` listing shows it."""
    mean = publication.rating_mean()
    return {'id': publication.id, 'url': pub_path(request, publication),
            'name': publication.shown_name(), 'owner': owner_login(request, publication),
            'time': publication.shown_time(), 'auto': publication.auto,
            'rating': None if mean is None else round(mean, 2),
            'ratings': publication.rating_count()}


def publication_json(request, publication):
    """The publication with its cells (what it shows), as the page and the API read it."""
    shown = shown_or_404(publication)
    base = pub_path(request, publication)
    data = summary(request, publication)
    data.update({
        'typeset': shown.typeset, 'system': shown.system,
        # Whatever the visitor: content published is rendered untrusted.
        'trusted': False,
        'cells': [cell_json(request, c) for c in shown.ordered_cells()],
        'data_files': [
            {'name': name, 'size': f.size, 'url': base + 'data/' + quote(name),
             'modified': f.modified}
            for name, f in (shown.files.items() if shown.files is not None else ())],
    })
    return data


def listing(request, query='', page=1, per_page=PAGE_SIZE):
    """``(rows, total)``: the publications whose name or owner's login holds ``query``
    (any case), newest published first, the ``page``-th page of ``per_page``.  Without
    ``query`` only that page is read (``Publications.by_time``)."""
    publications = request.root.publications
    start = (page - 1) * per_page
    query = query.strip().lower()
    if query:
        found = matching(request, query)
        page_of, total = found[start:start + per_page], len(found)
    else:
        page_of, total = publications.newest(start, start + per_page), len(publications)
    # A publication that shows nothing is never stored (deleting its worksheet removes
    # it); skipped all the same rather than answering a 500.
    return [summary(request, p) for p in page_of if p.shown() is not None], total


def matching(request, query):
    """The publications holding every word of ``query`` in their name, cells or owner's
    login (the full-text index, search.py: ``integ*`` matches the words it begins),
    newest published first; 400 for a query that has no words."""
    root = request.root
    try:
        terms = search.parse_query(query)
    except search.BadQuery as exc:
        raise api_error(400, str(exc)) from None
    found = [root.publications.get(key[2:]) for key in search.matching(root, terms, 'p:')]
    return sorted((p for p in found if p is not None and p.shown() is not None),
                  key=time_key)


def ratings_json(request, publication):
    """Every rating with its comment; a hidden comment's text only for the owner."""
    owner = request.user is not None and request.user.id == publication.owner_id
    users = request.root.users_by_id
    rows = []
    for user_id, entry in publication.ratings.items():
        user = users.get(user_id)
        if user is None:
            continue
        row = {'user': user.login, 'rating': entry['rating'], 'time': entry['time'],
               'hidden': entry['hidden'],
               'comment': entry['comment'] if owner or not entry['hidden'] else None}
        rows.append(row)
    rows.sort(key=lambda r: r['time'], reverse=True)
    mean = publication.rating_mean()
    mine = publication.ratings.get(request.user.id) if request.user is not None else None
    return {'mean': None if mean is None else round(mean, 2),
            'count': publication.rating_count(), 'ratings': rows,
            'yours': None if mine is None else {'rating': mine['rating'],
                                                'comment': mine['comment']}}


def parse_rating(body):
    """``(rating, comment)`` from a request's fields, or a 400 saying what is wrong."""
    raw = body.get('rating')
    if isinstance(raw, str) and raw.strip().isdigit():
        raw = int(raw.strip())
    if isinstance(raw, bool) or not isinstance(raw, int) or raw not in RATINGS:
        raise api_error(400, '"rating" must be a whole number from 0 to 4')
    comment = body.get('comment', '')
    if comment is None:
        comment = ''
    if not isinstance(comment, str):
        raise api_error(400, '"comment" must be a string')
    comment = comment.strip()
    if len(comment) > MAX_COMMENT:
        raise api_error(400, '"comment" is longer than %d characters' % MAX_COMMENT)
    return raw, comment


def rate(request, publication, rating, comment):
    if request.user.id == publication.owner_id:
        raise api_error(403, 'you may not rate your own worksheet')
    publication.rate(request.user.id, rating, comment)


def hide_comment(request, publication, login, hidden):
    user = request.root.user_by_login(login) if isinstance(login, str) else None
    if user is None or user.id not in publication.ratings:
        raise api_error(400, '"user" must be the login of someone who rated this worksheet')
    publication.hide_comment(user.id, hidden)


def copy(request, publication, name):
    """An editable copy of what the publication shows, in the caller's home."""
    shown = shown_or_404(publication)
    twin = copy_worksheet(request.registry.settings, shown, request.user, name)
    return twin, worksheet_summary(request, twin, request.user.id)


def noindex(request, response):
    """Tell search engines not to index a published page or file (when so set)."""
    if request.registry.settings['sagenb.publish.noindex']:
        response.headers['X-Robots-Tag'] = NOINDEX


def file_response(request, content, content_type, filename):
    """A published file, sent as the worksheets' files are (web.send_bytes), but
    cacheable by anyone and, when so set, not for search engines."""
    response = send_bytes(request, content, content_type, filename,
                          inline=content_type in INLINE_TYPES, cache='public, no-cache')
    noindex(request, response)
    return response


def blob_bytes(blob):
    return read_blob(blob)


def stamp(when):
    return time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(when)) if when else ''
