"""MAC counting: arithmetic on small nets, torch's FlopCounterMode and the reference records."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import cnnlab
from cnnlab.analysis.macs import count_macs, trace
from cnnlab.registry import get_entry
from tests.helpers import reference_record
from tests.helpers.nets import AuxNet, TinyInception, TinyResNet, vgg16

MODELS = cnnlab.list_models()
MAC_REFERENCES = [
    pytest.param(name, ref, kwargs, id=f"{name}-{ref}")
    for name in MODELS for ref, kwargs in get_entry(name).references
    if ref.split(":")[0] in ("torchvision", "timm")
]


def meta_model(name: str, **kwargs):
    with torch.device("meta"):
        return cnnlab.create_model(name, **kwargs)


def flop_counter_flops(model, size) -> int:
    x = torch.zeros(1, *size, device=next(model.parameters()).device)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return counter.get_total_flops()


def test_lenet5_by_layer_matches_the_reference_table():
    # REFERENCE_NUMBERS.md §2.1: C1 28*28*6*(1*25) = 117,600; C3 10*10*16*(6*25) = 240,000;
    # C5 1*1*120*(16*25) = 48,000; F6 120*84 = 10,080; output 84*10 = 840; total 416,520.
    res = count_macs(cnnlab.create_model("lenet5"), (1, 32, 32))
    assert res.per_layer == {"features.c1": 28 * 28 * 6 * 25, "features.c3": 10 * 10 * 16 * 6 * 25,
                             "features.c5": 120 * 16 * 25, "f6": 120 * 84, "output": 84 * 10}
    assert res.macs == 117_600 + 240_000 + 48_000 + 10_080 + 840 == 416_520
    assert res.flops == 2 * 416_520


def test_residual_net_by_arithmetic():
    # 3x8x8 input. stem 3->8 3x3: 8*8 positions * 8 maps * 3*9 = 13,824.
    # layer1: two 8->8 3x3 convs at 8x8: 2 * 8*8*8*8*9 = 73,728.
    # layer2: conv1 8->16 3x3 stride 2 -> 4x4: 4*4*16*8*9 = 18,432; conv2 16->16: 4*4*16*16*9
    # = 36,864; projection 1x1 stride 2: 4*4*16*8 = 2,048. fc 16->10: 160.
    res = count_macs(TinyResNet(), (3, 8, 8))
    assert res.per_layer == {"stem": 13_824, "layer1.conv1": 36_864, "layer1.conv2": 36_864,
                             "layer2.conv1": 18_432, "layer2.conv2": 36_864,
                             "layer2.down": 2_048, "fc": 160}
    assert res.macs == 13_824 + 2 * 36_864 + 18_432 + 36_864 + 2_048 + 160
    # BN, ReLU, the residual adds and pooling are "other ops", never MACs:
    # per block two BN, two ReLU and one add, one op per output element: layer1 on 8*8*8 = 512
    # elements, layer2 on 4*4*16 = 256: BN 2*512 + 2*256 = 1,536; ReLU the same 1,536; adds
    # 512 + 256 = 768; the global mean reads 16*4*4 = 256 inputs.
    assert res.other_ops == 1_536 + 1_536 + 768 + 256


def test_branches_concat_grouped_depthwise_and_matmul():
    # 4x8x8 input, 64 positions. a: 1x1 4->6: 64*6*4 = 1,536. b.reduce 1x1 4->4: 64*4*4 = 1,024.
    # b.dw depthwise 3x3 (groups 4: 1 input map per output): 64*4*1*9 = 2,304.
    # b.grouped 3x3 4->8 in 2 groups (2 input maps per output): 64*8*2*9 = 9,216.
    # functional matmul (1x14) @ (14x5) in the model's own forward: 70.
    res = count_macs(TinyInception(), (4, 8, 8))
    assert res.per_layer == {"a": 1_536, "b.reduce": 1_024, "b.dw": 2_304, "b.grouped": 9_216,
                             "(model) (own)": 70}
    assert res.macs == 1_536 + 1_024 + 2_304 + 9_216 + 70


def test_transposed_convolution():
    # ConvTranspose2d 4->6, 3x3, stride 2 on 5x5: every input element scatters into 6*9
    # outputs: 25 * 4 * 6 * 9 = 5,400 (torch's FlopCounterMode counts the same).
    model = nn.Sequential(nn.ConvTranspose2d(4, 6, 3, stride=2))
    assert count_macs(model, (4, 5, 5)).macs == 25 * 4 * 6 * 9
    assert flop_counter_flops(model, (4, 5, 5)) == 2 * 25 * 4 * 6 * 9


def test_aux_head_counts_only_in_training_mode():
    # conv 1->4 3x3 on 6x6 -> 4x4: 16*4*9 = 576; fc 4->3: 12; aux 4->3 (training only): 12.
    net = AuxNet()
    assert count_macs(net, (1, 6, 6)).macs == 576 + 12
    assert count_macs(net, (1, 6, 6), training=True).macs == 576 + 12 + 12


def test_vgg16_on_meta_equals_the_torchvision_record():
    # REFERENCE_NUMBERS.md: VGG-16 (D) 15,470,264,320 MACs at 224, = torchvision _ops 15.47.
    with torch.device("meta"):
        model = vgg16()
    assert count_macs(model, (3, 224, 224)).macs == 15_470_264_320
    assert count_macs(model, (3, 224, 224)).macs == reference_record("torchvision:vgg16")["macs"]


@pytest.mark.parametrize("net,size", [(TinyResNet, (3, 8, 8)), (TinyInception, (4, 8, 8)),
                                      (AuxNet, (1, 6, 6))])
def test_small_nets_equal_flop_counter_half(net, size):
    model = net().eval()
    assert 2 * count_macs(model, size).macs == flop_counter_flops(model, size)


@pytest.mark.parametrize("name", MODELS)
def test_every_model_equals_flop_counter_half(name):
    model = meta_model(name).eval()
    h, w = (max(v, 32) for v in model.min_input_size)
    size = (model.in_chans, h, w)
    assert 2 * count_macs(model, size).macs == flop_counter_flops(model, size)


@pytest.mark.parametrize("name,ref,kwargs", MAC_REFERENCES)
def test_reference_macs(name, ref, kwargs):
    rec = reference_record(ref)
    if rec["macs"] is None:
        pytest.skip(f"{ref} has no MAC count")
    model = meta_model(name, **kwargs)
    assert count_macs(model, rec["input"]).macs == rec["macs"]


def test_counting_leaves_the_model_unchanged():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5),
                          nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    model.train()
    model[1].eval()                     # a mixed mode must come back as it was
    model[0].weight.requires_grad_(False)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    calls = []
    model.register_forward_pre_hook(lambda m, i: calls.append(1))
    rng = torch.get_rng_state()
    hooks = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())
    count_macs(model, (1, 8, 8))
    count_macs(model, (1, 8, 8), training=True)   # BN running stats would move in training
    assert calls == [1, 1]              # one forward pass per count, no more
    assert torch.equal(torch.get_rng_state(), rng)
    assert [m.training for m in model.modules()] == [True, True, False, True, True, True]
    assert not model[0].weight.requires_grad and model[4].weight.requires_grad
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    after = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())
    assert after == hooks
    assert model[0].weight.grad is None


def test_failed_forward_removes_the_hooks_and_restores_the_mode():
    model = cnnlab.create_model("lenet5").train()
    with pytest.raises(cnnlab.InputShapeError, match="at least 32x32"):
        count_macs(model, (1, 16, 16))
    assert model.training
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


@pytest.mark.parametrize("size", [(1, 0, 32), (1, 32, -3), (1, 32), (1, 32, 32.5), "1x32x32"])
def test_bad_input_sizes_are_named(size):
    with pytest.raises(ValueError, match="input size|positive"):
        count_macs(cnnlab.create_model("lenet5"), size)


def test_trace_records_depth_and_output_shapes():
    t = trace(TinyResNet(), (3, 8, 8))
    assert t.output_shapes == [(1, 10)]
    # longest path: stem, layer1.conv1, layer1.conv2, layer2.conv1, layer2.conv2, fc = 6;
    # the projection shortcut (stem, layer1 x2, down, fc = 5) is shorter.
    assert t.depth == 6
    assert t.modules["layer2.down"].depth == 4 and t.modules["layer2"].depth == 5


# moved from tests/test_hardening.py (issue 13)
def test_pooling_other_ops_are_k_squared_per_output():
    # 1x7x7 -> conv 1->2 3x3 (no pad): 2x5x5, MACs 5*5*2*9 = 450, ReLU 50 other ops;
    # max pool 3x3 stride 2: 2x2x2 outputs, each a max over 9 values: 8 * 9 = 72 other ops;
    # avg pool 2x2 stride 1 on 2x2x2: 2x1x1 outputs of 4 values: 2 * 4 = 8 other ops.
    from cnnlab.analysis.macs import count_macs

    net = nn.Sequential(nn.Conv2d(1, 2, 3, bias=False), nn.ReLU(), nn.MaxPool2d(3, 2),
                        nn.AvgPool2d(2, 1))
    res = count_macs(net, (1, 7, 7))
    assert res.macs == 450
    assert res.other_ops == 50 + 72 + 8


def test_mobilenet_v1_macs_by_the_papers_formula_beside_flop_counter():
    # Independent of the code: MobileNet v1 (Howard et al. 2017, Table 1) at 224x224, the
    # paper's cost D_K*D_K*M*D_F*D_F (depthwise) + M*N*D_F*D_F (pointwise) per unit, plus
    # the 3x3/2 stem (3 -> 32) and the 1024 -> 1000 FC. Table 1 reports 569 million.
    units = [(32, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1),
             (256, 512, 2)] + [(512, 512, 1)] * 5 + [(512, 1024, 2), (1024, 1024, 1)]
    size = 112
    macs = size * size * 3 * 3 * 3 * 32
    for m, n, stride in units:
        size = math.ceil(size / stride)
        macs += 3 * 3 * m * size * size + m * n * size * size
    macs += 1024 * 1000
    assert round(macs / 1e6) == 569
    from cnnlab.analysis.macs import count_macs

    with torch.device("meta"):
        model = cnnlab.create_model("mobilenet_v1").eval()
    assert count_macs(model, (3, 224, 224)).macs == macs
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, 3, 224, 224, device="meta"))
    assert counter.get_total_flops() == 2 * macs
