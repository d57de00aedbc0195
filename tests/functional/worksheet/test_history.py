"""A worksheet's history (issue 21): automatic revisions coalesced per author, their
authors and summaries, differences, restoring, naming and pinning, thinning, imported
sagenb snapshots in the same list, who may read and restore.

olivia owns the worksheet, carl is a collaborator, vera a viewer; requests use API
tokens.  The history's clock (``history.clock``) is moved by the tests, so that "a
minute later" takes no minute.
"""
import pytest
import webtest

from sagenb_pyramid.services import history

from ...conftest import Api, Notebook

pytestmark = pytest.mark.usefixtures('cheap_password_hashes')

T0 = 1_800_000_000.0


class Clock:
    def __init__(self):
        self.now = T0

    def __call__(self):
        return self.now


class World:
    def __init__(self, nb, clock):
        self.nb, self.clock = nb, clock
        self.app = webtest.TestApp(nb.app, extra_environ={'HTTP_HOST': 'localhost:80'})
        for name in ('olivia', 'carl', 'vera'):
            nb.add_user(name)
        self.api = {name: Api(self.app, nb.token(name)) for name in ('olivia', 'carl', 'vera')}
        url = self.api['olivia'].post('/home/olivia/', {'name': 'history'}, status=201)['url']
        self.ws = url.replace('http://localhost', '')
        self.app.put_json(self.ws + 'sharing', {'collaborators': ['carl'], 'viewers': ['vera']},
                          headers=self.api['olivia'].headers, status=200)

    def cells(self):
        return self.api['olivia'].get(self.ws)['cells']

    def edit(self, who, cell_id, text, status=200):
        return self.api[who].patch('%scells/%d' % (self.ws, cell_id), {'input': text},
                                   status=status)

    def add(self, who, text):
        return self.api[who].post(self.ws + 'cells/', {'input': text}, status=201)['id']

    def revisions(self, who='olivia', status=200):
        answer = self.api[who].get(self.ws + 'revisions', status=status)
        return answer['revisions'] if status == 200 else answer

    def revision_cells(self, revision):
        return [c['input'] for c in self.api['olivia'].get(
            revision['url'].replace('http://localhost', ''))['cells']]

    def later(self, seconds):
        self.clock.now += seconds


@pytest.fixture
def world(tmp_path, cheap_password_hashes, monkeypatch):
    clock = Clock()
    monkeypatch.setattr(history, 'clock', clock)
    nb = Notebook(tmp_path / 'data', **{'sagenb.workers.max_per_user': '0',
                                        'sagenb.history.interval': '60'})
    try:
        yield World(nb, clock)
    finally:
        nb.close()


def test_revisions_are_coalesced_per_author_with_authors_and_summary(world):
    first = world.cells()[0]['id']
    world.edit('olivia', first, 'x = 1')
    revs = world.revisions()
    assert len(revs) == 1
    assert revs[0]['author'] == 'olivia' and revs[0]['kind'] == 'auto'
    assert revs[0]['summary']['added'] == 1  # from nothing
    # More of olivia's edits within the minute: no new revision.
    for k in range(5):
        world.later(5)
        world.edit('olivia', first, 'x = %d' % k)
    assert len(world.revisions()) == 1
    # carl's first edit is a revision of his; his next ones in the minute are not.
    world.later(1)
    second = world.add('carl', 'y = 2')
    world.later(1)
    world.edit('carl', second, 'y = 3')
    revs = world.revisions()
    # olivia's edits since her revision are in it too.
    assert len(revs) == 2 and sorted(revs[1]['authors']) == ['carl', 'olivia']
    summary = revs[1]['summary']
    assert (summary['added'], summary['changed'], summary['removed']) == (1, 1, 0)
    # olivia is an author of that revision: none of hers until a minute after it;
    # then one naming carl too (he edited since).
    world.later(30)
    world.edit('olivia', first, 'x = 9')
    assert len(world.revisions()) == 2
    world.later(31)
    world.edit('olivia', first, 'x = 10')
    revs = world.revisions()
    assert len(revs) == 3 and sorted(revs[2]['authors']) == ['carl', 'olivia']
    assert revs[2]['summary']['changed'] == 2
    # A viewer's refused edit makes nothing.
    world.edit('vera', first, 'nope', status=403)
    assert len(world.revisions()) == 3


