"""The JSON API described as OpenAPI 3.0: the one description, served at
``/api/openapi.json`` (``views/api.py``), fuzzed by
``tests/functional/api/test_schema.py`` and checked there against docs/api.md.

Built from Python so that the shared parts (a cell, a worksheet, the error answer, the
path parameters) are written once.  ``spec()`` returns a new dict each time.
"""
import copy

from . import server_settings

JSON = 'application/json'

# --- shared schemas ----------------------------------------------------------------------

NUMBER_OR_NULL = {'type': 'number', 'nullable': True}
INT_OR_NULL = {'type': 'integer', 'nullable': True}


def obj(required=(), **properties):
    schema = {'type': 'object', 'properties': properties}
    if required:
        schema['required'] = list(required)
    return schema


def ref(name):
    return {'$ref': '#/components/schemas/' + name}


def array(items):
    return {'type': 'array', 'items': items}


STR = {'type': 'string'}
INT = {'type': 'integer'}
BOOL = {'type': 'boolean'}
NUM = {'type': 'number'}
ANY_OBJECT = {'type': 'object'}


def setting_schema(setting):
    """An admin-editable setting (settings.py) in the JSON of ``/admin/settings``."""
    if setting.kind.name == 'bool':
        return BOOL
    if setting.kind.name == 'choice':
        return {'type': 'string', 'enum': list(setting.kind.choices)}
    return {'type': 'integer', 'minimum': 0}  # a whole number, as the admin page takes


SCHEMAS = {
    'Error': obj(['error'], error={'type': 'string', 'minLength': 1}),
    'Cell': obj(
        ['id', 'type', 'input', 'input_version', 'status', 'outputs', 'execution_count',
         'version', 'started', 'finished'],
        id=INT, type={'type': 'string', 'enum': ['compute', 'text']}, input=STR,
        # The worksheet's version at the last change of the input or type (issue 21).
        input_version=INT,
        status={'type': 'string', 'enum': ['new', 'queued', 'running', 'done', 'error']},
        outputs=array(ANY_OBJECT), execution_count=INT_OR_NULL, version=INT,
        started=NUMBER_OR_NULL, finished=NUMBER_OR_NULL,
        format={'type': 'string', 'enum': ['markdown', 'html']}, files=array(STR),
        input_request=obj(prompt=STR, password=BOOL), widgets=ANY_OBJECT,
        # A text cell's Jupyter attachments (names), and its notebook's locks: present
        # (false) only when the cell is locked (issue 22).
        attachments=array(STR), editable={'type': 'boolean', 'enum': [False]},
        deletable={'type': 'boolean', 'enum': [False]}),
    'WorksheetSummary': obj(
        ['id', 'name', 'url', 'owner', 'state', 'created', 'modified'],
        id=INT, name=STR, url=STR, owner=STR,
        state={'type': 'string', 'enum': ['active', 'archive', 'trash']},
        created=NUM, modified=NUM, tags=array(STR),
        # In ``?state=shared``: what the home's user may do on it (issue 20).
        role={'type': 'string', 'enum': ['collaborator', 'viewer']}),
    # A worksheet's sharing (issue 20): entries are "<login>" or "group:<name>".
    'Sharing': obj(
        ['collaborators', 'viewers', 'published', 'others', 'people', 'groups'],
        collaborators=array(STR), viewers=array(STR),
        published={'type': 'object', 'nullable': True, 'required': ['url', 'time', 'auto'],
                   'properties': {'url': STR, 'time': NUM, 'auto': BOOL}},
        others=INT, people=INT, groups=INT),
    'DataFile': obj(['name', 'size', 'modified', 'url'],
                    name=STR, size=INT_OR_NULL, modified=NUM, url=STR),
    'Worksheet': obj(
        ['id', 'name', 'owner', 'url', 'typeset', 'system', 'state', 'created', 'modified',
         'trusted'],
        id=INT, name=STR, owner=STR, url=STR, typeset=BOOL, system=STR,
        state={'type': 'string', 'enum': ['active', 'archive', 'trash']},
        created=NUM, modified=NUM, cells=array(ref('Cell')), data_files=array(ref('DataFile')),
        # For the viewer: only the owner of a worksheet they trusted sees true.
        trusted=BOOL, tags=array(STR), version=INT),
    # GET <worksheet>/?since= (services/live.py): what changed after that version; with
    # ``full`` the whole worksheet (its fields as ``Worksheet``).
    'WorksheetChanges': obj(
        ['version', 'since', 'full', 'cells', 'order', 'removed', 'name'],
        version=INT, since=INT, full=BOOL, cells=array(ref('Cell')), order=array(INT),
        removed=array(INT), name=STR, typeset=BOOL, system=STR, tags=array(STR),
        modified=NUM, trusted=BOOL, data_files=array(ref('DataFile')),
        presence=array(ref('PresenceEntry')), presence_stamp=INT),
    # Who has a worksheet open (services/presence.py): one open page each.
    'PresenceEntry': obj(['session', 'user', 'name', 'cell', 'color', 'seen'],
                         session=STR, user=STR, name=STR, cell=INT_OR_NULL,
                         color={'type': 'string', 'pattern': '^#[0-9a-f]{6}$'}, seen=NUM,
                         self=BOOL),
    # GET /search (services/finding.py).
    'SearchResult': obj(
        ['url', 'name', 'owner', 'role', 'snippet'], url=STR, name=STR,
        owner={'type': 'string', 'nullable': True},
        role={'type': 'string', 'enum': ['owner', 'collaborator', 'viewer', 'published']},
        snippet=STR),
    # A revision of a worksheet's history; ``summary`` (null for imported snapshots):
    # cells added/changed/removed/moved, evaluations, renamed (and ``restored``).
    'Revision': obj(['id', 'time', 'url', 'kind', 'author', 'authors', 'summary', 'name',
                     'pinned'], id=STR, time=NUM, url=STR,
                    kind={'type': 'string',
                          'enum': ['import', 'auto', 'before-restore', 'restore']},
                    author={'type': 'string', 'nullable': True}, authors=array(STR),
                    summary={'type': 'object', 'nullable': True}, name=STR, pinned=BOOL),
    'Token': obj(['prefix', 'label', 'created', 'last_used', 'scope', 'expires', 'expired'],
                 prefix=STR, label=STR, created=NUM, last_used=NUMBER_OR_NULL,
                 scope={'type': 'string', 'enum': ['full', 'read']}, expires=NUMBER_OR_NULL,
                 expired=BOOL),
    'User': obj(['login', 'id', 'fullname', 'email', 'is_admin', 'suspended', 'created'],
                login=STR, id=STR, fullname=STR, email=STR, is_admin=BOOL, suspended=BOOL,
                created=NUMBER_OR_NULL, groups=array(STR), worksheets=INT),
    'Group': obj(['id', 'name', 'source'], id=STR, name=STR, source=STR,
                 members={'oneOf': [INT, array(STR)]}),
}


