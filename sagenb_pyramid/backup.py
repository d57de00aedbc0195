"""Backups and restores of the database (``sagenb-admin CONFIG backup DEST [--full]
[--keep N]`` and ``sagenb-admin CONFIG restore SRC [--date ...] [--force]``), without the
application.

A FileStorage (the embedded one in ``data_dir``, or the ZEO server's, named by its
``zeo.conf``) is backed up with ZODB's ``repozo`` (full and incremental copies of
``Data.fs``, read as the prefix of complete transactions, so while servers write) into
``DEST/datafs/``, then the blob files of those transactions into ``DEST/blobs/``: blob
files never change once written and are named by oid and transaction id, so the files
whose transaction id is at most the backup's last one, copied after repozo's step, are
exactly what that backup's transactions refer to (later files wait for the next backup).
A restore rebuilds ``Data.fs`` with repozo (as of ``--date``), reads it through and
copies the blob revisions its records refer to, refusing if one is missing.

PostgreSQL (RelStorage, ``postgres://`` URIs) is dumped with ``pg_dump -Fc`` (one
snapshot of the whole database, its blobs included when they live there: large objects)
into ``DEST/postgres/`` and restored with ``pg_restore`` in one transaction;
docs/operations.md says why not ``zodbconvert``.  With ``shared_blob_dir=true`` the blobs
are files: the blob records of the dump's snapshot are listed beside it
(``<dump>.blobs``), those files copied into ``DEST/blobs/``, and a restore refuses,
changing nothing, when one is missing.

``--keep N`` removes all but the newest N full backups (a repozo full and its increments,
or a dump), then the blob files that no kept backup's records refer to.

Errors are ``BackupError`` with a sentence for the admin (scripts/admin.py prints it).
"""
import datetime
import os
import re
import shutil
import subprocess
import time
from urllib.parse import parse_qs, unquote, urlsplit

from ZODB.utils import p64, repr_to_oid, u64

DATAFS, BLOBS, POSTGRES = 'datafs', 'blobs', 'postgres'
# repozo's dates (UTC): yyyy-mm-dd[-hh[-mm[-ss]]]
DATE = re.compile(r'^\d{4}-\d{2}-\d{2}(-\d{2}){0,3}$')
SECRET_FILE = 'session-secret'  # a development server's session secret (settings.py)


class BackupError(Exception):
    """What went wrong, said for the admin; nothing was changed where it was raised."""


def target_of(settings, zeo_conf=None):
    """What ``settings`` store the database in: a ``FileTarget`` or ``PostgresTarget``."""
    uri = settings['zodbconn.uri']
    scheme = uri.split(':', 1)[0].lower()
    if scheme == 'file':
        parts = urlsplit(uri)
        query = parse_qs(parts.query)
        blobs = query.get('blobstorage_dir', [None])[0]
        return FileTarget(unquote(parts.path), blobs, 'the FileStorage',
                          secret_dir=settings.get('data_dir'))
    if scheme == 'zeo':
        if not zeo_conf:
            raise BackupError(
                'the database is on a ZEO server: run this command where its Data.fs is, '
                'naming its configuration: --zeo-conf /path/to/zeo.conf')
        path, blobs = read_zeo_conf(zeo_conf)
        return FileTarget(path, blobs, "the ZEO server's FileStorage")
    if scheme in ('postgres', 'postgresql'):
        return PostgresTarget(uri)
    raise BackupError('backups are made of a FileStorage (file://, the default), a ZEO '
                      "server's FileStorage (zeo://) or PostgreSQL (postgres://), not of "
                      '%s:// databases' % scheme)


def read_zeo_conf(path):
    """The ``(Data.fs, blob dir)`` of the ``<filestorage>`` in a ZEO server's config."""
    import ZConfig
    import ZEO
    if not os.path.isfile(path):
        raise BackupError('no ZEO configuration file %s' % path)
    schema = ZConfig.loadSchema(os.path.join(os.path.dirname(ZEO.__file__), 'schema.xml'))
    try:
        config, _ = ZConfig.loadConfig(schema, os.path.abspath(path))
    except ZConfig.ConfigurationError as exc:
        raise BackupError('%s: %s' % (path, exc)) from None
    found = [s.config for s in config.storages if s.config.getSectionType() == 'filestorage']
    if len(found) != 1:
        raise BackupError('%s: one <filestorage> section is needed (found %d)'
                          % (path, len(found)))
    return found[0].path, found[0].blob_dir


