"""The listing page of a user's worksheets: sorting, tabs, copy, rename,
trash, actions (WebTest; no Sage process)."""
import pytest

from ...support.notebook import Api, login
from ...support.webapp import (
    JSON, ids_listed, make_worksheet, new_browser, no_traceback, states,
    stored)

# argon2 with its default cost takes ~0.2 s a hash: far too slow for many tests.
pytestmark = pytest.mark.usefixtures('cheap_password_hashes')


# === The listing page ==============================================================

@pytest.fixture
def three(notebook, testapp):
    """alice logged in, with worksheets 0 'Banana', 1 'apple', 2 'Cherry'
    (modified in the order apple, Cherry, Banana: Banana is the newest)."""
    notebook.add_user('alice')
    for name in ('Banana', 'apple', 'Cherry'):
        make_worksheet(notebook, 'alice', name)
    with notebook.transaction() as root:
        alice = root.user_by_login('alice')
        alice['1'].modified = 1000.0
        alice['2'].modified = 2000.0
        alice['0'].modified = 3000.0
    return login(testapp, 'alice')


def select(form, numbers):
    for field in form.fields.get('ids', []):
        field.checked = field._value in [str(n) for n in numbers]


def test_listing_sorts(testapp, three):
    by_modified = testapp.get('/home/alice/')
    assert ids_listed(by_modified) == ['0', '2', '1']
    assert ids_listed(testapp.get('/home/alice/', {'sort': 'modified'})) == ['0', '2', '1']
    by_name = testapp.get('/home/alice/', {'sort': 'name'})
    assert ids_listed(by_name) == ['1', '0', '2']
    data = testapp.get('/home/alice/', {'sort': 'name'}, headers=JSON).json
    assert [w['name'] for w in data['worksheets']] == ['apple', 'Banana', 'Cherry']


def test_listing_tabs_and_actions(notebook, testapp, three):
    page = testapp.get('/home/alice/')
    for state in ('active', 'archive', 'trash'):
        assert '?state=%s' % state in page.text
    # Archive 1, trash 2, from the active tab.
    form = page.forms['listing-form']
    select(form, [1])
    res = form.submit('action', value='archive', status=302)
    assert 'state=active' in res.headers['Location']
    form = testapp.get('/home/alice/').forms['listing-form']
    select(form, [2])
    form.submit('action', value='trash', status=302)
    assert states(notebook, 'alice') == {0: 'active', 1: 'archive', 2: 'trash'}

    assert ids_listed(testapp.get('/home/alice/')) == ['0']
    assert ids_listed(testapp.get('/home/alice/', {'state': 'archive'})) == ['1']
    trash = testapp.get('/home/alice/', {'state': 'trash'})
    assert ids_listed(trash) == ['2']
    assert ids_listed(testapp.get('/home/alice/', {'state': 'all', 'sort': 'name'})) == [
        '1', '0', '2']
    assert 'value="delete"' in trash.text
    assert 'value="delete"' not in testapp.get('/home/alice/').text

    # Restore from the archive tab.
    form = testapp.get('/home/alice/', {'state': 'archive'}).forms['listing-form']
    select(form, [1])
    res = form.submit('action', value='active', status=302)
    assert 'state=archive' in res.headers['Location']
    assert states(notebook, 'alice') == {0: 'active', 1: 'active', 2: 'trash'}
    assert set(stored(notebook, 'alice')) == {0, 1, 2}


def test_listing_copy(notebook, testapp, three):
    form = testapp.get('/home/alice/').forms['listing-form']
    select(form, [0, 2])
    form.submit('action', value='copy', status=302)
    worksheets = stored(notebook, 'alice')
    assert sorted(worksheets) == [0, 1, 2, 3, 4]
    assert sorted(worksheets[n][0] for n in (3, 4)) == ['Copy of Banana', 'Copy of Cherry']


def test_listing_rename(notebook, testapp, three):
    form = testapp.get('/home/alice/').forms['listing-form']
    select(form, [2])
    form['new_name'] = '  Durian   pie '
    form.submit('action', value='rename', status=302)
    assert stored(notebook, 'alice')[2][0] == 'Durian pie'
    # Two selected: nothing renamed, a message says why.
    form = testapp.get('/home/alice/').forms['listing-form']
    select(form, [0, 1])
    form['new_name'] = 'Both'
    form.submit('action', value='rename', status=302)
    assert 'Select one worksheet to rename.' in testapp.get('/home/alice/').text
    assert [stored(notebook, 'alice')[n][0] for n in (0, 1)] == ['Banana', 'apple']


