"""``cnnlab list [PATTERN]``: the registered models, one per line, with their parameter count."""

from __future__ import annotations

import json

from . import new_command


def add_parser(sub) -> None:
    p = new_command(sub, "list", help="list the registered models and their parameter counts",
                    examples=["cnnlab list", "cnnlab list 'resnet*'", "cnnlab list --json"])
    p.add_argument("pattern", nargs="?", default="*",
                   help="shell-style wildcard on the model name (default: all)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def count_parameters_fast(name: str) -> int:
    """Parameter count of a registered model, built on the meta device (no memory, no init)."""
    import torch

    from ..registry import create_model

    with torch.device("meta"):
        model = create_model(name)
    return sum(p.numel() for p in model.parameters())


def run(args) -> int:
    from ..errors import UnknownModelError
    from ..registry import get_entry, list_models

    names = list_models(args.pattern)
    if not names:
        raise UnknownModelError(f"no model matches {args.pattern!r}; run 'cnnlab list' for all")
    rows = []
    for name in names:
        entry = get_entry(name)
        c, h, w = entry.input_size
        rows.append({"name": name, "params": count_parameters_fast(name),
                     "input": f"{c}x{h}x{w}", "family": entry.family, "about": entry.doc})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        print(f"{r['name']:<{width}}  {r['params']:>12,}  {r['input']:>10}  {r['about']}")
    return 0