# --- parameters --------------------------------------------------------------------------

def path_param(name, description, schema=STR):
    return {'name': name, 'in': 'path', 'required': True, 'description': description,
            'schema': schema}


def query_param(name, description, schema=STR):
    return {'name': name, 'in': 'query', 'required': False, 'description': description,
            'schema': schema}


LOGIN = path_param('login', 'the owner of the home')
N = path_param('n', "the worksheet's number in its owner's home",
               {'type': 'integer', 'minimum': 0})
CELL_ID = path_param('id', "the cell's id", {'type': 'integer', 'minimum': 0})
FILE = path_param('file', "a data file's name")
REVISION = path_param('id', "a revision's id (its time, as listed)")
CELL_FILE = path_param('file', 'a file of the cell')
ATTACHMENT = path_param('name', "an attachment's name (as after attachment: in the cell's text)")
USER = path_param('login', "a user's login")
GROUP = path_param('group_id', "a group's id")

WS = '/home/{login}/{n}'
CELL = WS + '/cells/{id}'

# --- operations --------------------------------------------------------------------------

# Besides what an operation lists: every operation answers these when they apply.
COMMON_ERRORS = {
    '401': 'no credentials, or unknown, revoked or suspended ones',
    '403': 'not allowed',
    '404': 'no such user, worksheet, cell or file (or a name that is not a view)',
}
ERROR_TEXT = {
    '400': 'malformed JSON, or a bad field (the message says which)',
    '409': 'the request conflicts with the state (the message says how)',
    '413': "too large, or past the owner's storage quota",
    '429': 'too many requests; wait',
    '503': "the worksheet's Sage process or its host could not answer",
}


def body(schema, required=True, media=JSON):
    content = {media: {'schema': schema}} if isinstance(media, str) else \
        {m: {'schema': s} for m, s in media.items()}
    return {'required': required, 'content': content}


def op(summary, params=(), request=None, ok='200', answer=None, errors=(), media=JSON,
       public=False):
    """One operation: ``ok`` its success status with ``answer`` (a JSON schema; with
    ``media`` other than JSON the answer is that file), ``errors`` the statuses it may
    answer besides ``COMMON_ERRORS``."""
    operation = {'summary': summary, 'parameters': list(params), 'responses': {}}
    if request is not None:
        operation['requestBody'] = request
    if media == JSON:
        content = {JSON: {'schema': answer if answer is not None else ANY_OBJECT}}
    elif media.endswith('+json'):
        content = {media: {'schema': ANY_OBJECT}}
    else:
        content = {media: {'schema': {'type': 'string', 'format': 'binary'}}}
    operation['responses'][ok] = {'description': 'done', 'content': content}
    statuses = dict(COMMON_ERRORS)
    if public:
        statuses = {}
        operation['security'] = []
    # ``errors``: statuses, or {status: what it means here}.
    texts = errors if isinstance(errors, dict) else {}
    for status in errors:
        statuses[status] = texts.get(status) or ERROR_TEXT.get(status,
                                                               COMMON_ERRORS.get(status))
    for status, text in sorted(statuses.items()):
        operation['responses'][status] = {
            'description': text, 'content': {JSON: {'schema': ref('Error')}}}
    return operation


def health_op():
    """``/health``: 200 or 503 with the same body (for load balancers, no login)."""
    answer = obj(['status', 'problems', 'database', 'worker_host', 'other_hosts', 'disk'],
                 status={'type': 'string', 'enum': ['ok', 'failing']},
                 problems=array(STR), database=ANY_OBJECT,
                 worker_host={'type': ['object', 'null']},
                 other_hosts=array(ANY_OBJECT), disk=ANY_OBJECT)
    operation = op('whether this app server can serve: the database answers, a worker '
                   'host can run cells, the disk under data_dir has room', answer=answer,
                   public=True)
    operation['responses']['503'] = {'description': 'something failed: see problems',
                                     'content': {JSON: {'schema': answer}}}
    return operation


NAME_BODY = obj(name={'type': 'string', 'maxLength': 200})
STATE = {'type': 'string', 'enum': ['active', 'archive', 'trash']}
CODE_BODY = dict(obj(['code'], code={'type': 'string', 'maxLength': 100_000},
                     cursor_pos={'type': 'integer', 'minimum': 0}))
MESSAGE = obj(['message'], message=STR)
# ``attachments`` (a text cell's, names) and ``metadata`` (from a notebook): when it has them.
REVISION_CELL = obj(['id', 'type', 'format', 'input', 'outputs', 'execution_count'],
                    id=INT_OR_NULL, type=STR, format=STR, input=STR,
                    outputs=array(ANY_OBJECT), execution_count=INT_OR_NULL,
                    attachments=array(STR), metadata=ANY_OBJECT)
REVISION_FULL = {'allOf': [ref('Revision'), obj(
    ['body', 'worksheet_name', 'cells'], body={'type': 'string', 'nullable': True},
    worksheet_name={'type': 'string', 'nullable': True}, cells=array(REVISION_CELL),
    notebook_metadata=ANY_OBJECT)]}
REVISION_DIFF = obj(['from', 'to', 'cells', 'unchanged'], to=STR, unchanged=INT,
                    cells=array(obj(
                        ['id', 'change', 'position', 'type', 'input_diff', 'outputs_changed'],
                        id=INT_OR_NULL, position=INT, type=STR, moved=BOOL,
                        type_changed=BOOL, outputs_changed=BOOL,
                        attachments_changed=BOOL, metadata_changed=BOOL,
                        change={'type': 'string',
                                'enum': ['added', 'removed', 'changed', 'moved', 'outputs']},
                        input_diff=array(STR))),
                    **{'from': STR})


