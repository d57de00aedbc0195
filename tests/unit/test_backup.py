"""backup.py's ``--keep`` on a real FileStorage with blobs and real repozo backups: the
oldest full backups go with their increments, and so do the blob files that no kept
backup's records refer to; a restore as of every kept backup still finds each blob it
needs (``FileTarget.restore`` refuses when one is missing)."""
import datetime
import os

import pytest
import transaction
from ZODB import DB
from ZODB.blob import Blob
from ZODB.FileStorage import FileStorage
from ZODB.scripts import repozo

from sagenb_pyramid.backup import BLOBS, DATAFS, BackupError, FileTarget, blob_files


@pytest.fixture
def clock(monkeypatch):
    """repozo names its files by the second: ``clock.tick()`` before each backup moves
    the time repozo reads (its test hook) one second on instead of the test sleeping;
    ``clock.at(i)`` is the ``--date`` of the i-th tick."""
    start = datetime.datetime(2026, 1, 1)

    class Clock:
        ticks = 0

        def tick(self):
            self.ticks += 1

        def at(self, i):
            return (start + datetime.timedelta(seconds=i)).strftime('%Y-%m-%d-%H-%M-%S')

    clock = Clock()
    monkeypatch.setattr(repozo, 'gen_filedate', lambda options: (
        start + datetime.timedelta(seconds=clock.ticks)).timetuple()[:6])
    return clock


class Live:
    """The database being backed up: named blobs in its root."""

    def __init__(self, folder, clock):
        self.clock = clock
        os.makedirs(folder)
        self.data_fs, self.blobs = str(folder / 'Data.fs'), str(folder / 'blobs')
        self.db = DB(FileStorage(self.data_fs, blob_dir=self.blobs))
        self.target = FileTarget(self.data_fs, self.blobs, 'the FileStorage')

    def change(self, **blobs):
        """Write the named blobs (a new revision when there), or drop those given None."""
        tm = transaction.TransactionManager()
        conn = self.db.open(tm)
        root = conn.root()
        for name, content in blobs.items():
            if content is None:
                del root[name]
                continue
            if name not in root:
                root[name] = Blob()
            with root[name].open('w') as f:
                f.write(content.encode())
        tm.commit()
        conn.close()

    def pack(self):
        """ZODB's pack: old revisions and what nothing refers to go, their blob files
        too."""
        self.db.pack()

    def backup(self, dest, full=False, keep=None):
        self.clock.tick()
        return self.target.backup(str(dest), full, keep)


def restored(dest, folder, date):
    """The blobs of a restore of ``dest`` as of ``date`` into ``folder``: name -> text."""
    target = FileTarget(str(folder / 'Data.fs'), str(folder / 'blobs'), 'the FileStorage')
    target.restore(str(dest), date)
    db = DB(FileStorage(target.data_fs, blob_dir=target.blob_dir, read_only=True))
    try:
        conn = db.open()
        found = {}
        for name, blob in conn.root().items():
            with blob.open('r') as f:
                found[name] = f.read().decode()
        conn.close()
        return found
    finally:
        db.close()


def backed_up_blobs(dest):
    """The texts of the blob files in the backup folder, sorted."""
    texts = []
    for relative, _tid in blob_files(str(dest / BLOBS)):
        with open(os.path.join(dest, BLOBS, relative)) as f:
            texts.append(f.read())
    return sorted(texts)


def backup_files(dest):
    return sorted(name for name in os.listdir(dest / DATAFS)
                  if name.endswith(('.fs', '.deltafs')))


def test_keep_removes_old_backups_and_only_the_blobs_no_kept_backup_needs(tmp_path, clock):
    live, dest = Live(tmp_path / 'live', clock), tmp_path / 'backups'
    try:
        live.change(a='a1', b='b1')
        assert '(full)' in live.backup(dest, full=True)                    # 1: chain 1
        live.change(a='a2')
        assert '(incremental)' in live.backup(dest)                        # 2
        live.change(b=None)
        live.pack()  # a1 and b1 are gone from the database: only chain 1 holds them
        live.change(d='d1')
        live.change(d='d2')  # d1 superseded but not packed: chain 2's records hold it
        live.backup(dest, full=True)                                       # 3: chain 2
        live.change(e='e1')
        assert '(incremental)' in live.backup(dest)                        # 4
        live.change(e=None)
        live.pack()  # e1 (and d1) are only in chain 2 now: e1 only in its increment
        assert backed_up_blobs(dest) == ['a1', 'a2', 'b1', 'd1', 'd2', 'e1']

        done = live.backup(dest, full=True, keep=2)                        # 5: chain 3
        assert 'Removed 1 older full backup with its increments (2 repozo files) and 2 blob ' \
               'files no kept backup needs; kept the newest 2 full backups.' in done, done
        assert backup_files(dest) == [clock.at(3) + '.fs', clock.at(4) + '.deltafs',
                                      clock.at(5) + '.fs']
        assert not [n for n in os.listdir(dest / DATAFS)
                    if n.startswith((clock.at(1), clock.at(2)))]
        # a2 is older than the oldest kept full backup and stays: chain 2 refers to it.
        assert backed_up_blobs(dest) == ['a2', 'd1', 'd2', 'e1']
        expected = {3: {'a': 'a2', 'd': 'd2'}, 4: {'a': 'a2', 'd': 'd2', 'e': 'e1'},
                    5: {'a': 'a2', 'd': 'd2'}}
        for i, blobs in expected.items():
            assert restored(dest, tmp_path / ('r%d' % i), clock.at(i)) == blobs
        with pytest.raises(BackupError, match='no backup made at or before'):
            restored(dest, tmp_path / 'r2', clock.at(2))

        # Nothing older to remove: nothing goes.
        live.change(f='f1')
        assert 'nothing to remove' in live.backup(dest, keep=2)             # 6
        assert backed_up_blobs(dest) == ['a2', 'd1', 'd2', 'e1', 'f1']

        # Keeping one: chain 2 and what only it needed (d1, e1) go.
        done = live.backup(dest, full=True, keep=1)                        # 7: chain 4
        assert 'Removed 2 older full backups with their increments (4 repozo files) and 2 ' \
               'blob files' in done, done
        assert backup_files(dest) == [clock.at(7) + '.fs']
        assert backed_up_blobs(dest) == ['a2', 'd2', 'f1']
        assert restored(dest, tmp_path / 'r7', None) == {'a': 'a2', 'd': 'd2', 'f': 'f1'}
    finally:
        live.db.close()


def test_keep_refuses_less_than_one_or_a_folder_shared_with_dumps(tmp_path, clock):
    live, dest = Live(tmp_path / 'live', clock), tmp_path / 'backups'
    try:
        live.change(a='a1')
        live.backup(dest, full=True)
        live.change(a='a2')
        live.backup(dest, full=True)
        before = sorted(os.listdir(dest / DATAFS)), backed_up_blobs(dest)
        for keep in (0, -1):
            with pytest.raises(BackupError, match='--keep is the number of full backups'):
                live.backup(dest, full=True, keep=keep)
        assert (sorted(os.listdir(dest / DATAFS)), backed_up_blobs(dest)) == before
        # Dumps of a PostgreSQL database in the same folder share its blobs/: refused.
        os.makedirs(dest / 'postgres')
        (dest / 'postgres' / '2026-01-01-00-00-00.dump').write_bytes(b'PGDMP')
        with pytest.raises(BackupError, match='holds backups of another database too'):
            live.backup(dest, full=True, keep=1)
        assert (sorted(os.listdir(dest / DATAFS)), backed_up_blobs(dest)) == before
    finally:
        live.db.close()
