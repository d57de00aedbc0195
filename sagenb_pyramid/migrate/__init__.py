"""Migrating a whole legacy Sage notebook server: its ``<name>.sagenb`` folder.

:func:`migrate` reads the folder and creates users and worksheets in the database (the
caller owns the transaction: ``sagenb-admin CONFIG import-sagenb PATH`` runs it in one).
It returns a :class:`Report` of what it did and of everything it left out and why.

What it reads (see docs: the legacy notebook directory):

- ``users.pickle``: accounts.  The password hash is stored as it is (``sha256$...`` or
  DES crypt); it is verified, and replaced by argon2, at the first login.  A user who
  owns worksheets but is missing from ``users.pickle`` is created without a password
  (an admin sets one).  ``_sage_`` (documentation), ``pub`` (published copies) and
  guests are not accounts here.
- ``conf.pickle``: server settings.  Runtime settings come from the ``.ini`` file, so the
  ones that have a counterpart are listed in the report and kept in
  ``root.legacy_settings``; nothing is applied.
- ``readonly.txt`` and ``openid.pickle``: reported (no counterpart).
- ``home/__store__/<h[0]>/<h[:2]>/<h[:3]>/<h[:4]>/<user>/<id>/`` and the older
  ``home/<user>/<id>/``: worksheets with their cell files, data files and snapshots.
  The owner and number come from the folder (a worksheet's conf may disagree: copies
  of worksheets kept the conf of the original).

Pickles are read with :mod:`..formats.safepickle` only, which refuses anything but plain
data, so a pickle with a payload is reported and never runs.  One bad item (an
unreadable worksheet, a damaged snapshot, a bad pickle) is skipped with the reason;
the rest goes on.  Running the migration again creates nothing twice: a worksheet
remembers where it came from in ``source`` (``sagenb:<owner>/<id>``).

Names follow the rules of uploads (``importing.check_worksheet``): a worksheet's name
and system are cleaned (noted); a data or cell file whose name breaks the rule is
skipped; a worksheet with a file larger than ``max_file_bytes`` (``sagenb.data.max_mb``
unless the command says otherwise) is skipped whole, so a second run with a larger
limit brings it.  Names of people (collaborators, viewers, authors of snapshots) are
only looked up among the accounts; a malformed e-mail address is left out.

The modules, each importing only those listed before it:

- ``report``: :class:`Report`, :class:`MigrationError`
- ``files``: the safe readers of the folder (regular files only, bounded, pickles
  through ``safepickle``) and the plain values read from it
- ``accounts``: ``users.pickle``, ``readonly.txt``, ``openid.pickle`` (``Accounts``) and
  the settings of ``conf.pickle`` (``map_setting``)
- ``home``: the worksheet folders of ``home/`` in both layouts
- ``worksheets``: each worksheet read (body, cell and data files, snapshots) and
  written (revisions, sharing, states), and the published copies
- ``migration``: :func:`migrate`, which runs them in order
"""
from .migration import migrate
from .report import MigrationError, Report

__all__ = ['MigrationError', 'Report', 'migrate']
