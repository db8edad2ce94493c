"""The NumPy engine: each layer against the naive formula and against central differences."""

import numpy as np
import pytest

from cnnlab.scratch import (
    SGD,
    AvgPool2D,
    Conv2D,
    Dense,
    Flatten,
    MaxPool2D,
    ReLU,
    Sigmoid,
    Tanh,
    check_layer,
    check_network,
    col2im,
    conv2d_naive,
    im2col,
    lenet5,
    softmax_cross_entropy,
)
from cnnlab.scratch.gradcheck import numerical_grad, rel_error

TOL = 1e-6


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.mark.parametrize("shape,kernel,stride,padding", [
    ((2, 3, 7, 9), (3, 3), 1, 0),       # non-square input
    ((2, 2, 8, 6), (3, 2), 2, (1, 2)),  # non-square kernel, stride, asymmetric padding
    ((1, 1, 9, 9), 5, 3, 2),            # stride that leaves rows unread
    ((3, 4, 5, 5), 1, 1, 0),            # 1x1 kernel
])
def test_conv_im2col_equals_naive_loops(rng, shape, kernel, stride, padding):
    conv = Conv2D(shape[1], 4, kernel, stride=stride, padding=padding, rng=rng)
    x = rng.standard_normal(shape)
    y = conv.forward(x)
    ref = conv2d_naive(x, conv.params["W"], conv.params["b"], stride, padding)
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


def test_conv_really_flips_the_kernel():
    # A single 1 at the centre of a 5x5 image, convolved with an asymmetric 3x3 kernel: a true
    # convolution copies the kernel itself (impulse response); a correlation would give
    # rot90(W, 2).
    conv = Conv2D(1, 1, 3, padding=1)
    w = np.arange(1.0, 10.0).reshape(3, 3)
    conv.params["W"][0, 0] = w
    conv.params["b"][:] = 0
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 2, 2] = 1.0
    y = conv.forward(x)[0, 0, 1:4, 1:4]
    np.testing.assert_array_equal(y, w)
    assert not np.array_equal(y, np.rot90(w, 2))


def test_conv_output_size_arithmetic(rng):
    # floor((H + 2p - k) / s) + 1: (28 + 4 - 5) / 1 + 1 = 28 ; (9 + 0 - 3) / 2 + 1 = 4
    assert Conv2D(1, 6, 5, padding=2).forward(np.zeros((1, 1, 28, 28))).shape == (1, 6, 28, 28)
    assert Conv2D(1, 2, 3, stride=2).forward(np.zeros((1, 1, 9, 10))).shape == (1, 2, 4, 4)


@pytest.mark.parametrize("make,shape", [
    (lambda r: Conv2D(3, 4, 3, rng=r), (2, 3, 6, 8)),
    (lambda r: Conv2D(2, 3, (3, 2), stride=2, padding=(1, 2), rng=r), (2, 2, 7, 6)),
    (lambda r: Conv2D(2, 2, 5, stride=3, padding=2, rng=r), (2, 2, 9, 8)),
    (lambda r: Conv2D(1, 2, (2, 4), stride=(1), padding=1, rng=r), (1, 1, 5, 7)),
    (lambda r: AvgPool2D(2), (2, 3, 6, 8)),
    (lambda r: AvgPool2D((2, 3)), (2, 2, 5, 7)),    # non-square pool, leftover rows/cols
    (lambda r: MaxPool2D(2), (2, 3, 6, 8)),
    (lambda r: MaxPool2D((3, 2)), (2, 2, 7, 5)),
    (lambda r: Sigmoid(), (2, 3, 4, 5)),
    (lambda r: Tanh(), (2, 3, 4, 5)),
    (lambda r: ReLU(), (2, 3, 4, 5)),
    (lambda r: Flatten(), (2, 3, 4, 5)),
    (lambda r: Dense(7, 5, rng=r), (4, 7)),
])
def test_gradient_check_every_layer(rng, make, shape):
    layer = make(rng)
    x = rng.standard_normal(shape)
    if isinstance(layer, ReLU):  # keep away from the kink at 0
        x = np.where(np.abs(x) < 1e-3, 0.5, x)
    errors = check_layer(layer, x)
    assert set(errors) == {"x", *layer.params}
    assert max(errors.values()) < TOL, errors


