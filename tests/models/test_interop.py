"""cnnlab models outside eager PyTorch: torch.fx, TorchScript, torch.export.

The registry-wide checks (every model traces, scripts and exports to its eager output) are in
tests/models/test_every_model.py, where each model is built once. Here: training mode of the
models with auxiliary heads, the input check under each mechanism, fx feature extraction the way
torchvision's ``create_feature_extractor`` does it, and a scripted model saved and loaded.
"""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.layers import ChannelShuffle, InvertedResidual
from cnnlab.models.base import check_image_batch, main_logits
from cnnlab.models.densenet import DenseNet
from tests.helpers import converted


def outputs(out) -> list[torch.Tensor]:
    return [main_logits(out), *out.aux_logits]


@pytest.fixture(scope="module", params=[
    "googlenet", "inception_v3", pytest.param("googlenet_paper", marks=pytest.mark.slow)])
def aux_model(request):
    torch.manual_seed(0)
    return cnnlab.create_model(request.param, num_classes=5)


@pytest.mark.parametrize("kind", ["fx", "script"])
def test_aux_models_trace_and_script_in_train_mode(aux_model, kind):
    """Training mode returns AuxOutput (logits, aux logits, weights); the traced and scripted
    models return the same numbers under the same dropout seed, and plain logits in eval."""
    model = aux_model.train()
    h, w = model.min_input_size
    x = torch.randn(2, 3, h, w)
    other = torch.fx.symbolic_trace(model) if kind == "fx" else torch.jit.script(model)
    other.train()
    torch.manual_seed(1)
    ref = model(x)
    torch.manual_seed(1)
    out = other(x)
    assert len(outputs(out)) == len(outputs(ref)) == 1 + len(model.aux_weights)
    for a, b in zip(outputs(out), outputs(ref), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert tuple(out.aux_weights) == tuple(ref.aux_weights) == model.aux_weights
    if kind == "script":  # fx fixes the mode at trace time; a scripted model follows .eval()
        other.eval()
        model.eval()
        with torch.no_grad():
            y = other(x)
        assert isinstance(y, torch.Tensor)
        torch.testing.assert_close(y, model(x), rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def alexnet():
    torch.manual_seed(0)
    return cnnlab.create_model("alexnet", num_classes=3).eval()


def test_traced_model_keeps_the_input_check_as_one_call(alexnet):
    traced = torch.fx.symbolic_trace(alexnet)
    checks = [n for n in traced.graph.nodes if n.target is check_image_batch]
    assert len(checks) == 1
    with pytest.raises(cnnlab.InputShapeError,
                       match="alexnet needs inputs of at least 63x63, got 28x28; resize"):
        traced(torch.randn(1, 3, 28, 28))
    with pytest.raises(cnnlab.InputShapeError, match="3-channel input, got 1 channels"):
        traced(torch.randn(1, 1, 64, 64))


def test_scripted_model_raises_the_same_messages(alexnet):
    scripted = torch.jit.script(alexnet)
    with pytest.raises(torch.jit.Error,
                       match="alexnet needs inputs of at least 63x63, got 28x28; resize"):
        scripted(torch.randn(1, 3, 28, 28))
    with pytest.raises(torch.jit.Error, match=r"got a tensor of shape \(3, 64, 64\)"):
        scripted(torch.randn(3, 64, 64))


def test_export_checks_the_example_input(alexnet):
    with pytest.raises(cnnlab.InputShapeError, match="at least 63x63, got 28x28"):
        torch.export.export(alexnet, (torch.randn(1, 3, 28, 28),))


def test_scripted_model_saves_and_loads():
    model = cnnlab.create_model("resnet20").eval()
    x = torch.randn(2, 3, 32, 32)
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(model), buf)
    buf.seek(0)
    loaded = torch.jit.load(buf)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=1e-5, atol=0)


