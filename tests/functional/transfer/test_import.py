"""Importing and exporting worksheets through the HTTP API, on the real fixture files.

Every ``.sws`` fixture is checked against a reading of the file written here, apart from
the application's reader: a regular expression over the body for the cells, the
standard library's pickle (the fixtures are trusted) for the title.
"""
import base64
import bz2
import io
import json
import os
import pickle
import re
import tarfile
import zipfile

import nbformat
import pytest
import webtest

from ...support.fixtures_path import fixture_names, fixture_path
from ...support.notebook import Api, Notebook
from ...support.sws import file_member, minimal_members, sws_with

SWS_FILES = fixture_names('sws', '*.sws')
IPYNB_FILES = fixture_names('ipynb', '*.ipynb')
EMPTY = 'days13_projects_sagenewbie_Ball_motion.sws'
CELL_RE = re.compile(r'^\{\{\{id=(-?\d+)\|[ \t]*\n(.*?)^\}\}\}[ \t]*$', re.M | re.S)


@pytest.fixture
def alice(notebook, testapp):
    notebook.add_user('alice')
    return Api(testapp, notebook.token('alice'))


def upload(api, filename, content, status='*', **fields):
    res = api.testapp.post('/home/alice/import', params=fields,
                           upload_files=[('file', filename, content)],
                           headers=api.headers, status=status)
    return res


def import_fixture(api, kind, name):
    content = fixture_path(kind, name).read_bytes()
    res = upload(api, name, content, status=201)
    [created] = res.json['worksheets']
    return api.get(created['url'])


def worksheet_count(notebook, login='alice'):
    with notebook.transaction() as root:
        return len(root.user_by_login(login).worksheets())


# --- an independent reading of a .sws --------------------------------------------------
class Independent:
    """What a .sws holds, read with the standard library only."""

    def __init__(self, content):
        tar = tarfile.open(fileobj=io.BytesIO(content), mode='r:bz2')
        self.members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()
                        if m.isfile()}
        html = 'sage_worksheet/worksheet.html'
        if html in self.members:
            self.prefix = 'sage_worksheet/'
            conf = pickle.loads(self.members['sage_worksheet/worksheet_conf.pickle'],
                                encoding='bytes')
            conf = {k.decode() if isinstance(k, bytes) else k: v for k, v in conf.items()}
            name = conf['name']
            self.title = name.decode('utf-8') if isinstance(name, bytes) else name
            self.typeset = bool(conf.get('pretty_print'))
            body = self.members[html].decode('utf-8')
        else:
            [txt] = [k for k in self.members if re.fullmatch(r'[^/]+/worksheet\.txt', k)]
            self.prefix = txt[:-len('worksheet.txt')]
            text = self.members[txt].decode('utf-8')
            self.title, _, body = text.split('\n', 2)
            self.typeset = False
        # Line ends are normalised (real files mix in CR LF); sagenb dropped the CRs too.
        body = body.replace('\r\n', '\n')
        self.cells = []
        for legacy_id, inner in CELL_RE.findall(body):
            if re.search(r'^///[ \t]*$', inner, re.M):
                cell_input, output = re.split(r'^///[ \t]*\n?', inner, maxsplit=1,
                                              flags=re.M)
            else:
                cell_input, output = inner, ''
            self.cells.append((int(legacy_id), cell_input.rstrip(), output))
        self.snapshots = [k for k in self.members if '/snapshots/' in k]
        self.data_files = {k.rsplit('/', 1)[1]: v for k, v in self.members.items()
                           if k.startswith(self.prefix + 'data/')}

    def cell_files(self, legacy_id):
        start = '%scells/%d/' % (self.prefix, legacy_id)
        return {k[len(start):]: v for k, v in self.members.items() if k.startswith(start)}


class NoGlobals(pickle.Unpickler):
    def find_class(self, module, name):
        raise AssertionError('the pickle refers to %s.%s' % (module, name))


def compute_cells(ws):
    return [c for c in ws['cells'] if c['type'] == 'compute']


def plain_text(outputs):
    parts = []
    for out in outputs:
        if out['output_type'] == 'stream':
            parts.append(out['text'])
        elif out['output_type'] == 'error':
            parts.append('\n'.join(out['traceback']))
        else:
            parts.extend(v for v in out.get('data', {}).values() if isinstance(v, str))
    return '\n'.join(parts)


