"""``cnnlab compare [MODELS...|--all]``: size, parameters, depth, MACs, speed and accuracy;
``--keras``: the Keras Applications table in Keras's conventions."""

from __future__ import annotations

import json
import sys

from ..errors import OptionError
from . import add_device_arg, new_command, output_file


def add_parser(sub) -> None:
    p = new_command(
        sub, "compare", outputs=True,
        help="compare models: size, parameters, depth, MACs, ms per inference step, accuracy",
        examples=["cnnlab compare resnet18 resnet50 mobilenet_v2",
                  "cnnlab compare --all --batch 1 --repeats 3 --markdown",
                  "cnnlab compare 'resnet*' --no-timing --csv",
                  "cnnlab compare lenet5 --checkpoint lenet5=runs/lenet5 --plot compare.png",
                  "cnnlab compare --keras --no-timing    # Keras's table, Keras's conventions",
                  "cnnlab compare --keras resnet50 inception_v3 --json",
                  "cnnlab compare inception_v3 googlenet --no-aux --no-timing",
                  "cnnlab compare resnet18 --channels-last --amp bf16"],
        description="One row per model: size in MB (float32 parameters), parameters, depth "
                    "(weighted layers on the longest path), MACs at the native input (batch 1; "
                    "FLOPs = 2 x MACs), median milliseconds per inference step after warm-up, "
                    "and Top-1/Top-5 from a trained run folder when one is given. --keras "
                    "prints Keras's Applications table instead: depth and parameters counted "
                    "Keras's way, Keras's published figures beside them, and why they differ.")
    p.add_argument("models", nargs="*",
                   help="model names or shell-style patterns ('resnet*'); see 'cnnlab list'")
    p.add_argument("--all", action="store_true", help="every registered model")
    p.add_argument("--batch", type=int, default=32, help="batch size for timing (default 32)")
    add_device_arg(p)
    p.add_argument("--repeats", type=int, default=10, help="timed runs per model (default 10)")
    p.add_argument("--warmup", type=int, default=2, help="untimed runs first (default 2)")
    p.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                   help="cap the timing of each model; fewer runs for slow models")
    p.add_argument("--no-timing", action="store_true", help="leave the ms/step column empty")
    p.add_argument("--checkpoint", action="append", default=[], metavar="MODEL=RUN",
                   help="a trained run folder for MODEL; its test Top-1/Top-5 fill the row "
                        "(repeatable)")
    p.add_argument("--keras", action="store_true",
                   help="the Keras Applications table: depth (layers with parameters) and "
                        "count_params() Keras's way, size, ms/step at --batch, published "
                        "Top-1/Top-5; default models: those Keras has")
    p.add_argument("--quick", action="store_true",
                   help="with --keras: time each model at batch 1, 3 runs after 1 warm-up (the "
                        "full table at batch 32 x 10 runs takes about an hour on a laptop CPU)")
    p.add_argument("--no-aux", action="store_true",
                   help="leave out auxiliary classifiers' parameters (GoogLeNet, Inception v3)")
    p.add_argument("--channels-last", action="store_true",
                   help="time in the channels-last memory format (adds a column: largest "
                        "output difference from fp32 eager)")
    p.add_argument("--amp", choices=["bf16", "fp16"], default=None,
                   help="time under torch.autocast in this precision (same extra columns)")
    p.add_argument("--backend", metavar="NAME",
                   help="time the ms column with a 'cnnlab bench' backend (eager, fused, bf16, "
                        "compile, int8, ort, ...) or 'auto': the fastest that keeps top-1")
    p.add_argument("--fuse", action="store_true",
                   help="fold batch norm into the convolution before it and store the "
                        "weights channels-last (cnnlab.fuse): the same outputs, faster "
                        "on a CPU")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print JSON")
    fmt.add_argument("--csv", action="store_true", help="print CSV")
    fmt.add_argument("--markdown", action="store_true", help="print a Markdown table")
    p.add_argument("--plot", metavar="FILE.png",
                   help="also draw parameters (and accuracy) vs MACs into this PNG file")
    p.set_defaults(func=run)


def resolve_models(patterns, all_models: bool) -> list[str]:
    """Names and wildcard patterns -> registered names, in the order given."""
    from ..errors import UnknownModelError
    from ..registry import get_entry, list_models

    if all_models:
        if patterns:
            raise OptionError("give model names or --all, not both")
        return list_models()
    if not patterns:
        raise OptionError("name the models to compare (for example: cnnlab compare resnet18 "
                         "vgg16) or use --all")
    names: list[str] = []
    for pat in patterns:
        if any(ch in pat for ch in "*?["):
            found = list_models(pat)
            if not found:
                raise UnknownModelError(f"no model matches {pat!r}; run 'cnnlab list'")
        else:
            get_entry(pat)
            found = [pat]
        names += [n for n in found if n not in names]
    return names


