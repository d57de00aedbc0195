"""What names may be: data files, files kept with a cell, worksheets, systems.

One function per rule, used by the views that take a name and by the importers that
copy one from a file, so an upload cannot store a name the page would refuse.  The
``*_problem`` functions answer None or what is wrong (a sentence for the user); the
``clean_*`` functions return the value made acceptable.
"""
import re
import unicodedata

MAX_FILE_NAME = 200
MAX_WORKSHEET_NAME = 200
# Characters that reorder or hide text (bidirectional embeddings, overrides and isolates,
# marks): they make "txt.exe" look like "exe.txt" and a name differ from what it shows.
BIDI_CONTROLS = frozenset('\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e'
                          '\u2066\u2067\u2068\u2069')
# A worksheet's system, as the worksheet page and the account page set it.
SYSTEM_RE = re.compile(r'[a-z][a-z0-9_]{0,31}')
FILE_NAME_RULE = ('a file name has 1 to %d characters, no "/" or "\\", no control or '
                  'bidirectional characters, no blanks at either end, is not "." or "..", '
                  'and does not start with "@@"' % MAX_FILE_NAME)
SYSTEM_RULE = 'a system is named by 1 to 32 lower-case letters, digits or "_", e.g. "sage"'


def _hidden(char):
    # Control characters (C0, DEL, C1) and the bidirectional controls.
    return unicodedata.category(char) == 'Cc' or char in BIDI_CONTROLS


def escape_hidden(text):
    """``text`` with its control and bidirectional characters written as escapes
    (``\\n``, ``\\u202e``), for messages and reports that show a name from a file."""
    return ''.join(c.encode('unicode_escape').decode('ascii') if _hidden(c) else c
                   for c in text)


def file_name_problem(name):
    """What is wrong with ``name`` as the name of a data file (None when nothing)."""
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_FILE_NAME \
            or name in ('.', '..') or name.startswith('@@') or name != name.strip() \
            or '/' in name or '\\' in name or any(_hidden(c) for c in name):
        return FILE_NAME_RULE
    return None


def cell_file_name_problem(name):
    """A file kept with a cell may sit in a folder (``.jmol_images/a.png``): each part
    follows the rule of data file names."""
    if not isinstance(name, str) or not name:
        return FILE_NAME_RULE
    for part in name.split('/'):
        problem = file_name_problem(part)
        if problem:
            return problem
    return None


def clean_worksheet_name(name, default='Untitled'):
    """A worksheet's name without control or bidirectional characters, runs of blanks
    made one space; ``default`` when nothing is left.  The length is the caller's:
    the page refuses a longer name, an import cuts it (:func:`cut_worksheet_name`)."""
    if not isinstance(name, str):
        return default
    name = ''.join(' ' if _hidden(c) else c for c in name)
    return ' '.join(name.split()) or default


def cut_worksheet_name(name):
    """``(name, cut)``: the cleaned name, at most :data:`MAX_WORKSHEET_NAME` long."""
    name = clean_worksheet_name(name)
    if len(name) <= MAX_WORKSHEET_NAME:
        return name, False
    return name[:MAX_WORKSHEET_NAME - 1].rstrip() + '\u2026', True


def system_problem(system):
    if not isinstance(system, str) or not SYSTEM_RE.fullmatch(system):
        return SYSTEM_RULE
    return None
