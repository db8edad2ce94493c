"""docs/adding_a_family.md's worked example is a whole family: its file, run as it is written
in the page, registered in a temporary registry, works with summary, features_only and
weights= without any other file of cnnlab knowing it."""

from __future__ import annotations

import re
import sys
import types

import pytest
import torch
from safetensors.torch import save_file

import cnnlab
from cnnlab import registry
from cnnlab.data.config import data_config
from cnnlab.errors import ModelArgumentError
from tests.helpers import REPO

PAGE = REPO / "docs" / "adding_a_family.md"


def family_source() -> str:
    """The page's first Python block: the family file."""
    return re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.S)[0]


@pytest.fixture
def tinynet():
    """The example family, imported as the module ``tinynet`` for the test's duration."""
    module = types.ModuleType("tinynet")
    with registry.temporary_registrations():
        sys.modules["tinynet"] = module
        try:
            exec(compile(family_source(), str(PAGE), "exec"), module.__dict__)
            yield module
        finally:
            del sys.modules["tinynet"]
    assert cnnlab.list_models("tinynet*") == []


def test_the_example_family_registers_and_builds(tinynet):
    assert cnnlab.list_models("tinynet*") == ["tinynet_m", "tinynet_s"]
    entry = cnnlab.get_entry("tinynet_m")
    assert entry.family == "tinynet" and entry.input_size == (3, 32, 32)
    assert data_config("tinynet_s").resize == 36          # declared in the family file
    model = cnnlab.create_model("tinynet_m", num_classes=3)
    assert model.model_name == "tinynet_m" and model(torch.randn(2, 3, 32, 32)).shape == (2, 3)
    with pytest.raises(ModelArgumentError, match="tinynet_s sets 'widths' itself"):
        cnnlab.create_model("tinynet_s", widths=(4, 4))
    with pytest.raises(ModelArgumentError, match="tinynet_s does not take the argument 'x'"):
        cnnlab.create_model("tinynet_s", x=1)


def test_summary_and_features_of_the_example(tinynet):
    s = cnnlab.summary(cnnlab.create_model("tinynet_s"), (3, 32, 32))
    convs = 3 * 3 * (3 * 8 * 16 * 16 + 8 * 16 * 8 * 8)      # two strided 3x3 convolutions
    assert s.macs == convs + 16 * 10                   # and the classifier
    feats = cnnlab.create_model("tinynet_s", features_only=True)
    assert feats.feature_info.channels() == [8, 16]
    assert feats.feature_info.reduction() == [2, 4]
    maps = feats(torch.randn(1, 3, 32, 32))
    assert [tuple(m.shape) for m in maps] == [(1, 8, 16, 16), (1, 16, 8, 8)]


def test_weights_in_the_family_s_other_layout_load(tinynet, tmp_path):
    torch.manual_seed(0)
    source = cnnlab.create_model("tinynet_s", num_classes=4).eval()
    old = {("head." + k[3:]) if k.startswith("fc.") else k: v
           for k, v in source.state_dict().items()}
    save_file(old, tmp_path / "tinynet_v01.safetensors")
    lines = []
    loaded = cnnlab.load_pretrained(cnnlab.create_model("tinynet_s", num_classes=4),
                                    tmp_path / "tinynet_v01.safetensors", log=lines.append)
    assert any("TinyNet 0.1's layout" in n for n in loaded.notes)
    model = cnnlab.create_model("tinynet_s", weights=tmp_path / "tinynet_v01.safetensors")
    assert model.num_classes == 4                            # read from the file
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(model.eval()(x), source(x))
