"""The per-user storage quota (``sagenb.quota.user_mb``): what counts, the running total,
and the refusals of uploads, imports, edits and copies that would pass it."""
import pickle

import pytest
import webtest

from ...support.notebook import Api, Notebook, csrf_token_of, login
from ...support.sws import file_member, minimal_members, sws_with

MB = 2**20


@pytest.fixture
def small_quota(tmp_path):
    nb = Notebook(tmp_path / 'quota', **{'sagenb.quota.user_mb': '2',
                                         'sagenb.data.max_mb': '4'})
    nb.add_user('alice')
    nb.add_user('bob')
    app = webtest.TestApp(nb.app, extra_environ={'HTTP_HOST': 'localhost:80'})
    yield nb, Api(app, nb.token('alice')), Api(app, nb.token('bob'))
    nb.close()


def used(nb, login='alice'):
    with nb.transaction() as root:
        return root.user_by_login(login).storage_used()


def recounted(nb, login='alice'):
    with nb.transaction() as root:
        user = root.user_by_login(login)
        return user.recount_storage()


def upload(api, ws, name, content, status=201, **fields):
    return api.testapp.post(ws + 'data', params=fields,
                            upload_files=[('file', name, content)],
                            headers=api.headers, status=status).json


def sws(name, data_files):
    return sws_with(minimal_members(pickle.dumps({'name': name}, protocol=2)) + [
        file_member('sage_worksheet/data/' + n, c) for n, c in data_files.items()])


def test_data_files_count_and_the_total_follows_every_change(small_quota):
    nb, alice, _ = small_quota
    ws = alice.post('/home/alice/', {'name': 'w'}, status=201)['url']
    made = upload(alice, ws, 'a.bin', bytes(MB))
    assert used(nb) == MB
    res = upload(alice, ws, 'b.bin', bytes(MB + 1), status=413)
    assert "'b.bin'" in res['error'] and 'quota' in res['error'] and '2 MB' in res['error']
    assert [f['name'] for f in alice.get(ws + 'data')['files']] == ['a.bin']
    # Replacing a file counts the difference only.
    upload(alice, ws, 'a.bin', bytes(2 * MB), replace='true')
    assert used(nb) == 2 * MB
    notes = alice.post(ws + 'data', {'name': 'notes.txt'}, status=201)
    res = alice.testapp.put_json(notes['url'], {'content': 'more'}, headers=alice.headers,
                                 status=413).json
    assert "'notes.txt'" in res['error'] and 'quota' in res['error']
    alice.delete(notes['url'], status=200)
    alice.testapp.put_json(made['url'], {'content': 'small'}, headers=alice.headers)
    assert used(nb) == 5
    renamed = alice.post(made['url'] + '/rename', {'name': 'c.txt'}, status=200)
    assert used(nb) == 5
    alice.delete(renamed['url'], status=200)
    assert used(nb) == 0
    upload(alice, ws, 'd.bin', bytes(MB))
    alice.delete(ws, status=200)
    assert used(nb) == 0 and recounted(nb) == (0, 0)


def test_an_import_past_the_quota_is_refused_whole(small_quota):
    nb, alice, _ = small_quota
    content = sws('Big', {'one.bin': bytes(MB), 'two.bin': bytes(MB + 100)})
    res = alice.testapp.post('/home/alice/import', upload_files=[('file', 'big.sws', content)],
                             headers=alice.headers, status=413).json
    assert 'big.sws' in res['error'] and 'quota' in res['error']
    assert used(nb) == 0
    with nb.transaction() as root:
        assert root.user_by_login('alice').worksheets() == []
    content = sws('Fits', {'one.bin': bytes(MB)})
    alice.testapp.post('/home/alice/import', upload_files=[('file', 'fits.sws', content)],
                       headers=alice.headers, status=201)
    # The data file and what the import stored in the cells.
    assert MB < used(nb) < MB + 1000
    assert recounted(nb) == (used(nb), used(nb))


