"""The admin pages in a real browser (Playwright driving Debian's Chromium): search a
user, suspend and reinstate them (their open session ends at once), create a group and
add a member."""
import threading

import pytest
import waitress

from ..support.browser import logged_in
from ..support.notebook import Notebook


@pytest.fixture(scope='module')
def admin_server(tmp_path_factory):
    nb = Notebook(tmp_path_factory.mktemp('browser-admin') / 'data')
    nb.add_user('boss', admin=True)
    nb.add_user('bob')
    with nb.transaction() as root:
        for i in range(120):
            root.add_user('student%03d' % i, fullname='Student %d' % i,
                          email='s%03d@uni.example' % i)
        root.user_by_login('bob').fullname = 'Bob Builder'
    server = waitress.create_server(nb.app, host='127.0.0.1', port=0, threads=8)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield 'http://127.0.0.1:%s' % server.effective_port, nb
    server.close()
    nb.close()


def test_admin_pages_in_a_browser(browser, admin_server):  # noqa: F811
    base, nb = admin_server
    bob = logged_in(browser, base, 'bob')[1]
    assert bob.locator('#admin-link').count() == 0
    admin = logged_in(browser, base, 'boss')[1]
    admin.on('dialog', lambda dialog: dialog.accept())

    # Users: the list pages, the search finds bob by his name.
    admin.click('#admin-link')
    admin.wait_for_url(base + '/admin/users/')
    assert '122 users' in admin.locator('#user-count').inner_text()
    assert admin.locator('#users tbody tr').count() == 50
    admin.click('a[rel=next]')
    admin.wait_for_url('**/admin/users/?*page=2')
    admin.fill('input[name=q]', 'builder')
    admin.press('input[name=q]', 'Enter')
    admin.wait_for_url('**/admin/users/?q=builder')
    assert admin.locator('#users tbody tr').count() == 1
    admin.click('#users a:text("bob")')
    admin.wait_for_url(base + '/admin/users/bob/')

    # Suspend: bob's open page is logged out at its next request.
    admin.click('button[data-action=suspend]')
    admin.locator('#suspended-tag').wait_for()
    assert 'bob is suspended.' in admin.locator('.flash').inner_text()
    bob.reload()
    assert '/login' in bob.url
    # Reinstate: bob can log in again.
    admin.click('button[data-action=reinstate]')
    admin.locator('button[data-action=suspend]').wait_for()
    assert admin.locator('#suspended-tag').count() == 0
    bob.close()
    bob = logged_in(browser, base, 'bob')[1]
    assert bob.url == base + '/home/bob/'

    # Groups: create one, add bob.
    admin.click('nav.admin-nav a:text("Groups")')
    admin.wait_for_url(base + '/admin/groups/')
    admin.fill('#add-group input[name=name]', 'Algebra 101')
    admin.click('#add-group button[type=submit]')
    admin.wait_for_url(base + '/admin/groups/g-*/')
    assert 'Group Algebra 101' in admin.locator('h1').inner_text()
    admin.fill('#add-member input[name=login]', 'bob')
    admin.click('#add-member button[type=submit]')
    admin.locator('#members li[data-login=bob]').wait_for()
    with nb.transaction() as root:
        group = root.group_by_name('Algebra 101')
        assert [u.login for u in root.group_members(group)] == ['bob']

    # The audit log shows what happened, newest first.
    admin.click('nav.admin-nav a:text("Audit log")')
    admin.wait_for_url(base + '/admin/audit')
    actions = [a for a in admin.locator('#audit tbody tr td:nth-child(3)').all_inner_texts()
               if not a.startswith('login')]
    assert actions[:4] == ['group_member_added', 'group_added', 'user_reinstated',
                           'user_suspended']
    admin.fill('input[name=q]', 'suspended')
    admin.press('input[name=q]', 'Enter')
    admin.wait_for_url('**/admin/audit?q=suspended')
    assert admin.locator('#audit tbody tr').count() == 1
    admin.context.close()
    bob.context.close()
