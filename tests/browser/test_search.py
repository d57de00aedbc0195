"""Finding worksheets in real Chromium (issue 20): the listing's search box shows a
worksheet shared with the caller, with its role, its owner and a snippet drawn as text
(a snippet holding an ``<img onerror>`` stays text); a tag chip filters the listing; and
``/pub/``'s search box, a plain form that works without JavaScript, finds a publication
by a word of its cells (the full-text index) or by its owner."""
import json
import threading
import urllib.request

import pytest
import waitress

from ..support.browser import logged_in
from ..support.notebook import Notebook

PAYLOAD = '<img src=x onerror="document.title=\'pwned\'">'


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    nb = Notebook(tmp_path_factory.mktemp('browser-search') / 'data')
    for login_name in ('olivia', 'greta'):
        nb.add_user(login_name)
    server = waitress.create_server(nb.app, host='127.0.0.1', port=0, threads=8)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield {'base': 'http://127.0.0.1:%s' % server.effective_port, 'nb': nb}
    server.close()
    nb.close()


def call(site, login_name, method, path, body=None):
    """The JSON API with ``login_name``'s token: what a script would do."""
    request = urllib.request.Request(
        site['base'] + path, method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={'Authorization': 'Bearer ' + site['nb'].token(login_name),
                 'Content-Type': 'application/json', 'Accept': 'application/json'})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.load(answer)


def worksheet(site, login_name, name, *texts):
    """A new worksheet of ``login_name`` with a text cell per text: its URL path."""
    made = call(site, login_name, 'POST', '/home/%s/' % login_name, {'name': name})
    url = '/home/%s/%d/' % (login_name, made['id'])
    for text in texts:
        call(site, login_name, 'POST', url + 'cells', {'type': 'text', 'input': text})
    return url


def test_listing_search_finds_a_shared_worksheet_and_a_tag_filters(browser, site):
    base = site['base']
    shared = worksheet(site, 'olivia', 'Orbits', 'The zephyrine orbit %s is odd.' % PAYLOAD)
    call(site, 'olivia', 'PUT', shared + 'sharing', {'collaborators': [], 'viewers': ['greta']})
    worksheet(site, 'olivia', 'Not shared', 'zephyrine again, but only for olivia')
    calculus = worksheet(site, 'greta', 'Calculus notes', 'limits')
    algebra = worksheet(site, 'greta', 'Algebra notes', 'groups')
    call(site, 'greta', 'PATCH', calculus, {'tags': ['calculus']})
    call(site, 'greta', 'PATCH', algebra, {'tags': ['algebra']})

    context, page = logged_in(browser, base, 'greta')
    try:
        form = page.locator('form[data-role=search]')
        form.locator('input[name=q]').fill('zephyrine')
        form.locator('input[name=q]').press('Enter')
        results = page.locator('[data-role=search-results] li')
        results.first.wait_for()
        page.wait_for_function(
            "() => document.querySelector('[data-role=search-status]').textContent"
            " === '1 found.'")
        assert results.count() == 1  # olivia's unshared worksheet is not found
        result = results.first
        assert result.locator('a').inner_text() == 'Orbits'
        assert result.locator('a').get_attribute('href') == base + shared
        assert result.locator('.role').inner_text() == 'viewer'
        assert result.locator('.owner').inner_text() == 'olivia'
        # The snippet is the cell's words as text: the payload is shown, not made.
        snippet = result.locator('.snippet').inner_text()
        assert 'zephyrine' in snippet and PAYLOAD in snippet
        assert page.locator('[data-role=search-results] img').count() == 0
        assert page.title() != 'pwned'

        # The tag chip filters the listing to the worksheets of that tag.
        rows = page.locator('table.worksheets tbody tr')
        assert rows.count() == 2
        page.locator('table.worksheets a.tag', has_text='calculus').click()
        page.wait_for_url('**/home/greta/?*tag=calculus*')
        assert rows.count() == 1
        assert 'Calculus notes' in rows.first.inner_text()
        assert 'calculus' in page.locator('.tag-filter').inner_text()
        page.locator('.tag-filter a', has_text='show all').click()
        page.wait_for_function(
            "() => document.querySelectorAll('table.worksheets tbody tr').length === 2")
    finally:
        context.close()


def test_pub_search_box_finds_a_word_of_the_cells_without_javascript(browser, site):
    base = site['base']
    kepler = worksheet(site, 'olivia', "Kepler's laws", 'aphelion_distance = 152.1 (in Gm)')
    other = worksheet(site, 'olivia', 'Tides', 'the moon pulls')
    for url in (kepler, other):
        call(site, 'olivia', 'POST', url + 'publish', {})

    # An anonymous visitor, without JavaScript: the search box is a plain GET form.
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(base + '/pub/')
        assert 'names, cells and owners' in page.locator(
            '[data-role=pub-search-hint]').inner_text()
        rows = page.locator('tr[data-role=publication]')
        assert rows.count() == 2
        box = page.locator('form.pub-search input[name=q]')
        box.fill('aphelion')  # a word of a cell, not of the name
        page.locator('form.pub-search button[type=submit]').click()
        page.wait_for_url(base + '/pub/?q=aphelion')
        assert rows.count() == 1
        assert "Kepler's laws" in rows.first.inner_text()
        assert 'matching' in page.locator('[data-role=pub-total]').inner_text()
        assert box.input_value() == 'aphelion'

        box.fill('olivia')  # the owner's login finds both
        page.locator('form.pub-search button[type=submit]').click()
        page.wait_for_url(base + '/pub/?q=olivia')
        assert rows.count() == 2

        box.fill('nosuchwordanywhere')
        page.locator('form.pub-search button[type=submit]').click()
        page.wait_for_url(base + '/pub/?q=nosuchwordanywhere')
        assert rows.count() == 0
        assert 'Nothing published matches' in page.locator('table.pub-table').inner_text()
    finally:
        context.close()


def test_the_owner_tags_a_worksheet_on_its_page(browser, site):
    base = site['base']
    path = worksheet(site, 'olivia', 'To be filed', 'a text')
    context, page = logged_in(browser, base, 'olivia')
    try:
        page.goto(base + path)
        page.wait_for_function(
            "() => document.getElementById('worksheet').dataset.ready === 'true'")
        page.once('dialog', lambda dialog: dialog.accept('Week-2, geometry'))
        page.click('[data-action=edit-tags]')
        page.locator('[data-role=tags] a.tag', has_text='week-2').wait_for()
        assert page.locator('[data-role=tags] a.tag').all_inner_texts() == \
            ['geometry', 'week-2']
        # The chip leads to the listing filtered by it.
        page.click('[data-role=tags] a.tag:has-text("geometry")')
        page.wait_for_url('**/home/olivia/?tag=geometry')
        assert page.locator('text=To be filed').count() == 1
        # A tag the server refuses is said, and nothing changes.
        page.goto(base + path)
        page.once('dialog', lambda dialog: dialog.accept('<b>'))
        page.click('[data-action=edit-tags]')
        page.locator('#message', has_text='tag').wait_for()
        assert call(site, 'olivia', 'GET', path)['tags'] == ['geometry', 'week-2']
    finally:
        context.close()
    # Someone who is not the owner sees the tags, without the button.
    call(site, 'olivia', 'PUT', path + 'sharing', {'collaborators': ['greta'], 'viewers': []})
    context, page = logged_in(browser, base, 'greta')
    try:
        page.goto(base + path)
        page.locator('[data-role=tags] .tag', has_text='geometry').wait_for()
        assert page.locator('[data-action=edit-tags]').count() == 0
    finally:
        context.close()
