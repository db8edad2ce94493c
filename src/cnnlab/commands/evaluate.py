"""``cnnlab evaluate RUN [--data ...]`` or ``cnnlab evaluate MODEL --weights FILE --data FOLDER``:
top-1/top-5, per-class accuracy and the confusion summary of a model on labelled images.

A run is evaluated on a split of its data set (or of ``--data``), prepared as it was trained.
A weights file (torchvision's, timm's or a cnnlab run's) is evaluated on the whole of a
labelled folder (one sub-folder of images per class), its images prepared with the evaluation
transform of the architecture's published weights (:func:`cnnlab.data_config`; ``--resize``,
``--crop``, ``--interpolation`` change it). The folder's classes are matched to the model's
outputs: sub-folders named by WordNet id (an ImageNet validation folder, ``n01440764`` ...)
to the ImageNet-1k index (the ids sorted, as torchvision and timm number them), sub-folders
named as the model's classes to those, otherwise, with as many sub-folders as outputs, in
sorted order.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from . import add_device_arg, new_command, parse_input_size
from .predict import add_transform_args

MOST_CONFUSED = 10   # pairs listed in the confusion summary of more than MATRIX_UP_TO classes
MATRIX_UP_TO = 30    # classes up to which the whole confusion matrix is printed
JSON_MATRIX_UP_TO = 100


def add_parser(sub) -> None:
    from ..data import FORMATS

    p = new_command(sub, "evaluate", help="evaluate a trained run or a weights file on labelled "
                                          "images",
                    examples=["cnnlab evaluate runs/lenet5-digits",
                              "cnnlab evaluate runs/lenet5-digits --split val",
                              "cnnlab evaluate runs/resnet20-cifar "
                              "--data ~/data/cifar-10-batches-bin",
                              "cnnlab evaluate runs/lenet5-digits/checkpoint.pt --json",
                              "cnnlab evaluate resnet50 --weights resnet50-0676ba61.pth "
                              "--data ~/imagenet/val --workers 4",
                              "cnnlab evaluate efficientnet_b0 --weights FILE --data photos/ "
                              "--resize 256 --crop 224 --interpolation bicubic"])
    p.add_argument("run", metavar="RUN_OR_MODEL",
                   help="run folder, its model.safetensors, or a checkpoint.pt; with --weights, "
                   "a registered model name")
    p.add_argument("--weights", metavar="FILE", help="weights file (.safetensors/.pth/.pt/.bin) "
                   "or cnnlab run folder to load into the model RUN_OR_MODEL names; needs --data")
    p.add_argument("--weights-sha256", metavar="HEX", help="refuse the weights file unless its "
                   "SHA-256 starts with HEX")
    p.add_argument("--data", help="data set (default: the one the run was trained on); with "
                   "--weights, a labelled folder (one sub-folder per class, e.g. ImageNet's "
                   "val/ with WordNet-id folders)")
    p.add_argument("--format", dest="data_format", choices=FORMATS, default="auto")
    p.add_argument("--split", choices=("test", "val", "train"), default="test",
                   help="split of a run's data set (default test)")
    p.add_argument("--skip-bad", action="store_true",
                   help="leave out the unreadable files of an image folder (as train --skip-bad)")
    p.add_argument("--input-size", type=parse_input_size, help="model input CxHxW (default: "
                   "the weights' evaluation transform or the run's)")
    add_transform_args(p)
    p.add_argument("--batch-size", type=int, default=64, help="images per batch (default 64)")
    p.add_argument("--workers", type=int, default=0,
                   help="processes reading images (default 0: the main process)")
    add_device_arg(p)
    p.add_argument("--fuse", action="store_true",
                   help="fold batch norm into the convolution before it and store the "
                        "weights channels-last (cnnlab.fuse): the same outputs, faster "
                        "on a CPU")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.add_argument("--no-ema", dest="ema", action="store_false", help="a run trained with "
                   "--ema: evaluate its raw weights, not the averaged ones (the default)")
    p.set_defaults(func=run)


# --------------------------------------------------------------------------- labelled folder

def folder_labels(root: Path, model_classes: list[str], skip_bad: bool = False):
    """``(files, labels, folder classes, their model indices, note)`` of a labelled folder
    whose class sub-folders are matched to a model's outputs (see the module doc)."""
    from ..data.folder import EXTENSIONS, check_files, scan_classes
    from ..data.imagenet import NUM_CLASSES, is_wnid, wnid_index
    from ..errors import DataError

    if not root.is_dir():
        raise DataError(f"{root} is not a folder; give a folder with one sub-folder of images "
                        "per class")
    if (root / "train").is_dir() and not is_wnid("train"):
        raise DataError(f"{root} holds train/ (a data set's splits): give the split to evaluate "
                        f"on, e.g. --data {root / 'val'}")
    found = scan_classes(root)
    if not found:
        raise DataError(f"{root}: no class sub-folders with images "
                        f"({', '.join(sorted(EXTENSIONS))})")
    names = sorted(found)
    n = len(model_classes)
    note = None
    wnids = [c for c in names if is_wnid(c)]
    if wnids and len(wnids) == len(names):
        unknown = [c for c in names if c not in wnid_index()]
        if unknown:
            raise DataError(f"{root / unknown[0]}: {unknown[0]} is not one of the 1000 "
                            f"ImageNet-1k classes (WordNet ids); remove or rename it"
                            + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""))
        if n != NUM_CLASSES:
            raise DataError(f"{root} holds ImageNet classes (WordNet-id folders) but the model "
                            f"has {n} outputs, not the 1000 of ImageNet-1k")
        index = [wnid_index()[c] for c in names]
    elif set(names) <= set(model_classes):
        pos = {c: i for i, c in enumerate(model_classes)}
        index = [pos[c] for c in names]
    elif len(names) == n:
        index = list(range(n))
        note = (f"{root}: its {n} class folders are taken in sorted order as the model's "
                f"{n} outputs (their names are not the model's class names)")
    else:
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        raise DataError(
            f"the model has {n} outputs but {root} has {len(names)} classes ({shown}) that "
            "are neither its class names nor ImageNet WordNet ids: fine-tune it on the folder "
            "first (cnnlab train MODEL --weights FILE --data FOLDER gives it a new "
            f"{len(names)}-class head)")
    files = [f for c in names for f in found[c]]
    labels = [i for c, i in zip(names, index, strict=True) for _ in found[c]]
    good, _, _ = check_files(files, root, skip_bad)
    keep = set(good)
    labels = [y for f, y in zip(files, labels, strict=True) if f in keep]
    files = [f for f in files if f in keep]
    return files, labels, names, index, note


