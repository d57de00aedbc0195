"""What ACLs are written with: every permission (``P``), the principals, and Pyramid's
ACE vocabulary (``Allow``, ``Deny``, ``Authenticated``, ``Everyone``, ``ALL_PERMISSIONS``,
``DENY_ALL``).

Principals are stable ids, never logins: ``userid:<id>``, ``group:<id>``, ``role:admin``.
It imports nothing of the project, so resources/ (which computes the ACLs) and
security.py (which checks them, and reads the resources) do not import each other.
It imports nothing of Pyramid either: any Pyramid module but ``pyramid.settings``
imports pkg_resources, which reads every installed distribution (about 0.3 s), and
the admin commands load resources/ without Pyramid (tests/unit/test_security.py checks
these values are Pyramid's).
"""
import enum

# pyramid.authorization's values: the ACE actions and principals are these strings.
Allow = 'Allow'
Deny = 'Deny'
Everyone = 'system.Everyone'
Authenticated = 'system.Authenticated'


class AllPermissions:
    """As pyramid.authorization.ALL_PERMISSIONS: contains every permission."""

    def __iter__(self):
        return iter(())

    def __contains__(self, permission):
        return True


ALL_PERMISSIONS = AllPermissions()
DENY_ALL = (Deny, Everyone, ALL_PERMISSIONS)


class P(str, enum.Enum):
    """Every permission of the application, named in one place."""

    VIEW = 'view'            # read a worksheet, list a home
    EDIT = 'edit'            # change cells, names, order
    EVALUATE = 'evaluate'    # run cells, interrupt, restart
    DELETE = 'delete'        # delete (or trash) a worksheet
    SHARE = 'share'          # change collaborators and viewers
    TRUST = 'trust'          # vouch for a worksheet's content (its owner only)
    CREATE = 'create'        # create worksheets in a home
    ADMIN = 'admin'          # manage users, groups and settings
    ACCOUNT = 'account'      # see and change one's own account
    # Publishing (issue 20): a worksheet's owner publishes it and moderates the comments
    # of its publication (admins only read, as everywhere in homes); logged-in users rate.
    PUBLISH = 'publish'      # publish, update, unpublish; hide comments
    RATE = 'rate'            # rate a publication (and comment)

    def __str__(self):
        return self.value


def user_principal(user_id):
    return 'userid:' + user_id


def group_principal(group_id):
    return 'group:' + group_id


def admin_principal():
    return 'role:admin'


def admin_reads_only():
    """The end of the ACL of a home or worksheet: an admin who is not named above it
    may look (``P.VIEW``: read, download, copy into their own home) and nothing else, so
    neither an admin's token nor a page that shows someone else's content can change it
    (issue 18).  Everything else of an admin's comes from the root."""
    return [(Allow, admin_principal(), (P.VIEW,)),
            (Deny, admin_principal(), ALL_PERMISSIONS)]
