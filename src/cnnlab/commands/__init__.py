"""Sub-commands of the ``cnnlab`` command line; see :mod:`cnnlab.cli` for the contract."""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence


def new_command(subparsers, name: str, *, help: str, examples: Sequence[str] = (),
                description: str | None = None, torch: bool = True) -> argparse.ArgumentParser:
    """Add the sub-command ``name`` with a help text, examples and the common ``--debug``.

    ``torch=False`` declares a command that runs without importing torch (tests/test_imports
    checks it); the ``cnnlab`` process imports torch up front for the others (see
    ``cli._one_command_collector``)."""
    epilog = "examples:\n" + "\n".join(f"  {e}" for e in examples) if examples else None
    parser = subparsers.add_parser(
        name, help=help, description=description or help, epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(imports_torch=torch)
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback when something goes wrong")
    if torch:  # the commands that may read weights files
        parser.add_argument("--allow-nonfinite", action="store_true",
                            help="load weights files even if they hold NaN or infinite values")
    return parser


_SIZE = re.compile(r"^\s*(\d+)\s*[x,]\s*(\d+)\s*(?:[x,]\s*(\d+)\s*)?$")


def parse_input_size(text: str) -> tuple[int, int, int]:
    """``"3x224x224"`` -> (3, 224, 224). Two numbers are refused: the channel count matters."""
    m = _SIZE.match(text)
    if not m or m.group(3) is None:
        raise argparse.ArgumentTypeError(
            f"input size must be CxHxW, for example 3x224x224, got {text!r}")
    c, h, w = (int(g) for g in m.groups())
    if min(c, h, w) <= 0:
        raise argparse.ArgumentTypeError(
            f"every dimension of the input size must be positive, got {text!r}")
    return c, h, w
