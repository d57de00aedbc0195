"""The object graph published through traversal.

Root -> ``home`` (users by login) -> ``User`` (worksheets by per-user number) ->
``Worksheet`` -> ``cells`` -> ``Cell``.  Users and groups also live in ``users_by_id``
and ``groups`` under stable ids: ACLs name those ids, never logins, so renaming a user
breaks nothing.  A cell keeps its input and its outputs in separate persistent
objects because outputs change often and inputs rarely.
"""
import copy
import itertools
import mimetypes
import secrets
import shutil
import time
import uuid

from BTrees.Length import Length
from BTrees.LOBTree import LOBTree
from BTrees.OOBTree import OOBTree, OOTreeSet
from persistent import Persistent
from persistent.list import PersistentList
from persistent.mapping import PersistentMapping
from ZODB.blob import Blob

from . import search
from .acl import (
    ALL_PERMISSIONS, DENY_ALL, Allow, Authenticated, Everyone, P, admin_principal,
    admin_reads_only, group_principal, user_principal)

CELL_TYPES = ('compute', 'text')
WORKSHEET_STATES = ('active', 'archive', 'trash')
# The states a cell's output passes through; ``queued`` and ``running`` are "busy".
CELL_STATUSES = ('new', 'queued', 'running', 'done', 'error')
BUSY = ('queued', 'running')
# The evolve steps (evolve.py) whose attributes the constructors below make: a new
# database is marked with all of them done.  A new step's name goes here too.
SCHEMA_STEPS = ('root-trees', 'audit-numbered-log', 'user-sessions-identities-storage',
                'token-scope-expiry', 'worker-host-records', 'publications',
                'shared-with-index', 'worksheet-tags', 'search-index',
                'publications-by-time')


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


