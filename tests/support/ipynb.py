"""Jupyter notebooks written by the tests: one with what round trips must keep (slides,
locks, tags, collapsed state, unknown keys, a PNG and an SVG attachment), a real PNG made
with the standard library, and the normalised form two notebooks are compared in.
"""
import base64
import copy
import json
import struct
import zlib

import nbformat

# The notebook's own metadata keys (the worksheet holds them), left out of comparisons.
OWN_METADATA = ('title', 'sagenb', 'kernelspec', 'language_info')


def png_bytes(width=4, height=3, rgb=(200, 30, 30)):
    """A real PNG image (solid colour) of ``width`` x ``height`` pixels."""
    def chunk(kind, data):
        return (struct.pack('>I', len(data)) + kind + data
                + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff))
    rows = b''.join(b'\x00' + bytes(rgb) * width for _ in range(height))
    return (b'\x89PNG\r\n\x1a\n'
            + chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0))
            + chunk(b'IDAT', zlib.compress(rows)) + chunk(b'IEND', b''))


# An SVG whose script would run if it were ever opened in the notebook's origin.
SVG_WITH_SCRIPT = (b'<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20">'
                   b'<script>document.title = "svg script ran"</script>'
                   b'<rect width="20" height="20" fill="blue"/></svg>')


def b64(content):
    return base64.b64encode(content).decode('ascii')


def fidelity_notebook():
    """A notebook (dict, nbformat 4.5) with everything a round trip must keep."""
    return {
        'nbformat': 4, 'nbformat_minor': 5,
        'metadata': {
            'kernelspec': {'name': 'sagemath', 'display_name': 'SageMath 10.4',
                           'language': 'sage'},
            'language_info': {'name': 'sage'},
            'celltoolbar': 'Slideshow',
            'rise': {'theme': 'sky', 'transition': 'zoom', 'scroll': True},
            'authors': [{'name': 'Ada'}],
            'x_unknown': {'nested': [1, 2, {'deep': None}], 'flag': False},
        },
        'cells': [
            {'cell_type': 'markdown', 'id': 'title-slide',
             'metadata': {'slideshow': {'slide_type': 'slide'}, 'tags': ['intro'],
                          'editable': False, 'deletable': False,
                          'x_cell_unknown': {'keep': 'me'}},
             'source': '# Pasted\n\n![the plot](attachment:image.png) and '
                       '<img src="attachment:drawing.svg" alt="drawing">',
             'attachments': {'image.png': {'image/png': b64(png_bytes())},
                             'drawing.svg': {'image/svg+xml': b64(SVG_WITH_SCRIPT)}}},
            {'cell_type': 'code', 'id': 'compute-1', 'execution_count': 1,
             'metadata': {'slideshow': {'slide_type': 'fragment'}, 'collapsed': True,
                          'scrolled': 'auto', 'tags': ['hide-input', 'x'],
                          'jupyter': {'source_hidden': True, 'outputs_hidden': False},
                          'editable': False},
             'source': 'factor(2^64-1)',
             'outputs': [{'output_type': 'execute_result', 'execution_count': 1,
                          'metadata': {},
                          'data': {'text/plain': '3 * 5 * 17 * 257 * 641 * 65537 * 6700417'}}]},
            {'cell_type': 'markdown', 'id': 'notes',
             'metadata': {'slideshow': {'slide_type': 'notes'}, 'collapsed': False},
             'source': 'Speaker notes, with a file name with a blank: '
                       '![shot](attachment:screen%20shot.png)',
             'attachments': {'screen shot.png': {'image/png': b64(png_bytes(2, 2))}}},
            {'cell_type': 'code', 'id': 'compute-2', 'execution_count': None,
             'metadata': {'deletable': False, 'slideshow': {'slide_type': 'skip'}},
             'source': '', 'outputs': []},
        ],
    }


def dumps(nb):
    return json.dumps(nb).encode('utf-8')


def normalised(nb):
    """A notebook (bytes, str or dict) as nbformat reads it, for comparing round trips:
    the cells without their ids, and the notebook's metadata without its own keys."""
    if isinstance(nb, bytes):
        nb = nb.decode('utf-8')
    node = nbformat.reads(nb if isinstance(nb, str) else json.dumps(nb), as_version=4)
    plain = json.loads(json.dumps(node))
    cells = []
    for cell in plain['cells']:
        cell = copy.deepcopy(cell)
        cell.pop('id', None)
        if not cell.get('attachments'):
            cell.pop('attachments', None)
        cells.append(cell)
    metadata = {k: v for k, v in plain['metadata'].items() if k not in OWN_METADATA}
    return {'metadata': metadata, 'cells': cells}
