"""``sagenb-admin CONFIG_URI [name=value ...] COMMAND ...``: the notebook's admin commands.

Reads the ``[app:main]`` settings as ``pserve`` does (same ``name=value`` overrides) and
opens their database, without the Pyramid application, a worker host or Sage processes,
then works on it in one transaction (``evolve``: one per step).  Every command but
``evolve`` refuses a database with pending evolve steps.  ``backup`` and ``restore``
(backup.py) do not open the database: they copy its files (or dump it) while servers
run, or replace them while none does.  What a command does not use
is not imported (tests/e2e/test_server.py checks it): a command takes a fraction of a second.
"""
import argparse
import getpass
import os
import sys

from .. import DatabaseInUse, DatabaseUnreachable, database_of
from ..evolve import SchemaOutdated, evolve, open_database, pending_in
from ..resources import ensure_root, in_transaction
from ..settings import SettingsError, prepare, public_url, session_secret
from ..auth.tokens import create_token, revoke_token, user_tokens
from . import inifile


def read_password(prompt='Password: '):
    if sys.stdin.isatty():
        first = getpass.getpass(prompt)
        if first != getpass.getpass('Again: '):
            raise SystemExit('The two passwords differ.')
        return first
    return sys.stdin.readline().rstrip('\n')


def cmd_adduser(root, args):
    # Here: its import hashes a dummy password (argon2, tens of ms).
    from ..auth.passwords import check_login_name, check_password, hash_password
    problem = check_login_name(args.login)
    if problem:
        raise SystemExit(problem)
    if root.user_by_login(args.login) is not None:
        raise SystemExit('A user named %r exists already.' % args.login)
    password = read_password()
    problem = check_password(password, args.login)
    if problem:
        raise SystemExit(problem)
    root.add_user(args.login, hash_password(password), is_admin=args.admin,
                  email=args.email or '')
    print('Created %s%s.' % ('admin ' if args.admin else 'user ', args.login))


def find_user(root, login):
    user = root.user_by_login(login)
    if user is None:
        raise SystemExit('No user named %r.' % login)
    return user


def cmd_token(root, args):
    user = find_user(root, args.login)
    token = create_token(root, user, args.label or '')
    print('A new API token for %s (shown only now; send it as "Authorization: Bearer '
          '<token>"):' % user.login)
    print(token)


def cmd_tokens(root, args):
    user = find_user(root, args.login)
    for prefix, record in user_tokens(root, user):
        print(prefix, record.label or '-', record.created)


def cmd_revoke_token(root, args):
    user = find_user(root, args.login)
    if not revoke_token(root, user, args.prefix):
        raise SystemExit('No single token of %s starts with %r.' % (user.login, args.prefix))
    print('Revoked.')


def cmd_users(root, args):
    for user in root.home.values():
        print(user.login, 'admin' if user.is_admin else 'user')


class _DryRun(Exception):
    """Leaves the command's transaction without committing it (``--dry-run``)."""


def cmd_import_sagenb(root, args):
    from ..migrate import MigrationError, migrate
    if not os.path.isdir(args.path):
        raise SystemExit('No folder %s.' % args.path)
    max_mb = args.max_data_mb if args.max_data_mb is not None \
        else args.settings['sagenb.data.max_mb']
    try:
        report = migrate(root, args.path, dry_run=args.dry_run,
                         max_file_bytes=max(max_mb, 0) * 2**20)
    except MigrationError as exc:
        raise SystemExit(str(exc)) from None
    for line in report.lines():
        print(line)
    if args.dry_run:
        raise _DryRun()


def cmd_recount_storage(root, args):
    users = [find_user(root, args.login)] if args.login else list(root.home.values())
    for user in users:
        before, after = user.recount_storage()
        if before != after:
            print('%s: %s bytes counted, %d stored: corrected' % (
                user.login, 'no total' if before is None else before, after))
    print('Counted the storage of %d user%s.' % (len(users), '' if len(users) == 1 else 's'))


