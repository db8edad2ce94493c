"""The ``cnnlab`` command (also ``python -m cnnlab``).

Each sub-command lives in its own module under ``cnnlab.commands`` with two functions:
``add_parser(subparsers)`` declares its arguments (and sets ``func``), ``run(args)`` does the
work and returns the exit code. Mistakes of the user (an unknown model, a missing file, a
size that does not fit, an input too large for the machine) raise one of cnnlab's own error
classes (:class:`~cnnlab.errors.CnnlabError` and its subclasses, :mod:`cnnlab.errors`); only
those are printed here as one line with exit code 2, as is a mistake in the command line itself
(argparse's: one line and "see cnnlab COMMAND --help", not the whole usage). An allocation that
fails although it was estimated to fit (``MemoryError``, torch's "you tried to allocate") is
reported the same way, as the :class:`~cnnlab.errors.ResourceError` it would have been.
Anything else (a ``ValueError``, ``OSError``, ``KeyError`` ... that cnnlab did not raise as
one of its classes) is a bug: one line naming the exception and "run with --debug for the
traceback", exit code 1. ``--debug`` prints the traceback first, for either kind.

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

# One module per sub-command, by group, in the order ``cnnlab --help`` lists them.
GROUPS = {
    "models": ["list", "summary", "macs", "weights", "export"],
    "training": ["train", "evaluate", "predict"],
    "analysis": ["compare", "bench", "cost", "visualize", "explore"],
    "lab": ["errata", "scale-search", "scratch", "filter"],
}
COMMANDS = [name for names in GROUPS.values() for name in names]


class _Parser(argparse.ArgumentParser):
    """A mistake in the command line is one line: the error and where to read the options
    (argparse prints the whole usage first, 20 lines for ``train``). Sub-command parsers are
    of this class too (argparse creates them with the parent's class)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}; see '{self.prog} --help'\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cnnlab",
        description="Classic CNNs from LeNet-5 to EfficientNet: build, inspect, train, compare.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                help="one of the commands below")
    for name in COMMANDS:
        importlib.import_module(f"cnnlab.commands.{name.replace('-', '_')}").add_parser(sub)
    helps = {a.dest: a.help for a in sub._choices_actions}
    sub._choices_actions.clear()  # listed by group in the epilog instead of in one block
    width = max(map(len, COMMANDS)) + 2
    lines = ["commands:"]
    for group, names in GROUPS.items():
        lines.append(f"  {group}:")
        lines += [f"    {name:<{width}}{helps.get(name) or ''}" for name in names]
    parser.epilog = "\n".join(lines + [
        "", "examples:", "  cnnlab list 'resnet*'", "  cnnlab train lenet5",
        "run 'cnnlab COMMAND --help' for the options of a command"])
    return parser


def main(argv: list[str] | None = None, *, own_process: bool = False) -> int:
    """Run one command; returns its exit code. ``own_process=True`` (only for the process entry
    points) pauses the collector while torch is imported and freezes it before returning."""
    parser = build_parser()
    with _one_command_collector(own_process) as started:
        args, extra = parser.parse_known_args(argv)
        if extra:  # parse_args would report them as the top-level parser's: "see cnnlab --help"
            prog = " ".join(["cnnlab", args.command, *([args.action] if getattr(
                args, "action", None) else [])])
            _Parser(prog=prog).error(f"unrecognized arguments: {' '.join(extra)}")
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
        if getattr(args, "allow_nonfinite", False):
            from .pretrained import nonfinite_allowed

            with nonfinite_allowed():
                return int(args.func(args) or 0)
        return int(args.func(args) or 0)
    except BrokenPipeError:  # the reader went away (`cnnlab list | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except CnnlabError as err:
        return _user_error(args, err, err)
    except (MemoryError, RuntimeError, ValueError) as err:  # an allocation that failed after all
        from .memory import allocation_failure

        line = allocation_failure(err)
        if line is None:
            return _bug(args, err)
        return _user_error(args, err, line)
    except KeyboardInterrupt:
        print(f"cnnlab {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        return _bug(args, err)


def _bug(args, err: BaseException) -> int:
    """An exception that is not one of cnnlab's error classes: a bug, not the user's mistake.
    One line (the exception's class and first line) and how to see the traceback, exit 1;
    with ``--debug`` the traceback first."""
    debug = getattr(args, "debug", False)
    if debug:
        import traceback

        traceback.print_exception(err)
    first = (str(err).strip().splitlines() or [""])[0]
    what = f"{type(err).__name__}: {first}" if first else type(err).__name__
    hint = "" if debug else "; run with --debug for the traceback"
    print(f"cnnlab {args.command}: internal error (a bug in cnnlab, please report it): "
          f"{what}{hint}", file=sys.stderr)
    return 1


def _user_error(args, err: BaseException, line) -> int:
    """One line, exit 2; with ``--debug`` the traceback first."""
    if getattr(args, "debug", False):
        import traceback

        traceback.print_exception(err)
    print(f"cnnlab {args.command}: error: {line}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(run_process())
