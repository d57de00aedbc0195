"""The per-user storage quota (``sagenb.quota.user_mb``), checked by everything that adds
bytes (data files, imports, copies); the running total lives in
``resources.StorageUse``."""
from ..web import api_error

MB = 2**20


def quota_bytes(settings):
    """The per-user quota in bytes (0: none)."""
    return int(settings['sagenb.quota.user_mb'] * MB)


def megabytes(nbytes):
    return '%.1f MB' % (nbytes / MB) if nbytes < 10 * MB else '%d MB' % round(nbytes / MB)


def quota_problem(settings, user, adding):
    """What adding ``adding`` bytes to ``user``'s storage would break, or None."""
    limit = quota_bytes(settings)
    if limit <= 0 or adding <= 0:
        return None
    used = user.storage_use().bytes
    if used + adding <= limit:
        return None
    return ('%s would pass the storage quota of %s: %s uses %s of %d MB; delete data '
            'files or worksheets first' % (megabytes(adding), user.login, user.login,
                                           megabytes(used), round(limit / MB)))


def require_room(settings, user, adding, what, status=413):
    """Refuse (413 for what a request brings, 409 for a copy) what would pass the
    quota of ``user`` (``settings``: the registry's)."""
    problem = quota_problem(settings, user, adding)
    if problem:
        raise api_error(status, '%s: %s' % (what, problem))
