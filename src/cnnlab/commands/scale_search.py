"""``cnnlab scale-search``: the EfficientNet compound-scaling grid search, on small data."""

from __future__ import annotations

import json
import sys

from ..errors import UsageError
from . import new_command, output_file


def add_parser(sub) -> None:
    p = new_command(
        sub, "scale-search", outputs=True,
        help="the EfficientNet grid search for alpha, beta, gamma (alpha*beta^2*gamma^2 ~ 2)",
        examples=["cnnlab scale-search                 # the default grid on the digits",
                  "cnnlab scale-search --quick         # a tiny grid on a subset, ~1 minute",
                  "cnnlab scale-search --budget 2 --tolerance 0.1 --json",
                  "cnnlab scale-search --plot search.png"],
        description="Enumerates alpha, beta, gamma >= 1 on a grid with alpha*beta^2*gamma^2 "
                    "within --tolerance of --budget, builds each scaled network from a small "
                    "base (repeats x alpha rounded up, widths x beta rounded to multiples of 8, "
                    "input side x gamma), trains each with the same short recipe on the same "
                    "data, reports the table with the best marked, then the phi = 1, 2, 3 "
                    "networks from the best coefficients and their MAC growth against 2^phi.")
    p.add_argument("--base", default="tiny",
                   help="the network to scale: tiny (a small EfficientNet-like net, 16x16; "
                        "default) or efficientnet_b0 (cnnlab's B0 stages at 32x32; slow)")
    p.add_argument("--data", default="digits",
                   help="digits (default), synthetic, or a folder (MNIST IDX, CIFAR, images)")
    p.add_argument("--budget", type=float, default=2.0,
                   help="resource growth alpha*beta^2*gamma^2 to aim at (default 2)")
    p.add_argument("--tolerance", type=float, default=None,
                   help="relative tolerance around the budget (default 0.08; --quick 0.25)")
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs per trial (default 6; --quick 4)")
    p.add_argument("--limit", type=int, default=None,
                   help="use only the first N training images (default all; --quick 400)")
    p.add_argument("--seed", type=int, default=0, help="seed of every trial (default 0)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: these small networks train no faster "
                        "on more, and a busy machine makes them slower)")
    p.add_argument("--quick", action="store_true",
                   help="a tiny grid (alpha, beta, gamma in {1, 2}, {1, 1.4}, {1, 1.4}) on a "
                        "small subset, a few epochs: about a minute")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument("--plot", metavar="FILE.png", help="also draw accuracy vs MACs")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..data import load_data
    from ..lab.scaling import (
        BASES,
        DEFAULT_GRID,
        QUICK_GRID,
        Data,
        Recipe,
        format_result,
        grid,
        plot,
    )
    from ..lab.scaling import search as run_search
    from ..training.config import check_threads

    if args.plot and not args.plot.lower().endswith(".png"):
        raise UsageError(f"--plot writes a PNG file; give a name ending in .png, got {args.plot}")
    if args.plot:
        output_file(args.plot, args, "--plot")
    if args.base not in BASES:
        raise UsageError(f"--base must be one of {', '.join(BASES)}, got {args.base!r}")
    axes = QUICK_GRID if args.quick else DEFAULT_GRID
    tolerance = args.tolerance if args.tolerance is not None else (0.25 if args.quick else 0.08)
    epochs = args.epochs if args.epochs is not None else (4 if args.quick else 6)
    limit = args.limit if args.limit is not None else (400 if args.quick else None)
    if epochs < 1 or (limit is not None and limit < 10) or args.threads < 1:
        raise UsageError("--epochs and --threads must be at least 1 and --limit at least 10")
    check_threads(args.threads)
    grid(args.budget, tolerance, axes)           # a budget no grid point meets fails here
    recipe = Recipe(epochs=epochs, seed=args.seed, train_limit=limit)
    data = Data(load_data(args.data), train_limit=limit,
                eval_limit=None if limit is None else max(limit // 2, 100))

    def progress(t, i, n):
        print(f"[{i + 1}/{n}] alpha={t.alpha:.2f} beta={t.beta:.2f} gamma={t.gamma:.2f} "
              f"({t.resolution}x{t.resolution}, {t.macs / 1e6:.2f} M MACs)", file=sys.stderr,
              flush=True)

    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        res = run_search(data, budget=args.budget, tolerance=tolerance, axes=axes,
                         recipe=recipe, progress=progress, base=args.base)
    finally:
        torch.set_num_threads(threads)
    if args.json:
        print(json.dumps(res.to_dict(), indent=2))
    else:
        print(format_result(res))
    if args.plot:
        plot(res, args.plot)
        print(f"chart written to {args.plot}", file=sys.stderr)
    return 0
