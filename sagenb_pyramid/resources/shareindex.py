"""The index of shared worksheets (``root.shared_with``: principal -> ``OOTreeSet`` of
worksheet keys), kept by ``User`` and ``Worksheet`` in the transaction that changes a
share, so "shared with me" reads a few sets instead of every worksheet.
"""
from BTrees.OOBTree import OOTreeSet


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