def test_imported_outputs_count_until_the_worksheet_goes(small_quota):
    nb, alice, _ = small_quota
    text = b'Out\n{{{id=0|\nprint(1)\n///\n' + b'y' * (MB // 2) + b'\n}}}\n'
    res = alice.testapp.post('/home/alice/import', upload_files=[('file', 'o.txt', text)],
                             headers=alice.headers, status=201).json
    assert MB // 2 < used(nb) < MB // 2 + 1000
    for _ in range(3):
        alice.testapp.post('/home/alice/import', upload_files=[('file', 'o.txt', text)],
                           headers=alice.headers, status='*')
    assert used(nb) < 2 * MB
    alice.delete(res['worksheets'][0]['url'], status=200)
    assert used(nb) == recounted(nb)[1]


def test_a_copy_past_the_quota_is_refused(small_quota):
    nb, alice, bob = small_quota
    ws = alice.post('/home/alice/', {'name': 'w'}, status=201)['url']
    upload(alice, ws, 'a.bin', bytes(MB + MB // 2))
    res = alice.post(ws + 'copy', {'name': 'again'}, status=409)
    assert 'quota' in res['error']
    with nb.transaction() as root:
        assert len(root.user_by_login('alice').worksheets()) == 1
    # A copy counts against the one who makes it.
    with nb.transaction() as root:
        alice_user, bob_user = root.user_by_login('alice'), root.user_by_login('bob')
        from sagenb_pyramid.security import user_principal
        alice_user[ws.rstrip('/').rsplit('/', 1)[1]].viewers.append(
            user_principal(bob_user.id))
    bob.post(ws + 'copy', {'name': 'mine'}, status=201)
    assert used(nb, 'bob') == MB + MB // 2 and used(nb) == MB + MB // 2


def test_the_listing_copy_is_refused_too(small_quota):
    nb, alice, _ = small_quota
    browser = webtest.TestApp(nb.app, extra_environ={'HTTP_HOST': 'localhost:80'})
    token = login(browser, 'alice')
    ws = alice.post('/home/alice/', {'name': 'w'}, status=201)
    upload(alice, ws['url'], 'a.bin', bytes(MB + MB // 2))
    res = browser.post('/home/alice/action', {'csrf_token': token, 'action': 'copy',
                                              'ids': str(ws['id'])}, status=409)
    assert 'quota' in res.text


def test_the_account_page_shows_the_use(small_quota):
    nb, alice, _ = small_quota
    ws = alice.post('/home/alice/', {'name': 'w'}, status=201)['url']
    upload(alice, ws, 'a.bin', bytes(MB + MB // 2))
    browser = webtest.TestApp(nb.app, extra_environ={'HTTP_HOST': 'localhost:80'})
    login(browser, 'alice')
    page = browser.get('/account')
    assert '1.5 of 2 MB used' in page.text
    csrf_token_of(page)


def test_a_user_from_before_the_quota_gets_a_total(small_quota):
    nb, alice, _ = small_quota
    ws = alice.post('/home/alice/', {'name': 'w'}, status=201)['url']
    upload(alice, ws, 'a.bin', bytes(1000))
    from sagenb_pyramid import evolve
    with nb.transaction() as root:
        del root.user_by_login('alice').storage  # as stored before the quota
    # Its evolve step counts what the user's worksheets hold.
    with nb.transaction() as root:
        evolve.user_attributes(root)
    assert used(nb) == 1000
    upload(alice, ws, 'b.bin', bytes(500))
    assert used(nb) == 1500 and recounted(nb) == (1500, 1500)
    with nb.transaction() as root:
        root.user_by_login('alice').storage.bytes = 7  # a total gone wrong
    assert recounted(nb) == (7, 1500) and used(nb) == 1500


def test_deleting_a_user_hands_the_storage_to_the_heir(small_quota):
    nb, alice, _ = small_quota
    ws = alice.post('/home/alice/', {'name': 'w'}, status=201)['url']
    upload(alice, ws, 'a.bin', bytes(1000))
    with nb.transaction() as root:
        root.delete_user(root.user_by_login('alice'), heir=root.user_by_login('bob'))
    assert used(nb, 'bob') == 1000 and recounted(nb, 'bob') == (1000, 1000)


def test_no_quota_when_the_setting_is_zero(tmp_path):
    nb = Notebook(tmp_path / 'nolimit', **{'sagenb.quota.user_mb': '0',
                                           'sagenb.data.max_mb': '4'})
    try:
        nb.add_user('alice')
        alice = Api(webtest.TestApp(nb.app, extra_environ={'HTTP_HOST': 'localhost:80'}),
                    nb.token('alice'))
        ws = alice.post('/home/alice/', {'name': 'w'}, status=201)['url']
        for k in range(3):
            upload(alice, ws, 'f%d' % k, bytes(3 * MB))
        assert used(nb) == 9 * MB
        browser = webtest.TestApp(nb.app, extra_environ={'HTTP_HOST': 'localhost:80'})
        login(browser, 'alice')
        assert '9.0 MB used (no quota)' in browser.get('/account').text
    finally:
        nb.close()


def test_a_copy_name_follows_the_worksheet_name_rule(small_quota):
    nb, alice, _ = small_quota
    ws = alice.post('/home/alice/', {'name': 'w'}, status=201)['url']
    assert alice.post(ws + 'copy', {'name': 'Co\u202epy\x07 1'}, status=201)['name'] == \
        'Co py 1'
