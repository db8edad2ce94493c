"""What each entry point imports: the commands that need no torch must not load it.

Every check runs in a fresh interpreter (``sys.modules`` of the test process is full of
torch already) and reports which of the heavy modules got imported.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cnnlab.cli import COMMANDS
from tests.helpers import REPO

HEAVY = ("torch", "cnnlab.models.lenet", "cnnlab.models.resnet", "cnnlab.scratch")


def loaded_after(code: str, cwd=None) -> dict:
    """Run ``code`` in a fresh interpreter; which HEAVY modules were imported, and its output."""
    probe = (f"import sys, json\n{code}\n"
             f"print('\\n@@' + json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    env = {"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin", "COLUMNS": "120"}
    res = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         env=env, cwd=cwd, timeout=300)
    assert res.returncode == 0, res.stderr
    out, _, mods = res.stdout.rpartition("\n@@")
    return {"modules": json.loads(mods), "stdout": out}


def cli(*args: str) -> str:
    """Code that runs ``cnnlab ARGS`` in-process as the ``cnnlab`` process does
    (``own_process=True``: torch is imported up front unless the command declares it needs
    none) and keeps going after its exit."""
    return (f"from cnnlab.cli import main\n"
            f"try:\n    rc = main({list(args)!r}, own_process=True)\n"
            f"except SystemExit as e:\n    rc = e.code\n"
            f"assert rc in (0, None), rc")


@pytest.mark.parametrize("args", [("--help",), ("scratch", "train", "--help")]
                         + [(name, "--help") for name in COMMANDS],
                         ids=lambda a: " ".join(a))
def test_help_does_not_import_torch(args):
    res = loaded_after(cli(*args))
    assert res["modules"] == [], f"cnnlab {' '.join(args)} imported {res['modules']}"
    assert "usage: cnnlab" in res["stdout"]


@pytest.mark.parametrize("args", [("cost",), ("cost", "--input", "112x112x32", "--json"),
                                  ("filter", "--list"), ("list",), ("list", "resnet*")],
                         ids=lambda a: " ".join(a))
def test_commands_without_torch(args):
    res = loaded_after(cli(*args))
    assert res["modules"] == [], f"cnnlab {' '.join(args)} imported {res['modules']}"
    assert res["stdout"].strip()


def test_filter_on_an_image_without_torch(tmp_path):
    from PIL import Image

    Image.new("L", (12, 10), 128).save(tmp_path / "grey.png")
    res = loaded_after(cli("filter", "grey.png", "--kernel", "sobel-x", "--figure", "none"),
                       cwd=tmp_path)
    assert res["modules"] == []
    assert (tmp_path / "grey_sobel-x.png").exists()


def test_scratch_train_without_torch(tmp_path):
    res = loaded_after(cli("scratch", "train", "--epochs", "1", "-o", str(tmp_path / "np")))
    assert res["modules"] == ["cnnlab.scratch"]
    assert (tmp_path / "np").is_dir()


def test_the_package_and_the_numpy_engine_import_no_torch():
    res = loaded_after("import cnnlab, cnnlab.errors, cnnlab.registry, cnnlab.lab.filters\n"
                       "import cnnlab.scratch.layers, cnnlab.scratch.model\n"
                       "from cnnlab.analysis.cost import conv_cost\n"
                       "from cnnlab.training.config import TrainConfig\n"
                       "from cnnlab.data import FORMATS\n"
                       "print(set(cnnlab.__all__) <= set(dir(cnnlab)))")
    assert res["modules"] == ["cnnlab.scratch"]
    assert res["stdout"].strip() == "True"  # dir() shows every public name before it is loaded


def test_every_public_name_still_works():
    import cnnlab

    for name in cnnlab.__all__:
        assert getattr(cnnlab, name) is not None, name
    assert cnnlab.create_model.__module__ == "cnnlab.factory"   # issue 21: above the registry
    from cnnlab.registry import create_model  # the old home of the name keeps working
    assert create_model is cnnlab.create_model
    assert cnnlab.summary.__module__ == "cnnlab.analysis.summary"
    from cnnlab import AuxOutput, UnknownModelError, count_macs  # noqa: F401
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        cnnlab.no_such_name  # noqa: B018


def test_a_lookup_imports_only_the_family_it_needs():
    res = loaded_after("import cnnlab\nm = cnnlab.create_model('lenet5')\n"
                       "print(type(m).__name__)")
    assert res["modules"] == ["torch", "cnnlab.models.lenet"]  # not resnet, not the engine
    assert res["stdout"].strip() == "LeNet5"
    res = loaded_after("import cnnlab\nprint(len(cnnlab.list_models()))")
    assert "cnnlab.models.resnet" in res["modules"]  # a listing registers every family


def test_analysis_functions_survive_their_submodule_import():
    """``cnnlab.analysis.summary`` is the function even after ``cnnlab.analysis.summary``
    (the module) was imported: Python's submodule import would otherwise replace it."""
    code = ("import importlib, cnnlab.analysis as a\n"
            "importlib.import_module('cnnlab.analysis.receptive_field')\n"
            "importlib.import_module('cnnlab.analysis.summary')\n"
            "assert callable(a.receptive_field) and callable(a.summary), (a.summary,)\n"
            "assert a.summary.__module__ == 'cnnlab.analysis.summary'\n")
    loaded_after(code)
