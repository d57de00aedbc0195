"""The importers fuzzed: ``.sws``, ``.txt``, ``.ipynb``, ``.zip`` and sagenb folders.

Inputs are built here by hypothesis from the pieces the formats are made of (the body
grammar, worksheet settings pickles, notebook JSON, archive members with odd names)
mixed with arbitrary bytes.  Whatever comes in, an importer either gives worksheets that
can be stored (they are created in a real ZODB, then the transaction is aborted) or
refuses with its own error (``FormatError``, 400/413 through HTTP; a report line for a
folder), within a time (hypothesis' deadline) and a memory bound (tracemalloc's peak).
Runs are derandomized so CI sees the same examples every time.
"""
import bz2
import io
import json
import os
import pickle
import tarfile
import tempfile
import tracemalloc
import zipfile

import pytest
import transaction
import webtest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sagenb_pyramid import importing
from sagenb_pyramid.formats import FormatError, Limits
from sagenb_pyramid.migrate import MigrationError, migrate
from sagenb_pyramid.resources import get_root

from ...support.notebook import Api, Notebook
from ...support.sws import file_member, sws_with

LIMITS = Limits(max_bytes=256 * 1024, max_unpacked_bytes=2**20, max_members=40,
                max_worksheets=8, max_file_bytes=128 * 1024)
# Peak of Python allocations while one input is read and stored: a few times what an
# upload may unpack (1 MB here), whatever the input.
MAX_PEAK = 8 * 2**20
# A migration's folder files are small here; its peak is mostly fixed costs (the users
# and worksheets it makes, modules loaded at the first run).
MAX_MIGRATION_PEAK = 32 * 2**20
FUZZ = settings(max_examples=300, deadline=3000, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])

# --- pieces of the formats -----------------------------------------------------------

odd_text = st.text(st.characters(codec='utf-8', exclude_categories=['Cs']), max_size=40)
name_parts = st.one_of(
    odd_text,
    st.sampled_from(['..', '.', '@@x', '', ' lead', 'trail ', 'a\r\nb', 'r\u202etxt.exe',
                     'x' * 250, '.jmol_images/a.png', 'plot.png', 'sage0.png', 'out.svg',
                     'a/b/c.txt', '\x00', 'cell://x', 'cafe\u0301.csv']))
systems = st.one_of(st.none(), odd_text,
                    st.sampled_from(['sage', 'python', 'GP', ' gap ', 'sage"><script>',
                                     'c++', '']))
body_pieces = st.one_of(
    st.sampled_from(['{{{id=0|', '{{{id=1|', '{{{', '///', '}}}', '\n', '\r\n',
                     '<html>', '</html>', '<html><script type="math/tex">x</script></html>',
                     "<html><img src='cell://plot.png'></html>",
                     'Traceback (most recent call last):', 'ValueError: x', '%auto',
                     'system:sage', 'system:\x07']),
    odd_text)
bodies = st.lists(body_pieces, max_size=30).map(lambda parts: '\n'.join(parts))
plain = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.floats(),
              odd_text, st.binary(max_size=20)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.tuples(inner, inner),
                            st.dictionaries(st.one_of(odd_text, st.binary(max_size=8)),
                                            inner, max_size=4)),
    max_leaves=12)
# What JSON can hold (the notebook's own values).
jsonable = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40),
              st.floats(allow_nan=False), odd_text),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(odd_text, inner, max_size=4)),
    max_leaves=12)
confs = st.fixed_dictionaries(
    {}, optional={'name': st.one_of(odd_text, name_parts, st.binary(max_size=30)),
                  'system': systems, 'pretty_print': plain,
                  'collaborators': st.lists(name_parts, max_size=3),
                  'viewers': plain, 'tags': plain, 'last_change': plain,
                  'saved_by_info': plain, 'id_number': plain, 'owner': plain})


def conf_bytes(conf, protocol):
    return pickle.dumps(conf, protocol=protocol)


pickles = st.one_of(st.builds(conf_bytes, confs, st.sampled_from([0, 1, 2])),
                    st.binary(max_size=60))
member_content = st.one_of(st.binary(max_size=300), bodies.map(str.encode), pickles,
                           st.integers(0, 200 * 1024).map(bytes))
