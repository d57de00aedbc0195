"""Helpers of the WebTest tests of the application: a new browser, whether it is logged
in, worksheets made and read back in the database, and checks of an answer."""
import re

import webtest

JSON = {'Accept': 'application/json'}


def new_browser(notebook):
    return webtest.TestApp(notebook.app, extra_environ={'HTTP_HOST': 'localhost:80'})


def logged_in(testapp):
    """True if the browser's session belongs to someone."""
    res = testapp.get('/account', status='*')
    return res.status_int == 200


def ids_listed(res):
    """Worksheet numbers on a listing page, in their order."""
    return re.findall(r'name="ids" value="([^"]+)"', res.text)


def no_traceback(res):
    assert 'Traceback' not in res.text
    assert 'File "' not in res.text
    assert res.status_int != 500


def make_worksheet(notebook, login_name, name='W', cells=()):
    """A worksheet made in the database: its number and its cell ids."""
    with notebook.transaction() as root:
        ws = root.user_by_login(login_name).create_worksheet(name)
        for cell_type, text in cells:
            ws.add_cell(cell_type, text)
        return ws.number, list(ws.cell_order)


def stored(notebook, login_name):
    """{number: (name, [(type, input), ...])} of a user's worksheets, from the DB."""
    with notebook.transaction() as root:
        user = root.user_by_login(login_name)
        return {w.number: (w.name, [(c.type, c.input) for c in w.ordered_cells()])
                for w in user.worksheets()}


def states(notebook, login_name):
    with notebook.transaction() as root:
        user = root.user_by_login(login_name)
        return {w.number: w.state_for(user.id) for w in user.worksheets()}
