"""The legacy Sage notebook's worksheets: ``.sws`` archives, ``.txt`` and the body grammar.

A body is text cells (HTML) between compute cells written as::

    {{{id=12|
    <input lines>
    ///
    <output text>
    }}}

``{{{id=N|``, ``///`` and ``}}}`` are delimiters only when each fills a whole line (real
outputs hold ``{{{`` inside typeset LaTeX).  An output mixes plain text,
``<html>...</html>`` fragments and ``cell://name`` references to files the cell wrote;
:func:`outputs_from_text` turns it into nbformat outputs and :func:`text_from_outputs`
turns nbformat outputs back into such text, so that reading what
:func:`write_sws` wrote gives back the same cells.
"""
import base64
import io
import posixpath
import re
import tarfile
import time

from . import CellData, FormatError, Limits, WorksheetData, archive, safepickle

START_RE = re.compile(r'^\{\{\{(.*)$')
ID_RE = re.compile(r'^\s*id=([^|\s]+)\s*$')
OUTPUT_RE = re.compile(r'^///[ \t]*$')
END_RE = re.compile(r'^\}\}\}[ \t]*$')
HTML_RE = re.compile(r'<html>(.*?)</html>', re.S)
MATH_RE = re.compile(
    r'^\s*(?:<!--notruncate-->)?\s*<script type=["\']math/tex(; *mode=display)?["\']>'
    r'((?:(?!</script>).)*)</script>\s*$', re.S)
IMAGE_RE = re.compile(
    r'^\s*(?:<!--notruncate-->)?\s*(?:<font[^>]*>)?\s*'
    r'<img\s+src=["\']cell://([^"\']+)["\']\s*/?>\s*(?:</font>)?\s*$', re.S | re.I)
TRACEBACK_LINE = 'Traceback (most recent call last):'
ANSI_RE = re.compile(r'\x1b\[[0-9;]*[A-Za-z]')

IMAGE_TYPES = {'.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg',
               '.gif': 'image/gif', '.svg': 'image/svg+xml'}
BINARY_IMAGE_TYPES = ('image/png', 'image/jpeg', 'image/gif')
LEGACY_PREFIX = 'sage_worksheet/'


# --- reading --------------------------------------------------------------------------

def parse_body(body):
    """``(cells, raw_outputs)`` of a body: ``CellData`` for text cells (stripped, empty
    ones left out) and compute cells (input stripped as sagenb did, ``legacy_id`` from
    the ``id=`` meta), and for each cell its raw output text (None for text cells).

    A line starting with ``{{{`` opens a compute cell (what follows ``|`` on it is
    input, as in sagenb); inside it, only a line that is exactly ``///`` (trailing
    blanks allowed) starts the output and only a line that is exactly ``}}}`` ends it.
    """
    cells, raw_outputs = [], []
    text_lines = []
    lines = body.replace('\r\n', '\n').replace('\r', '\n').split('\n')
    i, n = 0, len(lines)

    def flush_text():
        text = '\n'.join(text_lines).strip()
        del text_lines[:]
        if text:
            cells.append(CellData(type='text', input=text, format='html'))
            raw_outputs.append(None)

    while i < n:
        match = START_RE.match(lines[i])
        if not match:
            text_lines.append(lines[i])
            i += 1
            continue
        flush_text()
        # As sagenb read it: "{{{meta|" then the input; the meta names the cell's id.
        meta, bar, rest = match.group(1).partition('|')
        if not bar:
            meta, rest = '', match.group(1)
        id_match = ID_RE.match(meta)
        legacy_id = id_match.group(1) if id_match else None
        i += 1
        input_lines, output_lines, in_output = [rest] if rest.strip() else [], [], False
        while i < n and not END_RE.match(lines[i]):
            if not in_output and OUTPUT_RE.match(lines[i]):
                in_output = True
            elif in_output:
                output_lines.append(lines[i])
            else:
                input_lines.append(lines[i])
            i += 1
        i += 1  # the }}} line (or the end)
        cells.append(CellData(type='compute', input='\n'.join(input_lines).strip(),
                              legacy_id=legacy_id))
        raw_outputs.append('\n'.join(output_lines))
    flush_text()
    return cells, raw_outputs


def is_image(name):
    return posixpath.splitext(name.lower())[1] in IMAGE_TYPES


def image_output(name, content):
    """A display_data output of an image file, remembering its file name."""
    mime = IMAGE_TYPES[posixpath.splitext(name.lower())[1]]
    if mime in BINARY_IMAGE_TYPES:
        payload = base64.b64encode(content).decode('ascii')
    else:
        payload = safepickle.decode(content)
    return {'output_type': 'display_data', 'data': {mime: payload},
            'metadata': {'sagenb': {'file': name}}}