def test_gradient_check_whole_lenet5_28_and_32(rng):
    for size in (28, 32):
        net = lenet5(size, seed=1)
        x = rng.standard_normal((3, 1, size, size))
        errors = check_network(net, x, np.array([0, 3, 9]))
        assert len(errors) == 10  # W and b of c1, c3, c5, f6, output
        assert max(errors.values()) < TOL, errors


def test_lenet5_max_pool_tanh_gradient_check(rng):
    net = lenet5(28, activation="tanh", pool="max", seed=2)
    # a small step: with eps = 1e-4 a perturbation can change which entry is a window's max
    errors = check_network(net, rng.standard_normal((2, 1, 28, 28)), np.array([1, 7]), eps=1e-6)
    assert max(errors.values()) < TOL, errors


def test_lenet5_parameter_count():
    # 6*(25+1) + 16*(6*25+1) + 120*(16*25+1) + 84*(120+1) + 10*(84+1)
    assert lenet5(28).num_params() == 156 + 2416 + 48120 + 10164 + 850 == 61706


def test_avg_pool_backward_is_kron_upsampling_over_area():
    pool = AvgPool2D(2)
    pool.forward(np.zeros((1, 1, 4, 4)))
    delta = np.array([[[[4.0, 8.0], [12.0, 16.0]]]])
    dx = pool.backward(delta)
    expected = np.array([[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]], dtype=float)
    np.testing.assert_array_equal(dx[0, 0], expected)


@pytest.mark.parametrize("size,shape", [(2, (3, 4, 8, 6)), ((2, 3), (2, 3, 7, 11)),
                                        (3, (1, 2, 9, 9))])
def test_avg_pool_fast_paths_equal_the_course_formulas(rng, size, shape):
    """Forward: the mean over each window of a 6-D view; backward: kron(delta, ones) / area."""
    from cnnlab.scratch.layers import upsample_kron

    pool = AvgPool2D(size)
    kh, kw = pool.kh, pool.kw
    x = rng.standard_normal(shape).astype(np.float32)
    n, c, h, w = shape
    ho, wo = h // kh, w // kw
    y = pool.forward(x)
    windows = x[:, :, :ho * kh, :wo * kw].reshape(n, c, ho, kh, wo, kw)
    np.testing.assert_allclose(y, windows.mean(axis=(3, 5)), rtol=1e-6, atol=1e-6)
    assert y.dtype == np.float32
    delta = rng.standard_normal(y.shape).astype(np.float32)
    dx = pool.backward(delta)
    expected = np.zeros_like(x)
    expected[:, :, :ho * kh, :wo * kw] = upsample_kron(delta, kh, kw) / (kh * kw)
    np.testing.assert_allclose(dx, expected, rtol=1e-6, atol=1e-7)
    assert dx.dtype == np.float32
    # kron's blocks by hand for one entry: delta[0, 0, 0, 0] fills the top-left kh x kw block
    np.testing.assert_array_equal(upsample_kron(delta, kh, kw)[0, 0, :kh, :kw],
                                  np.full((kh, kw), delta[0, 0, 0, 0]))


def test_max_pool_mask_and_ties_go_to_the_first_maximum():
    pool = MaxPool2D(2)
    x = np.array([[[[1.0, 5.0, 2.0, 2.0],
                    [3.0, 0.0, 2.0, 2.0],
                    [7.0, 7.0, 0.0, 9.0],
                    [7.0, 1.0, 9.0, 9.0]]]])
    y = pool.forward(x)
    np.testing.assert_array_equal(y[0, 0], [[5.0, 2.0], [7.0, 9.0]])
    dx = pool.backward(np.array([[[[10.0, 20.0], [30.0, 40.0]]]]))
    # window (0,1) is all 2s: the top-left one gets 20; window (1,0) has three 7s: top-left;
    # window (1,1) has three 9s: the top-right one (first in row-major order).
    expected = np.array([[0, 10, 20, 0], [0, 0, 0, 0], [30, 0, 0, 40], [0, 0, 0, 0]], float)
    np.testing.assert_array_equal(dx[0, 0], expected)
    assert dx.sum() == 10 + 20 + 30 + 40