@pytest.mark.parametrize('name', [n for n in SWS_FILES if n != EMPTY])
def test_every_sws_fixture_imports_whole(notebook, alice, name):
    content = fixture_path('sws', name).read_bytes()
    truth = Independent(content)
    ws = import_fixture(alice, 'sws', name)
    assert ws['name'] == (truth.title if truth.prefix == 'sage_worksheet/'
                          else truth.title.strip())
    assert ws['typeset'] == truth.typeset
    cells = compute_cells(ws)
    assert [c['input'] for c in cells] == [i for _, i, _ in truth.cells]
    seen_ids = set()
    for cell, (legacy_id, _, output) in zip(cells, truth.cells, strict=True):
        files = {} if legacy_id in seen_ids else truth.cell_files(legacy_id)
        seen_ids.add(legacy_id)
        images = {n for n in files if n.endswith('.png')}
        shown = {o['metadata']['sagenb']['file'] for o in cell['outputs']
                 if 'image/png' in o.get('data', {})}
        assert shown == images, 'cell %d: every image the cell wrote is shown' % legacy_id
        for out in cell['outputs']:
            if 'image/png' in out.get('data', {}):
                file_name = out['metadata']['sagenb']['file']
                assert base64.b64decode(out['data']['image/png']) == files[file_name]
        others = {n for n in files if not n.endswith('.png')}
        assert set(cell.get('files', [])) == others
        # Plain text of the output is kept (the first line outside <html> fragments).
        text = re.sub(r'<html>.*?</html>', '', output, flags=re.S).strip()
        if text:
            assert text.splitlines()[0] in plain_text(cell['outputs'])
        if 'math/tex' in output:
            assert any('text/latex' in o.get('data', {}) for o in cell['outputs'])
        if not output.strip() and not files:
            assert cell['outputs'] == [] and cell['status'] == 'new'
    assert {f['name'] for f in ws['data_files']} == set(truth.data_files)
    for f in ws['data_files']:
        assert alice.testapp.get(f['url'], headers=alice.headers).body == \
            truth.data_files[f['name']]
    for cell in cells:
        for file_name in cell.get('files', []):
            res = alice.testapp.get('%scells/%d/files/%s' % (ws['url'], cell['id'], file_name),
                                    headers=alice.headers)
            assert res.headers['Content-Security-Policy'].startswith('sandbox')
    if truth.snapshots:
        revisions = alice.get(ws['url'] + 'revisions')['revisions']
        assert len(revisions) == len(truth.snapshots)
        first = alice.get(revisions[0]['url'])
        assert '{{{' in first['body']


def same_cells(a, b):
    def key(ws):
        return [(c['type'], c['input'], c['outputs'], c.get('files', []), c.get('format'))
                for c in ws['cells']]
    return key(a) == key(b)


@pytest.mark.parametrize('name', [n for n in SWS_FILES if n != EMPTY])
def test_sws_round_trip(notebook, alice, name):
    first = import_fixture(alice, 'sws', name)
    exported = alice.testapp.get(first['url'] + 'download.sws', headers=alice.headers)
    assert exported.content_type == 'application/x-bzip2'
    assert 'attachment' in exported.headers['Content-Disposition']
    # What the legacy notebook needs: the 2010 layout, a plain protocol-2 pickle.
    members = Independent(exported.body).members
    assert {'sage_worksheet/worksheet_conf.pickle', 'sage_worksheet/worksheet.html',
            'sage_worksheet/worksheet.txt'} <= set(members)
    conf_pickle = members['sage_worksheet/worksheet_conf.pickle']
    assert conf_pickle[:2] == b'\x80\x02'
    conf = NoGlobals(io.BytesIO(conf_pickle)).load()
    assert conf['name'] == first['name'] and conf['system'] == first['system']
    again = upload(alice, 'again.sws', exported.body, status=201).json['worksheets'][0]
    second = alice.get(again['url'])
    assert second['name'] == first['name']
    assert second['typeset'] == first['typeset'] and second['system'] == first['system']
    assert same_cells(first, second)
    assert [(f['name'], f['size']) for f in second['data_files']] == \
        [(f['name'], f['size']) for f in first['data_files']]