class Root(Folder):
    """The application root: the ACL every other object inherits."""

    # The names of the evolve steps this database has had (evolve.py); none for a
    # root stored before schema evolution.
    evolved = ()

    def __init__(self):
        super().__init__()
        self.users_by_id = OOBTree()
        self.groups = OOBTree()
        # sha256(token) -> ApiToken; the token itself is never stored.
        self.tokens = OOBTree()
        # OAuth identities ``provider:subject`` -> user id, failed logins
        # (auth/ratelimit.py), mailed account links (views/account.py), used sign-up
        # challenges (auth/captcha.py).
        self.identities = OOBTree()
        self.login_attempts = OOBTree()
        self.account_tokens = OOBTree()
        self.used_challenges = OOBTree()
        # Worker hosts (workers/hosts.py): name -> ``WorkerHost``, and which host runs
        # each worksheet's Sage process: ``"<owner id>/<number>"`` -> ``"<host>:<boot>"``.
        self.worker_hosts = OOBTree()
        self.placements = OOBTree()
        # Settings admins changed in the browser (server_settings.py).
        self.server_settings = PersistentMapping()
        # The audit log (audit.py): time-based key -> ``AuditEntry``.  Made here, not by
        # the first logins of a class at once, which would conflict.
        self.audit_entries = LOBTree()
        # Sharing's index (services/sharing.py): principal -> ``OOTreeSet`` of the keys
        # ``"<owner id>/<number>"`` of the worksheets shared with it, so "shared with
        # me" reads a few sets instead of every worksheet (``index_shares``).
        self.shared_with = OOBTree()
        # Full-text search over worksheets and publications (search.py).
        self.search_index = search.SearchIndex()
        self.evolved = OOTreeSet(SCHEMA_STEPS)
        self.add('home', Home())
        # Published worksheets (``/pub/``), by opaque id.
        self.publications = Publications()
        self.publications.__parent__ = self

    def __acl__(self):
        return [(Allow, admin_principal(), ALL_PERMISSIONS),
                (Allow, Authenticated, P.ACCOUNT)]

    def __getitem__(self, name):
        if name == 'admin':
            return AdminSection(self)
        if name == 'pub':
            return self.publications
        return super().__getitem__(name)

    @property
    def home(self):
        return self['home']

    def add_user(self, login, password_hash=None, is_admin=False, **attrs):
        user = User(login, password_hash=password_hash, is_admin=is_admin, **attrs)
        self.home.add(login, user)
        self.users_by_id[user.id] = user
        return user

    def user_by_login(self, login):
        return self.home.get(login)

    def rename_user(self, user, new_login):
        if new_login in self.home:
            raise KeyError('%r already exists' % new_login)
        self.home.remove(user.login)
        user.login = new_login
        self.home.add(new_login, user)

    def add_group(self, name, source='local'):
        group = Group(name, source)
        group.__parent__ = self
        self.groups[group.id] = group
        return group

    def group_by_name(self, name, source=None):
        for group in self.groups.values():
            if group.name == name and (source is None or group.source == source):
                return group
        return None

    def sync_groups(self, user, names, source):
        """Make ``user`` a member of exactly the groups ``names`` among the groups of
        ``source`` (``ldap``, ``oidc``...), creating missing ones; other groups of the
        user are left alone."""
        wanted = set()
        for name in names:
            group = self.group_by_name(name, source) or self.add_group(name, source)
            wanted.add(group.id)
        for group_id in list(user.group_ids):
            group = self.groups.get(group_id)
            if group is not None and group.source == source and group_id not in wanted:
                user.group_ids.remove(group_id)
        for group_id in wanted:
            user.group_ids.add(group_id)

    def group_members(self, group):
        return [u for u in self.users_by_id.values() if group.id in u.group_ids]

    def user_by_identity(self, key):
        user_id = self.identities.get(key)
        return self.users_by_id.get(user_id) if user_id is not None else None

    def link_identity(self, user, key, info):
        """Link the identity ``key`` (``provider:subject``) to ``user``; ``info`` is
        shown on the account page (provider label, username there, when linked)."""
        owner = self.identities.get(key)
        if owner is not None and owner != user.id and owner in self.users_by_id:
            raise KeyError('%r is linked to another account' % key)
        self.identities[key] = user.id
        user.identities[key] = dict(info)

    def unlink_identity(self, user, key):
        user.identities.pop(key, None)
        if self.identities.get(key) == user.id:
            del self.identities[key]

    def worksheet_by_key(self, key):
        """The worksheet of the key ``"<owner id>/<number>"``, or None."""
        owner_id, _, number = key.partition('/')
        owner = self.users_by_id.get(owner_id)
        worksheet = owner.get(number) if owner is not None else None
        return worksheet if isinstance(worksheet, Worksheet) else None

    def unshare_everywhere(self, principal):
        """``principal`` (a user or group that goes) leaves every worksheet shared
        with it, and the index."""
        for key in list(self.shared_with.get(principal, ())):
            worksheet = self.worksheet_by_key(key)
            if worksheet is not None:
                worksheet.share([p for p in worksheet.collaborators if p != principal],
                                [p for p in worksheet.viewers if p != principal])
        self.shared_with.pop(principal, None)

    def delete_group(self, group):
        self.unshare_everywhere(group_principal(group.id))
        for user in self.group_members(group):
            user.group_ids.remove(group.id)
        del self.groups[group.id]
        group.__parent__ = None

    def find_users(self, query=''):
        """Users (by login) whose login, full name or e-mail holds ``query`` (any case)."""
        query = query.strip().lower()
        for login, user in self.home.items():
            if not query or query in login.lower() or query in (user.fullname or '').lower() \
                    or query in (user.email or '').lower():
                yield user

    def active_admins(self):
        return [u for u in self.users_by_id.values() if u.is_admin and not u.suspended]

    def delete_user(self, user, heir=None):
        """Remove ``user``, their API tokens and their worksheets; with ``heir`` the
        worksheets move to that user instead (numbered after the heir's own).  Returns
        the worker keys ``(owner_id, number)`` of the worksheets that left, whose Sage
        processes the caller stops once the transaction commits."""
        if heir is user:
            raise ValueError('a user cannot inherit their own worksheets')
        keys = []
        for worksheet in user.worksheets():
            keys.append((user.id, worksheet.number))
            user.remove(worksheet.__name__, moving=heir is not None)
            if heir is not None:
                heir.adopt_worksheet(worksheet, user.id)
        for digest in [d for d, t in self.tokens.items() if t.user_id == user.id]:
            del self.tokens[digest]
        for key in list(user.identities):
            self.unlink_identity(user, key)
        self.unshare_everywhere(user_principal(user.id))
        self.home.remove(user.login)
        del self.users_by_id[user.id]
        return keys


