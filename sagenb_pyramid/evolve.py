"""Schema evolution: named, ordered steps that bring a database written by an earlier
version to what today's code stores (substanced's evolve steps are the model).

The names of the steps done are recorded in the database (``root.evolved``); each step
runs in a transaction of its own, which also records it, so an interrupted run goes on
where it stopped.  A new database is made with every attribute, so ``Root()`` marks all
the steps of ``resources.SCHEMA_STEPS`` done.  ``sagenb-admin CONFIG evolve [--dry-run]``
runs (or lists) what is pending; a server, a worker host and the other admin commands
refuse to open a database with pending steps (``SchemaOutdated``, naming the command),
unless ``sagenb.evolve_at_start`` is true (development.ini), which runs them at start.

A new stored attribute: made in its class's constructor; a step here that makes it on
the objects of older databases; the step's name appended to ``resources.SCHEMA_STEPS``
(tests/unit/test_evolve.py checks both lists agree, and runs every step on
``tests/support/olddb``).
A stored class that moves: its old path in ``MOVED_CLASSES``, and a step re-saving its
objects (then a database stores only the new path).  The classes of ``resources/`` need
neither when they move between its modules: they are stored as
``sagenb_pyramid.resources.<Class>`` wherever they are defined (``resources.stored``).
"""
import logging
import time
from dataclasses import dataclass

from BTrees.LOBTree import LOBTree
from BTrees.OOBTree import OOBTree, OOTreeSet
from persistent.mapping import PersistentMapping

from . import resources, search

log = logging.getLogger(__name__)

# Stored classes that moved: (old module, name) -> (new module, name).  The database's
# class factory (``Database`` in __init__.py) finds them at the new place when it reads
# an old record; the step ``worker-host-records`` re-saves the records it knows of.
MOVED_CLASSES = {
    ('sagenb_pyramid.resources', 'WorkerHost'): ('sagenb_pyramid.workers.records',
                                                 'WorkerHost'),
}


class SchemaOutdated(RuntimeError):
    """The database lacks evolve steps this code needs."""


@dataclass(frozen=True)
class Step:
    name: str
    description: str
    run: object  # run(root): changes the application root in the step's transaction


STEPS = []


def own(obj):
    """The attributes stored on ``obj`` itself (not its class's defaults)."""
    obj._p_activate()
    return obj.__dict__


def step(name, description):
    def register(function):
        STEPS.append(Step(name, description, function))
        return function
    return register


# The root's trees and mappings, made by ``Root()``; older roots made them at their
# first write (so that every first login, setting or placement also changed the root).
ROOT_TREES = {
    'identities': OOBTree, 'login_attempts': OOBTree, 'account_tokens': OOBTree,
    'used_challenges': OOBTree, 'worker_hosts': OOBTree, 'placements': OOBTree,
    'server_settings': PersistentMapping, 'audit_entries': LOBTree,
}


@step('root-trees', "the root's trees (identities, login attempts, account links, "
      'challenges, worker hosts, placements, server settings, audit log)')
def root_trees(root):
    for name, make in ROOT_TREES.items():
        if getattr(root, name, None) is None:
            setattr(root, name, make())


@step('audit-numbered-log', 'entries of the numbered audit log (root.audit) move to '
      'root.audit_entries, keyed by their time')
def audit_numbered_log(root):
    old = own(root).get('audit')
    if old is not None:
        log_ = root.audit_entries
        for number in old.keys():
            entry = old[number]
            # Microseconds and three digits, as audit.new_key; ordered as they were.
            key = int(entry.time * 1e6) * 1000 + number % 1000
            while key in log_:
                key += 1
            log_[key] = entry
    for name in ('audit', 'audit_count'):
        if name in own(root):
            delattr(root, name)


@step('user-sessions-identities-storage', "every user's live sessions, linked identities "
      'and storage total (older users made them at their first login, link or change)')
def user_attributes(root):
    for user in root.users_by_id.values():
        if own(user).get('live_sessions') is None:
            user.live_sessions = OOBTree()
        if own(user).get('identities') is None:
            user.identities = PersistentMapping()
        if own(user).get('storage') is None:
            user.storage = resources.StorageUse(
                sum(resources.usage(w) for w in user.worksheets()))


@step('token-scope-expiry', 'API tokens made before scopes and expiry: full access, '
      'no expiry')
def token_scope_expiry(root):
    for record in root.tokens.values():
        if 'scope' not in own(record):
            record.scope = 'full'
        if 'expires' not in own(record):
            record.expires = None


@step('worker-host-records', 'worker host records stored as resources.WorkerHost are '
      'stored again as workers.records.WorkerHost')
def worker_host_records(root):
    for record in root.worker_hosts.values():
        record._p_changed = True


@step('publications', "the root's publications (/pub/) and every worksheet's "
      'publication id; a worksheet marked published (a time, set by a sagenb migration) '
      'is published as it is now, at that time')
def publications(root):
    if own(root).get('publications') is None:
        root.publications = resources.Publications()
        root.publications.__parent__ = root
    for user in root.users_by_id.values():
        for worksheet in user.worksheets():
            stored = own(worksheet)
            when = stored.get('published')
            if 'published' in stored:
                del worksheet.published
            if 'publication_id' not in stored:
                worksheet.publication_id = None
            if when is not None and worksheet.publication_id is None:
                root.publications.publish(worksheet, when=when)


