"""``cnnlab predict RUN IMAGE...`` or ``cnnlab predict MODEL --weights FILE IMAGE...``: the
top-k classes of each image.

Images (files, or folders searched recursively for image files) are read, classified and
printed in batches of ``--batch-size`` under ``torch.inference_mode``, so memory does not grow
with the number of files. With ``--weights`` no run folder is needed: the model is built from
the file (its class count and input channels) and images are prepared with the evaluation
transform of the architecture's published weights (:func:`cnnlab.data_config`: resize the
shorter side, centre crop, normalise; ``--resize``, ``--crop``, ``--interpolation``, ``--mean``,
``--std`` change it); a cnnlab run's file brings its own. Classes are named by ``--classes
names.txt`` (one per line), the run's names, the ImageNet-1k names for a 1000-class model, or
shown as indices.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from . import add_device_arg, new_command, parse_input_size


def add_parser(sub) -> None:
    p = new_command(
        sub, "predict", help="classify image files with a trained run or a weights file",
        examples=["cnnlab predict runs/lenet5-digits digit.png",
                  "cnnlab predict runs/resnet20-cifar cat.jpg dog.jpg --top-k 3",
                  "cnnlab predict resnet50 --weights resnet50-0676ba61.pth photos/",
                  "cnnlab predict efficientnet_b0 --weights FILE --resize 256 --crop 224 "
                  "--interpolation bicubic cat.jpg",
                  "cnnlab predict resnet20 --weights runs/resnet20-digits photos/ --json"])
    p.add_argument("run", metavar="RUN_OR_MODEL",
                   help="run folder (or its model.safetensors / checkpoint.pt); with --weights, "
                   "a registered model name")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files or folders of images")
    p.add_argument("--weights", metavar="FILE", help="weights file (.safetensors/.pth/.pt/.bin) "
                   "or cnnlab run folder to load into the model RUN_OR_MODEL names")
    p.add_argument("--weights-sha256", metavar="HEX", help="refuse the weights file unless its "
                   "SHA-256 starts with HEX")
    p.add_argument("--classes", metavar="TXT", help="class names, one per line, in index order")
    p.add_argument("--input-size", type=parse_input_size, help="model input CxHxW (with "
                   "--weights; default: the model's native size, the file's channels)")
    add_transform_args(p)
    p.add_argument("--top-k", type=int, default=5, help="classes to show per image (default 5)")
    p.add_argument("--batch-size", type=int, default=32, help="images per batch (default 32)")
    add_device_arg(p)
    p.add_argument("--channels-last", action="store_true", help="channels_last memory format")
    p.add_argument("--amp", choices=("none", "bf16", "fp16"), default="none",
                   help="autocast to bf16 or fp16 (default none)")
    p.add_argument("--fuse", action="store_true",
                   help="fold batch norm into the convolution before it and store the "
                        "weights channels-last (cnnlab.fuse): the same outputs, faster "
                        "on a CPU")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--no-ema", dest="ema", action="store_false", help="a run trained with "
                   "--ema: use its raw weights, not the averaged ones (the default)")
    p.set_defaults(func=run)


def add_transform_args(p) -> None:
    """--mean/--std/--resize/--crop/--interpolation: override the evaluation transform."""
    p.add_argument("--mean", type=float, nargs="+", help="normalisation mean per channel")
    p.add_argument("--std", type=float, nargs="+", help="normalisation std per channel")
    p.add_argument("--resize", type=int, metavar="N", help="resize the shorter side to N "
                   "before the centre crop (default: the weights' evaluation transform; "
                   "'cnnlab weights inspect FILE' shows it)")
    p.add_argument("--crop", type=int, metavar="N", help="centre crop N x N, the model's "
                   "input (default: the weights'; a new crop alone keeps the crop fraction)")
    p.add_argument("--interpolation", metavar="NAME",
                   help="bilinear, bicubic or nearest (default: the weights')")


def apply_transform_args(dc, args, channels: int | None = None, pad_from=None):
    """``(DataConfig, Preprocess)``: ``dc`` with the user's --resize/--crop/--interpolation/
    --mean/--std/--input-size, and the transform it describes (``pad_from``: see Preprocess)."""
    from ..data import Preprocess

    dc = dc.override(**{k: getattr(args, k, None) for k in ("resize", "crop", "interpolation",
                                                             "mean", "std", "input_size")})
    return dc, Preprocess.from_config(dc, channels=channels, pad_from=pad_from)


def fused_if_asked(model, args):
    """``model`` through :func:`cnnlab.fuse` when ``--fuse`` was given, saying on stderr what
    was folded."""
    if not getattr(args, "fuse", False):
        return model
    from ..fuse import fuse

    fused = fuse(model.eval())
    print(f"--fuse: {fused.fuse_report.line()}", file=sys.stderr)
    return fused


def _read_classes(path: str, n: int) -> list[str]:
    from ..errors import DataError

    try:
        names = [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"cannot read the class names in {path}: {err}") from None
    if len(names) != n:
        raise DataError(f"{path} names {len(names)} classes, the model has {n}; give one name "
                         "per line, in index order")
    return names


def open_model(args, need_weights: str = ""):
    """(model in eval mode, class names, Preprocess, notes to print, the DataConfig used) for
    RUN, or MODEL with --weights (:func:`cnnlab.resolve.open_source`). Reads ``args.run``,
    ``weights``, ``weights_sha256``, ``device``, ``ema``, and the optional ``classes``,
    ``input_size``, ``mean``, ``std``, ``resize``, ``crop``, ``interpolation``."""
    from ..resolve import open_source, scratch_data_config

    opt = {k: getattr(args, k, None) for k in ("classes", "input_size", "mean", "std",
                                                "resize", "crop", "interpolation")}
    src = open_source(args.run, args.weights, sha256=getattr(args, "weights_sha256", None),
                      device=getattr(args, "device", "auto"), ema=getattr(args, "ema", True),
                      in_chans=opt["input_size"][0] if opt["input_size"] else None,
                      need_weights=need_weights)
    notes = list(src.notes)  # printed once everything is known to be right
    if src.config and src.config.get("weights_used"):
        notes.append(f"using {src.config['weights_used']}; --no-ema for the raw weights")
    if src.kind == "weights" and src.config is None and not any(opt[k] for k in (
            "resize", "crop", "interpolation", "input_size", "mean", "std")):
        notes.append(f"{args.run}: evaluation transform of {src.data_config.source}: "
                     f"{src.data_config.describe()}; --resize/--crop/--interpolation/--mean/"
                     "--std to change it")
    pad = src.preprocess.pad_from if src.preprocess is not None else None
    if src.kind == "scratch":  # the NumPy LeNet-5: its training data's normalisation
        src.data_config = scratch_data_config(src)
    dc, pre = apply_transform_args(src.data_config, args, getattr(src.model, "in_chans", None),
                                   None if opt["input_size"] else pad)
    classes = src.classes
    if opt["classes"]:
        classes = _read_classes(opt["classes"], len(classes))
    return src.model, classes, pre, notes, dc


def image_files(inputs: list[str]):
    """The image files of ``inputs`` (folders searched recursively, sorted), lazily."""
    from ..data.folder import EXTENSIONS
    from ..errors import DataError

    for text in inputs:  # every argument is checked before the first batch runs
        if not Path(text).exists():
            raise DataError(f"no such image or folder: {text}")
    for text in inputs:
        path = Path(text)
        if path.is_dir():
            found = False
            for f in sorted(path.rglob("*")):
                if f.is_file() and f.suffix.lower() in EXTENSIONS and not f.name.startswith("."):
                    found = True
                    yield f
            if not found:
                raise DataError(f"{path} holds no image files ({', '.join(sorted(EXTENSIONS))})")
        else:
            yield path


def batches(items, size: int):
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def predict_batches(model, pre, files, batch_size: int, device, channels_last=False,
                    amp="none"):
    """Yield (paths, probabilities) batch by batch."""
    from contextlib import nullcontext

    import torch

    from ..data.folder import load_image
    from ..models.base import main_logits

    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
    device = torch.device(device)
    ctx = torch.autocast(device.type, dtype=dtype) if dtype else nullcontext()
    for paths in batches(files, batch_size):
        images = [load_image(path, 1 if pre.channels == 1 else 3) for path in paths]
        x = torch.stack([pre(im) for im in images]).to(device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), ctx:
            logits = main_logits(model(x))
        yield paths, torch.softmax(logits.float(), dim=1).cpu()


def run(args) -> int:
    from ..errors import OptionError

    if args.top_k < 1:
        raise OptionError(f"--top-k must be at least 1, got {args.top_k}")
    if args.batch_size < 1:
        raise OptionError(f"--batch-size must be at least 1, got {args.batch_size}")
    from ..bundled import for_command

    args.weights = for_command(args.run, args.weights)  # bundled: "predict lenet5 digit.png"
    model, classes, pre, notes, _ = open_model(args)
    model = fused_if_asked(model, args)
    files = image_files(args.images)
    first = next(files)  # raises before any output when an input is missing
    for line in notes:
        print(line, file=sys.stderr)
    k = min(args.top_k, len(classes))

    def all_files():
        yield first
        yield from files

    n = 0
    if args.json:
        print("[")
    device = next(model.parameters()).device  # --device auto: the one the model went to
    for paths, probs in predict_batches(model, pre, all_files(), args.batch_size, device,
                                        args.channels_last, args.amp):
        top = probs.topk(k, dim=1)
        for path, p, i in zip(paths, top.values.tolist(), top.indices.tolist(), strict=True):
            item = {"image": str(path), "top": [{"class": classes[j], "index": j,
                                                 "probability": q}
                                                for q, j in zip(p, i, strict=True)]}
            if args.json:
                print(("," if n else "") + json.dumps(item))
            else:
                print(item["image"])
                for rank, t in enumerate(item["top"], 1):
                    print(f"  {rank}. {t['class']:<20} {100 * t['probability']:6.2f}%")
            n += 1
        sys.stdout.flush()
    if args.json:
        print("]")
    return 0