@pytest.mark.parametrize('name', [n for n in SWS_FILES if n != EMPTY][:6])
def test_ipynb_export_is_valid_and_keeps_the_cells(notebook, alice, name):
    ws = import_fixture(alice, 'sws', name)
    res = alice.testapp.get(ws['url'] + 'download.ipynb', headers=alice.headers)
    nb = nbformat.reads(res.body.decode('utf-8'), as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == 'sagemath'
    code = [c for c in nb.cells if c.cell_type == 'code']
    assert [c.source for c in code] == [c['input'] for c in compute_cells(ws)]
    images = sum('image/png' in o.get('data', {}) for c in code for o in c.outputs)
    assert images == sum('image/png' in o.get('data', {}) for c in compute_cells(ws)
                         for o in c['outputs'])
    markdown = [c for c in nb.cells if c.cell_type == 'markdown']
    assert len(markdown) == len([c for c in ws['cells'] if c['type'] == 'text'])


@pytest.mark.parametrize('name', IPYNB_FILES)
def test_every_ipynb_fixture_imports_and_round_trips(notebook, alice, name):
    raw = json.loads(fixture_path('ipynb', name).read_text('utf-8'))
    ws = import_fixture(alice, 'ipynb', name)
    code = [c for c in raw['cells'] if c['cell_type'] == 'code']
    # A worksheet keeps one compute cell (as in sagenb): one is added after text only.
    expected = [''.join(c['source']) for c in code] or ['']
    assert [c['input'] for c in compute_cells(ws)] == expected
    assert len([c for c in ws['cells'] if c['type'] == 'text']) == \
        len([c for c in raw['cells'] if c['cell_type'] != 'code'])
    for cell, source in zip(compute_cells(ws)[:len(code)], code, strict=True):
        raw_images = sum('image/png' in o.get('data', {}) for o in source.get('outputs', []))
        assert sum('image/png' in o.get('data', {}) for o in cell['outputs']) == raw_images
    exported = alice.testapp.get(ws['url'] + 'download.ipynb', headers=alice.headers)
    nbformat.validate(nbformat.reads(exported.body.decode('utf-8'), as_version=4))
    again = upload(alice, 'again.ipynb', exported.body, status=201).json['worksheets'][0]
    assert same_cells(ws, alice.get(again['url']))


def test_empty_file_is_refused_and_nothing_created(notebook, alice):
    content = fixture_path('sws', EMPTY).read_bytes()
    assert content == b''
    res = upload(alice, EMPTY, content, status=400)
    assert 'empty' in res.json['error']
    assert worksheet_count(notebook) == 0


def test_plain_text_worksheet(notebook, alice):
    text = ('My title\nsystem:gp\n\n<p>Intro $x^2$</p>\n\n{{{id=3|\n2+2\n///\n4\n}}}\n\n'
            '{{{id=4|\nfactor(6)\n///\n}}}\n')
    [created] = upload(alice, 'w.txt', text.encode(), status=201).json['worksheets']
    ws = alice.get(created['url'])
    assert ws['name'] == 'My title' and ws['system'] == 'gp'
    assert [(c['type'], c['input']) for c in ws['cells']] == [
        ('text', '<p>Intro $x^2$</p>'), ('compute', '2+2'), ('compute', 'factor(6)')]
    assert ws['cells'][0]['format'] == 'html'
    assert ws['cells'][1]['outputs'] == [{'output_type': 'stream', 'name': 'stdout',
                                          'text': '4'}]


def test_delimiters_count_only_alone_on_a_line(notebook, alice):
    text = ('T\n{{{id=0|\nlatex(x)\n///\n<html><script type="math/tex">{{{x}}}</script></html>'
            '\n}}}\n{{{id=1|\nprint("}}} not an end")\n///\n}}} not an end\n}}}\n')
    [created] = upload(alice, 't.txt', text.encode(), status=201).json['worksheets']
    cells = alice.get(created['url'])['cells']
    assert [c['input'] for c in cells] == ['latex(x)', 'print("}}} not an end")']
    assert cells[0]['outputs'][0]['data'] == {'text/latex': '${{{x}}}$'}
    assert cells[1]['outputs'][0]['text'] == '}}} not an end'


def test_name_field_and_zip_of_several(notebook, alice):
    sws = fixture_path('sws', 'days66_Automata_and_Transducers_in_SageMath.sws')
    nb = fixture_path('ipynb', 'kalvotom_mathjax.ipynb')
    one = upload(alice, 'a.sws', sws.read_bytes(), status=201, name='Renamed').json
    assert one['worksheets'][0]['name'] == 'Renamed'
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, 'w') as z:
        z.writestr('dir/a.sws', sws.read_bytes())
        z.writestr('b.ipynb', nb.read_bytes())
        z.writestr('c.txt', 'Third\n{{{id=0|\n1+1\n///\n2\n}}}\n')
        z.writestr('__MACOSX/dir/._a.sws', b'\x00\x05junk')
        z.writestr('README.md', 'not a worksheet')
    res = upload(alice, 'many.zip', buffer.getvalue(), status=201).json
    assert sorted(w['name'] for w in res['worksheets']) == sorted(
        ['Automata&Transducers SageDays66', 'Third', 'b'])
    assert [s['file'] for s in res['skipped']] == ['README.md']
    assert worksheet_count(notebook) == 4