def test_revision_has_cells_and_shares_unchanged_ones(world):
    first = world.cells()[0]['id']
    world.edit('olivia', first, 'a = 1')
    second = world.add('olivia', 'b = 2')
    world.later(61)
    world.edit('olivia', second, 'b = 3')
    revs = world.revisions()
    one = world.api['olivia'].get(revs[0]['url'])
    assert [c['input'] for c in one['cells']] == ['a = 1']
    two = world.api['olivia'].get(revs[1]['url'])
    assert [c['input'] for c in two['cells']] == ['a = 1', 'b = 3']
    with world.nb.transaction() as root:
        revisions = get_root_ws(root).revisions
        old, new = (revisions[r['id']] for r in revs)
        assert new.cells[0] is old.cells[0]  # the unchanged cell's snapshot is shared
        assert new.cells[1] is not old.cells[0]


def get_root_ws(root):
    return root.user_by_login('olivia')['0']


def test_diff_of_two_and_against_current(world):
    first = world.cells()[0]['id']
    world.edit('olivia', first, 'a = 1\nb = 2\nc = 3')
    second = world.add('olivia', 'gone')
    third = world.add('olivia', 'stays')
    world.later(61)
    world.edit('olivia', third, 'stays!')
    world.later(61)
    world.edit('olivia', first, 'a = 1\nb = 20\nc = 3')
    world.api['olivia'].delete('%scells/%d' % (world.ws, second), status=200)
    world.api['olivia'].post('%scells/%d/move' % (world.ws, third), {'direction': 'up'},
                             status=200)
    world.later(61)
    world.edit('olivia', third, 'stays!!')
    revs = world.revisions()
    assert len(revs) == 4
    a, b = revs[1]['id'], revs[3]['id']
    diff = world.api['olivia'].get('%srevisions/%s/diff/%s' % (world.ws, a, b))
    by_id = {entry['id']: entry for entry in diff['cells']}
    assert by_id[second]['change'] == 'removed'
    assert by_id[first]['change'] == 'changed'
    assert '-b = 2' in by_id[first]['input_diff'] and '+b = 20' in by_id[first]['input_diff']
    assert by_id[third]['moved'] is True or by_id[first]['moved'] is True
    # Against now: a cell added after the last revision shows as added.
    world.later(1)
    fourth = world.add('olivia', 'new one')
    now = world.api['olivia'].get('%srevisions/%s/diff' % (world.ws, b))
    assert now['to'] == 'current'
    assert [(e['id'], e['change']) for e in now['cells']] == [(fourth, 'added')]
    assert now['unchanged'] == 2


def test_restore_makes_new_revisions_and_destroys_nothing(world):
    first = world.cells()[0]['id']
    world.edit('olivia', first, 'original')
    world.later(61)
    world.edit('olivia', first, 'rewritten')
    added = world.add('olivia', 'added later')
    revs = world.revisions()
    assert len(revs) == 2
    # vera only views: 403, and nothing changes.
    world.api['vera'].post('%srevisions/%s/restore' % (world.ws, revs[0]['id']), status=403)
    assert len(world.revisions()) == 2
    world.later(5)
    answer = world.api['carl'].post('%srevisions/%s/restore' % (world.ws, revs[0]['id']),
                                    status=200)
    assert answer['restored'] == revs[0]['id']
    assert [c['input'] for c in world.cells()] == ['original']
    after = world.revisions()
    assert [r['kind'] for r in after] == ['auto', 'auto', 'before-restore', 'restore']
    assert after[-1]['author'] == 'carl' and after[-1]['summary']['restored'] == revs[0]['id']
    # The state restore replaced is a revision: restoring it brings everything back.
    before = world.api['olivia'].get(after[2]['url'])
    assert [c['input'] for c in before['cells']] == ['rewritten', 'added later']
    world.later(5)
    world.api['olivia'].post('%srevisions/%s/restore' % (world.ws, after[2]['id']), status=200)
    assert [(c['id'], c['input']) for c in world.cells()] == [(first, 'rewritten'),
                                                             (added, 'added later')]


