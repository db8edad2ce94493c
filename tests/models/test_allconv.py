"""All-CNN: the Keras course-notebook record layer by layer, and the paper's variants."""

import pytest
import torch
from torch import nn

import cnnlab
from tests.helpers import reference_record


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def conv(c_in: int, c_out: int, k: int) -> int:
    return k * k * c_in * c_out + c_out


def all_convs(model: nn.Module) -> list[nn.Conv2d]:
    return [m for m in model.modules() if isinstance(m, nn.Conv2d)]


def test_allconv_c_matches_the_keras_record_layer_by_layer():
    rec = reference_record("keras:AllConvolutional_course_notebook")["record"]
    model = cnnlab.create_model("allconv_c").eval()
    outputs = []
    hooks = [m.register_forward_hook(lambda m, i, o: outputs.append((tuple(o.shape[1:]),
                                                                      n_params(m))))
             for m in all_convs(model)]
    with torch.no_grad():
        logits = model(torch.randn(1, 3, 32, 32))
    for h in hooks:
        h.remove()
    keras_convs = [(tuple(shape), params) for kind, shape, params in rec["layers"]
                   if kind == "Conv2D"]
    # Keras shapes are (H, W, C); ours (C, H, W).
    assert [((c, h, w), p) for (h, w, c), p in keras_convs] == outputs
    assert len(outputs) == 9
    gap = [shape for kind, shape, _ in rec["layers"] if kind == "GlobalAveragePooling2D"]
    assert gap == [[10]] and logits.shape == (1, 10)
    assert n_params(model) == rec["count_params"] == 1_369_738


def test_allconv_c_count_by_arithmetic():
    # 3x3 96, 96, 96/2, 192, 192, 192/2, 3x3 192, 1x1 192, 1x1 10.
    layers = [conv(3, 96, 3), conv(96, 96, 3), conv(96, 96, 3), conv(96, 192, 3),
              conv(192, 192, 3), conv(192, 192, 3), conv(192, 192, 3), conv(192, 192, 1),
              conv(192, 10, 1)]
    assert layers == [2_688, 83_040, 83_040, 166_080, 331_968, 331_968, 331_968, 37_056, 1_930]
    assert sum(layers) == 1_369_738
    # 100 classes: only the last 1x1 conv changes, 192 * 100 + 100 = 19,300.
    assert n_params(cnnlab.create_model("allconv_c", num_classes=100)) == \
        1_369_738 - 1_930 + 19_300 == 1_387_108


def test_allconv_a_and_b_counts_by_arithmetic():
    # A: 5x5 96, 3x3 96/2, 5x5 192, 3x3 192/2, 3x3 192, 1x1 192, 1x1 10.
    a = conv(3, 96, 5) + conv(96, 96, 3) + conv(96, 192, 5) + conv(192, 192, 3) \
        + conv(192, 192, 3) + conv(192, 192, 1) + conv(192, 10, 1)
    assert a == 7_296 + 83_040 + 460_992 + 331_968 + 331_968 + 37_056 + 1_930 == 1_254_250
    # B adds a 1x1 conv 96 after the first layer and a 1x1 conv 192 after the third.
    b = a + conv(96, 96, 1) + conv(192, 192, 1)
    assert b == 1_254_250 + 9_312 + 37_056 == 1_300_618
    assert n_params(cnnlab.create_model("allconv_a")) == a
    assert n_params(cnnlab.create_model("allconv_b")) == b


def test_c_baselines_counts():
    # Strided-CNN-C drops the two stride-2 convs of All-CNN-C: 1,369,738 - 83,040 - 331,968.
    assert n_params(cnnlab.create_model("strided_cnn_c")) == 1_369_738 - 83_040 - 331_968 \
        == 954_730
    # ConvPool-CNN-C keeps those convs at stride 1 and adds a max pool: same count as All-CNN-C.
    assert n_params(cnnlab.create_model("convpool_cnn_c")) == 1_369_738


def test_only_convolutions_in_all_cnn():
    for name in ("allconv_a", "allconv_b", "allconv_c"):
        model = cnnlab.create_model(name)
        kinds = {type(m) for m in model.modules()}
        assert nn.Linear not in kinds and nn.MaxPool2d not in kinds
        strides = [m.stride[0] for m in all_convs(model)]
        assert strides.count(2) == 2  # the two pooling replacements


