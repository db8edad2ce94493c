"""``cnnlab train MODEL [--data digits|synthetic|PATH] ...``: train any registered model."""

from __future__ import annotations

import argparse
import json

from . import DEVICE_HELP, add_json_arg, new_command, parse_input_size, print_json


def _model_arg(text: str) -> tuple[str, object]:
    key, eq, value = text.partition("=")
    if not eq or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    if value in ("True", "False", "None"):  # what a Python user types (JSON: true, null)
        return key, {"True": True, "False": False, "None": None}[value]
    try:
        return key, json.loads(value, parse_constant=_not_a_number)
    except ValueError:  # JSONDecodeError, or NaN/Infinity: left as text, which the check refuses
        return key, value


def _not_a_number(text: str):
    raise ValueError(text)


def add_parser(sub) -> None:
    from ..data import FORMATS
    from ..training.config import AMP_MODES, AUGMENTS, OPTIMIZERS, SCHEDULES, TrainConfig

    d = TrainConfig(model="")
    p = new_command(
        sub, "train", help="train a model on the digits, MNIST, CIFAR or an image folder",
        description="Train a registered model. The input size is the model's (see 'cnnlab list')"
                    " unless --input-size says otherwise; images are converted to the model's "
                    "channels and resized. Writes runs/NAME/ (config, weights, checkpoint, "
                    "metrics, plots).",
        examples=["cnnlab train lenet5",
                  "cnnlab train lenet5 --epochs 5 --lr 0.5 --name quick",
                  "cnnlab train resnet20 --data ~/data/cifar-10-batches-py --epochs 160",
                  "cnnlab train mobilenet_v2 --input-size 3x64x64 --optimizer adamw --lr 1e-3",
                  "cnnlab train lenet5 --name quick --resume --epochs 10",
                  "cnnlab train resnet20 --data photos/ --weights runs/resnet20-digits "
                  "--freeze features --epochs 5",
                  "cnnlab train resnet50 --data photos/ --weights resnet50-0676ba61.pth "
                  "--head-lr 0.01 --lr 0.001",
                  "cnnlab train resnet18 --data photos/ --weights resnet18-f37072fd.pth "
                  "--augment trivial --mixup 0.2 --cutmix 1.0 --random-erase 0.25 --ema 0.999",
                  "torchrun --nproc_per_node 2 -m cnnlab train lenet5"])
    p.add_argument("model", help="registered model name (see 'cnnlab list')")
    g = p.add_argument_group("data")
    g.add_argument("--data", help="digits (default), synthetic[:key=value,...], a folder "
                   "of MNIST/Fashion-MNIST IDX files, CIFAR batches or class sub-folders, or "
                   "MNIST's mnist.pkl.gz")
    g.add_argument("--format", dest="data_format", choices=FORMATS,
                   help="data format (default: detected from the folder)")
    g.add_argument("--input-size", type=parse_input_size,
                   help="model input CxHxW (default: the model's native size)")
    g.add_argument("--augment", choices=AUGMENTS,
                   help="training augmentation (default auto: crop+flip for CIFAR, rrc for "
                   "colour image folders, none for digits and MNIST). distort: LeCun et al. "
                   "1998's random affine distortions. Photo recipes: rrc (random-resized crop "
                   "+ flip), trivial (rrc + TrivialAugment Wide), randaugment (rrc + RandAugment)")
    _add_recipe_flags(p)
    g.add_argument("--skip-bad", action="store_true", default=None,
                   help="leave out the image files of a folder that cannot be read (they are "
                   "counted) instead of stopping with their list; recorded in the run, so "
                   "--resume does the same")
    g.add_argument("--workers", dest="num_workers", type=int, help="DataLoader worker processes "
                   "(default: one per usable core but one, at most 8, for data read from files; "
                   "0 for data held in memory; recorded in config.json)")
    g.add_argument("--cache", action="store_true", default=None, help="keep the decoded "
                   "training images of a folder in memory (when they fit in half the available "
                   "memory) instead of decoding every file every epoch")
    m = p.add_argument_group("model")
    m.add_argument("--model-arg", dest="model_kwargs", type=_model_arg, action="append",
                   metavar="KEY=VALUE", help="builder argument, e.g. activation=tanh (repeatable)")
    w = p.add_argument_group("starting from weights (fine-tuning)")
    w.add_argument("--weights", metavar="FILE", help="start from a .safetensors/.pth/.pt/.bin "
                   "file or a cnnlab run folder (torchvision, timm or cnnlab layout); a new "
                   "classifier when the class count differs, the first conv adapted when the "
                   "channels differ")
    w.add_argument("--weights-sha256", metavar="HEX", help="refuse the weights file unless its "
                   "SHA-256 starts with HEX")
    w.add_argument("--freeze", choices=("none", "features"), help="features: train only the "
                   "classifier; the rest keeps its weights and BatchNorm statistics (eval mode)")
    w.add_argument("--head-lr", type=float, metavar="LR", help="learning rate of the "
                   "classifier (default: --lr)")
    w.add_argument("--mean", type=float, nargs="+", help="normalisation mean per channel "
                   "(default: the data's; ImageNet's for an ImageNet model from a file)")
    w.add_argument("--std", type=float, nargs="+", help="normalisation std per channel")
    o = p.add_argument_group("optimisation")
    o.add_argument("--epochs", type=int, help=f"default {d.epochs}")
    o.add_argument("--batch-size", type=int, help=f"default {d.batch_size}")
    o.add_argument("--optimizer", choices=OPTIMIZERS, help=f"default {d.optimizer}")
    o.add_argument("--lr", type=float, help=f"peak learning rate (default {d.lr})")
    o.add_argument("--momentum", type=float, help=f"SGD momentum (default {d.momentum})")
    o.add_argument("--nesterov", action="store_true", default=None, help="Nesterov momentum")
    o.add_argument("--weight-decay", type=float, help=f"default {d.weight_decay}")
    o.add_argument("--schedule", choices=SCHEDULES, help=f"default {d.schedule}")
    o.add_argument("--warmup-epochs", type=float, help="linear warm-up (default 0; one-cycle: "
                   "30%% of the run)")
    o.add_argument("--step-size", type=int, help=f"epochs per step decay (default {d.step_size})")
    o.add_argument("--gamma", type=float, help=f"step decay factor (default {d.gamma})")
    o.add_argument("--label-smoothing", type=float, help="default 0")
    o.add_argument("--clip-grad", type=float, help="clip the gradient norm to this value")
    o.add_argument("--patience", type=int, help="stop when validation top-1 has not improved "
                   "for this many epochs")
    o.add_argument("--seed", type=int, help=f"default {d.seed}")
    r = p.add_argument_group("speed")
    r.add_argument("--device", help=DEVICE_HELP)
    r.add_argument("--threads", type=int, help="CPU threads for torch (default: chosen at "
                   "start from the usable cores and the current load, and recorded in "
                   "config.json)")
    r.add_argument("--amp", choices=AMP_MODES, help="autocast to bf16 or fp16 (default none)")
    r.add_argument("--channels-last", action="store_true", default=None)
    r.add_argument("--compile", action="store_true", default=None, help="torch.compile the model")
    r.add_argument("--deterministic", action="store_true", default=None,
                   help="torch.use_deterministic_algorithms (CPU runs are deterministic anyway)")
    f = p.add_argument_group("run folder")
    f.add_argument("--runs-dir", help=f"parent folder of runs (default {d.runs_dir})")
    f.add_argument("--name", help="run name (default MODEL-DATA, with -2, -3... if taken)")
    f.add_argument("--resume", nargs="?", const=True, default=False, metavar="RUN",
                   help="continue a run from its last checkpoint: the run --name names, or "
                   "a run folder / checkpoint file. It keeps the run's settings: --epochs "
                   "(not below the epochs done), --patience, --checkpoint-every, --workers, "
                   "--cache, "
                   "--threads, --device and --no-plots may change (recorded in config.json); "
                   "any other option that differs from the run's is refused")
    f.add_argument("--checkpoint-every", type=int, metavar="STEPS",
                   help="also checkpoint every STEPS optimizer steps (default: each epoch)")
    f.add_argument("--no-plots", dest="plots", action="store_false", default=None,
                   help="do not write PNG plots")
    add_json_arg(p, "print the final results as JSON on stdout (the progress lines go to "
                    "stderr)")
    p.set_defaults(func=run)


