"""The application root (``Root``: the ACL every other object inherits, the trees of
the whole site, users and groups by stable id) and how it is opened: ``root_factory``
for requests, ``get_root``, ``in_transaction`` and ``ensure_root`` for threads and
scripts.
"""
import time

from BTrees.LOBTree import LOBTree
from BTrees.OOBTree import OOBTree, OOTreeSet
from persistent.mapping import PersistentMapping

from .. import search
from ..acl import ALL_PERMISSIONS, Allow, Authenticated, P, admin_principal, group_principal, \
    user_principal
from .admin import AdminSection
from .doc import DocSection
from .folder import RootFolder, stored
from .publications import Publications
from .users import Group, Home, User
from .worksheets import Worksheet

# The evolve steps (evolve.py) whose attributes the constructors of the package make: a
# new database is marked with all of them done.  A new step's name goes here too.
SCHEMA_STEPS = ('root-trees', 'audit-numbered-log', 'user-sessions-identities-storage',
                'token-scope-expiry', 'worker-host-records', 'publications',
                'shared-with-index', 'worksheet-tags', 'search-index',
                'publications-by-time', 'worksheet-history', 'live-versions',
                'cell-order')


@stored
class Root(RootFolder):
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
        if name == 'doc':
            return DocSection(self)
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
