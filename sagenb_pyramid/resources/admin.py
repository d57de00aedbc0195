"""``/admin/``: wrappers of the root, a user and a group for the admin views; made at
each request, never stored.
"""
from ..acl import ALL_PERMISSIONS, DENY_ALL, Allow, admin_principal


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
