"""A worksheet's data files: list, upload, create, edit, rename, delete.

``<worksheet>/data/`` lists and takes new files; ``<worksheet>/data/<name>`` is one file
(GET in ``transfer.py``).  The worksheet's Sage process sees them in the folder named by
``DATA``; they are copied there before each cell runs.

What is checked (names, sizes, the per-user storage quota) is in
``services/datafiles.py``.
"""
from pyramid.view import view_config

from ..resources import DataFile, DataFiles, Worksheet
from ..security import P
from ..services import datafiles
from ..services.datafiles import worksheet_of
from ..services.serialize import file_json
from ..web import api_error, get_str, json_body


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
    settings = request.registry.settings
    upload = request.POST.get('file') if request.content_type == 'multipart/form-data' \
        else None
    if upload is not None and hasattr(upload, 'file'):
        name = (request.POST.get('name') or '').strip() or \
            (upload.filename or '').replace('\\', '/').rsplit('/', 1)[-1]
        # One byte past the limit is enough to refuse it.
        content = upload.file.read(datafiles.max_bytes(settings) + 1)
        replace = request.POST.get('replace') in ('1', 'true', 'on')
    else:
        body = json_body(request)
        name = body.get('name')
        content = get_str(body, 'content', '').encode('utf-8')
        replace = body.get('replace') is True
    data_file = datafiles.add_file(settings, worksheet_of(context), name, content, replace)
    request.response.status = 201
    return file_json(request, data_file)


@view_config(context=DataFile, request_method='PUT', permission=P.EDIT, renderer='json')
def edit_file(context, request):
    """New content: JSON ``{"content": "text"}`` (as edited in the page)."""
    content = get_str(json_body(request), 'content')
    if content is None:
        raise api_error(400, 'send the new text as "content"')
    datafiles.edit_file(request.registry.settings, context, content)
    return file_json(request, context)


@view_config(context=DataFile, name='rename', request_method='POST', permission=P.EDIT,
             renderer='json')
def rename_file(context, request):
    datafiles.rename_file(context, json_body(request).get('name'))
    return file_json(request, context)


@view_config(context=DataFile, request_method='DELETE', permission=P.EDIT, renderer='json')
def delete_file(context, request):
    name = context.__name__
    context.__parent__.remove(name)
    return {'deleted': name}
