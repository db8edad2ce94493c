"""The NumPy engine against PyTorch autograd, on identical weights, in float64.

PyTorch's conv2d is a correlation and the engine's Conv2D a true convolution, so the torch
kernel is the NumPy kernel rotated by 180 degrees: ``torch_w = rot90(W, 2)``.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import cnnlab
from cnnlab.scratch import AvgPool2D, Conv2D, MaxPool2D, lenet5, softmax_cross_entropy

TOL = 1e-5


def t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def rot180(w):
    return np.ascontiguousarray(w[..., ::-1, ::-1])


@pytest.mark.parametrize("kernel,stride,padding,shape", [
    (3, 1, 0, (2, 3, 7, 9)),
    ((3, 2), 2, (1, 2), (2, 2, 8, 6)),
    (5, 3, 2, (1, 2, 9, 10)),
])
def test_conv_matches_torch_with_the_kernel_rotated(kernel, stride, padding, shape):
    rng = np.random.default_rng(0)
    conv = Conv2D(shape[1], 4, kernel, stride=stride, padding=padding, rng=rng)
    x = rng.standard_normal(shape)
    y = conv.forward(x)
    delta = rng.standard_normal(y.shape)
    dx = conv.backward(delta)

    xt = t(x).requires_grad_()
    wt = t(rot180(conv.params["W"])).requires_grad_()
    bt = t(conv.params["b"]).requires_grad_()
    yt = F.conv2d(xt, wt, bt, stride=stride, padding=padding)
    yt.backward(t(delta))
    np.testing.assert_allclose(y, yt.detach().numpy(), atol=TOL, rtol=0)
    np.testing.assert_allclose(dx, xt.grad.numpy(), atol=TOL, rtol=0)
    np.testing.assert_allclose(conv.grads["W"], rot180(wt.grad.numpy()), atol=TOL, rtol=0)
    np.testing.assert_allclose(conv.grads["b"], bt.grad.numpy(), atol=TOL, rtol=0)


@pytest.mark.parametrize("layer,fn", [(AvgPool2D(2), F.avg_pool2d), (MaxPool2D(2), F.max_pool2d)])
def test_pooling_matches_torch_including_ties(layer, fn):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 3, (2, 3, 6, 7)).astype(np.float64)  # many ties, an odd width
    y = layer.forward(x)
    delta = rng.standard_normal(y.shape)
    dx = layer.backward(delta)
    xt = t(x).requires_grad_()
    yt = fn(xt, 2)
    yt.backward(t(delta))
    np.testing.assert_allclose(y, yt.detach().numpy(), atol=TOL, rtol=0)
    np.testing.assert_allclose(dx, xt.grad.numpy(), atol=TOL, rtol=0)


def test_cross_entropy_matches_torch():
    rng = np.random.default_rng(2)
    z, y = rng.standard_normal((5, 10)) * 10, rng.integers(0, 10, 5)
    loss, d = softmax_cross_entropy(z, y)
    zt = t(z).requires_grad_()
    lt = F.cross_entropy(zt, t(y))
    lt.backward()
    assert loss == pytest.approx(lt.item(), abs=1e-12)
    np.testing.assert_allclose(d, zt.grad.numpy(), atol=1e-12)


def copy_into_torch(net, model):
    """The NumPy LeNet-5's weights into the PyTorch lenet5 (conv kernels rotated by 180)."""
    names = {"c1": "features.c1", "c3": "features.c3", "c5": "features.c5",
             "f6": "f6", "output": "output"}
    state = {}
    for ours, theirs in names.items():
        w = net[ours].params["W"]
        state[f"{theirs}.weight"] = t(rot180(w) if w.ndim == 4 else w)
        state[f"{theirs}.bias"] = t(net[ours].params["b"])
    model.load_state_dict(state, strict=True)
    return names


@pytest.mark.parametrize("size,activation,pool", [(28, "sigmoid", "avg"), (32, "sigmoid", "avg"),
                                                  (28, "relu", "max")])
def test_lenet5_forward_and_all_gradients_match_pytorch(size, activation, pool):
    rng = np.random.default_rng(3)
    net = lenet5(size, activation=activation, pool=pool, seed=4)
    kwargs = {"c1_padding": 2} if size == 28 else {}
    model = cnnlab.create_model("lenet5", activation=activation, pool=pool, **kwargs).double()
    names = copy_into_torch(net, model)
    x, y = rng.standard_normal((4, 1, size, size)), np.array([0, 3, 7, 9])

    loss, logits = net.loss_and_grads(x, y)
    out = model(t(x))
    lt = F.cross_entropy(out, t(y))
    lt.backward()
    np.testing.assert_allclose(logits, out.detach().numpy(), atol=TOL, rtol=0)
    assert loss == pytest.approx(lt.item(), abs=TOL)
    params = dict(model.named_parameters())
    for ours, theirs in names.items():
        gw = params[f"{theirs}.weight"].grad.numpy()
        np.testing.assert_allclose(net[ours].grads["W"], rot180(gw) if gw.ndim == 4 else gw,
                                   atol=TOL, rtol=0, err_msg=ours)
        np.testing.assert_allclose(net[ours].grads["b"], params[f"{theirs}.bias"].grad.numpy(),
                                   atol=TOL, rtol=0, err_msg=ours)
