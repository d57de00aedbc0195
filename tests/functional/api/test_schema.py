"""The JSON API's OpenAPI description (``sagenb_pyramid/openapi.py``): served as it is
kept, in agreement with docs/api.md, and every operation fuzzed with schemathesis against
the real application with real API tokens.

The fuzz starts no Sage process: the per-user process limit is 0, so whatever would
start one is refused (409) after its input was checked, and the longest wait is cut to
a fraction of a second.  Before each generated request the objects it aims at are made
again if an earlier request deleted them; a refused request must leave the database as
it found it.
"""
import json
import os
import re
import time

import pytest
import webtest
from hypothesis import HealthCheck, given, settings, strategies as st

import schemathesis
from schemathesis import GenerationMode

from sagenb_pyramid import audit, openapi
from sagenb_pyramid.auth.tokens import create_token

from ...support.notebook import HERE, Notebook

DOC = os.path.join(HERE, 'docs', 'api.md')
SPEC = openapi.spec()
OPERATIONS = sorted((path, method) for path, item in SPEC['paths'].items() for method in item)
# Answers the doc and the description may name (the rest would be a typo in either).
KNOWN_STATUSES = {'200', '201', '202', '400', '401', '403', '404', '409', '413', '429', '503'}


# === the description itself ==========================================================

def test_served_description_is_the_kept_one(tmp_path):
    nb = Notebook(tmp_path / 'data')
    try:
        app = webtest.TestApp(nb.app, extra_environ={'HTTP_HOST': 'localhost:80'})
        # No login: it reveals no data of the notebook.
        res = app.get('/api/openapi.json')
        assert res.content_type == 'application/json'
        assert res.json == SPEC
        assert SPEC['openapi'].startswith('3.')
        other = app.get('/api/other.json', headers={'Accept': 'application/json'}, status=404)
        assert other.json['error']
    finally:
        nb.close()


def test_description_is_valid_openapi():
    schema = schemathesis.openapi.from_dict(SPEC)
    found = [result.ok().label for result in schema.get_all_operations()]
    assert len(found) == len(OPERATIONS) > 50


# Where each resource of the traversal tree is, as the description writes it.
WHERE = {
    'Root': '', 'User': '/home/{login}', 'Worksheet': '/home/{login}/{n}',
    'Cells': '/home/{login}/{n}/cells', 'Cell': '/home/{login}/{n}/cells/{id}',
    'DataFiles': '/home/{login}/{n}/data', 'DataFile': '/home/{login}/{n}/data/{file}',
    'Revisions': '/home/{login}/{n}/revisions', 'Revision': '/home/{login}/{n}/revisions/{id}',
    'AdminSection': '/admin', 'AdminUsers': '/admin/users', 'AdminUser': '/admin/users/{login}',
    'AdminGroups': '/admin/groups', 'AdminGroup': '/admin/groups/{group_id}',
    # Publishing (issue 20).
    'Publications': '/pub', 'Publication': '/pub/{pub}', 'PubCell': '/pub/{pub}/cells/{id}',
    'PubFiles': '/pub/{pub}/data', 'PubFile': '/pub/{pub}/data/{file}',
    # Seeing it run (issue 23): routes, not traversal.
    'route:health': '/health', 'route:metrics': '/metrics',
    # Sage's manuals (issue 22): a path below them is a page (also /doc/files/{path}).
    'DocSection': '/doc', 'DocPath': '/doc/live/{path}',
}
# Views of the pages only (forms, redirects, HTML), with no JSON request to describe.
PAGES_ONLY = {
    ('Root', '', 'GET'), ('Root', 'login', 'GET'), ('Root', 'login', 'POST'),
    ('Root', 'logout', 'POST'), ('Root', 'signup', 'GET'), ('Root', 'signup', 'POST'),
    ('Root', 'forgot', 'GET'), ('Root', 'forgot', 'POST'), ('Root', 'reset', 'GET'),
    ('Root', 'reset', 'POST'), ('Root', 'confirm', 'GET'), ('Root', 'confirm', 'POST'),
    ('Root', 'oauth-username', 'GET'), ('Root', 'oauth-username', 'POST'),
    ('Root', 'account', 'GET'), ('Root', 'account', 'POST'), ('Root', 'change-email', 'POST'),
    ('Root', 'unlink-identity', 'POST'), ('User', 'action', 'POST'),
    ('AdminSection', '', 'GET'), ('AuthenticationComplete', '', 'GET'),
    ('AuthenticationComplete', '', 'POST'), ('AuthenticationDenied', '', 'GET'),
    ('AuthenticationDenied', '', 'POST'),
    ('route:output_frame', '', 'GET'), ('route:__static/', '', '*'),
    ('route:__nbextensions/threejs-sage/', '', '*'),
    ('Worksheet', 'print', 'GET'), ('Publication', 'print', 'GET'),
}


