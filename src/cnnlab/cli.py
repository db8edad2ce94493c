"""The ``cnnlab`` command (also ``python -m cnnlab``).

Each sub-command lives in its own module under ``cnnlab.commands`` with two functions:
``add_parser(subparsers)`` declares its arguments (and sets ``func``), ``run(args)`` does the
work and returns the exit code. Mistakes of the user (an unknown model, a missing file, a
size that does not fit) raise :class:`~cnnlab.errors.CnnlabError` or ``ValueError``/``OSError``;
they are printed here as one line and give exit code 2. ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from .errors import CnnlabError

# One module per sub-command, in the order ``cnnlab --help`` lists them.
COMMANDS = [
    "list",
    "train",
    "evaluate",
    "predict",
    "summary",
    "macs",
    "cost",
    "compare",
    "errata",
    "scale-search",
    "scratch",
    "filter",
    "visualize",
    "weights",
    "explore",
    "export",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnnlab",
        description="Classic CNNs from LeNet-5 to EfficientNet: build, inspect, train, compare.",
        epilog="examples:\n  cnnlab list 'resnet*'\n  cnnlab train lenet5\n"
               "run 'cnnlab COMMAND --help' for the options of a command",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"cnnlab.commands.{name.replace('-', '_')}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # the reader went away (`cnnlab list | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (CnnlabError, ValueError, OSError) as err:
        if getattr(args, "debug", False):
            raise
        print(f"cnnlab {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"cnnlab {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
