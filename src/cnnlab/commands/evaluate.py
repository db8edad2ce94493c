"""``cnnlab evaluate RUN_OR_CHECKPOINT [--data ...]``: top-1/top-5, per-class accuracy and the
confusion matrix of a trained model on a data split."""

from __future__ import annotations

import json
import math

from . import new_command


def add_parser(sub) -> None:
    from ..data import FORMATS

    p = new_command(sub, "evaluate", help="evaluate a trained run on a data split",
                    examples=["cnnlab evaluate runs/lenet5-digits",
                              "cnnlab evaluate runs/lenet5-digits --split val",
                              "cnnlab evaluate runs/resnet20-cifar "
                              "--data ~/data/cifar-10-batches-bin",
                              "cnnlab evaluate runs/lenet5-digits/checkpoint.pt --json"])
    p.add_argument("run", help="run folder, its model.safetensors, or a checkpoint.pt")
    p.add_argument("--data", help="data set (default: the one the run was trained on)")
    p.add_argument("--format", dest="data_format", choices=FORMATS, default="auto")
    p.add_argument("--split", choices=("test", "val", "train"), default="test")
    p.add_argument("--skip-bad", action="store_true",
                   help="leave out the unreadable files of an image folder (as train --skip-bad)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, mps")
    p.add_argument("--fuse", action="store_true",
                   help="fold batch norm into the convolution before it (cnnlab.fuse)")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..data import Prepared, load_data
    from ..errors import DataError
    from ..training.metrics import format_confusion, format_table, per_class_accuracy
    from ..training.runs import open_run
    from ..training.trainer import evaluate

    if args.batch_size < 1:
        raise ValueError(f"batch size must be a positive integer, got {args.batch_size}")
    model, config, pre = open_run(args.run, args.device)
    if args.fuse:
        from ..fuse import fuse
        model = fuse(model.eval())
    spec = args.data or config.get("data", {}).get("spec", "digits")
    data = load_data(spec, args.data_format, skip_bad=args.skip_bad)
    if list(data.classes) != list(config["classes"]):
        raise DataError(f"{spec} has classes {data.classes[:5]}... but the run was trained on "
                        f"{config['classes'][:5]}...; evaluate on data with the same classes")
    ds = Prepared(data.split(args.split), pre)
    res = evaluate(model, ds, args.batch_size, model_device(model), num_classes=data.num_classes)
    cm = res["confusion"]
    per_class = per_class_accuracy(cm)
    if args.json:
        print(json.dumps({"run": str(args.run), "data": spec, "split": args.split,
                          "images": res["n"], "loss": res["loss"], "top1": res["top1"],
                          "top5": res["top5"],
                          "per_class": {c: (None if math.isnan(a) else a)
                                        for c, a in zip(data.classes, per_class, strict=True)},
                          "confusion": cm.tolist(), "classes": data.classes}, indent=2))
        return 0
    print(f"{config['model']} on {spec} ({args.split}, {res['n']} images): "
          f"top-1 {res['top1']:.2f}%  top-5 {res['top5']:.2f}%  loss {res['loss']:.4f}")
    print()
    rows = [[c, int(cm[i].sum()), "-" if math.isnan(a) else f"{a:.2f}%"]
            for i, (c, a) in enumerate(zip(data.classes, per_class, strict=True))]
    print(format_table(["class", "images", "accuracy"], rows))
    if len(data.classes) <= 30:
        print("\nconfusion matrix (rows: true class, columns: predicted)")
        print(format_confusion(cm, data.classes))
    return 0


def model_device(model):
    return next(model.parameters()).device