def described_as(context, name, method):
    """The (path, method) of the description a registered view answers, or None."""
    if context not in WHERE:
        return None
    path = WHERE[context]
    if name == 'files':
        name = 'files/{file}'
    if name == 'attachments':
        # A revision's attachments are those of one of its cells.
        name = 'attachments/{cell}/{name}' if context == 'Revision' else 'attachments/{name}'
    if context == 'Root' and name == 'api':
        name = 'api/openapi.json'
    path = path + '/' + name if name else path + '/'
    if path not in SPEC['paths']:
        path = path.rstrip('/')  # the data folder and the revisions are written bare
    return path, method.lower()


def test_every_json_view_is_described(tmp_path):
    """Each view the application registers is an operation of the description or a
    page of its own: a new JSON request (the trust of issue 18, say) cannot be left out."""
    from ..permissions.test_permissions import registered_views
    nb = Notebook(tmp_path / 'data')
    try:
        views = registered_views(nb.registry)
    finally:
        nb.close()
    missing = []
    for key in sorted(views):
        if key in PAGES_ONLY:
            continue
        target = described_as(*key)
        if target is None or target[0] not in SPEC['paths'] or \
                target[1] not in SPEC['paths'][target[0]]:
            missing.append('%s %s %s -> %s' % (key + (target,)))
    assert not missing, 'views without an operation in sagenb_pyramid/openapi.py:\n' + \
        '\n'.join(missing)
    assert set(PAGES_ONLY) <= set(views), 'PAGES_ONLY names views that are not registered'


# === docs/api.md against the description ==============================================

ROW = re.compile(r'^\|\s*`(GET|POST|PUT|PATCH|DELETE) (/[^`\s]*)`(.*)$')


def documented():
    """{(path, method): (statuses named in the row, the row)} from docs/api.md's tables,
    and the error statuses its introduction names for every request."""
    with open(DOC, encoding='utf-8') as f:
        text = f.read()
    rows = {}
    for line in text.splitlines():
        match = ROW.match(line)
        if not match:
            continue
        method, path, rest = match.groups()
        path = re.sub(r'<(\w+)>', r'{\1}', path)
        answer = rest.rsplit('|', 2)[-2] if rest.count('|') >= 2 else rest
        key = (path, method.lower())
        assert key not in rows, 'docs/api.md documents %s %s twice' % (method, path)
        rows[key] = (set(re.findall(r'\b([1-5]\d\d)\b', answer)) & KNOWN_STATUSES, line)
    intro = text.split('\n## ', 1)[0]
    general = set(re.findall(r'\b([1-5]\d\d)\b', intro)) & KNOWN_STATUSES
    return rows, general


def test_every_operation_is_documented_and_every_documented_one_described():
    rows, _ = documented()
    described = set(OPERATIONS)
    assert sorted(described - set(rows)) == [], 'described but not in docs/api.md'
    assert sorted(set(rows) - described) == [], 'in docs/api.md but not described'


def test_documented_statuses_agree_with_the_description():
    rows, general = documented()
    assert {'400', '401', '403', '404', '409'} <= general
    for (path, method), (statuses, line) in rows.items():
        responses = set(SPEC['paths'][path][method]['responses'])
        success = {s for s in responses if s.startswith('2')}
        assert len(success) == 1, line
        named_success = {s for s in statuses if s.startswith('2')}
        # The doc names a success status when it is not 200.
        assert named_success == (success - {'200'}), (line, success)
        assert statuses - success <= responses, (line, sorted(responses))
        # Every refusal the description lists is one the doc names, there or above.
        undocumented = responses - success - statuses - general
        assert not undocumented, (line, sorted(undocumented))


