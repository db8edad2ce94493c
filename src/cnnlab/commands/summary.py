"""``cnnlab summary MODEL [--input CxHxW] [--depth N] [--json]``: a Keras-style layer table."""

from __future__ import annotations

import argparse
import json

from ..errors import UsageError
from . import new_command, parse_input_size


def add_parser(sub) -> None:
    p = new_command(
        sub, "summary", help="print a model's layers, output shapes, parameters and MACs",
        examples=["cnnlab summary lenet5", "cnnlab summary resnet50 --depth 2",
                  "cnnlab summary vgg16 --input 3x32x32 --json",
                  "cnnlab summary lenet5 --receptive-field"])
    p.add_argument("model", help="registered model name (see 'cnnlab list')")
    p.add_argument("--input", metavar="CxHxW",
                   help="input size, for example 3x224x224 (default: the model's native size)")
    p.add_argument("--depth", type=int, default=3,
                   help="how deep to show nested modules (default 3; totals never change)")
    p.add_argument("--train", action="store_true",
                   help="trace the training-mode graph (auxiliary classifiers active)")
    p.add_argument("--receptive-field", action="store_true",
                   help="print every layer's receptive field (size, jump, start) instead")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def input_size_arg(model_name: str, text: str | None) -> tuple[int, int, int]:
    """The ``--input`` value, or the registry's native size; bad text is a ValueError."""
    from ..registry import get_entry

    entry = get_entry(model_name)  # unknown names fail here, with suggestions
    if text is None:
        return tuple(entry.input_size)
    try:
        return parse_input_size(text)
    except argparse.ArgumentTypeError as err:
        raise UsageError(str(err)) from None


def build_for_analysis(name: str, input_size, fn):
    """Build ``name`` on the meta device (nothing allocated) and call ``fn(model, input_size)``;
    models that cannot run on meta are built on the CPU instead."""
    import torch

    from ..errors import CnnlabError
    from ..registry import create_model

    try:
        with torch.device("meta"):
            model = create_model(name)
        return fn(model, input_size)
    except CnnlabError:
        raise
    except (NotImplementedError, RuntimeError):
        torch.manual_seed(0)
        return fn(create_model(name), input_size)


def run(args) -> int:
    from ..analysis.summary import summary

    if args.depth < 1:
        raise UsageError(f"--depth must be at least 1, got {args.depth}")
    size = input_size_arg(args.model, args.input)
    if args.receptive_field:
        from ..analysis.receptive_field import format_fields, receptive_field

        fields = build_for_analysis(args.model, size, receptive_field)
        if args.json:
            print(json.dumps([f.to_dict() for f in fields.values()], indent=2))
        else:
            print(format_fields(fields, size))
        return 0
    result = build_for_analysis(
        args.model, size, lambda m, s: summary(m, s, depth=args.depth, training=args.train))
    result.model_name = args.model
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(result.table())
    return 0
