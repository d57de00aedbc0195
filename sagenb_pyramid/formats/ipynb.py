"""Jupyter notebooks (``.ipynb``) in and out of :class:`WorksheetData`.

Reading accepts nbformat 4 (any minor version) and nbformat 3, which the ``nbformat``
library upgrades to 4.  Formats 1 and 2 (IPython before 1.0, 2013) are refused with a
message telling the uploader to open and save the file in Jupyter first.

Reading is lenient where Jupyter itself is: a notebook that breaks the schema in a way
that does not matter here (odd metadata, an output missing a key, an output of an
unknown type) is read, and the outputs are normalised to valid nbformat 4 outputs.  A
file whose structure is unusable (not JSON, no list of cells, a cell that is not an
object, a cell of an unknown type, a source that is not text) is refused with
:class:`FormatError`.

What people put in a notebook comes back out: a markdown cell's attachments (images
pasted into it, shown as ``attachment:<name>``) and the metadata of the notebook and of
its cells (slides, tags, ``editable``/``deletable``, ``collapsed``, any other key), except
the notebook's own keys (``OWN_METADATA``), which the worksheet holds.  An attachment
that is not base64, or whose mime type is not one or does not match its bytes, refuses
the notebook; a metadata value that breaks nbformat's schema is dropped with a note.

Writing produces nbformat 4.5 (with cell ids) that passes ``nbformat.validate``.
"""
import base64
import binascii
import functools
import json
import os
import re

import jsonschema
import nbformat
import nbformat.v4

from . import CellData, FormatError, WorksheetData

# Notebook metadata the worksheet holds itself (its name, system, typeset flag): written
# from the worksheet on export, not carried through.  The kernelspec and language_info
# name the kernel the export opens with (today's SageMath or Python), not the one a
# notebook was last run with.
OWN_METADATA = ('title', 'sagenb', 'kernelspec', 'language_info')
# A media type (RFC 6838's restricted names), as an attachment's key must be.
MIME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}")
# What the bytes of an image attachment start with, by its mime type: an attachment
# whose bytes are not what its type says is refused (the page shows it as that type).
MAGIC = {
    'image/png': (b'\x89PNG\r\n\x1a\n',),
    'image/jpeg': (b'\xff\xd8\xff',),
    'image/gif': (b'GIF87a', b'GIF89a'),
    'image/bmp': (b'BM',),
}
KIND_NAMES = {'image/png': 'a PNG image', 'image/jpeg': 'a JPEG image',
              'image/gif': 'a GIF image', 'image/bmp': 'a BMP image',
              'image/webp': 'a WebP image', 'image/svg+xml': 'an SVG image'}

SAGE_KERNELSPEC = {'name': 'sagemath', 'display_name': 'SageMath', 'language': 'sage'}
PYTHON_KERNELSPEC = {'name': 'python3', 'display_name': 'Python 3 (ipykernel)',
                     'language': 'python'}


# --------------------------------------------------------------------------- reading