PAGE_ID = {'type': 'string', 'pattern': '^[A-Za-z0-9_-]{8,64}$'}
PRESENCE = obj(['presence', 'presence_stamp'], presence=array(ref('PresenceEntry')),
               presence_stamp=INT)


def with_message(schema):
    merged = copy.deepcopy(schema)
    merged['properties']['message'] = STR
    merged.setdefault('required', []).append('message')
    return merged


PATHS = {
    # --- worksheets
    '/home/{login}/': {
        'get': op('the worksheets of a home', [
            LOGIN,
            query_param('state', 'which worksheets (default: active)',
                        {'type': 'string',
                         'enum': ['active', 'archive', 'trash', 'all', 'shared']}),
            query_param('sort', 'the order (default: modified, newest first)',
                        {'type': 'string', 'enum': ['modified', 'name']}),
            query_param('tag', 'only the worksheets with this tag')],
            answer=obj(['worksheets'], worksheets=array(ref('WorksheetSummary'))),
            errors=['400']),
        'post': op('create a worksheet (one empty compute cell)', [LOGIN],
                   body(NAME_BODY, required=False), ok='201',
                   answer=obj(['id', 'url', 'name'], id=INT, url=STR, name=STR),
                   errors=['400']),
    },
    WS + '/': {
        'get': op('a worksheet with its cells and data files; with since, what changed '
                  'after that version (with wait, once something has)', [
                      LOGIN, N,
                      query_param('since', 'answer what changed after this version',
                                  {'type': 'integer', 'minimum': 0}),
                      query_param('wait', 'seconds to wait for a change (capped)',
                                  {'type': 'number', 'minimum': 0}),
                      query_param('presence', 'the presence_stamp held: the wait also '
                                  'ends when it changes', {'type': 'integer', 'minimum': 0}),
                      query_param('session', "the caller's page id (its presence entry "
                                  'has "self": true)', PAGE_ID)],
                  answer={'anyOf': [ref('Worksheet'), ref('WorksheetChanges')]},
                  errors=['400', '429']),
        'patch': op('rename, retypeset, change the system or the state', [LOGIN, N],
                    body(obj(name={'type': 'string', 'maxLength': 200}, typeset=BOOL,
                             system={'type': 'string', 'pattern': '^[a-z][a-z0-9_]{0,31}$'},
                             state=STATE,
                             tags={'type': 'array', 'maxItems': 10,
                                   'items': {'type': 'string', 'maxLength': 32}})),
                    answer=ref('Worksheet'), errors=['400']),
        'delete': op('delete a worksheet for good (its owner)', [LOGIN, N],
                     answer=obj(['deleted'], deleted=INT)),
    },
    WS + '/trust': {
        'post': op("the owner trusts the worksheet's content (its HTML outputs run their "
                   'scripts in a sandboxed frame), or takes it back with false', [LOGIN, N],
                   body(obj(trusted=BOOL), required=False),
                   answer=obj(['trusted'], trusted=BOOL),
                   errors={'400': '"trusted" is not true or false',
                           '403': 'not the owner (collaborators, viewers and admins may '
                                  'not trust it)'}),
    },
    WS + '/sharing': {
        'get': op('who the worksheet is shared with (entries the requester may see; '
                  '"others" counts the rest) and whether it is published', [LOGIN, N],
                  answer=ref('Sharing')),
        'put': op('share the worksheet: the whole list of collaborators and viewers '
                  '(the owner; an admin may only take rights away)', [LOGIN, N],
                  body(obj(['collaborators', 'viewers'], collaborators=array(STR),
                           viewers=array(STR))),
                  answer=ref('Sharing'),
                  errors={'400': 'an entry is no user or group the requester may see, '
                                 'or the body is not two lists',
                          '403': 'not the owner (or an admin adding rights)'}),
    },
    '/people': {
        'get': op('users and groups the requester may share with (the share '
                  "dialog's type-ahead; sagenb.sharing.visibility)",
                  [query_param('q', 'part of a login, full name or group name')],
                  answer=obj(['users', 'groups'],
                             users=array(obj(['login', 'name'], login=STR, name=STR)),
                             groups=array(obj(['name', 'entry'], name=STR, entry=STR))),
                  errors=['400']),
    },
    WS + '/copy': {
        'post': op("copy a worksheet into the requester's home", [LOGIN, N],
                   body(NAME_BODY, required=False), ok='201',
                   answer=ref('WorksheetSummary'),
                   errors={'400': ERROR_TEXT['400'],
                           '409': "the copy would pass the requester's storage quota"}),
    },
    '/home/{login}/empty_trash': {
        'post': op('delete the worksheets in the trash for good', [LOGIN],
                   answer=obj(['deleted'], deleted=array(INT))),
    },
    WS + '/evaluate_all': {
        'post': op('queue every compute cell that has input (from the cell "from" down)',
                   [LOGIN, N], request=body(obj(**{'from': INT}), required=False),
                   answer=obj(['queued'], queued=array(INT)), errors=['400', '409', '503']),
    },
    WS + '/clear_outputs': {
        'post': op('clear the outputs of every cell', [LOGIN, N],
                   answer=obj(['cleared'], cleared=INT)),
    },
    WS + '/presence': {
        'post': op('an open page says it is there and which cell it is in (every 20 s; '
                   'entries not seen for 60 s are gone), or that it closes ("gone": true)',
                   [LOGIN, N],
                   body(obj(['session'], session=PAGE_ID, cell=INT_OR_NULL, gone=BOOL)),
                   answer=PRESENCE, errors={
                       '400': ERROR_TEXT['400'],
                       '403': "not allowed, or the page id is another user's",
                       '429': 'the requester has the worksheet open in too many pages'}),
        'delete': op('an open page closes', [
            LOGIN, N, dict(query_param('session', "the page's id", PAGE_ID),
                           required=True)],
            answer=PRESENCE, errors={
                '400': ERROR_TEXT['400'],
                '403': "not allowed, or the page id is another user's"}),
    },
    WS + '/alive': {
        'get': op("an open page is there: the worksheet's process is not idle", [LOGIN, N],
                  answer=obj(['process'], process=BOOL)),
    },
    WS + '/interrupt': {
        'post': op('interrupt the running cell', [LOGIN, N],
                   answer=obj(['ok', 'interrupted'], ok=BOOL, interrupted=BOOL),
                   errors=['503']),
    },
    WS + '/restart': {
        'post': op("stop the worksheet's Sage process; queued cells end with an error",
                   [LOGIN, N], answer=obj(['ok', 'cancelled'], ok=BOOL, cancelled=INT),
                   errors=['503']),
    },
    WS + '/complete': {
        'post': op('completions at the cursor (Jupyter complete_reply)', [LOGIN, N],
                   body(CODE_BODY),
                   answer=obj(['matches', 'cursor_start', 'cursor_end', 'metadata'],
                              matches=array(STR), cursor_start=INT, cursor_end=INT,
                              metadata=ANY_OBJECT),
                   errors=['400', '409', '503']),
    },
    WS + '/inspect': {
        'post': op('the docstring or source of the name at the cursor', [LOGIN, N],
                   body(dict(CODE_BODY, properties=dict(
                       CODE_BODY['properties'],
                       detail_level={'type': 'integer', 'enum': [0, 1]}))),
                   answer=obj(['found', 'data', 'metadata'], found=BOOL, data=ANY_OBJECT,
                              metadata=ANY_OBJECT),
                   errors=['400', '409', '503']),
    },
    # --- cells
    WS + '/cells': {
        'post': op('add a cell (at the end, or after/before a cell)', [LOGIN, N],
                   body(obj(input=STR, type={'type': 'string', 'enum': ['compute', 'text']},
                            after=INT, before=INT)),
                   ok='201', answer=obj(['id', 'cell'], id=INT, cell=ref('Cell')),
                   errors=['400']),
    },
    CELL: {
        'get': op('a cell; with wait, when it changed or finished', [
            LOGIN, N, CELL_ID,
            query_param('since', 'answer when the version is newer than this', INT),
            query_param('wait', 'seconds to wait (capped)', {'type': 'number', 'minimum': 0})],
            answer=ref('Cell'), errors=['400', '429']),
        'patch': op("change a cell's input or type; with base_version, merged with the "
                    'changes made since (409 with the current input when they overlap); '
                    'editable/deletable lock or unlock it (409 for a change of a locked cell)',
                    [LOGIN, N, CELL_ID],
                    body(obj(input=STR, type={'type': 'string', 'enum': ['compute', 'text']},
                             base_version={'type': 'integer', 'minimum': 0},
                             base_input=STR, editable=BOOL, deletable=BOOL)),
                    answer=ref('Cell'), errors=['400', '404', '409']),
        'delete': op('delete a cell (not the last one, not one locked against deletion)',
                     [LOGIN, N, CELL_ID],
                     answer=obj(['deleted'], deleted=INT), errors=['409']),
    },
    CELL + '/move': {
        'post': op('move a cell up or down', [LOGIN, N, CELL_ID],
                   body(obj(['direction'],
                            direction={'type': 'string', 'enum': ['up', 'down']})),
                   answer=obj(['order'], order=array(INT)), errors=['400']),
    },
    CELL + '/clear': {
        'post': op("clear a cell's outputs", [LOGIN, N, CELL_ID], answer=ref('Cell')),
    },
    CELL + '/evaluate': {
        'post': op('evaluate a cell (saving a new input first); wait for it', [LOGIN, N, CELL_ID],
                   body(obj(wait={'type': 'number', 'minimum': 0}, input=STR), required=False),
                   answer=ref('Cell'), errors=['400', '409', '429', '503']),
    },
    CELL + '/stdin': {
        'post': op('the answer to the input() the cell waits in', [LOGIN, N, CELL_ID],
                   body(obj(['value'], value={'type': 'string', 'maxLength': 100_000})),
                   answer=obj(['ok'], ok=BOOL), errors=['400', '409', '503']),
    },
    CELL + '/comm': {
        'post': op('a change of an @interact control', [LOGIN, N, CELL_ID],
                   body(obj(['comm_id', 'data'], comm_id=STR, data=obj(
                       ['method'], method={'type': 'string', 'enum': ['update', 'custom']},
                       state=ANY_OBJECT, content=ANY_OBJECT))),
                   ok='202', answer=obj(['ok', 'version'], ok=BOOL, version=INT),
                   errors=['400', '409', '503']),
    },
    CELL + '/output.txt': {
        'get': op('the whole text of an output that was cut', [LOGIN, N, CELL_ID],
                  media='text/plain'),
    },
    CELL + '/files/{file}': {
        'get': op('a file the cell wrote', [LOGIN, N, CELL_ID, CELL_FILE],
                  media='*/*'),
    },
    CELL + '/attachments/{name}': {
        'get': op("an attachment of a text cell (a Jupyter notebook's attachment:<name>), "
                  'sent as data files are', [LOGIN, N, CELL_ID, ATTACHMENT],
                  media='*/*', errors=['404']),
    },
    # --- import and export
    '/home/{login}/import': {
        'post': op('import a .sws, .txt, .ipynb or a .zip of those', [LOGIN],
                   body(obj(['file'], file={'type': 'string', 'format': 'binary'}, name=STR),
                        media='multipart/form-data'),
                   ok='201', answer=obj(
                       ['worksheets', 'skipped', 'notes'],
                       worksheets=array(obj(['id', 'url', 'name'], id=INT, url=STR, name=STR)),
                       skipped=array(obj(['file', 'reason'], file=STR, reason=STR)),
                       notes=array(STR)),
                   errors={'400': 'not a worksheet, or a file with a name that breaks the '
                                  'rule; nothing is created',
                           '413': 'the upload, or a data file in it, is past its limit, or '
                                  "the import would pass the owner's storage quota",
                           '429': 'you have an import in progress; try again when it ends',
                           '503': 'the server has as many imports in progress as it '
                                  'takes; try again shortly'}),
    },
    WS + '/download.sws': {
        'get': op('the worksheet as a legacy .sws', [LOGIN, N], media='application/x-bzip2'),
    },
    WS + '/download.ipynb': {
        'get': op('the worksheet as nbformat 4.5', [LOGIN, N],
                  media='application/x-ipynb+json'),
    },
    # The exports out of the notebook (issue 22; formats/script.py, htmlpage.py, latex.py).
    WS + '/download.sage': {
        'get': op('the inputs as a Sage script, text cells and directives as comments',
                  [LOGIN, N], media='text/x-sage'),
    },
    WS + '/download.py': {
        'get': op('the Sage script preparsed: Python with from sage.all import *',
                  [LOGIN, N], media='text/x-python'),
    },
    WS + '/download.html': {
        'get': op('one HTML file with outputs, plots and math (MathML), running no script',
                  [LOGIN, N], media='text/html'),
    },
    WS + '/download.tex': {
        'get': op('a zip of the LaTeX source and its images', [LOGIN, N],
                  media='application/zip'),
    },
    WS + '/download.pdf': {
        'get': op("the LaTeX made a PDF by the server's TeX", [LOGIN, N],
                  media='application/pdf',
                  errors={'409': "pdflatex made no PDF of this worksheet's LaTeX (the message "
                                 'has the end of its log)',
                          '404': 'no TeX installation on this server (the message says '
                                 'what to install; download.tex works without it)'}),
    },
    '/home/{login}/download.zip': {
        'get': op('a zip of worksheets', [
            LOGIN,
            query_param('ids', 'worksheet numbers separated by commas'),
            query_param('state', 'which worksheets when no ids (default: all)',
                        {'type': 'string',
                         'enum': ['active', 'archive', 'trash', 'all', 'shared']}),
            query_param('format', 'sws (default) or ipynb',
                        {'type': 'string', 'enum': ['sws', 'ipynb']})],
            media='application/zip', errors=['400']),
    },
    WS + '/data': {
        'get': op("the worksheet's data files", [LOGIN, N],
                  answer=obj(['files'], files=array(ref('DataFile')))),
        'post': op('add a data file (upload, or JSON text)', [LOGIN, N], body(None, media={
            'multipart/form-data': obj(['file'], file={'type': 'string', 'format': 'binary'},
                                       name=STR, replace=STR),
            JSON: obj(['name'], name={'type': 'string', 'minLength': 1, 'maxLength': 200},
                      content=STR, replace=BOOL)}),
            ok='201', answer=ref('DataFile'), errors=['400', '409', '413']),
    },
    WS + '/data/{file}': {
        'get': op('a data file (also as /home/{login}/{n}/{file} when the name is not one '
                  "of the worksheet's views); its type follows its name", [LOGIN, N, FILE],
                  media='*/*'),
        'put': op("replace a data file's text", [LOGIN, N, FILE],
                  body(obj(['content'], content=STR)), answer=ref('DataFile'),
                  errors=['400', '413']),
        'delete': op('delete a data file', [LOGIN, N, FILE],
                     answer=obj(['deleted'], deleted=STR)),
    },
    WS + '/data/{file}/rename': {
        'post': op('rename a data file', [LOGIN, N, FILE],
                   body(obj(['name'], name={'type': 'string', 'minLength': 1,
                                            'maxLength': 200})),
                   answer=ref('DataFile'), errors=['400', '409']),
    },
    WS + '/revisions': {
        'get': op("the worksheet's history, oldest first (viewers: when the owner allows)",
                  [LOGIN, N], answer=obj(['revisions', 'history_for_viewers'],
                                         revisions=array(ref('Revision')),
                                         history_for_viewers=BOOL)),
        'patch': op("whether viewers may read the history (the owner; an admin may only "
                    "close it)", [LOGIN, N],
                    body(obj(['history_for_viewers'], history_for_viewers=BOOL)),
                    answer=obj(['history_for_viewers'], history_for_viewers=BOOL),
                    errors=['400']),
    },
    WS + '/revisions/{id}': {
        'get': op('one revision: its cells (and the text of an imported sagenb snapshot)',
                  [LOGIN, N, REVISION], answer=REVISION_FULL),
        'post': op('name or pin a revision (a pinned one is never thinned out)',
                   [LOGIN, N, REVISION],
                   body(obj(name={'type': 'string', 'maxLength': 200}, pinned=BOOL)),
                   answer=ref('Revision'), errors=['400']),
    },
    WS + '/revisions/{id}/diff': {
        'get': op('per-cell differences from this revision to the worksheet now',
                  [LOGIN, N, REVISION], answer=REVISION_DIFF),
    },
    WS + '/revisions/{id}/diff/{other}': {
        'get': op('per-cell differences from this revision to another',
                  [LOGIN, N, REVISION, path_param('other', "the other revision's id")],
                  answer=REVISION_DIFF),
    },
    WS + '/revisions/{id}/attachments/{cell}/{name}': {
        'get': op("an attachment of a text cell as the revision kept it, sent as the "
                  "worksheet's are", [LOGIN, N, REVISION, path_param(
                      'cell', "the cell's id", {'type': 'integer', 'minimum': 0}), ATTACHMENT],
                  media='*/*', errors=['404']),
    },
    WS + '/revisions/{id}/restore': {
        'post': op('make the worksheet look like this revision; the state it replaces '
                   'and the restored one become revisions (nothing is destroyed)',
                   [LOGIN, N, REVISION], answer=obj(['restored', 'revision', 'url'],
                                                    restored=STR, revision=ref('Revision'),
                                                    url=STR),
                   errors=['409']),
    },
    # --- one's own account
    '/tokens': {
        'get': op('your API tokens', answer=obj(['tokens'], tokens=array(ref('Token')))),
        'post': op('a new API token (shown once); from a logged-in page only: 403 with a '
                   'token',
                   request=body(obj(label={'type': 'string', 'maxLength': 100},
                                    scope={'type': 'string', 'enum': ['full', 'read']},
                                    expires_in_days={'type': 'integer', 'minimum': 1,
                                                     'maximum': 3650}),
                                required=False),
                   ok='201', answer=obj(['token', 'prefix', 'label', 'scope', 'expires'],
                                        token=STR, prefix=STR, label=STR,
                                        scope={'type': 'string', 'enum': ['full', 'read']},
                                        expires=NUMBER_OR_NULL),
                   errors=['400', '409']),
    },
    '/revoke_token': {
        'post': op('revoke one of your tokens (a token may revoke only itself)',
                   request=body(obj(
            ['prefix'], prefix={'type': 'string', 'pattern': '^[0-9a-f]{12,64}$'})),
            answer=obj(['revoked'], revoked=STR), errors=['400']),
    },
    '/logout-everywhere': {
        'post': op('end every browser session of yours (API tokens stay)',
                   answer=MESSAGE),
    },
    '/default_system': {
        'post': op('the system of your new worksheets', request=body(obj(
            ['system'], system={'type': 'string', 'pattern': '^[a-z][a-z0-9_]{0,31}$'})),
            answer=obj(['default_system'], default_system=STR), errors=['400']),
    },
    # --- administration (admins only)
    '/admin/users/': {
        'get': op('users, 50 a page', [
            query_param('q', 'a part of the login, full name or e-mail'),
            query_param('page', 'the page, from 1', {'type': 'integer', 'minimum': 1})],
            answer=obj(['users', 'total', 'page', 'pages'], users=array(ref('User')),
                       total=INT, page=INT, pages=INT),
            errors=['400']),
        'post': op('add a user: a temporary password, or an invitation by mail',
                   request=body(obj(['login'], login=STR, email=STR, fullname=STR,
                                    admin=BOOL, invite=BOOL)),
                   ok='201', answer=ref('User'), errors=['400', '409']),
    },
    '/admin/users/{login}/': {
        'get': op('a user', [USER], answer=ref('User')),
    },
    '/admin/users/{login}/suspend': {
        'post': op("suspend a user: their sessions and tokens stop working", [USER],
                   answer=with_message(SCHEMAS['User']), errors=['409']),
    },
    '/admin/users/{login}/reinstate': {
        'post': op('reinstate a suspended user', [USER],
                   answer=with_message(SCHEMAS['User'])),
    },
    '/admin/users/{login}/grant_admin': {
        'post': op('make a user an admin', [USER], answer=with_message(SCHEMAS['User'])),
    },
    '/admin/users/{login}/revoke_admin': {
        'post': op("take a user's admin rights", [USER],
                   answer=with_message(SCHEMAS['User']), errors=['409']),
    },
    '/admin/users/{login}/reset_password': {
        'post': op('a link to choose a new password: mailed, or answered', [USER],
                   answer=obj(['message'], message=STR, reset_link=STR, expires_in=INT,
                              mailed_to=STR),
                   errors=['409', '429']),
    },
    '/admin/users/{login}/delete': {
        'post': op('delete a user; their worksheets are deleted or handed over', [USER],
                   body(obj(['worksheets'],
                            worksheets={'type': 'string', 'enum': ['delete', 'handover']},
                            heir=STR)),
                   answer=obj(['message', 'deleted'], message=STR, deleted=STR),
                   errors=['400', '409']),
    },
    '/admin/groups/': {
        'get': op('groups', answer=obj(['groups'], groups=array(ref('Group')))),
        'post': op('add a group', request=body(obj(['name'], name={
            'type': 'string', 'minLength': 1, 'maxLength': 100})),
            ok='201', answer=with_message(SCHEMAS['Group']), errors=['400', '409']),
    },
    '/admin/groups/{group_id}/': {
        'get': op('a group and its members', [GROUP], answer=ref('Group')),
    },
    '/admin/groups/{group_id}/rename': {
        'post': op('rename a group', [GROUP], body(obj(['name'], name={
            'type': 'string', 'minLength': 1, 'maxLength': 100})),
            answer=with_message(SCHEMAS['Group']), errors=['400', '409']),
    },
    '/admin/groups/{group_id}/delete': {
        'post': op('delete a group', [GROUP],
                   answer=obj(['message', 'deleted'], message=STR, deleted=STR)),
    },
    '/admin/groups/{group_id}/add_member': {
        'post': op('add a member', [GROUP], body(obj(['login'], login=STR)),
                   answer=obj(['message', 'login'], message=STR, login=STR),
                   errors=['400', '409']),
    },
    '/admin/groups/{group_id}/remove_member': {
        'post': op('remove a member', [GROUP], body(obj(['login'], login=STR)),
                   answer=obj(['message', 'login'], message=STR, login=STR),
                   errors=['400', '409']),
    },
    '/admin/settings': {
        'get': op('the settings admins may change here',
                  answer=obj(['settings'], settings=ANY_OBJECT)),
        'post': op('change settings (only those sent)',
                   request=body(obj(**{key: setting_schema(setting) for key, setting
                                       in server_settings.EDITABLE.items()})),
                   answer=obj(['message', 'changed'], message=STR, changed=ANY_OBJECT),
                   errors=['400']),
    },
    '/admin/audit': {
        'get': op('the audit log, newest first, 50 a page', [
            query_param('q', 'a part of the action, actor, target, detail or address'),
            query_param('page', 'the page, from 1', {'type': 'integer', 'minimum': 1})],
            answer=obj(['entries', 'page', 'more'], entries=array(ANY_OBJECT), page=INT,
                       more=BOOL),
            errors=['400']),
    },
    # --- finding worksheets (services/finding.py)
    '/search': {
        'get': op('full-text search over the worksheets the caller owns, those shared '
                  'with them and published ones, newest first', [
                      query_param('q', 'words that must all occur (a trailing * matches a '
                                       'prefix)', {'type': 'string', 'maxLength': 200}),
                      query_param('scope', 'where to look (default: all)', {
                          'type': 'string', 'enum': ['mine', 'shared', 'published', 'all']}),
                      query_param('offset', 'results to skip (default 0)',
                                  {'type': 'integer', 'minimum': 0, 'maximum': 10000}),
                      query_param('limit', 'results at most (default 20)',
                                  {'type': 'integer', 'minimum': 1, 'maximum': 100})],
                  answer=obj(['results', 'total', 'offset', 'limit'],
                             results=array(ref('SearchResult')), total=INT, offset=INT,
                             limit=INT),
                  errors={'400': 'no words to search for, a query too long, or a bad '
                                 'scope, offset or limit'}),
    },
    # --- this description
    '/api/openapi.json': {
        'get': op('this description of the API (needs no login)', public=True),
    },
    # --- seeing it run (issue 23: services/system.py, metrics.py)
    '/health': {
        'get': health_op(),
    },
    '/metrics': {
        'get': op('this app server\'s figures in Prometheus\' text format (admins, or a '
                  'scraper sending the token of sagenb.metrics.token as a Bearer token)',
                  media='text/plain'),
    },
    '/admin/system': {
        'get': op('the worker hosts and every worksheet\'s Sage process', [
            query_param('sort', 'the column to sort the processes by (default memory)', {
                'type': 'string', 'enum': ['owner', 'name', 'host', 'memory',
                                           'cpu_seconds', 'idle_seconds', 'running',
                                           'queued', 'started']}),
            query_param('order', 'asc or desc (default)',
                        {'type': 'string', 'enum': ['asc', 'desc']})],
            answer=obj(['hosts', 'processes'], hosts=array(ANY_OBJECT),
                       processes=array(ANY_OBJECT)),
            errors=['400']),
    },
    '/admin/stop': {
        'post': op('stop one worksheet\'s Sage process (its variables are lost)',
                   request=body(obj(['worksheet'], worksheet={
                       'type': 'string', 'description': '"<owner id>/<number>"'})),
                   answer=obj(['message', 'stopped'], message=STR, stopped=array(STR)),
                   errors=['400']),
    },
    '/admin/stop-idle': {
        'post': op('stop every Sage process with no cell running or waiting, idle for '
                   'idle_seconds (default 60)',
                   request=body(obj(idle_seconds={'type': 'integer', 'minimum': 0})),
                   answer=obj(['message', 'stopped'], message=STR, stopped=array(STR)),
                   errors=['400']),
    },
}