@step('shared-with-index', 'the index of the worksheets shared with each user and group '
      "(root.shared_with), built from every worksheet's collaborators and viewers")
def shared_with_index(root):
    if own(root).get('shared_with') is None:
        root.shared_with = OOBTree()
    for user in root.users_by_id.values():
        for worksheet in user.worksheets():
            resources.index_shares(root, worksheet, worksheet.shared_principals(), True)


@step('worksheet-tags', 'every worksheet gets its (empty) list of tags')
def worksheet_tags(root):
    for user in root.users_by_id.values():
        for worksheet in user.worksheets():
            if 'tags' not in own(worksheet):
                worksheet.tags = ()


@step('search-index', 'the full-text search index of every worksheet (root.search_index)')
def search_index(root):
    if own(root).get('search_index') is None:
        root.search_index = search.SearchIndex()
    search.build(root)


@step('publications-by-time', 'the index of /pub/ by time (root.publications.by_time); '
      'publications of worksheets deleted before (which showed nothing) are removed')
def publications_by_time(root):
    publications = root.publications
    if own(publications).get('by_time') is None:
        publications.by_time = OOBTree()
    index = publications.by_time
    index.clear()
    for name, publication in list(publications.items()):
        if publication.original() is None:
            publications.remove(name)
        else:
            index[resources.time_key(publication)] = publication


@step('worksheet-history', "every worksheet's history_for_viewers flag (false), its "
      "revisions' editing notes and thinning time; every revision's authors, kind, name, "
      'pin and summary (imported ones: kind "import")')
def worksheet_history(root):
    for user in root.users_by_id.values():
        for worksheet in user.worksheets():
            if 'history_for_viewers' not in own(worksheet):
                worksheet.history_for_viewers = False
            revisions = worksheet.revisions
            if revisions is None:
                continue
            if own(revisions).get('editing') is None:
                revisions.editing = OOBTree()
            if 'thinned_until' not in own(revisions):
                revisions.thinned_until = 0.0
            for revision in revisions.values():
                stored = own(revision)
                if 'author_ids' in stored:
                    continue
                author = stored.get('author_id')
                revision.author_ids = (author,) if author else ()
                revision.cells = revision.worksheet_name = revision.summary = None
                revision.kind = 'import'
                revision.name = ''
                revision.pinned = False


@step('live-versions', "every worksheet's version, its cells' versions and its log of "
      "deleted cells, every cell's kept earlier inputs (live editing, services/live.py)")
def live_versions(root):
    for user in root.users_by_id.values():
        for worksheet in user.worksheets():
            stored = own(worksheet)
            if 'version' not in stored:
                worksheet.version = 0
                worksheet.removed = ()
                worksheet.removed_floor = 0
                worksheet.cell_versions = {}
            for cell in worksheet.cells.values():
                if 'written_version' not in own(cell):
                    cell.written_version = 0
                    cell.past_inputs = ()


@step('cell-order', "every worksheet's cell order (and every published snapshot's) a "
      '``CellOrder``, whose concurrent inserts, moves and deletions merge')
def cell_order(root):
    worksheets = [w for user in root.users_by_id.values() for w in user.worksheets()]
    worksheets += [p.snapshot for p in root.publications.values()
                   if getattr(p, 'snapshot', None) is not None]
    for worksheet in worksheets:
        if type(worksheet.cell_order) is not resources.CellOrder:
            worksheet.cell_order = resources.CellOrder(worksheet.cell_order)


def done(root):
    return set(root.evolved)


def pending(root):
    finished = done(root)
    return [s for s in STEPS if s.name not in finished]


def pending_in(db):
    return resources.in_transaction(db, pending)


def evolve(db, report=None):
    """Run the pending steps, each in a transaction of its own that records it;
    ``report(step)`` is called after each.  Returns the steps run."""
    ran = []
    for s in pending_in(db):
        def work(root, s=s):
            if s.name in done(root):  # another process ran it meanwhile
                return False
            started = time.monotonic()
            s.run(root)
            if 'evolved' not in own(root):  # a root stored before schema evolution
                root.evolved = OOTreeSet()
            root.evolved.add(s.name)
            log.info('evolve step %s done in %.2f s', s.name, time.monotonic() - started)
            return True
        if resources.in_transaction(db, work, attempts=3):
            ran.append(s)
            if report is not None:
                report(s)
    return ran


def outdated_message(steps, config_file):
    return ('the database needs %d evolve step%s (%s) before this version can use it: '
            'stop the notebook servers and worker hosts, then run: sagenb-admin %s evolve '
            '(--dry-run lists them)' % (
                len(steps), '' if len(steps) == 1 else 's',
                ', '.join(s.name for s in steps), config_file or 'CONFIG'))


def open_database(db, config_file, run_pending=False):
    """At start: the application root made if there is none (fully evolved), then
    the pending steps run (``run_pending``) or refused with ``SchemaOutdated``.
    Returns the number of users."""
    resources.ensure_root(db)
    steps = pending_in(db)
    if steps and run_pending:
        log.warning('running %d evolve steps at start (sagenb.evolve_at_start): %s',
                    len(steps), ', '.join(s.name for s in steps))
        evolve(db)
    elif steps:
        raise SchemaOutdated(outdated_message(steps, config_file))
    return resources.in_transaction(db, lambda root: len(root.home))
