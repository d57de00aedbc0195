"""``/pub/``: ``Publications`` (by opaque id, and by time) and ``Publication`` (a
snapshot or the live worksheet, with ratings); ``PubCells``, ``PubCell``, ``PubFiles`` and
``PubFile`` show what a publication holds through its ACL and are not stored.
"""
import itertools
import secrets
import time

from BTrees.Length import Length
from BTrees.OOBTree import OOBTree
from persistent import Persistent

from .. import search
from ..acl import DENY_ALL, Allow, Authenticated, Everyone, P, user_principal
from .folder import Folder, owner_of, stored


# Views of a publication (``/pub/<id>/<view name>``); other names are its data files.
PUBLICATION_VIEW_NAMES = frozenset({'copy', 'rate', 'ratings', 'hide', 'print', 'cells',
                                    'data'})


@stored
class Publications(Folder):
    """``/pub/``: published worksheets by opaque id.  Anyone may look, logged in or
    not; ``public``: a name missing below here is an honest 404 (views/__init__.py), not
    the login page, since nothing here is anybody's secret."""

    __name__ = 'pub'
    public = True

    def __init__(self):
        super().__init__()
        # ``(-time, id)`` -> publication, newest first, for every publication stored
        # here (``add``, ``remove`` and ``publish`` keep it): a page of ``/pub/`` reads
        # the buckets up to that page and its rows, not every publication.  The count
        # is the folder's ``Length``.
        self.by_time = OOBTree()

    def __acl__(self):
        return [(Allow, Everyone, P.VIEW), DENY_ALL]

    def add(self, name, obj):
        super().add(name, obj)
        self.by_time[time_key(obj)] = obj
        return obj

    def remove(self, name):
        obj = super().remove(name)
        self.by_time.pop(time_key(obj), None)
        search.unindex_publication(self.__parent__, obj.__name__)
        return obj

    def newest(self, start=0, stop=None):
        """The publications newest first (by ``time``: when last published), from the
        ``start``-th to before the ``stop``-th."""
        return itertools.islice(self.by_time.values(), start, stop)

    def publish(self, worksheet, auto=False, when=None):
        """Publish ``worksheet``, or publish it again (the same publication, so the same
        URL, first in the list again): a new snapshot, or none with ``auto`` (the live
        worksheet is shown)."""
        publication = self.get(worksheet.publication_id) \
            if worksheet.publication_id is not None else None
        if publication is None or publication.worksheet is not worksheet:
            publication = Publication(worksheet, auto, when)
            self.add(self.new_id(), publication)
            worksheet.publication_id = publication.__name__
        self.by_time.pop(time_key(publication), None)
        publication.auto = auto
        publication.name = worksheet.name
        publication.time = time.time() if when is None else when
        publication.snapshot = None if auto else worksheet.snapshot()
        self.by_time[time_key(publication)] = publication
        search.reindex_publication(self.__parent__, publication)
        return publication

    def unpublish(self, worksheet):
        """Stop publishing ``worksheet``; returns the publication removed, or None."""
        publication = self.get(worksheet.publication_id) \
            if worksheet.publication_id is not None else None
        worksheet.publication_id = None
        if publication is not None and publication.worksheet is worksheet:
            return self.remove(publication.__name__)
        return None

    def new_id(self):
        """A short opaque id (64 random bits), unused here."""
        while True:
            name = secrets.token_urlsafe(8)
            if name not in self.data:
                return name


def time_key(publication):
    """A publication's key in ``Publications.by_time``: newest first, then by id."""
    return (-publication.time, publication.__name__)