def read_ipynb(data, limits, fallback_name='Untitled'):
    """Read a Jupyter notebook (bytes) into a :class:`WorksheetData`.

    * ``name`` is ``metadata.title`` when the notebook has one (``metadata.name`` in
      format 3), else ``fallback_name`` (the caller passes the file name without its
      extension).
    * ``system`` is ``metadata.sagenb.system`` when present (written by
      :func:`write_ipynb`); otherwise ``'sage'`` for a kernelspec whose name starts with
      ``sage`` (``sagemath``, ``sage_6_7_beta4``...) or whose language is ``sage``,
      ``'python'`` for Python kernels, else the kernelspec's language lower-cased
      (``'r'``, ``'julia'``); ``'sage'`` when the notebook names no kernel at all.
      The kernelspec itself is kept in ``extra['kernelspec']``.
    * Code cells become ``compute`` cells, with their outputs as plain dicts in the
      nbformat 4 shape (``stream``, ``display_data``, ``execute_result``, ``error``;
      multi-line strings joined into one string; outputs of other types dropped).
    * Markdown cells become ``text`` cells of format ``markdown``.  Raw cells become
      markdown text cells too, their source kept as it is.  Their attachments are
      kept (:func:`read_attachments`: decoded, checked); a code cell's (which nbformat
      does not allow) are left out with a note.
    * Every cell's metadata and the notebook's (less ``OWN_METADATA``) are kept in
      ``metadata``; a key whose value breaks nbformat's schema is left out with a note.
    * ``typeset`` is False unless ``metadata.sagenb.typeset`` (written by
      :func:`write_ipynb`) says otherwise; Jupyter has no such setting.

    Raises :class:`FormatError` with a message for the uploader when the file is too
    large or is not a notebook this can read.
    """
    try:
        return _read(data, limits, fallback_name)
    except RecursionError:
        raise FormatError('The file is not a usable Jupyter notebook: it is nested too '
                          'deeply.') from None


def _read(data, limits, fallback_name):
    nb, attachments = _parse(data, limits)
    metadata = nb.get('metadata')
    if not isinstance(metadata, dict):
        metadata = {}
    sagenb = metadata.get('sagenb')
    if not isinstance(sagenb, dict):
        sagenb = {}

    title = metadata.get('title')
    name = title.strip() if isinstance(title, str) and title.strip() else fallback_name

    extra = {}
    kernelspec = metadata.get('kernelspec')
    if isinstance(kernelspec, dict):
        extra['kernelspec'] = _plain(kernelspec)

    notes = []
    kept = {key: _plain(value) for key, value in metadata.items() if key not in OWN_METADATA}
    kept = _schema_valid(kept, 'notebook', 'the notebook', notes)
    return WorksheetData(
        name=name,
        system=_system(metadata),
        typeset=sagenb.get('typeset') is True,
        cells=_read_cells(nb, attachments, notes),
        extra=extra,
        metadata=kept,
        notes=notes,
    )


def _parse(data, limits):
    """Bytes -> ``(nb, attachments)``: the nbformat 4 ``NotebookNode`` with multi-line
    strings joined, and the cells' attachments taken out of it before nbformat reads it
    (:func:`_take_attachments`); or FormatError."""
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    if not isinstance(data, bytes):
        raise TypeError(f'read_ipynb() needs bytes, not {type(data).__name__}')
    if len(data) > limits.max_bytes:
        raise FormatError(f'The notebook is too large: {_size(len(data))}; the limit is '
                          f'{_size(limits.max_bytes)}.')
    if not data.strip():
        raise FormatError('The file is empty; a Jupyter notebook (.ipynb) is JSON text.')
    try:
        text = data.decode('utf-8-sig')
    except UnicodeDecodeError:
        raise FormatError('The file is not a Jupyter notebook: a notebook is UTF-8 '
                          'encoded JSON text, and this file is not UTF-8 text.') from None
    try:
        raw = json.loads(text)
    except ValueError as e:
        where = ''
        if isinstance(e, json.JSONDecodeError):
            where = f' (line {e.lineno}, column {e.colno}: {e.msg})'
        raise FormatError(f'The file is not a Jupyter notebook: it is not valid '
                          f'JSON{where}.') from None
    except RecursionError:
        raise FormatError('The file is not a Jupyter notebook: its JSON is nested too '
                          'deeply.') from None

    if not isinstance(raw, dict) or 'nbformat' not in raw:
        raise FormatError('The file is JSON but not a Jupyter notebook: it has no '
                          '"nbformat" version number.')
    major = raw['nbformat']
    minor = raw.get('nbformat_minor', 0)
    if not _is_count(major) or not _is_count(minor):
        raise FormatError('The file is not a Jupyter notebook: its "nbformat" version '
                          'is not a number.')
    if major > 4:
        raise FormatError(f'This notebook has format version {major}, newer than this '
                          'server can read (versions 3 and 4). Save it in an older '
                          'format, for example with "jupyter nbconvert --to notebook '
                          '--nbformat 4".')
    if major < 3:
        raise FormatError(f'This notebook has format version {major}, from IPython '
                          'before 2013, which this server cannot read (versions 3 and 4 '
                          'only). Open and save it in Jupyter to upgrade it to version 4.')
    if major == 4 and not isinstance(raw.get('cells'), list):
        raise FormatError('The file is not a usable Jupyter notebook: it has no list of '
                          'cells.')
    if major == 3 and not isinstance(raw.get('worksheets'), list):
        raise FormatError('The file is not a usable Jupyter notebook (format 3): it has '
                          'no list of worksheets.')
    if not isinstance(raw.get('metadata'), dict):
        raw['metadata'] = {}
    attachments = {}
    if major == 4:  # format 3 had no attachments
        attachments = _take_attachments(raw['cells'])
        _prepare_cells(raw['cells'])
    try:
        nb = nbformat.versions[major].to_notebook_json(raw, minor=minor)
        if major != 4:
            old_name = raw['metadata'].get('name')  # format 3 kept a name here
            nb = nbformat.convert(nb, 4)
            if isinstance(old_name, str) and old_name.strip():
                nb.metadata.setdefault('title', old_name)
    except Exception as e:  # noqa: BLE001 - a damaged structure can fail anywhere in nbformat
        raise FormatError('The file is not a usable Jupyter notebook: its structure is '
                          f'damaged ({_short(e)}).') from None
    if not isinstance(nb.get('cells'), list):
        raise FormatError('The file is not a usable Jupyter notebook: it has no list of '
                          'cells.')
    _prepare_cells(nb['cells'])
    return nb, attachments


