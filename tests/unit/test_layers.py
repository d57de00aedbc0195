"""The package's layers, read from the source (an import inside a function counts):
no view module imports another view module (what two views share is a service in
``sagenb_pyramid/services/`` or a helper in ``sagenb_pyramid/web.py``), and nothing
below the views (services, workers, auth, the rest) imports a view."""
import ast
import os

import pytest

import sagenb_pyramid

PACKAGE = os.path.dirname(sagenb_pyramid.__file__)


def modules(package=PACKAGE):
    """``{dotted name: path}`` of every module of the package (in the folder
    ``package``)."""
    found = {}
    for folder, _, files in os.walk(package):
        rel = os.path.relpath(folder, package)
        parts = ['sagenb_pyramid'] + ([] if rel == '.' else rel.split(os.sep))
        for name in files:
            if name.endswith('.py'):
                module = parts if name == '__init__.py' else parts + [name[:-3]]
                found['.'.join(module)] = os.path.join(folder, name)
    return found


def imported(module, path):
    """The dotted names ``module`` imports (``from x import y`` counts ``x`` and
    ``x.y``: y may be a module), relative imports resolved."""
    package = module if path.endswith('__init__.py') else module.rsplit('.', 1)[0]
    with open(path) as source:
        tree = ast.parse(source.read())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split('.')
                base = base[:len(base) - node.level + 1]
                target = '.'.join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            names.add(target)
            names.update('%s.%s' % (target, alias.name) for alias in node.names)
    return names


def is_view(name):
    return name == 'sagenb_pyramid.views' or name.startswith('sagenb_pyramid.views.')


def view_imports(package=PACKAGE):
    """``[(importing module, imported view module)]`` that break the layers."""
    found = []
    for module, path in sorted(modules(package).items()):
        if module == 'sagenb_pyramid':
            continue  # main() scans the views: the one place that names them
        for name in sorted(imported(module, path)):
            if is_view(name) and name != module:
                found.append((module, name))
    return found


def test_no_module_imports_a_view_module():
    assert view_imports() == []


def test_the_rule_sees_what_it_forbids(tmp_path):
    """The check finds a view importing a view (by ``from . import``, ``from .x import``
    and an absolute name, also inside a function) and a service importing a view."""
    views = tmp_path / 'views'
    services = tmp_path / 'services'
    for folder in (views, services):
        folder.mkdir()
        (folder / '__init__.py').write_text('')
    (views / 'one.py').write_text('from . import api_error\n')
    (views / 'two.py').write_text('from .one import thing\n')
    (views / 'three.py').write_text(
        'def f():\n    from sagenb_pyramid.views import two\n')
    (views / 'fine.py').write_text('from ..web import api_error\nfrom .. import names\n')
    (services / 'bad.py').write_text('from ..views.one import thing\n')
    offenders = {module for module, _ in view_imports(str(tmp_path))}
    assert offenders == {'sagenb_pyramid.views.one', 'sagenb_pyramid.views.two',
                         'sagenb_pyramid.views.three', 'sagenb_pyramid.services.bad'}


@pytest.mark.parametrize('module', ['sagenb_pyramid.web', 'sagenb_pyramid.aftercommit'])
def test_the_shared_helpers_import_nothing_of_the_project(module):
    """``web`` and ``aftercommit`` sit under everything that uses them."""
    path = modules()[module]
    assert not [n for n in imported(module, path) if n.startswith('sagenb_pyramid')]


def import_circles(package=PACKAGE):
    """Groups of modules that import each other, directly or round a loop (imports
    inside functions count: they only hide a circle)."""
    found = modules(package)
    graph = {}
    for module, path in found.items():
        names = {name for name in imported(module, path) if name in found}
        # ``from package import module`` imports the module; the package itself only
        # as every module's parent, which Python sets up first.
        graph[module] = {name for name in names if name != module and not any(
            other.startswith(name + '.') for other in names)}
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(module):  # Tarjan's strongly connected components
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for name in graph[module]:
            if name not in index:
                visit(name)
                low[module] = min(low[module], low[name])
            elif name in on_stack:
                low[module] = min(low[module], index[name])
        if low[module] == index[module]:
            group = []
            while True:
                name = stack.pop()
                on_stack.discard(name)
                group.append(name)
                if name == module:
                    break
            if len(group) > 1:
                circles.append(sorted(group))
    for module in sorted(graph):
        if module not in index:
            visit(module)
    return circles


def test_no_import_circles_in_the_package():
    assert import_circles() == []


def test_the_circle_check_sees_a_circle(tmp_path):
    package = tmp_path / 'sagenb_pyramid'
    package.mkdir()
    (package / '__init__.py').write_text('')
    (package / 'a.py').write_text('from . import b\n')
    (package / 'b.py').write_text('def f():\n    from .a import thing\n')
    assert import_circles(str(package)) == [['sagenb_pyramid.a', 'sagenb_pyramid.b']]
