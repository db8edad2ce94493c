"""The ``cnnlab`` command (also ``python -m cnnlab``).

Each sub-command lives in its own module under ``cnnlab.commands`` with two functions:
``add_parser(subparsers)`` declares its arguments (and sets ``func``), ``run(args)`` does the
work and returns the exit code. Mistakes of the user (an unknown model, a missing file, a
size that does not fit) raise :class:`~cnnlab.errors.CnnlabError` or ``ValueError``/``OSError``;
they are printed here as one line and give exit code 2. ``--debug`` shows the traceback.

The ``cnnlab`` executable and ``python -m cnnlab`` run one command and exit (:func:`run_process`);
they treat the garbage collector as such a process can (see :func:`_one_command_collector`).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
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
    "bench",
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


def main(argv: list[str] | None = None, *, own_process: bool = False) -> int:
    """Run one command; returns its exit code. ``own_process=True`` (only for the process entry
    points) pauses the collector while torch is imported and freezes it before returning."""
    parser = build_parser()
    with _one_command_collector(own_process) as started:
        args = parser.parse_args(argv)
        if own_process and getattr(args, "imports_torch", False):
            import torch  # noqa: F401  (the command needs it; imported while collection pauses)
        started()
        return _run(args)


@contextlib.contextmanager
def _one_command_collector(enabled: bool):
    """The cyclic garbage collector in a process that runs one command.

    ``import torch`` creates about 160,000 objects that the collector tracks (280,000 with
    ``torch._dynamo``, which torch's optimizers import), nearly all of them alive until the
    process ends. Each full collection walks all of them: Python runs several during the imports
    and a last one at exit, and they find next to nothing to free. Measured on a 2-core machine
    (load below 1, 9 interleaved pairs): ``python -c "import torch, torch._dynamo,
    sklearn.datasets"`` takes 0.61x the time (median of the pairs; 2.6-3.7 s against 4.3-5.6 s)
    with collection paused during the imports and the objects then frozen (``gc.freeze``: later
    collections skip them); about half of the saving is at exit. So a command-line process
    imports torch with collection paused, freezes what exists once the command starts (its own
    objects are collected as usual) and freezes again when it ends. ``enabled=False`` (callers
    of :func:`main` in a longer-lived process: tests, notebooks) leaves the collector alone.
    """
    if not enabled:
        yield lambda: None
        return
    was_enabled = gc.isenabled()
    gc.disable()

    def started():
        gc.freeze()
        if was_enabled:
            gc.enable()

    try:
        yield started
    finally:
        if not gc.isenabled() and was_enabled:
            gc.enable()
        gc.freeze()  # exit without a last walk over everything


def run_process() -> int:
    """The entry point of the ``cnnlab`` executable and of ``python -m cnnlab``."""
    return main(own_process=True)


def _run(args) -> int:
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
    sys.exit(run_process())