class Home(Folder):
    """``/home/``: users by login."""


class User(Folder):
    """A person with an account; their worksheets are children, keyed by number."""

    # A suspended user's sessions and API tokens stop working (``security.py``).
    suspended = False
    # The system of the user's new worksheets (``sage``, ``python``, ``gp`` ...).
    default_system = 'sage'
    # ``email`` was proven by a link sent to it; a new address waits in
    # ``pending_email`` until confirmed there.  ``awaiting_confirmation``: signed up
    # where confirmation is required and not confirmed yet (cannot log in).
    email_confirmed = False
    pending_email = ''
    awaiting_confirmation = False
    # ``local`` (a password kept here) or ``ldap`` (made at a directory login; no local
    # password; ``auth/ldap.py``).  ``ldap_dn``: the directory entry it was made from.
    auth_source = 'local'
    ldap_dn = None

    def __init__(self, login, password_hash=None, is_admin=False, email='', fullname=''):
        super().__init__()
        self.id = 'u-' + uuid.uuid4().hex[:16]
        self.login = login
        self.password_hash = password_hash
        self.is_admin = is_admin
        self.email = email
        self.fullname = fullname
        self.group_ids = OOTreeSet()
        self.created = time.time()
        self.next_worksheet_number = 0
        # Bumped to end every session of this user (e.g. at a password change).
        self.session_epoch = 0
        # Live session ids -> login time (security.py).
        self.live_sessions = OOBTree()
        # Linked OAuth identities, ``provider:subject`` -> info (``Root.link_identity``).
        self.identities = PersistentMapping()
        # Bytes of storage the user's worksheets hold (see ``usage``), in an object of
        # its own.
        self.storage = StorageUse()

    def __acl__(self):
        return [(Allow, user_principal(self.id), (P.VIEW, P.CREATE, P.EDIT, P.DELETE))] \
            + admin_reads_only()

    def principals(self):
        found = [user_principal(self.id)]
        found.extend(group_principal(gid) for gid in self.group_ids)
        if self.is_admin:
            found.append(admin_principal())
        return found

    def create_worksheet(self, name, typeset=True, system=None, number=None):
        """A new worksheet with one empty compute cell; numbered next unless ``number``;
        in the user's default system unless ``system``."""
        if system is None:
            system = self.default_system
        if number is None:
            number = self.next_worksheet_number
        elif str(number) in self:
            raise KeyError('worksheet %s exists' % number)
        self.next_worksheet_number = max(self.next_worksheet_number, number + 1)
        worksheet = Worksheet(name, self.id, typeset=typeset, system=system)
        self.add(str(number), worksheet)
        worksheet.add_cell('compute', '')
        return worksheet

    def worksheets(self):
        return [w for w in self.values() if isinstance(w, Worksheet)]

    def storage_use(self):
        """The running total of the bytes that count against the user's quota."""
        return self.storage

    def storage_used(self):
        """The bytes used (for pages)."""
        return self.storage.bytes

    def recount_storage(self):
        """Compute the total again from the worksheets (``sagenb-admin recount-storage``);
        returns ``(before, after)``."""
        before = self.storage.bytes
        after = sum(usage(w) for w in self.worksheets())
        if before != after:
            self.storage = StorageUse(after)
        return before, after

    def add(self, name, obj):
        if isinstance(obj, Worksheet):
            use = self.storage_use()
            super().add(name, obj)
            use.change(usage(obj))
            index_shares(root_of(self), obj, obj.shared_principals(), True)
            search.changed(obj)  # indexed under its key here (created, imported, adopted)
            return obj
        return super().add(name, obj)

    def remove(self, name, moving=False):
        """Take a child out; a worksheet taken out for good (not ``moving`` to an heir,
        whom its publication follows) is no longer published."""
        obj = self.get(name)
        if isinstance(obj, Worksheet):
            self.storage_use().change(-usage(obj))
            root = root_of(self)
            index_shares(root, obj, obj.shared_principals(), False)
            search.removed(self, obj)
            if not moving and obj.publication_id is not None and root is not None:
                root.publications.unpublish(obj)
        return super().remove(name)

    def adopt_worksheet(self, worksheet, former_owner_id):
        """Take over a worksheet another user owned (it was removed from their home)."""
        number = self.next_worksheet_number
        self.next_worksheet_number = number + 1
        worksheet.owner_id = self.id
        mine = user_principal(self.id)
        for shared in (worksheet.collaborators, worksheet.viewers):
            while mine in shared:
                shared.remove(mine)
        worksheet.states[self.id] = worksheet.states.pop(former_owner_id, 'active')
        self.add(str(number), worksheet)
        return worksheet