# --------------------------------------------------------------------------- scoring

def score(model, ds, num_classes: int, batch_size: int, workers: int, device,
          desc: str = "evaluating") -> dict:
    """Loss, top-1, top-5 (percent; top-5 None with 5 classes or fewer) and the confusion
    matrix (``cm[true, predicted]``) of ``model`` on ``ds``, with a progress bar on stderr."""
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    from ..models.base import main_logits
    from ..training.metrics import confusion_matrix, topk_correct

    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=workers)
    sums = torch.zeros(4, dtype=torch.float64)  # loss*n, top1, top5, n
    cm = torch.zeros(num_classes, num_classes, dtype=torch.int64)
    bar = tqdm(loader, desc=desc, unit="batch", leave=False, file=sys.stderr,
               disable=not sys.stderr.isatty())
    with torch.inference_mode():
        for x, y in bar:
            logits = main_logits(model(x.to(device))).float().cpu()
            loss = F.cross_entropy(logits, y, reduction="sum")
            c1, c5 = topk_correct(logits, y)
            sums += torch.tensor([loss.item(), c1, c5, len(y)], dtype=torch.float64)
            cm += confusion_matrix(logits.argmax(1), y, num_classes)
            bar.set_postfix(top1=f"{100 * sums[1].item() / sums[3].item():.1f}%")
    n = max(sums[3].item(), 1)
    return {"loss": sums[0].item() / n, "top1": 100 * sums[1].item() / n,
            "top5": 100 * sums[2].item() / n if num_classes > 5 else None,
            "n": int(sums[3].item()), "confusion": cm}