def file_output(name):
    """A file the cell wrote that is not shown inline: a download link in the page."""
    return {'output_type': 'display_data', 'data': {'text/plain': name},
            'metadata': {'sagenb': {'file': name}}}


def text_outputs(text):
    """Plain output text: a stream, and an error where a traceback is."""
    text = text.strip('\n')
    if not text.strip():
        return []
    lines = text.split('\n')
    start = next((k for k, line in enumerate(lines) if line.startswith(TRACEBACK_LINE)),
                 None)
    if start is None:
        return [{'output_type': 'stream', 'name': 'stdout', 'text': text}]
    outputs = []
    before = '\n'.join(lines[:start]).strip('\n')
    if before.strip():
        outputs.append({'output_type': 'stream', 'name': 'stdout', 'text': before})
    traceback = lines[start:]
    last = next((line for line in reversed(traceback) if line.strip()), '')
    match = re.match(r'^([A-Za-z_][\w.]*)(?::\s?(.*))?$', last)
    ename, evalue = (match.group(1), match.group(2) or '') if match else ('Error', last)
    outputs.append({'output_type': 'error', 'ename': ename, 'evalue': evalue,
                    'traceback': traceback})
    return outputs


def outputs_from_text(text, cell_files):
    """nbformat outputs from a cell's legacy output text and its files.

    ``cell_files`` maps names to bytes.  Returns ``(outputs, kept_files)``: images end up
    inline in ``outputs``; other files are listed as file outputs and returned in
    ``kept_files`` to be stored with the cell.
    """
    outputs, shown = [], set()
    position = 0
    for match in HTML_RE.finditer(text):
        outputs.extend(text_outputs(text[position:match.start()]))
        position = match.end()
        inner = match.group(1)
        math = MATH_RE.match(inner)
        image = IMAGE_RE.match(inner)
        if math:
            delim = '$$' if math.group(1) else '$'
            outputs.append({'output_type': 'execute_result', 'execution_count': None,
                            'data': {'text/latex': delim + math.group(2) + delim},
                            'metadata': {}})
        elif image and image.group(1) in cell_files and is_image(image.group(1)):
            name = image.group(1)
            outputs.append(image_output(name, cell_files[name]))
            shown.add(name)
        elif inner.strip():
            outputs.append({'output_type': 'display_data', 'data': {'text/html': inner},
                            'metadata': {}})
    outputs.extend(text_outputs(text[position:]))
    kept = {}
    for name in sorted(cell_files):
        if name in shown:
            continue
        if is_image(name):
            outputs.append(image_output(name, cell_files[name]))
        else:
            outputs.append(file_output(name))
            kept[name] = cell_files[name]
    return outputs, kept


def decode_text(raw):
    return safepickle.decode(raw).replace('\r\n', '\n')


def split_txt(text):
    """``(title, system, body)`` of a ``worksheet.txt``: title line, ``system:`` line."""
    lines = text.split('\n')
    title = lines[0].strip() if lines else ''
    rest = lines[1:]
    system = None
    if rest and rest[0].startswith('system:'):
        system = rest[0][len('system:'):].strip()
        rest = rest[1:]
    return title, system, '\n'.join(rest)


def clean_system(value):
    value = (value or '').strip().lower()
    return value or 'sage'


def worksheet_from_body(name, body, cell_files_by_id, data_files=None, system='sage',
                        typeset=False):
    """A ``WorksheetData`` from a body and ``{legacy cell id: {name: bytes}}``."""
    cells, raw = parse_body(body)
    used = set()
    for cell, text in zip(cells, raw, strict=True):
        if cell.type != 'compute':
            continue
        files = {}
        if cell.legacy_id is not None and cell.legacy_id not in used:
            used.add(cell.legacy_id)
            files = cell_files_by_id.get(cell.legacy_id, {})
        cell.outputs, cell.files = outputs_from_text(text, files)
    return WorksheetData(name=name, system=clean_system(system), typeset=typeset,
                         cells=cells, data_files=dict(data_files or {}))


def files_under(members, prefix):
    """``{legacy cell id: {name: bytes}}`` for ``prefix + 'cells/<id>/<name>'``."""
    found = {}
    for path, content in members.items():
        if not path.startswith(prefix + 'cells/'):
            continue
        parts = path[len(prefix) + len('cells/'):].split('/', 1)
        if len(parts) == 2 and parts[0] and parts[1]:
            found.setdefault(parts[0], {})[parts[1]] = content
    return found


