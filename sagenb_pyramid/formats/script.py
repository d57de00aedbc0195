"""A worksheet as a script: ``.sage`` (Sage's language, run by ``sage file.sage``) and
``.py`` (the same, preparsed: plain Python with ``from sage.all import *``).

What each part of a worksheet becomes (docs/api.md says it for users):

- a text cell: its lines as comments (``# ``);
- a compute cell: its input, after its directive lines (a first line that is exactly
  ``%name``, ``workers/directives.py``) became comments, with the code run as the
  notebook runs it: ``%sage`` and no directive run the code, ``%python`` too (kept as it
  is in ``.py``: the notebook runs it unpreparsed), ``%time``/``%timeit`` and the display
  ones (``%auto``, ``%hide`` ...) only become comments; a system with a Sage interface
  (``%gp``, ``%gap``, ``%maxima`` ...) becomes ``print(gp.eval(...))``, ``%sh``/``%bash``
  a ``subprocess.run``, and a system a script cannot run (``%html``, ``%latex``,
  ``%javascript``, an unknown name) leaves its body as comments;
- inside Sage or Python code, a line that Python cannot read and only IPython knows
  (a line magic such as ``%display latex``, ``foo?``, ``!ls``) becomes a comment;
- the value of a cell's last expression, which the notebook shows, is printed as
  Python's prompt prints it (``_show(...)``, that is ``sys.displayhook``), when the
  expression is a statement of its own at the start of a line.

The preparser is Sage's (``sage.repl.preparse``); ``preparse`` is handed in by the
caller (services/transfer.py runs it where it is cheap to load).
"""
import ast
import re

from ..workers.directives import DISPLAY_DIRECTIVES, TIMING, split_directives, strip_prompts

# Systems that sage.all names as an interface object with .eval(code) -> str.
INTERFACES = ('gp', 'gap', 'singular', 'maxima', 'macaulay2', 'r', 'giac', 'polymake',
              'fricas', 'axiom', 'mathematica', 'maple', 'magma', 'octave', 'kash',
              'lisp', 'mupad', 'scilab', 'matlab', 'qepcad', 'lie')
SHELLS = ('sh', 'bash')
# A line only IPython reads: a line magic, a shell escape, help (foo? / foo??).
IPYTHON_LINE = re.compile(r'^\s*(%|!|[A-Za-z_][\w.]*\?\??\s*$|\?)')

HEADER = '# -*- coding: utf-8 -*-\n# %s\n# Exported from the Sage notebook (system: %s).\n'
SHOW = 'from sys import displayhook as _show  # a cell\'s last value, as the notebook shows it\n'


def comment(text):
    return '\n'.join(('# ' + line).rstrip() for line in text.split('\n'))


def _last_expression(code):
    """``(first line, last line)`` (0-based) of ``code``'s last statement when it is an
    expression starting a line, else None.  ``code`` must be Python."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return None
    if not tree.body or not isinstance(tree.body[-1], ast.Expr):
        return None
    node = tree.body[-1]
    if node.col_offset != 0 or node.end_lineno is None:
        return None
    value = node.value
    # print(...) and friends show themselves: no "None" after them.
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and \
            value.func.id in ('print', 'show', 'pretty_print'):
        return None
    return node.lineno - 1, node.end_lineno - 1


def _wrap_last(code, span):
    """``code`` with the lines of ``span`` inside ``_show(...)``."""
    lines = code.split('\n')
    first, last = span
    expression = '\n'.join(lines[first:last + 1]).rstrip()
    if expression.endswith(';'):
        return code  # Sage and IPython show nothing after a trailing ";"
    # A comment at the end of the expression's last line would swallow the ")".
    return '\n'.join(lines[:first] + ['_show(%s\n)' % expression if '#' in lines[last]
                                      else '_show(%s)' % expression] + lines[last + 1:])


def _code_lines(body):
    """``body`` with the lines only IPython reads as comments."""
    return '\n'.join(comment(line) if IPYTHON_LINE.match(line) else line
                     for line in body.split('\n'))


def cell_parts(cell, default_system):
    """``(comments, code, kind)`` for a compute cell: ``kind`` is ``sage`` (Sage code,
    preparsed for ``.py``), ``python`` (Python code, as it is in both) or ``none``."""
    names, body = split_directives(cell.input)
    system = (default_system or 'sage').lower()
    notes = []
    for name in names:
        notes.append('%' + name)
        if name not in DISPLAY_DIRECTIVES and name not in TIMING:
            system = name
    head = '\n'.join('# ' + note for note in notes)
    body = body.strip('\n')
    if system in ('sage', 'python'):
        return head, _code_lines(strip_prompts(body)), system
    if system in INTERFACES:
        return head, 'print(%s.eval(%r))' % (system, body), 'python'
    if system in SHELLS:
        return head, "import subprocess\nsubprocess.run([%r, '-c', %r])" % (system, body), \
            'python'
    note = '# (%%%s: shown by the notebook, not run by a script)' % system
    return '\n'.join(filter(None, [head, note])), comment(body), 'none'


def _sage_show(code, preparse):
    """Sage ``code`` with its last expression shown: found in the preparsed code (a
    line for a line), wrapped in the Sage code."""
    if preparse is None:
        return code
    try:
        python = preparse(code)
    except Exception:  # noqa: BLE001 (a cell the preparser cannot read stays as it is)
        return code
    if python.count('\n') != code.count('\n'):
        return code
    span = _last_expression(python)
    return code if span is None else _wrap_last(code, span)


def write_sage(data, preparse=None):
    """The ``.sage`` script of a :class:`WorksheetData` (text).  ``preparse`` (Sage's
    line preparser) finds the expressions whose value a cell shows."""
    parts = [HEADER % (data.name.replace('\n', ' '), data.system), SHOW]
    for number, cell in enumerate(data.cells, 1):
        if cell.type == 'text':
            parts.append('# --- text cell %d\n%s\n' % (number, comment(cell.input.strip('\n'))))
            continue
        head, code, kind = cell_parts(cell, data.system)
        if kind == 'sage':
            code = _sage_show(code, preparse)
        elif kind == 'python':
            span = _last_expression(code)
            code = code if span is None else _wrap_last(code, span)
        parts.append('# --- cell %d\n%s\n' % (number, '\n'.join(filter(None, [head, code]))))
    return '\n'.join(parts)


def write_python(data, preparse_file):
    """The ``.py`` script: ``write_sage``'s, with Sage code preparsed by
    ``preparse_file`` (Sage's, ``numeric_literals=False``: numbers stay where they are,
    as ``Integer(2)``) and Python code kept."""
    parts = [HEADER % (data.name.replace('\n', ' '), data.system),
             'from sage.all import *\n' + SHOW]
    for number, cell in enumerate(data.cells, 1):
        if cell.type == 'text':
            parts.append('# --- text cell %d\n%s\n' % (number, comment(cell.input.strip('\n'))))
            continue
        head, code, kind = cell_parts(cell, data.system)
        if kind == 'sage':
            code = preparse_file(code)
        if kind in ('sage', 'python'):
            span = _last_expression(code)
            code = code if span is None else _wrap_last(code, span)
        parts.append('# --- cell %d\n%s\n' % (number, '\n'.join(filter(None, [head, code]))))
    return '\n'.join(parts)