# --- publishing (issue 20): /home/<login>/<n>/publish and /pub/ -------------------------
PUB = path_param('pub', "a publication's id (as in its URL)")
PUB_PATH = '/pub/{pub}'
PUBLISHED = obj(['url', 'time', 'auto'], url=STR, time=NUM, auto=BOOL)
PUB_SUMMARY = obj(['id', 'url', 'name', 'owner', 'time', 'auto', 'rating', 'ratings'],
                  id=STR, url=STR, name=STR, owner=STR, time=NUM, auto=BOOL,
                  rating=NUMBER_OR_NULL, ratings=INT)
PUB_RATINGS = obj(['mean', 'count', 'ratings', 'yours'], mean=NUMBER_OR_NULL, count=INT,
                  ratings=array(obj(['user', 'rating', 'time', 'hidden', 'comment'],
                                    user=STR, rating=INT, time=NUM, hidden=BOOL,
                                    comment={'type': 'string', 'nullable': True})),
                  yours={'type': 'object', 'nullable': True})
PUB_PATHS = {
    WS + '/publish': {
        'post': op('publish the worksheet (again: the same URL); auto follows every change',
                   [LOGIN, N], body(obj(auto=BOOL), required=False), answer=PUBLISHED,
                   errors={'400': '"auto" is not true or false',
                           '403': 'not the owner'}),
        'delete': op('stop publishing: the /pub/ URL answers 404', [LOGIN, N],
                     answer=obj(['published'], published={'type': 'object',
                                                          'nullable': True}),
                     errors={'404': 'not published (or no such worksheet)'}),
    },
    '/pub/': {
        'get': op('published worksheets, newest first (anyone)', [
            query_param('q', 'a part of the name or of the owner\'s login'),
            query_param('page', 'the page, from 1', {'type': 'integer', 'minimum': 1}),
            query_param('per_page', 'rows a page (default 50)',
                        {'type': 'integer', 'minimum': 1, 'maximum': 200})],
            answer=obj(['publications', 'total', 'page', 'per_page'],
                       publications=array(PUB_SUMMARY), total=INT, page=INT, per_page=INT),
            errors=['400'], public=True),
    },
    PUB_PATH + '/': {
        'get': op('a published worksheet with its cells (anyone)', [PUB],
                  answer=dict(copy.deepcopy(PUB_SUMMARY), properties=dict(
                      PUB_SUMMARY['properties'], typeset=BOOL, system=STR, trusted=BOOL,
                      cells=array(ref('Cell')), data_files=array(ref('DataFile')))),
                  errors=['404'], public=True),
    },
    PUB_PATH + '/copy': {
        'post': op("an editable copy in the caller's home (logged in)", [PUB],
                   body(NAME_BODY, required=False), ok='201',
                   answer=ref('WorksheetSummary'),
                   errors={'400': ERROR_TEXT['400'],
                           '409': "the copy would pass the caller's storage quota"}),
    },
    PUB_PATH + '/ratings': {
        'get': op('the ratings and comments (a hidden comment only for the owner)', [PUB],
                  answer=PUB_RATINGS, errors=['404'], public=True),
    },
    PUB_PATH + '/rate': {
        'post': op('rate 0-4 with an optional comment (one per user, changeable)', [PUB],
                   body(obj(['rating'], rating={'type': 'integer', 'minimum': 0,
                                                'maximum': 4},
                            comment={'type': 'string', 'maxLength': 2000})),
                   answer=PUB_RATINGS,
                   errors={'400': ERROR_TEXT['400'],
                           '403': 'the owner may not rate their own worksheet'}),
    },
    PUB_PATH + '/hide': {
        'post': op("the owner hides a rater's comment (or shows it with hidden false)",
                   [PUB], body(obj(['user'], user=STR, hidden=BOOL)), answer=PUB_RATINGS,
                   errors={'400': ERROR_TEXT['400'], '403': 'not the owner'}),
    },
    PUB_PATH + '/cells/{id}': {
        'get': op('a cell as the publication shows it (anyone)', [PUB, CELL_ID],
                  answer=ref('Cell'), errors=['404'], public=True),
    },
    PUB_PATH + '/cells/{id}/output.txt': {
        'get': op('the whole text of a cut output (anyone)', [PUB, CELL_ID],
                  media='text/plain', errors=['404'], public=True),
    },
    PUB_PATH + '/cells/{id}/files/{file}': {
        'get': op('a file the cell wrote (anyone)', [PUB, CELL_ID, CELL_FILE], media='*/*',
                  errors=['404'], public=True),
    },
    PUB_PATH + '/cells/{id}/attachments/{name}': {
        'get': op('an attachment of a text cell (anyone)', [PUB, CELL_ID, ATTACHMENT],
                  media='*/*', errors=['404'], public=True),
    },
    PUB_PATH + '/data': {
        'get': op('the data files of the publication (anyone)', [PUB],
                  answer=obj(['files'], files=array(ref('DataFile'))), errors=['404'],
                  public=True),
    },
    PUB_PATH + '/data/{file}': {
        'get': op('a data file of the publication (anyone)', [PUB, FILE], media='*/*',
                  errors=['404'], public=True),
    },
}
PATHS.update(PUB_PATHS)