member_paths = st.one_of(
    st.sampled_from(['sage_worksheet/worksheet.html', 'sage_worksheet/worksheet.txt',
                     'sage_worksheet/worksheet_conf.pickle', '3/worksheet.txt',
                     'sage_worksheet/', 'sage_worksheet/cells/0/']),
    st.builds(lambda part: 'sage_worksheet/data/' + part, name_parts),
    st.builds(lambda part: 'sage_worksheet/data/' + part, name_parts),
    st.builds(lambda cell, part: 'sage_worksheet/cells/%s/%s' % (cell, part),
              st.sampled_from(['0', '1', '00', 'x', '-1']), name_parts),
    st.builds(lambda t: '3/snapshots/%s.bz2' % t, st.sampled_from(['1', '2.5', 'x'])),
    st.builds(lambda part: '3/data/' + part, name_parts),
    name_parts)
# Mostly regular files (a link or a device refuses the whole archive, early).
OTHER_KINDS = [tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE,
               tarfile.FIFOTYPE]
member_kinds = st.integers(0, 99).map(
    lambda k: OTHER_KINDS[k - 95] if k >= 95 else tarfile.REGTYPE)


@st.composite
def sws_files(draw):
    members = draw(st.lists(st.tuples(member_paths, member_content,
                                      member_kinds), max_size=8))
    if draw(st.integers(0, 3)) != 3:  # most real files have these two
        members.insert(0, ('sage_worksheet/worksheet.html', draw(bodies).encode(),
                           tarfile.REGTYPE))
        members.insert(0, ('sage_worksheet/worksheet_conf.pickle', draw(pickles),
                           tarfile.REGTYPE))
    for path, content, _ in members:
        if path.startswith('3/snapshots/') and draw(st.booleans()):
            content = bz2.compress(draw(bodies).encode())
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=draw(st.sampled_from(['w:bz2', 'w:gz', 'w'])),
                      format=tarfile.GNU_FORMAT) as tar:
        for path, content, kind in members:
            info = tarfile.TarInfo(path)
            info.type = kind
            if kind == tarfile.REGTYPE:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
            else:
                info.linkname = 'sage_worksheet/worksheet.html'
                tar.addfile(info)
    data = buffer.getvalue()
    cut = None
    if draw(st.integers(0, 4)) == 4:  # damaged on the way: cut short, or a byte changed
        cut = draw(st.integers(0, max(len(data) - 1, 0)))
    if cut is not None:
        if draw(st.booleans()):
            data = data[:cut]
        else:
            data = data[:cut] + bytes([data[cut] ^ draw(st.integers(1, 255))]) + \
                data[cut + 1:]
    return data


@st.composite
def txt_files(draw):
    title = draw(st.one_of(odd_text, name_parts))
    system = draw(st.one_of(st.none(), systems.filter(lambda s: s is not None)))
    head = title + '\n' + ('system:%s\n' % system if system is not None else '')
    return (head + draw(bodies)).encode('utf-8', 'surrogatepass')


outputs = st.one_of(
    st.fixed_dictionaries({'output_type': st.sampled_from(
        ['stream', 'display_data', 'execute_result', 'error', 'other', 7])},
        optional={'name': jsonable, 'text': st.one_of(odd_text, st.lists(odd_text), jsonable),
                  'data': st.one_of(st.dictionaries(st.sampled_from(
                      ['text/plain', 'text/html', 'image/png', 'text/latex',
                       'application/json', 'image/svg+xml', 'x']), jsonable), jsonable),
                  'metadata': st.one_of(st.fixed_dictionaries({'sagenb': st.fixed_dictionaries(
                      {'file': st.one_of(name_parts, jsonable)})}), jsonable),
                  'execution_count': jsonable, 'traceback': jsonable, 'ename': jsonable,
                  'evalue': jsonable}),
    jsonable)
cells = st.one_of(
    st.fixed_dictionaries({'cell_type': st.sampled_from(['code', 'markdown', 'raw',
                                                         'other'])},
                          optional={'source': st.one_of(odd_text, st.lists(odd_text), jsonable),
                                    'outputs': st.one_of(st.lists(outputs, max_size=4),
                                                         jsonable),
                                    'metadata': jsonable, 'execution_count': jsonable,
                                    'id': jsonable, 'attachments': jsonable}),
    jsonable)
