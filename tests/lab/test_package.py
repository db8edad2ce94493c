"""The course extras live in cnnlab.lab; the old top-level paths still work for one release,
each with a DeprecationWarning that points at the importer's line."""

import importlib
import subprocess
import sys

import pytest

MOVED = ["filters", "errata", "scaling", "plots_lab", "init_gains"]


@pytest.mark.parametrize("name", MOVED)
def test_old_path_is_the_moved_module_with_a_warning(name, monkeypatch):
    new = importlib.import_module(f"cnnlab.lab.{name}")
    monkeypatch.delitem(sys.modules, f"cnnlab.{name}", raising=False)
    with pytest.warns(DeprecationWarning, match=rf"cnnlab\.{name} moved to cnnlab\.lab\.{name}") \
            as caught:
        exec(compile(f"import cnnlab.{name} as old", "<importer>", "exec"), scope := {})
    assert scope["old"] is new  # the same module object: its state and classes are shared
    assert [w.filename for w in caught] == ["<importer>"]  # one warning, at the import line


def test_from_imports_of_the_old_paths_give_the_new_objects():
    code = ("import warnings; warnings.simplefilter('error', DeprecationWarning)\n"
            "import cnnlab.lab.filters as new\n"
            "try:\n    from cnnlab.filters import get_kernel\n"
            "except DeprecationWarning as w:\n    print('warned:', w)\n"
            "warnings.simplefilter('ignore', DeprecationWarning)\n"
            "from cnnlab import filters\n"
            "from cnnlab.init_gains import XAVIER_GAIN\n"
            "import cnnlab.lab.init_gains as g\n"
            "print(filters is new, XAVIER_GAIN is g.XAVIER_GAIN)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out[0].startswith("warned: cnnlab.filters moved to cnnlab.lab.filters")
    assert out[1] == "True True"


def test_the_library_core_does_not_use_the_old_paths():
    """No module of the package imports a deprecated path (each would warn at every use)."""
    import ast
    import pathlib

    src = pathlib.Path(importlib.import_module("cnnlab").__file__).parent
    old = {f"cnnlab.{name}" for name in MOVED}
    offenders = []
    for path in src.rglob("*.py"):
        if path.parent == src and path.stem in MOVED:
            continue  # the shims themselves
        package = ["cnnlab", *path.relative_to(src).parent.parts]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = package[:len(package) - node.level + 1] if node.level else []
                module = ".".join(base + ([node.module] if node.module else []))
                targets = [module] + [f"{module}.{a.name}" for a in node.names]
            else:
                continue
            if old & set(targets):
                offenders.append(f"{path.relative_to(src)}:{node.lineno}")
    assert offenders == []
