"""sagenb's percent directives, turned into what the Sage Jupyter kernel runs.

A legacy cell may start with lines such as ``%auto``, ``%hide``, ``%time`` or a system
(``%python``, ``%gp``, ``%sh`` ...); a worksheet has a default system.  The kernel knows
IPython's cell magics (``%%time``, ``%%sh``) and Sage's interface magics (``%%gp``,
``%%gap``, ``%%singular`` ...), so most directives become one of those.  What the kernel
cannot know ahead (is this interface installed?) is decided in the kernel by
:data:`PRELUDE`'s helpers, which name the systems that work when one does not.

Only a line that is exactly ``%name`` is a directive: ``%time f(x)`` or
``%display latex`` are IPython line magics and are left alone.
"""
import re
from dataclasses import dataclass

# Directives that only change how the page shows the cell or when it runs.
DISPLAY_DIRECTIVES = ('auto', 'hide', 'hideall', 'hide_input')
TIMING = {'time': '%%time', 'timeit': '%%timeit'}
DIRECTIVE_RE = re.compile(r'^%([A-Za-z_][A-Za-z0-9_]*)[ \t]*$')

# Defined in every worksheet process before its first cell (names start with _sagenb so
# they stay out of the user's way).
PRELUDE = r'''
import os as _sagenb_os
DATA = _sagenb_os.path.join(_sagenb_os.getcwd(), 'data') + '/'

def _sagenb_systems():
    ip = get_ipython()
    names = set(ip.magics_manager.magics['cell'])
    known = ['sage', 'python', 'html', 'latex'] + sorted(
        n for n in names if n in ('sh', 'bash', 'gp', 'gap', 'singular', 'maxima',
                                  'macaulay2', 'r', 'magma', 'mathematica', 'maple',
                                  'octave', 'kash', 'lisp', 'cython', 'javascript',
                                  'giac', 'polymake', 'fricas', 'axiom', 'mupad',
                                  'scilab', 'matlab', 'qepcad', 'lie', 'perl', 'ruby'))
    return known

def _sagenb_system(_sagenb_name, _sagenb_code):
    ip = get_ipython()
    if ip.find_cell_magic(_sagenb_name) is None:
        raise ValueError('the system %r is not available here; the systems that work '
                         'are: %s' % (_sagenb_name, ', '.join(_sagenb_systems())))
    return ip.run_cell_magic(_sagenb_name, '', _sagenb_code)

def _sagenb_python(_sagenb_code):
    ip = get_ipython()
    preparser(False)
    try:
        ip.run_cell(_sagenb_code, store_history=False)
    finally:
        preparser(True)

def _sagenb_arrange(w, layout):
    # sagenb's @interact(layout=dict(top=[[names]], left=..., right=..., bottom=...)):
    # rows of controls above, a column on each side of the output, rows below.
    from ipywidgets import HBox, VBox
    by_name = {getattr(c, '_kwarg', None): c for c in w.kwargs_widgets}
    used = set()
    def rows(spec):
        out = []
        for row in spec or []:
            names = [row] if isinstance(row, str) else list(row)
            items = [by_name[n] for n in names if n in by_name and n not in used]
            used.update(n for n in names if n in by_name)
            if items:
                out.append(HBox(items))
        return out
    top = rows(layout.get('top'))
    left = rows(layout.get('left'))
    right = rows(layout.get('right'))
    bottom = rows(layout.get('bottom'))
    rest = [c for c in w.children if c is not w.out and getattr(c, '_kwarg', None) not in used]
    middle = ([VBox(left)] if left else []) + [w.out] + ([VBox(right)] if right else [])
    w.children = tuple(rest + top) + (HBox(middle),) + tuple(bottom)

class _SagenbInteract:
    # Sage's interact, plus sagenb's layout= (ipywidgets' interact has none).
    def __init__(self, factory, layout=None):
        self._factory, self._layout = factory, layout
    def __call__(self, _sagenb_f=None, layout=None, **kwargs):
        layout = layout if layout is not None else self._layout
        factory = self._factory(**kwargs) if kwargs else self._factory
        if _sagenb_f is None:
            return _SagenbInteract(factory, layout)
        if not layout:
            return factory(_sagenb_f)
        from IPython.display import display
        w = factory.widget(_sagenb_f)
        _sagenb_arrange(w, dict(layout))
        display(w)
        _sagenb_f.widget = w
        return _sagenb_f
    def __getattr__(self, name):
        return getattr(self._factory, name)

try:
    interact = _SagenbInteract(interact)
except NameError:
    pass

def _sagenb_show(_sagenb_mime, _sagenb_text):
    from IPython.display import display
    display({_sagenb_mime: _sagenb_text}, raw=True)
'''


@dataclass
class Translated:
    code: str
    auto: bool = False
    hide: bool = False
    system: str = 'sage'


def strip_prompts(text):
    """Input pasted from a doctest: keep the ``sage:``/``>>>`` lines and ``...`` lines."""
    lines = text.split('\n')
    if not any(line.lstrip().startswith(('sage:', '>>>')) for line in lines):
        return text
    kept = []
    for line in lines:
        stripped = line.lstrip()
        for prompt in ('sage:', '>>>', '....:', '...'):
            if stripped.startswith(prompt):
                rest = stripped[len(prompt):]
                # One blank after the prompt belongs to it; the rest is indentation.
                kept.append(rest[1:] if rest.startswith(' ') else rest)
                break
    return '\n'.join(kept)


def split_directives(text):
    """``(directive names, rest of the input)`` from the cell's first lines."""
    names = []
    lines = text.split('\n')
    while lines and DIRECTIVE_RE.match(lines[0].strip()):
        names.append(DIRECTIVE_RE.match(lines[0].strip()).group(1).lower())
        lines.pop(0)
    return names, '\n'.join(lines)


def is_auto(text):
    return 'auto' in split_directives(text)[0]


def translate(text, default_system='sage'):
    """The code the kernel runs for a cell's input, and what its directives say."""
    names, body = split_directives(text)
    result = Translated(code='')
    system = (default_system or 'sage').lower()
    timing = None
    for name in names:
        if name == 'auto':
            result.auto = True
        elif name in DISPLAY_DIRECTIVES:
            result.hide = True
        elif name in TIMING:
            timing = TIMING[name]
        else:
            system = name
    result.system = system
    if system in ('sage', 'python'):
        body = strip_prompts(body)
    if system == 'sage':
        code = body
    elif system == 'python':
        code = '_sagenb_python(%r)' % body
    elif system == 'html':
        code = "_sagenb_show('text/html', %r)" % body
    elif system == 'latex':
        code = "_sagenb_show('text/latex', %r)" % body
    else:
        code = '_sagenb_system(%r, %r)' % (system, body)
    if timing:
        code = timing + '\n' + code
    result.code = code
    return result