def test_viewers_read_history_only_when_the_owner_allows(world):
    world.edit('olivia', world.cells()[0]['id'], 'x')
    world.revisions('vera', status=403)
    world.revisions('carl')
    world.api['carl'].patch(world.ws + 'revisions', {'history_for_viewers': True}, status=403)
    world.api['olivia'].patch(world.ws + 'revisions', {'history_for_viewers': 'yes'},
                              status=400)
    world.api['olivia'].patch(world.ws + 'revisions', {'history_for_viewers': True},
                              status=200)
    revs = world.revisions('vera')
    assert world.api['vera'].get(revs[0]['url'])['cells'][0]['input'] == 'x'
    world.api['vera'].post(revs[0]['url'], {'pinned': True}, status=403)


def test_name_and_pin_and_thinning_keeps_pinned(world):
    first = world.cells()[0]['id']
    # One revision every 2 minutes for 3 hours: all kept while younger than a day.
    for k in range(90):
        world.edit('olivia', first, 'step %d' % k)
        world.later(120)
    revs = world.revisions()
    assert len(revs) == 90
    pinned = revs[10]
    world.api['olivia'].post(pinned['url'], {'name': 'submitted', 'pinned': True},
                             status=200)
    world.api['olivia'].post(pinned['url'], {'pinned': 'yes'}, status=400)
    world.api['olivia'].post(pinned['url'], {'name': 5}, status=400)
    world.api['olivia'].post(pinned['url'], {}, status=400)
    # Two days later, the next revision thins those hours to one an hour (+ the pin).
    world.later(2 * 86400)
    world.edit('olivia', first, 'much later')
    after = world.revisions()
    hours = {int(r['time'] // 3600) for r in revs}
    assert len(after) <= len(hours) + 2 and len(after) < 10
    kept = {r['id']: r for r in after}
    assert kept[pinned['id']]['pinned'] is True and kept[pinned['id']]['name'] == 'submitted'


def test_imported_snapshots_stay_listed_and_diff(world):
    body = '<p>intro</p>\n\n{{{id=0|\n1 + 1\n///\n2\n}}}\n'
    with world.nb.transaction() as root:
        get_root_ws(root).add_revision(T0 - 1000, body)
    world.edit('olivia', world.cells()[0]['id'], '1 + 2')
    revs = world.revisions()
    assert [r['kind'] for r in revs] == ['import', 'auto']
    old = world.api['olivia'].get(revs[0]['url'])
    assert old['body'] == body
    assert [c['input'] for c in old['cells']] == ['<p>intro</p>', '1 + 1']
    diff = world.api['olivia'].get('%srevisions/%s/diff' % (world.ws, revs[0]['id']))
    changes = sorted(e['change'] for e in diff['cells'])
    assert changes == ['changed', 'removed']
    world.api['olivia'].post('%srevisions/%s/restore' % (world.ws, revs[0]['id']),
                             status=200)
    assert [c['input'] for c in world.cells()] == ['<p>intro</p>', '1 + 1']


def test_bad_ids(world):
    world.edit('olivia', world.cells()[0]['id'], 'x')
    rid = world.revisions()[0]['id']
    world.api['olivia'].get(world.ws + 'revisions/1.000', status=404)
    world.api['olivia'].get('%srevisions/%s/diff/nope' % (world.ws, rid), status=404)
    world.api['olivia'].get('%srevisions/%s/diff/%s/x' % (world.ws, rid, rid), status=404)
    world.api['olivia'].post(world.ws + 'revisions/1.000/restore', status=404)
    world.api['olivia'].post('%srevisions/%s' % (world.ws, rid), status=400)
    assert len(world.revisions()) == 1


def test_worksheet_without_revisions_lists_none(world):
    assert world.revisions() == []
    with world.nb.transaction() as root:
        assert get_root_ws(root).revisions is None  # reading made nothing


def test_thinning_as_revisions_are_added(world):
    """One revision every 7 minutes for 36 hours: those older than a day keep one an
    hour, thinned one or two at a time as they cross the day; the last day keeps all."""
    first = world.cells()[0]['id']
    for k in range(36 * 60 // 7):
        world.edit('olivia', first, 'v%d' % k)
        world.later(420)
    last_thinning = world.clock.now - 420
    revs = world.revisions()
    old = [r for r in revs if r['time'] <= last_thinning - 86400]
    young = [r for r in revs if r['time'] > last_thinning - 86400]
    assert len(young) in (86400 // 420, 86400 // 420 + 1)
    hours = {int(r['time'] // 3600) for r in old}
    assert len(hours) in (12, 13) and len(old) == len(hours)


def test_a_restore_reaches_live_clients(world):
    """What a restore changes is in the answer of ``?since=`` (services/live.py): the
    cells it changed, with their versions, and the ids of those it removed."""
    first = world.cells()[0]['id']
    world.edit('olivia', first, 'original')
    world.later(61)
    world.edit('olivia', first, 'rewritten')
    added = world.add('olivia', 'added later')
    revision = world.revisions()[0]
    since = world.api['carl'].get(world.ws)['version']
    world.later(5)
    world.api['olivia'].post('%srevisions/%s/restore' % (world.ws, revision['id']),
                             status=200)
    answer = world.api['carl'].get(world.ws, since=since)
    assert answer['full'] is False and answer['version'] > since
    assert [(c['id'], c['input']) for c in answer['cells']] == [(first, 'original')]
    assert answer['cells'][0]['input_version'] > since
    assert answer['order'] == [first] and answer['removed'] == [added]
    # An edit based on the restored input merges with it, as any other.
    merged = world.api['carl'].patch('%scells/%d' % (world.ws, first), {
        'input': 'original, carl', 'base_version': answer['cells'][0]['input_version']},
        status=200)
    assert merged['input'] == 'original, carl'


class WallClock:
    """The worksheets' clock (``history.wall_clock``), moved on by the tests."""

    def __init__(self):
        self.offset = 0.0

    def __call__(self):
        import time
        return time.time() + self.offset


@pytest.fixture
def wall(monkeypatch):
    clock = WallClock()
    monkeypatch.setattr(history, 'wall_clock', clock)
    return clock


def test_the_last_burst_gets_its_revision_when_the_history_is_read(world, wall):
    """Edits after an author's revision wait for the next one; when no edit comes, the
    next read of the history once the worksheet was left alone for the interval takes
    it, dated at the last change; a read while the burst goes on, or with nothing
    pending, takes none."""
    first = world.cells()[0]['id']
    world.edit('olivia', first, 'x = 1')
    world.later(5)
    world.edit('olivia', first, 'x = 2')
    world.later(5)
    world.edit('carl', first, 'x = 2\ny = 3')
    revs = world.revisions()
    assert [r['kind'] for r in revs] == ['auto', 'auto']  # olivia's first, carl's
    assert world.revision_cells(revs[-1]) == ['x = 2\ny = 3']
    world.later(5)
    world.edit('olivia', first, 'x = 4\ny = 3')
    last_change = world.api['olivia'].get(world.ws)['modified']
    wall.offset = 59
    assert len(world.revisions()) == 2  # the burst goes on (within the interval)
    wall.offset = 61
    world.later(61)
    revs = world.revisions()
    assert len(revs) == 3, revs
    assert world.revision_cells(revs[-1]) == ['x = 4\ny = 3']
    assert revs[-1]['authors'] == ['olivia'] and revs[-1]['summary']['changed'] == 1
    assert revs[-1]['time'] == pytest.approx(last_change, abs=0.01) or \
        revs[-1]['time'] > revs[-2]['time']
    assert len(world.revisions()) == 3  # nothing pending any more


def test_the_next_burst_starts_from_a_revision_of_the_last_ones_end(world, wall):
    """olivia's burst ends unread; a minute later carl edits: the end of her burst is a
    revision of its own (hers), before carl's (his), not folded into his.  A refused
    request (a 409) does not take it."""
    first = world.cells()[0]['id']
    cell = world.api['olivia'].patch('%scells/%d' % (world.ws, first), {'input': 'x = 1'},
                                     status=200)
    world.later(5)
    world.edit('olivia', first, 'x = 2')
    wall.offset = 61
    world.later(61)
    refused = world.api['carl'].patch('%scells/%d' % (world.ws, first), {
        'input': 'x = 3', 'base_version': cell['input_version'],
        'base_input': 'x = 1'}, status=409)
    assert refused['input'] == 'x = 2'
    with world.nb.transaction() as root:
        assert len(root.user_by_login('olivia')[world.ws.strip('/').split('/')[-1]]
                   .revisions) == 1
    world.later(1)
    world.edit('carl', first, 'x = 3')
    revs = world.revisions()
    assert [(r['authors'], world.revision_cells(r)) for r in revs] == [
        (['olivia'], ['x = 1']), (['olivia'], ['x = 2']), (['carl'], ['x = 3'])]


# --- a text cell's attachments and the cells' and notebook's metadata ------------------

def imported_notebook(world):
    """olivia's worksheet imported from the notebook with everything a round trip keeps
    (tests/support/ipynb.py: attachments, slides, locks, unknown keys)."""
    from ...support.ipynb import dumps, fidelity_notebook
    res = world.app.post('/home/olivia/import',
                         upload_files=[('file', 'slides.ipynb', dumps(fidelity_notebook()))],
                         headers=world.api['olivia'].headers, status=201)
    [created] = res.json['worksheets']
    return created['url'].replace('http://localhost', '')


def stored_cells(world, url):
    """The worksheet's cells in the database: {id: (attachments, metadata)}, the
    attachments as {name: {mime: blob oid}}."""
    number = url.rstrip('/').rsplit('/', 1)[-1]
    with world.nb.transaction() as root:
        ws = root.user_by_login('olivia')[number]
        return {c.id: ({name: {mime: blob._p_oid for mime, blob in bundle.items()}
                        for name, bundle in (c.attachments or {}).items()},
                       dict(c.metadata or {})) for c in ws.ordered_cells()}


def test_a_restore_brings_back_a_deleted_cells_attachments_and_metadata(world):
    """A text cell with an attachment is deleted and another cell unlocked (its
    metadata); restoring the revision before brings the cell back with its attachment
    (the same blob, not a copy) and the lock, and download.ipynb writes what the
    notebook had."""
    from ...support.ipynb import fidelity_notebook, normalised, png_bytes
    olivia = world.api['olivia']
    url = imported_notebook(world)
    before = stored_cells(world, url)
    first, _, notes, _ = olivia.get(url)['cells']
    assert notes['attachments'] == ['screen shot.png']
    olivia.patch(url, {'name': 'renamed'}, status=200)  # the first revision
    world.later(61)
    olivia.patch(url + 'cells/%d' % first['id'], {'editable': True, 'deletable': True},
                 status=200)
    olivia.delete(url + 'cells/%d' % notes['id'], status=200)
    world.app.get(url + 'cells/%d/attachments/screen%%20shot.png' % notes['id'],
                  headers=olivia.headers, status=404)
    revs = olivia.get(url + 'revisions')['revisions']
    assert len(revs) == 2
    world.later(5)
    olivia.post(url + 'revisions/%s/restore' % revs[0]['id'], {}, status=200)
    cells = olivia.get(url)['cells']
    assert [c['id'] for c in cells] == list(before)
    assert cells[2]['attachments'] == ['screen shot.png']
    assert cells[0]['editable'] is False and cells[0]['deletable'] is False
    shot = world.app.get(url + 'cells/%d/attachments/screen%%20shot.png' % notes['id'],
                         headers=olivia.headers, status=200)
    assert shot.body == png_bytes(2, 2)
    # The very blobs the import stored: a revision keeps a reference, not a copy.
    assert stored_cells(world, url) == before
    exported = world.app.get(url + 'download.ipynb', headers=olivia.headers, status=200)
    assert normalised(exported.body) == normalised(fidelity_notebook())


def test_a_revision_shows_its_attachments_and_metadata(world):
    from ...support.ipynb import png_bytes
    from sagenb_pyramid.web import FILE_CSP
    olivia = world.api['olivia']
    url = imported_notebook(world)
    cells = olivia.get(url)['cells']
    olivia.patch(url, {'name': 'renamed'}, status=200)
    world.later(61)
    olivia.delete(url + 'cells/%d' % cells[2]['id'], status=200)
    [rev, _] = olivia.get(url + 'revisions')['revisions']
    shown = olivia.get(url + 'revisions/%s' % rev['id'])
    first, code, notes, last = shown['cells']
    assert first['attachments'] == ['drawing.svg', 'image.png']
    assert notes['attachments'] == ['screen shot.png'] and 'attachments' not in code
    assert first['metadata']['x_cell_unknown'] == {'keep': 'me'}
    assert first['metadata']['slideshow'] == {'slide_type': 'slide'}
    assert last['metadata'] == {'deletable': False, 'slideshow': {'slide_type': 'skip'}}
    assert shown['notebook_metadata']['x_unknown'] == {
        'nested': [1, 2, {'deep': None}], 'flag': False}
    # The deleted cell's attachment, served from the revision as the worksheet's are.
    base = url + 'revisions/%s/attachments/' % rev['id']
    res = world.app.get(base + '%d/screen%%20shot.png' % notes['id'],
                        headers=olivia.headers, status=200)
    assert res.body == png_bytes(2, 2) and res.content_type == 'image/png'
    assert res.headers['Content-Security-Policy'] == FILE_CSP
    assert res.headers['X-Content-Type-Options'] == 'nosniff'
    for path in ('%d/nope.png' % notes['id'], '%d/image.png' % code['id'],
                 '99/image.png', '%d' % first['id'], ''):
        missing = world.app.get(base + path, headers=olivia.headers, status=404)
        assert 'error' in missing.json
    # A viewer reads a revision's attachments only when the owner opens the history.
    vera = world.api['vera'].headers
    world.app.get(base + '%d/image.png' % first['id'], headers=vera, status=404)
    olivia.put(url + 'sharing', {'collaborators': [], 'viewers': ['vera']}, status=200)
    world.app.get(base + '%d/image.png' % first['id'], headers=vera, status=403)
    olivia.patch(url + 'revisions', {'history_for_viewers': True}, status=200)
    assert world.app.get(base + '%d/image.png' % first['id'], headers=vera,
                         status=200).body == png_bytes()


def test_a_diff_says_an_attachment_or_the_metadata_changed(world):
    olivia = world.api['olivia']
    url = imported_notebook(world)
    first = olivia.get(url)['cells'][0]
    olivia.patch(url, {'name': 'renamed'}, status=200)
    [rev] = olivia.get(url + 'revisions')['revisions']
    # The cell's attachments replaced in the database (as a new import would).
    number = url.rstrip('/').rsplit('/', 1)[-1]
    with world.nb.transaction() as root:
        cell = root.user_by_login('olivia')[number].cells[str(first['id'])]
        cell.set_attachments({'image.png': {'image/png': b'\x89PNG other bytes'}})
    diff = olivia.get(url + 'revisions/%s/diff' % rev['id'])
    assert [(e['id'], e['change'], e['attachments_changed'], e['metadata_changed'],
             e['input_diff']) for e in diff['cells']] == [
        (first['id'], 'changed', True, False, [])]
    olivia.patch(url + 'cells/%d' % first['id'], {'editable': True}, status=200)
    diff = olivia.get(url + 'revisions/%s/diff' % rev['id'])
    assert [(e['id'], e['attachments_changed'], e['metadata_changed'])
            for e in diff['cells']] == [(first['id'], True, True)]


def test_a_revision_taken_before_attachments_were_kept_still_reads_and_restores(world):
    """A revision of an older database (its snapshots without attachments or metadata,
    ``holds_notebook_parts`` false): it reads, diffs, and restoring it leaves the
    cells' attachments and metadata as they are."""
    olivia = world.api['olivia']
    url = imported_notebook(world)
    olivia.patch(url, {'name': 'renamed'}, status=200)
    [rev] = olivia.get(url + 'revisions')['revisions']
    number = url.rstrip('/').rsplit('/', 1)[-1]
    with world.nb.transaction() as root:
        ws = root.user_by_login('olivia')[number]
        revision = ws.revisions[rev['id']]
        del revision.holds_notebook_parts  # as the code before wrote it
        for snap in revision.cells:
            snap.__dict__.pop('attachments', None)
            snap.__dict__.pop('metadata', None)
            snap._p_changed = True
    before = stored_cells(world, url)
    shown = olivia.get(url + 'revisions/%s' % rev['id'])
    assert all('attachments' not in c and 'metadata' not in c for c in shown['cells'])
    assert olivia.get(url + 'revisions/%s/diff' % rev['id'])['cells'] == []
    world.later(61)
    olivia.post(url + 'revisions/%s/restore' % rev['id'], {}, status=200)
    assert stored_cells(world, url) == before
