"""What the views do to the object graph and the worker hosts, outside the views: the
views parse a request, check its permission, call one of these and render the answer.

- ``evaluation``: handing cells to the worksheet's worker host (``%auto`` cells first),
  waiting for their results, settling cells a stopped host left busy, deleting a
  worksheet with its process, asking the process (completion, introspection).
- ``serialize``: worksheets, cells and listings as the page and the API see them.
- ``links``: the single-use links sent by mail (password reset, address confirmation,
  change of address, invitations).
- ``accounts``: checks of new logins and addresses.
- ``listing``: which worksheets a home lists (by state, tag, or shared with its user), in
  which order.
- ``quota``: the per-user storage quota.
- ``worksheets``: changing a worksheet (name, typesetting, system, state, tags),
  copying, adding, editing and deleting cells, clearing outputs, the listing's actions,
  emptying the trash; the system of a user's new worksheets.
- ``datafiles``: a worksheet's data files (add, edit, rename) within the limits.
- ``admin``: the admin pages' user, group, settings and audit-log work.
- ``login``: password logins (rate limit, directory accounts), sign-up, password change.
- ``tokens``: a user's API tokens (list, make, revoke).
- ``identities``: OAuth / OpenID Connect identities as users (which user an identity
  logs in as, linking, the provider's groups and admin right, the identity waiting for
  a username).
- ``sharing``: sharing worksheets with users and groups (roles, the "shared with me"
  listing, whom the share dialog shows).
- ``publishing``: publications at ``/pub/`` (publishing, their pages, ratings, copies).
- ``finding``: ``GET /search`` confined to what the caller may see.
- ``tags``: what a worksheet's tag may be (the API, the listing's filter).
- ``transfer``: importing uploads within the limits and the quota, exporting worksheets
  (one as ``.sws``/``.ipynb``, a home's chosen ones in a zip).

Scripts (``sagenb-admin``, ``migrate/``) and tests that need this logic import it from
here, never from a view.  The shared request helpers are in
``sagenb_pyramid/web.py``, the after-commit helper in ``sagenb_pyramid/aftercommit.py``.
"""