class StorageUse(Persistent):
    """A user's bytes of storage, in an object of its own (written with data files, not
    with the user).  Two requests that change it at once conflict, and the later one
    is run again with the new total (pyramid_retry), so a quota check never misses the
    other's bytes."""

    def __init__(self, nbytes=0):
        self.bytes = nbytes

    def change(self, delta):
        if delta:
            self.bytes = max(0, self.bytes + delta)


def usage(worksheet):
    """What a worksheet counts against its owner's quota: the sizes of its data files,
    and what an import brought in its cells (inputs, outputs, cell files, revisions),
    kept in ``imported_bytes`` until the worksheet is deleted.  Outputs of evaluations
    are not counted (they are bounded per cell and replaced at every run)."""
    total = worksheet.imported_bytes
    if worksheet.files is not None:
        total += sum(f.byte_size() for f in worksheet.files.values())
    return total


def root_of(obj):
    """The ``Root`` above ``obj``, or None while it is not in the tree."""
    while obj is not None and not isinstance(obj, Root):
        obj = getattr(obj, '__parent__', None)
    return obj


def share_key(worksheet):
    """A worksheet's key in ``root.shared_with``: ``"<owner id>/<number>"``."""
    return '%s/%s' % (worksheet.owner_id, worksheet.__name__)


def index_shares(root, worksheet, principals, shared):
    """Add (``shared``) or take the worksheet's key to or from the index entries of
    ``principals``, in the caller's transaction.  Sets that become empty stay: deleting
    one while another request adds to it would lose that addition (the set's merge
    resolves, but the tree no longer holds it)."""
    if root is None or not principals:
        return
    index = root.shared_with
    key = share_key(worksheet)
    for principal in principals:
        keys = index.get(principal)
        if shared:
            if keys is None:
                keys = index[principal] = OOTreeSet()
            keys.add(key)
        elif keys is not None and key in keys:
            keys.remove(key)


def owner_of(worksheet):
    parent = getattr(worksheet, '__parent__', None)
    return parent if isinstance(parent, User) else None


class Group(Persistent):
    """A named set of users (members hold the group's id in ``group_ids``).

    ``source`` is ``local`` for groups made here, or where they are synced from
    (``ldap``, ``oidc``): those are rewritten at each login of their members."""

    source = 'local'

    def __init__(self, name, source='local'):
        self.id = 'g-' + uuid.uuid4().hex[:16]
        self.name = name
        self.source = source


class ApiToken(Persistent):
    """``scope``: ``full`` or ``read`` (GET and HEAD only); ``expires``: seconds since
    the epoch, or None (auth/tokens.py)."""

    def __init__(self, user_id, label='', scope='full', expires=None):
        self.user_id = user_id
        self.label = label
        self.scope = scope
        self.expires = expires
        self.created = time.time()
        self.last_used = None


class AccountToken(Persistent):
    """A single-use link sent by mail (``root.account_tokens``, keyed by the SHA-256 of
    the token; the token itself is never stored).  ``purpose``: ``reset`` (set a new
    password), ``confirm`` (the address given at sign-up), ``email`` (a new address)."""

    def __init__(self, user_id, purpose, expires, email=''):
        self.user_id = user_id
        self.purpose = purpose
        self.expires = expires
        self.email = email
        self.created = time.time()


# Views of a worksheet (``<worksheet>/<view name>``).  A data file may also be reached as
# ``<worksheet>/<file name>`` (text cells of legacy worksheets refer to data files that
# way) unless its name is one of these; ``<worksheet>/data/<file name>`` always works.
WORKSHEET_VIEW_NAMES = frozenset({
    'alive', 'copy', 'evaluate_all', 'clear_outputs', 'interrupt', 'restart',
    'download.sws', 'download.ipynb', 'data', 'cells', 'revisions', 'files',
    'complete', 'inspect', 'trust', 'publish', 'print', 'sharing',
})