notebooks = st.fixed_dictionaries(
    {'nbformat': st.one_of(st.sampled_from([4, 4, 4, 3, 5, 2]), jsonable)},
    optional={'nbformat_minor': st.one_of(st.integers(0, 6), jsonable),
              'cells': st.one_of(st.lists(cells, max_size=6), jsonable),
              'worksheets': st.one_of(st.lists(st.fixed_dictionaries(
                  {'cells': st.lists(cells, max_size=3)}), max_size=2), jsonable),
              'metadata': st.one_of(st.fixed_dictionaries({}, optional={
                  'title': jsonable, 'name': jsonable,
                  'kernelspec': st.one_of(st.fixed_dictionaries(
                      {'name': jsonable, 'language': jsonable}), jsonable),
                  'sagenb': st.one_of(st.fixed_dictionaries(
                      {'system': systems, 'typeset': jsonable}), jsonable)}), jsonable)})


def to_json(value):
    return json.dumps(value, default=repr).encode('utf-8', 'surrogatepass')


ipynb_files = st.one_of(notebooks.map(to_json), jsonable.map(to_json),
                        st.binary(max_size=200).map(lambda b: b'{' + b))


@st.composite
def zip_files(draw):
    members = draw(st.lists(st.tuples(
        st.one_of(name_parts, st.builds(lambda n, e: n + e, name_parts, st.sampled_from(
            ['.sws', '.txt', '.ipynb', '.zip', '.md']))),
        st.one_of(sws_files(), txt_files(), ipynb_files, st.binary(max_size=100))),
        max_size=5))
    members = list({path: (path, content) for path, content in members}.values())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, 'w', draw(st.sampled_from([zipfile.ZIP_STORED,
                                                            zipfile.ZIP_DEFLATED]))) as z:
        for path, content in members:
            info = zipfile.ZipInfo(path or 'empty')
            info.external_attr = draw(st.sampled_from([0, 0o100644, 0o120777, 0o20644,
                                                       0o40755])) << 16
            z.writestr(info, content)
    return buffer.getvalue()


uploads = st.one_of(
    st.tuples(st.sampled_from(['w.sws', 'w', 'W.SWS']), sws_files()),
    st.tuples(st.sampled_from(['w.txt']), txt_files()),
    st.tuples(st.sampled_from(['w.ipynb', 'w']), ipynb_files),
    st.tuples(st.sampled_from(['w.zip', 'w']), zip_files()),
    st.tuples(name_parts, st.binary(max_size=300)))


# --- the database the results go into ----------------------------------------------------

@pytest.fixture(scope='module')
def store(tmp_path_factory):
    """A notebook with a user; each example works in a transaction that is aborted."""
    nb = Notebook(tmp_path_factory.mktemp('fuzz') / 'data',
                  **{'sagenb.import.max_mb': '1', 'sagenb.import.max_unpacked_mb': '1',
                     'sagenb.import.max_members': '40', 'sagenb.data.max_mb': '1'})
    nb.add_user('fuzz')
    tm = transaction.TransactionManager(explicit=True)
    conn = nb.db.open(transaction_manager=tm)
    yield nb, tm, conn
    conn.close()
    nb.close()


class Bounded:
    """The peak of Python allocations inside the block."""

    def __enter__(self):
        tracemalloc.start()
        return self

    def __exit__(self, *exc):
        self.peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


def import_into(store, filename, data):
    _, tm, conn = store
    tm.begin()
    try:
        user = get_root(conn.root()).user_by_login('fuzz')
        try:
            found, skipped = importing.read_upload(filename, data, LIMITS)
        except FormatError as exc:
            assert str(exc), 'a refusal says why'
            assert exc.status in (400, 413)
            return None
        for item in found:
            worksheet = importing.create_worksheet(user, item)
            assert worksheet.name == ' '.join(worksheet.name.split())
            assert len(worksheet.name) <= 200
            for name in (worksheet.files.keys() if worksheet.files is not None else ()):
                assert importing.names.file_name_problem(name) is None, name
            for cell in worksheet.ordered_cells():
                for name in (cell.output.files or {}):
                    assert importing.names.cell_file_name_problem(name) is None, name
            assert importing.names.system_problem(worksheet.system) is None
        return found
    finally:
        tm.abort()


def tar_of(members):
    return sws_with([file_member(path, content) for path, content in members])


def zip_of(members):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, 'w') as z:
        for path, content in members:
            z.writestr(zipfile.ZipInfo(path), content)
    return buffer.getvalue()


