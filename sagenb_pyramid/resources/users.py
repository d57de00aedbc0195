"""People and what they hold outside their worksheets: ``Home`` (``/home/``, users by
login), ``User`` (their worksheets are its children), ``StorageUse`` (the bytes counted
against a quota, ``usage``), ``Group``, and the stored token records ``ApiToken`` and
``AccountToken``.
"""
import time
import uuid

from BTrees.OOBTree import OOBTree, OOTreeSet
from persistent import Persistent
from persistent.mapping import PersistentMapping

from .. import search
from ..acl import P, Allow, admin_principal, admin_reads_only, group_principal, user_principal
from .folder import Folder, OwnerFolder, root_of, stored
from .shareindex import index_shares
from .worksheets import Worksheet

# The number of a user's documentation worksheet for the worker hosts: below every
# worksheet number of a home, so its process counts against the user's limit as theirs.
DOC_WORKSHEET_NUMBER = -1


@stored
class Home(Folder):
    """``/home/``: users by login."""


@stored
class User(OwnerFolder):
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
    # The worksheet the examples of the manuals run in (services/doc.py): in no home
    # (not listed, searched or counted in the quota), made at the first example.
    doc_worksheet = None

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

    def worksheet_numbered(self, number):
        """The worksheet the worker hosts call ``number`` (the documentation's scratch
        worksheet is DOC_WORKSHEET_NUMBER), or None."""
        if number == DOC_WORKSHEET_NUMBER:
            return self.doc_worksheet
        worksheet = self.get(str(number))
        return worksheet if isinstance(worksheet, Worksheet) else None

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


@stored
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


@stored
class Group(Persistent):
    """A named set of users (members hold the group's id in ``group_ids``).

    ``source`` is ``local`` for groups made here, or where they are synced from
    (``ldap``, ``oidc``): those are rewritten at each login of their members."""

    source = 'local'

    def __init__(self, name, source='local'):
        self.id = 'g-' + uuid.uuid4().hex[:16]
        self.name = name
        self.source = source


@stored
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


@stored
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
