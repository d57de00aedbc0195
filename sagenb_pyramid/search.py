"""Full-text search: an inverted index of words kept in ZODB (``root.search_index``),
changed in the transaction that changes the text.

Documents are worksheets (key ``"w:<owner id>/<number>"``: name, tags, cell inputs)
and publications (``"p:<publication id>"``: what ``Publication.texts()`` returns).
``reindex(root, key, texts)`` and ``unindex(root, key)`` are the whole interface of
the index; ``Worksheet.touch()`` (through :func:`changed`) and a user's home adding or
removing a worksheet call them, once per worksheet and transaction (a before-commit
hook), so no view has to remember to.

The postings are ``"<word>\\0<key>"`` strings in ``OOTreeSet``s, not a tree of sets
per word: two transactions that add a word to different documents insert different
keys, which BTrees' conflict resolution merges, where a set per word would be one key
both change.  They are spread over ``SHARDS`` trees by a hash of the document's key,
so a class typing the same new word at once inserts into many buckets, not into the
one that would split under them all (docs/architecture.md, "Search and tags").
``readers`` holds ``"<principal>\\0<key>"`` for the collaborators and viewers a
worksheet had when it was last indexed: the candidates of ``scope=shared``, each
checked against the live worksheet.  A document's words are kept in an object
of its own (``DocWords``), so an edit that does not change the set of words writes
nothing to the index, and one that does writes that object and the postings of the
words that came or went.  Which results a caller may see is decided at query time
from the live worksheets (services/finding.py), never stored here: a revoked share
stops showing at once.
"""
import re
import unicodedata
import zlib

from BTrees.Length import Length
from BTrees.OOBTree import OOBTree, OOTreeSet
from persistent import Persistent

SEP = '\x00'
# Past every word character: the upper end of a range of postings.
TOP = '\U0010ffff'
WORD = re.compile(r'\w+')
# Longer runs (base64, hashes) are cut: nobody types them into a search box whole.
MAX_WORD = 40
# Distinct words kept per document: far above a 50-cell worksheet's few hundred; a
# pasted table of random data cannot make one document's record huge.
MAX_WORDS = 20_000
SHARDS = 64


def shard_of(key):
    return zlib.crc32(key.encode('utf-8')) % SHARDS


class SearchIndex(Persistent):
    """The index: postings (in shards), each document's words and readers, and how many
    documents."""

    def __init__(self):
        self.shards = tuple(OOTreeSet() for _ in range(SHARDS))
        self.readers = OOTreeSet()
        self.docs = OOBTree()
        self.count = Length()

    def postings(self):
        """Every posting, shard after shard (tests and the benchmark)."""
        for shard in self.shards:
            yield from shard


class DocWords(Persistent):
    """The words a document was indexed with (what the next reindex compares with),
    and the principals that could read it then."""

    def __init__(self, words=(), readers=()):
        self.words = tuple(words)
        self.readers = tuple(readers)

    def _p_resolveConflict(self, old, committed, new):
        """Two reindexes of one document at once (edits of different cells of one
        worksheet, issue 21): the words each added or removed both apply, as their
        postings do (BTrees merge inserts of different keys; one posting changed by both
        is still a conflict).  A word each removed from a different cell may stay until
        the next reindex (a search finds the worksheet once more); none goes missing.
        Readers changed differently by both are a conflict."""
        from ZODB.POSException import ConflictError
        was, theirs, mine = (set(s.get('readers', ())) for s in (old, committed, new))
        if mine != was and theirs != was and mine != theirs:
            raise ConflictError
        was_words, their_words, my_words = (set(s.get('words', ()))
                                            for s in (old, committed, new))
        words = (their_words | (my_words - was_words)) - (was_words - my_words)
        return dict(committed, words=tuple(sorted(words)),
                    readers=tuple(sorted(mine if mine != was else theirs)))


def normalize(text):
    return unicodedata.normalize('NFKC', text).casefold()


def words_of(text):
    """The words of ``text``: runs of letters, digits and ``_`` (any script), in NFKC
    case-folded form; ``plot_vector_field`` also gives ``plot``, ``vector``, ``field``.
    Sage code splits on its operators: ``x^2+1`` is ``x``, ``2``, ``1``."""
    for match in WORD.finditer(normalize(text)):
        word = match.group()[:MAX_WORD]
        yield word
        if '_' in word.strip('_'):
            yield from (part for part in word.split('_') if part)


def word_set(texts):
    found = set()
    for text in texts:
        if text:
            found.update(words_of(text))
            if len(found) > MAX_WORDS:
                return set(sorted(found)[:MAX_WORDS])
    return found


