"""The path stored classes are pickled under (``sagenb_pyramid.resources.<Class>``,
``folder.stored``), kept while the classes live in the package's modules: a database
written while ``resources`` was one module (``tests/support/presplitdb``) opens, what
is written now names the same paths, and records naming the modules load too."""
import importlib
import pickletools
import pkgutil
import shutil
from pathlib import Path

import pytest
import transaction
from persistent import Persistent
from ZODB.broken import Broken, find_global
from ZODB.FileStorage import FileStorage

from sagenb_pyramid import db_from_uri, evolve, resources
from sagenb_pyramid.acl import Allow, P
from sagenb_pyramid.resources import owner_of, read_blob, root_of

PRESPLIT = Path(__file__).resolve().parents[2] / 'support' / 'presplitdb'
PACKAGE = 'sagenb_pyramid.resources'


def package_modules():
    return [importlib.import_module('%s.%s' % (PACKAGE, info.name))
            for info in pkgutil.iter_modules(resources.__path__)]


def stored_classes():
    """``[(module, class)]``: the persistent classes the package's modules define."""
    found = []
    for module in package_modules():
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Persistent) \
                    and value.__module__.startswith(PACKAGE):
                found.append((module, value))
    return found


def class_globals(data):
    """The ``(module, name)`` of every class a record's pickles name (its class and
    the classes of the objects it refers to)."""
    found, start = [], 0
    while start < len(data):  # a record is two pickles: its class, then its state
        for op, arg, pos in pickletools.genops(data[start:]):
            if op.name == 'GLOBAL':
                found.append(tuple(arg.split(' ', 1)))
            elif op.name == 'STACK_GLOBAL':
                raise AssertionError('a pickle protocol this test does not read')
            elif op.name == 'STOP':
                start += pos + 1
                break
    return found


def stored_globals(path):
    """``{(module, name)}`` named by every record of the FileStorage at ``path``."""
    storage = FileStorage(str(path), read_only=True)
    try:
        return {g for txn in storage.iterator() for record in txn
                for g in class_globals(record.data)}
    finally:
        storage.close()


def open_db(folder):
    """The database as the application opens it (its class factory included)."""
    return db_from_uri('file://%s/Data.fs?blobstorage_dir=%s/blobs' % (folder, folder),
                       'unnamed', {})


def load_everything(db):
    """Load every record of the database (as ghosts first, then their state); returns
    ``{type: count}`` of the objects (an object evolve wrote again counts once)."""
    conn = db.open()
    try:
        kinds = {}
        seen = set()
        for txn in db.storage.iterator():
            for record in txn:
                if record.oid in seen:
                    continue
                seen.add(record.oid)
                obj = conn.get(record.oid)
                obj._p_activate()
                assert not isinstance(obj, Broken), obj
                kinds[type(obj)] = kinds.get(type(obj), 0) + 1
        transaction.abort()
        return kinds
    finally:
        conn.close()


@pytest.fixture
def presplit(tmp_path):
    folder = tmp_path / 'presplit'
    shutil.copytree(PRESPLIT, folder, ignore=shutil.ignore_patterns('*.py'))
    return folder


def test_every_stored_class_is_pickled_under_the_package():
    classes = stored_classes()
    assert {c.__name__ for _, c in classes} >= {
        'Root', 'Home', 'User', 'Worksheet', 'Cell', 'CellOutput', 'Publication'}
    for module, cls in classes:
        assert cls.__module__ == PACKAGE, '%s.%s lacks @stored' % (module.__name__,
                                                                   cls.__name__)
        # ZODB's class lookup finds it at both paths.
        assert getattr(resources, cls.__name__) is cls
        assert find_global(PACKAGE, cls.__name__) is cls
        assert find_global(module.__name__, cls.__name__) is cls


# Stored classes and evolve steps newer than the fixture (it is not written again).
MADE_AFTER_THE_SPLIT = {'CellSnapshot', 'OutputSnapshot', 'Presence', 'PresenceEntry',
                        'CellOrder'}
STEPS_AFTER_THE_SPLIT = ['worksheet-history', 'live-versions', 'cell-order']


def test_the_presplit_database_names_the_package_paths():
    """The fixture is what the test below needs: records of the stored classes under
    ``sagenb_pyramid.resources``."""
    named = {name for module, name in stored_globals(PRESPLIT / 'Data.fs')
             if module == PACKAGE}
    assert named == {cls.__name__ for _, cls in stored_classes()} - {
        'Folder', 'RootFolder', 'OwnerFolder'} - MADE_AFTER_THE_SPLIT