def _take_attachments(cells):
    """Cell index -> attachments (:func:`read_attachments`), each cell's taken out of it
    (nbformat's own reading of a damaged one would fail with a less useful message).  A
    code cell's (which nbformat does not allow) are None: left out with a note."""
    found = {}
    for index, cell in enumerate(cells):
        if not isinstance(cell, dict) or 'attachments' not in cell:
            continue
        value = cell.pop('attachments')
        if cell.get('cell_type') == 'code':
            if value:
                found[index] = None
        elif cell.get('cell_type') in ('markdown', 'raw'):
            found[index] = read_attachments(value, index + 1)
    return found


def _prepare_cells(cells):
    """Refuse cells this cannot read; repair what is harmless (in place).

    A missing cell metadata becomes ``{}`` and outputs are normalised (see
    :func:`_clean_output`), so nbformat's own processing meets no surprises.
    """
    for number, cell in enumerate(cells, 1):
        if not isinstance(cell, dict):
            raise FormatError(f'Cell {number} of the notebook is damaged: it is not a '
                              'JSON object.')
        cell_type = cell.get('cell_type')
        if cell_type not in ('code', 'markdown', 'raw'):
            raise FormatError(f'Cell {number} of the notebook has an unknown type '
                              f'{_short(repr(cell_type))}; a notebook has code, markdown '
                              'and raw cells.')
        if _text(cell.get('source', '')) is None:
            raise FormatError(f'Cell {number} of the notebook is damaged: its source is '
                              'not text.')
        if cell_type == 'code':
            outputs = cell.get('outputs', [])
            if not isinstance(outputs, list):
                raise FormatError(f'Cell {number} of the notebook is damaged: its outputs '
                                  'are not a list.')
            count = cell.get('execution_count')
            cell['execution_count'] = count if _is_count(count) else None
            cell['outputs'] = _clean_outputs(outputs, cell['execution_count'])
        if not isinstance(cell.get('metadata'), dict):
            cell['metadata'] = {}


