import pytest
import torch

import cnnlab
from cnnlab.registry import get_entry


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

    from .conftest import REPO

    code = ("from cnnlab import registry\nregistry.set_loader(None)\n"
            "print(registry.list_models(), 'cnnlab.models.lenet' in __import__('sys').modules)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"})
    assert res.stdout.strip() == "[] False", res.stderr