def feature_extractor(model: nn.Module, return_nodes: dict[str, str]) -> torch.fx.GraphModule:
    """What torchvision's ``create_feature_extractor`` does: trace, return the named nodes."""
    traced = torch.fx.symbolic_trace(model)
    nodes = {n.name: n for n in traced.graph.nodes}
    graph = traced.graph
    out = next(n for n in graph.nodes if n.op == "output")
    with graph.inserting_before(out):
        graph.output({key: nodes[name] for name, key in return_nodes.items()})
    graph.erase_node(out)
    graph.eliminate_dead_code()
    traced.recompile()
    return traced


def test_fx_feature_extraction_gives_the_stage_outputs():
    """Intermediate maps from the traced graph equal those seen by forward hooks."""
    torch.manual_seed(0)
    model = cnnlab.create_model("resnet18", num_classes=4).eval()
    extractor = feature_extractor(model, {"layer2_1_relu_1": "c3", "layer4_1_relu_1": "c5"})
    seen = {}
    model.layer2.register_forward_hook(lambda m, i, o: seen.setdefault("c3", o))
    model.layer4.register_forward_hook(lambda m, i, o: seen.setdefault("c5", o))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        feats = extractor(x)
        model(x)
    assert feats["c3"].shape == (2, 128, 8, 8) and feats["c5"].shape == (2, 512, 2, 2)
    for key in ("c3", "c5"):
        torch.testing.assert_close(feats[key], seen[key], rtol=0, atol=0)
    # The classifier is gone from the extractor's graph (dead code after the last map).
    assert not any(n.target == "fc" for n in extractor.graph.nodes)


@pytest.mark.parametrize("kind", ["fx", "script", "export"])
def test_small_densenet_traces_scripts_and_exports(kind):
    """DenseNet's code (dense layers reading a list of maps, blocks, transitions) in a small
    configuration; the registered DenseNets run with -m slow (tests/models/test_every_model.py)."""
    torch.manual_seed(0)
    model = DenseNet(growth_rate=8, block_config=(2, 3), num_init_features=16,
                     num_classes=4).eval()
    x = torch.randn(2, 3, 16, 16)
    other = converted(model, kind, x)
    with torch.no_grad():
        torch.testing.assert_close(other(x), model(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("layout", ["block", "conv"])
def test_inverted_residual_scripts_in_both_layouts(layout):
    torch.manual_seed(0)
    block = InvertedResidual(8, 8, 1, mid_chs=16, se_chs=4, layout=layout).eval()
    assert {k.split(".")[0] for k in block.state_dict()} == {layout}
    x = torch.randn(2, 8, 5, 5)
    torch.testing.assert_close(torch.jit.script(block)(x), block(x), rtol=1e-6, atol=1e-6)


def test_channel_shuffle_traces_to_tensor_ops_only():
    """No Python branch on the shape: the graph is unflatten, transpose, flatten."""
    graph = torch.fx.symbolic_trace(ChannelShuffle(3)).graph
    assert [n.target for n in graph.nodes if n.op == "call_method"] == [
        "unflatten", "transpose", "flatten"]
    x = torch.arange(6.0).view(1, 6, 1, 1)
    assert torch.jit.script(ChannelShuffle(3))(x).flatten().tolist() == [0, 2, 4, 1, 3, 5]


def test_memory_efficient_densenet_runs_eagerly_and_scripts_without_it():
    """The checkpointed bottleneck is eager-only (like torchvision's); it does not stop the
    model from scripting, and in eval mode without gradients the output is the same."""
    torch.manual_seed(0)
    model = DenseNet(growth_rate=8, block_config=(2, 2), num_init_features=16, num_classes=3,
                     memory_efficient=True).eval()
    plain = DenseNet(growth_rate=8, block_config=(2, 2), num_init_features=16, num_classes=3)
    plain.load_state_dict(model.state_dict())
    plain.eval()
    x = torch.randn(2, 3, 16, 16, requires_grad=True)
    y = model(x)
    y.sum().backward()
    assert x.grad is not None
    scripted = torch.jit.script(model)
    torch.testing.assert_close(scripted(x), plain(x), rtol=1e-5, atol=0)
    torch.testing.assert_close(y, plain(x), rtol=1e-5, atol=0)