def _system(metadata):
    sagenb = metadata.get('sagenb')
    if isinstance(sagenb, dict):
        system = sagenb.get('system')
        if isinstance(system, str) and system.strip():
            return system.strip()
    kernelspec = metadata.get('kernelspec')
    if not isinstance(kernelspec, dict):
        return 'sage'
    name = kernelspec.get('name')
    name = name.strip().lower() if isinstance(name, str) else ''
    language = kernelspec.get('language')
    language = language.strip().lower() if isinstance(language, str) else ''
    if name.startswith('sage') or language == 'sage':
        return 'sage'
    if name.startswith('python') or language == 'python':
        return 'python'
    return language or 'sage'


def _read_cells(nb, attachments, notes):
    """The cells of a notebook that passed :func:`_prepare_cells`, with their
    ``attachments`` (by index, :func:`_take_attachments`)."""
    cells = []
    for number, cell in enumerate(nb['cells'], 1):
        source = _text(cell.get('source', ''))
        what = 'cell %d' % number
        if cell['cell_type'] == 'code':
            count = cell['execution_count']
            metadata = _schema_valid(_plain(cell['metadata']), 'code', what, notes)
            if number - 1 in attachments:
                notes.append('%s: the attachments of a code cell were left out (only '
                             'markdown cells have attachments)' % what)
            cells.append(CellData(type='compute', input=source,
                                  outputs=_clean_outputs(cell['outputs'], count),
                                  execution_count=count, metadata=metadata))
        else:  # markdown or raw
            metadata = _schema_valid(_plain(cell['metadata']), 'markdown', what, notes)
            cells.append(CellData(type='text', input=source, format='markdown',
                                  attachments=attachments.get(number - 1) or {},
                                  metadata=metadata))
    return cells


def read_attachments(attachments, number):
    """A cell's ``attachments`` (nbformat: name -> {mime type: base64 text}) as name ->
    {mime type: bytes}; FormatError naming the cell and the attachment when one is not
    base64, its mime type is not a mime type, or an image's bytes are not of its type."""
    if attachments is None:
        return {}
    where = 'Cell %d of the notebook' % number
    if not isinstance(attachments, dict):
        raise FormatError('%s has damaged attachments: they are not a JSON object of '
                          'names.' % where)
    found = {}
    for name, bundle in attachments.items():
        what = '%s has an attachment %s' % (where, _short(json.dumps(name)))
        if not isinstance(bundle, dict) or not bundle:
            raise FormatError('%s that is not an object of mime types and data.' % what)
        found[name] = {}
        for mime, value in bundle.items():
            if not MIME_RE.fullmatch(mime):
                raise FormatError('%s whose type %s is not a mime type (such as '
                                  'image/png).' % (what, _short(json.dumps(mime))))
            text = _text(value)
            if text is None:
                raise FormatError('%s whose %s data is not text.' % (what, mime))
            try:
                content = base64.b64decode(''.join(text.split()), validate=True)
            except (binascii.Error, ValueError):
                raise FormatError('%s whose %s data is not base64.' % (what, mime)) \
                    from None
            problem = _kind_problem(mime.lower(), content)
            if problem:
                raise FormatError('%s that says %s but %s.' % (what, mime, problem))
            found[name][mime] = content
    return found


def _kind_problem(mime, content):
    """Why ``content`` is not what an image ``mime`` type says (None when it is)."""
    name = KIND_NAMES.get(mime)
    if mime in MAGIC:
        if not content.startswith(MAGIC[mime]):
            return 'is not %s' % name
    elif mime == 'image/webp':
        if not (content[:4] == b'RIFF' and content[8:12] == b'WEBP'):
            return 'is not %s' % name
    elif mime == 'image/svg+xml':
        try:
            text = content.decode('utf-8-sig')
        except UnicodeDecodeError:
            return 'is not %s (not UTF-8 text)' % name
        if not re.search(r'<svg[\s>]', text, re.I):
            return 'is not %s (no <svg> element)' % name
    return None


# --------------------------------------------------------------------------- metadata

