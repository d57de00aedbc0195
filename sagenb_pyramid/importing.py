"""Uploaded files into worksheets, and worksheets out as files.

:func:`read_upload` reads any accepted file into ``WorksheetData`` (nothing touches the
database, so a refused file changes nothing); :func:`create_worksheet` builds the
persistent worksheet; :func:`worksheet_data` reads one back for export.
"""
import io
import posixpath
import zipfile

from .formats import CellData, FormatError, Limits, WorksheetData, archive, ipynb, sws
from .resources import read_blob

ACCEPTED = '.sws, .txt, .ipynb or a .zip of those'
WORKSHEET_EXTENSIONS = ('.sws', '.txt', '.ipynb')


def limits_from_settings(settings):
    mb = 2**20
    return Limits(
        max_bytes=int(settings['sagenb.import.max_mb']) * mb,
        max_unpacked_bytes=int(settings['sagenb.import.max_unpacked_mb']) * mb,
        max_members=int(settings['sagenb.import.max_members']),
        max_worksheets=int(settings['sagenb.import.max_worksheets']))


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
        return [read_one(filename, data, limits)], []
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
            worksheets.append(read_one(path, members[path], limits, budget))
        except FormatError as exc:
            raise FormatError('%s: %s' % (path, exc)) from None
    if not worksheets:
        raise FormatError('the archive holds no worksheet (%s)' % ACCEPTED)
    return worksheets, skipped


def cell_status(outputs):
    if any(o.get('output_type') == 'error' for o in outputs):
        return 'error'
    return 'done' if outputs else 'new'


def create_worksheet(user, data, name=None, number=None):
    """A new worksheet of ``user`` holding ``data`` (a ``WorksheetData``)."""
    worksheet = user.create_worksheet(name or data.name, typeset=data.typeset,
                                      system=data.system, number=number)
    fill_worksheet(worksheet, data)
    worksheet.trusted = False  # a file's content runs no script until its owner trusts it
    return worksheet


def fill_worksheet(worksheet, data):
    worksheet.delete_all_cells()
    for item in data.cells:
        cell = worksheet.add_cell(item.type, item.input)
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
            folder.add_file(safe_file_name(file_name), content)
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
        if cell.type == 'text':
            cells.append(CellData(type='text', input=cell.input, format=cell.format))
            continue
        out = cell.output
        files = {}
        if out.files is not None:
            files = {name: read_blob(blob) for name, blob in out.files.items()}
        cells.append(CellData(type='compute', input=cell.input, outputs=list(out.outputs),
                              files=files, execution_count=out.execution_count))
    data_files = {}
    if worksheet.files is not None:
        data_files = {name: f.read() for name, f in worksheet.files.items()}
    return WorksheetData(name=worksheet.name, system=worksheet.system,
                         typeset=worksheet.typeset, cells=cells, data_files=data_files)


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


__all__ = ['FormatError', 'WorksheetData', 'read_upload', 'create_worksheet',
           'worksheet_data', 'limits_from_settings', 'zip_of']
