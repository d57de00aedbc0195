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

Pickles are read with :mod:`.formats.safepickle` only, which refuses anything but plain
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
"""
import os
import re
import stat

from ZODB.blob import Blob

from . import names
from .auth.passwords import check_login_name
from .formats import FormatError, Limits, TooLarge, archive, safepickle, sws
from .importing import _shown, check_worksheet, create_worksheet, safe_file_name
from .resources import DataFile
from .security import user_principal
from .services.accounts import check_email

PSEUDO_USERS = {
    '_sage_': 'documentation worksheets of the pseudo-user _sage_ are not migrated',
    'pub': 'the pseudo-user pub holds published copies: the originals are marked '
           'published instead',
}
TAG_STATES = {0: 'archive', 1: 'active', 2: 'trash'}
# Files of the notebook folder itself are small; a worksheet's body, cell files and
# snapshots share one budget (data files are copied into blobs without one).
MAX_SMALL_FILE = safepickle.MAX_PICKLE_BYTES
WORKSHEET_LIMITS = Limits()
NUMBER_RE = re.compile(r'^\d{1,9}$')
SNAPSHOT_RE = re.compile(r'^(\d+(?:\.\d+)?)\.bz2$')
CLOSED_PASSWORDS = ('', 'x')  # sagenb wrote 'x' for an account without a password


class MigrationError(ValueError):
    """The migration cannot start (not a notebook folder); nothing was done."""


class Report:
    """What a migration did (or, in a dry run, would do)."""

    def __init__(self, dry_run=False):
        self.dry_run = dry_run
        self.users = 0
        self.worksheets = 0
        self.cells = 0       # cells read from the legacy bodies (text and compute)
        self.files = 0       # cell files and data files
        self.revisions = 0   # snapshots kept as revisions
        self.imported = []   # ('owner/id' in sagenb, 'login/number' here)
        self.settings = []   # one line per legacy server setting
        self.notes = []      # (item, message): done, but worth knowing
        self.skipped = []    # (item, reason): left out

    def skip(self, item, reason):
        self.skipped.append((item, reason))

    def note(self, item, message):
        self.notes.append((item, message))

    def skipped_items(self):
        return [item for item, _ in self.skipped]

    def lines(self):
        """The report as lines of text; names from the folder cannot break a line or
        turn its text around (control and bidirectional characters are escaped)."""
        return [names.escape_hidden(line) for line in self._lines()]

    def _lines(self):
        out = []
        verb = 'Would import' if self.dry_run else 'Imported'
        if self.dry_run:
            out.append('Dry run: nothing was written.')
        out.append('%s %d users, %d worksheets (%d cells), %d files, %d revisions.'
                   % (verb, self.users, self.worksheets, self.cells, self.files,
                      self.revisions))
        for old, new in self.imported:
            out.append('  worksheet %s -> %s' % (old, new))
        if self.settings:
            out.append('Settings of the old server (kept in the database as '
                       'legacy_settings; copy into the .ini what you want applied):')
            out.extend('  ' + line for line in self.settings)
        if self.notes:
            out.append('Notes:')
            out.extend('  %s: %s' % note for note in self.notes)
        if self.skipped:
            out.append('Skipped (%d):' % len(self.skipped))
            out.extend('  %s: %s' % skip for skip in self.skipped)
        return out


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
        start = _savepoint(root)
        if start is None:
            raise MigrationError('a dry run needs a root stored in a database')
    try:
        _Migration(root, folder, report, max_file_bytes).run()
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


def _savepoint(root):
    jar = getattr(root, '_p_jar', None)
    if jar is None:
        return None
    return jar.transaction_manager.get().savepoint()


# --- reading files --------------------------------------------------------------------

def _is_file(path):
    """A regular file, not a link (a link could lead out of the notebook folder)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _is_dir(path):
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _open(path):
    fd = os.open(path, os.O_RDONLY | getattr(os, 'O_NOFOLLOW', 0))
    return os.fdopen(fd, 'rb')


