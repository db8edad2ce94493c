"""Classical filters against scipy.signal, the kernel flip, pooling, saving and the CLI."""

import numpy as np
import pytest

from cnnlab.lab import filters as F

signal = pytest.importorskip("scipy.signal")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.mark.parametrize("mode", ["full", "valid", "same"])
@pytest.mark.parametrize("boundary,scipy_boundary", [("zero", "fill"), ("symmetric", "symm"),
                                                     ("wrap", "wrap")])
@pytest.mark.parametrize("kshape", [(3, 3), (5, 3), (1, 3)])
def test_convolve_and_correlate_equal_scipy(rng, mode, boundary, scipy_boundary, kshape):
    x = rng.standard_normal((11, 14))
    k = rng.standard_normal(kshape)
    np.testing.assert_allclose(F.convolve2d(x, k, mode, boundary),
                               signal.convolve2d(x, k, mode, scipy_boundary), atol=1e-12)
    np.testing.assert_allclose(F.correlate2d(x, k, mode, boundary),
                               signal.correlate2d(x, k, mode, scipy_boundary), atol=1e-12)


@pytest.mark.parametrize("kshape", [(2, 2), (4, 3)])
@pytest.mark.parametrize("mode", ["full", "valid"])
def test_even_kernels_in_full_and_valid_equal_scipy(rng, kshape, mode):
    x, k = rng.standard_normal((9, 8)), rng.standard_normal(kshape)
    np.testing.assert_allclose(F.convolve2d(x, k, mode), signal.convolve2d(x, k, mode),
                               atol=1e-12)


def test_convolution_is_correlation_with_the_kernel_rotated_by_180_degrees(rng):
    x, k = rng.standard_normal((8, 9)), rng.standard_normal((3, 3))
    np.testing.assert_allclose(F.convolve2d(x, k), F.correlate2d(x, np.rot90(k, 2)))
    # the impulse response shows the flip: convolution reproduces the kernel, correlation
    # reproduces it rotated
    impulse = np.zeros((5, 5))
    impulse[2, 2] = 1
    k = np.arange(9.0).reshape(3, 3)
    np.testing.assert_array_equal(F.convolve2d(impulse, k)[1:4, 1:4], k)
    np.testing.assert_array_equal(F.correlate2d(impulse, k)[1:4, 1:4], np.rot90(k, 2))