def test_one_bad_member_refuses_the_whole_zip(notebook, alice):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, 'w') as z:
        z.writestr('good.txt', 'Good\n{{{id=0|\n1\n///\n}}}\n')
        z.writestr('bad.sws', b'this is not bzip2')
    res = upload(alice, 'mixed.zip', buffer.getvalue(), status=400).json
    assert 'bad.sws' in res['error'] and 'not a Sage worksheet' in res['error']
    assert worksheet_count(notebook) == 0


# --- malicious uploads ------------------------------------------------------------------
class Payload:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, ('touch %s' % self.path,))


def test_pickle_payload_is_refused_without_running(notebook, alice, tmp_path):
    marker = tmp_path / 'pwned'
    evil = pickle.dumps({'name': 'x', 'system': Payload(marker)}, protocol=2)
    res = upload(alice, 'evil.sws', sws_with(minimal_members(evil)), status=400).json
    assert 'posix.system' in res['error'] or 'os.system' in res['error']
    assert 'only plain data' in res['error']
    assert not marker.exists()
    assert worksheet_count(notebook) == 0


def test_python3_bytes_in_a_protocol_2_pickle_are_read(notebook, alice):
    conf = pickle.dumps({'name': b'Bytes', 'system': b'python'}, protocol=2)
    assert b'_codecs' in conf
    [created] = upload(alice, 'ok.sws', sws_with(minimal_members(conf)),
                       status=201).json['worksheets']
    ws = alice.get(created['url'])
    assert (ws['name'], ws['system']) == ('Bytes', 'python')


def test_plain_pickle_is_accepted(notebook, alice):
    # Written by Python 2 (protocol 0): str values are byte strings, the name UTF-8.
    conf = (b"(dp0\nS'name'\np1\nS'Fine \\xc3\\xa9'\np2\nsS'system'\np3\nNsS'pretty_print'"
            b"\np4\nI01\ns.")
    [created] = upload(alice, 'ok.sws', sws_with(minimal_members(conf)),
                       status=201).json['worksheets']
    ws = alice.get(created['url'])
    assert (ws['name'], ws['system'], ws['typeset']) == ('Fine \u00e9', 'sage', True)


def link_member(name, target, kind):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


def device_member(name, kind):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.devmajor, info.devminor = 1, 3
    return info, None


@pytest.mark.parametrize('bad, reason', [
    (file_member('/etc/cron.d/x', b'x'), 'absolute path'),
    (file_member('sage_worksheet/../../x', b'x'), 'leaves the archive'),
    (link_member('sage_worksheet/data/l', '/etc/passwd', tarfile.SYMTYPE), 'link'),
    (link_member('sage_worksheet/data/h', 'sage_worksheet/worksheet.html', tarfile.LNKTYPE),
     'link'),
    (device_member('sage_worksheet/data/null', tarfile.CHRTYPE), 'device'),
    (device_member('sage_worksheet/data/fifo', tarfile.FIFOTYPE), 'device or pipe'),
])


def test_unsafe_tar_members_are_refused(notebook, alice, bad, reason):
    conf = pickle.dumps({'name': 'x'}, protocol=2)
    content = sws_with(minimal_members(conf) + [bad])
    res = upload(alice, 'bad.sws', content, status=400).json
    assert reason in res['error']
    assert worksheet_count(notebook) == 0


@pytest.fixture
def small_limits(tmp_path):
    nb = Notebook(tmp_path / 'small', **{'sagenb.import.max_unpacked_mb': '1',
                                         'sagenb.import.max_members': '50',
                                         'sagenb.import.max_mb': '2'})
    nb.add_user('alice')
    api = Api(webtest.TestApp(nb.app, extra_environ={'HTTP_HOST': 'localhost:80'}),
              nb.token('alice'))
    yield nb, api
    nb.close()


def test_bzip2_bomb_stops_at_the_limit(small_limits):
    nb, api = small_limits
    conf = pickle.dumps({'name': 'x'}, protocol=2)
    zeros = bytes(8 * 2**20)
    content = sws_with(minimal_members(conf) + [file_member('sage_worksheet/data/z', zeros)])
    assert len(content) < 2**20 // 10
    res = upload(api, 'bomb.sws', content, status=400).json
    assert 'limit of 1 MB' in res['error']
    assert worksheet_count(nb) == 0


