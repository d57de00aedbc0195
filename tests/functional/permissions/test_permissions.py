"""Who may do what: a table of every view the application registers, tried by every
kind of visitor, with the status each must get.

The views come from Pyramid's introspector (context, view name, request method,
permission), so a new view without a row here fails ``test_every_view_has_a_row``.
Each visitor but the anonymous one sends an API token, as scripts do (so no CSRF token and
JSON answers): ``anonymous`` (nothing), ``other`` (a user the worksheet is not shared
with), ``viewer`` and ``collaborator`` (named on the worksheet), ``member`` (of a group the
worksheet is shared with, as collaborators), ``owner``, ``admin``, ``suspended`` (a token
of a suspended user), ``revoked`` (the owner's token after revocation) and ``readonly``
(the owner's read-only token).  The statuses are those issue 18 asks for: who may not see
an object gets 404, as for a missing one (401 without an identity); a read-only token
may only GET; no token makes tokens.

The world is built once for the module.  A request that would change what later
requests rely on (deleting a worksheet, a cell, a user...) gets an object made for it.
No Sage process starts: the per-user process limit is 0, so a request allowed to
evaluate gets 409 ("no room") where it would have queued a cell.
"""
import io
import itertools
import json
import logging
import re
import shutil

import pytest
import webtest

from sagenb_pyramid.auth.tokens import create_token
from sagenb_pyramid.security import group_principal, token_digest, user_principal
from sagenb_pyramid.services import history

from ...support.doctree import make_doc_tree
from ...support.notebook import Notebook

PRINCIPALS = ('anonymous', 'other', 'viewer', 'collaborator', 'member', 'owner', 'admin',
              'suspended', 'revoked', 'readonly')
LOGINS = {'other': 'oscar', 'viewer': 'vera', 'collaborator': 'carl', 'member': 'greta',
          'owner': 'olivia', 'admin': 'ada', 'suspended': 'sam'}
OWNER = LOGINS['owner']
_serial = itertools.count()


def unique(prefix):
    return '%s%d' % (prefix, next(_serial))


# === the world ==========================================================================

class World:
    def __init__(self, nb):
        self.nb = nb
        with nb.transaction() as root:
            users = {who: root.add_user(login, is_admin=who == 'admin')
                     for who, login in LOGINS.items()}
            team = root.add_group('team')
            users['member'].group_ids.add(team.id)
            self.team_id = team.id
            self.tokens = {who: create_token(root, user) for who, user in users.items()}
            users['suspended'].suspended = True
            owner = users['owner']
            revoked = create_token(root, owner)
            del root.tokens[token_digest(revoked)]
            self.tokens['revoked'] = revoked
            self.tokens['readonly'] = self.read_only_token(root, owner)
            self.user_ids = {who: user.id for who, user in users.items()}
        self.ws = self.shared_worksheet()
        with nb.transaction() as root:
            ws = root.user_by_login(OWNER)[str(self.ws)]
            self.compute, self.text = ws.cell_order[0], ws.cell_order[1]
            self.revision = next(iter(ws.revisions.keys()))
            # One taken here too: it keeps the text cell's attachment.
            self.taken = history.take(ws, [ws.owner_id], 'auto', history.Rules(60),
                                      2e9).__name__

    @staticmethod
    def read_only_token(root, owner):
        return create_token(root, owner, scope='read')

    def shared_worksheet(self):
        """A worksheet of the owner shared with the viewer, the collaborator and the
        group; returns its number."""
        with self.nb.transaction() as root:
            owner = root.user_by_login(OWNER)
            ws = owner.create_worksheet(unique('shared '))
            cell = ws.cells[str(ws.cell_order[0])]
            cell.input = '1 + 1'
            cell.output.add_file('plot.png', b'\x89PNG not really')
            cell.output.keep_full_text(io.BytesIO(b'a long output'))
            cell.output.widgets = {'m1': {'model_name': 'IntSliderModel', 'state': {}}}
            text = ws.add_cell('text', 'some *text* ![a](attachment:a.png)')
            text.set_attachments({'a.png': {'image/png': b'\x89PNG not really'}})
            ws.data_files().add_file('data.txt', b'1,2,3\n')
            ws.add_revision(1e9, 'earlier text')
            ws.viewers.append(user_principal(self.user_ids['viewer']))
            ws.collaborators.append(user_principal(self.user_ids['collaborator']))
            ws.collaborators.append(group_principal(self.team_id))
            return ws.number

    def sharing_body(self, who):
        """The PUT of a fresh shared worksheet's sharing: the same entries, less the
        viewer (a removal, which an admin may make too)."""
        return {'collaborators': ['carl', 'group:team'], 'viewers': []}

    def ws_path(self, number=None):
        return '/home/%s/%d/' % (OWNER, self.ws if number is None else number)

    def fresh_cell(self):
        with self.nb.transaction() as root:
            ws = root.user_by_login(OWNER)[str(self.ws)]
            return ws.add_cell('compute', 'x = 1').id

    def fresh_file(self):
        name = unique('f') + '.txt'
        with self.nb.transaction() as root:
            root.user_by_login(OWNER)[str(self.ws)].data_files().add_file(name, b'x')
        return name

    def fresh_user(self):
        login = unique('u')
        with self.nb.transaction() as root:
            root.add_user(login)
        return login

    def fresh_group(self):
        with self.nb.transaction() as root:
            return root.add_group(unique('g')).id

    def fresh_token_prefix(self, who):
        with self.nb.transaction() as root:
            user = root.users_by_id.get(self.user_ids.get(who, self.user_ids['owner']))
            return token_digest(create_token(root, user))[:12]

    def fresh_identity(self, who):
        """An OAuth identity linked to the visitor's account (next to a second one, so
        that unlinking it leaves a way to log in)."""
        key = unique('test:')
        with self.nb.transaction() as root:
            user = root.users_by_id[self.user_ids.get(who, self.user_ids['owner'])]
            for k in (key, key + 'b'):
                root.link_identity(user, k, {'label': 'Test'})
        return key


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    nb = Notebook(tmp_path_factory.mktemp('permissions') / 'data', **{
        'sagenb.workers.max_per_user': '0', 'sagenb.api.max_wait': '0.2',
        # Every visitor fails a login once: not a guessing attack to slow down.
        'sagenb.login.free_attempts': '1000', 'sagenb.login.free_attempts_per_address': '1000',
        'sagenb.doc.path': make_doc_tree(tmp_path_factory.mktemp('doc'))})
    try:
        yield World(nb)
    finally:
        nb.close()


