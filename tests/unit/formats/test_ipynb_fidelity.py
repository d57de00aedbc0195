"""What a round trip through ``formats/ipynb.py`` keeps: cell attachments and the
metadata of the notebook and its cells (issue 22, "Round trips keep what people put in").

Each round trip is compared with nbformat's own reading of both notebooks (normalised:
cell ids, which the export numbers, and the notebook's own keys, which the worksheet
holds, left out), on the real fixture notebooks and on notebooks written here.
"""
import base64
import json

import nbformat
import pytest

from sagenb_pyramid.formats import CellData, FormatError, Limits, WorksheetData
from sagenb_pyramid.formats.ipynb import read_ipynb, write_ipynb

from ...support.fixtures_path import fixture_names, fixture_path
from ...support.ipynb import (
    SVG_WITH_SCRIPT, b64, dumps, fidelity_notebook, normalised, png_bytes)


def round_trip(content):
    return write_ipynb(read_ipynb(content, Limits(), fallback_name='Round trip'))


@pytest.mark.parametrize('name', fixture_names('ipynb', '*.ipynb'))
def test_fixture_round_trip_keeps_cells_and_metadata(name):
    content = fixture_path('ipynb', name).read_bytes()
    out = round_trip(content)
    nbformat.validate(json.loads(out))
    assert normalised(out) == normalised(content)


def test_fixtures_have_cell_metadata():
    """The fixture round trips above compare metadata: some fixture has editable,
    deletable and collapsed keys (kalvotom_uvod_do_sage.ipynb), so they check something."""
    keys = set()
    for name in fixture_names('ipynb', '*.ipynb'):
        nb = json.loads(fixture_path('ipynb', name).read_bytes())
        keys.update(k for cell in nb['cells'] for k in cell.get('metadata', {}))
    assert {'editable', 'deletable', 'collapsed'} <= keys


def test_synthetic_round_trip_is_exact():
    original = fidelity_notebook()
    out = round_trip(dumps(original))
    written = json.loads(out)
    nbformat.validate(written)
    assert normalised(out) == normalised(original)
    # The notebook's unknown keys and the cells' come back as they were, not only equal
    # after normalisation.
    for key in ('celltoolbar', 'rise', 'authors', 'x_unknown'):
        assert written['metadata'][key] == original['metadata'][key]
    for cell, before in zip(written['cells'], original['cells'], strict=True):
        assert cell['metadata'] == before['metadata']
        # nbformat writes text types (the SVG's base64) as a list of lines.
        assert _joined(cell.get('attachments')) == before.get('attachments')


def _joined(attachments):
    if attachments is None:
        return None
    return {name: {mime: ''.join(value) if isinstance(value, list) else value
                   for mime, value in bundle.items()}
            for name, bundle in attachments.items()}


def test_attachments_are_read_as_bytes():
    ws = read_ipynb(dumps(fidelity_notebook()), Limits())
    first = ws.cells[0]
    assert first.attachments == {'image.png': {'image/png': png_bytes()},
                                 'drawing.svg': {'image/svg+xml': SVG_WITH_SCRIPT}}
    assert first.metadata['editable'] is False
    assert ws.cells[2].attachments == {'screen shot.png': {'image/png': png_bytes(2, 2)}}
    assert ws.metadata['rise'] == {'theme': 'sky', 'transition': 'zoom', 'scroll': True}
    # The worksheet's own keys are not kept twice.
    assert 'kernelspec' not in ws.metadata and 'title' not in ws.metadata
    assert ws.notes == []


def test_base64_with_line_breaks_and_lists_is_read():
    nb = fidelity_notebook()
    wrapped = b64(png_bytes(30, 30))
    lines = [wrapped[i:i + 76] + '\n' for i in range(0, len(wrapped), 76)]
    nb['cells'][0]['attachments'] = {'a.png': {'image/png': lines}}
    ws = read_ipynb(dumps(nb), Limits())
    assert ws.cells[0].attachments == {'a.png': {'image/png': png_bytes(30, 30)}}


def _with_attachment(name, bundle, cell_type='markdown'):
    nb = fidelity_notebook()
    nb['cells'][2]['attachments'] = {name: bundle}
    if cell_type != 'markdown':
        nb['cells'][2]['cell_type'] = cell_type
    return dumps(nb)


@pytest.mark.parametrize('bundle, message', [
    ({'image/png': 'not base64 at all!'}, 'data is not base64'),
    ({'image/png': b64(png_bytes())[:-3]}, 'data is not base64'),
    ({'image png': b64(png_bytes())}, 'is not a mime type'),
    ({'': b64(png_bytes())}, 'is not a mime type'),
    ({'image/png': b64(b'GIF89a not a png')}, 'says image/png but is not a PNG image'),
    ({'image/jpeg': b64(png_bytes())}, 'says image/jpeg but is not a JPEG image'),
    ({'image/svg+xml': b64(b'<html><script>x</script></html>')},
     'is not an SVG image (no <svg> element)'),
    ({'image/svg+xml': b64(b'\xff\xfe<svg>')}, 'not UTF-8 text'),
    ({'image/png': 12}, 'data is not text'),
    ({}, 'not an object of mime types'),
    ('image/png', 'not an object of mime types'),
])
def test_malformed_attachments_are_refused(bundle, message):
    with pytest.raises(FormatError) as caught:
        read_ipynb(_with_attachment('bad.png', bundle), Limits())
    text = str(caught.value)
    assert text.startswith('Cell 3 of the notebook has an attachment "bad.png"')
    assert message in text
    assert caught.value.status == 400