def most_confused(cm, classes: list[str], k: int = MOST_CONFUSED) -> list[dict]:
    """The ``k`` largest off-diagonal counts: ``{"true", "predicted", "count"}``."""
    off = cm.clone()
    off.fill_diagonal_(0)
    flat = off.flatten()
    top = flat.topk(min(k, int((flat > 0).sum())))
    n = cm.shape[0]
    return [{"true": classes[i // n], "predicted": classes[i % n], "count": int(c)}
            for c, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)]


# --------------------------------------------------------------------------- the command

def run(args) -> int:
    from ..errors import OptionError

    if args.batch_size < 1:
        raise OptionError(f"batch size must be a positive integer, got {args.batch_size}")
    if args.workers < 0:
        raise OptionError(f"--workers must be 0 or more, got {args.workers}")
    if args.weights is not None:
        return _run_weights(args)
    return _run_run(args)


def _run_run(args) -> int:
    from ..data import Prepared, load_data
    from ..errors import CheckpointError, DataError
    from ..resolve import open_source
    from .predict import apply_transform_args, fused_if_asked

    src = open_source(args.run, device=args.device, ema=args.ema,
                      need_weights="and a labelled folder with --data FOLDER")
    if src.kind == "scratch":
        raise CheckpointError(f"{args.run} is a 'cnnlab scratch train' run (the NumPy engine): "
                        f"'cnnlab scratch show {args.run}' reports its accuracy")
    model, config = src.model, src.config
    dc, pre = apply_transform_args(src.data_config, args, model.in_chans,
                                   None if args.input_size else src.preprocess.pad_from)
    classes = list(config["classes"])
    model = fused_if_asked(model, args)
    spec = args.data or config.get("data", {}).get("spec", "digits")
    data = load_data(spec, args.data_format, skip_bad=args.skip_bad)
    if list(data.classes) != classes:
        raise DataError(f"{spec} has classes {data.classes[:5]}... but the run was trained on "
                        f"{classes[:5]}...; evaluate on data with the same classes")
    ds = Prepared(data.split(args.split), pre)
    res = score(model, ds, data.num_classes, args.batch_size, args.workers, _device(model))
    title = f"{config['model']} on {spec} ({args.split}, {res['n']} images)"
    if config.get("weights_used") and not args.json:
        print(f"using {config['weights_used']}; --no-ema for the raw weights")
    return _report(args, res, classes, list(range(len(classes))), classes, title, dc,
                   {"run": str(args.run), "data": spec, "split": args.split,
                    "weights": config.get("weights_used", "raw")})


def _run_weights(args) -> int:
    from ..data.base import Prepared
    from ..data.folder import ImageFiles
    from ..errors import DataError
    from .predict import fused_if_asked, open_model

    if not args.data:
        raise DataError("give the labelled folder to evaluate on with --data FOLDER (one "
                        "sub-folder of images per class)")
    if args.data_format not in ("auto", "folder"):
        raise DataError("with --weights, --data is a labelled image folder (--format folder)")
    args.classes = None
    model, classes, pre, notes, dc = open_model(args, need_weights="and a labelled folder "
                                                             "with --data FOLDER")
    model = fused_if_asked(model, args)
    root = Path(args.data).expanduser()
    files, labels, names, index, note = folder_labels(root, classes, args.skip_bad)
    for line in notes + ([note] if note else []):
        print(line, file=sys.stderr)
    ds = Prepared(ImageFiles(files, labels, 1 if pre.channels == 1 else 3), pre)
    res = score(model, ds, len(classes), args.batch_size, args.workers, _device(model))
    title = f"{args.run} ({Path(args.weights).name}) on {root} ({res['n']} images)"
    return _report(args, res, names, index, classes, title, dc,
                   {"model": args.run, "weights": str(args.weights), "data": str(root)})


def _report(args, res, folder_classes, index, model_classes, title, dc, head) -> int:
    from ..training.metrics import format_confusion, format_table

    cm = res["confusion"]
    per_class = []
    for name, i in zip(folder_classes, index, strict=True):
        total = int(cm[i].sum())
        per_class.append((name, model_classes[i], total,
                          100.0 * int(cm[i, i]) / total if total else math.nan))
    confused = most_confused(cm, model_classes)
    if args.json:
        out = {**head, "images": res["n"], "loss": res["loss"], "top1": res["top1"],
               "top5": res["top5"], "data_config": dc.to_dict(),
               "per_class": {f: (None if math.isnan(a) else a) for f, _, _, a in per_class},
               "most_confused": confused, "classes": list(model_classes)}
        if len(model_classes) <= JSON_MATRIX_UP_TO:
            out["confusion"] = cm.tolist()
        print(json.dumps(out, indent=2))
        return 0
    top5 = "n/a (5 classes or fewer)" if res["top5"] is None else f"{res['top5']:.2f}%"
    print(f"{title}: top-1 {res['top1']:.2f}%  top-5 {top5}  loss {res['loss']:.4f}")
    print(f"transform: {dc.describe()}")
    print()
    named = any(f != m for f, m, _, _ in per_class)
    rows = [([f, m] if named else [f]) + [t, "-" if math.isnan(a) else f"{a:.2f}%"]
            for f, m, t, a in per_class]
    print(format_table((["folder", "class"] if named else ["class"]) + ["images", "accuracy"],
                       rows))
    if len(model_classes) <= MATRIX_UP_TO:
        print("\nconfusion matrix (rows: true class, columns: predicted)")
        print(format_confusion(cm, model_classes))
    elif confused:
        print(f"\nmost confused (of {len(model_classes)} classes)")
        print(format_table(["true", "predicted", "images"],
                           [[c["true"], c["predicted"], c["count"]] for c in confused]))
    return 0


def _device(model):
    return next(model.parameters()).device
