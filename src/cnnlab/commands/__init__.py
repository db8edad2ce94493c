"""Sub-commands of the ``cnnlab`` command line; see :mod:`cnnlab.cli` for the contract."""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence

from ..errors import OutputExistsError


def new_command(subparsers, name: str, *, help: str, examples: Sequence[str] = (),
                description: str | None = None, torch: bool = True,
                outputs: bool = False) -> argparse.ArgumentParser:
    """Add the sub-command ``name`` with a help text, examples and the common ``--debug``.

    ``torch=False`` declares a command that runs without importing torch (tests/test_imports
    checks it); the ``cnnlab`` process imports torch up front for the others (see
    ``cli._one_command_collector``). ``outputs=True``: the command writes files the user names,
    and takes ``--overwrite`` (see :func:`output_file`)."""
    epilog = "examples:\n" + "\n".join(f"  {e}" for e in examples) if examples else None
    parser = subparsers.add_parser(
        name, help=help, description=description or help, epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(imports_torch=torch)
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback when something goes wrong")
    if outputs:
        parser.add_argument("--overwrite", action="store_true",
                            help="replace output files that already exist (refused without it)")
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


def output_file(path, args, flag: str):
    """``path`` as a Path, refused when it is an existing file and ``--overwrite`` was not
    given: nothing a user made is replaced without being asked (``--out photo.png`` replaced
    the photo). Checked before the work starts."""
    from pathlib import Path

    path = Path(path)
    if (path.is_file() or path.is_symlink()) and not getattr(args, "overwrite", False):
        raise OutputExistsError(f"{path} already exists; {flag} does not replace a file without "
                                "--overwrite: choose another name, or add --overwrite")
    return path
