"""Jupyter cell attachments and notebook metadata through the application (issue 22):
an import keeps them, ``cells/<id>/attachments/<name>`` serves an attachment as data
files are served (sandboxing CSP, nosniff), to whoever may view the worksheet or its
publication, ``download.ipynb`` writes both back, they count in the storage quota, and a
malformed or too large attachment is refused with nothing created.  Jupyter's locks
(``editable``/``deletable``: false) are kept by the API.
"""
import base64
import json
from urllib.parse import quote

import nbformat
import pytest

from sagenb_pyramid.web import FILE_CSP

from ...support.fixtures_path import fixture_names, fixture_path
from ...support.ipynb import (
    SVG_WITH_SCRIPT, b64, dumps, fidelity_notebook, normalised, png_bytes)
from ...support.notebook import Api, Notebook


@pytest.fixture
def alice(notebook, testapp):
    notebook.add_user('alice')
    return Api(testapp, notebook.token('alice'))


def upload(api, filename, content, status='*', login='alice'):
    return api.testapp.post('/home/%s/import' % login, upload_files=[('file', filename, content)],
                            headers=api.headers, status=status)


def imported(api, content=None, login='alice'):
    res = upload(api, 'slides.ipynb', content or dumps(fidelity_notebook()), status=201,
                 login=login)
    [created] = res.json['worksheets']
    return api.get(created['url'])


def storage(notebook, login='alice'):
    with notebook.transaction() as root:
        user = root.user_by_login(login)
        return user.storage_used(), len(user.worksheets())


# --- serving --------------------------------------------------------------------------

def test_import_keeps_attachments_and_serves_them_with_the_file_headers(alice):
    ws = imported(alice)
    first, _, notes, _ = ws['cells']
    assert first['type'] == 'text'
    assert first['attachments'] == ['drawing.svg', 'image.png']
    assert notes['attachments'] == ['screen shot.png']
    assert first['editable'] is False and first['deletable'] is False

    base = ws['url'] + 'cells/%d/attachments/' % first['id']
    png = alice.testapp.get(base + 'image.png', headers=alice.headers, status=200)
    assert png.body == png_bytes()
    assert png.content_type == 'image/png'
    assert png.headers['Content-Security-Policy'] == FILE_CSP
    assert png.headers['X-Content-Type-Options'] == 'nosniff'

    svg = alice.testapp.get(base + 'drawing.svg', headers=alice.headers, status=200)
    assert svg.body == SVG_WITH_SCRIPT
    assert svg.content_type == 'image/svg+xml'
    # Opened directly, the SVG is a sandboxed document with no script: its <script>
    # cannot run in the notebook's origin.
    assert svg.headers['Content-Security-Policy'] == FILE_CSP
    assert 'sandbox' in FILE_CSP and "script-src" not in FILE_CSP
    assert "default-src 'none'" in FILE_CSP
    assert svg.headers['Content-Disposition'].startswith('attachment;')

    shot = alice.testapp.get(ws['url'] + 'cells/%d/attachments/%s'
                             % (notes['id'], quote('screen shot.png')),
                             headers=alice.headers, status=200)
    assert shot.body == png_bytes(2, 2)


def test_unknown_attachments_are_404(alice):
    ws = imported(alice)
    first, code = ws['cells'][0], ws['cells'][1]
    for path in ('cells/%d/attachments/nope.png' % first['id'],
                 'cells/%d/attachments/' % first['id'],
                 'cells/%d/attachments/image.png' % code['id']):
        res = alice.testapp.get(ws['url'] + path, headers=alice.headers, status=404)
        assert 'no attachment' in res.json['error']


def test_who_may_read_an_attachment(notebook, testapp, alice):
    notebook.add_user('bob')
    notebook.add_user('vera')
    ws = imported(alice)
    path = ws['url'] + 'cells/%d/attachments/image.png' % ws['cells'][0]['id']
    bob = Api(testapp, notebook.token('bob'))
    vera = Api(testapp, notebook.token('vera'))
    # Not shared: as if it did not exist; anonymous: log in first.
    testapp.get(path, headers=bob.headers, status=404)
    testapp.get(path, headers={'Accept': 'application/json'}, status=401)
    alice.put(ws['url'] + 'sharing', {'collaborators': [], 'viewers': ['vera']}, status=200)
    assert testapp.get(path, headers=vera.headers, status=200).body == png_bytes()


