"""search.py's ``DocWords`` merging two reindexes of one worksheet made at once (edits of
different cells, issue 21), as ZODB's conflict resolution calls it."""
import pytest
from ZODB.POSException import ConflictError

from sagenb_pyramid.search import DocWords


def state(words, readers=()):
    return {'words': tuple(words), 'readers': tuple(readers)}


def test_the_words_each_added_or_removed_both_apply():
    merged = DocWords()._p_resolveConflict(state('ab'), state('abc'), state('bd'))
    assert merged == state('bcd')


def test_readers_changed_by_one_follow_it():
    merged = DocWords()._p_resolveConflict(state('a', ['u']), state('ab', ['u']),
                                           state('a', ['u', 'v']))
    assert merged == state('ab', ['u', 'v'])


def test_readers_changed_differently_by_both_are_a_conflict():
    with pytest.raises(ConflictError):
        DocWords()._p_resolveConflict(state('a', ['u']), state('a', ['v']),
                                      state('a', ['w']))
