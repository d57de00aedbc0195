""":func:`migrate`: finds the notebook folder, then reads it in order (accounts and
settings, the worksheet folders, the users, the worksheets, the published copies)."""
import os

from .accounts import PSEUDO_USERS, Accounts
from .files import WORKSHEET_LIMITS
from .home import Home
from .report import MigrationError, Report
from .worksheets import Worksheets, savepoint_of


def migrate(root, path, dry_run=False, max_file_bytes=WORKSHEET_LIMITS.max_file_bytes):
    """Bring the legacy notebook folder ``path`` into ``root``; returns a :class:`Report`.

    With ``dry_run`` everything is done and then rolled back to where it started (a
    savepoint of the current transaction), so the report is the same and nothing stays.
    ``max_file_bytes`` bounds each data and cell file (0: no bound).
    """
    folder = _notebook_folder(path)
    report = Report(dry_run=dry_run)
    start = None
    if dry_run:
        start = savepoint_of(root)
        if start is None:
            raise MigrationError('a dry run needs a root stored in a database')
    try:
        _run(root, folder, report, max_file_bytes)
    finally:
        if start is not None:
            start.rollback()
    return report


def _notebook_folder(path):
    path = os.path.abspath(os.path.expanduser(path))
    if not os.path.isdir(path):
        raise MigrationError('%s is not a folder' % path)
    if not _looks_like_notebook(path):
        inner = os.path.join(path, 'sage_notebook.sagenb')
        if os.path.isdir(inner) and _looks_like_notebook(inner):
            return inner
        raise MigrationError('%s is not a legacy notebook folder (it has neither home/ nor '
                             'users.pickle)' % path)
    return path


def _looks_like_notebook(path):
    return os.path.isdir(os.path.join(path, 'home')) or \
        os.path.isfile(os.path.join(path, 'users.pickle'))


def _run(root, folder, report, max_file_bytes):
    # The order is the report's: its lines follow the order things are found in.
    accounts = Accounts(root, folder, report)
    accounts.read_users()
    accounts.read_settings()
    accounts.read_openid()
    owners = Home(folder, report).worksheet_folders()
    accounts.create_users(owners)
    accounts.read_readonly()
    worksheets = Worksheets(root, report, accounts.users, max_file_bytes)
    for login in sorted(owners):
        if login in PSEUDO_USERS:
            if login == 'pub':
                continue
            count = len(owners[login])
            report.skip('%s (%d worksheet%s)' % (login, count, '' if count == 1 else 's'),
                        PSEUDO_USERS[login])
            continue
        user = accounts.users.get(login)
        if user is None:
            continue  # the reason is in the report already
        numbers = set(owners[login])
        for number in sorted(numbers):
            worksheets.import_worksheet(user, login, number, owners[login][number], numbers)
    worksheets.mark_published(owners.get('pub', {}))
    if worksheets.code_folders:
        report.skip('code/ folders (%d worksheet%s)' % (
            worksheets.code_folders, '' if worksheets.code_folders == 1 else 's'),
            'compiled code of %cython cells is not migrated; it is built again '
            'when the cell runs')
