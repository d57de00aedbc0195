"""ipywidgets models of a worksheet's Sage process, kept by the server.

Sage's ``@interact`` runs on ipywidgets: the kernel opens a comm per widget model
(``comm_open`` with its state), changes them with ``comm_msg`` updates, and the page's
changes go back as ``comm_msg`` updates.  The server keeps every model's state, with the
cell that made it, and stores the states with the cell (``CellOutput.widgets``), so the
page renders controls and their last output from the database (a closed tab, a reload
or another viewer loses nothing), and a change travels page -> server -> kernel.

An ``Output`` widget captures what the kernel prints while the Output's ``msg_id`` names
the request being handled (that is how ``interactive`` shows the function's result):
:meth:`WidgetTracker.capture` routes such outputs into the model's ``outputs``.
"""
import copy

WIDGET_TARGET = 'jupyter.widget'
MAX_OUTPUTS = 200


class WidgetTracker:
    """The live models of one kernel: ``comm_id -> {cell, model_name, state}``."""

    def __init__(self):
        self.models = {}
        self._clear_pending = set()

    def reset(self):
        """The kernel is gone: its comms are too."""
        self.models.clear()
        self._clear_pending.clear()

    def cell_of(self, comm_id):
        model = self.models.get(comm_id)
        return model['cell'] if model is not None else None

    def take(self, msg, cell_id):
        """True if ``msg`` was the widgets' (a comm message, or output captured by an
        Output widget); ``cell_id`` is the cell a newly opened model belongs to."""
        return self.handle(msg, cell_id) or self.capture(msg) is not None

    def handle(self, msg, cell_id):
        """Take a comm message of the kernel; True if it was one."""
        kind, content = msg['msg_type'], msg['content']
        if kind == 'comm_open':
            if content.get('target_name') != WIDGET_TARGET:
                return True
            data = content.get('data') or {}
            state = dict(data.get('state') or {})
            self.models[content['comm_id']] = {
                'cell': cell_id,
                'model_name': state.get('_model_name', ''),
                'model_module': state.get('_model_module', ''),
                'state': state,
            }
            return True
        if kind == 'comm_msg':
            model = self.models.get(content.get('comm_id'))
            data = content.get('data') or {}
            if model is not None and data.get('method') in ('update', 'echo_update'):
                model['state'].update(data.get('state') or {})
            return True
        if kind == 'comm_close':
            self.models.pop(content.get('comm_id'), None)
            return True
        return False

    def apply(self, comm_id, state):
        """A change made in the page (the kernel does not echo it back)."""
        model = self.models.get(comm_id)
        if model is not None:
            model['state'].update(state)

    def capture(self, msg):
        """Route an output to the Output widget that captures its request; returns the
        cell whose widgets changed, or None when no Output captures it."""
        parent = msg['parent_header'].get('msg_id')
        if not parent:
            return None
        for comm_id, model in self.models.items():
            if model['model_name'] != 'OutputModel' or model['state'].get('msg_id') != parent:
                continue
            kind, content = msg['msg_type'], msg['content']
            outputs = model['state'].setdefault('outputs', [])
            if kind == 'clear_output':
                if content.get('wait'):
                    self._clear_pending.add(comm_id)
                else:
                    outputs.clear()
                return model['cell']
            if comm_id in self._clear_pending:
                outputs.clear()
                self._clear_pending.discard(comm_id)
            output = nb_output(kind, content)
            if output is None:
                return None
            last = outputs[-1] if outputs else None
            if output['output_type'] == 'stream' and last is not None and \
                    last.get('output_type') == 'stream' and last.get('name') == output['name']:
                outputs[-1] = dict(last, text=last['text'] + output['text'])
            else:
                outputs.append(output)
            del outputs[:-MAX_OUTPUTS]
            return model['cell']
        return None

    def snapshot(self, cell_id):
        """``{model_id: {model_name, model_module, state}}`` of the cell's models."""
        return {comm_id: {'model_name': m['model_name'], 'model_module': m['model_module'],
                          'state': copy.deepcopy(m['state'])}
                for comm_id, m in self.models.items() if m['cell'] == cell_id}


def nb_output(kind, content):
    if kind == 'stream':
        return {'output_type': 'stream', 'name': content.get('name', 'stdout'),
                'text': content.get('text', '')}
    if kind in ('display_data', 'execute_result'):
        return {'output_type': 'display_data', 'data': content.get('data', {}),
                'metadata': content.get('metadata', {})}
    if kind == 'error':
        return {'output_type': 'error', 'ename': content.get('ename', ''),
                'evalue': content.get('evalue', ''),
                'traceback': content.get('traceback', [])}
    return None