def test_col2im_is_the_adjoint_of_im2col(rng):
    x = rng.standard_normal((2, 3, 7, 6))
    cols = im2col(x, 3, 2, stride=2)
    c = rng.standard_normal(cols.shape)
    lhs = np.sum(cols * c)
    rhs = np.sum(x * col2im(c, x.shape, 3, 2, stride=2))
    assert abs(lhs - rhs) < 1e-10


def test_softmax_cross_entropy_values_and_stability():
    # logits (0, 0): loss log 2 and gradient (1/2 - 1, 1/2) / N
    loss, d = softmax_cross_entropy(np.zeros((1, 2)), np.array([0]))
    assert loss == pytest.approx(np.log(2))
    np.testing.assert_allclose(d, [[-0.5, 0.5]])
    # huge logits: log-sum-exp keeps it finite; loss = 1000 - 0 for the wrong class
    loss, d = softmax_cross_entropy(np.array([[1000.0, 0.0]]), np.array([1]))
    assert loss == pytest.approx(1000.0) and np.isfinite(d).all()
    z = np.random.default_rng(0).standard_normal((4, 5))
    y = np.array([0, 4, 2, 2])
    num = numerical_grad(lambda: softmax_cross_entropy(z, y)[0], z)
    assert rel_error(softmax_cross_entropy(z, y)[1], num) < TOL


def test_sgd_momentum_update_by_hand():
    class One:
        def __init__(self):
            self.params, self.grads = {"w": np.array([1.0])}, {"w": np.array([2.0])}

    class Net:
        layer = One()

        def parameters(self):
            yield "w", self.layer, "w"

    net = Net()
    opt = SGD(net, lr=0.1, momentum=0.9, decay=0.5)
    opt.step()   # v = 0.1 * 2 = 0.2 ; w = 1 - 0.2 = 0.8
    opt.step()   # v = 0.9 * 0.2 + 0.2 = 0.38 ; w = 0.8 - 0.38 = 0.42
    assert net.layer.params["w"][0] == pytest.approx(0.42)
    assert opt.set_epoch(2) == pytest.approx(0.1 * 0.5**2)


@pytest.mark.parametrize("call,match", [
    (lambda: Conv2D(3, 4, 3).forward(np.zeros((1, 2, 8, 8))), "3 input channels, got 2"),
    (lambda: Conv2D(1, 4, 3).forward(np.zeros((8, 8))), "N x C x H x W"),
    (lambda: Conv2D(1, 4, 5).forward(np.zeros((1, 1, 3, 3))), "smaller than the kernel"),
    (lambda: Dense(10, 3).forward(np.zeros((2, 12))), r"expects \(N, 10\)"),
    (lambda: MaxPool2D(4).forward(np.zeros((1, 1, 3, 3))), "smaller than the pool"),
    (lambda: softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 3])), "integers in 0..2"),
    (lambda: lenet5(30), "28 .* or 32"),
])
def test_shape_errors_name_the_problem(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_backward_delta_of_the_wrong_shape_is_refused():
    conv = Conv2D(1, 2, 3)
    conv.forward(np.zeros((1, 1, 5, 5)))
    with pytest.raises(ValueError, match=r"delta has shape \(1, 2, 2, 2\).*\(1, 2, 3, 3\)"):
        conv.backward(np.zeros((1, 2, 2, 2)))


@pytest.mark.parametrize("stride,padding,shape", [(1, 0, (2, 3, 7, 9)), (2, (1, 2), (2, 2, 8, 7)),
                                                  (3, 2, (1, 2, 10, 9))])
def test_input_gradient_is_the_full_convolution_with_the_rotated_kernel(rng, stride, padding,
                                                                       shape):
    from cnnlab.scratch.layers import input_grad_full_convolution

    conv = Conv2D(shape[1], 4, 3, stride=stride, padding=padding, rng=rng)
    x = rng.standard_normal(shape)
    delta = rng.standard_normal(conv.forward(x).shape)
    dx = conv.backward(delta)
    course = input_grad_full_convolution(delta, conv.params["W"], stride,
                                         conv.cache["padded_shape"], padding)
    np.testing.assert_allclose(dx, course, atol=1e-12)
