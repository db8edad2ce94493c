"""``cnnlab visualize RUN --filters [--features IMAGE]``: first-layer kernels and feature maps
of a trained model: a run folder, its model.safetensors or checkpoint.pt, a 'cnnlab scratch
train' folder, or MODEL --weights FILE (opened by :func:`cnnlab.resolve.open_source`)."""

from __future__ import annotations

import sys
from pathlib import Path

from . import add_json_arg, add_output_arg, new_command, output_file, print_json


def add_parser(sub) -> None:
    p = new_command(
        sub, "visualize", outputs=True,
        help="draw the first-layer filters and the feature maps of a trained model",
        description="Load a trained model (a run folder, its model.safetensors or checkpoint.pt, "
                    "a 'cnnlab scratch train' folder, or MODEL --weights FILE) and save "
                    "PNGs of its first convolution's kernels and/or of the feature maps of one "
                    "image at each convolution and pooling layer.",
        examples=["cnnlab visualize runs/lenet5 --filters",
                  "cnnlab visualize runs/lenet5 --features digit.png -o pics/",
                  "cnnlab visualize runs/lenet5/checkpoint.pt --filters --json",
                  "cnnlab visualize resnet18 --weights resnet18-f37072fd.pth --filters -o pics/"])
    p.add_argument("run", metavar="RUN_OR_MODEL", help="run folder (or its model.safetensors / "
                   "checkpoint.pt), scratch run folder; with --weights, a registered model name")
    p.add_argument("--weights", metavar="FILE", help="weights file or cnnlab run folder to load "
                   "into the model RUN_OR_MODEL names")
    p.add_argument("--weights-sha256", metavar="HEX", help="refuse the weights file unless its "
                   "SHA-256 starts with HEX")
    p.add_argument("--filters", action="store_true", help="save the first layer's kernels")
    p.add_argument("--features", type=Path, default=None, metavar="IMAGE",
                   help="save the feature maps of this image")
    p.add_argument("--layers", type=int, default=8,
                   help="at most this many layers in the feature-map figure (default 8)")
    add_output_arg(p, "folder for the PNGs (default: the run's folder; with --weights, the "
                      "current folder)", type=Path, metavar="DIR")
    p.add_argument("--no-ema", dest="ema", action="store_false", help="a run trained with "
                   "--ema: draw its raw weights, not the averaged ones (the default)")
    add_json_arg(p, "print what was written and the prediction as JSON")
    p.set_defaults(func=run)


def first_conv(model):
    """(name, module) of the first ``nn.Conv2d`` in definition order."""
    from torch import nn

    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            return name, m
    from ..errors import OptionError

    raise OptionError(f"{type(model).__name__} has no Conv2d layer to draw")


def load_image(path: Path, pre):
    """The image as a (1, C, H, W) tensor the way the model takes it: read (grayscale or RGB,
    scaled to 0..1 by its bit depth, :func:`cnnlab.data.images.read_image`), then ``pre``, the
    run's or the weights' :class:`~cnnlab.data.Preprocess` (the evaluation transform: a
    photo's shorter side resized and its centre cropped, not squashed); and the picture the
    model sees (H x W, values 0..1) for the figure."""
    import torch

    from ..data.images import read_image

    a = torch.from_numpy(read_image(path, 1 if pre.channels == 1 else 3))
    return pre(a).unsqueeze(0), pre.geometry(a).mean(0).numpy()


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


def _preprocess(src):
    """The transform of the model's images: the run's, or its weights' evaluation transform."""
    from ..data import Preprocess
    from ..resolve import scratch_data_config

    if src.preprocess is not None:
        return src.preprocess
    dc = scratch_data_config(src) if src.kind == "scratch" else src.data_config
    return Preprocess.from_config(dc)


def run(args) -> int:
    from ..errors import OptionError
    from ..lab.plots_lab import plot_feature_maps, plot_kernels
    from ..resolve import open_source

    if not args.filters and args.features is None:
        raise OptionError("say what to draw: --filters and/or --features IMAGE")
    if args.layers < 1:
        raise OptionError(f"--layers must be >= 1, got {args.layers}")
    src = open_source(args.run, args.weights, sha256=args.weights_sha256, device="cpu",
                      ema=args.ema, need_weights="")
    out = args.output or (Path(".") if src.kind == "weights" else src.run_dir)
    for name, wanted in (("filters.png", args.filters), ("feature_maps.png", args.features)):
        if wanted:
            output_file(out / name, args, "-o")
    model, name = src.model, src.name
    say = (lambda *a, **k: None) if args.json else print
    result = {"model": name, "source": src.to_dict(), "wrote": []}
    for line in src.notes:
        print(line, file=sys.stderr)
    if args.filters:
        lname, conv = first_conv(model)
        w = conv.weight.detach().numpy()
        path = plot_kernels(w, out / "filters.png",
                            title=f"{name}: {lname} kernels {tuple(w.shape)} (correlation "
                                  "templates)")
        result.update(wrote=result["wrote"] + [str(path)], layer=lname, kernels=list(w.shape))
        say(f"saved {path}")
    if args.features is not None:
        x, shown = load_image(args.features, _preprocess(src))
        model.check_input(x) if hasattr(model, "check_input") else None
        layers, logits = feature_maps(model, x, args.layers)
        pred = int(logits.argmax())
        classes = src.classes
        label = classes[pred] if classes and pred < len(classes) else pred
        path = plot_feature_maps(shown, layers, out / "feature_maps.png",
                                 title=f"{name}: {args.features.name}, predicted {label}")
        result.update(wrote=result["wrote"] + [str(path)], image=str(args.features),
                      predicted={"index": pred, "class": str(label)},
                      layers=[{"name": n, "shape": list(a.shape)} for n, a in layers])
        say(f"saved {path}")
    if args.json:
        print_json(result)
    return 0
