"""``cnnlab macs MODEL [--input CxHxW] [--per-layer] [--json]``: multiply-accumulates."""

from __future__ import annotations

import json

from . import add_input_size_arg, new_command
from .summary import build_for_analysis, input_size_arg


def add_parser(sub) -> None:
    p = new_command(
        sub, "macs", help="count a model's multiply-accumulates (MACs) and FLOPs = 2 x MACs",
        examples=["cnnlab macs resnet50", "cnnlab macs lenet5 --per-layer",
                  "cnnlab macs efficientnet_b0 --input-size 3x320x320 --json"],
        description="Count the multiply-accumulates of convolutions and linear layers (batch 1, "
                    "biases not counted) from the operators that really run; FLOPs = 2 x MACs. "
                    "Normalisation, activations, pooling and element-wise ops are reported "
                    "separately as 'other ops'.")
    p.add_argument("model", help="registered model name (see 'cnnlab list')")
    add_input_size_arg(p, "input size, for example 3x224x224 (default: the model's native size)")
    p.add_argument("--per-layer", action="store_true", help="list the MACs of every layer")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..analysis.macs import count_macs
    from ..analysis.summary import MAC_CONVENTION, OTHER_CONVENTION, human

    size = input_size_arg(args.model, args.input_size)
    res = build_for_analysis(args.model, size, count_macs)
    c, h, w = size
    if args.json:
        print(json.dumps({"model": args.model, "input_size": [c, h, w], "batch": 1,
                          "macs": res.macs, "flops": res.flops, "other_ops": res.other_ops,
                          "per_layer_macs": res.per_layer, "per_layer_other_ops":
                          res.other_per_layer, "macs_by_operator": res.by_op,
                          "conventions": {"macs": MAC_CONVENTION,
                                          "other_ops": OTHER_CONVENTION}}, indent=2))
        return 0
    if args.per_layer:
        width = max([len(k) for k in res.per_layer] + [5])
        print(f"{'Layer':<{width}}  {'MACs':>16}  {'share':>6}")
        for k, v in res.per_layer.items():
            share = v / res.macs if res.macs else 0.0
            print(f"{k:<{width}}  {v:>16,}  {share:>6.1%}")
        print()
    print(f"{args.model} at {c}x{h}x{w}, batch 1")
    print(f"MACs:      {res.macs:,} ({human(res.macs)})")
    print(f"FLOPs:     {res.flops:,} ({human(res.flops)}) = 2 x MACs")
    print(f"Other ops: {res.other_ops:,} (not in MACs/FLOPs)")
    print(f"Counting: {MAC_CONVENTION}; {OTHER_CONVENTION}.")
    return 0
