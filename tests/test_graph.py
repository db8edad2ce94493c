"""The traced forward graph: every call once with its true shape, and the rows read from it."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.analysis.summary import summary
from cnnlab.graph import INPUT, trace_graph
from tests.helpers.nets import TinyInception, TinyResNet

MODELS = cnnlab.list_models()


def meta_model(name):
    with torch.device("meta"):
        return cnnlab.create_model(name)


def small_size(model):
    h, w = (max(v, 32) for v in model.min_input_size)
    return model.in_chans, h, w


def hooked_shapes(model, size):
    """Every module call's output shape by plain forward hooks, per module in call order:
    a record independent of the graph's dispatch-level trace."""
    shapes: dict[str, list] = {}
    names = {}
    for n, m in model.named_modules():
        names.setdefault(m, n)

    def post(mod, args, out):
        ts = [t for t in torch.utils._pytree.tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
        shape = tuple(ts[0].shape) if len(ts) == 1 else tuple(tuple(t.shape) for t in ts)
        shapes.setdefault(names[mod], []).append(shape)

    handles = [m.register_forward_hook(post) for m in names]
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *size, device="meta"))
    finally:
        for h in handles:
            h.remove()
    return shapes


def _shape_str(shape):
    if shape and isinstance(shape[0], tuple):
        return ", ".join(_shape_str(s) for s in shape)
    return "x".join(str(d) for d in shape[1:]) or "scalar"


@pytest.mark.parametrize("name", MODELS)
def test_every_row_has_the_shape_of_its_call(name):
    model = meta_model(name)
    size = small_size(model)
    expected = hooked_shapes(model, size)
    s = summary(model, size)
    g = s.graph
    checked = 0
    for r in s.rows:
        if r.kind in ("module", "group") and r.calls:
            assert r.output_shape == _shape_str(expected[r.name][r.call - 1]), (name, r.key)
            checked += 1
    # one row per call of every module that ran, and no call lost
    assert checked == sum(len(v) for k, v in expected.items() if k), name
    # every node's inputs come before it; MACs and other ops add up to the totals
    ids = [n.id for n in g.nodes]
    assert ids == list(range(len(ids)))
    assert all(i == INPUT or i < n.id for n in g.nodes for i in n.inputs), name
    assert sum(n.macs for n in g.nodes) == g.macs == s.macs
    assert sum(n.other_ops for n in g.nodes) == g.other_ops
    unique = {id(p): p for p in model.parameters()}
    ran_params = sum(n.params for n in g.nodes) + sum(x.own_params for x in g.groups())
    assert ran_params <= s.total_params == sum(p.numel() for p in unique.values())
    json.dumps(g.to_dict())


def test_a_module_called_three_times_is_three_nodes():
    model = meta_model("resnet50")
    g = trace_graph(model, (3, 64, 64))
    relus = g.find("layer1.0.relu")
    assert [n.call for n in relus] == [0, 1, 2] and all(n.calls == 3 for n in relus)
    # after bn1, after bn2, after the residual add: each with its own shape
    sources = [g.node(n.inputs[0]).name for n in relus]
    assert sources == ["layer1.0.bn1", "layer1.0.bn2", "layer1.0.add"]
    assert [n.shape[1:] for n in relus] == [(64, 16, 16), (64, 16, 16), (256, 16, 16)]
    last = g.find("layer4.2.relu")
    assert [n.shape[1] for n in last] == [512, 512, 2048]
    add = g.find("layer1.0.add")[0]
    assert add.kind == "function" and {g.node(i).name for i in add.inputs} == {
        "layer1.0.bn3", "layer1.0.downsample.1"}
    assert add.label == "residual add (projection shortcut)"
    assert g.find("layer1.1.add")[0].label == "residual add (identity shortcut)"
    # the stem's ReLU, between bn1 and the max-pool
    stem = g.find("relu")
    assert len(stem) == 1 and g.node(stem[0].inputs[0]).name == "bn1"
    assert g.node(g.find("maxpool")[0].inputs[0]).name == "relu"


def test_resnet50_summary_rows_show_every_relu_with_its_shape():
    s = summary(meta_model("resnet50"), (3, 224, 224))
    block = [r for r in s.rows if r.name.startswith("layer1.0.")
             and not r.name.startswith("layer1.0.downsample")]
    relus = [r for r in block if r.name == "layer1.0.relu"]
    assert [(r.call, r.output_shape) for r in relus] == [
        (1, "64x56x56"), (2, "64x56x56"), (3, "256x56x56")]
    # at the default depth each ReLU shows in the row of what it follows
    shown = {r.name: r for r in s.visible_rows()}
    assert shown["layer1.0.bn1"].type == shown["layer1.0.bn2"].type == "BatchNorm2d+ReLU"
    assert shown["layer1.0.add"].type == "add+ReLU"
    assert shown["layer1.0.add"].output_shape == "256x56x56"
    assert shown["bn1"].type == "BatchNorm2d+ReLU"   # the stem's first ReLU
    assert "bottleneck" in shown["layer1.0"].label