class Worksheet(Persistent):
    """A numbered worksheet of one owner, with its ordered cells.

    ``files`` holds the worksheet's data files, ``revisions`` earlier versions of its
    text; both are created on first use (worksheets stored before they existed lack
    them).  ``source`` says where an imported worksheet came from.
    """

    files = None
    revisions = None
    source = None
    # Bytes an import stored in the cells (see ``usage``); 0 for worksheets made here.
    imported_bytes = 0
    # Whether the owner vouches for the content (Jupyter's trust model): imports start
    # untrusted, and so does a worksheet once someone else changed a cell.  Only the
    # owner's view of a trusted worksheet runs the scripts of its HTML outputs.
    trusted = True

    def __init__(self, name, owner_id, typeset=True, system='sage'):
        self.name = name
        self.owner_id = owner_id
        self.system = system
        self.typeset = typeset
        self.created = self.modified = time.time()
        # Principal ids (``userid:...`` or ``group:...``); the sharing UI edits these.
        self.collaborators = PersistentList()
        self.viewers = PersistentList()
        # user id -> 'active' | 'archive' | 'trash'; missing means active.
        self.states = OOBTree()
        self.cells = Cells()
        self.cells.__parent__ = self
        self.cells.__name__ = 'cells'
        self.cell_order = PersistentList()
        self.next_cell_id = 0
        # The id of its publication in ``root.publications`` (None: not published).
        self.publication_id = None
        # Words the owner files it under (services/tags.py checks them), sorted.
        self.tags = ()

    @property
    def number(self):
        return int(self.__name__)

    @property
    def owner(self):
        return self.__parent__

    def __getitem__(self, name):
        if name == 'cells':
            return self.cells
        if name == 'data' and self.files is not None:
            return self.files
        if name == 'revisions' and self.revisions is not None:
            return self.revisions
        if self.files is not None and name not in WORKSHEET_VIEW_NAMES:
            return self.files[name]
        raise KeyError(name)

    def data_files(self):
        """The folder of data files, created when first needed."""
        if self.files is None:
            self.files = DataFiles()
            self.files.__parent__ = self
            self.files.__name__ = 'data'
        return self.files

    def add_revision(self, when, body, author_id=None):
        if self.revisions is None:
            self.revisions = Revisions()
            self.revisions.__parent__ = self
            self.revisions.__name__ = 'revisions'
        return self.revisions.add_revision(when, body, author_id)

    def trusted_by(self, user):
        """Whether ``user`` wrote (or vouched for) everything in the worksheet."""
        return bool(self.trusted) and user is not None and user.id == self.owner_id

    def changed_by(self, user_id):
        """A cell was changed by ``user_id``: content of anyone but the owner makes the
        worksheet untrusted until the owner trusts it again."""
        if user_id != self.owner_id and self.trusted:
            self.trusted = False

    def __acl__(self):
        acl = [(Allow, user_principal(self.owner_id), ALL_PERMISSIONS)]
        for principal in self.collaborators:
            acl.append((Allow, principal, (P.VIEW, P.EDIT, P.EVALUATE)))
        for principal in self.viewers:
            acl.append((Allow, principal, (P.VIEW,)))
        # An admin may take sharing away (moderation), never give it: the sharing
        # service refuses them anything but removals (docs/security.md, "Sharing").
        acl.append((Allow, admin_principal(), (P.SHARE,)))
        return acl + admin_reads_only()

    def shared_principals(self):
        return set(self.collaborators) | set(self.viewers)

    def share(self, collaborators, viewers):
        """New lists of principals (``userid:``/``group:``); the root's index of
        shared worksheets follows in the same transaction."""
        before = self.shared_principals()
        if list(self.collaborators) != list(collaborators):
            self.collaborators[:] = list(collaborators)
        if list(self.viewers) != list(viewers):
            self.viewers[:] = list(viewers)
        after = self.shared_principals()
        if owner_of(self) is not None:
            root = root_of(self)
            index_shares(root, self, before - after, False)
            index_shares(root, self, after - before, True)
            search.changed(self)  # its readers: candidates of "shared" searches

    def touch(self):
        """Something of the worksheet changed: every change of its name, tags or cell
        inputs calls this, which also reindexes it for search when the transaction
        commits (search.changed)."""
        self.modified = time.time()
        search.changed(self)

    def state_for(self, user_id):
        return self.states.get(user_id, 'active')

    def set_state(self, user_id, state):
        if state not in WORKSHEET_STATES:
            raise ValueError('state must be one of %s' % ', '.join(WORKSHEET_STATES))
        self.states[user_id] = state

    def add_cell(self, type, input='', after=None, before=None):
        if type not in CELL_TYPES:
            raise ValueError('type must be "compute" or "text"')
        if after is not None and before is not None:
            raise ValueError('give "after" or "before", not both')
        anchor = after if after is not None else before
        if anchor is not None and anchor not in self.cell_order:
            raise KeyError(anchor)
        cell_id = self.next_cell_id
        self.next_cell_id = cell_id + 1
        cell = Cell(cell_id, type, input)
        self.cells.add(str(cell_id), cell)
        if anchor is None:
            self.cell_order.append(cell_id)
        else:
            index = self.cell_order.index(anchor)
            self.cell_order.insert(index + 1 if after is not None else index, cell_id)
        self.touch()
        return cell

    def delete_cell(self, cell_id):
        if len(self.cell_order) <= 1:
            raise ValueError('a worksheet keeps at least one cell')
        self.cell_order.remove(cell_id)
        self.cells.remove(str(cell_id))
        self.touch()

    def move_cell(self, cell_id, direction):
        order = list(self.cell_order)
        index = order.index(cell_id)
        target = index - 1 if direction == 'up' else index + 1
        if direction not in ('up', 'down'):
            raise ValueError('direction must be "up" or "down"')
        if 0 <= target < len(order):
            order[index], order[target] = order[target], order[index]
            self.cell_order[:] = order
            self.touch()
        return order

    def ordered_cells(self):
        return [self.cells[str(cell_id)] for cell_id in self.cell_order]

    def charge_import(self, nbytes):
        """Count ``nbytes`` an import stored in the cells against the owner's quota."""
        owner = owner_of(self)
        if owner is not None:
            owner.storage_use().change(nbytes)
        self.imported_bytes += nbytes

    def copy(self, owner, name):
        twin = owner.create_worksheet(name, typeset=self.typeset, system=self.system)
        if self.imported_bytes:
            twin.charge_import(self.imported_bytes)
        # A copy of someone else's worksheet is content its new owner did not write.
        twin.trusted = bool(self.trusted) and owner.id == self.owner_id
        twin.delete_all_cells()
        for cell in self.ordered_cells():
            new = twin.add_cell(cell.type, cell.input)
            new.format = cell.format
            new.output.replace(cell.output)
        if self.files is not None:
            for data_file in self.files.values():
                twin.data_files().add(data_file.__name__, data_file.copy())
        return twin

    def snapshot(self):
        """A detached copy of the worksheet as it is now (cells with their outputs and
        files, data files) for a publication: in nobody's home, counted in no quota."""
        twin = Worksheet(self.name, self.owner_id, typeset=self.typeset, system=self.system)
        # What a publication shows is rendered untrusted for everybody.
        twin.trusted = False
        for cell in self.ordered_cells():
            # The same ids as the original's cells (a cell's URL names the same cell).
            new = twin.cells.add(str(cell.id), Cell(cell.id, cell.type, cell.input))
            twin.cell_order.append(cell.id)
            new.format = cell.format
            new.output.replace(cell.output)
            # Outputs are replaced whole by evaluations, but a snapshot must share nothing.
            new.output.outputs = copy.deepcopy(new.output.outputs)
        twin.next_cell_id = self.next_cell_id
        if self.files is not None:
            for data_file in self.files.values():
                twin.data_files().add(data_file.__name__, data_file.copy())
        twin.created, twin.modified = self.created, self.modified
        return twin

    def delete_all_cells(self):
        for cell_id in list(self.cell_order):
            self.cells.remove(str(cell_id))
        del self.cell_order[:]
        self.touch()


