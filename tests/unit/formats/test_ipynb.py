"""Reading and writing Jupyter notebooks (``sagenb_pyramid.formats.ipynb``).

The real notebooks come from the shared fixtures folder (see ``fixtures_path``); each is
compared against an independent reading of its JSON with plain ``json``.
"""
import json

import nbformat
import nbformat.v3
import pytest

from sagenb_pyramid.formats import CellData, FormatError, Limits, WorksheetData
from sagenb_pyramid.formats.ipynb import read_ipynb, write_ipynb

from ...support.fixtures_path import fixture_names, fixture_path


def _fixture_names():
    return fixture_names('ipynb', '*.ipynb')


def _fixture(name):
    return fixture_path('ipynb', name).read_bytes()


def _join(value):
    return ''.join(value) if isinstance(value, list) else value


def _images(outputs):
    """The image payloads of a list of outputs, as (mime, base64 text)."""
    found = []
    for output in outputs:
        for mime, value in output.get('data', {}).items():
            if mime.startswith('image/'):
                found.append((mime, _join(value)))
    return found


@pytest.mark.parametrize('name', _fixture_names())
def test_fixture_read_matches_plain_json(name):
    data = _fixture(name)
    raw = json.loads(data)
    ws = read_ipynb(data, Limits(), fallback_name='From the file name')

    assert ws.name == raw['metadata'].get('title', 'From the file name')
    # All fixtures were written with a Sage kernel (sage_6_6_rc2, sagemath...).
    assert raw['metadata']['kernelspec']['name'].startswith('sage')
    assert ws.system == 'sage'
    assert ws.extra['kernelspec'] == raw['metadata']['kernelspec']
    assert ws.typeset is False

    raw_code = [c for c in raw['cells'] if c['cell_type'] == 'code']
    raw_text = [c for c in raw['cells'] if c['cell_type'] in ('markdown', 'raw')]
    assert len(ws.cells) == len(raw['cells'])
    assert len(ws.compute_cells()) == len(raw_code)
    assert len([c for c in ws.cells if c.type == 'text']) == len(raw_text)
    assert [c.type for c in ws.cells] == [
        'compute' if c['cell_type'] == 'code' else 'text' for c in raw['cells']]

    for cell, raw_cell in zip(ws.cells, raw['cells'], strict=True):
        assert cell.input == _join(raw_cell['source'])
        if cell.type == 'text':
            assert cell.format == 'markdown'
            assert cell.outputs == []
            continue
        assert cell.execution_count == raw_cell['execution_count']
        assert len(cell.outputs) == len(raw_cell['outputs'])
        assert _images(cell.outputs) == _images(raw_cell['outputs'])
        for output, raw_output in zip(cell.outputs, raw_cell['outputs'], strict=True):
            assert type(output) is dict
            assert output['output_type'] == raw_output['output_type']
            if 'text' in raw_output:
                assert output['text'] == _join(raw_output['text'])
            if 'data' in raw_output:
                assert output['data'] == {k: _join(v) for k, v in raw_output['data'].items()}
                assert output['metadata'] == raw_output['metadata']
            if 'execution_count' in raw_output:
                assert output['execution_count'] == raw_output['execution_count']


def test_fixtures_have_images():
    """At least one fixture has image outputs, so the image checks above check something."""
    found = False
    for name in _fixture_names():
        ws = read_ipynb(_fixture(name), Limits())
        found = found or any(_images(c.outputs) for c in ws.compute_cells())
    assert found