@stored
class Publication(Persistent):
    """A published worksheet: a read-only snapshot (``snapshot``, a detached
    ``Worksheet`` taken at publish time), or with ``auto`` the live worksheet itself.

    ``worksheet`` is a reference to the original, so a publication follows its worksheet
    to an heir; ``owner_id`` and ``worksheet_key`` are read from it.  A publication whose
    original was deleted (or that it no longer names) shows nothing: ``shown()`` is None
    and its URL answers 404.  Ratings: user id -> ``{"rating", "comment", "time",
    "hidden"}`` (replaced whole, never changed in place), with the total and the count
    in ``Length``s so that ratings of different users at once do not conflict."""

    public = True

    def __init__(self, worksheet, auto=False, when=None):
        self.worksheet = worksheet
        self.name = worksheet.name
        self.auto = auto
        self.time = time.time() if when is None else when
        self.snapshot = None
        self.ratings = OOBTree()
        self.rating_total = Length()
        self.rating_count = Length()

    @property
    def id(self):
        return self.__name__

    @property
    def owner_id(self):
        return self.worksheet.owner_id

    @property
    def worksheet_key(self):
        """The original's key, ``"<owner id>/<number>"`` (None once it was deleted)."""
        original = self.original()
        return '%s/%d' % (original.owner_id, original.number) if original else None

    def original(self):
        """The published worksheet, or None when it is gone or no longer published here."""
        worksheet = self.worksheet
        if owner_of(worksheet) is None or worksheet.publication_id != self.__name__:
            return None
        return worksheet

    def shown(self):
        """What the publication shows: the live worksheet with ``auto``, else the
        snapshot; None when there is nothing to show."""
        original = self.original()
        if original is None:
            return None
        return original if self.auto else self.snapshot

    def shown_name(self):
        """The name of what it shows (the snapshot's is kept on the publication, so
        the list does not load the snapshot)."""
        return self.worksheet.name if self.auto else self.name

    def shown_time(self):
        """When what is shown last changed."""
        shown = self.shown()
        return max(self.time, shown.modified) if self.auto and shown else self.time

    def texts(self):
        """What search indexes of the publication: the name and every cell's input
        (compute cells and text cells) of what it shows."""
        shown = self.shown()
        if shown is None:
            return []
        return [shown.name] + [c.input for c in shown.ordered_cells() if c.input]

    def rating_mean(self):
        count = self.rating_count()
        return self.rating_total() / count if count else None

    def rate(self, user_id, rating, comment):
        old = self.ratings.get(user_id)
        if old is None:
            self.rating_count.change(1)
            self.rating_total.change(rating)
        else:
            self.rating_total.change(rating - old['rating'])
        self.ratings[user_id] = {'rating': rating, 'comment': comment,
                                 'time': time.time(),
                                 # A hidden comment stays hidden when rewritten.
                                 'hidden': bool(old and old['hidden'])}

    def hide_comment(self, user_id, hidden):
        entry = dict(self.ratings[user_id])
        entry['hidden'] = hidden
        self.ratings[user_id] = entry

    def __acl__(self):
        # ``P.CREATE`` here: making a copy of it (in one's own home), for anyone logged in.
        acl = [(Allow, Everyone, P.VIEW), (Allow, Authenticated, (P.RATE, P.CREATE))]
        if self.original() is not None:
            acl.append((Allow, user_principal(self.owner_id), P.PUBLISH))
        return acl + [DENY_ALL]

    def __getitem__(self, name):
        shown = self.shown()
        if shown is None:
            raise KeyError(name)
        if name == 'cells':
            return PubCells(self)
        if name == 'data':
            return PubFiles(self)
        # Legacy text cells refer to data files by relative name (``<img src="a.png">``).
        if shown.files is not None and name not in PUBLICATION_VIEW_NAMES:
            return PubFile(PubFiles(self), shown.files[name])
        raise KeyError(name)


class PubCells:
    """``/pub/<id>/cells/``: the cells of what a publication shows, seen through it
    (so the publication's ACL applies, not the original's).  Not stored."""

    __name__ = 'cells'
    public = True

    def __init__(self, publication):
        self.__parent__ = publication

    def __getitem__(self, name):
        return PubCell(self, self.__parent__.shown().cells[name])


class PubCell:
    public = True

    def __init__(self, parent, cell):
        self.__parent__ = parent
        self.__name__ = str(cell.id)
        self.cell = cell


class PubFiles:
    """``/pub/<id>/data/``: the data files of what a publication shows.  Not stored."""

    __name__ = 'data'
    public = True

    def __init__(self, publication):
        self.__parent__ = publication

    def __getitem__(self, name):
        files = self.__parent__.shown().files
        if files is None:
            raise KeyError(name)
        return PubFile(self, files[name])


class PubFile:
    public = True

    def __init__(self, parent, data_file):
        self.__parent__ = parent
        self.__name__ = data_file.__name__
        self.file = data_file