def test_zip_bomb_and_member_count_stop(small_limits):
    nb, api = small_limits
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, 'w', zipfile.ZIP_DEFLATED) as z:
        z.writestr('big.txt', 'T\n' + ' ' * (4 * 2**20))
    res = upload(api, 'bomb.zip', buffer.getvalue(), status=400).json
    assert 'limit of 1 MB' in res['error']
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, 'w') as z:
        for k in range(60):
            z.writestr('w%d.txt' % k, 'T%d\n' % k)
    res = upload(api, 'many.zip', buffer.getvalue(), status=400).json
    assert 'more than 50 members' in res['error']
    assert worksheet_count(nb) == 0


def test_too_large_upload_is_refused(small_limits):
    nb, api = small_limits
    res = upload(api, 'big.txt', b'T\n' + b'x' * (3 * 2**20), status=400).json
    assert 'larger than 2 MB' in res['error']


@pytest.mark.parametrize('name, reason', [
    ('../evil.txt', 'leaves the archive'),
    ('/abs.txt', 'absolute path'),
    ('C:/win.txt', 'absolute path'),
])


def test_unsafe_zip_members_are_refused(notebook, alice, name, reason):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, 'w') as z:
        z.writestr(zipfile.ZipInfo(name), 'T\n')
    res = upload(alice, 'x.zip', buffer.getvalue(), status=400).json
    assert reason in res['error']


def test_zip_symlink_is_refused(notebook, alice):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, 'w') as z:
        info = zipfile.ZipInfo('link.txt')
        info.external_attr = (0o120777 << 16)
        z.writestr(info, '/etc/passwd')
    res = upload(alice, 'x.zip', buffer.getvalue(), status=400).json
    assert 'link' in res['error']


@pytest.mark.parametrize('filename, content, words', [
    ('x.sws', b'BZh91AY&SY garbage', 'not a Sage worksheet'),
    ('x.ipynb', b'{"not": "a notebook"', 'JSON'),
    ('x.bin', b'\x00\x01\x02binary', 'unsupported kind of file'),
    ('x.zip', b'PK\x03\x04broken', 'not a zip archive'),
])


def test_damaged_files_get_clear_errors(notebook, alice, filename, content, words):
    res = upload(alice, filename, content, status=400).json
    assert words in res['error']
    assert worksheet_count(notebook) == 0


def test_upload_needs_a_file_field(notebook, alice):
    res = alice.testapp.post('/home/alice/import', {'name': 'x'}, headers=alice.headers,
                             status=400)
    assert 'multipart form field "file"' in res.json['error']


# --- who may import and export ------------------------------------------------------------
def test_import_into_someone_elses_home_is_refused(notebook, testapp, alice):
    notebook.add_user('bob')
    bob = Api(testapp, notebook.token('bob'))
    res = testapp.post('/home/alice/import', upload_files=[('file', 'a.txt', b'T\n')],
                       headers=bob.headers, status=404)
    assert res.json['error']
    testapp.post('/home/alice/import', upload_files=[('file', 'a.txt', b'T\n')],
                 headers={'Accept': 'application/json'}, status=401)
    assert worksheet_count(notebook) == 0


def test_browser_import_needs_the_csrf_token(notebook, testapp):
    from ...support.notebook import login
    notebook.add_user('alice')
    token = login(testapp, 'alice')
    testapp.post('/home/alice/import', upload_files=[('file', 'a.txt', b'T\n')],
                 status=400)
    res = testapp.post('/home/alice/import', {'csrf_token': token},
                       upload_files=[('file', 'a.txt', b'Title\n')], status=302)
    assert re.search(r'/home/alice/\d+/$', res.location)
    assert worksheet_count(notebook) == 1


def test_export_permissions(notebook, testapp, alice):
    ws = import_fixture(alice, 'sws', 'days60_number_theory_talk.sws')
    notebook.add_user('bob')
    bob = Api(testapp, notebook.token('bob'))
    for suffix in ('download.sws', 'download.ipynb', 'data/sage_2mul_300.png',
                   'sage_2mul_300.png'):
        testapp.get(ws['url'] + suffix, headers=bob.headers, status=404)
        testapp.get(ws['url'] + suffix, status=302)
    testapp.get('/home/alice/download.zip', headers=bob.headers, status=404)


