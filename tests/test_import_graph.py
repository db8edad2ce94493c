"""The import graph of ``src/cnnlab`` has no cycle, lazy imports included.

Every module's source is read with :mod:`ast` (nothing is imported): each ``import`` and
``from ... import`` statement counts, at the top level and inside functions, methods or
``if TYPE_CHECKING:`` blocks alike (an import hidden in a function still makes the two
modules depend on each other; it only hides the cycle until that function runs). Relative
imports are resolved against the importing module. ``from pkg import name`` is an edge to the
submodule ``pkg.name`` when there is one, to the module a package's lazy exports
(``lazy_exports(__name__, {...})``) name for ``name``, and to ``pkg`` itself otherwise.

Not edges: the implicit import of a module's parent packages (Python runs ``cnnlab/__init__``
before any ``cnnlab.x``; a package ``__init__`` that imports its own submodules is not a
cycle), and ``importlib.import_module`` with a computed name (the catalog's loader of
families; the families import only the registry, which imports no family).
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import REPO

SRC = REPO / "src"
PACKAGE = "cnnlab"


def module_files(src: Path = SRC, package: str = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file of the package."""
    out = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _lazy_names(tree: ast.Module, package: str) -> dict[str, str]:
    """``{public name: absolute module}`` of a package's ``lazy_exports(__name__, TABLE)``."""
    tables = {t.id: node.value for node in tree.body if isinstance(node, ast.Assign)
              for t in node.targets if isinstance(t, ast.Name)
              and isinstance(node.value, ast.Dict)}
    out = {}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "lazy_exports"
                and len(node.args) == 2):
            continue
        table = node.args[1]
        table = tables.get(table.id) if isinstance(table, ast.Name) else table
        if not isinstance(table, ast.Dict):
            continue
        for k, v in zip(table.keys, table.values, strict=True):
            if isinstance(k, ast.Constant) and isinstance(v, ast.Constant):
                out[k.value] = _absolute(v.value, package, is_package=True)
    return out


def _absolute(name: str, module: str, *, is_package: bool, level: int | None = None) -> str:
    """``name`` (relative as ``.x``/``..x``, or with ``level`` dots) resolved in ``module``."""
    if level is None:
        level = len(name) - len(name.lstrip("."))
        name = name.lstrip(".")
    if level == 0:
        return name
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def import_graph(src: Path = SRC, package: str = PACKAGE) -> tuple[dict[str, set[str]], dict]:
    """``(edges, counts)``: module -> the package's modules it imports; counts of import
    statements (``top``: module level, ``function``: inside a function or method)."""
    files = module_files(src, package)
    trees = {m: ast.parse(p.read_text(encoding="utf-8"), str(p)) for m, p in files.items()}
    lazy = {m: _lazy_names(t, m) for m, t in trees.items() if files[m].name == "__init__.py"}
    edges: dict[str, set[str]] = {m: set() for m in files}
    counts = {"top": 0, "function": 0}

    def inside_function(node, parents) -> bool:
        p = parents.get(node)
        while p is not None:
            if isinstance(p, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                return True
            p = parents.get(p)
        return False

    for mod, tree in trees.items():
        is_pkg = files[mod].name == "__init__.py"
        parents = {c: n for n in ast.walk(tree) for c in ast.iter_child_nodes(n)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(node.module or "", mod, is_package=is_pkg, level=node.level)
                targets = []
                for a in node.names:
                    sub = f"{base}.{a.name}"
                    if sub in files:
                        targets.append(sub)
                    elif a.name in lazy.get(base, {}):
                        targets.append(lazy[base][a.name])
                    else:
                        targets.append(base)
            else:
                continue
            if not any(t == package or t.startswith(package + ".") for t in targets):
                continue
            counts["function" if inside_function(node, parents) else "top"] += 1
            for t in targets:
                while t not in files and "." in t:   # `import cnnlab.x.name` of an attribute
                    t = t.rpartition(".")[0]
                if t in files and t != mod:
                    edges[mod].add(t)
    return edges, counts


def components(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan): the modules that
    all import one another, directly or not."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    comps: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return comps


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each component of :func:`components` (a path back to its start)."""
    return [_one_cycle(c, edges) for c in components(edges)]


def _one_cycle(comp: list[str], edges: dict[str, set[str]]) -> list[str]:
    """A shortest path from the component's first module back to itself (breadth first)."""
    start, members = comp[0], set(comp)
    prev: dict[str, str] = {}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(edges[v] & members):
            if w == start:
                path = [v]
                while path[-1] != start:
                    path.append(prev[path[-1]])
                return [start, *reversed(path[:-1]), start] if len(path) > 1 else [start, start]
            if w not in prev:
                prev[w] = v
                queue.append(w)
    return comp


def test_the_walker_sees_lazy_relative_and_package_imports(tmp_path):
    """The graph builder itself: a function-level relative import closes a cycle, a lazy
    export of a package counts as an import of its module."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text(
        "from ._lazy import lazy_exports\n_L = {'thing': '.b'}\n"
        "__getattr__, __dir__ = lazy_exports(__name__, _L)\n")
    (pkg / "_lazy.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("def f():\n    from .sub.c import g\n    return g\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "c.py").write_text("def g():\n    from .. import thing\n")
    edges, counts = import_graph(tmp_path, "pkg")
    assert edges["pkg.a"] == {"pkg.b"} and edges["pkg.b"] == {"pkg.sub.c"}
    assert edges["pkg.sub.c"] == {"pkg.b"}            # through the lazy export
    assert counts == {"top": 2, "function": 2}
    assert cycles(edges) == [["pkg.b", "pkg.sub.c", "pkg.b"]]
    (pkg / "sub" / "c.py").write_text("def g():\n    return 1\n")
    assert cycles(import_graph(tmp_path, "pkg")[0]) == []


def test_no_import_cycle():
    edges, counts = import_graph()
    comps = components(edges)
    print(f"{len(edges)} modules, {sum(map(len, edges.values()))} edges; cnnlab imports: "
          f"{counts['top']} at module level, {counts['function']} inside functions; "
          f"{len(comps)} cycles")
    assert not comps, "import cycles (a path back to its start; all the modules in it):\n" + \
        "\n".join(f"{' -> '.join(_one_cycle(c, edges))}\n  ({len(c)} modules: {', '.join(c)})"
                  for c in comps)


def test_generic_modules_import_no_family_and_families_no_other_family():
    """What a family knows stays in its file: the generic modules import no family (only the
    contract, models/base.py), and no family imports another (shared blocks are layers.py's)."""
    edges, _ = import_graph()
    families = {m for m in edges if m.startswith("cnnlab.models.")} - {"cnnlab.models.base"}
    generic = ("cnnlab.registry", "cnnlab.build", "cnnlab.factory", "cnnlab.features",
               "cnnlab.pretrained", "cnnlab.weights", "cnnlab.analysis.keras")
    assert {g: sorted(edges[g] & families) for g in generic} == {g: [] for g in generic}
    assert {f: sorted(edges[f] & families) for f in families} == {f: [] for f in families}