def test_attachments_that_are_no_object_are_refused():
    nb = fidelity_notebook()
    nb['cells'][0]['attachments'] = ['image.png']
    with pytest.raises(FormatError, match='Cell 1 of the notebook'):
        read_ipynb(dumps(nb), Limits())


def test_other_mime_types_are_kept_as_bytes():
    content = read_ipynb(_with_attachment('notes.txt', {'text/plain': b64(b'plain\n')}),
                         Limits())
    assert content.cells[2].attachments == {'notes.txt': {'text/plain': b'plain\n'}}
    written = json.loads(write_ipynb(content))
    assert _joined(written['cells'][2]['attachments']) == \
        {'notes.txt': {'text/plain': b64(b'plain\n')}}


def test_a_code_cells_attachments_are_left_out_with_a_note():
    nb = fidelity_notebook()
    nb['cells'][1]['attachments'] = {'a.png': {'image/png': b64(png_bytes())}}
    ws = read_ipynb(dumps(nb), Limits())
    assert ws.cells[1].attachments == {}
    assert ws.notes == ['cell 2: the attachments of a code cell were left out (only '
                        'markdown cells have attachments)']
    nbformat.validate(json.loads(write_ipynb(ws)))


def test_metadata_that_breaks_the_schema_is_dropped_with_a_note():
    nb = fidelity_notebook()
    nb['cells'][1]['metadata'].update(tags='not a list', scrolled='sideways')
    nb['metadata']['authors'] = 'Ada'
    ws = read_ipynb(dumps(nb), Limits())
    assert 'tags' not in ws.cells[1].metadata and 'scrolled' not in ws.cells[1].metadata
    assert ws.cells[1].metadata['slideshow'] == {'slide_type': 'fragment'}
    assert 'authors' not in ws.metadata and ws.metadata['rise']['theme'] == 'sky'
    assert ws.notes == [
        'the notebook: the metadata "authors" was left out: its value breaks the notebook '
        'format',
        'cell 2: the metadata "scrolled" was left out: its value breaks the notebook format',
        'cell 2: the metadata "tags" was left out: its value breaks the notebook format']
    nbformat.validate(json.loads(write_ipynb(ws)))


def test_export_leaves_out_metadata_invalid_for_a_changed_cell_type():
    """A text cell made a compute cell keeps its metadata where the schema allows it."""
    ws = WorksheetData(name='Changed', cells=[
        CellData(type='compute', input='1', metadata={'scrolled': 'sideways', 'tags': ['a']}),
        CellData(type='text', input='![x](attachment:x.png)',
                 attachments={'x.png': {'image/png': png_bytes()}},
                 metadata={'tags': 'not a list', 'slideshow': {}})])
    written = json.loads(write_ipynb(ws))
    nbformat.validate(written)
    assert written['cells'][0]['metadata'] == {'tags': ['a']}
    assert written['cells'][1]['metadata'] == {'slideshow': {}}
    assert base64.b64decode(written['cells'][1]['attachments']['x.png']['image/png']) == \
        png_bytes()


def test_own_keys_come_from_the_worksheet():
    nb = fidelity_notebook()
    nb['metadata']['title'] = 'Old title'
    nb['metadata']['sagenb'] = {'typeset': True, 'x': 1}
    ws = read_ipynb(dumps(nb), Limits())
    ws.name, ws.typeset = 'New title', False
    written = json.loads(write_ipynb(ws))
    assert written['metadata']['title'] == 'New title'
    assert 'sagenb' not in written['metadata']
    assert written['metadata']['kernelspec']['name'] == 'sagemath'


def test_raw_cells_become_markdown_and_keep_their_metadata():
    """Raw cells are text cells here (as before): their type changes on the way back, the
    rest of them is kept."""
    nb = fidelity_notebook()
    nb['cells'].append({'cell_type': 'raw', 'id': 'r', 'source': '\\begin{x}',
                        'metadata': {'format': 'text/latex', 'tags': ['raw']},
                        'attachments': {'r.png': {'image/png': b64(png_bytes())}}})
    written = json.loads(round_trip(dumps(nb)))
    nbformat.validate(written)
    last = written['cells'][-1]
    assert last['cell_type'] == 'markdown'
    assert last['metadata'] == {'format': 'text/latex', 'tags': ['raw']}
    assert last['attachments'] == {'r.png': {'image/png': b64(png_bytes())}}
