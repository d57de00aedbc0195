"""A worksheet's data files: adding (uploaded or typed), editing, renaming.

Every change that adds bytes is checked against the per-file limit
(``sagenb.data.max_mb``) and the owner's storage quota (``quota.py``); refusals are
``api_error``s: 400 (a bad name), 409 (the name is taken), 413 (too large).  The
functions take the registry's ``settings`` and plain values, no request.
"""
import time

from .. import names
from ..resources import Worksheet
from ..web import api_error
from .quota import MB, require_room


def check_name(name):
    """``name`` if it can name a data file, else 400."""
    problem = names.file_name_problem(name)
    if problem:
        raise api_error(400, 'not a usable data file name: ' + problem)
    return name


def max_bytes(settings):
    """The most bytes one data file may hold."""
    return settings['sagenb.data.max_mb'] * MB


def check_size(settings, content):
    limit = max_bytes(settings)
    if len(content) > limit:
        raise api_error(413, 'a data file may have at most %d MB' % (limit // MB))


def worksheet_of(context):
    """The worksheet of a worksheet or of its data folder."""
    return context if isinstance(context, Worksheet) else context.__parent__


def add_file(settings, worksheet, name, content, replace=False):
    """A new data file ``name`` with the bytes ``content``; an existing one of that name
    is overwritten only with ``replace`` (else 409)."""
    check_name(name)
    check_size(settings, content)
    folder = worksheet.data_files()
    if name in folder and not replace:
        raise api_error(409, 'a data file named %r exists; send "replace" to overwrite it'
                        % name)
    replaced = folder[name].byte_size() if name in folder else 0
    require_room(settings, worksheet.owner, len(content) - replaced,
                 'cannot store the data file %r' % name)
    data_file = folder.add_file(name, content)
    worksheet.touch()
    return data_file


def edit_file(settings, data_file, text):
    """New text for ``data_file`` (as edited in the page)."""
    data = text.encode('utf-8')
    check_size(settings, data)
    worksheet = worksheet_of(data_file.__parent__)
    require_room(settings, worksheet.owner, len(data) - data_file.byte_size(),
                 'cannot store the data file %r' % data_file.__name__)
    data_file.write(data)
    worksheet.touch()
    return data_file


def rename_file(data_file, new):
    """``data_file`` under the name ``new`` (400 if unusable, 409 if taken)."""
    check_name(new)
    folder = data_file.__parent__
    if new == data_file.__name__:
        return data_file
    if new in folder:
        raise api_error(409, 'a data file named %r exists' % new)
    folder.remove(data_file.__name__)
    folder.add(new, data_file)
    data_file.modified = time.time()
    return data_file