def _add_recipe_flags(p) -> None:
    r = p.add_argument_group("photo recipes (timm / torchvision training recipes)")
    r.add_argument("--crop-scale", type=float, nargs=2, metavar=("LOW", "HIGH"),
                   help="random-resized crop: area fraction range (default 0.08 1)")
    r.add_argument("--crop-ratio", type=float, nargs=2, metavar=("LOW", "HIGH"),
                   help="random-resized crop: aspect ratio w/h range (default 0.75 1.333)")
    r.add_argument("--randaugment-ops", type=int, metavar="N", help="RandAugment: operations "
                   "per image (default 2)")
    r.add_argument("--randaugment-magnitude", type=int, metavar="M", help="RandAugment: "
                   "magnitude bin 0..30 (default 9)")
    r.add_argument("--mixup", type=float, metavar="ALPHA", help="mix each batch with its "
                   "reverse, lambda ~ Beta(ALPHA, ALPHA); soft-target loss (e.g. 0.2)")
    r.add_argument("--cutmix", type=float, metavar="ALPHA", help="paste a box of the reversed "
                   "batch, lambda ~ Beta(ALPHA, ALPHA) (e.g. 1.0; with --mixup, one of the two "
                   "per batch)")
    r.add_argument("--random-erase", type=float, metavar="P", help="erase a random box "
                   "(area 2-33%%, aspect 0.3-3.3) with noise, with probability P")
    r.add_argument("--ema", type=float, metavar="DECAY", help="keep an exponential moving "
                   "average of the weights (e.g. 0.999): validated each epoch, saved as "
                   "model_ema.safetensors, used by evaluate and predict")


