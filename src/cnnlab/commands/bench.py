"""``cnnlab bench MODEL_OR_RUN... [--batch 1,32] [--backends ...]``: every inference backend
side by side on this machine (eager fp32, channels_last, bf16 autocast, fused, torch.compile
fp32 and bf16, int8 PT2E, ONNX Runtime fp32 and int8), with top-1 agreement, accuracy for runs,
the machine's matrix-multiply peak (``--peak``) and the fastest backend that keeps top-1
(``--pick``)."""

from __future__ import annotations

import json
import sys

from ..errors import OptionError
from . import add_device_arg, add_input_size_arg, input_size_of, new_command

ALL = "eager,channels_last,bf16,fused,compile,compile_bf16,int8,ort,ort_int8"


def add_parser(sub) -> None:
    p = new_command(
        sub, "bench", help="time every inference backend side by side (fused, bf16, compile, "
                           "int8, ONNX Runtime) against eager fp32",
        description="Each backend is prepared (compile / quantize / export time reported "
                    "apart), then timed in interleaved rounds, one step of each backend per "
                    "round, median of the rounds. Top-1 agreement with eager fp32 on a fixed "
                    f"set of images; test accuracy per backend for run folders. Backends: {ALL}.",
        examples=["cnnlab bench resnet18 --batch 1,32",
                  "cnnlab bench resnet50 mobilenet_v2 --batch 32 --peak --repeats 3",
                  "cnnlab bench runs/lenet5-digits --backends eager,int8,ort_int8",
                  "cnnlab bench resnet18 --pick --json"])
    p.add_argument("models", nargs="+", metavar="MODEL_OR_RUN",
                   help="registered model names (random weights; digits images as input) or "
                        "run folders (trained weights; the run's data, test accuracy)")
    p.add_argument("--batch", default="1,32", help="batch sizes, comma-separated (default 1,32)")
    p.add_argument("--backends", default=ALL, help=f"comma-separated (default: all: {ALL})")
    p.add_argument("--repeats", type=int, default=5, help="timed rounds (default 5)")
    p.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    p.add_argument("--images", type=int, default=32,
                   help="fixed images for top-1 agreement (default 32)")
    add_input_size_arg(p, "input size of registered models (default: the model's native size)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    add_device_arg(p, "auto (default: cuda if available, else cpu), cpu, cuda, cuda:N; on a "
                      "GPU the CPU-only backends (int8, ONNX Runtime) say so in their rows")
    p.add_argument("--peak", action="store_true",
                   help="measure the fp32/bf16/int8 matrix-multiply peak; add %% of peak")
    p.add_argument("--pick", action="store_true",
                   help="name the fastest backend that keeps top-1 agreement")
    p.add_argument("--min-agreement", type=float, default=0.97,
                   help="top-1 agreement a backend must keep for --pick (default 0.97)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print JSON")
    fmt.add_argument("--markdown", action="store_true", help="print a Markdown table")
    p.set_defaults(func=run)


def parse_batches(text: str) -> list[int]:
    try:
        out = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        out = []
    if not out or min(out) < 1:
        raise OptionError(f"--batch takes positive integers, comma-separated (1,32), got {text!r}")
    return out


def run(args) -> int:
    import torch

    from ..analysis.backends import (
        bench,
        check_backends,
        format_results,
        machine_lines,
        peak_line,
        pick,
        pick_caveats,
    )

    batches = parse_batches(args.batch)
    backends = check_backends([b.strip() for b in args.backends.split(",") if b.strip()])
    if args.repeats < 1 or args.warmup < 0 or args.images < 1:
        raise OptionError("--repeats and --images must be at least 1, --warmup at least 0")
    if args.threads is not None:
        if args.threads < 1:
            raise OptionError(f"--threads must be at least 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    device = bench_device(args.device)
    header = machine_lines(device)
    bar = _bar(len(args.models) * len(batches) * (len(backends) + args.repeats))
    try:
        results = bench(args.models, batches=batches, backends=backends, repeats=args.repeats,
                        warmup=args.warmup, images=args.images, peaks=args.peak,
                        input_size=input_size_of(args), progress=bar, device=device)
    finally:
        bar.close()
    header.append(f"ms/step: median of {args.repeats} interleaved rounds after {args.warmup} "
                  f"warm-up; top-1 agree: with eager fp32 on {args.images} fixed images; "
                  "logit err: the L2 norm of the logits' difference from eager fp32's over "
                  "the L2 norm of eager's, on the same images")
    if args.peak:
        header.append(peak_line(results))
    best = pick(results, min_agreement=args.min_agreement) if args.pick else {}
    caveats = pick_caveats(results, best, min_agreement=args.min_agreement)
    if args.json:
        print(json.dumps({"header": header, "results": [r.to_dict() for r in results],
                          "pick": {f"{m}@{b}": r.backend for (m, b), r in best.items()},
                          "pick_caveats": caveats}, indent=2))
        return 0
    print("\n".join(header))
    print()
    print(format_results(results, markdown=args.markdown))
    for (model, batch), r in best.items():
        print(f"fastest backend keeping top-1 for {model} at batch {batch}: {r.backend} "
              f"({r.ms:.2f} ms/step)")
    for line in caveats:
        print(line)
    return 0


def bench_device(name: str):
    """``--device``: the CPU or a CUDA GPU (``auto``: CUDA when there is one). Other devices
    are refused in one line: bench waits for a CUDA GPU before each clock read and cannot
    for another one."""
    import torch

    from ..errors import OptionError
    from ..resolve import usable_device

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        kind = torch.device(name).type
    except (RuntimeError, TypeError):
        kind = None  # usable_device names the mistake
    if kind not in (None, "cpu", "cuda"):
        raise OptionError(f"bench times the CPU or a CUDA GPU, not --device {name}; use "
                          "--device cpu")
    return usable_device(name)  # a device this machine lacks: one line, exit 2


def _bar(total: int):
    from tqdm import tqdm

    bar = tqdm(total=total, unit="step", leave=False, file=sys.stderr,
               disable=not sys.stderr.isatty())

    class Progress:
        def __call__(self, text: str) -> None:
            bar.set_description(text, refresh=False)
            bar.update(1)

        def close(self) -> None:
            bar.close()

    return Progress()