# === expected statuses ==================================================================

OUT = dict(anonymous=401, suspended=401, revoked=401)   # no identity


def statuses(ok, allowed, seen=()):
    """``ok`` for the visitors in ``allowed``; 403 for the other logged-in ones who may see
    the object (``seen``), 404 for those who may not (issue 18, item 6: they cannot tell it
    from a missing one); 401 for those without an identity."""
    table = dict(OUT)
    for who in PRINCIPALS:
        if who not in table:
            table[who] = ok if who in allowed else 403 if who in seen else 404
    return table


VIEWERS = ('viewer', 'collaborator', 'member', 'owner', 'admin', 'readonly')


def ws_view(ok):
    """``P.VIEW`` on the shared worksheet (or below it)."""
    return statuses(ok, VIEWERS)


def ws_edit(ok):
    """``P.EDIT`` or ``P.EVALUATE``: collaborators (the group's members too).  An admin
    sees other users' worksheets read-only (issue 18): 403, as a viewer."""
    return statuses(ok, ('collaborator', 'member', 'owner', 'readonly'), VIEWERS)


def ws_delete(ok):
    """The owner only: an admin removes someone's worksheets only through the audited
    admin pages (deleting the account), docs/security.md."""
    return statuses(ok, ('owner', 'readonly'), VIEWERS)


def ws_trust(ok):
    """Trusting a worksheet: its owner only."""
    return statuses(ok, ('owner', 'readonly'), VIEWERS)


def ws_share(ok):
    """Changing a worksheet's sharing (``P.SHARE``): its owner; an admin too, but only
    to take rights away (tests/functional/worksheet/test_sharing.py); collaborators and viewers see it and
    get 403."""
    return statuses(ok, ('owner', 'readonly', 'admin'), VIEWERS)


def ws_history(ok):
    """Reading a worksheet's history: those who may edit it, and admins; its viewers
    only when the owner opened it to them (not here: 403)."""
    return statuses(ok, ('collaborator', 'member', 'owner', 'readonly', 'admin'), VIEWERS)


def copy_ws(ok):
    """``P.VIEW`` on the worksheet, ``P.CREATE`` in one's own home."""
    return ws_view(ok)


def home_view(ok):
    """Looking at the owner's home (``P.VIEW`` on ``User``): nobody else may see it, not
    even those the owner shares worksheets with; admins may, read-only."""
    return statuses(ok, ('owner', 'admin', 'readonly'))


def home_change(ok):
    """Changing the owner's home (``P.CREATE``, ``P.EDIT``): the owner only; an admin
    sees it and gets 403."""
    return statuses(ok, ('owner', 'readonly'), ('admin',))


