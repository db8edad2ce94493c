"""What to explore: a registered model, a training run folder, or a NumPy (scratch) run.

Each gives ``(model, x, image, classes, source)``: the PyTorch model in eval mode, the
network input (1 x C x H x W, normalised the way the model expects), the same picture in
0..1 for display, the class names and a few lines that say where it all came from.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import CnnlabError, MissingFileError


def _digit(split: str = "test", index: int = 0):
    from ..data.digits import load_digits

    d = load_digits()
    img, label = d.split(split)[index]
    return d, img, label


def _prepare(img: torch.Tensor, c: int, h: int, w: int, mean, std, resize=None,
             interpolation="bilinear"):
    from ..data import Preprocess

    pre = Preprocess(c, (h, w), mean, std, resize, interpolation)
    return pre(img)[None], pre.geometry(img).clamp(0, 1)


def _image_file(path: Path, c: int):
    from ..data.folder import load_image

    if not Path(path).is_file():
        raise MissingFileError(f"no image file at {path}")
    return load_image(path, 1 if c == 1 else 3)


def photo(index: int = 0):
    """One of scikit-learn's bundled sample photos (3 x H x W, 0..1) and its name."""
    from sklearn.datasets import load_sample_image

    name = ("china.jpg", "flower.jpg")[index]
    a = load_sample_image(name)  # H x W x 3 uint8, shipped with scikit-learn
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))).float() / 255.0, name


def from_model(name: str, image: Path | None = None, input_size=None, seed: int = 0,
               weights=None):
    """A registered model with ``weights`` (a file, a cnnlab run folder, or a bundled name;
    a model with bundled weights uses them by default: ``lenet5``), else its initial weights,
    seeded. The default image is a photo (3 channels) or a digit (1 channel), prepared with
    the evaluation transform of the weights (``cnnlab.data_config``, or the run's)."""
    from ..bundled import for_command
    from ..data.config import data_config, from_run_config
    from ..data.imagenet import names_for
    from ..registry import create_model, get_entry

    entry = get_entry(name)
    given = input_size is not None
    c, h, w = input_size or entry.input_size
    weights = for_command(name, weights)
    cfg = {}
    torch.manual_seed(seed)
    if weights is not None:
        from ..pretrained import create_pretrained, read_weights

        wf = read_weights(weights)
        cfg = wf.run_config if wf.run_config and wf.run_config.get("model") == name else {}
        notes: list[str] = []
        model = create_pretrained(name, wf, in_chans=c if given else None, log=notes.append)
        model = model.eval()
        c = int(getattr(model, "in_chans", c))
        wpath = Path(str(weights))
        bundled = "bundled" in wpath.parts
        what = (f"{name}: trained weights bundled with cnnlab ({wpath.name})" if bundled
                else f"{name}: weights {wpath.name}")
        if cfg.get("data"):
            what += f", trained on {cfg['data'].get('spec', '?')}"
    else:
        model = create_model(name, in_chans=c).eval()
        what = f"{name}: untrained (random initial weights, seed {seed})"
    if hasattr(model, "check_input"):
        model.check_input(torch.zeros(1, c, h, w))
    dc = from_run_config(cfg) if cfg else data_config(name)
    dc = dc.override(input_size=(c, h, w))
    n = int(getattr(model, "num_classes", 0))
    classes = list(cfg.get("classes") or []) or names_for(n)
    if image is not None:
        img, shown_what = _image_file(image, c), f"image {Path(image).name}"
    elif c == 3:
        img, pname = photo()
        shown_what = f"photo {pname} (scikit-learn's sample images)"
    else:
        d, img, label = _digit()
        shown_what = f"digits test image 0 (label {label})"
    x, shown = _prepare(img, c, h, w, dc.mean, dc.std, dc.resize, dc.interpolation)
    norm = f"{dc.describe()} ({dc.source})"
    src = {"kind": "model", "what": what, "image": shown_what, "norm": norm, "arch": name,
           "arch_kwargs": dict(cfg.get("model_kwargs") or {"in_chans": c}),
           "trained": weights is not None}
    if weights is None:
        src["note"] = ("Random weights: nothing was learned, so the prediction means nothing "
                       "and the maps show what random filters do. Give trained weights with "
                       "--weights FILE.")
    return model, x, shown, classes, src


