"""Uploaded files into worksheets, and worksheets out as files.

:func:`read_upload` reads any accepted file into ``WorksheetData`` and makes it follow
the rules every name follows here (:func:`check_worksheet`; nothing touches the
database, so a refused file changes nothing); :func:`create_worksheet` builds the
persistent worksheet; :func:`worksheet_data` reads one back for export.
:class:`ImportGate` bounds how many uploads unpack at once.
"""
import io
import json
import posixpath
import threading
import zipfile
from contextlib import contextmanager

from . import names
from .formats import (
    CellData, FormatError, Limits, TooLarge, WorksheetData, archive, ipynb, sws)
from .resources import read_blob

ACCEPTED = '.sws, .txt, .ipynb or a .zip of those'
WORKSHEET_EXTENSIONS = ('.sws', '.txt', '.ipynb')


def limits_from_settings(settings):
    mb = 2**20
    return Limits(
        max_bytes=settings['sagenb.import.max_mb'] * mb,
        max_unpacked_bytes=settings['sagenb.import.max_unpacked_mb'] * mb,
        max_members=settings['sagenb.import.max_members'],
        max_worksheets=settings['sagenb.import.max_worksheets'],
        max_file_bytes=settings['sagenb.data.max_mb'] * mb)


def _stem(filename):
    base = posixpath.basename((filename or '').replace('\\', '/'))
    stem, ext = posixpath.splitext(base)
    return (stem or 'Untitled'), ext.lower()


def _kind(filename, data):
    _, ext = _stem(filename)
    if ext in WORKSHEET_EXTENSIONS + ('.zip',):
        return ext
    if data.startswith(b'BZh') or data[257:262] == b'ustar':
        return '.sws'
    if data.startswith(b'PK\x03\x04'):
        return '.zip'
    if data.lstrip()[:1] == b'{':
        return '.ipynb'
    return None


def read_one(filename, data, limits, budget=None):
    """One worksheet from a ``.sws``, ``.txt`` or ``.ipynb`` file."""
    stem, _ = _stem(filename)
    kind = _kind(filename, data)
    if not data.strip():
        raise FormatError('the file is empty')
    if kind == '.sws':
        return sws.read_sws(data, limits, fallback_name=stem, budget=budget)
    if kind == '.txt':
        return sws.read_txt(data, limits, fallback_name=stem)
    if kind == '.ipynb':
        return ipynb.read_ipynb(data, limits, fallback_name=stem)
    raise FormatError('unsupported kind of file; accepted: %s' % ACCEPTED)