LOGGED_IN = ('other', 'viewer', 'collaborator', 'member', 'owner', 'admin', 'readonly')


def account(ok, **special):
    table = statuses(ok, LOGGED_IN)
    table.update(special)
    return table


def admin(ok):
    """``/admin/``: a non-admin cannot tell it is there (404)."""
    return statuses(ok, ('admin',))


def public(ok, **special):
    return {who: special.get(who, ok) for who in PRINCIPALS}


def expected_status(key, who):
    """The table's status, and the rule of read-only tokens (issue 18, item 8): they may
    only GET, whatever the view (403 before the view's own checks), except in the admin
    section, which their (non-admin) user may not even see (404, as for the user's full
    token: item 6)."""
    path, body, table = TABLE[key]
    if who == 'readonly' and key[2] not in ('GET', '*'):
        return 404 if key[0].startswith('Admin') else 403
    return table[who]


def root_redirect():
    return public(302)


# === the table ==========================================================================

def ws(world):
    return world.ws_path()


def cell(world):
    return world.ws_path() + 'cells/%d' % world.compute


def published(world, fresh=False):
    """(number, /pub/ path) of a published worksheet shared as the world's (one made
    for the request with ``fresh``), rated by the ``other`` visitor."""
    if not fresh and getattr(world, 'publication', None):
        return world.publication
    number = world.shared_worksheet()
    with world.nb.transaction() as root:
        publication = root.publications.publish(root.user_by_login(OWNER)[str(number)])
        publication.rate(world.user_ids['other'], 2, 'a comment')
        found = (number, '/pub/%s/' % publication.__name__)
    if not fresh:
        world.publication = found
    return found


def pub(world):
    return published(world)[1]


