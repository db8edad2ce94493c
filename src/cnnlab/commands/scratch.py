"""``cnnlab scratch train|show``: the NumPy LeNet-5 (no PyTorch involved)."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

from ..errors import NotAFolderError, user_files
from . import DeprecatedSpelling, add_json_arg, add_output_arg, new_command, print_json


def add_parser(sub) -> None:
    p = new_command(sub, "scratch", torch=False,
                    help="the CNN from scratch in NumPy: train and show LeNet-5",
                    examples=["cnnlab scratch train",
                              "cnnlab scratch train --data ~/mnist --limit 5000   # IDX files",
                              "cnnlab scratch train --data mnist.pkl.gz --epochs 3",
                              "cnnlab scratch train --data lab_digits/  # class sub-folders",
                              "cnnlab scratch train --input-size 1x32x32 -o runs/np",
                              "cnnlab scratch train -o runs/np --show",
                              "cnnlab scratch show runs/np"])
    ssub = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    t = ssub.add_parser("train", help="train the NumPy LeNet-5 on the digits or your images",
                        description="Train LeNet-5 (sigmoid, average pooling) written in NumPy "
                                    "on scikit-learn's 8x8 digits (or --data: MNIST IDX files, "
                                    "an image folder with one sub-folder per class, CIFAR) "
                                    "resized to 28x28 (padded C1) or 32x32 grey images, with "
                                    "SGD + momentum and a per-epoch lr decay.")
    t.add_argument("--data", default="digits",
                   help="digits (default), a folder of MNIST/Fashion-MNIST IDX files, MNIST's "
                        "mnist.pkl.gz, a folder "
                        "with one sub-folder of images per class (the lab's 28x28 digits), or "
                        "CIFAR batches; colour images are converted to grey")
    t.add_argument("--limit", type=int, default=None,
                   help="use only the first N training images (the NumPy engine is slow on "
                        "MNIST's 50,000-54,000)")
    t.add_argument("--input-size", metavar="CxHxW", default="1x28x28",
                   help="input size: 1x28x28 (the lab, C1 padded by 2; default) or 1x32x32 "
                        "(the paper)")
    t.add_argument("--input", type=int, choices=(28, 32), dest="input_size",
                   action=DeprecatedSpelling, new="--input-size 1xNxN", help=argparse_suppress())
    t.add_argument("--epochs", type=int, default=15)
    t.add_argument("--batch-size", type=int, default=16)
    t.add_argument("--lr", type=float, default=0.05, help="learning rate eta (default 0.05)")
    t.add_argument("--momentum", type=float, default=0.9, help="gamma (default 0.9)")
    t.add_argument("--decay", type=float, default=0.95,
                   help="lr multiplied by this after every epoch (default 0.95)")
    t.add_argument("--activation", choices=("sigmoid", "tanh", "relu"), default="sigmoid")
    t.add_argument("--pool", choices=("avg", "max"), default="avg")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=1,
                   help="BLAS threads (default 1: fastest on a busy machine)")
    add_output_arg(t, "folder for the weights (.npz), config and history", type=Path,
                   metavar="DIR")
    t.add_argument("--overwrite", action="store_true",
                   help="replace the model already saved in -o (refused without it)")
    t.add_argument("--show", action="store_true",
                   help="also save the C1 kernels and the feature maps of a test digit "
                        "(needs -o)")
    t.add_argument("--no-progress", action="store_true",
                   help="no progress bar (there is none anyway when stderr is not a terminal)")
    t.add_argument("--debug", action="store_true", help=argparse_suppress())
    add_json_arg(t, "print the final results as JSON (the progress lines go to stderr)")
    t.set_defaults(func=run_train)

    s = ssub.add_parser("show", help="save the C1 kernels and feature maps of a trained run",
                        description="Draw the learned C1 kernels and the feature maps of one "
                                    "test digit at every layer of a NumPy LeNet-5 saved by "
                                    "'cnnlab scratch train -o RUN'.")
    s.add_argument("run", type=Path, help="folder written by 'cnnlab scratch train -o'")
    s.add_argument("--index", type=int, default=0, help="which test digit (default 0)")
    add_output_arg(s, "folder for the PNGs (default: RUN)", type=Path, metavar="DIR")
    s.add_argument("--debug", action="store_true", help=argparse_suppress())
    s.set_defaults(func=run_show)


def argparse_suppress():
    import argparse

    return argparse.SUPPRESS


def run_train(args) -> int:
    from ..errors import DataError, OptionError
    from ..scratch.runs import CONFIG, WEIGHTS, load_split
    from ..scratch.train import TrainConfig, train
    from ..training.config import (
        absolute_data,  # show/explore work from any folder
        check_threads,
    )

    args.input = _scratch_size(args.input_size)
    if args.show and args.output is None:
        raise OptionError("--show needs -o FOLDER to write the pictures into")
    if args.epochs < 1 or args.batch_size < 1:
        raise OptionError(f"--epochs and --batch-size must be >= 1, got {args.epochs}, "
                         f"{args.batch_size}")
    if args.limit is not None and args.limit < 1:
        raise OptionError(f"--limit must be at least 1, got {args.limit}")
    import math

    for flag, v in (("--momentum", args.momentum), ("--decay", args.decay)):
        if not (math.isfinite(v) and v >= 0):
            raise OptionError(f"{flag} must be a finite number >= 0, got {v}")
    if args.threads > 1:
        check_threads(args.threads)
    if args.output is not None:
        _check_out(args.output, [WEIGHTS, CONFIG] + (["c1_kernels.png", "feature_maps.png"]
                                                  if args.show else []), args.overwrite)
    try:
        data = None if args.data == "digits" and args.limit is None else load_split(
            args.data, args.input, args.limit)
    except DataError as err:  # UnreadableFilesError (data.folder imports torch): its advice,
        if not hasattr(err, "listing"):  # --skip-bad, is train's, not scratch's
            raise
        raise DataError(f"{err.listing}; fix or remove them (the NumPy engine reads every "
                        "file of the folder)") from None
    cfg = TrainConfig(input_size=args.input, epochs=args.epochs, batch_size=args.batch_size,
                      lr=args.lr, momentum=args.momentum, decay=args.decay, seed=args.seed,
                      activation=args.activation, pool=args.pool, threads=args.threads)
    what = "the digits" if data is None else data["name"]
    say = _stderr if args.json else print  # --json: stdout holds only the JSON
    wrote: list[str] = []
    say(f"NumPy LeNet-5 ({args.activation}, {args.pool} pool, {args.input}x{args.input}) on "
          f"{what}; SGD lr {args.lr} momentum {args.momentum} decay {args.decay}/epoch, "
          f"batch {args.batch_size}, {args.threads} thread(s)", flush=True)
    start = time.perf_counter()
    net, hist = train(cfg, data=data, progress=not args.no_progress and sys.stderr.isatty(),
                      log=lambda line: say(line, flush=True))
    total = time.perf_counter() - start
    say(f"test loss {hist.test_loss:.4f}  test accuracy {100 * hist.test_acc:.2f} %  "
          f"({total:.1f}s in all, {hist.seconds:.1f}s training)")
    if args.output is not None:
        with user_files():  # no permission, no space: the user's to fix
            args.output.mkdir(parents=True, exist_ok=True)
            net.save(args.output / WEIGHTS)
            config = {"input_size": args.input, "activation": args.activation,
                      "pool": args.pool, "seed": args.seed, "data": absolute_data(args.data),
                      "test_acc": hist.test_acc, "test_loss": hist.test_loss,
                      "seconds": total, "epochs": hist.epochs}
            (args.output / CONFIG).write_text(json.dumps(config, indent=2))
        say(f"saved {args.output / WEIGHTS} and {args.output / CONFIG}")
        wrote += [str(args.output / WEIGHTS), str(args.output / CONFIG)]
        if args.show:
            for path in show(net, args.input, args.output, data=data):
                say(f"saved {path}")
                wrote.append(str(path))
    if args.json:
        print_json({"input_size": [1, args.input, args.input], "activation": args.activation,
                    "pool": args.pool, "epochs": hist.epochs, "test_acc": hist.test_acc,
                    "test_loss": hist.test_loss, "seconds": total, "wrote": wrote})
    return 0



def _stderr(*args, **kwargs) -> None:
    print(*args, **{**kwargs, "file": sys.stderr})


def _scratch_size(value) -> int:
    """--input-size 1x28x28 / 1x32x32 (or the old --input 28 / 32) as the side length."""
    from ..errors import InputShapeError

    if isinstance(value, int):
        return value
    m = re.match(r"^\s*1\s*x\s*(28|32)\s*x\s*(28|32)\s*$", str(value))
    if not m or m.group(1) != m.group(2):
        raise InputShapeError(f"--input-size must be 1x28x28 (the lab's) or 1x32x32 (the "
                              f"paper's) for the NumPy LeNet-5, got {value!r}")
    return int(m.group(1))


def _check_out(out: Path, names: list[str], overwrite: bool) -> None:
    """Refuse (before training) an -o folder that already holds a saved model."""
    from ..errors import OutputExistsError

    if (out.exists() or out.is_symlink()) and not out.is_dir():  # a file, or a link to none
        raise NotAFolderError(f"-o {out} is not a folder; give a folder name")
    taken = [n for n in names if (out / n).exists()]
    if taken and not overwrite:
        raise OutputExistsError(f"{out} already holds a saved model ({', '.join(taken)}); give "
                                "another -o, or add --overwrite to replace it")


def show(net, input_size: int, out: Path, index: int = 0, data: dict | None = None
         ) -> list[Path]:
    """Save ``c1_kernels.png`` and ``feature_maps.png`` for one test image (of ``data``, by
    default the digits)."""
    import numpy as np

    from ..lab.plots_lab import plot_feature_maps, plot_kernels
    from ..scratch.train import load_digits_split

    x, y = (data if data is not None else load_digits_split(input_size))["test"]
    if not 0 <= index < len(x):
        from ..errors import OptionError

        raise OptionError(f"--index must be in 0..{len(x) - 1}, got {index}")
    w = net["c1"].params["W"]
    paths = [plot_kernels(np.rot90(w, 2, axes=(2, 3)), out / "c1_kernels.png",
                          title="NumPy LeNet-5: C1 kernels as templates, rot90(W, 2)")]
    logits, outs = net.forward(x[index:index + 1].astype(w.dtype), keep=True)
    keepers = ("act1", "s2", "act3", "s4", "act5", "act6", "output")
    layers = [(name, a[0]) for name, a in outs if name in keepers]
    paths.append(plot_feature_maps(
        x[index, 0], layers, out / "feature_maps.png",
        title=f"NumPy LeNet-5, test digit {index} (label {y[index]}, "
              f"predicted {int(logits.argmax())})"))
    return paths


def run_show(args) -> int:
    from ..errors import CheckpointError
    from ..resolve import KIND_WORDS, open_source
    from ..scratch.runs import run_data

    src = open_source(args.run)  # the one opener: the same errors as every other command
    if src.kind != "scratch":
        raise CheckpointError(f"{args.run} is a {KIND_WORDS[src.kind]}, not a 'cnnlab scratch "
                              "train -o FOLDER' folder; give that folder")
    net, cfg = src.scratch
    for path in show(net, cfg["input_size"], args.output or args.run, args.index,
                     data=run_data(cfg)):
        print(f"saved {path}")
    return 0