def writable_folder(path, what):
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise BackupError('cannot make %s %s: %s' % (what, path, exc.strerror)) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise BackupError('%s %s is not writable by this user' % (what, path))


def stamp_time(tid):
    """A transaction id as a UTC time for people."""
    from persistent.TimeStamp import TimeStamp
    seconds = TimeStamp(tid).timeTime()
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime(
        '%Y-%m-%d %H:%M:%S UTC')


def copy_atomically(source, target):
    """A file copied under a temporary name, then renamed: a copy cut short leaves no
    file that a later backup would take as done."""
    os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
    part = target + '.part'
    shutil.copyfile(source, part)
    os.rename(part, target)


def blob_files(folder):
    """``(relative path, transaction id)`` of every blob file under ``folder``."""
    for here, dirs, files in os.walk(folder):
        if here == folder and 'tmp' in dirs:
            dirs.remove('tmp')  # uncommitted uploads
        for name in files:
            if name.endswith('.blob'):
                try:
                    tid = repr_to_oid(name[:-len('.blob')])
                except (ValueError, TypeError):
                    continue
                yield os.path.relpath(os.path.join(here, name), folder), tid


def copy_new_blobs(live, dest, up_to=None):
    """Copy the blob files of ``live`` not yet in ``dest`` whose transaction id is at
    most ``up_to`` (None: all); their number."""
    if not live or not os.path.isdir(live):
        return 0
    copied = 0
    for relative, tid in blob_files(live):
        if up_to is not None and tid > up_to:
            continue  # committed after the backup's last transaction: the next backup's
        target = os.path.join(dest, relative)
        if not os.path.exists(target):
            copy_atomically(os.path.join(live, relative), target)
            copied += 1
    layout = os.path.join(live, '.layout')
    if os.path.exists(layout):
        copy_atomically(layout, os.path.join(dest, '.layout'))
    return copied


def last_tid(path):
    """The id of the last transaction in a FileStorage file or a repozo increment (each
    transaction ends with its length repeated), or None for none."""
    size = os.path.getsize(path)
    with open(path, 'rb') as f:
        if size < 8 + 8:
            return None
        f.seek(size - 8)
        length = u64(f.read(8))
        start = size - 8 - length
        if start < 0:
            return None
        f.seek(start)
        return f.read(8)


