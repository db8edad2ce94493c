"""The summary: LeNet-5's slide shapes, totals, depth, nested and branching models, the CLI."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.analysis.summary import summary
from tests.helpers.nets import AuxNet, TinyInception, TinyResNet, vgg16

MODELS = cnnlab.list_models()

# Depth as the papers count it: weighted layers (conv + linear) on the longest path.
PAPER_DEPTHS = {"lenet5": 5, "alexnet": 8, "vgg11": 11, "vgg13": 13, "vgg16": 16, "vgg19": 19,
                "vgg16_bn": 16, "resnet18": 18, "resnet34": 34, "resnet50": 50,
                "resnet101": 101, "resnet152": 152, "googlenet": 22}


def rows_by_name(s, depth=3):
    return {r.name: r for r in s.visible_rows(depth)}


def test_lenet5_rows_are_the_slides():
    s = summary(cnnlab.create_model("lenet5"), (1, 32, 32))
    rows = rows_by_name(s)
    # The slide: C1 6@28x28, S2 6@14x14, C3 16@10x10, S4 16@5x5, C5 120 (maps of 1x1), F6 84,
    # output 10.
    shapes = {k: rows[k].output_shape for k in ("features.c1", "features.s2", "features.c3",
                                                  "features.s4", "features.c5", "f6", "output")}
    assert shapes == {"features.c1": "6x28x28", "features.s2": "6x14x14",
                      "features.c3": "16x10x10", "features.s4": "16x5x5",
                      "features.c5": "120x1x1", "f6": "84", "output": "10"}
    params = {k: rows[k].params for k in shapes}
    assert params == {"features.c1": 156, "features.s2": 0, "features.c3": 2416,
                      "features.s4": 0, "features.c5": 48120, "f6": 10164, "output": 850}
    # activations hold no parameters and keep the shape: no row
    assert "features.act1" not in rows and "act6" not in rows
    assert [r.name for r in s.visible_rows()] == ["features", "features.c1", "features.s2",
                                                  "features.c3", "features.s4", "features.c5",
                                                  "f6", "output"]
    assert s.total_params == s.trainable_params == 61_706 and s.non_trainable_params == 0
    assert s.param_bytes == 61_706 * 4 and round(s.size_mb, 4) == round(246_824 / 2**20, 4)
    assert s.macs == 416_520 and s.flops == 833_040
    assert s.depth == 5    # C1, C3, C5, F6, output


def test_depth_changes_only_the_display():
    s = summary(cnnlab.create_model("lenet5"), (1, 32, 32))
    shallow = [r.name for r in s.visible_rows(1)]
    assert shallow == ["features", "f6", "output"]
    assert s.to_dict(1)["total_params"] == s.to_dict(3)["total_params"] == 61_706
    assert sum(r.params for r in s.visible_rows(1)) == 61_706
    assert sum(r.macs for r in s.visible_rows(1)) == 416_520


def test_footer_names_units_and_conventions():
    text = str(summary(cnnlab.create_model("lenet5"), (1, 32, 32)))
    for needle in ["Total params: 61,706", "Trainable params: 61,706",
                   "Non-trainable params: 0", "Buffers: 0", "Params size (float32): 0.24 MB",
                   "MACs: 416,520", "FLOPs: 833,040", "= 2 x MACs", "Other ops:",
                   "Depth: 5 weighted layers", "longest input-to-output path"]:
        assert needle in text, needle


def test_residual_net_depth_by_arithmetic():
    # stem (1) + layer1 two convs (2) + layer2 two convs (2) + fc (1) = 6; the projection
    # shortcut path stem-layer1-down-fc has 5.
    s = summary(TinyResNet(), (3, 8, 8))
    assert s.depth == 6
    rows = rows_by_name(s)
    assert rows["layer2"].output_shape == "16x4x4" and rows["layer2.down"].params == 8 * 16
    # BN running mean and var: 8+8 per BN of layer1 (x2), 16+16 per BN of layer2 (x2), plus one
    # num_batches_tracked per BN.
    assert s.buffer_elements == 2 * 16 + 2 * 32 + 4
    # conv 8->8 3x3 (no bias) 576 params; BN 16 (weight, bias).
    assert rows["layer1.conv1"].params == 8 * 8 * 9 and rows["layer1.bn1"].params == 16


def test_branching_model_depth_and_concat():
    # longest branch: reduce, dw, grouped (3) + the final matmul (1) = 4
    s = summary(TinyInception(), (4, 8, 8))
    assert s.depth == 4
    rows = rows_by_name(s)
    assert rows["a"].output_shape == "6x8x8" and rows["b"].output_shape == "8x8x8"
    assert rows["b.dw"].params == 4 * 9 + 4 and rows["b.grouped"].params == 8 * 2 * 9 + 8
    # the bare Parameter the model holds itself is counted in the totals
    assert s.total_params == (4 * 6 + 6) + (16 + 4) + (36 + 4) + (144 + 8) + 14 * 5


def test_aux_outputs_eval_and_training():
    net = AuxNet().train()
    s = summary(net, (1, 6, 6))
    rows = rows_by_name(s)
    assert rows["aux"].output_shape == "(not run)" and rows["aux"].params == 4 * 3 + 3
    assert s.total_params == (9 * 4 + 4) + 8 + 15 + 15
    assert s.output_shapes == [(1, 3)]
    assert net.training and net.bn.num_batches_tracked.item() == 0
    st = summary(net, (1, 6, 6), training=True)
    assert st.output_shapes == [(1, 3), (1, 3)]          # AuxOutput: logits and aux logits
    assert rows_by_name(st)["aux"].output_shape == "3"
    assert net.bn.num_batches_tracked.item() == 0 and torch.all(net.bn.running_mean == 0)


def test_frozen_and_shared_parameters():
    shared = nn.Linear(4, 4)
    model = nn.Sequential(nn.Flatten(), shared, nn.ReLU(), shared, nn.Linear(4, 2))
    model[4].weight.requires_grad_(False)
    s = summary(model, (1, 2, 2))
    assert s.total_params == 20 + 10                   # the shared layer counts once
    assert s.non_trainable_params == 8 and s.trainable_params == 22
    assert rows_by_name(s)["1"].calls == 2


def test_vgg16_depth_on_meta():
    with torch.device("meta"):
        model = vgg16()
    s = summary(model, (3, 224, 224))
    assert s.depth == 16 and s.total_params == 138_357_544


def frontier(s, depth):
    """The rows a reader adds up at one display depth: the visible rows at that depth, and the
    visible rows above it that have no children."""
    rows = s.visible_rows(depth)
    return [r for r in rows
            if r.level == depth or not any(x.name.startswith(r.name + ".") for x in s.rows)]


@pytest.mark.parametrize("name", MODELS)
def test_every_model_summary_rows_add_up_at_every_depth(name):
    with torch.device("meta"):
        model = cnnlab.create_model(name)
    h, w = (max(v, 32) for v in model.min_input_size)
    s = summary(model, (model.in_chans, h, w), depth=1)
    unique = {id(p): p for p in model.parameters()}
    assert s.total_params == sum(p.numel() for p in unique.values())
    assert s.depth >= 1 and s.macs > 0
    deepest = max(r.level for r in s.rows)
    for d in range(1, deepest + 1):
        rows = frontier(s, d)
        assert sum(r.params for r in rows) == s.total_params, (name, d)
        assert sum(r.macs for r in rows) == s.macs, (name, d)
    # a module that ran (even through a slice of it) is never shown as "(not run)"
    assert not [r.name for r in s.rows if r.output_shape == "(not run)" and r.macs]
    json.dumps(s.to_dict())


def test_alexnet_classifier_ran_and_rows_add_up():
    # torchvision's AlexNet runs ``classifier[:-1]`` (a new Sequential) then ``classifier[-1]``:
    # the classifier ran. Its MACs: 9216*4096 + 4096*4096 + 4096*1000.
    with torch.device("meta"):
        model = cnnlab.create_model("alexnet")
    s = summary(model, (3, 224, 224), depth=1)
    rows = rows_by_name(s, 1)
    assert rows["classifier"].output_shape == "1000"
    assert rows["classifier"].macs == 9216 * 4096 + 4096 * 4096 + 4096 * 1000
    assert rows["features"].macs + rows["classifier"].macs == s.macs


def test_vgg11_lrn_shows_its_lrn_layer():
    with torch.device("meta"):
        model = cnnlab.create_model("vgg11_lrn")
    rows = summary(model, (3, 224, 224)).visible_rows(2)
    lrn = [r for r in rows if r.type == "LocalResponseNorm"]
    assert len(lrn) == 1 and lrn[0].output_shape == "64x224x224"
    # directly after the first convolution (configuration A-LRN)
    assert rows[rows.index(lrn[0]) - 1].name == "features.0"


def test_operators_a_block_runs_itself_get_their_own_rows():
    # TinyInception's forward: cat, mean and a matmul with a Parameter it holds itself; each
    # operator is a row, the matmul's row carries that parameter and its 14*5 MACs.
    s = summary(TinyInception(), (4, 8, 8))
    rows = rows_by_name(s, 1)
    assert [r.name for r in s.visible_rows(1)] == ["a", "b", "cat", "mean", "mm"]
    assert (rows["cat"].output_shape, rows["mean"].output_shape) == ("14x8x8", "14")
    assert rows["mm"].params == 14 * 5 and rows["mm"].macs == 14 * 5
    assert rows["cat"].kind == rows["mm"].kind == "function"
    assert sum(r.params for r in frontier(s, 1)) == s.total_params
    assert sum(r.macs for r in frontier(s, 1)) == s.macs


def test_a_parameter_no_operator_reads_gets_an_own_row():
    class Holder(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)
            self.unused = nn.Parameter(torch.zeros(7))

        def forward(self, x):
            return self.conv(x)

    s = summary(Holder(), (1, 5, 5))
    own = rows_by_name(s)["(own)"]
    assert own.params == 7 and own.macs == 0 and s.total_params == 20 + 7
    assert sum(r.params for r in frontier(s, 1)) == s.total_params


@pytest.mark.parametrize("name,depth", [pytest.param(n, d, id=n) for n, d in PAPER_DEPTHS.items()
                                        if n in MODELS])
def test_paper_depths(name, depth):
    with torch.device("meta"):
        model = cnnlab.create_model(name)
    c, h, w = cnnlab.get_entry(name).input_size
    assert summary(model, (c, h, w)).depth == depth


# --- through the command line --------------------------------------------------------------

def test_cli_summary_lenet5(cli):
    res = cli("summary", "lenet5")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    for name, shape in [("features.c1", "6x28x28"), ("features.s2", "6x14x14"),
                        ("features.c3", "16x10x10"), ("features.s4", "16x5x5"),
                        ("features.c5", "120x1x1"), ("f6", "84"), ("output", "10")]:
        line = next(x for x in lines if x.split()[:1] == [name])
        assert line.split()[2] == shape, line
    assert "Total params: 61,706" in res.stdout and "Depth: 5 weighted layers" in res.stdout


def test_cli_summary_json(cli):
    res = cli("summary", "lenet5", "--json", "--depth", "1")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert [r["name"] for r in data["layers"]] == ["features", "f6", "output"]
    assert data["total_params"] == 61_706 and data["macs"] == 416_520
    assert data["flops"] == 833_040 and data["depth"] == 5 and data["input_size"] == [1, 32, 32]


@pytest.mark.parametrize("args,message", [
    (("summary", "lenet5", "--input-size", "1x31x32"), "needs inputs of at least 32x32, got 31x32"),
    (("summary", "lenet5", "--input-size", "1x0x32"), "must be positive"),
    (("summary", "lenet5", "--input-size", "32x32"), "CxHxW"),
    (("summary", "lenet5", "--input-size", "3x32x32"), "1-channel input, got 3"),
    (("summary", "lenet_5"), "unknown model 'lenet_5'; did you mean lenet5"),
    (("summary", "lenet5", "--depth", "0"), "--depth must be at least 1"),
])
def test_cli_summary_errors_are_one_line(cli, args, message):
    res = cli(*args)
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0, res.stderr
    assert message in res.stderr and "Traceback" not in res.stderr
