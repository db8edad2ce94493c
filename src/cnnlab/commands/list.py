"""``cnnlab list [PATTERN]``: the registered models, one per line, with their parameter count.

The rows come from the catalog index (:mod:`cnnlab.catalog`): the parameter counts were
computed from the code when the index was generated, and a test checks them against real
builds. Nothing is built and torch is not imported, so the command answers at once.
"""

from __future__ import annotations

import fnmatch
import json
import re

from . import new_command


def add_parser(sub) -> None:
    p = new_command(sub, "list", torch=False,
                    help="list the registered models and their parameter counts",
                    examples=["cnnlab list", "cnnlab list 'resnet*'", "cnnlab list --json"])
    p.add_argument("pattern", nargs="?", default="*",
                   help="shell-style wildcard on the model name (default: all)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def natural_key(name: str) -> list:
    """Sort key that reads the numbers in a name as numbers: resnet18 < resnet34 < resnet101."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def run(args) -> int:
    from .._catalog_data import MODELS
    from ..errors import UnknownModelError

    names = sorted(fnmatch.filter(MODELS, args.pattern), key=natural_key)
    if not names:
        raise UnknownModelError(f"no model matches {args.pattern!r}; run 'cnnlab list' for all")
    rows = []
    for name in names:
        entry = MODELS[name]
        c, h, w = entry["input_size"]
        rows.append({"name": name, "params": entry["params"], "input": f"{c}x{h}x{w}",
                     "family": entry["family"], "about": entry["doc"]})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len("model"), *(len(r["name"]) for r in rows))
    print(f"{'model':<{width}}  {'parameters':>12}  {'input':>10}  about")
    for r in rows:
        print(f"{r['name']:<{width}}  {r['params']:>12,}  {r['input']:>10}  {r['about']}")
    return 0
