"""Sub-commands of the ``cnnlab`` command line; see :mod:`cnnlab.cli` for the contract."""

from __future__ import annotations

import argparse
import re
import sys
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


# --------------------------------------------------------------------------- one dialect
# Every command spells the same option the same way: --input-size CxHxW, -o/--output,
# --device (auto by default), --json. An old spelling keeps working for one release and says
# so on stderr (DeprecatedSpelling).

DEVICE_HELP = ("auto (default: cuda if available, else mps, else cpu), cpu, cuda, cuda:N, mps")


class DeprecatedSpelling(argparse.Action):
    """An old option spelling: stores into the new option's ``dest`` (converted by ``type`` as
    the new one is) and prints one line on stderr naming the new spelling."""

    def __init__(self, option_strings, dest, new: str = "", **kwargs):
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{parser.prog}: warning: {option_string} is deprecated and will be removed in "
              f"the next release; use {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_device_arg(p, help: str = DEVICE_HELP) -> None:
    """``--device``, ``auto`` by default (see :func:`cnnlab.resolve.usable_device`)."""
    p.add_argument("--device", default="auto", help=help)


def add_output_arg(p, help: str, *, old: str | None = "--out", **kwargs) -> None:
    """``-o/--output`` (and the deprecated ``old`` spelling, hidden from the help)."""
    p.add_argument("-o", "--output", dest="output", help=help, **kwargs)
    if old:
        p.add_argument(old, dest="output", action=DeprecatedSpelling, new="-o/--output",
                       help=argparse.SUPPRESS, **{k: v for k, v in kwargs.items()
                                                  if k in ("type", "metavar")})


def add_input_size_arg(p, help: str, *, old: str | None = "--input", **kwargs) -> None:
    """``--input-size CxHxW`` (and the deprecated ``--input``, hidden from the help), kept as
    text: :func:`input_size_of` parses it when the command runs, so a bad size is one of
    cnnlab's errors (exit 2 through :func:`cnnlab.cli.main`, not argparse's SystemExit)."""
    p.add_argument("--input-size", dest="input_size", metavar="CxHxW", help=help, **kwargs)
    if old:
        p.add_argument(old, dest="input_size", metavar="CxHxW", action=DeprecatedSpelling,
                       new="--input-size", help=argparse.SUPPRESS)


def input_size_of(args) -> tuple[int, int, int] | None:
    """``args.input_size`` parsed (None when not given); bad text raises
    :class:`~cnnlab.errors.InputShapeError`."""
    text = getattr(args, "input_size", None)
    if text is None or isinstance(text, tuple):
        return text
    try:
        return parse_input_size(text)
    except argparse.ArgumentTypeError as err:
        from ..errors import InputShapeError

        raise InputShapeError(str(err)) from None


def add_json_arg(p, help: str = "print the results as JSON") -> None:
    p.add_argument("--json", action="store_true", help=help)


def print_json(data) -> None:
    """``data`` as indented JSON on stdout (paths and tuples as strings and lists)."""
    import json

    print(json.dumps(data, indent=2, default=str))


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
