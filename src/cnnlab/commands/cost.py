"""``cnnlab cost``: parameters and multiplications, standard vs depthwise-separable conv."""

from __future__ import annotations

import json
import re
import sys

from ..errors import UsageError
from . import new_command


def add_parser(sub) -> None:
    p = new_command(
        sub, "cost", torch=False,
        help="weights and multiplications of a standard vs a depthwise-separable convolution",
        examples=["cnnlab cost                       # the slide's example, with its errors",
                  "cnnlab cost --input 112x112x32 --maps 64 --kernel 3",
                  "cnnlab cost --input 224x224x3 --maps 32 --stride 2 --json",
                  "cnnlab cost --input 27x27x96 --maps 256 --kernel 5 --groups 2   # AlexNet",
                  "cnnlab cost --input 224x224x3 --maps 96 --kernel 11 --stride 4 --padding valid"],
        description="Weights and multiplications (MACs) of a k x k convolution from C to N maps "
                    "against depthwise k x k + pointwise 1 x 1 (MobileNet); the ratio is "
                    "1/N + 1/k^2. Without options: the course slide's example (100x100x3, 128 "
                    "maps, 3x3), its figures and why they are wrong.")
    p.add_argument("--input", metavar="HxWxC", default="100x100x3",
                   help="input height x width x channels (default 100x100x3)")
    p.add_argument("--maps", type=int, default=128, help="output maps N (default 128)")
    p.add_argument("--kernel", type=int, default=3, help="kernel size k (default 3)")
    p.add_argument("--stride", type=int, default=1, help="stride (default 1)")
    p.add_argument("--padding", default="same",
                   help="'same', 'valid' or a number of pixels (default same)")
    p.add_argument("--groups", type=int, default=1, metavar="G",
                   help="also show the grouped convolution: input maps and filters split into G "
                        "groups (G must divide both)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


_HWC = re.compile(r"^\s*(\d+)\s*x\s*(\d+)\s*x\s*(\d+)\s*$")


def run(args) -> int:
    from ..analysis.cost import (
        SLIDE_EXAMPLE,
        SLIDE_FIGURES,
        conv_cost,
        format_cost,
        slide_explanation,
    )

    m = _HWC.match(args.input)
    if not m:
        raise UsageError(f"--input must be HxWxC, for example 100x100x3, got {args.input!r}")
    h, w, c = (int(g) for g in m.groups())
    padding = args.padding
    if padding not in ("same", "valid"):
        try:
            padding = int(padding)
        except ValueError:
            raise UsageError(f"--padding must be 'same', 'valid' or a number, got "
                             f"{args.padding!r}") from None
    cost = conv_cost(h, w, c, args.maps, args.kernel, args.stride, padding, args.groups)
    slide = ({"height": h, "width": w, "in_channels": c, "out_channels": args.maps,
              "kernel": args.kernel} == SLIDE_EXAMPLE and args.stride == 1
             and cost.out_height == h)
    if args.json:
        for warning in cost.warnings:
            print(f"cnnlab cost: warning: {warning}", file=sys.stderr)
        data = cost.to_dict()
        if slide:
            data["slide"] = dict(SLIDE_FIGURES, explanation=slide_explanation(cost))
        print(json.dumps(data, indent=2))
    else:
        print(format_cost(cost, slide=slide))
    return 0