def test_data_files_next_to_the_worksheet(notebook, alice):
    """Legacy text cells say <img src="foo.png">: the worksheet URL serves data files,
    without hiding the worksheet's own views."""
    conf = pickle.dumps({'name': 'D'}, protocol=2)
    content = sws_with(minimal_members(conf) + [
        file_member('sage_worksheet/data/plot.png', b'\x89PNG fake'),
        file_member('sage_worksheet/data/alive', b'a data file named like a view'),
        file_member('sage_worksheet/data/page.html', b'<script>alert(1)</script>')])
    [created] = upload(alice, 'd.sws', content, status=201).json['worksheets']
    url = created['url']
    res = alice.testapp.get(url + 'plot.png', headers=alice.headers)
    assert res.body == b'\x89PNG fake' and res.content_type == 'image/png'
    assert alice.get(url + 'alive') == {'process': False}
    assert alice.testapp.get(url + 'data/alive', headers=alice.headers).body.startswith(b'a data')
    page = alice.testapp.get(url + 'page.html', headers=alice.headers)
    assert page.headers['Content-Security-Policy'].startswith('sandbox')
    assert page.headers['Content-Disposition'].startswith('attachment')
    alice.testapp.get(url + 'nothing.png', headers=alice.headers, status=404)


def test_download_zip_of_a_users_worksheets(notebook, alice):
    names = ['days66_Automata_and_Transducers_in_SageMath.sws',
             'Talks_witty-sage-demo-before-talk.sws']
    made = [import_fixture(alice, 'sws', n) for n in names]
    archives = {kind: alice.testapp.get('/home/alice/download.zip', {'format': kind},
                                        headers=alice.headers)
                for kind in ('sws', 'ipynb')}
    for kind, res in archives.items():
        assert res.content_type == 'application/zip'
        with zipfile.ZipFile(io.BytesIO(res.body)) as z:
            assert len(z.namelist()) == 2
            assert all(n.endswith('.' + kind) for n in z.namelist())
        again = upload(alice, 'all.zip', res.body, status=201).json['worksheets']
        assert sorted(w['name'] for w in again) == sorted(w['name'] for w in made)
    res = alice.testapp.get('/home/alice/download.zip', {'ids': str(made[0]['id'])},
                            headers=alice.headers)
    with zipfile.ZipFile(io.BytesIO(res.body)) as z:
        [only] = z.namelist()
        assert only == 'Automata&Transducers SageDays66.sws'
    alice.testapp.get('/home/alice/download.zip', {'ids': '999'}, headers=alice.headers,
                      status=404)
    alice.testapp.get('/home/alice/download.zip', {'ids': 'x'}, headers=alice.headers,
                      status=400)


def test_live_outputs_export_to_sws(notebook, alice):
    """Outputs as the Sage kernel makes them (no file names) get legacy file names."""
    png = base64.b64encode(b'\x89PNG\r\n\x1a\n data').decode()
    with notebook.transaction() as root:
        ws = root.user_by_login('alice').create_worksheet('Live')
        cell = ws.ordered_cells()[0]
        cell.input = 'plot(x)'
        cell.output.update('done', [
            {'output_type': 'stream', 'name': 'stdout', 'text': 'a\n'},
            {'output_type': 'stream', 'name': 'stdout', 'text': 'b\n'},
            {'output_type': 'display_data', 'data': {'image/png': png,
                                                     'text/plain': 'Graphics object'},
             'metadata': {}},
            {'output_type': 'execute_result', 'execution_count': 3,
             'data': {'text/plain': 'x^2', 'text/latex': '$\\displaystyle x^{2}$'},
             'metadata': {}},
            {'output_type': 'error', 'ename': 'ZeroDivisionError',
             'evalue': 'rational division by zero',
             'traceback': ['\x1b[0;31mZeroDivisionError\x1b[0m: rational division by zero']},
        ])
        number = ws.number
    res = alice.testapp.get('/home/alice/%d/download.sws' % number, headers=alice.headers)
    members = Independent(res.body).members
    body = members['sage_worksheet/worksheet.html'].decode()
    assert "a\nb\n<html><font color='black'><img src='cell://sage0.png'></font></html>" in body
    assert '<script type="math/tex">\\displaystyle x^{2}</script>' in body
    assert 'ZeroDivisionError: rational division by zero' in body and '\x1b' not in body
    assert members['sage_worksheet/cells/0/sage0.png'] == base64.b64decode(png)
    assert bz2.decompress(res.body)[:1]  # a bzip2 stream, as the legacy notebook wrote


# --- what an import may store: sizes and names (issue 18) --------------------------------
@pytest.fixture
def small_data(tmp_path):
    """Data files of at most 1 MB; archives may still unpack to 256 MB."""
    nb = Notebook(tmp_path / 'small-data', **{'sagenb.data.max_mb': '1'})
    nb.add_user('alice')
    api = Api(webtest.TestApp(nb.app, extra_environ={'HTTP_HOST': 'localhost:80'}),
              nb.token('alice'))
    yield nb, api
    nb.close()