# === the fuzz ==========================================================================

OWNER, ADMIN, VICTIM = 'alice', 'root', 'bob'


class World:
    """The objects the fuzz aims at; made again when a request deleted them."""

    def __init__(self, nb):
        self.nb = nb
        with nb.transaction() as root:
            for login in (OWNER, ADMIN):
                root.add_user(login, is_admin=login == ADMIN)
            self.tokens = {login: create_token(root, root.user_by_login(login))
                           for login in (OWNER, ADMIN)}
        self.ensure()

    def ensure(self):
        """Make the targets exist; returns {name: value} of the path parameters."""
        with self.nb.transaction() as root:
            owner = root.user_by_login(OWNER)
            worksheets = [w for w in owner.worksheets() if w.name == 'target']
            if worksheets:
                ws = worksheets[0]
            else:
                ws = owner.create_worksheet('target')
                ws.add_cell('text', 'some *text*')
            if ws.state_for(owner.id) != 'active':
                ws.set_state(owner.id, 'active')
            compute = [c for c in ws.ordered_cells() if c.type == 'compute']
            text = [c for c in ws.ordered_cells() if c.type == 'text']
            compute = compute[0] if compute else ws.add_cell('compute', '1 + 1')
            text = text[0] if text else ws.add_cell('text', 'more text')
            if compute.output.files is None or 'plot.png' not in compute.output.files:
                compute.output.add_file('plot.png', b'\x89PNG not really')
            if compute.output.full_text is None:
                import io
                compute.output.keep_full_text(io.BytesIO(b'a long output'))
            files = ws.data_files()
            if 'data.txt' not in files:
                files.add_file('data.txt', b'1,2,3\n')
            if not ws.revisions:
                ws.add_revision(1e9, 'earlier text')
            revision = next(iter(ws.revisions.keys()))
            # Published (again, if a request stopped it), for the /pub/ operations.
            if ws.publication_id is None:
                root.publications.publish(ws)
            # An admin's request may have raised the process limit: back to none, so
            # that nothing the fuzz sends starts Sage.
            stored = getattr(root, 'server_settings', None) or {}
            if 'sagenb.workers.max_per_user' in stored:
                del stored['sagenb.workers.max_per_user']
            victim = root.user_by_login(VICTIM) or root.add_user(VICTIM)
            if victim.suspended or victim.is_admin:
                victim.suspended = victim.is_admin = False
            group = root.group_by_name('fuzzers', 'local') or root.add_group('fuzzers')
            self.ids = {'compute': compute.id, 'text': text.id}
            targets = {'n': ws.number, 'file': 'data.txt', 'revision': revision,
                       'group_id': group.id, 'pub': ws.publication_id}
        self.nb.workers.apply_settings({'max_per_user': 0})
        return targets

    def snapshot(self):
        """What a refused request must leave as it was."""
        with self.nb.transaction() as root:
            users = {}
            for login, user in root.home.items():
                users[login] = (user.id, user.is_admin, user.suspended, user.email,
                                user.fullname, user.default_system, user.session_epoch,
                                sorted(user.group_ids), user.next_worksheet_number,
                                {w.number: worksheet_state(w) for w in user.worksheets()})
            return {
                'users': users,
                'groups': {g.id: (g.name, g.source) for g in root.groups.values()},
                'tokens': {d: (t.user_id, t.label) for d, t in root.tokens.items()},
                'account_tokens': sorted((root.account_tokens or {}).keys()),
                'settings': dict(getattr(root, 'server_settings', None) or {}),
                'audit': len(list(audit.entries(root))),
            }


def worksheet_state(ws):
    cells = [(c.id, c.type, c.input, c.format, c.output.status, c.output.version,
              len(c.output.outputs), sorted(c.output.files or ()))
             for c in ws.ordered_cells()]
    files = {name: (f.size, f.modified) for name, f in (ws.files or {}).items()}
    return (ws.name, ws.system, ws.typeset, ws.trusted, ws.modified, dict(ws.states), cells,
            files,
            sorted(ws.revisions.keys()) if ws.revisions else [])