HTML = ('sage_worksheet/worksheet.html', b'{{{id=0|\n1\n///\n}}}\n')
# Found by this test or by hand; kept so every run tries them.
KNOWN = [('w.zip', zip_of([('', b'x'), ('a.txt', b'T\n')])),  # is_dir() of ''
         ('w.sws', tar_of([HTML, ('sage_worksheet/data/@@x', b'x')])),  # Folder.add
         ('w.sws', tar_of([HTML, ('sage_worksheet/data/a\r\nb', b'x')])),
         ('w.sws', tar_of([HTML, ('sage_worksheet/data/big', bytes(200 * 1024))])),
         ('w.sws', tar_of([HTML, ('sage_worksheet/worksheet_conf.pickle', pickle.dumps(
             {'name': '\u202e' * 300, 'system': 'sage"><script>'}, protocol=2))]))]


@FUZZ
@given(upload=uploads)
@example(upload=KNOWN[0])
@example(upload=KNOWN[1])
@example(upload=KNOWN[2])
@example(upload=KNOWN[3])
@example(upload=KNOWN[4])
def test_every_upload_is_imported_or_refused_cleanly(store, upload):
    filename, data = upload
    with Bounded() as memory:
        import_into(store, filename, data)
    assert memory.peak < MAX_PEAK


@settings(FUZZ, max_examples=60)
@given(upload=st.one_of(st.tuples(st.just('w.sws'), sws_files()),
                        st.tuples(st.just('w.zip'), zip_files())))
def test_a_wrong_upload_through_http_is_a_clear_refusal(store, upload):
    nb, _, _ = store
    filename, data = upload
    app = webtest.TestApp(nb.app, extra_environ={'HTTP_HOST': 'localhost:80'})
    api = Api(app, TOKEN.setdefault('fuzz', nb.token('fuzz')))
    res = app.post('/home/fuzz/import', upload_files=[('file', filename, data)],
                   headers=api.headers, status='*')
    assert res.status_int in (201, 400, 413), res.text
    if res.status_int != 201:
        assert res.json['error'].startswith('cannot import')


TOKEN = {}


# --- sagenb folders -----------------------------------------------------------------------

folder_files = st.lists(st.tuples(
    st.one_of(
        st.sampled_from(['users.pickle', 'conf.pickle', 'readonly.txt', 'openid.pickle']),
        st.builds(lambda user, n, leaf: 'home/%s/%s/%s' % (user, n, leaf),
                  st.sampled_from(['admin', 'alice', 'pub', '_sage_', 'x!', 'b\u202eob']),
                  st.sampled_from(['0', '1', '12', 'x']),
                  st.sampled_from(['worksheet.html', 'worksheet.txt',
                                   'worksheet_conf.pickle', 'data/a.txt', 'data/sub/b',
                                   'data/c\rd', 'data/@@e', 'cells/0/f.png', 'cells/1/g',
                                   'snapshots/1.bz2', 'snapshots/x.bz2', 'code/h.pyx']))),
    st.one_of(member_content, pickles,
              st.lists(st.tuples(st.one_of(odd_text, st.binary(max_size=10)),
                                 st.dictionaries(st.sampled_from([
                                     b'password', b'email', b'account_type',
                                     b'external_auth', b'is_suspended']), plain)),
                       max_size=3).map(lambda users: pickle.dumps(users, protocol=2)))),
    min_size=1, max_size=10)


@settings(FUZZ, max_examples=80)
@given(files=folder_files)
def test_every_sagenb_folder_is_migrated_or_reported(store, files):
    _, tm, conn = store
    with tempfile.TemporaryDirectory() as top:
        folder = os.path.join(top, 'nb.sagenb')
        os.makedirs(os.path.join(folder, 'home'))
        for path, content in files:
            full = os.path.join(folder, *path.split('/'))
            if os.path.isdir(full):
                continue
            try:
                os.makedirs(os.path.dirname(full), exist_ok=True)
                with open(full, 'wb') as f:
                    f.write(content)
            except (NotADirectoryError, FileExistsError, IsADirectoryError):
                continue  # a file where another path needs a folder
        tm.begin()
        try:
            with Bounded() as memory:
                try:
                    report = migrate(get_root(conn.root()), folder,
                                     max_file_bytes=LIMITS.max_file_bytes)
                except MigrationError:
                    return
            assert memory.peak < MAX_MIGRATION_PEAK
            for line in report.lines():
                assert not any(c in line for c in '\r\n\x00\u202e'), line
            assert not [item for item, why in report.skipped
                        if 'could not be stored' in why], report.skipped
        finally:
            tm.abort()