def index_of(root):
    return root.search_index


def reindex(root, key, texts, readers=()):
    """(Re)index the document ``key`` with ``texts`` (strings) and ``readers`` (the
    principals it is shared with); writes only what changed."""
    index = index_of(root)
    words = word_set(texts)
    doc = index.docs.get(key)
    if doc is None:
        doc = index.docs[key] = DocWords()
        index.count.change(1)
    old = set(doc.words)
    if old != words:
        postings = index.shards[shard_of(key)]
        for word in old - words:
            postings.remove(word + SEP + key)
        for word in words - old:
            postings.add(word + SEP + key)
        doc.words = tuple(sorted(words))
    readers = set(readers)
    if readers != set(doc.readers):
        for principal in set(doc.readers) - readers:
            index.readers.remove(principal + SEP + key)
        for principal in readers - set(doc.readers):
            index.readers.add(principal + SEP + key)
        doc.readers = tuple(sorted(readers))


def unindex(root, key):
    """Forget the document ``key`` (nothing happens if it is not indexed)."""
    index = index_of(root)
    doc = index.docs.get(key)
    if doc is None:
        return
    postings = index.shards[shard_of(key)]
    for word in doc.words:
        postings.remove(word + SEP + key)
    for principal in doc.readers:
        index.readers.remove(principal + SEP + key)
    del index.docs[key]
    index.count.change(-1)


# --- queries ------------------------------------------------------------------------

MAX_QUERY = 200
MAX_TERMS = 8


class BadQuery(ValueError):
    """A query that cannot be searched for (the message says why)."""


def parse_query(q):
    """``q`` as terms ``(word, prefix)``: every word must occur (AND); a word written
    with a trailing ``*`` matches the words it begins (``integ*``: at least 2 letters)."""
    if not isinstance(q, str) or not q.strip():
        raise BadQuery('type something to search for ("q")')
    if len(q) > MAX_QUERY:
        raise BadQuery('the search is too long (at most %d characters)' % MAX_QUERY)
    terms = []
    for match in re.finditer(r'\w+\*?', normalize(q)):
        text = match.group()
        prefix = text.endswith('*')
        word = text.rstrip('*')[:MAX_WORD]
        if prefix and len(word) < 2:
            raise BadQuery('a word ending with * needs at least 2 letters before it')
        if (word, prefix) not in terms:
            terms.append((word, prefix))
    if not terms:
        raise BadQuery('the search has no words (letters or digits) in it')
    if len(terms) > MAX_TERMS:
        raise BadQuery('too many words (at most %d)' % MAX_TERMS)
    return terms


def _keys_for(index, term, key_prefix):
    word, prefix = term
    found = set()
    if prefix:
        for shard in index.shards:
            for entry in shard.keys(min=word, max=word + TOP):
                key = entry.split(SEP, 1)[1]
                if key.startswith(key_prefix):
                    found.add(key)
        return found
    low = word + SEP + key_prefix
    start = len(word) + 1
    for shard in index.shards:
        found.update(entry[start:] for entry in shard.keys(min=low, max=low + TOP))
    return found


def _has(index, term, key):
    word, prefix = term
    shard = index.shards[shard_of(key)]
    if not prefix:
        return word + SEP + key in shard
    doc = index.docs.get(key)
    return doc is not None and any(w.startswith(word) for w in doc.words)


def matching(root, terms, key_prefix='', among=None):
    """The keys of the documents holding every term, among those starting with
    ``key_prefix`` (``"w:<owner id>/"``: one owner's worksheets, a narrow range of
    each word's postings), or among the keys ``among`` (a few: each is looked up)."""
    index = index_of(root)
    if among is not None:
        return {key for key in among if all(_has(index, term, key) for term in terms)}
    result = None
    for term in terms:
        keys = _keys_for(index, term, key_prefix)
        result = keys if result is None else result & keys
        if not result:
            return set()
    return result


def shared_with(root, principals):
    """The keys of the documents indexed as shared with any of ``principals``."""
    readers = index_of(root).readers
    found = set()
    for principal in principals:
        low = principal + SEP
        found.update(entry[len(low):] for entry in readers.keys(min=low, max=low + TOP))
    return found


def term_pattern(terms):
    """A regular expression finding any of the terms in a text (for the snippet)."""
    parts = [re.escape(word) + ('' if prefix else r'(?!\w)') for word, prefix in terms]
    return re.compile(r'(?<!\w)(?:%s)' % '|'.join(parts), re.IGNORECASE)