def test_baselines_structure():
    strided = cnnlab.create_model("strided_cnn_c")
    assert [m.stride[0] for m in all_convs(strided)] == [1, 2, 1, 2, 1, 1, 1]
    assert not any(isinstance(m, nn.MaxPool2d) for m in strided.modules())
    convpool = cnnlab.create_model("convpool_cnn_c")
    assert [m.stride[0] for m in all_convs(convpool)] == [1] * 9
    pools = [m for m in convpool.modules() if isinstance(m, nn.MaxPool2d)]
    assert len(pools) == 2 and all((p.kernel_size, p.stride) == (3, 2) for p in pools)


@pytest.mark.parametrize("name", ["allconv_a", "allconv_b", "allconv_c", "strided_cnn_c",
                                  "convpool_cnn_c"])
def test_every_variant_reduces_32_to_8_and_drops_out_as_the_paper(name):
    model = cnnlab.create_model(name).eval()
    with torch.no_grad():
        assert model.forward_features(torch.randn(2, 3, 32, 32)).shape == (2, 192, 8, 8)
    drops = [m.p for m in model.features if isinstance(m, nn.Dropout)]
    assert drops == [0.2, 0.5, 0.5]  # 20% on the input, 50% after each (replaced) pooling
    assert isinstance(model.features[0], nn.Dropout)


def test_paper_layout_averages_over_6x6():
    model = cnnlab.create_model("allconv_c", layout="paper").eval()
    with torch.no_grad():
        assert model.forward_features(torch.randn(1, 3, 32, 32)).shape == (1, 192, 6, 6)
    assert n_params(model) == 1_369_738  # padding does not change the count
    # 9 -> 5 -> 3 -> (3x3 unpadded) 1; at 8: 8 -> 4 -> 2 -> 0.
    assert model.min_input_size == (9, 9)
    with pytest.raises(RuntimeError):
        model.forward_features(torch.randn(1, 3, 8, 8))


def test_same_layout_takes_any_size_from_1x1():
    # 'same' 3x3 convs keep the size and a stride-2 3x3 conv with pad 1 maps 1 to 1.
    model = cnnlab.create_model("allconv_c", num_classes=10).eval()
    assert model.min_input_size == (1, 1)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 1, 1)).shape == (1, 10)


def test_head_and_pre_logits():
    model = cnnlab.create_model("allconv_c").eval()
    feats = torch.randn(2, 192, 8, 8)
    assert model.forward_head(feats, pre_logits=True).shape == (2, 192)
    logits = model.forward_head(feats)
    assert logits.shape == (2, 10) and (logits < 0).any()  # linear class maps by default
    assert isinstance(model.act, nn.Identity)
    table1 = cnnlab.create_model("allconv_c", final_relu=True).eval()
    assert (table1.forward_head(feats) >= 0).all()  # Table 1's ReLU on the class maps
    headless = cnnlab.create_model("allconv_c", num_classes=0).eval()
    assert headless.forward_head(feats).shape == (2, 192)


def test_initialisation_glorot_is_keras_default():
    model = cnnlab.create_model("allconv_c", init="glorot")
    w = model.features.conv3.conv.weight  # 3x3, 96 -> 192: Glorot bound sqrt(6 / (864 + 1728))
    bound = (6 / (96 * 9 + 192 * 9)) ** 0.5
    assert w.abs().max() <= bound and w.abs().max() > 0.95 * bound
    assert all(torch.all(c.bias == 0) for c in all_convs(model))


def test_initialisation_kaiming_is_the_default():
    model = cnnlab.create_model("allconv_c")
    w = model.features.conv3.conv.weight  # fan_in = 96 * 3 * 3: std sqrt(2 / 864) = 0.0481
    assert abs(w.std().item() - (2 / (96 * 9)) ** 0.5) < 0.002
    assert all(torch.all(c.bias == 0) for c in all_convs(model))


def test_trains_on_a_tiny_batch():
    torch.manual_seed(0)
    model = cnnlab.create_model("allconv_c", input_dropout=0.0, dropout=0.0).train()
    x, y = torch.randn(4, 3, 8, 8), torch.arange(4)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(8):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("kwargs,message", [
    ({"pooling": "avg"}, "pooling must be one of"),
    ({"layout": "valid"}, "layout must be"),
    ({"model": "D"}, "model must be one of"),
])
def test_bad_options_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        cnnlab.create_model("allconv_c", **kwargs)