def from_run(path: Path, image: Path | None = None):
    """A ``cnnlab train`` run folder (or checkpoint): trained weights, classes, normalisation."""
    from ..data import load_data
    from ..training.runs import open_run

    model, config, pre = open_run(path)
    c, h, w = config["input_size"]
    if image is not None:
        img, what = _image_file(image, c), f"image {Path(image).name}"
    else:
        spec = (config.get("data") or {}).get("spec", "digits")
        try:
            data = load_data(spec)
            img, label = data.test[0]
            what = f"{data.name} test image 0 (label {config['classes'][label]})"
        except (CnnlabError, OSError, ValueError):
            _, img, label = _digit()
            what = f"digits test image 0 (label {label}); the run's data {spec} was not found"
    x = pre(img)[None]
    shown = pre.geometry(img).clamp(0, 1)
    src = {"kind": "run", "what": f"{config['model']} trained run {Path(path).name}",
           "trained": True,
           "image": what, "norm": f"mean {_fmt(pre.mean)}, std {_fmt(pre.std)} (the run's)",
           "arch": config["model"], "arch_kwargs": config.get("model_kwargs", {})}
    return model, x, shown, list(config["classes"]), src


def from_scratch(path: Path, image: Path | None = None, index: int = 0):
    """A ``cnnlab scratch train --out DIR`` run: the NumPy LeNet-5's weights in the PyTorch
    LeNet-5 (kernels rotated by 180 degrees: the engine convolves, PyTorch correlates), checked
    to give the same logits as the NumPy forward pass."""
    from ..registry import create_model
    from ..scratch.runs import open_run, run_data
    from ..scratch.train import load_digits_split, resize_bilinear

    path = Path(path)
    net, cfg = open_run(path, dtype=np.float32)
    size = int(cfg["input_size"])
    kwargs = {"activation": cfg["activation"], "pool": cfg["pool"],
              "c1_padding": 2 if size == 28 else 0}
    model = create_model("lenet5", **kwargs).eval()
    names = {"c1": "features.c1", "c3": "features.c3", "c5": "features.c5", "f6": "f6",
             "output": "output"}
    state = {}
    for ours, theirs in names.items():
        w = net[ours].params["W"]
        w = w[..., ::-1, ::-1] if w.ndim == 4 else w.T if w.shape != (
            model.get_submodule(theirs).weight.shape) else w
        state[f"{theirs}.weight"] = torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32))
        state[f"{theirs}.bias"] = torch.from_numpy(
            np.ascontiguousarray(net[ours].params["b"], dtype=np.float32).reshape(-1))
    model.load_state_dict(state)
    spec = cfg.get("data", "digits")
    try:
        data, data_name, norm_of = run_data(cfg), spec, "the run's training set"
    except (CnnlabError, OSError, ValueError):  # the run's data is not on this machine
        data, data_name = load_digits_split(size), "digits"
        norm_of = f"the digits' training set: the run's data {spec} was not found"
    if image is not None:
        img = _image_file(image, 1)[0].double().numpy()
        img = resize_bilinear(img[None], size)[0]
        x_np = ((img - data["mean"]) / data["std"])[None, None].astype(np.float32)
        what = f"image {Path(image).name}"
    else:
        xs, ys = data["test"]
        x_np, what = xs[index:index + 1], f"{data_name} test image {index} (label {ys[index]})"
    x = torch.from_numpy(np.ascontiguousarray(x_np))
    np_logits = net.forward(x_np)
    with torch.no_grad():
        t_logits = model(x).numpy()
    diff = float(np.abs(np_logits - t_logits).max())
    if diff > 1e-3:
        raise CnnlabError(f"{path}: the NumPy and PyTorch LeNet-5 disagree by {diff:.3g}; "
                          "the weights do not fit")
    shown = (x[0] * data["std"] + data["mean"])
    lo, hi = float(shown.min()), float(shown.max())
    shown = (shown - lo) / max(hi - lo, 1e-6)
    src = {"kind": "scratch", "what": f"NumPy LeNet-5 from 'cnnlab scratch train' in {path.name} "
           f"({cfg['activation']}, {cfg['pool']} pool, {size}x{size}, test accuracy "
           f"{cfg.get('test_acc', float('nan')):.4f})",
           "image": what, "norm": f"mean {data['mean']:.4f}, std {data['std']:.4f} ({norm_of})",
           "note": "The NumPy engine stores each kernel W for a true convolution; the PyTorch "
                   "layer shown here holds rot180(W) and correlates: the same numbers. Its "
                   f"logits equal the NumPy forward pass's to {diff:.1e}.",
           "arch": "lenet5", "arch_kwargs": kwargs, "trained": True}
    return model, x, shown, [str(i) for i in range(10)], src


def _fmt(v) -> str:
    return "[" + ", ".join(f"{float(a):.4g}" for a in v) + "]"