def read_upload(filename, data, limits):
    """``(worksheets, skipped)``: every worksheet in the upload, or FormatError.

    ``skipped`` lists members of a ``.zip`` that are not worksheets (with the reason).
    One bad worksheet refuses the whole upload, naming the member.
    """
    if not data:
        raise FormatError('the file is empty')
    if len(data) > limits.max_bytes:
        raise FormatError('the file is larger than %d MB' % (limits.max_bytes // 2**20))
    if _kind(filename, data) != '.zip':
        worksheet = read_one(filename, data, limits)
        check_worksheet(worksheet, limits.max_file_bytes)
        return [worksheet], []
    budget = archive.Budget(limits)
    members = archive.read_zip(data, limits, budget)
    worksheets, skipped = [], []
    for path in sorted(members):
        _, ext = _stem(path)
        if ext not in WORKSHEET_EXTENSIONS:
            skipped.append({'file': path, 'reason': 'not a worksheet (%s)' % ACCEPTED})
            continue
        if len(worksheets) >= limits.max_worksheets:
            raise FormatError('the archive has more than %d worksheets'
                              % limits.max_worksheets)
        try:
            worksheet = read_one(path, members[path], limits, budget)
            check_worksheet(worksheet, limits.max_file_bytes)
        except FormatError as exc:
            raise type(exc)('%s: %s' % (path, exc)) from None
        worksheet.notes[:] = ['%s: %s' % (path, note) for note in worksheet.notes]
        worksheets.append(worksheet)
    if not worksheets:
        raise FormatError('the archive holds no worksheet (%s)' % ACCEPTED)
    return worksheets, skipped


# --- the rules of names and sizes ----------------------------------------------------

def check_worksheet(data, max_file_bytes, skip_bad_files=False):
    """Make ``data`` (read from a file) follow the rules of :mod:`.names`, in place.

    Cleaned, with a note in ``data.notes``: a name with control or bidirectional
    characters (removed) or longer than 200 characters (cut); a system that is no
    system name (``sage``); an output's file name that is no file name (dropped: it
    only names the file in an export); a data file whose flattened name another one
    has (left out).  Refused (:class:`FormatError`, naming the file): a data file,
    cell file or attachment (of a Jupyter markdown cell) whose name breaks the rule,
    or one larger than ``max_file_bytes`` (:class:`TooLarge`).  With ``skip_bad_files`` (the migration) files with bad names
    are left out instead, returned as ``[(file, reason)]``.
    """
    skipped = []
    original = data.name if isinstance(data.name, str) else ''
    data.name, cut = names.cut_worksheet_name(original)
    if cut:
        data.notes.append('the name was longer than %d characters: cut to "%s"'
                          % (names.MAX_WORKSHEET_NAME, data.name))
    if names.clean_worksheet_name(original) != (' '.join(original.split()) or 'Untitled'):
        data.notes.append('control or bidirectional characters were removed from the '
                          'name')
    system = data.system.strip().lower() if isinstance(data.system, str) else ''
    if names.system_problem(system):
        data.notes.append('the system %s is not a system name (%s): the worksheet uses '
                          'sage' % (_shown(data.system), names.SYSTEM_RULE))
        system = 'sage'
    data.system = system

    def too_large(what, size):
        if max_file_bytes and size > max_file_bytes:
            raise TooLarge('%s is %.1f MB, larger than the limit of %d MB for one file '
                           '(sagenb.data.max_mb)' % (what, size / 2**20,
                                                     max_file_bytes // 2**20))

    def bad_name(what, problem):
        if not skip_bad_files:
            raise FormatError('%s: not a usable file name: %s' % (what, problem))
        skipped.append((what, 'not a usable file name: %s' % problem))

    for number, cell in enumerate(data.cells, 1):
        for name in sorted(cell.files):
            what = 'the file %s of cell %d' % (_shown(name), number)
            problem = names.cell_file_name_problem(name)
            if problem:
                bad_name(what, problem)
                del cell.files[name]
                continue
            too_large(what, len(cell.files[name]))
        for name, bundle in cell.attachments.items():
            what = 'the attachment %s of cell %d' % (_shown(name), number)
            problem = names.file_name_problem(name)
            if problem:
                raise FormatError('%s: not a usable name: %s' % (what, problem))
            too_large(what, sum(len(content) for content in bundle.values()))
        for output in cell.outputs:
            meta = output.get('metadata') if isinstance(output, dict) else None
            sagenb = meta.get('sagenb') if isinstance(meta, dict) else None
            if isinstance(sagenb, dict) and 'file' in sagenb and \
                    names.cell_file_name_problem(sagenb['file']):
                data.notes.append('cell %d: the output file name %s was dropped (%s)'
                                  % (number, _shown(sagenb['file']), names.FILE_NAME_RULE))
                del sagenb['file']
    flat = {}
    for path in sorted(data.data_files):
        name = safe_file_name(path)
        what = 'the data file %s' % _shown(path)
        problem = names.file_name_problem(name)
        if problem:
            bad_name(what, problem)
            continue
        too_large(what, len(data.data_files[path]))
        if name in flat:
            data.notes.append('%s was left out: data files are kept in one folder and '
                              '%s has the same name' % (what, _shown(flat[name][0])))
            continue
        flat[name] = (path, data.data_files[path])
    data.data_files = {name: content for name, (_, content) in flat.items()}
    return skipped


def _shown(value):
    """A name from a file as it may appear in a message (control characters escaped)."""
    text = names.escape_hidden(value if isinstance(value, str) else repr(value))
    return '"%s"' % (text[:80] + '...' if len(text) > 80 else text)


def cell_bytes(data):
    """What a worksheet read from a file stores in its cells and revisions (the part of
    its size that data files do not hold)."""
    total = 0
    for cell in data.cells:
        total += len(cell.input.encode('utf-8', 'replace'))
        if cell.outputs:
            total += len(json.dumps(cell.outputs, default=str))
        total += sum(len(content) for content in cell.files.values())
        total += sum(len(content) for bundle in cell.attachments.values()
                     for content in bundle.values())
        if cell.metadata:
            total += len(json.dumps(cell.metadata))
    if data.metadata:
        total += len(json.dumps(data.metadata))
    total += sum(len(body.encode('utf-8', 'replace')) for _, body in data.revisions)
    return total


def import_bytes(data):
    """All a worksheet read from a file will count against its owner's quota."""
    return cell_bytes(data) + sum(len(content) for content in data.data_files.values())


class ImportBusy(Exception):
    """No room for another import now; ``status`` is 429 (this user) or 503 (server)."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class ImportGate:
    """How many imports unpack at once, on this app server and per user: each holds up
    to ``sagenb.import.max_unpacked_mb`` in memory, so a handful at once could take
    gigabytes.  A request that finds no room is refused at once (never queued)."""

    def __init__(self, total, per_user):
        self.total = total
        self.per_user = per_user
        self.lock = threading.Lock()
        self.running = {}  # user id -> imports in progress

    @contextmanager
    def slot(self, user_id):
        with self.lock:
            mine = self.running.get(user_id, 0)
            if self.per_user and mine >= self.per_user:
                raise ImportBusy(429, 'you have %d import%s in progress; try again when '
                                 '%s finished' % (mine, '' if mine == 1 else 's',
                                                  'it has' if mine == 1 else 'they have'))
            if self.total and sum(self.running.values()) >= self.total:
                raise ImportBusy(503, 'the server is busy with other imports; try again '
                                 'in a moment')
            self.running[user_id] = mine + 1
        try:
            yield
        finally:
            with self.lock:
                left = self.running[user_id] - 1
                if left:
                    self.running[user_id] = left
                else:
                    del self.running[user_id]


_GATE_LOCK = threading.Lock()


def gate_of(registry):
    """The application's :class:`ImportGate` (made at its first import)."""
    with _GATE_LOCK:
        gate = getattr(registry, 'sagenb_import_gate', None)
        if gate is None:
            settings = registry.settings
            gate = ImportGate(settings['sagenb.import.max_concurrent'],
                              settings['sagenb.import.max_concurrent_per_user'])
            registry.sagenb_import_gate = gate
        return gate


def cell_status(outputs):
    if any(o.get('output_type') == 'error' for o in outputs):
        return 'error'
    return 'done' if outputs else 'new'


def create_worksheet(user, data, name=None, number=None):
    """A new worksheet of ``user`` holding ``data`` (a ``WorksheetData``)."""
    worksheet = user.create_worksheet(name or data.name, typeset=data.typeset,
                                      system=data.system, number=number)
    fill_worksheet(worksheet, data)
    worksheet.charge_import(cell_bytes(data))
    worksheet.trusted = False  # a file's content runs no script until its owner trusts it
    return worksheet


def fill_worksheet(worksheet, data):
    worksheet.delete_all_cells()
    worksheet.notebook_metadata = dict(data.metadata) or None
    for item in data.cells:
        cell = worksheet.add_cell(item.type, item.input)
        if item.metadata:
            cell.metadata = dict(item.metadata)
        if item.attachments:
            cell.set_attachments(item.attachments)
        if item.type == 'text':
            cell.format = item.format
            continue
        if item.outputs or item.execution_count is not None:
            cell.output.update(cell_status(item.outputs), list(item.outputs),
                               execution_count=item.execution_count)
        for file_name, content in item.files.items():
            cell.output.add_file(file_name, content)
    if not any(c.type == 'compute' for c in worksheet.ordered_cells()):
        worksheet.add_cell('compute', '')
    if data.data_files:
        folder = worksheet.data_files()
        for file_name, content in sorted(data.data_files.items()):
            folder.add_file(file_name, content)  # flattened by check_worksheet
    for when, body in data.revisions:
        worksheet.add_revision(when, body)
    return worksheet


def safe_file_name(name):
    """Data files are flat: a path inside an archive keeps its last part."""
    return posixpath.basename(name.replace('\\', '/')) or 'file'


def worksheet_data(worksheet):
    """A ``WorksheetData`` of a stored worksheet (for export)."""
    cells = []
    for cell in worksheet.ordered_cells():
        metadata = dict(cell.metadata or {})
        if cell.type == 'text':
            cells.append(CellData(type='text', input=cell.input, format=cell.format,
                                  attachments=cell.attachments_data(), metadata=metadata))
            continue
        out = cell.output
        files = {}
        if out.files is not None:
            files = {name: read_blob(blob) for name, blob in out.files.items()}
        cells.append(CellData(type='compute', input=cell.input, outputs=list(out.outputs),
                              files=files, execution_count=out.execution_count,
                              metadata=metadata))
    data_files = {}
    if worksheet.files is not None:
        data_files = {name: f.read() for name, f in worksheet.files.items()}
    return WorksheetData(name=worksheet.name, system=worksheet.system,
                         typeset=worksheet.typeset, cells=cells, data_files=data_files,
                         metadata=dict(worksheet.notebook_metadata or {}))


def zip_of(entries):
    """A zip archive of ``[(file name, bytes)]`` (names made unique)."""
    buffer = io.BytesIO()
    seen = set()
    with zipfile.ZipFile(buffer, 'w', zipfile.ZIP_DEFLATED) as archive_file:
        for name, content in entries:
            stem, ext = posixpath.splitext(name)
            candidate, k = name, 1
            while candidate in seen:
                k += 1
                candidate = '%s (%d)%s' % (stem, k, ext)
            seen.add(candidate)
            archive_file.writestr(candidate, content)
    return buffer.getvalue()


__all__ = ['FormatError', 'TooLarge', 'WorksheetData', 'read_upload', 'create_worksheet',
           'worksheet_data', 'limits_from_settings', 'zip_of', 'check_worksheet',
           'import_bytes', 'ImportBusy', 'gate_of']
