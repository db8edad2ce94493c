"""``cnnlab predict RUN IMAGE...`` or ``cnnlab predict MODEL --weights FILE IMAGE...``: the
top-k classes of each image.

Images (files, or folders searched recursively for image files) are read, classified and
printed in batches of ``--batch-size`` under ``torch.inference_mode``, so memory does not grow
with the number of files. With ``--weights`` no run folder is needed: the model is built from
the file (its class count and input channels), the input size is the model's native one and
the normalisation ImageNet's for 3-channel images unless ``--input-size``, ``--mean`` and
``--std`` say otherwise; classes are named by ``--classes names.txt`` (one per line) or shown
as indices.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from . import new_command, parse_input_size


def add_parser(sub) -> None:
    p = new_command(
        sub, "predict", help="classify image files with a trained run or a weights file",
        examples=["cnnlab predict runs/lenet5-digits digit.png",
                  "cnnlab predict runs/resnet20-cifar cat.jpg dog.jpg --top-k 3",
                  "cnnlab predict resnet50 --weights resnet50-0676ba61.pth "
                  "--classes imagenet_classes.txt photos/",
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
    p.add_argument("--mean", type=float, nargs="+", help="normalisation mean per channel")
    p.add_argument("--std", type=float, nargs="+", help="normalisation std per channel")
    p.add_argument("--top-k", type=int, default=5, help="classes to show per image (default 5)")
    p.add_argument("--batch-size", type=int, default=32, help="images per batch (default 32)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--channels-last", action="store_true", help="channels_last memory format")
    p.add_argument("--amp", choices=("none", "bf16", "fp16"), default="none",
                   help="autocast to bf16 or fp16 (default none)")
    p.add_argument("--fuse", action="store_true",
                   help="fold batch norm into the convolution before it (cnnlab.fuse)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def _read_classes(path: str, n: int) -> list[str]:
    try:
        names = [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"cannot read the class names in {path}: {err}") from None
    if len(names) != n:
        raise ValueError(f"{path} names {len(names)} classes, the model has {n}; give one name "
                         "per line, in index order")
    return names


def open_model(args):
    """(model in eval mode, class names, Preprocess, notes to print) for RUN, or MODEL with
    --weights."""

    from ..data import Preprocess
    from ..errors import CheckpointError
    from ..pretrained import (
        IMAGENET_MEAN,
        IMAGENET_STD,
        create_pretrained,
        is_imagenet_architecture,
        read_weights,
    )
    from ..registry import get_entry, list_models
    from ..training.runs import open_run

    notes: list[str] = []  # printed once everything is known to be right
    say = notes.append

    if args.weights is None:
        if args.run in list_models() and not Path(args.run).exists():
            raise CheckpointError(f"{args.run} is a model name: give its weights with "
                                  "--weights FILE (or give a run folder instead)")
        if args.weights_sha256:
            raise ValueError("--weights-sha256 checks the file given with --weights")
        model, config, pre = open_run(args.run, args.device)
        classes = list(config["classes"])
        if args.mean or args.std or args.input_size:
            c, h, w = args.input_size or (pre.channels, *pre.size)
            pre = Preprocess(c, (h, w), args.mean or pre.mean, args.std or pre.std)
    else:
        entry = get_entry(args.run)
        wf = read_weights(args.weights, args.weights_sha256)
        cfg = wf.run_config if wf.run_config and wf.run_config.get("model") == args.run else {}
        c = args.input_size[0] if args.input_size else None
        model = create_pretrained(args.run, wf, in_chans=c, log=say)
        model = model.to(args.device).eval()
        c = model.in_chans
        if args.input_size:
            h, w = args.input_size[1:]
        elif cfg.get("input_size"):
            h, w = cfg["input_size"][1:]
        else:
            h, w = entry.input_size[1:]
        mean, std = args.mean or cfg.get("mean"), args.std or cfg.get("std")
        if mean is None or std is None:
            if c == 3 and is_imagenet_architecture(args.run):
                mean, std = mean or IMAGENET_MEAN, std or IMAGENET_STD
                say(f"{args.run}: ImageNet normalisation (mean {list(IMAGENET_MEAN)}, std "
                    f"{list(IMAGENET_STD)}); --mean/--std to change it")
            else:
                mean, std = mean or (0.5,) * c, std or (0.5,) * c
                say(f"{args.run}: normalisation mean 0.5, std 0.5 (the file does not say); "
                    "--mean/--std to change it")
        pre = Preprocess(c, (h, w), mean, std)
        n = getattr(model, "num_classes", 0)
        classes = list(cfg.get("classes") or [str(i) for i in range(n)])
    if args.classes:
        classes = _read_classes(args.classes, len(classes))
    return model, classes, pre, notes


def image_files(inputs: list[str]):
    """The image files of ``inputs`` (folders searched recursively, sorted), lazily."""
    from ..data.folder import EXTENSIONS

    for text in inputs:  # every argument is checked before the first batch runs
        if not Path(text).exists():
            raise FileNotFoundError(f"no such image or folder: {text}")
    for text in inputs:
        path = Path(text)
        if path.is_dir():
            found = False
            for f in sorted(path.rglob("*")):
                if f.is_file() and f.suffix.lower() in EXTENSIONS and not f.name.startswith("."):
                    found = True
                    yield f
            if not found:
                raise ValueError(f"{path} holds no image files ({', '.join(sorted(EXTENSIONS))})")
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
    if args.top_k < 1:
        raise ValueError(f"--top-k must be at least 1, got {args.top_k}")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {args.batch_size}")
    model, classes, pre, notes = open_model(args)
    if args.fuse:
        from ..fuse import fuse
        model = fuse(model.eval())
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
    for paths, probs in predict_batches(model, pre, all_files(), args.batch_size, args.device,
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