def conf_of(**values):
    return pickle.dumps(dict({'name': 'x'}, **values), protocol=2)


def test_a_tiny_sws_cannot_unpack_a_data_file_past_the_limit(small_data):
    nb, api = small_data
    content = sws_with(minimal_members(conf_of()) + [
        file_member('sage_worksheet/data/zeros.bin', bytes(8 * 2**20))])
    assert len(content) < 1000
    res = upload(api, 'bomb.sws', content, status=413).json
    assert 'zeros.bin' in res['error'] and 'limit of 1 MB' in res['error']
    assert 'sagenb.data.max_mb' in res['error']
    assert worksheet_count(nb) == 0


def test_a_cell_file_past_the_limit_is_refused_too(small_data):
    nb, api = small_data
    content = sws_with(minimal_members(conf_of()) + [
        file_member('sage_worksheet/cells/0/big.dat', bytes(2 * 2**20))])
    res = upload(api, 'cellbomb.sws', content, status=413).json
    assert 'big.dat' in res['error'] and 'limit of 1 MB' in res['error']
    # In a .zip of worksheets, the member is named as well; nothing of the zip is made.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, 'w') as z:
        z.writestr('fine.txt', 'Fine\n{{{id=0|\n1\n///\n}}}\n')
        z.writestr('inner/cellbomb.sws', content)
    res = upload(api, 'two.zip', buffer.getvalue(), status=413).json
    assert 'inner/cellbomb.sws' in res['error'] and 'big.dat' in res['error']
    assert worksheet_count(nb) == 0


def test_a_browser_gets_a_page_for_a_refused_import(small_data):
    from ...support.notebook import login
    nb, api = small_data
    browser = webtest.TestApp(nb.app, extra_environ={'HTTP_HOST': 'localhost:80'})
    token = login(browser, 'alice')
    content = sws_with(minimal_members(conf_of()) + [
        file_member('sage_worksheet/data/zeros.bin', bytes(2 * 2**20))])
    res = browser.post('/home/alice/import', {'csrf_token': token},
                       upload_files=[('file', 'b.sws', content)], status=413)
    assert 'zeros.bin' in res.text and '<html' in res.text.lower()
    assert worksheet_count(nb) == 0


@pytest.mark.parametrize('member', [
    'sage_worksheet/data/evil\r\nname.txt', 'sage_worksheet/data/tab\there',
    'sage_worksheet/data/rtl\u202etxt.exe', 'sage_worksheet/data/@@view',
    'sage_worksheet/data/' + 'n' * 201,
    'sage_worksheet/data/ lead', 'sage_worksheet/cells/0/bad\x07bell.dat',
    'sage_worksheet/cells/0/sub/\u2066x.txt',
])


def test_imported_file_names_follow_the_data_file_rule(notebook, alice, member):
    content = sws_with(minimal_members(conf_of()) + [file_member(member, b'data')])
    res = upload(alice, 'names.sws', content, status=400).json
    assert 'not a usable file name' in res['error']
    assert worksheet_count(notebook) == 0


def test_a_clean_imported_data_file_is_reachable(notebook, alice):
    content = sws_with(minimal_members(conf_of()) + [
        file_member('sage_worksheet/data/caf\u00e9 table.csv', b'a,b\n')])
    [created] = upload(alice, 'ok.sws', content, status=201).json['worksheets']
    [data] = alice.get(created['url'])['data_files']
    assert data['name'] == 'caf\u00e9 table.csv'
    assert alice.testapp.get(data['url'], headers=alice.headers).body == b'a,b\n'


def test_imported_worksheet_names_and_systems_are_cleaned(notebook, alice):
    long_name = '\u202eevil\x1b[31m' + 'x' * 600 + '\x00end'
    content = sws_with(minimal_members(conf_of(name=long_name,
                                               system='sage"><script>alert(1)')))
    res = upload(alice, 'n.sws', content, status=201).json
    ws = alice.get(res['worksheets'][0]['url'])
    assert len(ws['name']) == 200 and ws['name'].startswith('evil [31mxxx')
    assert not any(c in ws['name'] for c in '\u202e\x1b\x00')
    assert ws['system'] == 'sage'
    notes = ' | '.join(res['notes'])
    assert 'cut' in notes and 'bidirectional' in notes and 'not a system name' in notes
    # What the page itself may set, an import may keep.
    content = sws_with(minimal_members(conf_of(name='  Two  words ', system=' GP ')))
    res = upload(alice, 'n.sws', content, status=201).json
    ws = alice.get(res['worksheets'][0]['url'])
    assert (ws['name'], ws['system'], res['notes']) == ('Two words', 'gp', [])


