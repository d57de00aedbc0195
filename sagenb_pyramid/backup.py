"""Backups and restores of the database (``sagenb-admin CONFIG backup DEST [--full]`` and
``sagenb-admin CONFIG restore SRC [--date ...] [--force]``), without the application.

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
docs/operations.md says why not ``zodbconvert``.

Errors are ``BackupError`` with a sentence for the admin (scripts/admin.py prints it).
"""
import datetime
import os
import re
import shutil
import subprocess
import time
from urllib.parse import parse_qs, unquote, urlsplit

from ZODB.utils import repr_to_oid, u64

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

    def backup(self, dest, full=False):
        from ZODB.scripts import repozo
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
        when = stamp_time(tid) if tid else 'no transaction'
        return ('Backed up %s (%s) into %s: as of %s, %d new blob file%s.'
                % (self.name, kind, dest, when, copied, '' if copied == 1 else 's'))

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


def copy_needed_blobs(source, target, needed):
    from ZODB.blob import LAYOUTS
    layout_file = os.path.join(source, '.layout')
    name = 'bushy'
    if os.path.exists(layout_file):
        with open(layout_file) as f:
            name = f.read().strip() or name
    layout = LAYOUTS[name]
    missing = []
    os.makedirs(target, mode=0o700)
    for oid, tid in sorted(needed):
        relative = layout.getBlobFilePath(oid, tid)
        path = os.path.join(source, relative)
        if not os.path.exists(path):
            missing.append(relative)
            continue
        copy_atomically(path, os.path.join(target, relative))
    if missing:
        shutil.rmtree(target, ignore_errors=True)
        raise BackupError('the backup lacks %d blob file%s of its transactions (e.g. %s '
                          'under %s): nothing was restored' % (
                              len(missing), '' if len(missing) == 1 else 's', missing[0],
                              source))
    with open(os.path.join(target, '.layout'), 'w') as f:
        f.write(name)


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
        for key, value in (('PGHOST', parts.hostname), ('PGPORT', parts.port),
                           ('PGUSER', parts.username), ('PGPASSWORD', parts.password)):
            if value is not None:
                self.env[key] = unquote(str(value))
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

    def backup(self, dest, full=False):
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
            # One consistent snapshot while servers write; large objects (blobs) included.
            self.run('pg_dump', '-Fc', '--no-owner', '-f', target + '.part', self.dbname)
            os.rename(target + '.part', target)
            copied = copy_new_blobs(self.blob_dir, os.path.join(dest, BLOBS))
        return ('Backed up %s %s into %s (pg_dump: always whole; %s), %d new blob file%s.'
                % (self.name, self.dbname, target, stamp,
                   copied, '' if copied == 1 else 's'))

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
        dump = os.path.join(folder, dumps[-1])
        self.run('pg_restore', '--clean', '--if-exists', '--no-owner',
                 '--single-transaction', '-d', self.dbname, dump)
        count = 0
        if self.blob_dir:
            count = copy_new_blobs(os.path.join(src, BLOBS), self.blob_dir)
        return 'Restored %s %s from %s: %d blob file%s.' % (
            self.name, self.dbname, dump, count, '' if count == 1 else 's')

    def open_database(self):
        return None  # its evolve steps are checked by the next command or server start