@pytest.fixture(scope='module')
def fuzzed(tmp_path_factory):
    nb = Notebook(tmp_path_factory.mktemp('fuzz') / 'data', **{
        # Nothing the fuzz sends starts a Sage process: it would be refused with 409.
        'sagenb.workers.max_per_user': '0',
        # A cell's long poll answers at once rather than after up to a minute.
        'sagenb.api.max_wait': '0.2'})
    world = World(nb)
    schema = schemathesis.openapi.from_wsgi('/api/openapi.json', nb.app)
    yield schema, world
    nb.close()


def clear_refusal(response):
    """The answer to a refused request: JSON ``{"error": "..."}``."""
    kind = response.headers.get('content-type', [''])
    kind = kind[0] if isinstance(kind, list) else kind
    assert kind.startswith('application/json'), (response.status_code, kind, response.content[:200])
    data = json.loads(response.content)
    assert isinstance(data, dict) and isinstance(data.get('error'), str) and data['error'], data


@pytest.mark.parametrize('path,method', OPERATIONS, ids=['%s %s' % (m.upper(), p)
                                                        for p, m in OPERATIONS])
def test_fuzz(fuzzed, path, method):
    schema, world = fuzzed
    operation = schema[path][method.upper()]
    who = ADMIN if path.startswith('/admin/') else OWNER
    strategy = st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                         operation.as_strategy(GenerationMode.NEGATIVE))
    checks = [schemathesis.checks.not_a_server_error,
              schemathesis.checks.status_code_conformance,
              schemathesis.checks.content_type_conformance,
              schemathesis.checks.response_schema_conformance]

    @settings(max_examples=int(os.environ.get('SAGENB_FUZZ_EXAMPLES', '12')), deadline=None,
              database=None, suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def run(case):
        targets = world.ensure()
        params = dict(case.path_parameters or {})
        if 'login' in params:
            params['login'] = VICTIM if path.startswith('/admin/users/') else OWNER
        if 'n' in params:
            params['n'] = targets['n']
        if 'id' in params:
            if '/revisions/' in path:
                params['id'] = targets['revision']
            elif path.endswith(('/files/{file}', '/output.txt')):
                params['id'] = world.ids['compute']
            else:
                # Either kind of cell, as the generated number falls.
                raw = params['id']
                odd = isinstance(raw, int) and raw % 2
                params['id'] = world.ids['text' if odd else 'compute']
        if 'file' in params:
            params['file'] = 'plot.png' if '/files/' in path else targets['file']
        if 'group_id' in params:
            params['group_id'] = targets['group_id']
        if 'pub' in params:
            params['pub'] = targets['pub']
        case.path_parameters = params
        case.headers = dict(case.headers or {})
        case.headers['Authorization'] = 'Bearer ' + world.tokens[who]
        before = world.snapshot()
        started = time.monotonic()
        response = case.call()
        assert time.monotonic() - started < 10, 'a request took too long'
        assert response.status_code < 500, (response.status_code, response.content[:500])
        if response.status_code >= 400:
            clear_refusal(response)
            assert world.snapshot() == before, 'a refused request changed the database'
        case.validate_response(response, checks=checks)

    run()


# === what the fuzz found, kept as plain tests ==========================================

@pytest.mark.parametrize('page', ['184467440737095517', '\u00b2', '99999999999'])
@pytest.mark.parametrize('where', ['/admin/audit', '/admin/users/'])
def test_a_page_number_past_any_page_is_a_clear_400(fuzzed, where, page):
    """A page number too large for ``islice``, or a digit that ``int`` refuses ("²" passes
    ``str.isdigit``), was a 500."""
    schema, world = fuzzed
    app = webtest.TestApp(schema.app, extra_environ={'HTTP_HOST': 'localhost:80'})
    res = app.get(where, params={'page': page}, status=400,
                  headers={'Authorization': 'Bearer ' + world.tokens[ADMIN]})
    assert 'page' in res.json['error']
