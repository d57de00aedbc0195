"""The containers of the object graph, where an object is in it, and the path its
class is stored under.

``Folder``: a container over an ``OOBTree`` with a ``Length``, whose ``add`` gives
children their ``__name__`` and ``__parent__``.  ``RootFolder`` and ``OwnerFolder`` are
the bases of ``Root`` (root.py) and ``User`` (users.py), so that ``root_of`` and
``owner_of``, which the modules under those call, tell them apart without importing them.
"""
from BTrees.Length import Length
from BTrees.OOBTree import OOBTree
from persistent import Persistent

# The module every stored class of the package is pickled under (``stored``).
STORED_MODULE = 'sagenb_pyramid.resources'


def stored(cls):
    """Pickle ``cls`` as ``sagenb_pyramid.resources.<name>`` whatever module of the
    package defines it (the package re-exports it under that name).

    Records written while ``resources`` was one module name that path; keeping it
    means those databases open, databases written now still open with that earlier
    code, and no evolve step re-saves every object when a class moves between the
    package's modules (tests/unit/resources/test_stored_classes.py)."""
    cls.__module__ = STORED_MODULE
    return cls


@stored
class Folder(Persistent):
    """A container over an ``OOBTree`` with a ``Length`` counter."""

    __name__ = None
    __parent__ = None

    def __init__(self):
        self.data = OOBTree()
        self._num_objects = Length()

    def add(self, name, obj):
        name = str(name)
        if not name or '/' in name or name.startswith('@@') or name in ('.', '..'):
            raise ValueError('invalid name %r' % name)
        if name in self.data:
            raise KeyError('%r already exists' % name)
        if getattr(obj, '__parent__', None) is not None:
            raise ValueError('%r already has a parent' % obj)
        obj.__name__ = name
        obj.__parent__ = self
        self.data[name] = obj
        self._num_objects.change(1)
        return obj

    def remove(self, name):
        obj = self.data.pop(str(name))
        self._num_objects.change(-1)
        obj.__parent__ = None
        return obj

    def __getitem__(self, name):
        return self.data[name]

    def get(self, name, default=None):
        return self.data.get(str(name), default)

    def __contains__(self, name):
        return str(name) in self.data

    def __len__(self):
        return self._num_objects()

    def __bool__(self):
        # An empty folder (a user without worksheets) is still there.
        return True

    def keys(self):
        return self.data.keys()

    def values(self):
        return self.data.values()

    def items(self):
        return self.data.items()


@stored
class RootFolder(Folder):
    """The base of ``Root`` (root.py): what ``root_of`` looks for."""


@stored
class OwnerFolder(Folder):
    """The base of ``User`` (users.py), a folder of worksheets someone owns: what
    ``owner_of`` looks for."""


def root_of(obj):
    """The ``Root`` above ``obj``, or None while it is not in the tree."""
    while obj is not None and not isinstance(obj, RootFolder):
        obj = getattr(obj, '__parent__', None)
    return obj


def owner_of(worksheet):
    """The ``User`` whose home holds ``worksheet``, or None (deleted, or a snapshot)."""
    parent = getattr(worksheet, '__parent__', None)
    return parent if isinstance(parent, OwnerFolder) else None
