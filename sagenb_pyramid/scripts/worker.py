"""``sagenb-worker CONFIG_URI [name=value ...]``: a worker host of its own.

Runs Sage processes for the app servers that share its database (over ZEO): it reads
the ``[app:main]`` settings of the same ``.ini`` as ``pserve`` (database, worker
limits, uids; ``name=value`` overrides as pserve takes them), publishes itself in ZODB
and serves app servers on ``sagenb.workers.listen`` until SIGTERM or SIGINT (or until one of
its essential threads stops: then it exits with status 70, watchdog.py).  App
servers without a host of their own set ``sagenb.workers.embedded = false``.
"""
import argparse
import logging
import signal
import sys
import threading

from .. import db_from_uri, watchdog
from ..evolve import SchemaOutdated, open_database
from ..server import freeze_loaded_objects
from ..settings import SettingsError, prepare
from ..workers import WorkerRegistry
from ..workers.hostapi import listen_address, start_host
from ..workers.registry import check_root_without_uids
from . import inifile
from .admin import split_overrides

log = logging.getLogger('sagenb_pyramid.worker')


def host_settings(config, options):
    settings = dict(config.get_settings('app:main', defaults=options))
    settings.update({k: v for k, v in options.items() if k != 'data_dir'})
    prepare(options, settings)
    check_root_without_uids(settings)
    if listen_address(settings) is None:
        raise SettingsError(
            'a worker host of its own serves app servers over the network: it needs a '
            'shared database (SAGENB_ZODB_URI=zeo://... or postgres://...) and '
            'sagenb.workers.listen (HOST:PORT, or auto for loopback)')
    return settings


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    argv, options = split_overrides(argv)
    parser = argparse.ArgumentParser(prog='sagenb-worker', description=__doc__.split('\n')[0])
    parser.add_argument('config_uri', help='the .ini file (its [app:main] settings)')
    args = parser.parse_args(argv)
    try:
        config = inifile.loader(args.config_uri)
        config.setup_logging()
        settings = host_settings(config, options)
    except SettingsError as exc:
        raise SystemExit('sagenb-worker: %s' % exc) from None
    db = db_from_uri(settings['zodbconn.uri'], 'unnamed', {})
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    registry = door = None
    try:
        try:
            open_database(db, args.config_uri, run_pending=settings['sagenb.evolve_at_start'])
        except SchemaOutdated as exc:
            raise SystemExit('sagenb-worker: %s' % exc) from None
        registry = WorkerRegistry(db, settings)
        try:
            door = start_host(registry, settings)
        except (SettingsError, ValueError, OSError) as exc:
            raise SystemExit('sagenb-worker: %s' % exc) from None
        freeze_loaded_objects()
        # A line for whoever started it (scripts, tests) to know where it listens.
        print('sagenb-worker %s (boot %s) serving at %s' % (
            registry.server_name, registry.boot_id, registry.address), flush=True)
        # Until SIGTERM or SIGINT; exits if an essential thread has stopped.
        watchdog.watch(stop)
        log.info('stopping the worker host %s', registry.server_name)
    finally:
        if door is not None:  # no more requests from app servers, then the host stops
            door.stop()
        if registry is not None:
            registry.shutdown()
        db.close()
    return 0


if __name__ == '__main__':
    sys.exit(main())