def test_stride_keeps_every_stride_th_output(rng):
    x, k = rng.standard_normal((10, 11)), rng.standard_normal((3, 3))
    full = F.convolve2d(x, k, "same")
    np.testing.assert_allclose(F.convolve2d(x, k, "same", stride=2), full[::2, ::2])
    # (11 - 3) // 3 + 1 = 3 columns in valid mode with stride 3
    assert F.correlate2d(x, k, "valid", stride=3).shape == ((10 - 3) // 3 + 1, 3)


def test_boundary_modes_by_hand():
    x = np.array([[1.0, 2.0, 3.0]])
    k = np.array([[1.0, 0.0, 0.0]])  # correlation picks the left neighbour
    assert F.correlate2d(x, k, "same", "zero").tolist() == [[0, 1, 2]]
    assert F.correlate2d(x, k, "same", "replicate").tolist() == [[1, 1, 2]]
    assert F.correlate2d(x, k, "same", "reflect").tolist() == [[2, 1, 2]]
    assert F.correlate2d(x, k, "same", "symmetric").tolist() == [[1, 1, 2]]
    assert F.correlate2d(x, k, "same", "wrap").tolist() == [[3, 1, 2]]


def test_sobel_on_a_vertical_step_edge():
    # columns 0..2 are 0, columns 3..5 are 10: a vertical edge between columns 2 and 3
    x = np.zeros((6, 6))
    x[:, 3:] = 10
    gx = F.correlate2d(x, F.get_kernel("sobel-x"), "valid")
    # a window straddling the edge sees (-1 - 2 - 1) * 0 + (1 + 2 + 1) * 10 = 40
    assert gx.tolist() == [[0, 40, 40, 0]] * 4
    assert (F.convolve2d(x, F.get_kernel("sobel-x"), "valid") == -gx).all()  # the flip
    assert (F.correlate2d(x, F.get_kernel("sobel-y"), "valid") == 0).all()
    mag = F.apply_filter(x, "sobel", op="correlate", mode="valid")
    assert mag.tolist() == [[0, 40, 40, 0]] * 4
    # float output: a uint8 image would have wrapped 255 * 4 = 1020 around
    big = np.zeros((3, 4), dtype=np.uint8)
    big[:, 2:] = 255
    assert F.correlate2d(big, F.get_kernel("sobel-x"), "valid").max() == 1020


def test_line_detectors_respond_most_to_their_own_line():
    img = {"line-h": np.zeros((5, 5)), "line-v": np.zeros((5, 5)),
           "line+45": np.zeros((5, 5)), "line-45": np.zeros((5, 5))}
    img["line-h"][2, :] = 1
    img["line-v"][:, 2] = 1
    img["line+45"][::-1][np.arange(5), np.arange(5)] = 1   # bottom-left to top-right
    img["line-45"][np.arange(5), np.arange(5)] = 1
    for name, x in img.items():
        centre = {k: F.correlate2d(x, F.get_kernel(k), "valid")[1, 1] for k in img}
        assert max(centre, key=centre.get) == name
        assert centre[name] == 6  # 3 on-line pixels x 2, off-line pixels are 0


def test_blur_kernels_sum_to_one_and_gaussian_is_symmetric():
    g = F.gaussian_kernel(5, 1.0)
    assert g.sum() == pytest.approx(1.0) and np.allclose(g, g.T) and np.allclose(g, g[::-1])
    assert g[2, 2] == g.max()
    # ratio centre / direct neighbour = exp(1 / (2 sigma^2)) = exp(0.5)
    assert g[2, 2] / g[2, 3] == pytest.approx(np.exp(0.5))
    assert F.box_kernel(3).tolist() == [[1 / 9] * 3] * 3
    x = np.full((6, 6), 7.0)
    np.testing.assert_allclose(F.apply_filter(x, "gaussian", boundary="replicate"), x)


def test_pooling_by_hand():
    x = np.arange(16.0).reshape(4, 4)
    assert F.max_pool2d(x, 2).tolist() == [[5, 7], [13, 15]]
    assert F.avg_pool2d(x, 2).tolist() == [[2.5, 4.5], [10.5, 12.5]]
    # overlapping windows: (4 - 3) // 1 + 1 = 2
    assert F.max_pool2d(x, 3, stride=1).tolist() == [[10, 11], [14, 15]]
    assert F.avg_pool2d(np.arange(15.0).reshape(3, 5), 2).shape == (1, 2)


def test_to_uint8_modes():
    r = np.array([[-4.0, 0.0, 2.0, 4.0]])
    assert F.to_uint8(r, "symmetric").tolist() == [[0, 128, 191, 255]]  # 127.5 + 127.5 x / 4
    assert F.to_uint8(r, "minmax").tolist() == [[0, 128, 191, 255]]     # (x + 4) / 8 * 255
    assert F.to_uint8(r, "abs").tolist() == [[255, 0, 128, 255]]
    assert F.to_uint8(np.array([[-5.0, 300.0]]), "clip").tolist() == [[0, 255]]
    assert F.to_uint8(np.array([[10.0, 20.0]])).tolist() == [[10, 20]]  # auto -> clip
    assert F.to_uint8(np.array([[0.0, 1000.0]])).tolist() == [[0, 255]]  # auto -> minmax


def test_errors_name_the_problem():
    with pytest.raises(F.UnknownKernelError, match="did you mean 'sobel-x'"):
        F.get_kernel("sobelx")
    with pytest.raises(F.KernelShapeError, match="2x2 kernel has no centre"):
        F.convolve2d(np.zeros((5, 5)), F.get_kernel("roberts-x"), "same")
    with pytest.raises(F.KernelShapeError, match="odd size"):
        F.gaussian_kernel(4)
    with pytest.raises(ValueError, match="2-D array"):
        F.convolve2d(np.zeros((3, 3, 3)), np.ones((3, 3)))
    with pytest.raises(ValueError, match="not rectangular"):
        F.parse_kernel("1,2;3")


# ----------------------------------------------------------------------------- the CLI
@pytest.fixture
def image_file(tmp_path):
    from PIL import Image

    a = np.zeros((20, 30, 3), dtype=np.uint8)
    a[:, 15:] = (200, 100, 50)  # a vertical edge, in colour
    path = tmp_path / "edge.png"
    Image.fromarray(a).save(path)
    return path


def test_cli_filter_writes_image_npy_and_figure(cli, image_file, tmp_path):
    from PIL import Image

    out = tmp_path / "gx.png"
    res = cli("filter", str(image_file), "--kernel", "sobel-x", "--kernel", "roberts",
              "-o", str(out))
    assert res.returncode == 0, res.stderr
    assert "roberts: kernel 2x2, mode valid, output 19x29" in res.stdout
    sobel = np.asarray(Image.open(tmp_path / "gx_sobel-x.png"))
    assert sobel.shape == (20, 30) and sobel.dtype == np.uint8
    # convolution flips sobel-x: dark-to-bright edge -> negative -> below the 128 grey
    assert sobel[10, 14] == 0 and sobel[10, 2] == 128 and sobel[10, 20] == 128
    assert (tmp_path / "gx_figure.png").stat().st_size > 1000
    res = cli("filter", str(image_file), "-k", "sobel-x", "--correlate", "-o",
              str(tmp_path / "gx.npy"), "--figure", "none")
    assert res.returncode == 0, res.stderr
    raw = np.load(tmp_path / "gx.npy")
    gray = round(0.299 * 200 + 0.587 * 100 + 0.114 * 50)  # Pillow's L conversion: 124
    assert raw.max() == 4 * gray == 496 and raw.min() == 0


def test_cli_filter_list(cli):
    res = cli("filter", "--list")
    assert res.returncode == 0
    names = [line.split()[0] for line in res.stdout.splitlines()]
    for name in ("dx", "dy", "roberts", "prewitt-x", "sobel", "line-h", "line+45", "line-45",
                 "box", "gaussian"):
        assert name in names


@pytest.mark.parametrize("argv,message", [
    (["--kernel", "sobelx"], "unknown kernel 'sobelx'; did you mean 'sobel-x'"),
    (["--kernel", "roberts-x", "--mode", "same"], "has no centre"),
])
def test_cli_filter_bad_kernel(cli, image_file, argv, message):
    res = cli("filter", str(image_file), *argv)
    assert res.returncode == 2 and message in res.stderr
    assert "Traceback" not in res.stderr and res.stderr.strip().count("\n") == 0


def test_cli_filter_unreadable_image(cli, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    res = cli("filter", str(bad), "--kernel", "sobel")
    assert res.returncode == 2 and "cannot read" in res.stderr and "Traceback" not in res.stderr
    res = cli("filter", str(tmp_path / "missing.png"), "--kernel", "sobel")
    assert res.returncode == 2 and "no image file" in res.stderr