# --- Sage's manuals (issue 22): /doc/ (services/doc.py); 404 everywhere when they are
# not installed --------------------------------------------------------------------------
DOC_PATH = path_param('path', "a file's path below the manuals (it may hold /)")
DOC_NOT_INSTALLED = 'the manuals are not installed (the message says how), or no such page'
DOC_PAGE = obj(['title', 'path', 'html', 'examples', 'manual', 'files', 'url'],
               title=STR, path=STR, html=STR, manual={'type': 'string', 'nullable': True},
               files=STR, url=STR,
               examples=array(obj(['input', 'expected'], input=STR, expected=STR)))
DOC_PATHS = {
    '/doc/': {
        'get': op('the manuals installed (anyone)',
                  answer=obj(['manuals'], manuals=array(obj(['path', 'title', 'url'],
                                                            path=STR, title=STR, url=STR))),
                  errors={'404': DOC_NOT_INSTALLED}, public=True),
    },
    '/doc/search': {
        'get': op('names (functions, classes, methods, modules) and page titles of the '
                  'manuals holding every word (anyone)',
                  [query_param('q', 'words, any case', {'type': 'string', 'maxLength': 200})],
                  answer=obj(['query', 'names', 'pages'], query=STR,
                             names=array(obj(['name', 'type', 'url'], name=STR, type=STR,
                                             url=STR)),
                             pages=array(obj(['title', 'url'], title=STR, url=STR))),
                  errors={'400': ERROR_TEXT['400'], '404': DOC_NOT_INSTALLED}, public=True),
    },
    '/doc/lookup': {
        'get': op("the manual's page of a name, as foo? links to it (anyone)", [
            query_param('name', 'a name, short or full', {'type': 'string', 'maxLength': 300}),
            query_param('file', 'the "File:" line of its help (its module tells names alike '
                                'apart)', {'type': 'string', 'maxLength': 2000})],
            answer=obj(['name', 'type', 'url'], name=STR, type=STR, url=STR),
            errors={'400': '"name" is missing', '404': 'the manuals have no page for it, or '
                                                      'are not installed'}, public=True),
    },
    '/doc/live/{path}': {
        'get': op("a page of the manuals as a read-only worksheet: its main part's HTML "
                  "with a placeholder per example, and the examples (anyone)", [DOC_PATH],
                  answer=DOC_PAGE, errors={'404': DOC_NOT_INSTALLED, '413': ERROR_TEXT['413']},
                  public=True),
    },
    '/doc/files/{path}': {
        'get': op('a file of the manuals as it is, in a sandbox without scripts (anyone; '
                  'their scripts are not served)', [DOC_PATH], media='*/*',
                  errors={'404': DOC_NOT_INSTALLED}, public=True),
    },
    '/doc/evaluate': {
        'post': op("run an example in the caller's documentation worksheet (its process "
                   "counts against the caller's limit)",
                   request=body(obj(['input'], input={'type': 'string', 'maxLength': 100_000},
                                    wait={'type': 'number', 'minimum': 0})),
                   answer=ref('Cell'),
                   errors={'400': ERROR_TEXT['400'],
                           '409': 'no process may start for it (the caller\'s limit of '
                                  'running worksheets, or the server\'s)',
                           '429': ERROR_TEXT['429']}),
    },
    '/doc/result': {
        'get': op('an example evaluated earlier (the last 30 are kept)', [
            query_param('cell', "the example's cell id", {'type': 'integer', 'minimum': 0}),
            query_param('since', 'wait for a version newer than this', INT),
            query_param('wait', 'seconds to wait for it', {'type': 'number', 'minimum': 0})],
            answer=ref('Cell'), errors=['400', '429']),
    },
    '/doc/interrupt': {
        'post': op("interrupt the caller's running example",
                   answer=obj(['ok', 'interrupted'], ok=BOOL, interrupted=BOOL),
                   errors=['503']),
    },
    '/doc/restart': {
        'post': op("stop the process of the caller's examples (no longer counted)",
                   answer=obj(['ok', 'cancelled'], ok=BOOL, cancelled=INT), errors=['503']),
    },
    '/doc/copy': {
        'post': op("a new worksheet of the caller's with a page's text and examples",
                   request=body(obj(['page'], page={'type': 'string', 'maxLength': 2000})),
                   ok='201', answer=ref('WorksheetSummary'),
                   errors={'400': ERROR_TEXT['400'],
                           '409': "the copy would pass the caller's storage quota"}),
    },
}
PATHS.update(DOC_PATHS)


def spec():
    """The OpenAPI document (a new dict: callers may change theirs)."""
    return copy.deepcopy({
        'openapi': '3.0.3',
        'info': {
            'title': 'sagenb-pyramid scripting API',
            'version': '1',
            'description': 'JSON on the same resources as the pages; see docs/api.md. '
                           'Errors are {"error": "message"}. A rejected request changes '
                           'nothing.',
        },
        'paths': PATHS,
        'components': {
            'schemas': SCHEMAS,
            'securitySchemes': {
                'token': {'type': 'http', 'scheme': 'bearer',
                          'description': 'an API token (/tokens, or sagenb-admin token)'},
            },
        },
        'security': [{'token': []}],
    })