def data_under(members, prefix):
    return {path[len(prefix) + len('data/'):]: content
            for path, content in members.items()
            if path.startswith(prefix + 'data/') and path != prefix + 'data/'}


def read_sws(data, limits=None, fallback_name='Untitled', budget=None):
    """A ``WorksheetData`` from the bytes of a ``.sws`` file (either layout)."""
    limits = limits or Limits()
    if not data:
        raise FormatError('the file is empty')
    if len(data) > limits.max_bytes:
        raise FormatError('the file is larger than %d MB' % (limits.max_bytes // 2**20))
    try:
        members = archive.read_tar(data, limits, budget)
    except FormatError as exc:
        raise FormatError('not a Sage worksheet (.sws): %s' % exc) from None
    if LEGACY_PREFIX + 'worksheet.html' in members or \
            LEGACY_PREFIX + 'worksheet.txt' in members:
        return _read_2010(members, fallback_name)
    return _read_pre2010(members, fallback_name, budget or archive.Budget(limits))


def _read_2010(members, fallback_name):
    prefix = LEGACY_PREFIX
    conf = {}
    if prefix + 'worksheet_conf.pickle' in members:
        conf = safepickle.loads(members[prefix + 'worksheet_conf.pickle'],
                                'worksheet_conf.pickle')
        if not isinstance(conf, dict):
            raise FormatError('worksheet_conf.pickle does not hold a dictionary')
    title, txt_system, body = '', None, None
    if prefix + 'worksheet.txt' in members:
        title, txt_system, body = split_txt(decode_text(members[prefix + 'worksheet.txt']))
    if prefix + 'worksheet.html' in members:
        body = decode_text(members[prefix + 'worksheet.html'])
    name = conf.get('name') if isinstance(conf.get('name'), str) else None
    # The name as sagenb kept it (not stripped); the txt title line, else the file name.
    if not (name and name.strip()):
        name = title.strip() or fallback_name
    system = conf.get('system') if isinstance(conf.get('system'), str) else txt_system
    ws = worksheet_from_body(name, body, files_under(members, prefix),
                             data_under(members, prefix), system=system,
                             typeset=bool(conf.get('pretty_print', False)))
    ws.extra['conf'] = conf
    return ws


def _read_pre2010(members, fallback_name, budget):
    candidates = sorted((p for p in members if p.endswith('/worksheet.txt')),
                        key=lambda p: (p.count('/'), p))
    if not candidates:
        raise FormatError('not a Sage worksheet (.sws): the archive has neither '
                          'sage_worksheet/worksheet.html nor <n>/worksheet.txt')
    prefix = candidates[0][:-len('worksheet.txt')]
    title, system, body = split_txt(decode_text(members[candidates[0]]))
    ws = worksheet_from_body((title or fallback_name).strip() or fallback_name, body,
                             files_under(members, prefix), data_under(members, prefix),
                             system=system)
    revisions = []
    for path in members:
        match = re.fullmatch(re.escape(prefix) + r'snapshots/(\d+(?:\.\d+)?)\.bz2', path)
        if match:
            text = decode_text(archive.bunzip(members[path], budget, path))
            revisions.append((float(match.group(1)), text))
    ws.revisions = sorted(revisions)
    return ws


def read_txt(data, limits=None, fallback_name='Untitled'):
    """A worksheet from sagenb's plain-text export: title line, ``system:`` line, body."""
    limits = limits or Limits()
    if not data.strip():
        raise FormatError('the file is empty')
    if len(data) > limits.max_bytes:
        raise FormatError('the file is larger than %d MB' % (limits.max_bytes // 2**20))
    if b'\x00' in data:
        raise FormatError('not a text file')
    title, system, body = split_txt(decode_text(data))
    return worksheet_from_body(title or fallback_name, body, {}, system=system)


# --- writing --------------------------------------------------------------------------

def _joined(value):
    return ''.join(value) if isinstance(value, list) else (value or '')


def _strip_delims(latex):
    latex = latex.strip()
    for left, right, display in (('$$', '$$', True), ('\\[', '\\]', True),
                                 ('$', '$', False), ('\\(', '\\)', False)):
        if latex.startswith(left) and latex.endswith(right) and len(latex) >= 2 * len(left):
            return latex[len(left):len(latex) - len(right)], display
    return latex, False


def text_from_outputs(outputs, files, counter=None):
    """``(output text, {file name: bytes})``: nbformat outputs in the legacy form."""
    pieces, cell_files = [], {}
    stream = []
    counter = counter if counter is not None else [0]

    def flush_stream():
        if stream:
            text = ''.join(stream).strip('\n')
            if text:
                pieces.append(text)
            del stream[:]

    for out in outputs:
        kind = out.get('output_type')
        meta = (out.get('metadata') or {}).get('sagenb') or {}
        data = out.get('data') or {}
        if kind == 'stream':
            stream.append(_joined(out.get('text')))
            continue
        flush_stream()
        if kind == 'error':
            pieces.append(ANSI_RE.sub('', '\n'.join(out.get('traceback') or [])
                                      or '%s: %s' % (out.get('ename'), out.get('evalue'))))
            continue
        if kind not in ('display_data', 'execute_result'):
            continue
        image_mime = next((m for m in ('image/png', 'image/jpeg', 'image/gif',
                                       'image/svg+xml') if m in data), None)
        name = meta.get('file')
        if image_mime:
            if not name or not is_image(name):
                ext = {'image/png': '.png', 'image/jpeg': '.jpg', 'image/gif': '.gif',
                       'image/svg+xml': '.svg'}[image_mime]
                name = 'sage%d%s' % (counter[0], ext)
                counter[0] += 1
            payload = _joined(data[image_mime])
            cell_files[name] = (base64.b64decode(payload) if image_mime in BINARY_IMAGE_TYPES
                                else payload.encode('utf-8'))
            pieces.append("<html><font color='black'><img src='cell://%s'></font></html>"
                          % name)
        elif name and name in files:
            cell_files[name] = files[name]  # shown by the notebook as a link
        elif 'text/latex' in data:
            latex, display = _strip_delims(_joined(data['text/latex']))
            pieces.append('<html><script type="math/tex%s">%s</script></html>'
                          % ('; mode=display' if display else '', latex))
        elif 'text/html' in data:
            pieces.append('<html>%s</html>' % _joined(data['text/html']))
        elif 'text/plain' in data:
            pieces.append(_joined(data['text/plain']).strip('\n'))
        elif 'text/markdown' in data:
            pieces.append(_joined(data['text/markdown']).strip('\n'))
    flush_stream()
    return '\n'.join(pieces), cell_files


def render_body(ws):
    """``(body, {legacy cell id: {name: bytes}})`` with cells numbered from 0."""
    blocks, files_by_id = [], {}
    number = 0
    for cell in ws.cells:
        if cell.type == 'text':
            blocks.append(_guard(cell.input.strip()))
            continue
        output, files = text_from_outputs(cell.outputs, cell.files)
        # Keep delimiter lines from appearing inside the cell.
        cell_input = _guard(cell.input)
        output = _guard(output)
        blocks.append('{{{id=%d|\n%s\n///\n%s\n}}}' % (number, cell_input, output)
                      if output else '{{{id=%d|\n%s\n///\n}}}' % (number, cell_input))
        if files:
            files_by_id[str(number)] = files
        number += 1
    return '\n\n'.join(b for b in blocks if b) + '\n', files_by_id


def _guard(text):
    """A line that is exactly a delimiter would end the cell early: indent it by a space."""
    return '\n'.join(' ' + line if START_RE.match(line) or END_RE.match(line)
                     or OUTPUT_RE.match(line) else line for line in text.split('\n'))


def write_sws(ws, owner='admin', modified=None):
    """The bytes of a ``.sws`` (2010+ layout) that the legacy notebook can import."""
    modified = modified or time.time()
    body, files_by_id = render_body(ws)
    conf = {'name': ws.name, 'system': ws.system, 'pretty_print': bool(ws.typeset),
            'owner': owner, 'id_number': 0, 'last_change': (owner, float(modified)),
            'saved_by_info': {}, 'tags': {}, 'collaborators': [], 'viewers': [],
            'live_3D': False, 'auto_publish': False, 'ratings': []}
    members = [
        ('worksheet_conf.pickle', safepickle.dumps(conf)),
        ('worksheet.html', body.encode('utf-8')),
        ('worksheet.txt', ('%s\nsystem:%s\n%s' % (ws.name, ws.system, body))
         .encode('utf-8')),
    ]
    for cell_id in sorted(files_by_id, key=int):
        for name, content in sorted(files_by_id[cell_id].items()):
            members.append(('cells/%s/%s' % (cell_id, name), content))
    for name, content in sorted(ws.data_files.items()):
        members.append(('data/%s' % name, content))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode='w:bz2', format=tarfile.GNU_FORMAT) as tar:
        for name, content in members:
            info = tarfile.TarInfo(LEGACY_PREFIX + name)
            info.size = len(content)
            info.mtime = int(modified)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()
