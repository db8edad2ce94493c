
import numpy as np
import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.errors import CnnlabError, ModelArgumentError
from cnnlab.registry import get_entry
from tests.helpers import one_line_error, run_main


def test_list_models_is_sorted_and_filters_with_wildcards():
    names = cnnlab.list_models()
    assert names == sorted(names)
    assert "lenet5" in names
    assert cnnlab.list_models("lenet*") == [n for n in names if n.startswith("lenet")]
    assert cnnlab.list_models("no-such-model-*") == []


def test_unknown_model_suggests_close_names():
    with pytest.raises(cnnlab.UnknownModelError) as err:
        cnnlab.create_model("lenet")
    assert "unknown model 'lenet'" in str(err.value)
    assert "lenet5" in str(err.value)
    assert isinstance(err.value, KeyError)  # callers catching KeyError keep working


def test_unknown_keyword_names_the_model_and_the_argument():
    with pytest.raises(TypeError, match=r"lenet5 does not take the argument 'colour'"):
        cnnlab.create_model("lenet5", colour="red")


def test_none_keywords_are_dropped_so_defaults_apply():
    model = cnnlab.create_model("lenet5", num_classes=None)
    assert model.num_classes == 10


def test_duplicate_registration_is_refused():
    with pytest.raises(ValueError, match="duplicate model name 'lenet5'"):
        cnnlab.register_model(get_entry("lenet5").builder)


def test_every_entry_has_family_input_size_and_doc():
    for name in cnnlab.list_models():
        entry = get_entry(name)
        assert entry.family, name
        c, h, w = entry.input_size
        assert c > 0 and h > 0 and w > 0, name
        assert entry.doc, f"{name} has no one-line docstring"


def test_created_model_knows_its_name():
    assert cnnlab.create_model("lenet5").model_name == "lenet5"
    with torch.device("meta"):
        assert cnnlab.create_model("lenet5").model_name == "lenet5"


def test_catalog_index_is_up_to_date():
    """``cnnlab list`` prints the generated index; it must equal what the code builds."""
    from cnnlab import catalog
    from cnnlab._catalog_data import MODELS

    fresh = catalog.build_index()
    stale = sorted(n for n in set(MODELS) | set(fresh) if MODELS.get(n) != fresh.get(n))
    assert not stale, (f"the catalog index is stale for {stale}; regenerate it with\n"
                       f"  {catalog.REGENERATE}")


def test_catalog_counts_agree_with_real_builds_and_published_figures():
    from cnnlab._catalog_data import MODELS

    assert MODELS["lenet5"]["params"] == 61_706              # by hand: see models/lenet.py
    assert MODELS["resnet18"]["params"] == 11_689_512        # torchvision's metadata
    assert MODELS["efficientnet_b0"]["params"] == 5_288_548  # torchvision's metadata
    real = cnnlab.create_model("resnet20")                   # a real build, not the meta one
    assert MODELS["resnet20"]["params"] == sum(p.numel() for p in real.parameters())
    assert MODELS["resnet20"]["input_size"] == (3, 32, 32)


def test_the_registry_itself_imports_no_family():
    import subprocess
    import sys

    from tests.helpers import REPO

    code = ("from cnnlab import registry\nregistry.set_loader(None)\n"
            "print(registry.list_models(), 'cnnlab.models.lenet' in __import__('sys').modules)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"})
    assert res.stdout.strip() == "[] False", res.stderr


# moved from tests/test_hardening.py (issue 13)
# ------------------------------------------------------------------ model arguments (item 3)


@pytest.mark.parametrize("model,arg,needles", [
    ("lenet5", "nosuch=1", ["lenet5 does not take the argument 'nosuch'", "activation"]),
    ("mobilenet_v1", "width_mult=abc",
     ["mobilenet_v1's argument 'width_mult' takes a number, got 'abc'"]),
])
def test_cli_bad_model_arg_is_one_line(capsys, tmp_path, model, arg, needles):
    res = run_main(capsys, "train", model, "--model-arg", arg, "--epochs", "1", "--runs-dir",
                   tmp_path / "runs")
    one_line_error(res, "cnnlab train: error: ", *needles)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_model_argument_errors_are_user_errors_but_builder_bugs_are_not():
    with pytest.raises(ModelArgumentError, match="resnet20 does not take the argument 'x'"):
        cnnlab.create_model("resnet20", x=1)
    with pytest.raises(ModelArgumentError, match="'stem' takes a string, got 3"):
        cnnlab.create_model("resnet20", stem=3)
    with pytest.raises(ModelArgumentError, match="resnet20 sets 'layers' itself"):
        cnnlab.create_model("resnet20", layers=(1, 1, 1))
    with pytest.raises(ModelArgumentError, match="'num_classes' takes an integer, got 2.5"):
        cnnlab.create_model("lenet5", num_classes=2.5)
    assert isinstance(ModelArgumentError("x"), TypeError)  # `except TypeError` still works
    # a value of the right type that the model refuses is its own ValueError, as before
    with pytest.raises(ValueError, match="width_mult"):
        cnnlab.create_model("mobilenet_v1", width_mult=-1.0)
    # an int where a float is annotated, and a NumPy float, are accepted
    with torch.device("meta"):
        cnnlab.create_model("mobilenet_v1", width_mult=1, dropout=np.float64(0.5))

    # A TypeError raised by a builder's own code (a programming error) stays a plain
    # TypeError with its traceback: it is not a CnnlabError.
    from cnnlab import registry

    @registry.register_model(input_size=(1, 8, 8))
    def _broken_for_test(**kwargs) -> nn.Module:
        return len(5)  # TypeError: object of type 'int' has no len()

    try:
        with pytest.raises(TypeError, match="has no len") as err:
            cnnlab.create_model("_broken_for_test", num_classes=3)
        assert not isinstance(err.value, CnnlabError)
    finally:
        del registry._MODELS["_broken_for_test"]


# moved from tests/test_hardening2.py (issue 22)
def test_catalog_describes_where_resnet50_puts_its_stride():
    from cnnlab._catalog_data import MODELS

    for name in ("resnet50", "resnet101", "resnet152"):
        doc = MODELS[name]["doc"]
        assert "stride in the 3x3" in doc and "stride_in_1x1=True: the paper's" in doc, doc
    block = cnnlab.create_model("resnet50").layer2[0]
    assert block.conv1.stride == (1, 1) and block.conv2.stride == (2, 2)  # what it says


@pytest.mark.parametrize("call,needle", [
    (lambda: cnnlab.create_model(None), "the argument 'name' takes a model name"),
    (lambda: cnnlab.list_models(123), "list_models' argument 'pattern' takes a string"),
])
def test_python_api_names_the_argument(call, needle):
    from cnnlab.errors import ModelArgumentError

    with pytest.raises(ModelArgumentError, match=needle):
        call()
