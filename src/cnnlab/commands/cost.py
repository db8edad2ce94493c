"""``cnnlab cost``: parameters and multiplications, standard vs depthwise-separable conv."""

from __future__ import annotations

import argparse
import json
import re
import sys

from . import new_command


def add_parser(sub) -> None:
    p = new_command(
        sub, "cost", torch=False,
        help="weights and multiplications of a standard vs a depthwise-separable convolution",
        examples=["cnnlab cost                       # the slide's example, with its errors",
                  "cnnlab cost --input-size 32x112x112 --maps 64 --kernel 3",
                  "cnnlab cost --input-size 3x224x224 --maps 32 --stride 2 --json",
                  "cnnlab cost --input-size 96x27x27 --maps 256 --kernel 5 --groups 2  # AlexNet",
                  "cnnlab cost --input-size 3x224x224 --maps 96 --kernel 11 --stride 4 "
                  "--padding valid"],
        description="Weights and multiplications (MACs) of a k x k convolution from C to N maps "
                    "against depthwise k x k + pointwise 1 x 1 (MobileNet); the ratio is "
                    "1/N + 1/k^2. Without options: the course slide's example (100x100x3, 128 "
                    "maps, 3x3), its figures and why they are wrong.")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--input-size", metavar="CxHxW",
                      help="input channels x height x width (default 3x100x100, the slide's; "
                           "the old --input HxWxC works for one more release)")
    size.add_argument("--input", metavar="HxWxC", help=argparse.SUPPRESS)  # deprecated
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


def _size(args) -> tuple[int, int, int]:
    """(H, W, C) from --input-size CxHxW, or the old --input HxWxC (with a deprecation line)."""
    from ..errors import InputShapeError

    if args.input is not None:
        m = _HWC.match(args.input)
        if not m:
            raise InputShapeError(f"--input must be HxWxC, for example 100x100x3, got "
                                  f"{args.input!r} (or use --input-size CxHxW)")
        h, w, c = (int(g) for g in m.groups())
        print(f"cnnlab cost: warning: --input HxWxC is deprecated and will be removed in the "
              f"next release; use --input-size CxHxW (here: --input-size {c}x{h}x{w})",
              file=sys.stderr)
        return h, w, c
    m = _HWC.match(args.input_size or "3x100x100")
    if not m:
        raise InputShapeError(f"--input-size must be CxHxW, for example 3x100x100, got "
                              f"{args.input_size!r}")
    c, h, w = (int(g) for g in m.groups())
    return h, w, c


def run(args) -> int:
    from ..analysis.cost import (
        SLIDE_EXAMPLE,
        SLIDE_FIGURES,
        conv_cost,
        format_cost,
        slide_explanation,
    )

    h, w, c = _size(args)
    from ..errors import OptionError

    padding = args.padding
    if padding not in ("same", "valid"):
        try:
            padding = int(padding)
        except ValueError:
            raise OptionError(f"--padding must be 'same', 'valid' or a number, got "
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