IPYNB = json.dumps({'cells': [], 'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5})

# (context, view name, method) -> (path of the target, body, expected statuses).
# A path or body may be a function of the world (and the body of the visitor too); a
# body is JSON, or ('form', fields), or ('upload', fields, files).  A view that takes any
# method has a GET and a POST row; ``*`` is a static route, tried with GET.
TABLE = {
    # --- the root, logging in and out, one's own account
    ('Root', '', 'GET'): ('/', None, root_redirect()),
    ('Root', 'login', 'GET'): ('/login', None, public(200)),
    # The form without its fields: 400 (no CSRF token from a browser; a wrong login from a
    # script, which needs none).
    ('Root', 'login', 'POST'): ('/login', ('form', {}), public(400)),
    ('Root', 'logout', 'POST'): ('/logout', ('form', {}), public(302, anonymous=400)),
    ('Root', 'signup', 'GET'): ('/signup', None, public(200)),
    ('Root', 'signup', 'POST'): ('/signup', ('form', {}), public(400)),
    # This notebook sends no mail: resetting by mail is off, for everybody alike.
    ('Root', 'forgot', 'GET'): ('/forgot', None, public(404)),
    ('Root', 'forgot', 'POST'): ('/forgot', ('form', {}), public(404, anonymous=400)),
    ('Root', 'reset', 'GET'): ('/reset/nosuchtoken', None, public(400)),
    ('Root', 'reset', 'POST'): ('/reset/nosuchtoken', ('form', {}), public(400)),
    ('Root', 'confirm', 'GET'): ('/confirm/nosuchtoken', None, public(400)),
    ('Root', 'confirm', 'POST'): ('/confirm/nosuchtoken', ('form', {}), public(400)),
    ('Root', 'oauth-username', 'GET'): ('/oauth-username', None, public(400)),
    ('Root', 'oauth-username', 'POST'): ('/oauth-username', ('form', {}), public(400)),
    ('Root', 'api', 'GET'): ('/api/openapi.json', None, public(200)),
    ('Root', 'account', 'GET'): ('/account', None, account(200)),
    # No passwords in the form: 400, past the permission check.
    ('Root', 'account', 'POST'): ('/account', ('form', {}), account(400)),
    # Mail is off here: changing one's address cannot be confirmed (404 for everybody).
    ('Root', 'change-email', 'POST'): ('/change-email', ('form', {'email': 'a@b.example'}),
                                       account(404)),
    ('Root', 'unlink-identity', 'POST'): (
        '/unlink-identity', lambda world, who: ('form', {'identity': world.fresh_identity(who)}),
        account(302)),
    ('Root', 'tokens', 'GET'): ('/tokens', None, account(200)),
    # Tokens are made by a logged-in browser, never by a token (issue 18, item 8).
    ('Root', 'tokens', 'POST'): ('/tokens', {'label': 'made by a token'}, account(403)),
    # Ends the user's browser sessions; the token that asks stays.
    ('Root', 'logout-everywhere', 'POST'): ('/logout-everywhere', None, account(200)),
    # A token may revoke itself only (tests/functional/accounts/test_tokens.py); here another token of its user.
    ('Root', 'revoke_token', 'POST'): (
        '/revoke_token', lambda world, who: {'prefix': world.fresh_token_prefix(who)},
        account(403)),
    ('Root', 'default_system', 'POST'): ('/default_system', {'system': 'sage'}, account(200)),
    # --- a home
    ('User', '', 'GET'): ('/home/%s/' % OWNER, None, home_view(200)),
    ('User', '', 'POST'): ('/home/%s/' % OWNER, {'name': 'new'}, home_change(201)),
    # The listing's form without a selection: back to the listing (302).
    ('User', 'action', 'POST'): ('/home/%s/action' % OWNER, ('form', {}), home_change(302)),
    ('User', 'empty_trash', 'POST'): ('/home/%s/empty_trash' % OWNER, None,
                                      home_change(200)),
    ('User', 'import', 'POST'): (
        '/home/%s/import' % OWNER, ('upload', {}, [('file', 'n.ipynb', IPYNB.encode())]),
        home_change(201)),
    ('User', 'download.zip', 'GET'): ('/home/%s/download.zip' % OWNER, None,
                                      home_view(200)),
    # --- a worksheet
    ('Worksheet', '', 'GET'): (ws, None, ws_view(200)),
    ('Worksheet', '', 'PATCH'): (ws, {'typeset': True}, ws_edit(200)),
    ('Worksheet', '', 'DELETE'): (lambda world: world.ws_path(world.shared_worksheet()), None,
                                  ws_delete(200)),
    # Only the owner vouches for a worksheet's content (issue 18's trust model: "did the
    # current user do this?"); collaborators, viewers and admins see it and get 403.
    ('Worksheet', 'trust', 'POST'): (lambda w: w.ws_path(w.shared_worksheet()) + 'trust',
                                     {'trusted': True}, ws_trust(200)),
    ('Worksheet', 'alive', 'GET'): (lambda w: ws(w) + 'alive', None, ws_view(200)),
    ('Worksheet', 'copy', 'POST'): (lambda w: ws(w) + 'copy', None, copy_ws(201)),
    ('Worksheet', 'evaluate_all', 'POST'): (lambda w: ws(w) + 'evaluate_all', None,
                                            ws_edit(409)),
    # Clearing takes the outputs the later rows read: a worksheet of its own each time.
    ('Worksheet', 'clear_outputs', 'POST'): (
        lambda w: w.ws_path(w.shared_worksheet()) + 'clear_outputs', None, ws_edit(200)),
    ('Worksheet', 'interrupt', 'POST'): (lambda w: ws(w) + 'interrupt', None, ws_edit(200)),
    ('Worksheet', 'restart', 'POST'): (lambda w: ws(w) + 'restart', None, ws_edit(200)),
    ('Worksheet', 'complete', 'POST'): (lambda w: ws(w) + 'complete', {'code': 'fa'},
                                        ws_edit(409)),
    ('Worksheet', 'inspect', 'POST'): (lambda w: ws(w) + 'inspect', {'code': 'factor'},
                                       ws_edit(409)),
    ('Worksheet', 'download.sws', 'GET'): (lambda w: ws(w) + 'download.sws', None,
                                           ws_view(200)),
    ('Worksheet', 'download.ipynb', 'GET'): (lambda w: ws(w) + 'download.ipynb', None,
                                             ws_view(200)),
    # --- the exports out of the notebook (issue 22): whoever may read the worksheet.
    # download.pdf needs TeX on the server: 404 (saying so) past the permission check
    # where this machine has none.
    ('Worksheet', 'download.sage', 'GET'): (lambda w: ws(w) + 'download.sage', None,
                                            ws_view(200)),
    ('Worksheet', 'download.py', 'GET'): (lambda w: ws(w) + 'download.py', None,
                                          ws_view(200)),
    ('Worksheet', 'download.html', 'GET'): (lambda w: ws(w) + 'download.html', None,
                                            ws_view(200)),
    ('Worksheet', 'download.tex', 'GET'): (lambda w: ws(w) + 'download.tex', None,
                                           ws_view(200)),
    ('Worksheet', 'download.pdf', 'GET'): (lambda w: ws(w) + 'download.pdf', None,
                                           ws_view(200 if shutil.which('pdflatex') else 404)),
    ('Worksheet', 'data', 'GET'): (lambda w: ws(w) + 'data', None, ws_view(200)),
    ('Worksheet', 'data', 'POST'): (lambda w: ws(w) + 'data',
                                    {'name': 'new.txt', 'content': 'x', 'replace': True},
                                    ws_edit(201)),
    # --- its data files and revisions
    ('DataFiles', '', 'GET'): (lambda w: ws(w) + 'data/', None, ws_view(200)),
    ('DataFiles', '', 'POST'): (lambda w: ws(w) + 'data/',
                                {'name': 'new.txt', 'content': 'y', 'replace': True},
                                ws_edit(201)),
    ('DataFile', '', 'GET'): (lambda w: ws(w) + 'data/data.txt', None, ws_view(200)),
    ('DataFile', '', 'PUT'): (lambda w: ws(w) + 'data/data.txt', {'content': '1,2,3\n'},
                              ws_edit(200)),
    ('DataFile', '', 'DELETE'): (lambda w: ws(w) + 'data/' + w.fresh_file(), None,
                                 ws_edit(200)),
    ('DataFile', 'rename', 'POST'): (lambda w: ws(w) + 'data/%s/rename' % w.fresh_file(),
                                     lambda w, who: {'name': unique('r') + '.txt'},
                                     ws_edit(200)),
    ('Revisions', '', 'GET'): (lambda w: ws(w) + 'revisions', None, ws_history(200)),
    ('Revisions', '', 'PATCH'): (lambda w: ws(w) + 'revisions', {'history_for_viewers': False},
                                 ws_share(200)),
    ('Revision', '', 'GET'): (lambda w: ws(w) + 'revisions/' + w.revision, None,
                              ws_history(200)),
    ('Revision', '', 'POST'): (lambda w: ws(w) + 'revisions/' + w.revision, {'pinned': True},
                               ws_edit(200)),
    ('Revision', 'diff', 'GET'): (lambda w: ws(w) + 'revisions/%s/diff' % w.revision, None,
                                  ws_history(200)),
    ('Revision', 'attachments', 'GET'): (
        lambda w: ws(w) + 'revisions/%s/attachments/%d/a.png' % (w.taken, w.text), None,
        ws_history(200)),
    # Restoring changes the cells the later rows read: a worksheet of its own each time.
    ('Revision', 'restore', 'POST'): (
        lambda w: w.ws_path(w.shared_worksheet()) + 'revisions/%s/restore' % w.revision,
        None, ws_edit(200)),
    # --- cells
    ('Cells', '', 'POST'): (lambda w: ws(w) + 'cells', {'type': 'text'}, ws_edit(201)),
    ('Cell', '', 'GET'): (cell, None, ws_view(200)),
    ('Cell', '', 'PATCH'): (cell, {'input': '1 + 1'}, ws_edit(200)),
    ('Cell', '', 'DELETE'): (lambda w: ws(w) + 'cells/%d' % w.fresh_cell(), None,
                             ws_edit(200)),
    ('Cell', 'move', 'POST'): (lambda w: cell(w) + '/move', {'direction': 'up'}, ws_edit(200)),
    ('Cell', 'clear', 'POST'): (lambda w: ws(w) + 'cells/%d/clear' % w.fresh_cell(), None,
                                ws_edit(200)),
    ('Cell', 'evaluate', 'POST'): (lambda w: cell(w) + '/evaluate', None, ws_edit(409)),
    # Nobody waits for input and the controls are not live: 409 past the permission check.
    ('Cell', 'stdin', 'POST'): (lambda w: cell(w) + '/stdin', {'value': '1'}, ws_edit(409)),
    ('Cell', 'comm', 'POST'): (lambda w: cell(w) + '/comm', {
        'comm_id': 'm1', 'data': {'method': 'update', 'state': {'value': 1}}}, ws_edit(409)),
    ('Cell', 'output.txt', 'GET'): (lambda w: cell(w) + '/output.txt', None, ws_view(200)),
    ('Cell', 'files', 'GET'): (lambda w: cell(w) + '/files/plot.png', None, ws_view(200)),
    # --- a text cell's Jupyter attachments (issue 22): read as the cell, or its publication
    ('Cell', 'attachments', 'GET'): (lambda w: ws(w) + 'cells/%d/attachments/a.png' % w.text,
                                     None, ws_view(200)),
    ('PubCell', 'attachments', 'GET'): (
        lambda w: pub(w) + 'cells/%d/attachments/a.png' % w.text, None, public(200)),
    # --- publishing (issue 20, the publishing part): the owner publishes and moderates
    # (P.PUBLISH; admins read only); /pub/ is public to everybody, anonymous visitors and
    # dead credentials included; rating (P.RATE) and copying take a login.
    ('Worksheet', 'publish', 'POST'): (lambda w: w.ws_path(w.shared_worksheet()) + 'publish',
                                       {'auto': False}, ws_trust(200)),
    ('Worksheet', 'publish', 'DELETE'): (lambda w: w.ws_path(published(w, fresh=True)[0])
                                         + 'publish', None, ws_trust(200)),
    ('Worksheet', 'print', 'GET'): (lambda w: ws(w) + 'print', None, ws_view(200)),
    ('Publications', '', 'GET'): ('/pub/', None, public(200)),
    ('Publication', '', 'GET'): (lambda w: pub(w), None, public(200)),
    ('Publication', 'print', 'GET'): (lambda w: pub(w) + 'print', None, public(200)),
    ('Publication', 'ratings', 'GET'): (lambda w: pub(w) + 'ratings', None, public(200)),
    ('Publication', 'copy', 'POST'): (lambda w: pub(w) + 'copy', None, account(201)),
    ('Publication', 'rate', 'POST'): (lambda w: pub(w) + 'rate', {'rating': 3},
                                      account(200, owner=403)),
    ('Publication', 'hide', 'POST'): (lambda w: pub(w) + 'hide', {'user': LOGINS['other']},
                                      account(403, owner=200)),
    ('PubCell', '', 'GET'): (lambda w: pub(w) + 'cells/%d' % w.compute, None, public(200)),
    ('PubCell', 'files', 'GET'): (lambda w: pub(w) + 'cells/%d/files/plot.png' % w.compute,
                                  None, public(200)),
    ('PubCell', 'output.txt', 'GET'): (lambda w: pub(w) + 'cells/%d/output.txt' % w.compute,
                                       None, public(200)),
    ('PubFiles', '', 'GET'): (lambda w: pub(w) + 'data/', None, public(200)),
    ('PubFile', '', 'GET'): (lambda w: pub(w) + 'data/data.txt', None, public(200)),
    # --- sharing (issue 20): who sees a worksheet's sharing, who changes it, whom the
    # type-ahead shows.  ``member`` is a collaborator through the group ``team``; the
    # admin may only take rights away, so the admin's PUT removes nobody else's.
    ('Worksheet', 'sharing', 'GET'): (lambda w: ws(w) + 'sharing', None, ws_view(200)),
    ('Worksheet', 'sharing', 'PUT'): (lambda w: w.ws_path(w.shared_worksheet()) + 'sharing',
                                      lambda w, who: w.sharing_body(who), ws_share(200)),
    ('Root', 'people', 'GET'): ('/people?q=team', None, account(200)),
    # --- presence (issue 21, the presence part): anyone who may view the worksheet says
    # they have it open and closes it; each visitor with a page id of their own.
    ('Worksheet', 'presence', 'POST'): (lambda w: ws(w) + 'presence',
                                        lambda w, who: {'session': 'page-of-' + who,
                                                        'cell': w.compute},
                                        ws_view(200)),
    ('Worksheet', 'presence', 'DELETE'): (lambda w: ws(w) + 'presence?session=page-gone',
                                          None, ws_view(200)),
    # --- finding worksheets (issue 20, the search part): any logged-in user searches;
    # what each finds is confined to what they may see (tests/functional/test_search.py).
    ('Root', 'search', 'GET'): ('/search?q=shared', None, account(200)),
    # --- Sage's manuals (issue 22): everybody reads them, dead credentials included
    # (package content); evaluating an example (409: no process may start here) and
    # copying a page take a login; ``result`` of an example never evaluated is a 404.
    ('DocSection', '', 'GET'): ('/doc/', None, public(200)),
    ('DocSection', 'search', 'GET'): ('/doc/search?q=tour', None, public(200)),
    ('DocSection', 'lookup', 'GET'): ('/doc/lookup?name=diff', None, public(200)),
    ('DocPath', '', 'GET'): ('/doc/live/en/tutorial/tour.html', None, public(200)),
    ('DocSection', 'evaluate', 'POST'): ('/doc/evaluate', {'input': '1 + 1'}, account(409)),
    ('DocSection', 'result', 'GET'): ('/doc/result?cell=0', None, account(404)),
    ('DocSection', 'interrupt', 'POST'): ('/doc/interrupt', None, account(200)),
    ('DocSection', 'restart', 'POST'): ('/doc/restart', None, account(200)),
    ('DocSection', 'copy', 'POST'): ('/doc/copy', {'page': 'en/tutorial/tour.html'},
                                     account(201)),
    # --- administration
    ('AdminSection', '', 'GET'): ('/admin/', None, admin(302)),
    ('AdminSection', 'settings', 'GET'): ('/admin/settings', None, admin(200)),
    ('AdminSection', 'settings', 'POST'): ('/admin/settings', {}, admin(200)),
    ('AdminSection', 'audit', 'GET'): ('/admin/audit', None, admin(200)),
    ('AdminUsers', '', 'GET'): ('/admin/users/', None, admin(200)),
    ('AdminUsers', '', 'POST'): ('/admin/users/', lambda w, who: {'login': unique('n')},
                                 admin(201)),
    ('AdminUser', '', 'GET'): ('/admin/users/oscar/', None, admin(200)),
    ('AdminUser', 'suspend', 'POST'): (
        lambda w: '/admin/users/%s/suspend' % w.fresh_user(), None, admin(200)),
    ('AdminUser', 'reinstate', 'POST'): (
        lambda w: '/admin/users/%s/reinstate' % w.fresh_user(), None, admin(200)),
    ('AdminUser', 'grant_admin', 'POST'): (
        lambda w: '/admin/users/%s/grant_admin' % w.fresh_user(), None, admin(200)),
    ('AdminUser', 'revoke_admin', 'POST'): (
        lambda w: '/admin/users/%s/revoke_admin' % w.fresh_user(), None, admin(200)),
    ('AdminUser', 'reset_password', 'POST'): (
        lambda w: '/admin/users/%s/reset_password' % w.fresh_user(), None, admin(200)),
    ('AdminUser', 'delete', 'POST'): (
        lambda w: '/admin/users/%s/delete' % w.fresh_user(), {'worksheets': 'delete'},
        admin(200)),
    ('AdminGroups', '', 'GET'): ('/admin/groups/', None, admin(200)),
    ('AdminGroups', '', 'POST'): ('/admin/groups/', lambda w, who: {'name': unique('g')},
                                  admin(201)),
    ('AdminGroup', '', 'GET'): (lambda w: '/admin/groups/%s/' % w.team_id, None, admin(200)),
    ('AdminGroup', 'rename', 'POST'): (
        lambda w: '/admin/groups/%s/rename' % w.fresh_group(),
        lambda w, who: {'name': unique('g')}, admin(200)),
    ('AdminGroup', 'delete', 'POST'): (
        lambda w: '/admin/groups/%s/delete' % w.fresh_group(), None, admin(200)),
    ('AdminGroup', 'add_member', 'POST'): (
        lambda w: '/admin/groups/%s/add_member' % w.fresh_group(), {'login': 'oscar'},
        admin(200)),
    ('AdminGroup', 'remove_member', 'POST'): (
        lambda w: '/admin/groups/%s/remove_member' % w.fresh_group(), {'login': 'oscar'},
        admin(200)),
    # --- seeing it run (issue 23): /health for load balancers, open to all and telling
    # nothing secret; /metrics for admins (or the scraper's token), the running system
    # for admins (tests/functional/system/test_system.py).
    ('route:health', '', 'GET'): ('/health', None, public(200)),
    ('route:metrics', '', 'GET'): ('/metrics', None, public(
        403, anonymous=401, suspended=401, revoked=401, admin=200)),
    ('AdminSection', 'system', 'GET'): ('/admin/system', None, admin(200)),
    ('AdminSection', 'stop', 'POST'): ('/admin/stop', {'worksheet': 'nobody/0'}, admin(200)),
    ('AdminSection', 'stop-idle', 'POST'): ('/admin/stop-idle', {'idle_seconds': 3600},
                                            admin(200)),
    # --- static files (the page's own scripts and styles, and Sage's 3-D viewer)
    # The sandboxed document HTML outputs are drawn in: it holds nothing of anybody's.
    ('route:output_frame', '', 'GET'): ('/_frame', None, public(200)),
    ('route:__static/', '', '*'): ('/static/worksheet.js', None, public(200)),
    ('route:__nbextensions/threejs-sage/', '', '*'): (
        '/nbextensions/threejs-sage/r122/three.min.js', None, public(200)),
}

# Views no request of this table can reach, and where they are tried instead.
UNREACHABLE = {
    (context, '', method): why for method in ('GET', 'POST') for context, why in (
        ('AuthenticationComplete', 'the context of an OAuth provider callback: '
                                   'tests/functional/test_oauth.py logs in through a real provider'),
        ('AuthenticationDenied', 'the context of a refused OAuth log-in: tests/functional/test_oauth.py'))
}


def registered_views(registry):
    """{(context, name, method): permission} of every view but the exception views."""
    introspector = registry.introspector
    found = {}
    for entry in introspector.get_category('views'):
        view = entry['introspectable']
        if view['exception_only']:
            continue
        context = view['context']
        if view['route_name']:
            where = 'route:' + view['route_name']
        elif context is None:
            continue
        else:
            where = context.__name__
        if where in ('IExceptionResponse', 'WSGIHTTPException'):
            continue  # Pyramid's own rendering of HTTP exceptions returned by views
        methods = view['request_methods']
        if isinstance(methods, str):
            methods = (methods,)
        permissions = [r['value'] for r in introspector.related(view)
                       if r.category_name == 'permissions']
        # A view for any method is tried with GET and POST; a static route with GET.
        for method in methods or (('*',) if view['route_name'] else ('GET', 'POST')):
            found[(where, view['name'], method)] = permissions[0] if permissions else None
    return found


def test_every_view_has_a_row(world):
    views = set(registered_views(world.nb.registry))
    known = set(TABLE) | set(UNREACHABLE)
    assert sorted(views - known) == [], 'views without a row in the permission table'
    assert sorted(known - views) == [], 'rows for views that are not registered'


CASES = [(key, who, 'GET' if key[2] == '*' else key[2])
         for key in sorted(TABLE) for who in PRINCIPALS]


def send(world, method, path, body, who):
    app = webtest.TestApp(world.nb.app, extra_environ={'HTTP_HOST': 'localhost:80'})
    headers = {'Accept': 'application/json'}
    if who != 'anonymous':
        headers['Authorization'] = 'Bearer ' + world.tokens[who]
    if callable(body):
        body = body(world, who)
    if isinstance(body, tuple) and body[0] == 'form':
        return app.request(path, method=method, headers=headers, status='*',
                           POST=body[1]) if method != 'GET' else \
            app.get(path, headers=headers, status='*')
    if isinstance(body, tuple) and body[0] == 'upload':
        return app.post(path, body[1], upload_files=body[2], headers=headers, status='*')
    if body is None and method in ('GET', 'DELETE'):
        return app.request(path, method=method, headers=headers, status='*')
    headers['Content-Type'] = 'application/json'
    return app.request(path, method=method, headers=headers, status='*',
                       body=json.dumps(body if body is not None else {}).encode())


def test_the_table(world, caplog):
    """Every (view, visitor) of the table, with the status the visitor must get; all
    the differences are reported at once."""
    caplog.set_level(logging.ERROR)
    wrong = []
    for key, who, method in CASES:
        path, body, _ = TABLE[key]
        expected = expected_status(key, who)
        if callable(path):
            path = path(world)
        res = send(world, method, path, body, who)
        if res.status_int != expected:
            wrong.append('%-12s %-6s %-45s expected %s, got %s %s' % (
                who, method, path, expected, res.status_int, res.text[:120]))
    assert not wrong, '\n' + '\n'.join(wrong)


def test_refusals_are_clear(world):
    """What refuses a script says why, as ``{"error"}``."""
    for key, who, method in CASES:
        path, body, _ = TABLE[key]
        if expected_status(key, who) not in (401, 403, 404) or \
                who == 'anonymous' and method != 'GET':
            continue
        if callable(path):
            path = path(world)
        res = send(world, method, path, body, who)
        assert res.content_type == 'application/json', (who, method, path, res.status)
        assert res.json.get('error'), (who, method, path, res.json)


def missing_twin(path):
    """The same request on an object that does not exist (another home, user or group),
    or None for paths that name no object."""
    for pattern, replacement in ((r'^/home/%s/' % OWNER, '/home/nosuchuser/'),
                                 (r'^/admin/users/[^/]+/', '/admin/users/nosuchuser/'),
                                 (r'^/admin/groups/[^/]+/', '/admin/groups/g-nosuchgroup/')):
        if re.match(pattern, path):
            return re.sub(pattern, replacement, path)
    return None


@pytest.mark.parametrize('who', ('anonymous', 'other', 'viewer', 'suspended', 'revoked'))
def test_existing_and_missing_objects_answer_alike(world, who):
    """Issue 18, item 6: who may not see an object cannot tell it from a missing one."""
    differ = []
    for key in sorted(TABLE):
        path, body, _ = TABLE[key]
        method = 'GET' if key[2] == '*' else key[2]
        expected = expected_status(key, who)
        if expected not in (401, 404):
            continue  # visible to this visitor: existence is no secret to them
        path = path(world) if callable(path) else path
        twin = missing_twin(path)
        if twin is None:
            continue
        res = send(world, method, twin, body, who)
        if res.status_int != expected:
            differ.append('%s %s: %s there, %s for %s' % (method, path, expected,
                                                          res.status_int, twin))
    assert not differ, '\n' + '\n'.join(differ)
