"""LeNet-5: the slide's shapes and the paper's parameter arithmetic."""

import pytest
import torch

import cnnlab
from cnnlab.models.lenet import LECUN1998_C3_TABLE


def test_parameter_count_full_c3():
    # C1: 6 kernels 5x5 on 1 map + 6 biases; C3 (full): 16 x (6 x 25 + 1); C5: 120 x (16 x 25 + 1);
    # F6: 84 x (120 + 1); output: 10 x (84 + 1). Pooling has no parameters.
    c1 = 6 * (1 * 5 * 5 + 1)
    c3 = 16 * (6 * 5 * 5 + 1)
    c5 = 120 * (16 * 5 * 5 + 1)
    f6 = 84 * (120 + 1)
    out = 10 * (84 + 1)
    assert (c1, c3, c5, f6, out) == (156, 2416, 48120, 10164, 850)
    model = cnnlab.create_model("lenet5")
    assert sum(p.numel() for p in model.parameters()) == c1 + c3 + c5 + f6 + out == 61706
    assert sum(p.numel() for p in model.features.c1.parameters()) == 156


def test_sparse_c3_table_of_the_paper():
    # Table I: six maps read 3 neighbouring S2 maps, six read 4 neighbours, three read 4
    # non-neighbours, one reads all 6: 6*3 + 6*4 + 3*4 + 1*6 = 60 kernels of 5x5, plus 16 biases.
    sizes = [len(cols) for cols in LECUN1998_C3_TABLE]
    assert sizes == [3] * 6 + [4] * 9 + [6]
    kernels = 6 * 3 + 6 * 4 + 3 * 4 + 1 * 6
    assert kernels == sum(sizes) == 60
    c3_params = kernels * 5 * 5 + 16
    assert c3_params == 1516
    model = cnnlab.create_model("lenet5", c3_table="lecun1998")
    assert sum(p.numel() for p in model.features.c3.parameters()) == c3_params
    assert sum(p.numel() for p in model.parameters()) == 61706 - 2416 + 1516


def test_sparse_c3_only_reads_the_connected_maps():
    model = cnnlab.create_model("lenet5", c3_table="lecun1998")
    c3 = model.features.c3
    x = torch.zeros(1, 6, 14, 14, requires_grad=True)
    c3(x)[0, 0].sum().backward()  # output map 0 reads S2 maps 0, 1, 2 only
    touched = [i for i in range(6) if x.grad[0, i].abs().sum() > 0]
    assert touched == [0, 1, 2]
    dense = c3.dense_weight()
    assert (dense[0, 3:] == 0).all() and (dense[15] != 0).all()


def test_output_shapes_are_the_slides():
    model = cnnlab.create_model("lenet5").eval()
    shapes = {}
    hooks = [m.register_forward_hook(lambda m, i, o, n=n: shapes.__setitem__(n, tuple(o.shape[1:])))
             for n, m in model.named_modules() if n]
    model(torch.randn(1, 1, 32, 32))
    for h in hooks:
        h.remove()
    expected = {"features.c1": (6, 28, 28), "features.s2": (6, 14, 14),
                "features.c3": (16, 10, 10), "features.s4": (16, 5, 5),
                "features.c5": (120, 1, 1), "f6": (84,), "output": (10,)}
    assert {k: shapes[k] for k in expected} == expected


@pytest.mark.parametrize("activation,cls", [("sigmoid", torch.nn.Sigmoid),
                                            ("tanh", torch.nn.Tanh), ("relu", torch.nn.ReLU)])
def test_activation_is_selectable(activation, cls):
    model = cnnlab.create_model("lenet5", activation=activation)
    assert isinstance(model.features.act1, cls) and isinstance(model.act6, cls)


def test_pooling_is_selectable():
    assert isinstance(cnnlab.create_model("lenet5").features.s2, torch.nn.AvgPool2d)
    assert isinstance(cnnlab.create_model("lenet5", pool="max").features.s4, torch.nn.MaxPool2d)


def test_padded_c1_takes_28x28_input_like_the_lab():
    model = cnnlab.create_model("lenet5", c1_padding=2).eval()
    assert model.min_input_size == (28, 28)
    assert model(torch.randn(3, 1, 28, 28)).shape == (3, 10)


@pytest.mark.parametrize("kwargs,message", [
    ({"activation": "gelu"}, "activation must be one of"),
    ({"pool": "median"}, "pool must be one of"),
    ({"c3_table": "sparse"}, "c3_table must be"),
])
def test_bad_options_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        cnnlab.create_model("lenet5", **kwargs)