def snippet(texts, terms, width=160):
    """Plain text around the first match of a term in ``texts`` (the page escapes it);
    the beginning of the first non-empty text if none matches as written."""
    pattern = term_pattern(terms)
    first = None
    for text in texts:
        if not text:
            continue
        flat = ' '.join(text.split())
        if first is None and flat:
            first = flat
        for candidate in (flat, normalize(flat)):
            found = pattern.search(candidate)
            if found:
                start = max(0, found.start() - width // 4)
                piece = candidate[start:start + width]
                return ('…' if start else '') + piece + \
                    ('…' if start + width < len(candidate) else '')
    if first is None:
        return ''
    return first[:width] + ('…' if len(first) > width else '')


# --- worksheets -----------------------------------------------------------------------

def worksheet_doc_key(root, worksheet):
    """``w:<owner id>/<number>``, or None for a worksheet in no home of ``root`` (removed
    since it changed, or rolled back by a savepoint: its state may then be gone)."""
    owner_id = getattr(worksheet, 'owner_id', None)
    name = getattr(worksheet, '__name__', None)
    owner = root.users_by_id.get(owner_id) if owner_id is not None else None
    if owner is None or name is None or owner.get(name) is not worksheet:
        return None
    return 'w:%s/%s' % (owner_id, name)


def worksheet_texts(worksheet):
    texts = [worksheet.name]
    texts.extend(worksheet.tags)
    texts.extend(cell.input for cell in worksheet.ordered_cells())
    return texts


def root_of(obj):
    """The application root above ``obj`` (the top of its ``__parent__`` chain, when
    that holds the index; this module imports nothing of resources/), or None."""
    while getattr(obj, '__parent__', None) is not None:
        obj = obj.__parent__
    # A root written before the index (evolve step ``search-index``) has none yet.
    return obj if getattr(obj, 'search_index', None) is not None else None


def reindex_worksheet(root, worksheet):
    key = worksheet_doc_key(root, worksheet)
    if key is not None:
        reindex(root, key, worksheet_texts(worksheet),
                list(worksheet.collaborators) + list(worksheet.viewers))
        # A publication that follows the worksheet (``auto``) shows what it now holds;
        # a snapshot's words change only when it is published again.
        publication_id = worksheet.publication_id
        publication = root.publications.get(publication_id) if publication_id else None
        if publication is not None and publication.auto:
            reindex_publication(root, publication)


# --- publications ---------------------------------------------------------------------

def reindex_publication(root, publication):
    """Index what a publication shows (published, published again, or its worksheet,
    which it follows, changed)."""
    if root_of(root) is not None:  # else the evolve step ``search-index`` indexes it
        # And its owner's login: /pub/'s search box finds someone's publications.
        owner = root.users_by_id.get(publication.owner_id)
        reindex(root, 'p:' + publication.id,
                publication.texts() + ([owner.login] if owner is not None else []))


def unindex_publication(root, publication_id):
    if root_of(root) is not None:
        unindex(root, 'p:' + publication_id)


_PENDING = object()  # the key of a transaction's pending worksheets (``Transaction.data``)


def changed(worksheet):
    """The worksheet's name, tags, cells or sharing changed: reindex it when the
    transaction commits (once, however many changes), or at once for objects in no
    database.  Code that changes ``collaborators``/``viewers`` calls it (or
    ``Worksheet.touch``), so that ``scope=shared`` finds a new share."""
    root = root_of(worksheet)
    if root is None:
        return  # not in a home (yet): adding it to one reindexes it
    jar = root._p_jar
    if jar is None:
        reindex_worksheet(root, worksheet)
        return
    txn = jar.transaction_manager.get()
    try:
        pending = txn.data(_PENDING)
    except KeyError:
        pending = {}
        txn.set_data(_PENDING, pending)
        txn.addBeforeCommitHook(_flush, (root, pending))
    pending[id(worksheet)] = worksheet


def _flush(root, pending):
    for worksheet in pending.values():
        reindex_worksheet(root, worksheet)  # a worksheet removed since has no key


def removed(home, worksheet):
    """``worksheet`` leaves the home ``home`` (deleted, or moving to an heir)."""
    root = root_of(home)
    if root is not None and worksheet.__name__ is not None:
        unindex(root, 'w:%s/%s' % (home.id, worksheet.__name__))


def build(root):
    """Index every worksheet (the evolve step; ``sagenb-admin`` could call it again)."""
    for user in root.users_by_id.values():
        for worksheet in user.worksheets():
            reindex_worksheet(root, worksheet)
    for publication in root.publications.values():
        if publication.shown() is not None:
            reindex_publication(root, publication)