@functools.cache
def _metadata_validators():
    """jsonschema validators of nbformat 4.5's metadata: the notebook's, a code cell's,
    a markdown cell's (the schema's own subschemas, with its definitions)."""
    folder = os.path.dirname(nbformat.v4.__file__)
    with open(os.path.join(folder, nbformat.v4.nbformat_schema[(4, 5)]), encoding='utf-8') \
            as f:
        schema = json.load(f)
    definitions = schema['definitions']

    def validator(subschema):
        return jsonschema.Draft4Validator({**subschema, 'definitions': definitions})
    return {'notebook': validator(schema['properties']['metadata']),
            'code': validator(definitions['code_cell']['properties']['metadata']),
            'markdown': validator(definitions['markdown_cell']['properties']['metadata'])}


def _schema_valid(metadata, kind, what=None, notes=None):
    """``metadata`` less the keys whose values break nbformat's schema for ``kind``
    (``notebook``, ``code``, ``markdown``), each noted in ``notes`` when given."""
    validator = _metadata_validators()[kind]
    if validator.is_valid(metadata):
        return metadata
    bad = set()
    for error in validator.iter_errors(metadata):
        if error.path:
            bad.add(error.path[0])
    if not bad:  # nothing to blame on one key (the schema has no such rule today)
        bad = set(metadata)
    if notes is not None:
        for key in sorted(bad, key=str):
            notes.append('%s: the metadata %s was left out: its value breaks the '
                         'notebook format' % (what, _short(json.dumps(key))))
    return {key: value for key, value in metadata.items() if key not in bad}


# --------------------------------------------------------------------------- writing

def write_ipynb(ws):
    """Write a :class:`WorksheetData` as a Jupyter notebook: UTF-8 JSON bytes, nbformat 4.5.

    The kernelspec is SageMath's for the ``sage`` system and Python 3's for ``python``;
    any other system (``gap``, ``r``...) gets the SageMath kernelspec and
    ``metadata.sagenb.system`` (sagenb ran those systems through Sage), which
    :func:`read_ipynb` reads back.  ``metadata.title`` is the worksheet's name and
    ``metadata.sagenb.typeset`` is set when the worksheet is typeset.

    Compute cells become code cells with their outputs, normalised so the notebook
    validates: outputs of unknown type are dropped, missing keys are added (an
    ``execute_result`` without ``execution_count`` takes the cell's), lists of strings
    are joined; extra keys in an output's ``metadata`` (``sagenb.file``) are kept.
    Text cells become markdown cells (HTML is valid markdown) with their attachments
    (base64).  Cell metadata and the notebook's are written as they came in
    (``metadata``), the notebook's own keys (``OWN_METADATA``) from the worksheet; a
    value nbformat's schema refuses for the cell's type (a cell whose type changed) is
    left out.  Cell files and data files have no place in a notebook and are left out.
    """
    system = (ws.system or 'sage').strip() or 'sage'
    metadata = {key: value for key, value in (ws.metadata or {}).items()
                if key not in OWN_METADATA}
    if system == 'python':
        metadata['kernelspec'] = dict(PYTHON_KERNELSPEC)
        metadata['language_info'] = {'name': 'python'}
    else:
        metadata['kernelspec'] = dict(SAGE_KERNELSPEC)
        metadata['language_info'] = {'name': 'sage'}
    sagenb = {}
    if system not in ('sage', 'python'):
        sagenb['system'] = system
    if ws.typeset:
        sagenb['typeset'] = True
    if sagenb:
        metadata['sagenb'] = sagenb
    if ws.name:
        metadata['title'] = str(ws.name)

    nb = nbformat.v4.new_notebook(metadata=nbformat.from_dict(metadata))
    nb.nbformat_minor = 5  # cell ids are in 4.5; pinned so a newer nbformat changes nothing
    for number, cell in enumerate(ws.cells, 1):
        cell_id = f'cell-{number}'
        source = cell.input if isinstance(cell.input, str) else ''
        if cell.type == 'compute':
            count = cell.execution_count if _is_count(cell.execution_count) else None
            outputs = _clean_outputs(cell.outputs or [], count)
            nb.cells.append(nbformat.v4.new_code_cell(
                source=source, id=cell_id, execution_count=count,
                outputs=[nbformat.from_dict(o) for o in outputs],
                metadata=nbformat.from_dict(_schema_valid(dict(cell.metadata or {}),
                                                          'code'))))
        else:
            new = nbformat.v4.new_markdown_cell(
                source=source, id=cell_id,
                metadata=nbformat.from_dict(_schema_valid(dict(cell.metadata or {}),
                                                          'markdown')))
            if cell.attachments:
                new.attachments = nbformat.from_dict({
                    name: {mime: base64.b64encode(content).decode('ascii')
                           for mime, content in bundle.items()}
                    for name, bundle in cell.attachments.items()})
            nb.cells.append(new)
    return (nbformat.writes(nb, version=4) + '\n').encode('utf-8')