class FileTarget:
    """A FileStorage and its blob directory: the embedded database or a ZEO server's."""

    def __init__(self, data_fs, blob_dir, name, secret_dir=None):
        self.data_fs = os.path.abspath(data_fs)
        self.blob_dir = os.path.abspath(blob_dir) if blob_dir else None
        self.name = name
        self.secret_dir = secret_dir

    # Backing up.

    def backup(self, dest, full=False, keep=None):
        from ZODB.scripts import repozo
        check_keep(keep, dest, DATAFS)
        if not os.path.isfile(self.data_fs):
            raise BackupError('no database at %s: nothing to back up' % self.data_fs)
        writable_folder(dest, 'the backup folder')
        repository = os.path.join(dest, DATAFS)
        writable_folder(repository, 'the backup folder')
        with hold(os.path.join(dest, 'backup.lock'),
                  'another backup into %s is running' % dest):
            before = set(os.listdir(repository))
            options = repozo.parseargs(['-B', '-r', repository, '-f', self.data_fs] +
                                       (['-F'] if full else []))
            try:
                repozo.do_backup(options)
            except repozo.WouldOverwriteFiles:
                raise BackupError('a backup was made into %s this same second: run again '
                                  'in a second' % dest) from None
            except (repozo.RepozoError, OSError) as exc:
                raise BackupError('repozo could not back up %s: %s'
                                  % (self.data_fs, exc)) from None
            made = sorted(set(os.listdir(repository)) - before)
            kind = ('full' if any(n.endswith('.fs') for n in made) else
                    'incremental' if any(n.endswith('.deltafs') for n in made) else
                    'unchanged since the last backup')
            newest = newest_backup_file(repository)
            tid = last_tid(newest) if newest else None
            # After repozo's step: the files of every transaction it copied are there.
            copied = copy_new_blobs(self.blob_dir, os.path.join(dest, BLOBS), tid)
            secret = self.secret_dir and os.path.join(self.secret_dir, SECRET_FILE)
            if secret and os.path.isfile(secret):
                copy_atomically(secret, os.path.join(dest, SECRET_FILE))
            pruned = pruning(prune_repozo, dest, keep) if keep else None
        when = stamp_time(tid) if tid else 'no transaction'
        done = ('Backed up %s (%s) into %s: as of %s, %d new blob file%s.'
                % (self.name, kind, dest, when, copied, '' if copied == 1 else 's'))
        return done + ('\n' + pruned if pruned else '')

    # Restoring.

    def exists(self):
        blobs = self.blob_dir and os.path.isdir(self.blob_dir) and any(
            name not in ('tmp', '.layout') for name in os.listdir(self.blob_dir))
        return os.path.exists(self.data_fs) or bool(blobs)

    def restore(self, src, date=None, force=False):
        from ZODB.scripts import repozo
        repository = os.path.join(src, DATAFS)
        if not os.path.isdir(repository) or newest_backup_file(repository) is None:
            if os.path.isdir(os.path.join(src, POSTGRES)):
                raise BackupError('%s holds a backup of a PostgreSQL database, and this '
                                  'configuration uses a FileStorage' % src)
            raise BackupError('%s holds no backup made by sagenb-admin backup (no %s/ '
                              'with repozo files)' % (src, DATAFS))
        if date and not DATE.match(date):
            raise BackupError('--date is a UTC time as yyyy-mm-dd[-hh[-mm[-ss]]], not %r'
                              % date)
        folder = os.path.dirname(self.data_fs)
        writable_folder(folder, 'the database folder')
        with hold(self.data_fs + '.lock', '%s at %s is in use (a running notebook or ZEO '
                  'server?): stop it, then restore' % (self.name, self.data_fs)):
            if self.exists() and not force:
                raise BackupError(
                    'a database exists at %s: restoring replaces it. Stop every server '
                    'using it and run again with --force (it is kept aside, renamed)'
                    % self.data_fs)
            restoring = self.data_fs + '.restoring'
            remove_files(restoring, restoring + '.index', restoring + '.part')
            argv = ['-R', '-w', '-r', repository, '-o', restoring]
            options = repozo.parseargs(argv + (['-D', date] if date else []))
            try:
                repozo.do_recover(options)
            except repozo.NoFiles:
                remove_files(restoring, restoring + '.index', restoring + '.part')
                raise BackupError('%s holds no backup made at or before %s (UTC)'
                                  % (src, date)) from None
            except (repozo.RepozoError, OSError) as exc:
                remove_files(restoring, restoring + '.index', restoring + '.part')
                raise BackupError('repozo could not restore from %s: %s'
                                  % (repository, exc)) from None
            try:
                tid, needed = blobs_of(restoring)
                new_blobs = (self.blob_dir or os.path.join(folder, 'blobs')) + '.restoring'
                shutil.rmtree(new_blobs, ignore_errors=True)
                copy_needed_blobs(os.path.join(src, BLOBS), new_blobs, needed)
            except BaseException:
                remove_files(restoring, restoring + '.index')
                raise
            kept = self.put_aside() if self.exists() else []
            os.rename(restoring, self.data_fs)
            if os.path.exists(restoring + '.index'):
                os.rename(restoring + '.index', self.data_fs + '.index')
            if self.blob_dir:
                os.rename(new_blobs, self.blob_dir)
            else:
                shutil.rmtree(new_blobs)
            secret = self.secret_dir and os.path.join(self.secret_dir, SECRET_FILE)
            if secret and not os.path.exists(secret) and \
                    os.path.isfile(os.path.join(src, SECRET_FILE)):
                copy_atomically(os.path.join(src, SECRET_FILE), secret)
        lines = ['Restored %s at %s as of %s: %d blob file%s.' % (
            self.name, self.data_fs, stamp_time(tid) if tid else 'no transaction',
            len(needed), '' if len(needed) == 1 else 's')]
        if kept:
            lines.append('The database it replaced is kept as %s.' % ' and '.join(kept))
        return '\n'.join(lines)

    def put_aside(self):
        """Move the database being replaced out of the way; the names it got."""
        suffix = '.replaced-%s' % time.strftime('%Y-%m-%d-%H-%M-%S', time.gmtime())
        kept = []
        for path in (self.data_fs, self.blob_dir):
            if path and os.path.exists(path):
                os.rename(path, path + suffix)
                kept.append(path + suffix)
        # The old index and temporary files describe the old file: never the new one.
        remove_files(*(self.data_fs + ext for ext in ('.index', '.tmp', '.old')))
        return kept

    def open_database(self):
        """The restored database, to check its evolve steps."""
        from ZODB.FileStorage import FileStorage
        from . import _database_class
        return _database_class()(FileStorage(self.data_fs, blob_dir=self.blob_dir,
                                             read_only=True))


