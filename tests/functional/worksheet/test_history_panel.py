"""Who gets the worksheet page's History button (templates/worksheet.jinja2; the panel is
static/page/history.js): those who may edit, viewers only once the owner opened the
history to them, admins (who read every worksheet's history); ``data-owner`` (the
switch for viewers) only on the owner's page."""
import re

import pytest
import webtest

from sagenb_pyramid.acl import user_principal

from ...conftest import Notebook
from ...support.notebook import login

pytestmark = pytest.mark.usefixtures('cheap_password_hashes')


@pytest.fixture
def site(tmp_path, cheap_password_hashes):
    nb = Notebook(tmp_path / 'data')
    for name in ('olivia', 'carl', 'vera'):
        nb.add_user(name)
    nb.add_user('root', admin=True)
    with nb.transaction() as root:
        users = {name: root.user_by_login(name) for name in ('olivia', 'carl', 'vera')}
        ws = users['olivia'].create_worksheet('History')
        ws.share([user_principal(users['carl'].id)], [user_principal(users['vera'].id)])
        url = '/home/olivia/%s/' % ws.__name__
    try:
        yield nb, url
    finally:
        nb.close()


def history_button(nb, who, url):
    app = webtest.TestApp(nb.app, extra_environ={'HTTP_HOST': 'localhost:80'})
    login(app, who)
    page = app.get(url, headers={'Accept': 'text/html'}, status=200).text
    found = re.findall(r'<button[^>]*data-action="history"[^>]*>', page)
    assert len(found) <= 1, found
    return found[0] if found else None


def set_viewers(nb, url, value):
    with nb.transaction() as root:
        root.user_by_login('olivia')[url.split('/')[3]].history_for_viewers = value


def test_the_history_button_follows_who_may_read_the_history(site):
    nb, url = site
    owner = history_button(nb, 'olivia', url)
    assert owner is not None and 'data-owner="true"' in owner
    collaborator = history_button(nb, 'carl', url)
    assert collaborator is not None and 'data-owner' not in collaborator
    assert history_button(nb, 'vera', url) is None
    admin = history_button(nb, 'root', url)
    assert admin is not None and 'data-owner' not in admin

    set_viewers(nb, url, True)
    viewer = history_button(nb, 'vera', url)
    assert viewer is not None and 'data-owner' not in viewer