def _read(path, max_bytes, name=None):
    """The bytes of a regular file, at most ``max_bytes`` of them, or FormatError."""
    name = name or os.path.basename(path)
    if not _is_file(path):
        raise FormatError('%s is not a regular file' % name)
    try:
        with _open(path) as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise FormatError('%s cannot be read (%s)' % (name, exc.strerror or exc)) from None
    if len(data) > max_bytes:
        raise FormatError('%s is larger than %d MB' % (name, max_bytes // 2**20))
    return data


def _read_budgeted(path, budget, name):
    try:
        size = os.lstat(path).st_size
    except OSError as exc:
        raise FormatError('%s cannot be read (%s)' % (name, exc.strerror or exc)) from None
    budget.take(size, name)
    return _read(path, max(size, 0) + 2**16, name)


def _read_pickle(path, what):
    return safepickle.loads(_read(path, MAX_SMALL_FILE, what), what)


def _reason(exc, what):
    """The message of ``exc`` without a leading ``what: `` (the item names it)."""
    message = str(exc)
    return message[len(what) + 2:] if message.startswith(what + ': ') else message


def _label(value):
    """A name from the folder in a report line (control characters escaped)."""
    return _shown(value)[1:-1]


def _raise(exc):
    raise exc


def _files_below(top):
    """``[(relative path with '/', absolute path)]`` of the regular files below ``top``.

    Links are not followed; a folder that cannot be listed raises OSError.
    """
    found = []
    for dirpath, dirnames, filenames in os.walk(top, onerror=_raise, followlinks=False):
        dirnames.sort()
        for filename in sorted(filenames):
            full = os.path.join(dirpath, filename)
            if _is_file(full):
                found.append((os.path.relpath(full, top).replace(os.sep, '/'), full))
    return found


def _text(value):
    return value if isinstance(value, str) else None


def _number(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and NUMBER_RE.match(value.strip()):
        return int(value)
    return None


def _time(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if value > 0 else None


# --- the migration --------------------------------------------------------------------

class _Worksheet:
    """One legacy worksheet read from its folder (nothing written yet)."""

    def __init__(self, owner, number, folder):
        self.owner = owner
        self.number = number
        self.folder = folder
        self.conf = {}
        self.data = None
        self.data_files = []   # (name, absolute path)
        self.revisions = []    # (time, text, author login or None)
        self.cell_files = 0
        self.orphan_cells = []  # ids of cells/<id>/ folders of cells not in the body
        self.skipped = []       # (item, reason) of its parts left out
        self.has_code = False

    @property
    def key(self):
        return '%s/%d' % (self.owner, self.number)


class _Migration:
    def __init__(self, root, folder, report, max_file_bytes=0):
        self.root = root
        self.folder = folder
        self.report = report
        self.max_file_bytes = max_file_bytes
        self.legacy_users = {}     # login -> dict from users.pickle
        self.accounts = {}         # login -> User here (created or existing)
        self.sources = {}          # user id -> {source marker: worksheet}
        self.code_folders = 0
        self.auto_published = set()  # worksheets sagenb published at each change

    def run(self):
        self.read_users()
        self.read_settings()
        self.read_openid()
        owners = self.find_worksheet_folders()
        self.create_users(owners)
        self.read_readonly()
        for login in sorted(owners):
            if login in PSEUDO_USERS:
                if login == 'pub':
                    continue
                count = len(owners[login])
                self.report.skip('%s (%d worksheet%s)' % (login, count,
                                                          '' if count == 1 else 's'),
                                 PSEUDO_USERS[login])
                continue
            user = self.accounts.get(login)
            if user is None:
                continue  # the reason is in the report already
            numbers = set(owners[login])
            for number in sorted(numbers):
                self.import_worksheet(user, login, number, owners[login][number], numbers)
        self.mark_published(owners.get('pub', {}))
        if self.code_folders:
            self.report.skip('code/ folders (%d worksheet%s)' % (
                self.code_folders, '' if self.code_folders == 1 else 's'),
                'compiled code of %cython cells is not migrated; it is built again '
                'when the cell runs')

    # users ---------------------------------------------------------------------------

    def read_users(self):
        path = os.path.join(self.folder, 'users.pickle')
        if not os.path.lexists(path):
            self.report.note('users.pickle', 'not found: the owners of worksheets are '
                             'created without passwords')
            return
        try:
            value = _read_pickle(path, 'users.pickle')
        except FormatError as exc:
            self.report.skip('users.pickle', '%s; the owners of worksheets are created '
                             'without passwords' % _reason(exc, 'users.pickle'))
            return
        if isinstance(value, dict):
            entries = list(value.items())
        elif isinstance(value, list):
            entries = value
        else:
            self.report.skip('users.pickle', 'it holds neither a list nor a dictionary')
            return
        for entry in entries:
            if isinstance(entry, (list, tuple)) and len(entry) == 2 and \
                    isinstance(entry[0], str) and isinstance(entry[1], dict):
                self.legacy_users[entry[0]] = entry[1]
            else:
                self.report.skip('users.pickle entry %.60r' % (entry,),
                                 'not a [username, {...}] pair')

    def create_users(self, owners):
        logins = set(self.legacy_users) | set(owners)
        for login in sorted(logins):
            info = self.legacy_users.get(login)
            item = 'user %s' % login
            problem = check_login_name(login)
            if problem:
                item = 'user %s' % _label(login)
            if login in PSEUDO_USERS:
                if info is not None:
                    self.report.skip(item, 'a pseudo-user of the old notebook, not an '
                                     'account')
                continue
            if info is not None and info.get('account_type') == 'guest':
                self.report.skip(item, 'guest accounts are not migrated')
                continue
            if problem:
                count = len(owners.get(login, ()))
                self.report.skip(item, problem + (
                    ' Its %d worksheet%s are not migrated.' % (count, '' if count == 1
                                                               else 's') if count else ''))
                continue
            existing = self.root.user_by_login(login)
            if existing is not None:
                self.accounts[login] = existing
                self.report.skip(item, 'exists; its worksheets are added to the existing '
                                 'account' if owners.get(login) else 'exists')
                continue
            self.accounts[login] = self.create_user(login, info)

    def create_user(self, login, info):
        report = self.report
        item = 'user %s' % login
        if info is None:
            user = self.root.add_user(login, None)
            report.note(item, 'owns worksheets but is not in users.pickle: created '
                        'without a password (an admin must set one)')
            report.users += 1
            return user
        password = _text(info.get('password'))
        external = info.get('external_auth')
        if external or (password is not None and password.strip() in CLOSED_PASSWORDS):
            # An external account (LDAP, OpenID) never signed in with a local password.
            password = None
        # sagenb treated the user named admin as an admin whatever its account type.
        is_admin = info.get('account_type') == 'admin' or login == 'admin'
        email = (_text(info.get('email')) or '').strip()
        if email and check_email(email):
            report.note(item, 'its e-mail address %s is not an address: left out'
                        % _shown(email))
            email = ''
        user = self.root.add_user(login, password, is_admin=is_admin, email=email)
        report.users += 1
        if external:
            report.note(item, 'signed in through %s in the old notebook, which is not '
                        'supported here: no password until an admin sets one'
                        % (_text(external) or 'an external service'))
        elif password is None:
            report.note(item, 'had no password: an admin must set one')
        if info.get('is_suspended'):
            user.suspended = True
            report.note(item, 'suspended (kept suspended)')
        return user

    def read_readonly(self):
        path = os.path.join(self.folder, 'readonly.txt')
        if not os.path.lexists(path):
            return
        try:
            text = safepickle.decode(_read(path, MAX_SMALL_FILE, 'readonly.txt'))
        except FormatError as exc:
            self.report.skip('readonly.txt', str(exc))
            return
        names = [line.strip() for line in text.splitlines() if line.strip()]
        if names:
            self.report.skip('readonly.txt', 'read-only accounts are not supported here; '
                             'these can edit and evaluate after the migration: %s'
                             % ', '.join(names))

    def read_openid(self):
        path = os.path.join(self.folder, 'openid.pickle')
        if not os.path.lexists(path):
            return
        try:
            value = _read_pickle(path, 'openid.pickle')
            count = ' (%d identities)' % len(value) if isinstance(value, dict) else ''
        except FormatError as exc:
            count = ' (%s)' % exc
        self.report.skip('openid.pickle', 'OpenID is not supported: its sign-ins are not '
                         'migrated%s' % count)

    # settings ------------------------------------------------------------------------

    def read_settings(self):
        path = os.path.join(self.folder, 'conf.pickle')
        if not os.path.lexists(path):
            return
        try:
            conf = _read_pickle(path, 'conf.pickle')
            if not isinstance(conf, dict):
                raise FormatError('conf.pickle does not hold a dictionary')
        except FormatError as exc:
            self.report.skip('conf.pickle', _reason(exc, 'conf.pickle'))
            return
        recognised = {}
        for key in sorted(conf, key=str):
            for line in _map_setting(str(key), conf[key], recognised):
                self.report.settings.append(line)
        # A new dict: the root is persistent, its attributes plain values.
        self.root.legacy_settings = dict(recognised)

    # worksheets ----------------------------------------------------------------------

    def find_worksheet_folders(self):
        """``{login: {number: folder}}`` from both layouts of ``home/``."""
        home = os.path.join(self.folder, 'home')
        owners = {}
        if not _is_dir(home):
            return owners
        store = os.path.join(home, '__store__')
        if _is_dir(store):
            for user_dir in self._store_user_dirs(store):
                self._add_user_dir(owners, os.path.basename(user_dir), user_dir)
        for entry in self.listdir(home):
            full = os.path.join(home, entry)
            if entry == '__store__':
                continue
            if os.path.islink(full):
                target = os.path.realpath(full)
                if not target.startswith(os.path.realpath(store) + os.sep):
                    self.report.skip('home/%s' % entry, 'a link out of the notebook\'s '
                                     '__store__ folder; not followed')
                continue  # sagenb's own link to home/__store__/.../<user>
            if _is_dir(full):
                self._add_user_dir(owners, entry, full)
        return owners

    def listdir(self, path):
        try:
            return sorted(os.listdir(path))
        except OSError as exc:
            self.report.skip(os.path.relpath(path, self.folder),
                             'cannot be listed (%s)' % (exc.strerror or exc))
            return []

    def _store_user_dirs(self, store):
        dirs = [store]
        for _ in range(4):
            dirs = [os.path.join(d, e) for d in dirs for e in self.listdir(d)
                    if _is_dir(os.path.join(d, e))]
        found = []
        for d in dirs:
            for e in self.listdir(d):
                if _is_dir(os.path.join(d, e)):
                    found.append(os.path.join(d, e))
        return found

    def _add_user_dir(self, owners, login, user_dir):
        worksheets = owners.setdefault(login, {})
        for entry in self.listdir(user_dir):
            full = os.path.join(user_dir, entry)
            if not _is_dir(full):
                continue  # history.pickle and the like
            if not NUMBER_RE.match(entry):
                self.report.skip('%s/%s' % (login, entry), 'not a worksheet folder (its '
                                 'name is not a number)')
                continue
            number = int(entry)
            if number in worksheets:
                self.report.skip('%s/%s' % (login, entry), 'found twice (home/%s and '
                                 'home/__store__); the one in __store__ is migrated' % login)
                continue
            worksheets[number] = full

    def import_worksheet(self, user, login, number, folder, legacy_numbers):
        report = self.report
        marker = 'sagenb:%s/%d' % (login, number)
        item = '%s/%d' % (login, number)
        if marker in self.sources_of(user):
            existing = self.sources_of(user)[marker]
            report.skip(item, 'already imported (%s/%s)' % (user.login, existing.__name__))
            return
        try:
            legacy = self.read_worksheet(login, number, folder)
        except FormatError as exc:
            report.skip(item, str(exc))
            return
        except (OSError, ValueError, UnicodeError) as exc:
            report.skip(item, 'cannot be read (%s: %s)' % (type(exc).__name__, exc))
            return
        savepoint = _savepoint(self.root)
        counts = (report.files, report.revisions, len(report.notes))
        try:
            worksheet = self.write_worksheet(user, legacy, legacy_numbers)
        except Exception as exc:  # one worksheet never stops the migration
            if savepoint is None:
                raise
            savepoint.rollback()
            report.files, report.revisions = counts[:2]
            del report.notes[counts[2]:]
            report.skip(item, 'could not be stored (%s: %s)' % (type(exc).__name__, exc))
            return
        for cell_id in legacy.orphan_cells:
            report.skip('%s cells/%s' % (item, cell_id),
                        'files of a cell that is no longer in the worksheet')
        report.skipped.extend(legacy.skipped)
        for note in legacy.data.notes:
            report.note(item, note)
        worksheet.source = marker
        self.sources_of(user)[marker] = worksheet
        report.worksheets += 1
        report.cells += len(legacy.data.cells)
        report.files += legacy.cell_files
        report.imported.append((item, '%s/%s' % (user.login, worksheet.__name__)))
        if legacy.has_code:
            self.code_folders += 1

    def sources_of(self, user):
        if user.id not in self.sources:
            self.sources[user.id] = {w.source: w for w in user.worksheets() if w.source}
        return self.sources[user.id]

    def read_worksheet(self, login, number, folder):
        legacy = _Worksheet(login, number, folder)
        budget = archive.Budget(WORKSHEET_LIMITS)
        conf_path = os.path.join(folder, 'worksheet_conf.pickle')
        conf = {}
        if os.path.lexists(conf_path):
            conf = _read_pickle(conf_path, 'worksheet_conf.pickle')
            if not isinstance(conf, dict):
                raise FormatError('worksheet_conf.pickle does not hold a dictionary')
        legacy.conf = conf
        html = os.path.join(folder, 'worksheet.html')
        txt = os.path.join(folder, 'worksheet.txt')
        title, txt_system = '', None
        if _is_file(html):
            body = sws.decode_text(_read_budgeted(html, budget, 'worksheet.html'))
        elif _is_file(txt):
            title, txt_system, body = sws.split_txt(
                sws.decode_text(_read_budgeted(txt, budget, 'worksheet.txt')))
        else:
            raise FormatError('it has neither worksheet.html nor worksheet.txt')
        members = {}
        cells_dir = os.path.join(folder, 'cells')
        if _is_dir(cells_dir):
            for relative, full in _files_below(cells_dir):
                members['cells/' + relative] = _read_budgeted(full, budget,
                                                              'cells/' + relative)
        cell_files = sws.files_under(members, '')
        name = (_text(conf.get('name')) or title or '').strip() or 'Untitled'
        system = _text(conf.get('system')) or txt_system
        legacy.data = sws.worksheet_from_body(name, body, cell_files, {}, system=system,
                                              typeset=bool(conf.get('pretty_print')))
        try:
            bad = check_worksheet(legacy.data, self.max_file_bytes, skip_bad_files=True)
        except TooLarge as exc:
            raise TooLarge('%s; import it with a larger --max-data-mb' % exc) from None
        legacy.skipped.extend(('%s %s' % (legacy.key, what), why) for what, why in bad)
        legacy.cell_files = sum(len(c.files) for c in legacy.data.cells)
        in_body = {c.legacy_id for c in legacy.data.cells if c.type == 'compute'}
        # Cell ids are whatever the folder names say (numbers, as str or int).
        for cell_id in sorted(cell_files, key=str):
            if cell_id not in in_body:
                legacy.orphan_cells.append(cell_id)
        self.read_data_files(legacy)
        self.read_snapshots(legacy, budget)
        legacy.has_code = _is_dir(os.path.join(folder, 'code'))
        return legacy

    def read_data_files(self, legacy):
        data_dir = os.path.join(legacy.folder, 'data')
        if not _is_dir(data_dir):
            return
        taken = set()
        for relative, full in _files_below(data_dir):
            name = safe_file_name(relative)
            problem = names.file_name_problem(name)
            if name in taken or problem:
                legacy.skipped.append(('%s data/%s' % (legacy.key, _label(relative)),
                                       'another data file has the same name here (data '
                                       'files are kept in one folder)' if name in taken
                                       else 'not a usable file name: ' + problem))
                continue
            size = os.lstat(full).st_size
            if self.max_file_bytes and size > self.max_file_bytes:
                raise TooLarge('data/%s is %.1f MB, larger than the limit of %d MB for one '
                               'file; import it with a larger --max-data-mb'
                               % (_label(relative), size / 2**20,
                                  self.max_file_bytes // 2**20))
            taken.add(name)
            legacy.data_files.append((name, full))

    def read_snapshots(self, legacy, budget):
        snap_dir = os.path.join(legacy.folder, 'snapshots')
        if not _is_dir(snap_dir):
            return
        saved_by = legacy.conf.get('saved_by_info')
        saved_by = saved_by if isinstance(saved_by, dict) else {}
        for entry in sorted(os.listdir(snap_dir)):
            match = SNAPSHOT_RE.match(entry)
            full = os.path.join(snap_dir, entry)
            if not match or not _is_file(full):
                continue
            try:
                raw = _read_budgeted(full, budget, 'snapshots/' + entry)
                text = sws.decode_text(archive.bunzip(raw, budget, 'snapshots/' + entry))
            except FormatError as exc:
                legacy.skipped.append(('%s snapshots/%s' % (legacy.key, entry), str(exc)))
                continue
            stem = match.group(1)
            author = _text(saved_by.get(stem)) or _text(saved_by.get(stem.split('.')[0]))
            legacy.revisions.append((float(stem), text, author))
        legacy.revisions.sort(key=lambda r: r[0])

    def write_worksheet(self, user, legacy, legacy_numbers):
        report = self.report
        conf = legacy.conf
        number = legacy.number
        if str(number) in user:
            wanted = number
            number = max(user.next_worksheet_number, max(legacy_numbers) + 1)
            while str(number) in user:
                number += 1
            report.note(legacy.key, 'number %d is taken by another worksheet of %s: '
                        'imported as %s/%d' % (wanted, user.login, user.login, number))
        conf_owner, conf_number = _text(conf.get('owner')), _number(conf.get('id_number'))
        if (conf_owner and conf_owner != legacy.owner) or \
                (conf_number is not None and conf_number != legacy.number):
            report.note(legacy.key, 'its settings say %s/%s; the folder wins' % (
                conf_owner or legacy.owner,
                conf_number if conf_number is not None else legacy.number))
        worksheet = create_worksheet(user, legacy.data, number=number)
        for name, full in legacy.data_files:
            worksheet.data_files().add(name, _data_file(full))
            report.files += 1
        for when, text, author in legacy.revisions:
            author_user = self.accounts.get(author) if author else None
            before = len(worksheet.revisions or ())
            worksheet.add_revision(when, text, author_user.id if author_user else None)
            report.revisions += len(worksheet.revisions) - before
        self.share(worksheet, user, legacy)
        last_change = conf.get('last_change')
        if isinstance(last_change, (list, tuple)) and len(last_change) == 2 and \
                _time(last_change[1]):
            worksheet.modified = _time(last_change[1])
        if conf.get('auto_publish'):
            self.auto_published.add(worksheet)
        return worksheet

    def share(self, worksheet, owner, legacy):
        """Collaborators, viewers and each one's archive/trash state from the conf."""
        conf = legacy.conf
        with_access = {owner.login: owner}
        # Set through ``share`` below, so the index of shared worksheets follows.
        shared = {'collaborators': [], 'viewers': []}
        for field, target in shared.items():
            names = conf.get(field)
            if not isinstance(names, (list, tuple, set)):
                continue
            for name in sorted(n for n in names if isinstance(n, str)):
                if name == owner.login or name in with_access:
                    continue
                user = self.accounts.get(name) or self.root.user_by_login(name)
                if user is None or name in PSEUDO_USERS:
                    self.report.note(legacy.key, '%s %s is not a user here; left out'
                                     % (field[:-1], _label(name)))
                    continue
                target.append(user_principal(user.id))
                with_access[name] = user
        worksheet.share(shared['collaborators'], shared['viewers'])
        tags = conf.get('tags')
        if not isinstance(tags, dict):
            return
        for name, user in with_access.items():
            value = tags.get(name)
            if isinstance(value, (list, tuple)):
                value = value[0] if value else None
            state = TAG_STATES.get(value) if isinstance(value, int) else None
            if state is not None:
                worksheet.set_state(user.id, state)

    def mark_published(self, pub_worksheets):
        """``pub/<n>`` is a published copy: its original is published (a publication of
        the imported worksheet, at the copy's time; the newest copy wins).  A worksheet
        that sagenb published at each change is published with ``auto``."""
        for number in sorted(pub_worksheets):
            item = 'pub/%d' % number
            folder = pub_worksheets[number]
            try:
                conf = _read_pickle(os.path.join(folder, 'worksheet_conf.pickle'),
                                    'worksheet_conf.pickle')
                if not isinstance(conf, dict):
                    raise FormatError('worksheet_conf.pickle does not hold a dictionary')
            except FormatError as exc:
                self.report.skip(item, 'published copy: %s' % exc)
                continue
            original = conf.get('worksheet_that_was_published')
            if not (isinstance(original, (list, tuple)) and len(original) == 2 and
                    isinstance(original[0], str) and _number(original[1]) is not None):
                self.report.skip(item, 'published copy that does not say of which '
                                 'worksheet')
                continue
            key = '%s/%d' % (original[0], _number(original[1]))
            user = self.accounts.get(original[0])
            worksheet = self.sources_of(user).get('sagenb:' + key) if user else None
            if worksheet is None:
                self.report.skip(item, 'published copy of %s, which was not imported'
                                 % key)
                continue
            last_change = conf.get('last_change')
            when = None
            if isinstance(last_change, (list, tuple)) and len(last_change) == 2:
                when = _time(last_change[1])
            if when is None:
                when = os.lstat(folder).st_mtime
            publications = self.root.publications
            current = publications.get(worksheet.publication_id) \
                if worksheet.publication_id is not None else None
            if current is None or current.time < when:
                auto = worksheet in self.auto_published
                publications.publish(worksheet, auto=auto, when=when)
                self.report.note(key, 'published%s (its published copy is %s)' % (
                    ' at each change' if auto else '', item))


def _data_file(path):
    """A data file whose blob is filled from ``path`` without reading it all in memory."""
    blob = Blob()
    size = 0
    with _open(path) as source, blob.open('w') as target:
        while True:
            chunk = source.read(2**20)
            if not chunk:
                break
            target.write(chunk)
            size += len(chunk)
    data_file = DataFile(blob=blob)
    data_file.size = size
    return data_file


# --- settings -------------------------------------------------------------------------

ULIMIT_FLAGS = {
    # flag: (setting, unit in bytes or 1)
    'v': ('sagenb.workers.limit.address_space', 1024),
    't': ('sagenb.workers.limit.cpu_seconds', 1),
    'u': ('sagenb.workers.limit.processes', 1),
    'n': ('sagenb.workers.limit.open_files', 1),
    'f': ('sagenb.workers.limit.file_size', 1024),
}
NO_COUNTERPART_WHY = {
    'openid': 'OpenID is not supported',
    'auth_ldap': 'LDAP sign-in is not supported',
    'server_pool': 'worksheet processes run on this server (ZEO spreads servers)',
    'system': 'new worksheets use Sage; a worksheet keeps its own system',
}


def _map_setting(key, value, recognised):
    """Report lines for one legacy setting; fills ``recognised`` with its counterparts.

    Values are shown only for settings that have a counterpart: the others include
    secrets (``ldap_bindpw``, ``recaptcha_private_key``).
    """
    def would_set(name, setting_value):
        recognised[name] = setting_value
        return 'setting %s = %r: would set %s = %s' % (key, value, name, setting_value)

    if key == 'accounts':
        return [would_set('sagenb.allow_signup', 'true' if value else 'false')]
    if key == 'pretty_print':
        return [would_set('sagenb.typeset_default', 'true' if value else 'false')]
    if key == 'idle_timeout':
        seconds = value if isinstance(value, (int, float)) and \
            not isinstance(value, bool) else None
        if seconds is None or seconds <= 0:
            return ['setting idle_timeout = %r: no counterpart (here worksheet processes '
                    'always stop after sagenb.workers.idle_timeout seconds)' % (value,)]
        return [would_set('sagenb.workers.idle_timeout', str(int(seconds)))]
    if key == 'ulimit':
        return _map_ulimit(value, recognised)
    if key == 'model_version':
        return []
    why = NO_COUNTERPART_WHY.get(key)
    if why is None and key.startswith('ldap_'):
        why = NO_COUNTERPART_WHY['auth_ldap']
    return ['setting %s: no counterpart%s' % (key, ' (%s)' % why if why else '')]


def _map_ulimit(value, recognised):
    if not isinstance(value, str) or not value.strip():
        return [] if value in ('', None) else ['setting ulimit: not understood']
    lines = []
    words = value.split()
    i = 0
    while i < len(words):
        word = words[i]
        match = re.fullmatch(r'-([A-Za-z])(\S*)', word)
        if not match:
            lines.append('setting ulimit %s: not understood' % word)
            i += 1
            continue
        flag, amount = match.group(1), match.group(2)
        if not amount and i + 1 < len(words) and not words[i + 1].startswith('-'):
            amount = words[i + 1]
            i += 1
        i += 1
        if flag not in ULIMIT_FLAGS:
            lines.append('setting ulimit -%s %s: no counterpart' % (flag, amount))
            continue
        name, unit = ULIMIT_FLAGS[flag]
        if amount == 'unlimited':
            setting_value = '0'
        elif amount.isdigit():
            setting_value = str(int(amount) * unit)
        else:
            lines.append('setting ulimit -%s %s: not understood' % (flag, amount))
            continue
        recognised[name] = setting_value
        lines.append('setting ulimit -%s %s: would set %s = %s'
                     % (flag, amount, name, setting_value))
    return lines