@pytest.mark.parametrize('name', _fixture_names())
def test_fixture_write_validates_and_round_trips(name):
    ws = read_ipynb(_fixture(name), Limits(), fallback_name='Round trip')
    out = write_ipynb(ws)
    assert isinstance(out, bytes)

    written = json.loads(out)
    nbformat.validate(written)
    assert (written['nbformat'], written['nbformat_minor']) == (4, 5)
    ids = [c['id'] for c in written['cells']]
    assert len(set(ids)) == len(ids) == len(ws.cells)
    assert written['metadata']['kernelspec'] == {
        'name': 'sagemath', 'display_name': 'SageMath', 'language': 'sage'}
    assert written['metadata']['language_info'] == {'name': 'sage'}
    assert written['metadata']['title'] == 'Round trip'
    # nbformat itself reads it without complaint.
    nbformat.validate(nbformat.reads(out.decode('utf-8'), as_version=4))

    again = read_ipynb(out, Limits(), fallback_name='Not used')
    assert again.name == ws.name
    assert again.system == ws.system
    assert again.typeset == ws.typeset
    assert again.cells == ws.cells
    assert write_ipynb(again) == out


# ------------------------------------------------------------------ constructed notebooks

def _notebook(cells, metadata=None, nbformat_minor=4):
    return json.dumps({'nbformat': 4, 'nbformat_minor': nbformat_minor,
                       'metadata': metadata or {}, 'cells': cells}).encode()


@pytest.mark.parametrize('kernelspec, system', [
    ({'name': 'sagemath', 'display_name': 'SageMath 10.4', 'language': 'sage'}, 'sage'),
    ({'name': 'sage_6_7_beta4', 'display_name': 'Sage 6.7', 'language': ''}, 'sage'),
    ({'name': 'python3', 'display_name': 'Python 3', 'language': 'python'}, 'python'),
    ({'name': 'ir', 'display_name': 'R', 'language': 'R'}, 'r'),
    ({'name': 'julia-1.10', 'display_name': 'Julia 1.10', 'language': 'julia'}, 'julia'),
    (None, 'sage'),
])
def test_system_from_kernelspec(kernelspec, system):
    metadata = {'kernelspec': kernelspec} if kernelspec else {}
    ws = read_ipynb(_notebook([], metadata), Limits())
    assert ws.system == system
    assert ws.extra.get('kernelspec') == kernelspec
    assert ws.name == 'Untitled'


def test_title_raw_cells_and_attachments():
    cells = [
        {'cell_type': 'raw', 'metadata': {}, 'source': ['\\begin{x}\n', 'raw']},
        {'cell_type': 'markdown', 'metadata': {}, 'source': '![a](attachment:a.png)',
         'attachments': {'a.png': {'image/png': 'iVBORw0KGgo='}}},
        {'cell_type': 'code', 'metadata': {}, 'source': 'print(1)', 'execution_count': None,
         'outputs': [{'output_type': 'stream', 'name': 'stdout', 'text': ['1\n', '2\n']},
                     {'output_type': 'weird', 'x': 1},
                     {'output_type': 'error', 'ename': 'E', 'evalue': 'v',
                      'traceback': ['line 1', 'line 2']},
                     {'output_type': 'display_data', 'metadata': {},
                      'data': {'application/json': {'a': [1, 2]},
                               'text/html': ['<b>', 'x</b>']}}]},
    ]
    ws = read_ipynb(_notebook(cells, {'title': 'My notebook'}), Limits(), 'fallback')
    assert ws.name == 'My notebook'
    assert [(c.type, c.format, c.input) for c in ws.cells[:2]] == [
        ('text', 'markdown', '\\begin{x}\nraw'),
        ('text', 'markdown', '![a](attachment:a.png)')]
    assert ws.cells[2].outputs == [
        {'output_type': 'stream', 'name': 'stdout', 'text': '1\n2\n'},
        {'output_type': 'error', 'ename': 'E', 'evalue': 'v',
         'traceback': ['line 1', 'line 2']},
        {'output_type': 'display_data', 'metadata': {},
         'data': {'application/json': {'a': [1, 2]}, 'text/html': '<b>x</b>'}}]
    assert ws.cells[2].execution_count is None