def test_published_attachments_are_public_with_the_same_headers(testapp, alice):
    ws = imported(alice)
    publication = alice.post(ws['url'] + 'publish', {}, status=200)
    url = publication['url']
    page = testapp.get(url, headers={'Accept': 'application/json'}, status=200).json
    first = page['cells'][0]
    assert first['attachments'] == ['drawing.svg', 'image.png']
    base = url + 'cells/%d/attachments/' % first['id']
    svg = testapp.get(base + 'drawing.svg', status=200)
    assert svg.body == SVG_WITH_SCRIPT
    assert svg.headers['Content-Security-Policy'] == FILE_CSP
    assert svg.headers['X-Content-Type-Options'] == 'nosniff'
    assert testapp.get(base + 'image.png', status=200).body == png_bytes()
    testapp.get(base + 'other.png', status=404)


def test_a_copy_keeps_attachments_and_metadata(alice):
    ws = imported(alice)
    twin = alice.post(ws['url'] + 'copy', {}, status=201)
    copy = alice.get(twin['url'])
    first = copy['cells'][0]
    assert first['attachments'] == ['drawing.svg', 'image.png']
    res = alice.testapp.get(copy['url'] + 'cells/%d/attachments/image.png' % first['id'],
                            headers=alice.headers, status=200)
    assert res.body == png_bytes()
    exported = alice.testapp.get(copy['url'] + 'download.ipynb', headers=alice.headers)
    assert normalised(exported.body) == normalised(fidelity_notebook())


# --- round trips ----------------------------------------------------------------------

def test_download_ipynb_writes_attachments_and_metadata_back(alice):
    original = fidelity_notebook()
    ws = imported(alice, dumps(original))
    res = alice.testapp.get(ws['url'] + 'download.ipynb', headers=alice.headers, status=200)
    written = json.loads(res.body)
    nbformat.validate(written)
    assert normalised(res.body) == normalised(original)
    assert written['metadata']['title'] == 'slides'
    # And once more through the application: the same notebook again.
    again = imported(alice, res.body)
    res2 = alice.testapp.get(again['url'] + 'download.ipynb', headers=alice.headers)
    assert normalised(res2.body) == normalised(original)


@pytest.mark.parametrize('name', fixture_names('ipynb', '*.ipynb'))
def test_fixture_notebooks_round_trip_through_the_database(alice, name):
    content = fixture_path('ipynb', name).read_bytes()
    ws = imported(alice, content)
    res = alice.testapp.get(ws['url'] + 'download.ipynb', headers=alice.headers, status=200)
    nbformat.validate(json.loads(res.body))
    expected = normalised(content)
    if not any(c['cell_type'] == 'code' for c in expected['cells']):
        # A worksheet keeps a compute cell: an import of text only gets an empty one.
        expected['cells'].append({'cell_type': 'code', 'execution_count': None,
                                  'metadata': {}, 'outputs': [], 'source': ''})
    assert normalised(res.body) == expected


# --- limits and malformed attachments -------------------------------------------------

def test_a_malformed_attachment_is_a_400_and_changes_nothing(notebook, alice):
    before = storage(notebook)
    nb = fidelity_notebook()
    nb['cells'][2]['attachments']['screen shot.png'] = {'image/png': b64(b'<svg/>')}
    res = upload(alice, 'bad.ipynb', dumps(nb), status=400)
    assert res.json['error'] == (
        'cannot import bad.ipynb: Cell 3 of the notebook has an attachment "screen shot.png" '
        'that says image/png but is not a PNG image.')
    nb['cells'][2]['attachments']['screen shot.png'] = {'image/png': 'a!!'}
    res = upload(alice, 'bad.ipynb', dumps(nb), status=400)
    assert 'is not base64' in res.json['error']
    assert storage(notebook) == before == (0, 0)


def test_an_attachment_with_a_bad_name_is_refused(notebook, alice):
    nb = fidelity_notebook()
    nb['cells'][2]['attachments'] = {'../x.png': {'image/png': b64(png_bytes())}}
    res = upload(alice, 'bad.ipynb', dumps(nb), status=400)
    assert 'the attachment "../x.png" of cell 3: not a usable name' in res.json['error']
    assert storage(notebook) == (0, 0)