def newest_backup_file(repository):
    names = sorted(n for n in os.listdir(repository) if n.endswith(('.fs', '.deltafs')))
    return os.path.join(repository, names[-1]) if names else None


def remove_files(*paths):
    for path in paths:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass


def blobs_of(path):
    """The last transaction id of the FileStorage at ``path`` and the ``(oid, tid)`` of
    every blob revision its records hold."""
    from ZODB.FileStorage import FileStorage
    from ZODB.blob import is_blob_record
    storage = FileStorage(path, read_only=True)
    needed = set()
    try:
        for txn in storage.iterator():
            for record in txn:
                if record.data and is_blob_record(record.data):
                    needed.add((record.oid, record.tid))
        return storage.lastTransaction(), needed
    finally:
        storage.close()


def layout_of(folder):
    """The name and ZODB layout of the blob folder ``folder`` (its ``.layout``, else
    ZODB's default for a new folder, bushy)."""
    from ZODB.blob import LAYOUTS
    name = 'bushy'
    layout_file = os.path.join(folder, '.layout')
    if os.path.exists(layout_file):
        with open(layout_file) as f:
            name = f.read().strip() or name
    if name not in LAYOUTS:
        raise BackupError('%s names an unknown blob layout %r' % (layout_file, name))
    return name, LAYOUTS[name]


def missing_blobs(source, needed):
    """The paths (relative to ``source``) of the blob revisions ``needed`` that the blob
    folder ``source`` lacks."""
    layout = layout_of(source)[1]
    return [relative for relative in (layout.getBlobFilePath(oid, tid)
                                      for oid, tid in sorted(needed))
            if not os.path.exists(os.path.join(source, relative))]


def lacking(count, example, source, what):
    return BackupError('the backup lacks %d blob file%s of %s (e.g. %s under %s): nothing '
                       'was restored' % (count, '' if count == 1 else 's', what, example,
                                         source))


def copy_needed_blobs(source, target, needed):
    name, layout = layout_of(source)
    missing = missing_blobs(source, needed)
    if missing:
        raise lacking(len(missing), missing[0], source, 'its transactions')
    os.makedirs(target, mode=0o700)
    for oid, tid in sorted(needed):
        relative = layout.getBlobFilePath(oid, tid)
        copy_atomically(os.path.join(source, relative), os.path.join(target, relative))
    with open(os.path.join(target, '.layout'), 'w') as f:
        f.write(name)


def remove_unneeded_blobs(folder, needed):
    """Remove the blob files under ``folder`` whose ``(oid, tid)`` is not in ``needed``
    (and the folders left empty); their number."""
    if not os.path.isdir(folder):
        return 0
    layout = layout_of(folder)[1]
    keep = {os.path.normpath(layout.getBlobFilePath(oid, tid)) for oid, tid in needed}
    removed = 0
    for relative, _tid in list(blob_files(folder)):
        if os.path.normpath(relative) not in keep:
            os.remove(os.path.join(folder, relative))
            removed += 1
    for here, _dirs, _files in os.walk(folder, topdown=False):
        if here != folder and not os.listdir(here):
            os.rmdir(here)
    return removed


def plural(count, word):
    return '%d %s%s' % (count, word, '' if count == 1 else 's')


def check_keep(keep, dest=None, kind=None):
    """Refuse a ``--keep`` that is not 1 or more, or a ``dest`` that also holds backups of
    the other kind than ``kind`` (DATAFS or POSTGRES): they share ``blobs/``, and pruning
    reads only one kind's needs."""
    if keep is None:
        return
    if not isinstance(keep, int) or keep < 1:
        raise BackupError('--keep is the number of full backups to keep: 1 or more, not %r'
                          % (keep,))
    other = os.path.join(dest, POSTGRES if kind == DATAFS else DATAFS) if dest else None
    if other and os.path.isdir(other) and os.listdir(other):
        raise BackupError('%s holds backups of another database too (%s/): they share its '
                          'blobs/, and --keep would remove blob files they need. Back up '
                          'into a folder of its own; nothing was done' % (dest, other))


def pruning(prune, dest, keep):
    """``prune(dest, keep)``'s sentence; its error said as after a backup that was made."""
    try:
        return prune(dest, keep)
    except BackupError as exc:
        raise BackupError('the backup was made, but removing older ones failed: %s'
                          % exc) from None


