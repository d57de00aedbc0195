"""A cell's outputs while it runs: kept, cut when too long, and written to its cell.

``output_from_message`` maps a kernel's IOPub message to an nbformat output (a pure
function); ``CellWriter`` keeps a job's outputs and hands them to the registry's
output store (store.py) as the worksheet's thread (worksheet.py) adds them.
"""
import tempfile
import time

# After the cut, the last characters of the output stay visible below the marker.
TAIL_CHARS = 2000

# IOPub messages that are outputs of a cell, as they are in nbformat.
OUTPUT_MESSAGES = ('stream', 'execute_result', 'display_data', 'error')


def output_from_message(kind, content):
    """The nbformat output of an IOPub message of type ``kind`` with ``content``, or
    None when it is not an output (status, clear_output, execute_input, comms...)."""
    if kind == 'stream':
        return {'output_type': 'stream', 'name': content['name'], 'text': content['text']}
    if kind in ('execute_result', 'display_data'):
        output = {'output_type': kind, 'data': content.get('data', {}),
                  'metadata': content.get('metadata', {})}
        if kind == 'execute_result':
            output['execution_count'] = content.get('execution_count')
        return output
    if kind == 'error':
        return {'output_type': 'error', 'ename': content.get('ename', ''),
                'evalue': content.get('evalue', ''),
                'traceback': content.get('traceback', [])}
    return None


def page_outputs(reply_content):
    """``foo?`` and ``foo??`` answer with a "page" payload in the execute reply: the
    outputs it shows."""
    return [{'output_type': 'display_data', 'data': payload['data'],
             'metadata': {'sagenb': {'page': True}}}
            for payload in (reply_content or {}).get('payload', [])
            if payload.get('source') == 'page' and payload.get('data')]


class CellWriter:
    """Keeps the outputs of one job and writes them to the job's cell.

    Stream text is kept up to ``max_output_chars`` (all streams of the cell together).
    Past that, the outputs show a marker and the last ``TAIL_CHARS`` characters (so the
    final lines of a flood are not silently dropped), and the whole text goes to a file
    that is stored with the cell when it finishes (``cells/<id>/output.txt``).
    """

    def __init__(self, registry, job):
        self.registry = registry
        self.job = job
        self.outputs = []
        self.status = 'queued'
        self.failed = False      # an error output was added
        self.execution_count = None
        self.started = None
        self.dirty = False
        self.last_flush = 0.0
        self.stale = False
        self._clear_pending = False
        self.shown = 0           # stream characters kept in ``outputs``
        self.hidden = 0          # stream characters past the cut
        self.cut = None          # the marker output, once the cut happened
        self.tail = ''
        self.full = None         # file with the whole stream text, once cut
        self.full_bytes = 0
        self.files = {}          # files the cell wrote, kept with it (name -> bytes)
        self.widgets = None      # a callable giving the cell's widget models, or None
        self.widgets_only = False  # a widget change: outputs and status stay as they are
        self.input_request = None  # {"prompt", "password"} while input() waits

    def running(self):
        """The cell starts.  A fast cell's first write is its result: "running" is
        stored only if it is still running after ``flush_interval``."""
        self.status = 'running'
        self.started = self.last_flush = time.time()
        self.dirty = True
        self.stale = not self.registry.is_current(self.job)

    def add(self, output):
        if self._clear_pending:
            self.outputs = []
            self._clear_pending = False
        if output['output_type'] == 'stream':
            self._add_stream(output['name'], output['text'])
        else:
            self.outputs.append(output)
        if output['output_type'] == 'error':
            # Stored as "error" when the cell ends: until then it is still running (its
            # files are collected, its process may print more).
            self.failed = True
        self.dirty = True

    def _add_stream(self, name, text):
        if self.cut is not None:
            self._beyond_cut(text)
            return
        room = self.registry.max_output_chars - self.shown
        head, rest = text[:room], text[room:]
        if head:
            last = self.outputs[-1] if self.outputs else None
            if last is not None and last['output_type'] == 'stream' and last['name'] == name:
                self.outputs[-1] = dict(last, text=last['text'] + head)
            else:
                self.outputs.append({'output_type': 'stream', 'name': name, 'text': head})
            self.shown += len(head)
        if rest:
            # The cut: everything shown so far starts the file of the whole output.
            self.full = tempfile.TemporaryFile(dir=self.registry.runtime_dir)
            self._write_full(''.join(o['text'] for o in self.outputs
                                     if o['output_type'] == 'stream'))
            self.cut = {'output_type': 'stream', 'name': name, 'text': ''}
            self.outputs.append(self.cut)
            self._beyond_cut(rest)

    def _beyond_cut(self, text):
        self._write_full(text)
        self.hidden += len(text)
        self.tail = (self.tail + text)[-TAIL_CHARS:]
        shown_tail = self.tail[self.tail.find('\n') + 1:] if len(self.tail) == TAIL_CHARS \
            else self.tail
        self.cut['text'] = (
            '\n[... %s more characters; the whole output: cells/%d/output.txt ...]\n%s'
            % (format(self.hidden - len(shown_tail), ','), self.job.cell_id, shown_tail))

    def _write_full(self, text):
        limit = self.registry.max_output_file_bytes
        if self.full_bytes >= limit:
            return
        data = text.encode('utf-8', 'replace')
        if self.full_bytes + len(data) > limit:
            data = data[:limit - self.full_bytes] + b'\n[... cut: the file reached its limit ...]\n'
        self.full.write(data)
        self.full_bytes += len(data)

    def clear(self, wait):
        if wait:
            self._clear_pending = True
        else:
            self.outputs = []
            self.dirty = True

    def maybe_flush(self):
        if self.dirty and time.time() - self.last_flush >= self.registry.flush_interval:
            self.flush()

    def flush(self, finished=None):
        self.dirty = False
        self.last_flush = time.time()
        if not self.stale:
            self.stale = not self.registry.store(self, finished)

    def finish_with(self, output):
        """End a job that never ran (or failed around the kernel) with one error."""
        self.outputs = [output]
        self.finish('error')

    def finish(self, status=None):
        if status is not None:
            self.status = status
        else:
            self.status = 'error' if self.failed else 'done'
        try:
            self.flush(finished=time.time())
        finally:
            if self.full is not None:
                self.full.close()
                self.full = None

