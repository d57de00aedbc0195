"""The worksheets of the old notebook: each read from its folder (body, cell files,
data files, snapshots, settings) into a :class:`LegacyWorksheet`, then written here with
its revisions, sharing and states; published copies (``pub/<n>``) become publications of
the worksheets they copied."""
import os
import re

from ZODB.blob import Blob

from .. import names
from ..formats import FormatError, TooLarge, archive, sws
from ..importing import check_worksheet, create_worksheet, safe_file_name
from ..resources import DataFile
from ..security import user_principal
from .accounts import PSEUDO_USERS
from .files import (
    WORKSHEET_LIMITS, as_number, as_text, as_time, files_below, is_dir, is_file, label,
    open_file, read_budgeted, read_pickle)

TAG_STATES = {0: 'archive', 1: 'active', 2: 'trash'}
SNAPSHOT_RE = re.compile(r'^(\d+(?:\.\d+)?)\.bz2$')


def savepoint_of(root):
    """A savepoint of the transaction ``root`` is stored in, or None (not stored)."""
    jar = getattr(root, '_p_jar', None)
    if jar is None:
        return None
    return jar.transaction_manager.get().savepoint()


class LegacyWorksheet:
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


class Worksheets:
    """Imports the worksheets of the old notebook into ``root``, for the users that
    ``users`` (login -> User) gives; remembers what it imported."""

    def __init__(self, root, report, users, max_file_bytes=0):
        self.root = root
        self.report = report
        self.users = users
        self.max_file_bytes = max_file_bytes
        self.sources = {}          # user id -> {source marker: worksheet}
        self.code_folders = 0
        self.auto_published = set()  # worksheets sagenb published at each change

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
        savepoint = savepoint_of(self.root)
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
        legacy = LegacyWorksheet(login, number, folder)
        budget = archive.Budget(WORKSHEET_LIMITS)
        conf_path = os.path.join(folder, 'worksheet_conf.pickle')
        conf = {}
        if os.path.lexists(conf_path):
            conf = read_pickle(conf_path, 'worksheet_conf.pickle')
            if not isinstance(conf, dict):
                raise FormatError('worksheet_conf.pickle does not hold a dictionary')
        legacy.conf = conf
        html = os.path.join(folder, 'worksheet.html')
        txt = os.path.join(folder, 'worksheet.txt')
        title, txt_system = '', None
        if is_file(html):
            body = sws.decode_text(read_budgeted(html, budget, 'worksheet.html'))
        elif is_file(txt):
            title, txt_system, body = sws.split_txt(
                sws.decode_text(read_budgeted(txt, budget, 'worksheet.txt')))
        else:
            raise FormatError('it has neither worksheet.html nor worksheet.txt')
        members = {}
        cells_dir = os.path.join(folder, 'cells')
        if is_dir(cells_dir):
            for relative, full in files_below(cells_dir):
                members['cells/' + relative] = read_budgeted(full, budget,
                                                              'cells/' + relative)
        cell_files = sws.files_under(members, '')
        name = (as_text(conf.get('name')) or title or '').strip() or 'Untitled'
        system = as_text(conf.get('system')) or txt_system
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
        legacy.has_code = is_dir(os.path.join(folder, 'code'))
        return legacy

    def read_data_files(self, legacy):
        data_dir = os.path.join(legacy.folder, 'data')
        if not is_dir(data_dir):
            return
        taken = set()
        for relative, full in files_below(data_dir):
            name = safe_file_name(relative)
            problem = names.file_name_problem(name)
            if name in taken or problem:
                legacy.skipped.append(('%s data/%s' % (legacy.key, label(relative)),
                                       'another data file has the same name here (data '
                                       'files are kept in one folder)' if name in taken
                                       else 'not a usable file name: ' + problem))
                continue
            size = os.lstat(full).st_size
            if self.max_file_bytes and size > self.max_file_bytes:
                raise TooLarge('data/%s is %.1f MB, larger than the limit of %d MB for one '
                               'file; import it with a larger --max-data-mb'
                               % (label(relative), size / 2**20,
                                  self.max_file_bytes // 2**20))
            taken.add(name)
            legacy.data_files.append((name, full))

    def read_snapshots(self, legacy, budget):
        snap_dir = os.path.join(legacy.folder, 'snapshots')
        if not is_dir(snap_dir):
            return
        saved_by = legacy.conf.get('saved_by_info')
        saved_by = saved_by if isinstance(saved_by, dict) else {}
        for entry in sorted(os.listdir(snap_dir)):
            match = SNAPSHOT_RE.match(entry)
            full = os.path.join(snap_dir, entry)
            if not match or not is_file(full):
                continue
            try:
                raw = read_budgeted(full, budget, 'snapshots/' + entry)
                text = sws.decode_text(archive.bunzip(raw, budget, 'snapshots/' + entry))
            except FormatError as exc:
                legacy.skipped.append(('%s snapshots/%s' % (legacy.key, entry), str(exc)))
                continue
            stem = match.group(1)
            author = as_text(saved_by.get(stem)) or as_text(saved_by.get(stem.split('.')[0]))
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
        conf_owner, conf_number = as_text(conf.get('owner')), as_number(conf.get('id_number'))
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
            author_user = self.users.get(author) if author else None
            before = len(worksheet.revisions or ())
            worksheet.add_revision(when, text, author_user.id if author_user else None)
            report.revisions += len(worksheet.revisions) - before
        self.share(worksheet, user, legacy)
        last_change = conf.get('last_change')
        if isinstance(last_change, (list, tuple)) and len(last_change) == 2 and \
                as_time(last_change[1]):
            worksheet.modified = as_time(last_change[1])
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
                user = self.users.get(name) or self.root.user_by_login(name)
                if user is None or name in PSEUDO_USERS:
                    self.report.note(legacy.key, '%s %s is not a user here; left out'
                                     % (field[:-1], label(name)))
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
                conf = read_pickle(os.path.join(folder, 'worksheet_conf.pickle'),
                                    'worksheet_conf.pickle')
                if not isinstance(conf, dict):
                    raise FormatError('worksheet_conf.pickle does not hold a dictionary')
            except FormatError as exc:
                self.report.skip(item, 'published copy: %s' % exc)
                continue
            original = conf.get('worksheet_that_was_published')
            if not (isinstance(original, (list, tuple)) and len(original) == 2 and
                    isinstance(original[0], str) and as_number(original[1]) is not None):
                self.report.skip(item, 'published copy that does not say of which '
                                 'worksheet')
                continue
            key = '%s/%d' % (original[0], as_number(original[1]))
            user = self.users.get(original[0])
            worksheet = self.sources_of(user).get('sagenb:' + key) if user else None
            if worksheet is None:
                self.report.skip(item, 'published copy of %s, which was not imported'
                                 % key)
                continue
            last_change = conf.get('last_change')
            when = None
            if isinstance(last_change, (list, tuple)) and len(last_change) == 2:
                when = as_time(last_change[1])
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
    with open_file(path) as source, blob.open('w') as target:
        while True:
            chunk = source.read(2**20)
            if not chunk:
                break
            target.write(chunk)
            size += len(chunk)
    data_file = DataFile(blob=blob)
    data_file.size = size
    return data_file
