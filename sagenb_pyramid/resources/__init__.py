"""The object graph published through traversal.

Root -> ``home`` (users by login) -> ``User`` (worksheets by per-user number) ->
``Worksheet`` -> ``cells`` -> ``Cell``.  Users and groups also live in ``users_by_id``
and ``groups`` under stable ids: ACLs name those ids, never logins, so renaming a user
breaks nothing.  A cell keeps its input and its outputs in separate persistent
objects because outputs change often and inputs rarely.

The modules, each importing only those listed before it:

- ``folder``: ``Folder``, where an object is (``root_of``, ``owner_of``), ``stored``
- ``blobs``: blobs from bytes, copied, read; ``guess_type``
- ``shareindex``: the index of shared worksheets (``index_shares``)
- ``presence``: who has a worksheet open: ``Presence``, ``PresenceEntry``, ``presence_of``
- ``worksheets``: ``Worksheet``, ``CellOrder``, ``Cells``, ``Cell``, ``CellOutput``, ``DataFiles``,
  ``DataFile``, ``Revisions``, ``Revision``, ``CellSnapshot``, ``OutputSnapshot``
- ``users``: ``Home``, ``User``, ``StorageUse`` (``usage``), ``Group``, ``ApiToken``,
  ``AccountToken``
- ``publications``: ``/pub/``: ``Publications``, ``Publication`` and the unstored
  ``Pub*`` wrappers
- ``admin``: ``/admin/``: the unstored ``Admin*`` wrappers
- ``doc``: ``/doc/``: the unstored ``DocSection``, ``DocTree``, ``DocPath``
- ``root``: ``Root``, ``SCHEMA_STEPS``, ``root_factory``, ``get_root``,
  ``in_transaction``, ``ensure_root``

Every name is re-exported here: code imports ``sagenb_pyramid.resources``, and every
stored class is pickled as ``sagenb_pyramid.resources.<Class>`` (``folder.stored``),
the path records had while this package was one module.
"""
from .admin import AdminGroup, AdminGroups, AdminSection, AdminUser, AdminUsers
from .blobs import bytes_blob, copy_blob, guess_type, read_blob
from .doc import DocPath, DocSection, DocTree
from .folder import Folder, OwnerFolder, RootFolder, owner_of, root_of, stored
from .presence import Presence, PresenceEntry, presence_of
from .publications import (
    PUBLICATION_VIEW_NAMES, PubCell, PubCells, PubFile, PubFiles, Publication, Publications,
    time_key)
from .root import SCHEMA_STEPS, Root, ensure_root, get_root, in_transaction, root_factory
from .shareindex import index_shares, share_key
from .users import (
    DOC_WORKSHEET_NUMBER, AccountToken, ApiToken, Group, Home, StorageUse, User, usage)
from .worksheets import (
    BUSY, CELL_STATUSES, CELL_TYPES, WORKSHEET_STATES, WORKSHEET_VIEW_NAMES, Cell, CellOrder,
    CellOutput, CellSnapshot, Cells, DataFile, DataFiles, OutputSnapshot, Revision, Revisions,
    Worksheet)

__all__ = [
    # folder
    'Folder', 'OwnerFolder', 'RootFolder', 'owner_of', 'root_of', 'stored',
    # blobs
    'bytes_blob', 'copy_blob', 'guess_type', 'read_blob',
    # shareindex
    'index_shares', 'share_key',
    # presence
    'Presence', 'PresenceEntry', 'presence_of',
    # worksheets
    'BUSY', 'CELL_STATUSES', 'CELL_TYPES', 'WORKSHEET_STATES', 'WORKSHEET_VIEW_NAMES',
    'Cell', 'CellOrder', 'CellOutput', 'CellSnapshot', 'Cells', 'DataFile', 'DataFiles', 'OutputSnapshot',
    'Revision', 'Revisions', 'Worksheet',
    # users
    'DOC_WORKSHEET_NUMBER', 'AccountToken', 'ApiToken', 'Group', 'Home', 'StorageUse',
    'User', 'usage',
    # publications
    'PUBLICATION_VIEW_NAMES', 'PubCell', 'PubCells', 'PubFile', 'PubFiles', 'Publication',
    'Publications', 'time_key',
    # admin
    'AdminGroup', 'AdminGroups', 'AdminSection', 'AdminUser', 'AdminUsers',
    # doc
    'DocPath', 'DocSection', 'DocTree',
    # root
    'SCHEMA_STEPS', 'Root', 'ensure_root', 'get_root', 'in_transaction', 'root_factory',
]
