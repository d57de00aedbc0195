"""Presence in real Chromium (issue 21): two windows as two users on one worksheet; B
sees a marker in A's colour, with A's name as text (not markup), on the cell A is in,
follows A to another cell, lists A next to the title, and loses both once A's page
closes (its "gone", sent with keepalive as the page goes; well within the minute).

The page's worksheet-level poll is live.js's (another part of issue 21): while it is
not there, the test polls ``?since=`` itself and hands the answers to
``page.presence.update`` exactly as live.js does.
"""
import threading

import pytest
import waitress

from ..support.browser import logged_in
from ..support.notebook import Notebook

NAME = 'Olivia <img src=x data-injected=1>'


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    nb = Notebook(tmp_path_factory.mktemp('browser-presence') / 'data')
    for login in ('olivia', 'carl'):
        nb.add_user(login)
    with nb.transaction() as root:
        olivia = root.user_by_login('olivia')
        olivia.fullname = NAME
        ws = olivia.create_worksheet('Together')
        ws.ordered_cells()[0].input = 'a = 1'
        second = ws.add_cell('compute', 'b = 2')
        ws.collaborators.append('userid:' + root.user_by_login('carl').id)
        url = '/home/olivia/%s/' % ws.__name__
        cells = (ws.cell_order[0], second.id)
    server = waitress.create_server(nb.app, host='127.0.0.1', port=0, threads=8)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield {'base': 'http://127.0.0.1:%s' % server.effective_port, 'url': url, 'cells': cells}
    server.close()
    nb.close()


# What live.js does after each answer, until live.js is there.
POLL = """() => {
  const page = window.sagenb.page;
  if (page.live) return false;
  const poll = async () => {
    const stamp = page.presenceStamp ?? 0;
    const data = await page.api('GET', `./?since=${page.worksheet.version}&presence=${stamp}`);
    if (data.presence) page.presence?.update(data.presence, data.presence_stamp);
  };
  setInterval(() => poll().catch(() => {}), 300);
  return true;
}"""


def open_worksheet(page, site):
    page.goto(site['base'] + site['url'])
    page.wait_for_function("() => document.getElementById('worksheet').dataset.ready === 'true'")
    page.evaluate(POLL)


def test_a_marker_follows_the_other_person_and_goes_when_their_page_closes(browser, site):
    first, second = site['cells']
    a_ctx, a = logged_in(browser, site['base'], 'olivia')
    b_ctx, b = logged_in(browser, site['base'], 'carl')
    try:
        open_worksheet(b, site)
        open_worksheet(a, site)
        a.click('.cell[data-cell-id="%d"] .cm-content' % second)
        marker = b.locator('.cell[data-cell-id="%d"] .presence-marker[data-user=olivia]'
                           % second)
        marker.wait_for(timeout=10_000)
        # The name as text: no element was made of it.
        assert marker.inner_text() == NAME
        assert b.locator('[data-injected]').count() == 0
        color = b.evaluate("() => window.sagenb.page.presence && "
                           "[...document.querySelectorAll('.presence-marker')]"
                           ".map(m => getComputedStyle(m).backgroundColor)")
        assert len(color) == 1 and color[0] not in ('', 'rgba(0, 0, 0, 0)')
        listed = b.locator('[data-role=presence] .presence-person[data-user=olivia]')
        assert listed.inner_text() == NAME
        # B's own page has no marker of its own; A sees B listed, in no cell.
        assert a.locator('.presence-marker').count() == 0
        a.locator('[data-role=presence] .presence-person[data-user=carl]').wait_for(
            timeout=10_000)

        # A moves to the other cell: the marker follows.
        a.click('.cell[data-cell-id="%d"] .cm-content' % first)
        b.locator('.cell[data-cell-id="%d"] .presence-marker[data-user=olivia]'
                  % first).wait_for(timeout=10_000)
        assert b.locator('.cell[data-cell-id="%d"] .presence-marker' % second).count() == 0

        # A's page closes: gone from B's page within seconds, not a minute.
        a.close(run_before_unload=True)
        b.wait_for_function("() => !document.querySelector('.presence-marker')"
                            " && document.querySelector('[data-role=presence]').hidden",
                            timeout=10_000)
    finally:
        a_ctx.close()
        b_ctx.close()
