"""Sharing in real Chromium (issue 20), with real Sage: the owner shares a worksheet
with a group in the Share dialog (its type-ahead offers the group), a member opens it
from "Shared with me" and evaluates, and the owner sees the output; a viewer gets the
read-only page with "Edit a copy"; and a collaborator opens a worksheet full of stored
XSS payloads (tests/support/trust.py's battery) shared through the API: nothing runs.
"""
import threading

import pytest
import waitress
import webtest

from ..support.notebook import Api, Notebook
from ..support.browser import logged_in
from ..support.trust import (
    Battery, Recorder, assert_nothing_ran, payload_worksheet, view_and_click)


@pytest.fixture(scope='module')
def site(tmp_path_factory, listener):  # noqa: F811
    nb = Notebook(tmp_path_factory.mktemp('browser-sharing') / 'data')
    for login in ('olivia', 'greta', 'vera', 'mallory', 'carl'):
        nb.add_user(login)
    battery = Battery(listener.port)
    with nb.transaction() as root:
        team = root.add_group('team')
        # The teacher is in her class's group: the default visibility shows it to her.
        for login in ('olivia', 'greta'):
            root.user_by_login(login).group_ids.add(team.id)
        ws = root.user_by_login('olivia').create_worksheet('Group work')
        ws.ordered_cells()[0].input = 'shared_value = 6 * 7'
        owner_url = '/home/olivia/%s/' % ws.__name__
        # Mallory's worksheet of payloads.
        bad = payload_worksheet(battery, root.user_by_login('mallory'), 'mallory')
        mallory_url = '/home/mallory/%s/' % bad.__name__
    recorder = Recorder(nb.app)
    server = waitress.create_server(recorder, host='127.0.0.1', port=0, threads=8)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = 'http://127.0.0.1:%s' % server.effective_port
    yield {'base': base, 'nb': nb, 'recorder': recorder, 'battery': battery,
           'owner_url': owner_url, 'mallory_url': mallory_url}
    server.close()
    nb.close()


def test_share_with_a_group_member_evaluates_owner_sees_output(browser, site):  # noqa: F811
    base = site['base']
    owner_ctx, owner = logged_in(browser, base, 'olivia')
    member_ctx, member = logged_in(browser, base, 'greta')
    try:
        owner.goto(base + site['owner_url'])
        owner.wait_for_function("() => document.getElementById('worksheet').dataset.ready === 'true'")
        summary = owner.locator('[data-role=sharing-summary]')
        assert 'not shared' in summary.inner_text()
        # The member has nothing shared yet.
        member.click('nav.tabs a:has-text("Shared with me")')
        assert 'Nobody shares a worksheet with you yet' in member.locator(
            '[data-role=shared-worksheets]').inner_text()

        # The owner shares with the group through the dialog.
        owner.click('[data-action=share]')
        dialog = owner.locator('[data-role=share-dialog]')
        dialog.wait_for()
        dialog.locator('[data-role=share-input]').fill('tea')
        owner.wait_for_function(
            "() => [...document.querySelectorAll('[data-role=share-candidates] option')]"
            ".some(o => o.value === 'group:team')")
        dialog.locator('[data-role=share-input]').fill('group:team')
        dialog.locator('[data-role=share-new-role]').select_option('collaborators')
        dialog.locator('.share-add button[type=submit]').click()
        # An unknown name is refused and named; nothing is saved.
        dialog.locator('[data-role=share-input]').fill('nosuchuser')
        dialog.locator('.share-add button[type=submit]').click()
        dialog.locator('[data-share-action=save]').click()
        error = dialog.locator('[data-role=share-error]')
        owner.wait_for_function(
            "() => document.querySelector('[data-role=share-error]').textContent !== ''")
        assert "no such user or group: 'nosuchuser'" in error.inner_text()
        dialog.locator('[data-share-action=remove][data-entry=nosuchuser]').click()
        dialog.locator('[data-share-action=save]').click()
        owner.wait_for_function(
            "() => document.querySelector('[data-role=share-status]').textContent === 'Saved.'")
        assert summary.inner_text().strip() == 'shared with 1 group'
        dialog.locator('[data-share-action=close]').click()

        # The member finds it under "Shared with me" and runs its cell.
        member.reload()
        row = member.locator('[data-role=shared-worksheets] tbody tr').first
        assert 'olivia' in row.inner_text() and 'collaborator' in row.inner_text()
        row.locator('a', has_text='Group work').click()
        member.wait_for_function("() => document.getElementById('worksheet').dataset.ready === 'true'")
        assert 'you are a collaborator' in member.locator('[data-role=sharing-summary]').inner_text()
        cell = member.locator('.cell').first
        cell.locator('.cm-content').click()
        member.keyboard.press('End')
        member.keyboard.type('; shared_value + 1')
        member.keyboard.press('Shift+Enter')
        member.locator('.cell[data-status=done] .output').first.wait_for(timeout=120_000)
        assert '43' in member.locator('.cell .output').first.inner_text()

        # The owner's page shows the member's output; the owner's next cell sees the
        # member's variable: one Sage process, the owner's.
        owner.reload()
        owner.wait_for_function("() => document.getElementById('worksheet').dataset.ready === 'true'")
        assert '43' in owner.locator('.cell .output').first.inner_text()
        owner.click('[data-action=append-compute]')
        # (the member's Shift-Enter opened a second cell)
        owner.wait_for_function("() => document.querySelectorAll('.cell').length === 3")
        owner.locator('.cell').last.locator('.cm-content').click()
        owner.keyboard.type('shared_value * 2')
        owner.keyboard.press('Shift+Enter')
        owner.locator('.cell').nth(2).locator('.output', has_text='84').wait_for(timeout=60_000)
    finally:
        owner_ctx.close()
        member_ctx.close()


