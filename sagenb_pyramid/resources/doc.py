"""``/doc/``: Sage's HTML manuals, read from the installed package (services/doc.py);
made at each request, never stored.  ``files/<path>`` names a file of the manuals as it
is, ``live/<path>`` a manual page shown as a read-only worksheet."""
from ..acl import DENY_ALL, Allow, Authenticated, Everyone, P


class DocSection:
    """``/doc/``: everybody reads; logged-in users evaluate examples (in a scratch
    process of their own) and copy pages into their worksheets."""

    __name__ = 'doc'
    # Package content, the same on every server: a missing page is an honest 404.
    public = True

    def __init__(self, root):
        self.__parent__ = root
        self.root = root

    def __acl__(self):
        return [(Allow, Everyone, P.VIEW), (Allow, Authenticated, (P.EVALUATE, P.CREATE)),
                DENY_ALL]

    def __getitem__(self, name):
        if name in ('files', 'live'):
            return DocTree(self, name)
        raise KeyError(name)


class DocTree:
    """``files/`` or ``live/``: a path below it names a file of the manuals."""

    public = True

    def __init__(self, parent, name):
        self.__parent__ = parent
        self.__name__ = name
        self.kind = name

    def __getitem__(self, name):
        return DocPath.below(self, name)


class DocPath:
    """A path in the manuals (``parts``), checked against the files by the views."""

    public = True

    def __init__(self, parent, name, parts):
        self.__parent__ = parent
        self.__name__ = name
        self.parts = parts
        self.kind = parent.kind

    @classmethod
    def below(cls, parent, name):
        # Nothing hidden, nothing above the manuals' folder.
        if not name or name in ('.', '..') or name.startswith('.') or '\\' in name \
                or '\0' in name:
            raise KeyError(name)
        return cls(parent, name, getattr(parent, 'parts', ()) + (name,))

    @property
    def path(self):
        return '/'.join(self.parts)

    def __getitem__(self, name):
        return DocPath.below(self, name)