def run(args) -> int:
    from ..analysis.benchmark import check_device
    from ..analysis.compare import compare, format_rows, header_lines, parse_checkpoints, plot

    if args.batch < 1 or args.repeats < 1 or args.warmup < 0:
        raise OptionError("--batch and --repeats must be at least 1, --warmup at least 0")
    if args.time_budget is not None and not 0 < args.time_budget < float("inf"):
        raise OptionError(f"--time-budget must be positive, got {args.time_budget}")
    from ..resolve import usable_device

    args.device = str(usable_device(args.device))  # auto: cuda, else mps, else cpu
    check_device(args.device)
    if args.plot and not args.plot.lower().endswith(".png"):
        raise OptionError(f"--plot writes a PNG file; give a name ending in .png, got {args.plot}")
    if args.plot:
        output_file(args.plot, args, "--plot")
    if args.keras:
        return run_keras(args)
    if args.quick:
        raise OptionError("--quick shortens the Keras table: use it with --keras")
    names = resolve_models(args.models, args.all)
    checkpoints = parse_checkpoints(args.checkpoint)
    timing = not args.no_timing

    def progress(name):
        if sys.stderr.isatty():
            print(f"\r{name:<40}", end="", file=sys.stderr, flush=True)

    rows = compare(names, batch=args.batch, device=args.device, repeats=args.repeats,
                   warmup=args.warmup, time_budget_s=args.time_budget, timing=timing,
                   checkpoints=checkpoints, progress=progress, no_aux=args.no_aux,
                   channels_last=args.channels_last, amp=args.amp, fuse=args.fuse,
                   backend=args.backend)
    if sys.stderr.isatty():
        print("\r" + " " * 40 + "\r", end="", file=sys.stderr)
    header = header_lines(args.batch, args.device, timing, args.repeats, args.warmup,
                          args.channels_last, args.amp, args.no_aux)
    if args.backend:
        header.append(f"ms/step backend: {args.backend} ("
                      + ", ".join(f"{r.model}: {r.backend}" for r in rows if r.backend) + ")")
    if args.json:
        print(json.dumps({"header": header, "models": [r.to_dict() for r in rows]}, indent=2))
    else:
        style = "csv" if args.csv else "markdown" if args.markdown else "text"
        print(format_rows(rows, style, header))
    if args.plot:
        print(f"chart written to {plot(rows, args.plot)}", file=sys.stderr)
    return 0


def run_keras(args) -> int:
    from ..analysis.compare import header_lines
    from ..analysis.keras import (
        DEPTH_NOTE,
        KERAS_TO_CNNLAB,
        PARAMS_NOTE,
        PUBLISHED_NOTE,
        format_keras,
        keras_table,
    )

    if (args.checkpoint or args.plot or args.csv or args.channels_last or args.amp
            or args.no_aux):
        raise OptionError("--keras prints Keras's table (auxiliary heads always left out); "
                         "--checkpoint, --plot, --csv, --channels-last, --amp and --no-aux "
                         "belong to the ordinary comparison")
    names = resolve_models(args.models, args.all) if (args.models or args.all) else None
    timing = not args.no_timing
    if args.quick:
        args.batch, args.repeats, args.warmup = 1, 3, 1
    runs = args.repeats + max(args.warmup, 1)
    done = {"macs": 0, "s": 0.0}
    total = {"macs": 0}

    def plan(rows):
        total["macs"] = sum(r.macs for r in rows) * args.batch * runs
        rate = _macs_per_second(args.device)
        print(f"timing {len(rows)} models at batch {args.batch}, {runs} runs each: about "
              f"{_duration(total['macs'] / rate)} (estimated from their MACs and this "
              "machine's speed); --quick or fewer models (cnnlab compare --keras MODEL...) "
              "to shorten it", file=sys.stderr, flush=True)

    def progress(i, row, seconds):
        done["macs"] += row.macs * args.batch * runs
        done["s"] += seconds
        left = done["s"] / max(done["macs"], 1) * (total["macs"] - done["macs"])
        print(f"[{i + 1}/{len(names or KERAS_TO_CNNLAB)}] {row.model}: {seconds:.1f} s"
              f" ({_duration(left)} left)", file=sys.stderr, flush=True)

    rows = keras_table(names, timing=timing, batch=args.batch, device=args.device,
                       repeats=args.repeats, warmup=args.warmup,
                       time_budget_s=args.time_budget, progress=progress, plan=plan)
    header = header_lines(args.batch, args.device, timing, args.repeats, args.warmup)[:-1]
    if args.json:
        print(json.dumps({"header": header, "conventions": {
            "depth": DEPTH_NOTE, "params": PARAMS_NOTE, "published": PUBLISHED_NOTE},
            "models": [r.to_dict() for r in rows]}, indent=2))
    else:
        print(format_keras(rows, "markdown" if args.markdown else "text", header))
    return 0


def _macs_per_second(device: str) -> float:
    """Multiply-accumulates per second of one 3x3 convolution (64 -> 64 channels, 56x56), the
    best of 3 runs: the yardstick of the up-front estimate."""
    import time

    import torch

    x = torch.randn(1, 64, 56, 56, device=device)
    conv = torch.nn.Conv2d(64, 64, 3, padding=1).to(device).eval()
    best = float("inf")
    with torch.inference_mode():
        for _ in range(3):
            t0 = time.perf_counter()
            conv(x)
            best = min(best, time.perf_counter() - t0)
    return 64 * 64 * 9 * 56 * 56 / max(best, 1e-9)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
