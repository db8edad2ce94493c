"""``cnnlab visualize RUN --filters [--features IMAGE]``: first-layer kernels and feature maps
of a trained PyTorch model (a run folder: model.safetensors + config.json)."""

from __future__ import annotations

from pathlib import Path

from ..errors import UsageError
from . import new_command, output_file


def add_parser(sub) -> None:
    p = new_command(
        sub, "visualize", outputs=True,
        help="draw the first-layer filters and the feature maps of a trained model",
        description="Load the model of a run folder (model.safetensors + config.json) and save "
                    "PNGs of its first convolution's kernels and/or of the feature maps of one "
                    "image at each convolution and pooling layer.",
        examples=["cnnlab visualize runs/lenet5 --filters",
                  "cnnlab visualize runs/lenet5 --features digit.png --out pics/"])
    p.add_argument("run", type=Path, help="run folder with model.safetensors and config.json")
    p.add_argument("--filters", action="store_true", help="save the first layer's kernels")
    p.add_argument("--features", type=Path, default=None, metavar="IMAGE",
                   help="save the feature maps of this image")
    p.add_argument("--layers", type=int, default=8,
                   help="at most this many layers in the feature-map figure (default 8)")
    p.add_argument("--out", type=Path, default=None, help="folder for the PNGs (default: RUN)")
    p.set_defaults(func=run)


def first_conv(model):
    """(name, module) of the first ``nn.Conv2d`` in definition order."""
    from torch import nn

    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            return name, m
    raise UsageError(f"{type(model).__name__} has no Conv2d layer to draw")


def load_image(path: Path, config: dict):
    """The image as a (1, C, H, W) tensor the way the run was trained: grayscale or RGB, resized
    (bilinear) to the run's input size, scaled to 0..1 by its bit depth
    (:func:`cnnlab.data.images.read_image`), normalised with its mean and std."""
    import numpy as np
    import torch

    from ..data.images import read_image

    c, h, w = config.get("input_size", (1, 32, 32))
    a = read_image(path, 1 if c == 1 else 3, size=(h, w))
    mean = np.asarray(config.get("mean", [0.0] * c), dtype=np.float32).reshape(-1, 1, 1)
    std = np.asarray(config.get("std", [1.0] * c), dtype=np.float32).reshape(-1, 1, 1)
    return torch.from_numpy((a - mean) / std)[None], a.mean(axis=0)


def feature_maps(model, x, max_layers: int = 8):
    """[(name, array)] outputs of the Conv2d and pooling layers (and the logits) for ``x``."""
    import torch
    from torch import nn

    kinds = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)
    outs, hooks = [], []
    for name, m in model.named_modules():
        if isinstance(m, kinds):
            hooks.append(m.register_forward_hook(
                lambda mod, inp, out, name=name: outs.append((name, out[0].detach().numpy()))))
    try:
        with torch.no_grad():
            logits = model(x)
    finally:
        for h in hooks:
            h.remove()
    outs = outs[:max_layers]
    outs.append(("logits", logits[0].detach().numpy()))
    return outs, logits


def run(args) -> int:
    from ..lab.plots_lab import plot_feature_maps, plot_kernels
    from ..weights import load_run_model

    if not args.filters and args.features is None:
        raise UsageError("say what to draw: --filters and/or --features IMAGE")
    if args.layers < 1:
        raise UsageError(f"--layers must be >= 1, got {args.layers}")
    out = args.out or args.run
    for name, wanted in (("filters.png", args.filters), ("feature_maps.png", args.features)):
        if wanted:
            output_file(out / name, args, "--out")
    model, config = load_run_model(args.run)
    name = config["model"]
    if args.filters:
        lname, conv = first_conv(model)
        w = conv.weight.detach().numpy()
        path = plot_kernels(w, out / "filters.png",
                            title=f"{name}: {lname} kernels {tuple(w.shape)} (correlation "
                                  "templates)")
        print(f"saved {path}")
    if args.features is not None:
        x, shown = load_image(args.features, config)
        model.check_input(x) if hasattr(model, "check_input") else None
        layers, logits = feature_maps(model, x, args.layers)
        pred = int(logits.argmax())
        classes = config.get("classes")
        label = classes[pred] if classes and pred < len(classes) else pred
        path = plot_feature_maps(shown, layers, out / "feature_maps.png",
                                 title=f"{name}: {args.features.name}, predicted {label}")
        print(f"saved {path}")
    return 0