# Pruning repozo's files.

def is_full(name):
    return name.endswith(('.fs', '.fsz'))


def repozo_chains(repository):
    """The backups in a repozo folder, oldest first, each the file names of a full backup
    and the increments after it (increments before any full, which nothing restores, are
    a first chain of their own)."""
    from ZODB.scripts.repozo import is_data_file
    chains = []
    for name in sorted(filter(is_data_file, os.listdir(repository))):
        if is_full(name) or not chains:
            chains.append([name])
        else:
            chains[-1].append(name)
    return chains


class ChainFile:
    """A full backup and its increments read as the one ``Data.fs`` they restore to
    (each increment goes on where the file before it ended), for ``FileIterator``."""

    def __init__(self, paths):
        self.name = paths[-1]
        self.parts, start = [], 0
        for path in paths:
            size = os.path.getsize(path)
            self.parts.append((start, start + size, open(path, 'rb')))
            start += size
        self.size, self.pos = start, 0

    def seek(self, pos, whence=0):
        self.pos = pos + (0, self.pos, self.size)[whence]
        return self.pos

    def tell(self):
        return self.pos

    def read(self, size=-1):
        end = self.size if size is None or size < 0 else min(self.size, self.pos + size)
        chunks = []
        for start, stop, f in self.parts:
            if stop > self.pos and start < end:
                f.seek(max(self.pos, start) - start)
                chunks.append(f.read(min(end, stop) - max(self.pos, start)))
        data = b''.join(chunks)
        self.pos += len(data)
        return data

    def close(self):
        for _start, _stop, f in self.parts:
            f.close()


def chain_blobs(repository, chain):
    """The ``(oid, tid)`` of every blob revision the records of a repozo chain hold: what
    a restore as of any of its backups may need."""
    from ZODB.blob import is_blob_record
    from ZODB.FileStorage.FileStorage import FileIterator, packed_version

    if any(name.endswith('z') for name in chain):
        raise BackupError('%s holds compressed repozo files (%s): these are not made by '
                          'sagenb-admin backup, and --keep does not read them'
                          % (repository, chain[0]))

    class ChainIterator(FileIterator):
        def __init__(self, file):  # FileIterator's, on a file object
            self._file, self._file_name = file, file.name
            self._file_size, self._pos, self._start, self._stop = file.size, 4, None, None

    file = ChainFile([os.path.join(repository, name) for name in chain])
    try:
        if file.read(4) != packed_version:
            raise BackupError('%s is not a FileStorage backup: nothing was removed'
                              % os.path.join(repository, chain[0]))
        needed = set()
        for txn in ChainIterator(file):
            for record in txn:
                if record.data and is_blob_record(record.data):
                    needed.add((record.oid, record.tid))
        return needed
    finally:
        file.close()


def prune_repozo(dest, keep):
    """Keep the newest ``keep`` full backups in ``dest`` with their increments, and the
    blob files their records refer to; a sentence saying what went."""
    check_keep(keep, dest, DATAFS)
    repository = os.path.join(dest, DATAFS)
    chains = repozo_chains(repository)
    fulls = [chain for chain in chains if is_full(chain[0])]
    gone = [chain for chain in chains if not is_full(chain[0])] + fulls[:-keep]
    if not gone:
        return 'Kept the %s (--keep %d): nothing to remove.' % (
            plural(len(fulls), 'full backup'), keep)
    # What the kept ones need, read before anything is removed: a failure removes nothing.
    needed = set()
    for chain in fulls[-keep:]:
        needed |= chain_blobs(repository, chain)
    files = 0
    for chain in gone:
        for name in chain:
            root = os.path.join(repository, os.path.splitext(name)[0])
            remove_files(os.path.join(repository, name), root + '.dat', root + '.index')
            files += 1
    removed = remove_unneeded_blobs(os.path.join(dest, BLOBS), needed)
    return ('Removed %s with %s increments (%s) and %s no kept backup needs; kept the '
            'newest %s.' % (plural(len(gone), 'older full backup'),
                            'its' if len(gone) == 1 else 'their', plural(files, 'repozo file'),
                            plural(removed, 'blob file'),
                            plural(min(keep, len(fulls)), 'full backup')))


