"""``/doc/``: Sage's manuals (services/doc.py).  ``/doc/`` lists them and searches
them, ``/doc/files/<path>`` sends a file of them as it is (no script runs),
``/doc/live/<path>`` shows a page as a read-only worksheet whose examples logged-in
users evaluate (``evaluate``, ``result``, ``interrupt``, ``restart``) in their
documentation worksheet's process, or copy into a new worksheet (``copy``);
``lookup`` finds the page of a name (``foo?`` links to it).

Everybody reads (``P.VIEW``); evaluating and copying take a login (``P.EVALUATE``,
``P.CREATE``).  Without the manuals every page says how to install them (404).
"""
import contextlib
import os

from pyramid.httpexceptions import HTTPFound
from pyramid.response import FileResponse
from pyramid.view import view_config

from ..resources import DocPath, DocSection
from ..security import P
from ..services import doc, evaluation
from ..services.serialize import cell_json, queued_json, script_safe_json, worksheet_summary
from ..waits import wait_seconds, wait_slot
from ..web import api_error, form_of, get_str, json_body, wants_json


def missing(request):
    """The page that says how to install the manuals (404)."""
    request.response.status = 404
    if wants_json(request):
        request.override_renderer = 'json'
        return {'error': doc.INSTALL_HINT}
    request.override_renderer = 'doc_index.jinja2'
    return {'installed': False, 'hint': doc.INSTALL_HINT, 'manuals': [], 'results': None,
            'query': ''}


@view_config(context=DocSection, name='', request_method='GET', permission=P.VIEW,
             renderer='doc_index.jinja2')
def doc_index(context, request):
    root = doc.doc_root(request.registry.settings)
    if root is None:
        return missing(request)
    manuals = doc.manual_list(root)
    for manual in manuals:
        manual['url'] = doc.live_url(request, manual['path'])
    if wants_json(request):
        request.override_renderer = 'json'
        return {'manuals': manuals}
    return {'installed': True, 'manuals': manuals, 'results': None, 'query': ''}


@view_config(context=DocSection, name='search', request_method='GET', permission=P.VIEW,
             renderer='doc_index.jinja2')
def doc_search(context, request):
    """``?q=``: names (functions, classes, methods, modules) and page titles holding
    every word."""
    root = doc.doc_root(request.registry.settings)
    if root is None:
        return missing(request)
    query = get_str(request.GET, 'q', '', max_length=200).strip()
    results = doc.search(request, root, query)
    if wants_json(request):
        request.override_renderer = 'json'
        return results
    return {'installed': True, 'manuals': [], 'results': results, 'query': query}


@view_config(context=DocSection, name='lookup', request_method='GET', permission=P.VIEW,
             renderer='json')
def doc_lookup(context, request):
    """``?name=factor&file=<the File: line of its help>``: the manual's page of a name,
    or 404."""
    root = doc.require_root(request)
    name = get_str(request.GET, 'name', '', max_length=300).strip()
    if not name:
        raise api_error(400, '"name" is required')
    help_file = get_str(request.GET, 'file', '', max_length=2000)
    found = doc.lookup(request, root, name, 'File: ' + help_file if help_file else '')
    if found is None:
        raise api_error(404, 'the manuals have no page for %s' % name)
    return found


@view_config(context=DocPath, name='', request_method='GET', permission=P.VIEW,
             renderer='doc_page.jinja2')
def doc_path(context, request):
    root = doc.doc_root(request.registry.settings)
    if root is None:
        return missing(request)
    if context.kind == 'files':
        return doc_file(request, root, context.path)
    page = doc.page_json(request, root, context.path)
    if wants_json(request):
        request.override_renderer = 'json'
        return page
    return {'page': page, 'page_json': script_safe_json(page),
            'can_evaluate': request.has_permission(P.EVALUATE, context)}


def doc_file(request, root, rel):
    path = doc.resolve(root, rel)
    if path is None:
        raise api_error(404, 'no file %s in the manuals' % rel)
    content_type = doc.served_type(path)
    if content_type is None:
        raise api_error(404, 'the manuals\' %s files are not served here (their pages are '
                             'read at /doc/live/)' % (os.path.splitext(path)[1] or 'such'))
    response = FileResponse(path, request=request, content_type=content_type,
                            cache_max_age=3600)
    if content_type.startswith('text/'):
        response.charset = 'utf-8'
    response.headers['Content-Security-Policy'] = doc.DOC_FILE_CSP
    response.headers['X-Content-Type-Options'] = 'nosniff'
    return response


# --- examples, in the caller's documentation worksheet ------------------------------------

@view_config(context=DocSection, name='evaluate', request_method='POST',
             permission=P.EVALUATE, renderer='json')
def evaluate(context, request):
    """``{"input": code, "wait": seconds}``: run an example; the answer is its cell (as
    a worksheet's), done or still busy (then ask ``result``)."""
    body = json_body(request)
    text = get_str(body, 'input', max_length=100_000)
    if text is None or not text.strip():
        raise api_error(400, '"input" must be the code of the example')
    wait = wait_seconds(request, body.get('wait'))
    with wait_slot(request) if wait else contextlib.nullcontext():
        cell, run_id = doc.evaluate_example(request, text, bool(wait))
        if wait and (evaluation.commit_then_wait(request, cell, wait, run_id)
                     or cell.output.run_id == run_id):
            return cell_json(request, cell)
    return queued_json(request, cell)


@view_config(context=DocSection, name='result', request_method='GET',
             permission=P.EVALUATE, renderer='json')
def result(context, request):
    """``?cell=<id>&since=<version>&wait=<seconds>``: an example evaluated earlier."""
    try:
        cell_id = int(request.GET.get('cell', ''))
        since = int(request.GET['since']) if request.GET.get('since') else None
    except ValueError:
        raise api_error(400, '"cell" and "since" must be numbers') from None
    cell = doc.example_cell(request, cell_id)
    wait = wait_seconds(request, request.GET.get('wait'))
    if wait:
        with wait_slot(request):
            evaluation.wait_for_cell(request, cell, wait, since=since)
    return cell_json(request, cell)


def doc_worksheet_key(request):
    worksheet = request.user.doc_worksheet
    return evaluation.worksheet_key(worksheet) if worksheet is not None else None


@view_config(context=DocSection, name='interrupt', request_method='POST',
             permission=P.EVALUATE, renderer='json')
def interrupt(context, request):
    key = doc_worksheet_key(request)
    return {'ok': True, 'interrupted': bool(key and request.workers.interrupt(key))}


@view_config(context=DocSection, name='restart', request_method='POST',
             permission=P.EVALUATE, renderer='json')
def restart(context, request):
    """Stop the process of the caller's examples (it no longer counts against their
    limit); the next example starts a fresh one."""
    key = doc_worksheet_key(request)
    return {'ok': True, 'cancelled': request.workers.restart(key) if key else 0}


@view_config(context=DocSection, name='copy', request_method='POST', permission=P.CREATE,
             renderer='json')
def copy(context, request):
    """``{"page": "<path of the page>"}``: a new worksheet of the caller's with the
    page's text and examples."""
    if not request.has_permission(P.CREATE, request.user):
        raise api_error(403, 'you may not create worksheets')
    root = doc.require_root(request)
    page = get_str(form_of(request), 'page', max_length=2000, allow_empty=False)
    if page is None:
        raise api_error(400, '"page" must name a page of the manuals')
    worksheet = doc.copy_page(request, root, page)
    if not wants_json(request):
        return HTTPFound(request.resource_url(worksheet))
    request.response.status = 201
    return worksheet_summary(request, worksheet, request.user.id)
