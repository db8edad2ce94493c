"""A fuzz test of the command line (issue 22): every command, hostile values for its flags.

For each command a cheap valid call (tiny data, one epoch, one thread) is the base; Hypothesis
adds or replaces one or two of its arguments with a value of a kind a person can type by
mistake (negative, zero, huge, NaN/inf, empty, the wrong type, a missing file, a folder for a
file and the reverse, an unreadable file, a symbolic-link loop) and runs ``cnnlab.cli.main``
in this process. A call fails the test if it raises (a traceback), exits with a code other
than 0, 1 or 2 (argparse's own exit included), reports a bug (an exception that is not one of
cnnlab's error classes: exit 1, "internal error"), or changes a file that existed before it.
Values that would only make a run long (a huge --epochs or --repeats) are left out; sizes that
cannot fit are in (they must be refused before they are allocated).

The default run draws a quick sample (a few seconds); ``pytest -m slow tests/commands/test_fuzz.py``
draws many more.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import os
import signal
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

NUMBERS = ["-1", "0", "1", "1000000000000", "nan", "inf", "-inf", "", "abc", "1e400", "0.5"]
TEXTS = ["", "abc", "-1", "0", "nan", "1x1x1", "3x100000x100000", "1x8x8", "key=value",
         "a/b", "..", "cuda", "meta", "1000000000000", "*"]
PATHS = ["missing", "folder", "garbage", "empty", "unreadable", "loop", "image", "run"]
SYN = "synthetic:classes=2,size=1x8x8,train=16,val=4,test=4"
# Flags whose large values only make a call long; they get the other values.
NOT_HUGE = {"--epochs", "--repeats", "--warmup", "--limit", "--workers"}
# Each call gets this many seconds (the slowest base call takes about 3 s on a busy 2-core
# machine); a call that runs longer fails the test.
LIMIT_S = 60


def _base(w: dict[str, Path]) -> dict[str, list[str]]:
    """A cheap valid call of every command (its positionals first)."""
    run, img, out = str(w["run"]), str(w["image"]), w["out"]
    return {
        "list": ["list"],
        "train": ["train", "lenet5", "--data", SYN, "--epochs", "1", "--threads", "1",
                  "--runs-dir", str(out / "runs"), "--no-plots", "--batch-size", "8"],
        "evaluate": ["evaluate", run],
        "predict": ["predict", run, img],
        "summary": ["summary", "lenet5"],
        "macs": ["macs", "lenet5"],
        "cost": ["cost"],
        "compare": ["compare", "lenet5", "--repeats", "1", "--warmup", "0", "--batch", "2"],
        "errata": ["errata"],
        "scratch train": ["scratch", "train", "--epochs", "1", "--limit", "20", "--no-progress",
                          "--batch-size", "16"],
        "scratch show": ["scratch", "show", str(w["scratch"]), "-o", str(out / "show")],
        "filter": ["filter", img, "--kernel", "box", "--figure", "none",
                   "-o", str(out / "f.png")],
        "visualize": ["visualize", run, "-o", str(out / "vis")],
        "weights inspect": ["weights", "inspect", str(w["run"] / "model.safetensors")],
        "explore": ["explore", "lenet5", "-o", str(out / "page.html")],
    }


# Where the positionals of each base call are (argv indices): they are fuzzed too.
POSITIONALS = {"train": [1], "evaluate": [1], "predict": [1, 2], "summary": [1], "macs": [1],
               "compare": [1], "scratch show": [2], "filter": [1], "visualize": [1],
               "weights inspect": [2], "explore": [1]}


def _options(command: str) -> list[argparse.Action]:
    from cnnlab.cli import build_parser

    parser = build_parser()
    for word in command.split():
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[word]
    return [a for a in parser._actions if a.option_strings and a.dest not in ("help", "debug")]


def _values(action: argparse.Action, w: dict[str, Path]) -> list[str]:
    paths = [str(w[p]) for p in PATHS]
    if action.nargs == 0:
        return [None]
    if action.choices:
        return [*map(str, action.choices), "", "nosuch", "-1"]
    if action.type in (int, float):
        return [v for v in NUMBERS if not (action.option_strings[0] in NOT_HUGE
                                          and v in ("1000000000000", "inf", "1e400"))]
    if action.dest == "resume":  # resuming the shared run would (rightly) change it
        return [v for v in paths if v != str(w["run"])] + TEXTS
    return paths + TEXTS


def _snapshot(*roots: Path) -> dict[str, str]:
    out = {}
    for root in roots:
        for dirpath, _, files in os.walk(root, followlinks=False):
            for f in files:
                p = Path(dirpath) / f
                if p.is_symlink() or not p.is_file() or p.name == ".lock":
                    continue
                try:
                    out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
                except OSError:
                    pass
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory, trained_runs):
    """The files a user might point at: an image, a trained run, a scratch run, a folder,
    garbage, an empty file, an unreadable one, a link loop, a path that does not exist."""
    from PIL import Image

    root = tmp_path_factory.mktemp("fuzz")
    w = {"out": root / "out", "folder": root / "a folder", "garbage": root / "garbage.png",
         "empty": root / "empty.pt", "unreadable": root / "unreadable.png",
         "loop": root / "loop.png", "missing": root / "missing.png", "image": root / "img.png"}
    w["out"].mkdir()
    w["folder"].mkdir()
    w["garbage"].write_bytes(b"\x89PNG not really" * 10)
    w["empty"].write_bytes(b"")
    Image.fromarray((np.arange(64).reshape(8, 8) * 4).astype(np.uint8)).save(w["image"])
    w["unreadable"].write_bytes(w["image"].read_bytes())
    w["unreadable"].chmod(0)
    w["loop"].symlink_to(w["loop"])
    # the shared runs (trained once per session): lenet5 1 epoch on SYN, NumPy on 20 digits
    w["run"], w["scratch"] = trained_runs.lenet5_8x8, trained_runs.scratch_limit20
    yield w
    w["unreadable"].chmod(0o644)


class _TooLong(BaseException):
    pass


def _call(argv: list[str], cwd: Path) -> tuple[int, str]:
    from cnnlab.cli import main

    def alarm(signum, frame):
        raise _TooLong(f"cnnlab {' '.join(argv)} ran longer than {LIMIT_S} s")

    old_cwd, old = os.getcwd(), signal.signal(signal.SIGALRM, alarm)
    err = io.StringIO()
    signal.alarm(LIMIT_S)
    try:
        os.chdir(cwd)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:  # argparse
                code = exc.code if isinstance(exc.code, int) else 2
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        os.chdir(old_cwd)
    return code, err.getvalue()


def _check(world, command: str, changes: list[tuple[int, str | None]]) -> None:
    """Run the base call of ``command`` with ``changes`` (option index, value) applied."""
    import uuid

    import torch

    out = world["out"] / uuid.uuid4().hex[:8]  # each call writes its outputs somewhere new
    base = _base({**world, "out": out})[command]
    options = _options(command)
    argv = list(base)
    for index, value in changes:
        if index < 0:  # a positional replaced
            argv[POSITIONALS[command][-index - 1]] = value
            continue
        action = options[index % len(options)]
        argv += [action.option_strings[0]] + ([] if value is None else [value])
    before = _snapshot(world["out"].parent, world["run"], world["scratch"])
    threads = torch.get_num_threads()
    try:
        out.mkdir()
        code, err = _call(argv, out)
    except _TooLong:
        raise
    except BaseException as exc:  # a traceback: the test fails, naming the call
        raise AssertionError(f"cnnlab {' '.join(argv)} raised {exc!r}") from exc
    finally:
        torch.set_num_threads(threads)
    assert code in (0, 1, 2), f"cnnlab {' '.join(argv)} exited {code}: {err[-500:]}"
    # exit 1 is a bug now (cli.py maps only cnnlab's own error classes to exit 2): a user
    # mistake that escapes as a built-in exception fails here, with the exception named
    assert "internal error (a bug in cnnlab" not in err, f"cnnlab {' '.join(argv)}: {err}"
    after = _snapshot(world["out"].parent, world["run"], world["scratch"])
    changed = [p for p in before if p in after and after[p] != before[p]]
    assert not changed, f"cnnlab {' '.join(argv)} changed {changed}"
    if code == 2:
        assert "Traceback" not in err and err.strip(), f"cnnlab {' '.join(argv)}: {err}"


def _strategy(world):
    names = list(_base(world))

    @st.composite
    def call(draw):
        command = draw(st.sampled_from(names))
        options = _options(command)
        changes = []
        for _ in range(draw(st.integers(1, 2))):
            slots = POSITIONALS.get(command, [])
            i = draw(st.integers(-len(slots), len(options) - 1))
            pool = ([str(world[p]) for p in PATHS] + TEXTS) if i < 0 else _values(
                options[i], world)
            changes.append((i, draw(st.sampled_from(pool))))
        return command, changes
    return call()


def _fuzz(world, examples: int) -> None:
    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(_strategy(world))
    def run(case):
        _check(world, *case)
    run()


def test_fuzz_cli_quick_sample(world):
    _fuzz(world, 12)


@pytest.mark.slow
def test_fuzz_cli(world):
    _fuzz(world, 400)


@pytest.mark.parametrize("command", ["train", "compare", "filter", "scratch train", "explore",
                                     "predict", "evaluate"])
def test_every_base_call_works(world, command):
    """The base calls themselves succeed (else the fuzz would only test one error)."""
    _check(world, command, [])