def test_a_viewer_sees_a_read_only_page_and_edits_a_copy(browser, site):  # noqa: F811
    base = site['base']
    app = webtest.TestApp(site['nb'].app, extra_environ={'HTTP_HOST': 'localhost:80'})
    owner = Api(app, site['nb'].token('olivia'))
    app.put_json(site['owner_url'] + 'sharing', {'collaborators': ['group:team'],
                                                 'viewers': ['vera']},
                 headers=owner.headers, status=200)
    context, page = logged_in(browser, base, 'vera')
    try:
        page.goto(base + site['owner_url'])
        page.wait_for_function("() => document.getElementById('worksheet').dataset.ready === 'true'")
        assert page.locator('.badge', has_text='read only').count() == 1
        assert page.locator('[data-action=share]').count() == 0
        assert page.locator('[data-action=evaluate-all]').count() == 0
        page.click('[data-role=edit-copy] button')
        page.wait_for_url(base + '/home/vera/*/')
        page.wait_for_function("() => document.getElementById('worksheet').dataset.ready === 'true'")
        assert page.locator('[data-action=evaluate-all]').count() == 1
        assert page.locator('[data-role=worksheet-name]').inner_text() == 'Copy of Group work'
    finally:
        context.close()


def test_payloads_in_a_shared_worksheet_do_nothing_for_a_collaborator(
        browser, site, listener):  # noqa: F811
    app = webtest.TestApp(site['nb'].app, extra_environ={'HTTP_HOST': 'localhost:80'})
    mallory = Api(app, site['nb'].token('mallory'))
    app.put_json(site['mallory_url'] + 'sharing', {'collaborators': ['carl'], 'viewers': []},
                 headers=mallory.headers, status=200)
    context, page = logged_in(browser, site['base'], 'carl')
    try:
        page.goto(site['base'] + '/home/carl/?state=shared')
        assert page.locator('[data-role=shared-worksheets] tbody tr').count() == 1
        result = view_and_click(site, listener, page, site['mallory_url'])
        assert_nothing_ran(result)
        # The collaborator's page is editable, and the payloads were rendered.
        assert page.locator('[data-action=evaluate-all]').count() == 1
        assert page.locator('.text-rendered').count() == 3
    finally:
        context.close()
