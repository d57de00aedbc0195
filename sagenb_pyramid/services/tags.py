"""Worksheet tags: a few short words its owner files it under (searchable, and a filter
of the listing); what a tag may be, checked once for the API and the listing's query."""
import re
import unicodedata

from ..web import api_error

# Tags: a few short words of letters, digits, ``-``, ``_``, ``.`` and ``+`` (any script),
# kept lower case, so that ``Calculus`` and ``calculus`` are one tag.
MAX_TAGS = 10
MAX_TAG = 32
TAG = re.compile(r'^\w[\w.+-]*$')


def clean_tag(value):
    """A tag as stored, or ValueError saying what is wrong with it."""
    if not isinstance(value, str):
        raise ValueError('a tag must be a string')
    tag = unicodedata.normalize('NFKC', value).strip().lower()
    if not tag:
        raise ValueError('a tag cannot be empty')
    if len(tag) > MAX_TAG:
        raise ValueError('a tag has at most %d characters' % MAX_TAG)
    if not TAG.match(tag):
        raise ValueError('a tag is letters, digits, "-", "_", "." or "+" (no spaces), '
                         'starting with a letter or digit: %r' % value[:40])
    return tag


def clean_tags(value):
    """``value`` (a JSON list) as the sorted tuple stored; ValueError if it is not one."""
    if not isinstance(value, list):
        raise ValueError('"tags" must be a list of strings')
    tags = sorted({clean_tag(v) for v in value})
    if len(tags) > MAX_TAGS:
        raise ValueError('a worksheet has at most %d tags' % MAX_TAGS)
    return tuple(tags)


def tag_filter(value):
    """The ``tag`` of a listing's query (None: no filter); 400 when it cannot be a tag."""
    if value is None or value == '':
        return None
    try:
        return clean_tag(value)
    except ValueError as exc:
        raise api_error(400, '"tag": %s' % exc) from None
