"""A worksheet's data files: list, upload, create, edit, rename, delete.

``<worksheet>/data/`` lists and takes new files; ``<worksheet>/data/<name>`` is one file
(GET in ``transfer.py``).  The worksheet's Sage process sees them in the folder named by
``DATA``; they are copied there before each cell runs.

Every view that adds bytes checks the per-user storage quota (``services/quota.py``).
"""
import time

from pyramid.view import view_config

from .. import names
from ..resources import DataFile, DataFiles, Worksheet
from ..security import P
from ..services.quota import MB, require_room
from ..services.serialize import file_json
from ..web import api_error, get_str, json_body


def check_name(name):
    problem = names.file_name_problem(name)
    if problem:
        raise api_error(400, 'not a usable data file name: ' + problem)
    return name


def max_bytes(request):
    return request.registry.settings['sagenb.data.max_mb'] * MB


def worksheet_of(context):
    return context if isinstance(context, Worksheet) else context.__parent__


@view_config(context=Worksheet, name='data', request_method='GET', permission=P.VIEW,
             renderer='json')
@view_config(context=DataFiles, request_method='GET', permission=P.VIEW, renderer='json')
def list_files(context, request):
    files = worksheet_of(context).files
    return {'files': [file_json(request, f) for f in (files.values() if files else [])]}


@view_config(context=Worksheet, name='data', request_method='POST', permission=P.EDIT,
             renderer='json')
@view_config(context=DataFiles, request_method='POST', permission=P.EDIT, renderer='json')
def add_file(context, request):
    """Multipart ``file`` (+ ``name``), or JSON ``{"name", "content"}`` for a text file
    (empty when ``content`` is left out).  ``replace`` allows overwriting."""
    worksheet = worksheet_of(context)
    limit = max_bytes(request)
    upload = request.POST.get('file') if request.content_type == 'multipart/form-data' \
        else None
    if upload is not None and hasattr(upload, 'file'):
        name = (request.POST.get('name') or '').strip() or \
            (upload.filename or '').replace('\\', '/').rsplit('/', 1)[-1]
        content = upload.file.read(limit + 1)
        replace = request.POST.get('replace') in ('1', 'true', 'on')
    else:
        body = json_body(request)
        name = body.get('name')
        content = get_str(body, 'content', '').encode('utf-8')
        replace = body.get('replace') is True
    check_name(name)
    if len(content) > limit:
        raise api_error(413, 'a data file may have at most %d MB' % (limit // MB))
    folder = worksheet.data_files()
    if name in folder and not replace:
        raise api_error(409, 'a data file named %r exists; send "replace" to overwrite it'
                        % name)
    replaced = folder[name].byte_size() if name in folder else 0
    require_room(request, worksheet.owner, len(content) - replaced,
                 'cannot store the data file %r' % name)
    data_file = folder.add_file(name, content)
    worksheet.touch()
    request.response.status = 201
    return file_json(request, data_file)


@view_config(context=DataFile, request_method='PUT', permission=P.EDIT, renderer='json')
def edit_file(context, request):
    """New content: JSON ``{"content": "text"}`` (as edited in the page)."""
    content = get_str(json_body(request), 'content')
    if content is None:
        raise api_error(400, 'send the new text as "content"')
    data = content.encode('utf-8')
    if len(data) > max_bytes(request):
        raise api_error(413, 'a data file may have at most %d MB'
                        % (max_bytes(request) // MB))
    worksheet = worksheet_of(context.__parent__)
    require_room(request, worksheet.owner, len(data) - context.byte_size(),
                 'cannot store the data file %r' % context.__name__)
    context.write(data)
    worksheet_of(context.__parent__).touch()
    return file_json(request, context)


@view_config(context=DataFile, name='rename', request_method='POST', permission=P.EDIT,
             renderer='json')
def rename_file(context, request):
    new = check_name(json_body(request).get('name'))
    folder = context.__parent__
    if new == context.__name__:
        return file_json(request, context)
    if new in folder:
        raise api_error(409, 'a data file named %r exists' % new)
    folder.remove(context.__name__)
    folder.add(new, context)
    context.modified = time.time()
    return file_json(request, context)


@view_config(context=DataFile, request_method='DELETE', permission=P.EDIT, renderer='json')
def delete_file(context, request):
    name = context.__name__
    context.__parent__.remove(name)
    return {'deleted': name}