# --------------------------------------------------------------------------- outputs

def _clean_outputs(outputs, execution_count):
    cleaned = (_clean_output(o, execution_count) for o in outputs)
    return [o for o in cleaned if o is not None]


def _clean_output(output, execution_count):
    """One output as a valid nbformat 4 output (a new plain dict), or None to drop it."""
    if not isinstance(output, dict):
        return None
    output_type = output.get('output_type')
    if output_type == 'stream':
        name = output.get('name')
        return {'output_type': 'stream',
                'name': name if isinstance(name, str) and name else 'stdout',
                'text': _text(output.get('text', '')) or ''}
    if output_type in ('display_data', 'execute_result'):
        metadata = output.get('metadata')
        cleaned = {'output_type': output_type,
                   'data': _mimebundle(output.get('data')),
                   'metadata': _plain(metadata) if isinstance(metadata, dict) else {}}
        if output_type == 'execute_result':
            count = output.get('execution_count')
            cleaned['execution_count'] = count if _is_count(count) else execution_count
        return cleaned
    if output_type == 'error':
        traceback = output.get('traceback')
        if isinstance(traceback, str):
            traceback = [traceback]
        elif isinstance(traceback, list):
            traceback = [line if isinstance(line, str) else str(line) for line in traceback]
        else:
            traceback = []
        return {'output_type': 'error',
                'ename': _string(output.get('ename')),
                'evalue': _string(output.get('evalue')),
                'traceback': traceback}
    return None


def _mimebundle(data):
    """A mime bundle with text joined; values that are not text are dropped (JSON kept)."""
    bundle = {}
    if not isinstance(data, dict):
        return bundle
    for mime, value in data.items():
        if not isinstance(mime, str):
            continue
        if _is_json_mime(mime):
            bundle[mime] = _plain(value)
        else:
            value = _text(value)
            if value is not None:
                bundle[mime] = value
    return bundle


def _is_json_mime(mime):
    # As nbformat.v4.rwbase: these hold JSON values, not text.
    return mime == 'application/json' or (mime.startswith('application/')
                                          and mime.endswith('+json'))


# --------------------------------------------------------------------------- helpers

def _text(value):
    """A nbformat multi-line string (str or list of str) as one str; None if it is neither."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(line, str) for line in value):
        return ''.join(value)
    return None


def _string(value):
    if value is None:
        return ''
    return value if isinstance(value, str) else str(value)


def _is_count(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _plain(value):
    """NotebookNode (and nested) -> plain dicts and lists."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _short(value, limit=120):
    text = str(value)
    return text if len(text) <= limit else text[:limit - 3] + '...'


def _size(n):
    for unit in ('bytes', 'KiB', 'MiB', 'GiB'):
        if n < 1024 or unit == 'GiB':
            return f'{n} {unit}' if unit == 'bytes' else f'{n:.1f} {unit}'
        n /= 1024