class Cells(Folder):
    """``<worksheet>/cells/``: cells by id (the order lives on the worksheet)."""


class Cell(Persistent):
    # How a text cell's input is written: ``markdown`` (with HTML allowed, as Jupyter)
    # or ``html`` (legacy worksheets, whose text is HTML with $math$).
    format = 'markdown'

    def __init__(self, cell_id, type, input=''):
        self.id = cell_id
        self.type = type
        self.input = input
        self.output = CellOutput()

    @property
    def worksheet(self):
        return self.__parent__.__parent__


class CellOutput(Persistent):
    """What evaluation produced: written by the worker, often, apart from the input.

    ``run_id`` names the evaluation the outputs belong to, so a late write from an
    earlier run never lands on a newer one.  ``version`` grows with every change;
    pollers ask for anything newer than the version they have.  ``full_text`` is a blob
    with the whole text of an output that was cut.
    """

    full_text = None
    # Files the evaluation wrote that are kept with it (name -> Blob), or None.
    files = None
    # While the running code waits in ``input()``: {"prompt", "password"}.
    input_request = None
    # ipywidgets models the evaluation made (@interact): {model_id: {model_name, state}}.
    widgets = None

    def __init__(self):
        self.status = 'new'
        self.outputs = []
        self.execution_count = None
        self.version = 0
        self.run_id = None
        self.server = None
        self.started = None
        self.finished = None
        self.full_text = None

    def keep_full_text(self, source):
        """Store the whole text of a cut output (a file object) as a blob."""
        blob = Blob()
        with blob.open('w') as f:
            shutil.copyfileobj(source, f)
        self.full_text = blob

    def replace(self, other):
        self.status = other.status if other.status not in BUSY else 'new'
        self.outputs = list(other.outputs)
        self.execution_count = other.execution_count
        self.full_text = other.full_text
        self.widgets = copy.deepcopy(other.widgets)
        self.files = None
        if other.files is not None:
            self.files = OOBTree({name: copy_blob(blob) for name, blob in other.files.items()})
        self.version += 1

    def set_widgets(self, widgets):
        self.widgets = widgets
        self.version += 1

    def add_file(self, name, content):
        if self.files is None:
            self.files = OOBTree()
        self.files[name] = bytes_blob(content)

    def queue(self, run_id, server):
        self.status = 'queued'
        self.outputs = []
        self.execution_count = None
        self.run_id = run_id
        self.server = server
        self.started = self.finished = None
        self.full_text = None
        self.files = None
        self.widgets = None
        self.version += 1

    def clear(self):
        self.outputs = []
        self.full_text = None
        self.files = None
        self.widgets = None
        if self.status not in BUSY:
            self.status = 'new'
            self.execution_count = None
        self.version += 1

    def update(self, status, outputs, execution_count=None, started=None, finished=None,
               input_request=None):
        self.status = status
        self.outputs = outputs
        if input_request != self.input_request:
            self.input_request = input_request
        if execution_count is not None:
            self.execution_count = execution_count
        if started is not None:
            self.started = started
        if finished is not None:
            self.finished = finished
        self.version += 1