def test_nbformat_3_is_upgraded():
    v3 = nbformat.v3
    nb = v3.new_notebook(metadata=v3.new_metadata(name='Old notebook'), worksheets=[
        v3.new_worksheet(cells=[
            v3.new_text_cell('markdown', source='# Hello'),
            v3.new_code_cell(input='plot(x)', prompt_number=3, outputs=[
                v3.new_output('pyout', output_text='2', prompt_number=3),
                v3.new_output('stream', output_text='hi\n', stream='stdout'),
                v3.new_output('display_data', output_png='iVBORw0KGgo=')]),
            v3.new_heading_cell('Part', level=2),
        ])])
    data = nbformat.v3.writes_json(nb).encode()
    ws = read_ipynb(data, Limits(), 'fallback')
    assert ws.name == 'Old notebook'
    assert [c.type for c in ws.cells] == ['text', 'compute', 'text']
    assert ws.cells[2].input == '## Part'
    code = ws.cells[1]
    assert code.input == 'plot(x)'
    assert code.execution_count == 3
    assert code.outputs == [
        {'output_type': 'execute_result', 'execution_count': 3, 'metadata': {},
         'data': {'text/plain': '2'}},
        {'output_type': 'stream', 'name': 'stdout', 'text': 'hi\n'},
        {'output_type': 'display_data', 'metadata': {},
         'data': {'image/png': 'iVBORw0KGgo='}}]


def test_write_normalises_outputs():
    png = {'output_type': 'display_data', 'data': {'image/png': 'iVBORw0KGgo=\n'},
           'metadata': {'sagenb': {'file': 'sage0.png'}}}
    ws = WorksheetData(name='Normalised', system='sage', typeset=True, cells=[
        CellData(type='text', input='<h1>Title</h1><p>html from sagenb</p>', format='html'),
        CellData(type='compute', input='2+2', execution_count=7, files={'a.txt': b'x'},
                 outputs=[
                     {'output_type': 'execute_result', 'data': {'text/plain': ['4']}},
                     {'output_type': 'display_data', 'data': {'text/html': ['<i>', 'x</i>']}},
                     png,
                     {'output_type': 'stream', 'text': 'no name'},
                     {'output_type': 'error', 'ename': 'E', 'evalue': 'x',
                      'traceback': 'one string'},
                     {'output_type': 'javascript', 'data': {}},
                     'not even a dict',
                 ]),
        CellData(type='compute', input='', execution_count=None,
                 outputs=[{'output_type': 'execute_result', 'data': {'text/plain': '1'},
                           'metadata': {}}]),
    ])
    out = write_ipynb(ws)
    written = json.loads(out)
    nbformat.validate(written)
    assert written['metadata']['sagenb'] == {'typeset': True}
    assert [c['cell_type'] for c in written['cells']] == ['markdown', 'code', 'code']
    assert ''.join(written['cells'][0]['source']) == ws.cells[0].input

    back = read_ipynb(out, Limits())
    assert back.name == 'Normalised'
    assert back.typeset is True
    assert back.cells[0] == CellData(type='text', input=ws.cells[0].input,
                                     format='markdown')
    assert back.cells[1].files == {}
    assert back.cells[1].execution_count == 7
    assert back.cells[1].outputs == [
        {'output_type': 'execute_result', 'data': {'text/plain': '4'}, 'metadata': {},
         'execution_count': 7},
        {'output_type': 'display_data', 'data': {'text/html': '<i>x</i>'}, 'metadata': {}},
        png,
        {'output_type': 'stream', 'name': 'stdout', 'text': 'no name'},
        {'output_type': 'error', 'ename': 'E', 'evalue': 'x', 'traceback': ['one string']},
    ]
    assert back.cells[2].outputs[0]['execution_count'] is None


@pytest.mark.parametrize('system, kernel, sagenb_system', [
    ('sage', 'sagemath', None),
    ('python', 'python3', None),
    ('gap', 'sagemath', 'gap'),
    ('r', 'sagemath', 'r'),
])
def test_write_kernelspec_and_system_round_trip(system, kernel, sagenb_system):
    ws = WorksheetData(name='S', system=system,
                       cells=[CellData(type='compute', input='1')])
    written = json.loads(write_ipynb(ws))
    nbformat.validate(written)
    assert written['metadata']['kernelspec']['name'] == kernel
    assert written['metadata'].get('sagenb', {}).get('system') == sagenb_system
    assert read_ipynb(write_ipynb(ws), Limits()).system == system