def cmd_pack(db, args):
    """ZODB's pack: old revisions of records (ZODB's own history, which the application
    never reads: its worksheet revisions are records of their own) and unreachable
    records go, blobs with them.  FileStorage packs in this process (the servers
    stopped: it is locked), ZEO on its server and RelStorage in the database, both while
    the app servers run."""
    if args.days < 0:
        raise SystemExit('--days must be 0 or more.')
    storage = db.storage
    before = storage.getSize()
    db.pack(days=args.days)
    scheme = args.settings['zodbconn.uri'].split('://', 1)[0]
    print('Packed %s: %s before, %s after (kept the revisions of the last %g day%s).' % (
        ENGINES.get(scheme, scheme), size(before), size(storage.getSize()), args.days,
        '' if args.days == 1 else 's'))


ENGINES = {'file': 'FileStorage', 'zeo': 'ZEO', 'postgres': 'PostgreSQL (RelStorage)'}


def size(n):
    return '%.1f MB' % (n / 1e6) if n >= 1e6 else '%d kB' % (n / 1e3)


def cmd_evolve(db, args):
    steps = pending_in(db)
    if not steps:
        print('The database is up to date: no evolve step is pending.')
        return
    if args.dry_run:
        print('%d evolve step%s pending (run without --dry-run to apply them):' % (
            len(steps), '' if len(steps) == 1 else 's'))
        for step in steps:
            print('  %s: %s' % (step.name, step.description))
        return
    ran = evolve(db, report=lambda step: print('Evolved: %s' % step.name))
    print('Done: %d step%s; the database is up to date.' % (
        len(ran), '' if len(ran) == 1 else 's'))


def cmd_backup(settings, args):
    from ..backup import target_of
    print(target_of(settings, args.zeo_conf).backup(os.path.abspath(args.dest), args.full,
                                                    args.keep))


def cmd_restore(settings, args):
    from ..backup import target_of
    target = target_of(settings, args.zeo_conf)
    print(target.restore(os.path.abspath(args.src), args.date, args.force))
    db = target.open_database()
    if db is None:
        return
    try:
        steps = pending_in(db)
    finally:
        db.close()
    if steps:
        print('%d evolve step%s pending: run sagenb-admin %s evolve before starting the '
              'servers (or start with sagenb.evolve_at_start = true).'
              % (len(steps), '' if len(steps) == 1 else 's', args.config_uri))


def parser():
    p = argparse.ArgumentParser(
        prog='sagenb-admin',
        description='Administer a notebook: sagenb-admin CONFIG_URI [name=value ...] COMMAND')
    p.add_argument('config_uri', help='the .ini file the server runs with')
    sub = p.add_subparsers(dest='command', required=True)
    s = sub.add_parser('adduser', help='create a user; the password is read from stdin')
    s.add_argument('login')
    s.add_argument('--admin', action='store_true')
    s.add_argument('--email')
    s.set_defaults(func=cmd_adduser)
    s = sub.add_parser('token', help='print a new API token (on the last line)')
    s.add_argument('login')
    s.add_argument('--label')
    s.set_defaults(func=cmd_token)
    s = sub.add_parser('tokens', help="list a user's tokens by prefix")
    s.add_argument('login')
    s.set_defaults(func=cmd_tokens)
    s = sub.add_parser('revoke-token', help='revoke the token whose prefix is given')
    s.add_argument('login')
    s.add_argument('prefix')
    s.set_defaults(func=cmd_revoke_token)
    s = sub.add_parser('users', help='list users')
    s.set_defaults(func=cmd_users)
    s = sub.add_parser('import-sagenb', help='migrate a legacy Sage notebook server: its '
                       'users, worksheets and settings')
    s.add_argument('path', help='the notebook folder, e.g. ~/.sage/sage_notebook.sagenb')
    s.add_argument('--dry-run', action='store_true',
                   help='report what would be imported; write nothing')
    s.add_argument('--max-data-mb', type=int, default=None,
                   help='largest data or cell file, in MB (default: sagenb.data.max_mb; '
                        '0: no limit); a worksheet with a larger one is skipped')
    s.set_defaults(func=cmd_import_sagenb)
    s = sub.add_parser('recount-storage', help="compute again what each user's worksheets "
                       'count against the storage quota')
    s.add_argument('login', nargs='?')
    s.set_defaults(func=cmd_recount_storage)
    s = sub.add_parser('pack', help="remove ZODB's old record revisions and unreachable "
                       "records (worksheet revisions are kept: they are the application's)")
    s.add_argument('--days', type=float, default=0,
                   help="keep ZODB's revisions of the last N days (default 0)")
    s.set_defaults(func=cmd_pack, own_transactions=True)
    s = sub.add_parser('evolve', help='bring a database written by an earlier version up '
                       'to date (run with the servers and worker hosts stopped)')
    s.add_argument('--dry-run', action='store_true',
                   help='list the pending evolve steps; change nothing')
    s.set_defaults(func=cmd_evolve, own_transactions=True)
    zeo_help = ("the ZEO server's zeo.conf, where its Data.fs and blob-dir are (for a "
                'database on ZEO: run on the ZEO server\'s machine)')
    s = sub.add_parser('backup', help='back up the database into DEST (incremental when '
                       'DEST holds a full backup); safe while the servers run')
    s.add_argument('dest', help='the backup folder (made if missing)')
    s.add_argument('--full', action='store_true', help='a full backup, not an increment')
    s.add_argument('--keep', type=int, metavar='N',
                   help='then remove all but the newest N full backups (with their '
                        'increments) and the blob files no kept backup needs')
    s.add_argument('--zeo-conf', help=zeo_help)
    s.set_defaults(func=cmd_backup, without_database=True)
    s = sub.add_parser('restore', help='replace the database with the backup in SRC '
                       '(the servers stopped)')
    s.add_argument('src', help='a folder written by sagenb-admin backup')
    s.add_argument('--date', help='restore as of this UTC time, yyyy-mm-dd[-hh[-mm[-ss]]] '
                   '(default: the last backup)')
    s.add_argument('--force', action='store_true',
                   help='replace an existing database (kept aside, renamed)')
    s.add_argument('--zeo-conf', help=zeo_help)
    s.set_defaults(func=cmd_restore, without_database=True)
    return p