def guess_type(name):
    return mimetypes.guess_type(name or '')[0] or 'application/octet-stream'


def bytes_blob(content):
    blob = Blob()
    with blob.open('w') as f:
        f.write(content)
    return blob


def copy_blob(blob):
    twin = Blob()
    with blob.open('r') as source, twin.open('w') as target:
        shutil.copyfileobj(source, target)
    return twin


def read_blob(blob):
    with blob.open('r') as f:
        return f.read()


class DataFiles(Folder):
    """``<worksheet>/data/``: the worksheet's data files by name.  Adding and removing
    a file changes the owner's storage total in the same transaction."""

    def add_file(self, name, content):
        if name in self:
            self.remove(name)
        return self.add(name, DataFile(content))

    def _owner(self):
        return owner_of(self.__parent__) if self.__parent__ is not None else None

    def add(self, name, obj):
        owner = self._owner()
        use = owner.storage_use() if owner is not None else None
        super().add(name, obj)
        if use is not None:
            use.change(obj.byte_size())
        return obj

    def remove(self, name):
        owner = self._owner()
        if owner is not None:
            owner.storage_use().change(-self.data[str(name)].byte_size())
        return super().remove(name)


class DataFile(Persistent):
    """A file of a worksheet, kept in a ZODB blob."""

    def __init__(self, content=b'', blob=None):
        self.blob = blob if blob is not None else bytes_blob(content)
        self.size = len(content) if blob is None else None
        self.modified = time.time()

    @property
    def content_type(self):
        return guess_type(self.__name__)

    def read(self):
        return read_blob(self.blob)

    def byte_size(self):
        if self.size is None:  # made from a blob without its size
            with self.blob.open('r') as f:
                self.size = f.seek(0, 2)
        return self.size

    def write(self, content):
        """New content; the owner's storage total follows."""
        folder = self.__parent__
        owner = folder._owner() if isinstance(folder, DataFiles) else None
        if owner is not None:
            owner.storage_use().change(len(content) - self.byte_size())
        self.blob = bytes_blob(content)
        self.size = len(content)
        self.modified = time.time()

    def copy(self):
        twin = DataFile(blob=copy_blob(self.blob))
        twin.size = self.size
        return twin