def test_a_database_written_before_the_split_opens_as_it_was(presplit):
    # The steps added since it was written run on it first (issue 21).
    db = open_db(presplit)
    try:
        assert [s.name for s in evolve.pending_in(db)] == STEPS_AFTER_THE_SPLIT
        assert [s.name for s in evolve.evolve(db)] == STEPS_AFTER_THE_SPLIT
    finally:
        db.close()
    db = open_db(presplit)
    try:
        assert evolve.pending_in(db) == []

        def read(root):
            alice, bob = root.home['alice'], root.home['bob']
            ws = alice['0']
            assert type(ws) is resources.Worksheet and ws._p_changed is None  # a ghost
            assert owner_of(ws) is alice and root_of(ws) is root
            assert (Allow, 'userid:' + bob.id, (P.VIEW, P.EDIT, P.EVALUATE)) in ws.__acl__()
            first, text = ws.ordered_cells()
            assert first.input == 'factor(2^64-1)' and first.output.status == 'done'
            assert (ws.version, first.input_version, first.past_inputs) == (0, 0, ())
            assert read_blob(first.output.files['out.txt']) == b'written by the cell\n'
            assert read_blob(first.output.full_text) == b'the whole text\n'
            assert text.type == 'text'
            assert ws['data.csv'].read() == b'a,b\n1,2\n'
            assert [r.body for r in ws.revisions.values()] == ['old text']
            assert ws.tags == ('algebra',)
            assert root.shared_with['userid:' + bob.id]
            assert alice.storage_used() == len(b'a,b\n1,2\n')
            published = [p.shown_name() for p in root.publications.newest()]
            assert published == ['live', 'algebra']
            snapshot = root.publications[ws.publication_id].shown()
            assert snapshot is not ws and snapshot.ordered_cells()[0].input == first.input
            assert root.publications[alice['1'].publication_id].rating_mean() == 4
            assert [t.label for t in root.tokens.values()] == ['script']
            assert [t.purpose for t in root.account_tokens.values()] == ['reset']
            assert isinstance(root['admin'], resources.AdminSection)
        resources.in_transaction(db, read)
        kinds = load_everything(db)
        assert kinds[resources.Worksheet] == 3  # two in homes, a publication's snapshot
        assert kinds[resources.Cell] == kinds[resources.CellOutput] == 5
    finally:
        db.close()


def test_what_is_written_now_names_the_package_paths(presplit):
    """So the code before the split still reads a database written after it."""
    db = open_db(presplit)
    try:
        def write(root):
            alice, bob = root.home['alice'], root.home['bob']
            ws = alice.create_worksheet('new')
            ws.add_cell('text', 'more')
            ws.data_files().add_file('b.txt', b'b')
            ws.add_revision(1.0, 'body')
            ws.share([], ['userid:' + bob.id])
            root.publications.publish(ws)
            root.add_group('another')
            alice['0'].ordered_cells()[0].output.add_file('x', b'x')
        resources.in_transaction(db, write)
    finally:
        db.close()
    named = stored_globals(presplit / 'Data.fs')
    ours = {(m, n) for m, n in named if m.startswith('sagenb_pyramid.')}
    assert not [g for g in ours if g[0].startswith(PACKAGE + '.')]
    assert ('sagenb_pyramid.resources', 'Revisions') in ours
    db = open_db(presplit)
    try:
        load_everything(db)
    finally:
        db.close()


def test_records_naming_the_package_modules_load_too(tmp_path, monkeypatch):
    """Were a record ever written under a module's path (``@stored`` forgotten), it
    loads as the same class; references to it make ghosts of that class."""
    folder = tmp_path / 'modules'
    folder.mkdir()
    for module, cls in stored_classes():
        monkeypatch.setattr(cls, '__module__', module.__name__)
    db = open_db(folder)
    try:
        def write(root):
            alice = root.add_user('alice')
            alice.create_worksheet('w').data_files().add_file('a.txt', b'a')
        resources.in_transaction(db, write)
    finally:
        db.close()
    monkeypatch.undo()
    named = stored_globals(folder / 'Data.fs')
    assert ('sagenb_pyramid.resources.worksheets', 'Worksheet') in named
    assert ('sagenb_pyramid.resources.root', 'Root') in named
    db = open_db(folder)
    try:
        def read(root):
            ws = root.home['alice']['0']
            assert type(ws) is resources.Worksheet and ws._p_changed is None
            assert owner_of(ws) is root.home['alice'] and ws['a.txt'].read() == b'a'
        resources.in_transaction(db, read)
        kinds = load_everything(db)
        assert kinds[resources.Worksheet] == 1 and kinds[resources.User] == 1
    finally:
        db.close()