def split_overrides(argv):
    """``name=value`` words right after CONFIG_URI, as pserve takes them."""
    if not argv:
        return argv, {}
    rest, options = [argv[0]], {}
    words = iter(argv[1:])
    for word in words:
        if '=' in word and not word.startswith('-'):
            name, value = word.split('=', 1)
            options[name] = value
        else:
            rest.append(word)
            rest.extend(words)
    return rest, options


def settings_from(config_uri, options):
    """The settings of ``config_uri`` as the server prepares them."""
    config = inifile.loader(config_uri)
    config.setup_logging()
    global_config, settings = inifile.app_settings(config, options)
    prepare(global_config, settings)
    return global_config, settings


def open_from(config_uri, options, command):
    """The settings and database of ``config_uri``: the settings checked as the server
    checks them at start, the database brought up to date (``sagenb.evolve_at_start``)
    or refused with its pending steps, but for ``evolve``."""
    global_config, settings = settings_from(config_uri, options)
    # Required in production whatever the command: a wrong .ini is told at once.
    session_secret(settings)
    public_url(settings)
    db = database_of(settings)
    try:
        if command == 'evolve':  # a database with pending steps is its work
            ensure_root(db)
        else:
            open_database(db, global_config.get('__file__'),
                          run_pending=settings['sagenb.evolve_at_start'])
    except BaseException:
        db.close()
        raise
    return settings, db


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    argv, options = split_overrides(argv)
    args = parser().parse_args(argv)
    if getattr(args, 'without_database', False):
        from ..backup import BackupError
        try:
            args.func(settings_from(args.config_uri, options)[1], args)
        except (SettingsError, BackupError) as exc:
            raise SystemExit('sagenb-admin: %s' % exc) from None
        return 0
    try:
        args.settings, db = open_from(args.config_uri, options, args.command)
    except (DatabaseInUse, DatabaseUnreachable, SettingsError, SchemaOutdated) as exc:
        raise SystemExit('sagenb-admin: %s' % exc) from None
    try:
        if getattr(args, 'own_transactions', False):
            args.func(db, args)
        else:
            in_transaction(db, lambda root: args.func(root, args))
    except _DryRun:
        pass  # the transaction was aborted on the way out
    finally:
        db.close()
    return 0


if __name__ == '__main__':
    sys.exit(main())