class Revisions(Folder):
    """``<worksheet>/revisions/``: earlier texts of the worksheet, by time."""

    def add_revision(self, when, body, author_id=None):
        name = '%.3f' % when
        if name in self:
            return self[name]
        return self.add(name, Revision(when, body, author_id))


class Revision(Persistent):
    def __init__(self, when, body, author_id=None):
        self.time = when
        self.body = body
        self.author_id = author_id


# Views of a publication (``/pub/<id>/<view name>``); other names are its data files.
PUBLICATION_VIEW_NAMES = frozenset({'copy', 'rate', 'ratings', 'hide', 'print', 'cells',
                                    'data'})


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


class AdminSection:
    """``/admin/``: the admin pages (not stored; admins only).  ``users/<login>`` and
    ``groups/<group id>`` wrap a user or a group for their admin views."""

    __name__ = 'admin'

    def __init__(self, root):
        self.__parent__ = root
        self.root = root

    def __acl__(self):
        return [(Allow, admin_principal(), ALL_PERMISSIONS), DENY_ALL]

    def __getitem__(self, name):
        if name == 'users':
            return AdminUsers(self)
        if name == 'groups':
            return AdminGroups(self)
        raise KeyError(name)


class AdminUsers:
    __name__ = 'users'

    def __init__(self, parent):
        self.__parent__ = parent
        self.root = parent.root

    def __getitem__(self, login):
        user = self.root.user_by_login(login)
        if user is None:
            raise KeyError(login)
        return AdminUser(self, user)


class AdminUser:
    def __init__(self, parent, user):
        self.__parent__ = parent
        self.__name__ = user.login
        self.root = parent.root
        self.user = user


class AdminGroups:
    __name__ = 'groups'

    def __init__(self, parent):
        self.__parent__ = parent
        self.root = parent.root

    def __getitem__(self, group_id):
        group = self.root.groups.get(group_id)
        if group is None:
            raise KeyError(group_id)
        return AdminGroup(self, group)


class AdminGroup:
    def __init__(self, parent, group):
        self.__parent__ = parent
        self.__name__ = group.id
        self.root = parent.root
        self.group = group


def root_factory(request):
    from pyramid_zodbconn import get_connection
    return get_root(get_connection(request).root())


def get_root(zodb_root):
    """The application root, created on first use."""
    app_root = zodb_root.get('sagenb')
    if app_root is None:
        app_root = zodb_root['sagenb'] = Root()
    return app_root


def in_transaction(db, work, attempts=1):
    """``work(root)`` on the application root, in a transaction of a connection of its
    own (threads and scripts outside requests); run again after a ConflictError, up to
    ``attempts`` times in all.  Returns what ``work`` returns."""
    import transaction
    from ZODB.POSException import ConflictError
    tm = transaction.TransactionManager(explicit=True)
    conn = db.open(transaction_manager=tm)
    try:
        for attempt in range(attempts):
            # Not ``with tm``: a ConflictError of its commit left the failed transaction
            # begun, and the next attempt's begin raised AlreadyInTransaction.
            tm.begin()
            try:
                result = work(get_root(conn.root()))
                tm.commit()
                return result
            except ConflictError:
                tm.abort()
                if attempt + 1 == attempts:
                    raise
                time.sleep(0.02 * (attempt + 1))
            except BaseException:
                tm.abort()
                raise
    finally:
        conn.close()


def ensure_root(db):
    """Create the application root in a transaction of its own (at start-up); returns
    the number of users."""
    return in_transaction(db, lambda root: len(root.home))