def test_googlenet_inception_shows_four_branches_with_the_max_pool():
    model = meta_model("googlenet")
    s = summary(model, (3, 224, 224))
    shown = {r.name: r for r in s.visible_rows()}
    for block in ("inception3a", "inception4e", "inception5b"):
        branches = [n for n in shown if n.startswith(block + ".branch") and n.count(".") == 1]
        assert branches == [f"{block}.branch{i}" for i in (1, 2, 3, 4)], block
        pool = shown[f"{block}.branch4.0"]
        assert pool.type == "MaxPool2d" and pool.label == "max-pool 3x3"
        assert "4 parallel branches" in shown[block].label and "max-pool 3x3" in shown[block].label
        cat = shown[f"{block}.cat"]
        assert cat.kind == "function" and cat.output_shape == shown[block].output_shape
    g = s.graph
    cat = g.find("inception3a.cat")[0]
    assert [g.node(i).module.split(".")[1] for i in cat.inputs] == [
        "branch1", "branch2", "branch3", "branch4"]


@pytest.mark.parametrize("name,labels", [
    ("mobilenet_v2", {"features.2": ["inverted residual", "expansion 1x1 (x6)",
                                     "depthwise 3x3, stride 2", "pointwise 1x1"]}),
    ("efficientnet_b0", {"features.2.0": ["inverted residual", "expansion", "depthwise 3x3",
                                          "squeeze-excite", "pointwise 1x1"]}),
    ("mobilenet_v1", {}),
    ("densenet121", {"features.transition1": ["transition"],
                     "features.denseblock1.denselayer1": ["bottleneck 1x1"]}),
])
def test_slide_labels_at_the_default_depth(name, labels):
    s = summary(meta_model(name), cnnlab.get_entry(name).input_size)
    shown = {r.name: r for r in s.visible_rows()}
    for row, words in labels.items():
        for w in words:
            assert w in shown[row].label, (row, w, shown[row].label)
    text = " ".join(r.role for r in s.visible_rows())
    if name == "mobilenet_v1":
        assert "depthwise 3x3" in text and "pointwise 1x1" in text


def test_labels_from_configuration():
    g = trace_graph(TinyInception(), (4, 8, 8))
    by = {n.name: n for n in g.nodes}
    assert by["b.dw"].label == "depthwise 3x3"
    assert by["b.grouped"].label == "grouped 3x3 (2 groups)"
    assert by["cat"].label == "concatenate 2" and by["mean"].label == "global average pool"
    model = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.Conv2d(8, 16, 1), nn.Conv2d(16, 64, 1), nn.ReLU(),
                          nn.Conv2d(64, 64, 3, groups=64))
    by = {n.name: n for n in trace_graph(model, (8, 6, 6)).nodes}
    assert by["3"].label == "pointwise 1x1"                      # after a depthwise
    assert by["4"].label == "expansion 1x1 (x4)"                 # before a depthwise


def test_dense_layer_bottleneck_and_transition_labels():
    s = summary(meta_model("densenet121"), (3, 64, 64))
    nodes = {n.key: n for n in s.graph.nodes}
    assert nodes["features.denseblock1.denselayer1.conv1"].label.startswith("bottleneck 1x1")
    assert nodes["features.transition1.conv"].label == "transition 1x1 (256 -> 128)"
    assert nodes["features.transition1.pool"].label.startswith("transition average-pool 2x2")


def test_whole_input_field_is_explained(cli):
    res = cli("summary", "efficientnet_b0", "--receptive-field")
    assert res.returncode == 0, res.stderr
    note = res.stdout.splitlines()[-1]
    assert note.startswith("* from features.1.0.block.1.avgpool on") and "squeeze-excite" in note
    res = cli("summary", "lenet5", "--receptive-field")
    assert "* from features.c5 on, the receptive field (32x32) exceeds the 32x32 input" \
        in res.stdout


def test_tiny_residual_graph_by_hand():
    g = trace_graph(TinyResNet(), (3, 8, 8))
    names = [n.key for n in g.nodes]
    assert names == ["stem", "layer1.conv1", "layer1.bn1", "layer1.relu", "layer1.conv2",
                     "layer1.bn2", "layer1.add", "layer1.relu#2", "layer2.conv1",
                     "layer2.bn1", "layer2.relu", "layer2.conv2", "layer2.bn2", "layer2.down",
                     "layer2.add", "layer2.relu#2", "pool", "fc"]
    by = {n.key: n for n in g.nodes}
    assert by["layer1.add"].inputs == (by["stem"].id, by["layer1.bn2"].id)
    assert by["stem"].inputs == (INPUT,)
    assert by["fc"].depth == g.depth == 6 and by["layer2.down"].depth == 4
    assert by["layer2.down"].rf.size == (7, 7) and by["layer2.conv2"].rf.size == (13, 13)
    assert g.outputs == (by["fc"].id,)


def test_cli_json_rows_carry_kind_call_and_role(cli):
    res = cli("summary", "mobilenet_v2", "--json")
    assert res.returncode == 0, res.stderr
    layers = json.loads(res.stdout)["layers"]
    by = {r["key"]: r for r in layers}
    assert by["features.2"]["kind"] == "group"
    assert by["features.2"]["label"].startswith("inverted residual: expansion 1x1 (x6)")
    assert by["features.3.add"]["kind"] == "function"
    assert by["features.3.add"]["label"] == "residual add (identity shortcut)"
    assert by["features.0.1"]["type"] == "BatchNorm2d+ReLU6"
    text = cli("summary", "mobilenet_v2").stdout
    assert "depthwise 3x3, stride 2" in text and "pointwise 1x1" in text and "Role" in text