def test_delete_for_good_only_from_trash(notebook, testapp, three):
    # An active worksheet cannot be deleted for good, even by a hand-made request.
    res = testapp.post('/home/alice/action', {'action': 'delete', 'ids': '0',
                                              'csrf_token': three}, status=409)
    no_traceback(res)
    assert set(stored(notebook, 'alice')) == {0, 1, 2}
    # Mixed selections are refused as a whole.
    with notebook.transaction() as root:
        alice = root.user_by_login('alice')
        alice['2'].set_state(alice.id, 'trash')
    testapp.post('/home/alice/action', [('action', 'delete'), ('ids', '0'), ('ids', '2'),
                                        ('csrf_token', three)], status=409)
    assert set(stored(notebook, 'alice')) == {0, 1, 2}
    # From the trash tab, it goes.
    form = testapp.get('/home/alice/', {'state': 'trash'}).forms['listing-form']
    select(form, [2])
    res = form.submit('action', value='delete', status=302)
    assert 'state=trash' in res.headers['Location']
    assert set(stored(notebook, 'alice')) == {0, 1}
    # Its number is not given out again.
    testapp.post('/home/alice/', {'name': 'new', 'csrf_token': three}, status=302)
    assert set(stored(notebook, 'alice')) == {0, 1, 3}


def test_empty_trash(notebook, testapp, three):
    with notebook.transaction() as root:
        alice = root.user_by_login('alice')
        alice['0'].set_state(alice.id, 'trash')
        alice['1'].set_state(alice.id, 'trash')
    assert 'empty_trash' not in testapp.get('/home/alice/').text
    trash = testapp.get('/home/alice/', {'state': 'trash'})
    form = [f for f in trash.forms.values() if f.action.endswith('/empty_trash')][0]
    res = form.submit(status=302)
    assert 'state=trash' in res.headers['Location']
    assert stored(notebook, 'alice') == {2: ('Cherry', [('compute', '')])}
    page = testapp.get(res.headers['Location'])
    assert 'Deleted 2 worksheet(s) for good.' in page.text
    assert ids_listed(page) == []


def test_listing_action_without_selection(notebook, testapp, three):
    res = testapp.post('/home/alice/action', {'action': 'trash', 'csrf_token': three},
                       status=302)
    assert 'Select one or more worksheets first.' in testapp.get(
        res.headers['Location']).text
    testapp.post('/home/alice/action', {'action': 'trash', 'ids': '99',
                                        'csrf_token': three}, status=302)
    assert states(notebook, 'alice') == {0: 'active', 1: 'active', 2: 'active'}


def test_listing_action_unknown_is_400(notebook, testapp, three):
    res = testapp.post('/home/alice/action', {'action': 'explode', 'ids': '0',
                                              'csrf_token': three}, status=400)
    no_traceback(res)
    assert set(stored(notebook, 'alice')) == {0, 1, 2}
    assert states(notebook, 'alice') == {0: 'active', 1: 'active', 2: 'active'}


def test_listing_states_are_per_user(notebook, testapp, three):
    notebook.add_user('bob')
    with notebook.transaction() as root:
        ws = root.user_by_login('alice')['0']
        ws.collaborators.append('userid:' + root.user_by_login('bob').id)
    bob = Api(testapp, notebook.token('bob'))
    # bob has no worksheets of his own.
    assert bob.patch('/home/alice/0/', {'state': 'trash'}, status=200)['state'] == 'trash'
    assert bob.get('/home/alice/0/')['state'] == 'trash'
    with notebook.transaction() as root:
        bob_id = root.user_by_login('bob').id
        assert root.user_by_login('alice')['0'].state_for(bob_id) == 'trash'
    assert states(notebook, 'alice')[0] == 'active'
    assert Api(testapp, notebook.token('alice')).get('/home/alice/0/')['state'] == 'active'
    assert ids_listed(testapp.get('/home/alice/')) == ['0', '2', '1']


def test_other_user_cannot_use_listing_actions(notebook, testapp, three):
    notebook.add_user('mallory')
    other = new_browser(notebook)
    token = login(other, 'mallory')
    other.post('/home/alice/action', {'action': 'trash', 'ids': '0',
                                      'csrf_token': token}, status=404)
    other.post('/home/alice/empty_trash', {'csrf_token': token}, status=404)
    assert states(notebook, 'alice') == {0: 'active', 1: 'active', 2: 'active'}