def test_empty_worksheet():
    out = write_ipynb(WorksheetData(name='Empty'))
    nbformat.validate(json.loads(out))
    ws = read_ipynb(out, Limits())
    assert (ws.name, ws.cells) == ('Empty', [])


# ------------------------------------------------------------------ refused files

@pytest.mark.parametrize('data, message', [
    (b'', 'empty'),
    (b'  \n', 'empty'),
    (b'this is not json', 'not valid JSON'),
    (b'{"nbformat": 4, "cells": [', 'not valid JSON'),
    (b'\xff\xfe{\x00}\x00', 'not UTF-8'),
    (b'[1, 2, 3]', 'not a Jupyter notebook'),
    (b'{"name": "x", "cells": []}', 'not a Jupyter notebook'),
    (b'"just a string"', 'not a Jupyter notebook'),
    (b'{"nbformat": "4", "cells": []}', 'not a number'),
    (b'{"nbformat": 99, "nbformat_minor": 0, "cells": []}', 'version 99'),
    (b'{"nbformat": 2, "nbformat_minor": 0, "worksheets": []}', 'version 2'),
    (b'{"nbformat": 4, "nbformat_minor": 4, "metadata": {}}', 'no list of cells'),
    (b'{"nbformat": 4, "nbformat_minor": 4, "cells": {}}', 'no list of cells'),
    (b'{"nbformat": 3, "nbformat_minor": 0, "metadata": {}}', 'no list of worksheets'),
    (b'{"nbformat": 3, "nbformat_minor": 0, "worksheets": [7]}', 'damaged'),
    (b'{"nbformat": 4, "nbformat_minor": 4, "cells": [7]}', 'damaged'),
    (b'{"nbformat": 4, "nbformat_minor": 4, "cells": [{"cell_type": "code", "source": 5}]}',
     'source is not text'),
    (b'{"nbformat": 4, "nbformat_minor": 4, "cells": [{"cell_type": "code", "outputs": 5}]}',
     'outputs are not a list'),
    (b'{"nbformat": 4, "nbformat_minor": 4, "cells": [{"cell_type": "video"}]}',
     'unknown type'),
    (b'[' * 100000 + b']' * 100000, 'nested too deeply'),
])
def test_bad_files_are_refused(data, message):
    with pytest.raises(FormatError, match=message):
        read_ipynb(data, Limits())


def test_too_large_is_refused():
    data = _notebook([{'cell_type': 'markdown', 'metadata': {}, 'source': 'x' * 5000}])
    assert read_ipynb(data, Limits(max_bytes=len(data))).cells[0].input == 'x' * 5000
    with pytest.raises(FormatError, match='too large.*limit is 4.0 KiB'):
        read_ipynb(data, Limits(max_bytes=4096))


def test_damaged_outputs_are_repaired_not_refused():
    cells = [{'cell_type': 'code', 'source': 'x', 'execution_count': True,
              'outputs': [7, None, {'output_type': 'display_data', 'data': 'not a dict'},
                          {'output_type': 'execute_result', 'data': {'text/plain': 3,
                                                                     'text/html': 'ok'}},
                          {'no output_type': 1}]},
             {'cell_type': 'markdown', 'source': ['a', 'b']}]
    ws = read_ipynb(json.dumps({'nbformat': 4, 'nbformat_minor': 0, 'cells': cells,
                                'metadata': 'not a dict'}).encode(), Limits())
    assert ws.cells[0].execution_count is None
    assert ws.cells[0].outputs == [
        {'output_type': 'display_data', 'data': {}, 'metadata': {}},
        {'output_type': 'execute_result', 'data': {'text/html': 'ok'}, 'metadata': {},
         'execution_count': None}]
    assert ws.cells[1].input == 'ab'
    nbformat.validate(json.loads(write_ipynb(ws)))