def test_attachments_count_in_the_quota(tmp_path):
    import webtest
    nb = Notebook(tmp_path / 'quota', **{'sagenb.quota.user_mb': '1',
                                         'sagenb.data.max_mb': '4'})
    try:
        nb.add_user('alice')
        app = webtest.TestApp(nb.app, extra_environ={'HTTP_HOST': 'localhost:80'})
        api = Api(app, nb.token('alice'))
        small = imported(api)
        used, count = storage(nb)
        assert count == 1
        attachment_bytes = len(png_bytes()) + len(SVG_WITH_SCRIPT) + len(png_bytes(2, 2))
        assert used >= attachment_bytes
        # A 1.5 MB attachment passes the 1 MB quota: refused, nothing changes.
        big = fidelity_notebook()
        big['cells'][2]['attachments']['big.png'] = {
            'image/png': b64(png_bytes() + bytes(1536 * 1024))}
        res = upload(api, 'big.ipynb', dumps(big), status=413)
        assert 'storage quota' in res.json['error']
        assert storage(nb) == (used, 1)
        assert small['cells'][0]['attachments']
    finally:
        nb.close()


def test_an_attachment_past_the_file_limit_is_a_413(tmp_path):
    import webtest
    nb = Notebook(tmp_path / 'small', **{'sagenb.data.max_mb': '1'})
    try:
        nb.add_user('alice')
        app = webtest.TestApp(nb.app, extra_environ={'HTTP_HOST': 'localhost:80'})
        api = Api(app, nb.token('alice'))
        big = fidelity_notebook()
        big['cells'][0]['attachments']['image.png'] = {
            'image/png': b64(png_bytes() + bytes(1536 * 1024))}
        res = upload(api, 'big.ipynb', dumps(big), status=413)
        assert res.json['error'].startswith(
            'cannot import big.ipynb: the attachment "image.png" of cell 1 is 1.5 MB, larger '
            'than the limit of 1 MB for one file')
        assert storage(nb) == (0, 0)
    finally:
        nb.close()


# --- Jupyter's locks --------------------------------------------------------------------

def test_locked_cells_refuse_edits_and_deletion_until_unlocked(alice):
    ws = imported(alice)
    first, code = ws['cells'][0], ws['cells'][1]
    cell = ws['url'] + 'cells/%d' % first['id']
    res = alice.patch(cell, {'input': 'changed'}, status=409)
    assert res['error'] == ('cell %d is locked against editing: its notebook says '
                            '"editable": false. Unlock it first (the Unlock button, or '
                            '"editable": true).' % first['id'])
    assert alice.patch(cell, {'type': 'compute'}, status=409)['error'].startswith(
        'cell %d is locked against editing' % first['id'])
    res = alice.delete(cell, status=409)
    assert 'locked against deletion' in res['error']
    # Evaluating a locked compute cell is allowed; changing its input on the way is not.
    code_url = ws['url'] + 'cells/%d' % code['id']
    assert alice.post(code_url + '/evaluate', {'input': 'x'}, status=409)['error'] \
        .startswith('cell %d is locked against editing' % code['id'])
    assert alice.patch(cell, {'editable': 'no'}, status=400)['error'] == \
        '"editable" must be true or false'
    after = alice.get(cell)
    assert after['input'] == first['input'] and after['type'] == 'text'

    # Unlocking and editing in one request.
    done = alice.patch(cell, {'editable': True, 'input': 'changed'}, status=200)
    assert done['input'] == 'changed' and 'editable' not in done
    assert done['deletable'] is False
    assert alice.patch(cell, {'deletable': True}, status=200).get('deletable') is None
    # Locking again (as Jupyter's metadata editor can).
    assert alice.patch(cell, {'editable': False}, status=200)['editable'] is False
    exported = json.loads(alice.testapp.get(ws['url'] + 'download.ipynb',
                                            headers=alice.headers).body)
    metadata = exported['cells'][0]['metadata']
    assert metadata['editable'] is False and 'deletable' not in metadata
    assert metadata['tags'] == ['intro'] and metadata['x_cell_unknown'] == {'keep': 'me'}
    assert alice.delete(cell, status=200) == {'deleted': first['id']}


# --- the static exports -------------------------------------------------------------------

def test_the_html_file_and_the_print_view_show_attachments_inline(alice):
    """``download.html`` is one file: a text cell's pasted images are in it as ``data:``
    URLs (the print view draws the same cells); an unknown attachment shows nothing."""
    base = imported(alice)['url']
    png = base64.b64encode(png_bytes()).decode()
    small = base64.b64encode(png_bytes(2, 2)).decode()
    for path in ('download.html', 'print'):
        res = alice.testapp.get(base + path, headers=alice.headers)
        assert '<img src="data:image/png;base64,%s" alt="the plot">' % png in res.text, path
        assert 'src="data:image/png;base64,%s"' % small in res.text, path  # a blank in its name
        # The SVG (with its script) is an image, never markup of the page.
        assert 'src="data:image/svg+xml;base64,' in res.text, path
        assert '<svg' not in res.text and 'attachment:' not in res.text, path