def test_txt_and_ipynb_systems_are_checked(notebook, alice):
    res = upload(alice, 'w.txt', b'Title\nsystem:sage"><b>\n{{{id=0|\n1\n///\n}}}\n',
                 status=201).json
    assert alice.get(res['worksheets'][0]['url'])['system'] == 'sage'
    nb = {'nbformat': 4, 'nbformat_minor': 5,
          'metadata': {'title': 'T\u2067itle', 'sagenb': {'system': 'x y<'}},
          'cells': [{'cell_type': 'code', 'id': 'a', 'source': 'plot(x)', 'metadata': {},
                     'execution_count': 1, 'outputs': [{
                         'output_type': 'display_data', 'data': {'image/png': 'iVBORw0K'},
                         'metadata': {'sagenb': {'file': '../../../etc/cron.d/x.png'}}}]}]}
    res = upload(alice, 'n.ipynb', json.dumps(nb).encode(), status=201).json
    ws = alice.get(res['worksheets'][0]['url'])
    assert (ws['name'], ws['system']) == ('T itle', 'sage')
    [out] = ws['cells'][0]['outputs']
    assert 'file' not in out['metadata'].get('sagenb', {})
    exported = alice.testapp.get(ws['url'] + 'download.sws', headers=alice.headers).body
    assert all('..' not in name.split('/') for name in Independent(exported).members)


def test_the_name_field_follows_the_same_rule(notebook, alice):
    content = sws_with(minimal_members(conf_of()))
    res = upload(alice, 'n.sws', content, status=201, name='Mine\u202e\x07 too').json
    assert res['worksheets'][0]['name'] == 'Mine too'
    created = alice.post('/home/alice/', {'name': 'Page\u2066 name\x01'}, status=201)
    assert created['name'] == 'Page name'
    renamed = alice.patch(created['url'], {'name': 'Re\u202dnamed'}, status=200)
    assert renamed['name'] == 'Re named'
    alice.patch(created['url'], {'system': 'sage\n'}, status=400)


def test_flattened_data_files_with_the_same_name_keep_the_first(notebook, alice):
    content = sws_with(minimal_members(conf_of()) + [
        file_member('sage_worksheet/data/a/t.csv', b'first'),
        file_member('sage_worksheet/data/b/t.csv', b'second')])
    res = upload(alice, 'two.sws', content, status=201).json
    [data] = alice.get(res['worksheets'][0]['url'])['data_files']
    assert alice.testapp.get(data['url'], headers=alice.headers).body == b'first'
    assert any('"b/t.csv" was left out' in note for note in res['notes'])


# --- imports at once ----------------------------------------------------------------------
def test_imports_at_once_are_bounded_per_user_and_per_server(notebook, testapp, alice):
    from sagenb_pyramid.importing import gate_of
    notebook.add_user('bob')
    bob = Api(testapp, notebook.token('bob'))
    with notebook.transaction() as root:
        alice_id = root.user_by_login('alice').id
    gate = gate_of(notebook.registry)
    # Alice's first import is still unpacking: her second one waits its turn.
    with gate.slot(alice_id):
        res = upload(alice, 'a.txt', b'A\n', status=429).json
        assert 'import in progress' in res['error']
        # Bob is not held up by Alice's import alone (2 at once on this server)...
        bob.testapp.post('/home/bob/import', headers=bob.headers,
                         upload_files=[('file', 'b.txt', b'B\n')], status=201)
        # ...but when the server's imports are all running, he is told to come back.
        with gate.slot('someone-else'):
            bob_res = bob.testapp.post('/home/bob/import', headers=bob.headers,
                                       upload_files=[('file', 'b.txt', b'B\n')], status=503)
            assert 'busy with other imports' in bob_res.json['error']
    assert gate.running == {}
    upload(alice, 'a.txt', b'A\n', status=201)
    assert worksheet_count(notebook) == 1


def test_a_refused_import_gives_its_slot_back(small_data):
    from sagenb_pyramid.importing import gate_of
    nb, api = small_data
    content = sws_with(minimal_members(conf_of()) + [
        file_member('sage_worksheet/data/zeros.bin', bytes(2 * 2**20))])
    for _ in range(3):
        upload(api, 'bomb.sws', content, status=413)
        upload(api, 'bad.sws', b'BZh9 not bzip2', status=400)
    assert gate_of(nb.registry).running == {}
    upload(api, 'fine.txt', b'Fine\n', status=201)