def given_options(args) -> dict:
    """The TrainConfig settings the user typed (None: not given)."""
    from ..training.config import TrainConfig

    keys = [k for k in vars(TrainConfig(model="")) if k != "model"]
    given = {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}
    if "model_kwargs" in given:
        given["model_kwargs"] = dict(given["model_kwargs"])
    return given


def config_from_args(args, log=print):
    """The run's settings: the user's options, then the model's recommended training settings
    (``train_defaults`` in its registry entry), then the trainer's defaults."""
    from ..registry import get_entry
    from ..training.config import TrainConfig

    given = given_options(args)
    recommended = {k: v for k, v in get_entry(args.model).train_defaults.items()
                   if k not in given}
    if recommended and not getattr(args, "resume", False):
        shown = ", ".join(f"{k} {v}" for k, v in recommended.items())
        log(f"{args.model}: using its recommended training settings: {shown}")
    return TrainConfig(model=args.model, **recommended, **given)


def run(args) -> int:
    import os
    import shlex
    import sys

    from ..errors import CnnlabError
    from ..training.trainer import TrainingInterrupted, train

    rank = int(os.environ.get("RANK", "0") or 0)
    try:
        from ..training.config import TrainConfig
        from ..training.distributed import elastic_restart_resumes

        if not args.resume and elastic_restart_resumes(
                args.runs_dir or TrainConfig(model="").runs_dir, args.name):
            args.resume = True  # torchrun restarted the workers: continue from the checkpoint
        if isinstance(args.resume, str):
            check_resume(args.resume)
        log = _to_stderr if getattr(args, "json", False) else print
        cfg = config_from_args(args, log)
        results = train(cfg, resume=args.resume, given=set(given_options(args)), log=log)
        if getattr(args, "json", False) and rank == 0:
            print_json(results)
    except TrainingInterrupted as stop:
        if rank == 0:
            if stop.resumable:
                run_dir = shlex.quote(str(stop.run_dir))
                how = f"resume with: cnnlab train {stop.model} --resume {run_dir}"
            else:
                run_dir = shlex.quote(str(stop.run_dir))
                how = ("no checkpoint was written yet (the first one comes at the end of the "
                       "first epoch, or with --checkpoint-every STEPS); start it again from the "
                       f"beginning with: cnnlab train {stop.model} --resume {run_dir}")
            print(f"cnnlab train: interrupted; {how}", file=sys.stderr)
        return 130
    except CnnlabError as err:  # a user error; a bug is every rank's to report
        if rank != 0 and not getattr(args, "debug", False):
            return _leave_the_error_to_rank_0(err, rank)
        raise
    return 0


def _to_stderr(*args, **kwargs) -> None:
    import sys

    print(*args, **{**kwargs, "file": sys.stderr})


def check_resume(spec: str) -> None:
    """``--resume PATH``: the one opener's errors for a path that does not exist or is not a
    training run (a weights file, a scratch run); a bare run name is left to the trainer."""
    from pathlib import Path

    from ..errors import CheckpointError
    from ..resolve import classify, looks_like_path

    if not Path(spec).expanduser().exists() and not looks_like_path(spec):
        return
    kind, path = classify(spec)
    if kind not in ("run", "checkpoint", "safetensors"):
        raise CheckpointError(f"--resume continues a 'cnnlab train' run; {path} is a "
                              f"{'scratch run' if kind == 'scratch' else 'weights file'}: give "
                              "a run folder (runs/NAME) or its checkpoint.pt")


def _leave_the_error_to_rank_0(err: Exception, rank: int, wait: float = 10.0) -> int:
    """A user error under torchrun: every rank meets it, rank 0 prints it once.

    This rank waits before exiting: exiting at once let torchrun stop rank 0 (SIGTERM) before
    rank 0 had printed anything. Once rank 0 has failed, torchrun ends this process during the
    wait; an error that only this rank met is printed after the wait, naming the rank."""
    import sys
    import time

    time.sleep(wait)
    print(f"cnnlab train: error on rank {rank}: {err}", file=sys.stderr)
    return 2
