"""Reading the legacy notebook folder safely, and the plain values read from it.

A file is read only if it is a regular file, never through a link (a link could lead
out of the notebook folder), and never past a bound: ``MAX_SMALL_FILE`` for the files
of the folder itself, a worksheet's :class:`..formats.archive.Budget` for its body,
cell files and snapshots.  Pickles are read with :mod:`..formats.safepickle` only.
"""
import os
import re
import stat

from ..formats import FormatError, Limits, safepickle
from ..importing import _shown

# Files of the notebook folder itself are small; a worksheet's body, cell files and
# snapshots share one budget (data files are copied into blobs without one).
MAX_SMALL_FILE = safepickle.MAX_PICKLE_BYTES
WORKSHEET_LIMITS = Limits()
NUMBER_RE = re.compile(r'^\d{1,9}$')


def is_file(path):
    """A regular file, not a link (a link could lead out of the notebook folder)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def is_dir(path):
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def open_file(path):
    """``path`` opened for reading bytes, refused if it is a link."""
    fd = os.open(path, os.O_RDONLY | getattr(os, 'O_NOFOLLOW', 0))
    return os.fdopen(fd, 'rb')


def read(path, max_bytes, name=None):
    """The bytes of a regular file, at most ``max_bytes`` of them, or FormatError."""
    name = name or os.path.basename(path)
    if not is_file(path):
        raise FormatError('%s is not a regular file' % name)
    try:
        with open_file(path) as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise FormatError('%s cannot be read (%s)' % (name, exc.strerror or exc)) from None
    if len(data) > max_bytes:
        raise FormatError('%s is larger than %d MB' % (name, max_bytes // 2**20))
    return data


def read_budgeted(path, budget, name):
    """The bytes of a regular file, its size taken from ``budget`` first."""
    try:
        size = os.lstat(path).st_size
    except OSError as exc:
        raise FormatError('%s cannot be read (%s)' % (name, exc.strerror or exc)) from None
    budget.take(size, name)
    return read(path, max(size, 0) + 2**16, name)


def read_pickle(path, what):
    return safepickle.loads(read(path, MAX_SMALL_FILE, what), what)


def files_below(top):
    """``[(relative path with '/', absolute path)]`` of the regular files below ``top``.

    Links are not followed; a folder that cannot be listed raises OSError.
    """
    found = []
    for dirpath, dirnames, filenames in os.walk(top, onerror=_raise, followlinks=False):
        dirnames.sort()
        for filename in sorted(filenames):
            full = os.path.join(dirpath, filename)
            if is_file(full):
                found.append((os.path.relpath(full, top).replace(os.sep, '/'), full))
    return found


def _raise(exc):
    raise exc


# --- what the files say, for the report and as values ---------------------------------

def reason(exc, what):
    """The message of ``exc`` without a leading ``what: `` (the item names it)."""
    message = str(exc)
    return message[len(what) + 2:] if message.startswith(what + ': ') else message


def label(value):
    """A name from the folder in a report line (control characters escaped)."""
    return _shown(value)[1:-1]


def as_text(value):
    return value if isinstance(value, str) else None


def as_number(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and NUMBER_RE.match(value.strip()):
        return int(value)
    return None


def as_time(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if value > 0 else None
