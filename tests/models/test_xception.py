"""Xception: the three flows at 299x299, the residual shortcuts, the parameter arithmetic."""

import torch
from torch import nn

import cnnlab
from cnnlab.layers import SeparableConv2d
from cnnlab.models.xception import XceptionBlock


def sep(cin, cout):
    """3x3 depthwise (9 weights per input channel) + 1x1 pointwise, no bias."""
    return 9 * cin + cin * cout


def bn(c):
    return 2 * c


def test_flow_shapes_at_299():
    with torch.device("meta"):
        model = cnnlab.create_model("xception").eval()
        x = torch.empty(1, 3, 299, 299)
        entry = model.forward_entry(x)
        middle = model.forward_middle(entry)
        exit_ = model.forward_exit(middle)
        b1 = model.block1(model.act2(model.bn2(model.conv2(model.bn1(model.conv1(x))))))
        b2 = model.block2(b1)
    # stem: (299 - 3) // 2 + 1 = 149, then 147; the padded 3x3/2 pools: 74, 37, 19, then 10.
    assert b1.shape == (1, 128, 74, 74) and b2.shape == (1, 256, 37, 37)
    assert entry.shape == (1, 728, 19, 19)
    assert middle.shape == (1, 728, 19, 19)
    assert exit_.shape == (1, 2048, 10, 10)
    assert model(x).shape == (1, 1000)


def test_block_structure():
    model = cnnlab.create_model("xception")
    blocks = [getattr(model, f"block{i}") for i in range(1, 13)]
    # entry (3) and exit (1) blocks: 1x1 stride-2 shortcut with BN; middle (8): identity.
    for b in blocks[:3] + blocks[11:]:
        assert b.skip.kernel_size == (1, 1) and b.skip.stride == (2, 2)
        assert isinstance(b.skipbn, nn.BatchNorm2d)
    middle = blocks[3:11]
    assert len(middle) == 8
    for b in middle:
        assert b.skip is None
        assert sum(isinstance(m, SeparableConv2d) for m in b.rep) == 3
    # every separable conv: depthwise 3x3 (groups = channels) then pointwise 1x1
    for m in model.modules():
        if isinstance(m, SeparableConv2d):
            assert m.conv1.groups == m.conv1.in_channels and m.conv1.kernel_size == (3, 3)
            assert m.pointwise.kernel_size == (1, 1)
    assert not isinstance(blocks[0].rep[0], nn.ReLU)  # block1 starts with its convolution
    assert isinstance(blocks[1].rep[0], nn.ReLU)


def test_parameter_count_by_arithmetic():
    stem = 3 * 32 * 9 + bn(32) + 32 * 64 * 9 + bn(64)
    block1 = 64 * 128 + bn(128) + sep(64, 128) + bn(128) + sep(128, 128) + bn(128)
    block2 = 128 * 256 + bn(256) + sep(128, 256) + bn(256) + sep(256, 256) + bn(256)
    block3 = 256 * 728 + bn(728) + sep(256, 728) + bn(728) + sep(728, 728) + bn(728)
    middle = 8 * 3 * (sep(728, 728) + bn(728))
    block12 = 728 * 1024 + bn(1024) + sep(728, 728) + bn(728) + sep(728, 1024) + bn(1024)
    exit_convs = sep(1024, 1536) + bn(1536) + sep(1536, 2048) + bn(2048)
    fc = 2048 * 1000 + 1000
    total = stem + block1 + block2 + block3 + middle + block12 + exit_convs + fc
    assert total == 22_855_952  # Table 3 of the paper; Keras trainable; timm legacy_xception
    with torch.device("meta"):
        model = cnnlab.create_model("xception")
    assert sum(p.numel() for p in model.parameters()) == total


def test_middle_block_is_residual():
    block = XceptionBlock(16, 16, 3).eval()
    for m in block.rep:
        if isinstance(m, nn.BatchNorm2d):  # silence the residual branch
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)
    x = torch.randn(2, 16, 9, 9)
    kept = x.clone()
    with torch.no_grad():
        out = block(x)
    assert torch.equal(x, kept)  # the first ReLU is not in place: the shortcut reads x
    assert torch.equal(out, kept)


def test_dropout_defaults_to_the_paper_and_can_be_removed():
    assert cnnlab.create_model("xception").dropout.p == 0.5
    assert cnnlab.create_model("xception", dropout=0.0).dropout.p == 0.0