class hold:
    """An exclusive ``zc.lockfile`` for the block; ``busy``: the error when taken."""

    def __init__(self, path, busy):
        self.path, self.busy, self.lock = path, busy, None

    def __enter__(self):
        import zc.lockfile
        try:
            self.lock = zc.lockfile.LockFile(self.path)
        except zc.lockfile.LockError:
            raise BackupError(self.busy) from None
        except OSError as exc:
            raise BackupError('cannot lock %s: %s' % (self.path, exc.strerror)) from None
        return self

    def __exit__(self, *exc):
        self.lock.close()


class PostgresTarget:
    """A RelStorage database on PostgreSQL, reached with libpq's tools (``pg_dump``,
    ``pg_restore``, ``psql``); the password goes in their environment, never their
    command line."""

    name = 'the PostgreSQL database'

    def __init__(self, uri):
        parts = urlsplit(uri)
        query = parse_qs(parts.query)
        self.dbname = unquote(parts.path.lstrip('/'))
        if not self.dbname:
            raise BackupError('the postgres:// URI names no database')
        self.env = dict(os.environ, PGDATABASE=self.dbname)
        self.params = {'dbname': self.dbname}  # psycopg2's, for the snapshot
        for key, name, value in (('PGHOST', 'host', parts.hostname),
                                 ('PGPORT', 'port', parts.port),
                                 ('PGUSER', 'user', parts.username),
                                 ('PGPASSWORD', 'password', parts.password)):
            if value is not None:
                self.env[key] = self.params[name] = unquote(str(value))
        shared = query.get('shared_blob_dir', ['false'])[0].lower() in ('1', 'true', 'yes')
        # Blobs in a shared folder are files (backed up as a FileStorage's); otherwise
        # they are in the database (blob_dir is then only each server's cache).
        self.blob_dir = query.get('blob_dir', [None])[0] if shared else None

    def run(self, tool, *args, stdin=None):
        path = shutil.which(tool)
        if path is None:
            raise BackupError('%s is not installed (Debian: apt install postgresql-client)'
                              % tool)
        done = subprocess.run([path, *args], env=self.env, input=stdin,
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise BackupError('%s failed: %s' % (tool, done.stderr.strip()
                                                 or 'exit status %d' % done.returncode))
        return done.stdout

    def query(self, sql):
        return self.run('psql', '-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-c', sql).strip()

    def connect(self):
        try:
            import psycopg2
        except ImportError:
            raise BackupError("psycopg2, RelStorage's PostgreSQL driver, is not installed "
                              '(pip install psycopg2-binary)') from None
        try:
            return psycopg2.connect(**self.params)
        except psycopg2.Error as exc:
            raise BackupError('cannot connect to the PostgreSQL database %s: %s'
                              % (self.dbname, str(exc).strip())) from None

    def dump(self, target):
        """``pg_dump`` into ``target``: one consistent snapshot while servers write,
        large objects (blobs in the database) included.  With a shared blob folder, the
        ``(oid, tid)`` of the blob records in that same snapshot (else None)."""
        args = ['-Fc', '--no-owner', '-f', target, self.dbname]
        if not self.blob_dir:
            self.run('pg_dump', *args)
            return None
        import psycopg2
        conn = self.connect()
        try:
            conn.set_session(isolation_level='REPEATABLE READ', readonly=True)
            cursor = conn.cursor()
            # The dump reads the snapshot this transaction exported (it stays open).
            cursor.execute('SELECT pg_export_snapshot()')
            self.run('pg_dump', '--snapshot', cursor.fetchone()[0], *args)
            return blob_records(cursor)
        except psycopg2.Error as exc:
            raise BackupError('PostgreSQL refused reading the blob records of %s: %s'
                              % (self.dbname, str(exc).strip())) from None
        finally:
            conn.close()

    def backup(self, dest, full=False, keep=None):
        check_keep(keep, dest, POSTGRES)
        folder = os.path.join(dest, POSTGRES)
        writable_folder(dest, 'the backup folder')
        writable_folder(folder, 'the backup folder')
        with hold(os.path.join(dest, 'backup.lock'),
                  'another backup into %s is running' % dest):
            stamp = time.strftime('%Y-%m-%d-%H-%M-%S', time.gmtime())
            target = os.path.join(folder, stamp + '.dump')
            if os.path.exists(target):
                raise BackupError('a backup was made into %s this same second: run again '
                                  'in a second' % dest)
            try:
                needed = self.dump(target + '.part')
                copied = 0
                if needed is not None:
                    copied = self.copy_blobs(needed, os.path.join(dest, BLOBS))
                    write_blob_list(blob_list_of(target), needed)
            except BaseException:
                remove_files(target + '.part')
                raise
            os.rename(target + '.part', target)
            pruned = pruning(prune_dumps, dest, keep) if keep else None
        done = ('Backed up %s %s into %s (pg_dump: always whole; %s), %d new blob file%s.'
                % (self.name, self.dbname, target, stamp,
                   copied, '' if copied == 1 else 's'))
        return done + ('\n' + pruned if pruned else '')

    def copy_blobs(self, needed, dest):
        """Copy the blob files ``needed`` from the shared blob folder into ``dest`` (those
        not there yet); their number.  A missing one (removed by a pack since the dump's
        snapshot, or lost) is an error: that backup could not be restored."""
        source = self.blob_dir
        missing = missing_blobs(source, needed)
        if missing:
            raise BackupError(
                'the blob folder %s lacks %s that the database refers to (e.g. %s): no '
                'backup was made (a pack while backing up? run again)'
                % (source, plural(len(missing), 'blob file'), missing[0]))
        name, layout = layout_of(source)
        if not os.path.exists(os.path.join(dest, '.layout')):
            os.makedirs(dest, mode=0o700, exist_ok=True)
            with open(os.path.join(dest, '.layout'), 'w') as f:
                f.write(name)
        elif layout_of(dest)[0] != name:
            raise BackupError('%s holds blob files in the %s layout, and %s in the %s one'
                              % (dest, layout_of(dest)[0], source, name))
        copied = 0
        for oid, tid in sorted(needed):
            relative = layout.getBlobFilePath(oid, tid)
            if not os.path.exists(os.path.join(dest, relative)):
                copy_atomically(os.path.join(source, relative), os.path.join(dest, relative))
                copied += 1
        return copied

    def restore(self, src, date=None, force=False):
        folder = os.path.join(src, POSTGRES)
        dumps = sorted(n for n in os.listdir(folder) if n.endswith('.dump')) \
            if os.path.isdir(folder) else []
        if not dumps:
            if os.path.isdir(os.path.join(src, DATAFS)):
                raise BackupError('%s holds a backup of a FileStorage, and this '
                                  'configuration uses PostgreSQL' % src)
            raise BackupError('%s holds no backup made by sagenb-admin backup (no %s/ '
                              'with dumps)' % (src, POSTGRES))
        if date:
            if not DATE.match(date):
                raise BackupError('--date is a UTC time as yyyy-mm-dd[-hh[-mm[-ss]]], '
                                  'not %r' % date)
            limit = (date + '-99-99-99')[:19]
            dumps = [n for n in dumps if n[:-len('.dump')] <= limit]
            if not dumps:
                raise BackupError('%s holds no backup made at or before %s (UTC)'
                                  % (src, date))
        dump = os.path.join(folder, dumps[-1])
        needed = self.blobs_for(src, dump)
        others = int(self.query('SELECT count(*) FROM pg_stat_activity WHERE datname = '
                                'current_database() AND pid <> pg_backend_pid()') or 0)
        if others:
            raise BackupError('the database %s is in use (%d other connection%s): stop the '
                              'app servers and worker hosts, then restore' % (
                                  self.dbname, others, '' if others == 1 else 's'))
        tables = int(self.query("SELECT count(*) FROM information_schema.tables WHERE "
                                "table_schema = 'public'") or 0)
        if tables and not force:
            raise BackupError('the database %s holds tables: restoring replaces them. Stop '
                              'every server using it and run again with --force'
                              % self.dbname)
        if needed is not None:
            writable_folder(self.blob_dir, 'the blob folder')
        self.run('pg_restore', '--clean', '--if-exists', '--no-owner',
                 '--single-transaction', '-d', self.dbname, dump)
        count = 0
        if needed is not None:
            count = put_blobs(os.path.join(src, BLOBS), self.blob_dir, needed)
        return 'Restored %s %s from %s: %d blob file%s.' % (
            self.name, self.dbname, dump, count, '' if count == 1 else 's')

    def blobs_for(self, src, dump):
        """The ``(oid, tid)`` of the blob files a restore of ``dump`` puts into the shared
        blob folder (None: its blobs are in the dump), refusing, before anything changes,
        a backup that lacks one or was made with blobs kept the other way."""
        listed = blob_list_of(dump)
        if not self.blob_dir:
            if os.path.exists(listed):
                raise BackupError(
                    '%s was made with shared_blob_dir=true (its blobs are files, not in the '
                    'dump), and this configuration keeps blobs in the database: restore it '
                    'with the URI it was made with' % dump)
            return None
        if not os.path.exists(listed):
            raise BackupError(
                '%s has no list of blob files beside it: it was made with the blobs in the '
                'database (shared_blob_dir=false), and this configuration keeps them in a '
                'shared folder: restore it with the URI it was made with' % dump)
        needed = read_blob_list(listed)
        source = os.path.join(src, BLOBS)
        missing = missing_blobs(source, needed)
        if missing:
            raise lacking(len(missing), missing[0], source, os.path.basename(dump))
        return needed

    def open_database(self):
        return None  # its evolve steps are checked by the next command or server start


# PostgreSQL with a shared blob folder: the blob records of a dump, listed beside it.

def blob_records(cursor):
    """The ``(oid, tid)`` of every blob record in RelStorage's ``object_state`` as the
    transaction of ``cursor`` sees it (every kept revision when it keeps history)."""
    import psycopg2
    from ZODB.blob import is_blob_record
    cursor.execute("SELECT to_regclass('object_state') IS NOT NULL")
    if not cursor.fetchone()[0]:
        return set()  # RelStorage has not made its tables yet: an empty database
    # Only records naming the class can be blobs; is_blob_record reads the pickle.
    cursor.execute('SELECT zoid, tid, state FROM object_state WHERE position(%s in state) > 0',
                   (psycopg2.Binary(b'ZODB.blob'),))
    return {(p64(zoid), p64(tid)) for zoid, tid, state in cursor
            if is_blob_record(bytes(state))}


def blob_list_of(dump):
    """``<stamp>.blobs`` beside ``<stamp>.dump``."""
    return dump[:-len('.dump')] + '.blobs'


def write_blob_list(path, needed):
    with open(path + '.part', 'w') as f:
        f.write('# oid tid of every blob record in the dump beside this file\n')
        for oid, tid in sorted(needed):
            f.write('%s %s\n' % (oid.hex(), tid.hex()))
    os.rename(path + '.part', path)


def read_blob_list(path):
    needed = set()
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if line.startswith('#') or not line.strip():
                continue
            try:
                oid, tid = (bytes.fromhex(word) for word in line.split())
            except ValueError:
                oid = tid = b''
            if len(oid) != 8 or len(tid) != 8:
                raise BackupError('%s, line %d: not an oid and a tid' % (path, number))
            needed.add((oid, tid))
    return needed


def put_blobs(source, target, needed):
    """Copy the blob files ``needed`` from a backup's ``blobs/`` into the shared blob
    folder ``target`` (in its layout), where it lacks them; their number."""
    name, layout = layout_of(source)
    if os.path.exists(os.path.join(target, '.layout')):
        target_layout = layout_of(target)[1]
    else:
        target_layout = layout
        with open(os.path.join(target, '.layout'), 'w') as f:
            f.write(name)
    copied = 0
    for oid, tid in sorted(needed):
        path = os.path.join(source, layout.getBlobFilePath(oid, tid))
        there = os.path.join(target, target_layout.getBlobFilePath(oid, tid))
        if not os.path.exists(there) or os.path.getsize(there) != os.path.getsize(path):
            copy_atomically(path, there)
            copied += 1
    return copied


def prune_dumps(dest, keep):
    """Keep the newest ``keep`` dumps in ``dest`` (with their lists of blob files) and
    the blob files those lists name; a sentence saying what went."""
    check_keep(keep, dest, POSTGRES)
    folder = os.path.join(dest, POSTGRES)
    dumps = sorted(n for n in os.listdir(folder) if n.endswith('.dump'))
    gone, kept = dumps[:-keep], dumps[-keep:]
    if not gone:
        return 'Kept the %s (--keep %d): nothing to remove.' % (plural(len(dumps), 'dump'),
                                                                keep)
    needed = set()  # a dump without a list holds its blobs
    for name in kept:
        listed = blob_list_of(os.path.join(folder, name))
        if os.path.exists(listed):
            needed |= read_blob_list(listed)
    for name in gone:
        path = os.path.join(folder, name)
        remove_files(path, blob_list_of(path))
    removed = remove_unneeded_blobs(os.path.join(dest, BLOBS), needed)
    return 'Removed %s and %s no kept dump needs; kept the newest %s.' % (
        plural(len(gone), 'older dump'), plural(removed, 'blob file'),
        plural(len(kept), 'dump'))
