"""Reading the legacy notebook's Python 2 pickles without running anything.

``pickle.load`` on an uploaded file runs whatever the file says (``__reduce__`` calls any
function).  The legacy notebook's ``worksheet_conf.pickle``, ``users.pickle`` and
``conf.pickle`` hold only plain types, so an unpickler that refuses every global reads
them all and refuses every payload.  The exceptions are how plain data is written by
the pickle protocol itself: ``set``/``frozenset`` (Python 2's ``users.pickle`` holds
sets) and ``_codecs.encode``/``bytes`` (Python 3's bytes in protocol 2); each is
replaced by a function here that only builds that plain value from plain arguments.  Python 2 ``str`` arrives as ``bytes``
(``encoding='bytes'``); :func:`plain` turns the result into ``str`` keys and values.
"""
import io
import pickle

from . import FormatError

MAX_PICKLE_BYTES = 16 * 2**20
MAX_NODES = 1_000_000


def _latin1_bytes(text, encoding='latin1'):
    """How Python 3 writes ``bytes`` into a protocol-2 pickle: ``_codecs.encode``."""
    if not isinstance(text, str) or encoding not in ('latin1', 'latin-1'):
        raise FormatError('the file contains a pickle that calls _codecs.encode with '
                          'unexpected arguments')
    return text.encode('latin-1')


def _set(items=()):
    return set(_checked_items(items))


def _frozenset(items=()):
    return frozenset(_checked_items(items))


def _checked_items(items):
    if not isinstance(items, (list, tuple)):
        raise FormatError('the file contains a pickle that builds a set from %s'
                          % type(items).__name__)
    return items


def _empty_bytes(*args):
    if args:
        raise FormatError('the file contains a pickle that calls bytes with arguments')
    return b''


# The only callables a pickle may name: how Python 2 writes sets, and how Python 3
# writes bytes into protocol 2.  Each is a function of ours that builds plain data.
_ALLOWED = {
    ('_codecs', 'encode'): _latin1_bytes,
    ('__builtin__', 'set'): _set, ('builtins', 'set'): _set,
    ('__builtin__', 'frozenset'): _frozenset, ('builtins', 'frozenset'): _frozenset,
    ('__builtin__', 'bytes'): _empty_bytes, ('builtins', 'bytes'): _empty_bytes,
}


# The stdlib's pure-Python unpickler, not the C one: the C one allocates a counted
# string's declared length before reading it, so five bytes (``B`` and a length) made
# it allocate up to 4 GB.  The Python one reads what is there and stops at the end.
# It is about half as fast (0.55 s for a 2.9 MB users.pickle of 20,000 users).
class _RefusingUnpickler(pickle._Unpickler):
    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        raise FormatError('the file contains a pickle that refers to %s.%s; only plain '
                          'data is accepted' % (_text(module), _text(name)))

    def persistent_load(self, pid):
        raise FormatError('the file contains a pickle with persistent references; only '
                          'plain data is accepted')


def _text(value):
    return value.decode('utf-8', 'replace') if isinstance(value, bytes) else str(value)


def loads(data, what='pickle'):
    """Unpickle plain data (dict, list, tuple, set, str, bytes, numbers, None, bool)."""
    if len(data) > MAX_PICKLE_BYTES:
        raise FormatError('%s is larger than %d MB' % (what, MAX_PICKLE_BYTES // 2**20))
    try:
        value = _RefusingUnpickler(io.BytesIO(data), encoding='bytes').load()
    except FormatError as exc:
        raise FormatError('%s: %s' % (what, exc)) from None
    except Exception as exc:  # truncated, corrupt, unknown opcode, recursion ...
        raise FormatError('%s is not a readable pickle (%s)' % (what, type(exc).__name__)) \
            from None
    return plain(value, what)


def plain(value, what='pickle'):
    """Bytes become text (UTF-8, else Latin-1); containers are copied; size is bounded.

    Pickles share objects through their memo, so a small file can describe a structure
    whose copy is exponentially large: the copy counts the nodes it makes and stops.
    """
    budget = [MAX_NODES]

    def walk(v, depth):
        budget[0] -= 1
        if budget[0] < 0 or depth > 100:
            raise FormatError('%s is too large or too deeply nested' % what)
        if isinstance(v, bytes):
            return decode(v)
        if isinstance(v, dict):
            return {walk(k, depth + 1): walk(x, depth + 1) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            items = [walk(x, depth + 1) for x in v]
            return items if isinstance(v, list) else tuple(items)
        if isinstance(v, (set, frozenset)):
            return {walk(x, depth + 1) for x in v}
        if v is None or isinstance(v, (bool, int, float, complex, str)):
            return v
        raise FormatError('%s holds a value of type %s' % (what, type(v).__name__))

    try:
        return walk(value, 0)
    except TypeError:  # e.g. a list used as a dict key after conversion
        raise FormatError('%s holds unhashable keys' % what) from None


def decode(raw):
    try:
        return raw.decode('utf-8')
    except UnicodeDecodeError:
        return raw.decode('latin-1')


def dumps(value):
    """A protocol-2 pickle that Python 2 reads (the legacy notebook's format)."""
    return pickle.dumps(value, protocol=2)
