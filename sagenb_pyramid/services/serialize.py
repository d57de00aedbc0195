"""Worksheets, cells and data files as JSON: what the page and the API read.

Reading a cell settles it first when a stopped worker host left it busy
(``evaluation.settle_orphan``), so no answer shows a cell that will never finish.  A
cell handed over for evaluation whose queued state the registry has not stored yet
(``run_pending``) reads as queued, so a live client woken by the evaluation follows it.
"""
import json
import time

from ..resources import BUSY
from .evaluation import settle_orphan


# Seconds after an evaluation was handed over during which a cell whose output the
# registry has not yet marked queued reads as queued (it does so within moments; a job
# lost on its way must not show a cell queued for ever: the page's cell poller then
# gets the cell as it is).
RUN_PENDING_SECONDS = 30.0


def run_pending(cell, now=None):
    """Whether ``cell`` was handed over for evaluation moments ago and its output has
    not changed since (the registry has not stored it queued yet)."""
    version, output_version, when = cell.run_info()
    now = time.time() if now is None else now
    out = cell.output
    return (version > 0 and out.status not in BUSY and out.version <= output_version
            and now - when < RUN_PENDING_SECONDS)


def cell_json(request, cell):
    settle_orphan(request, cell)
    data = _cell_json(cell)
    if run_pending(cell):
        data.update(QUEUED)
    return data


def _cell_json(cell):
    out = cell.output
    data = {'id': cell.id, 'type': cell.type, 'input': cell.input,
            'input_version': cell.input_version, 'run_version': cell.run_version,
            'status': out.status,
            'outputs': out.outputs, 'execution_count': out.execution_count,
            'version': out.version, 'started': out.started, 'finished': out.finished}
    if cell.type == 'text':
        data['format'] = cell.format
    if cell.attachments:
        # Names only: the page asks for cells/<id>/attachments/<name>.
        data['attachments'] = sorted(cell.attachments)
    for lock in ('editable', 'deletable'):
        if cell.locked(lock):
            data[lock] = False
    if out.files is not None:
        data['files'] = sorted(out.files.keys())
    if out.input_request is not None and out.status in BUSY:
        data['input_request'] = dict(out.input_request)
    if out.widgets:
        data['widgets'] = out.widgets
    return data


# A cell as the registry stores it queued.
QUEUED = {'status': 'queued', 'outputs': [], 'execution_count': None, 'started': None,
          'finished': None}


def queued_json(request, cell):
    """The cell as it is once the registry has stored it queued (moments from now)."""
    data = cell_json(request, cell)
    data.update(QUEUED)
    return data


def worksheet_json(request, worksheet, cells=True):
    data = {'id': worksheet.number, 'name': worksheet.name,
            'owner': worksheet.owner.login, 'url': request.resource_url(worksheet),
            'typeset': worksheet.typeset, 'system': worksheet.system,
            'state': worksheet.state_for(request.user.id) if request.user is not None
            else 'active',
            'created': worksheet.created, 'modified': worksheet.modified,
            'tags': list(worksheet.tags), 'version': worksheet.version,
            # Whether this viewer's page may run the scripts of the worksheet's outputs.
            'trusted': worksheet.trusted_by(request.user)}
    if cells:
        data['cells'] = [cell_json(request, c) for c in worksheet.ordered_cells()]
        data['data_files'] = data_files_json(request, worksheet)
    return data


def data_files_json(request, worksheet):
    return [{'name': name, 'size': f.size, 'url': request.resource_path(f),
             'modified': f.modified}
            for name, f in (worksheet.files.items() if worksheet.files is not None else ())]


def worksheet_summary(request, worksheet, user_id):
    """A worksheet as a listing shows it to ``user_id`` (no cells)."""
    return {'id': worksheet.number, 'name': worksheet.name,
            'url': request.resource_url(worksheet),
            'owner': worksheet.owner.login, 'state': worksheet.state_for(user_id),
            'created': worksheet.created, 'modified': worksheet.modified,
            'tags': list(worksheet.tags)}


def file_json(request, data_file):
    return {'name': data_file.__name__, 'size': data_file.size,
            'modified': data_file.modified, 'url': request.resource_path(data_file)}


def script_safe_json(data):
    """JSON that can sit inside a <script> element."""
    return (json.dumps(data).replace('<', '\\u003c').replace('>', '\\u003e')
            .replace('&', '\\u0026'))
