"""What the tests share: the paths, the reference records, the two ways to run the CLI.

``run_main`` runs ``cnnlab.cli.main`` in this process (most CLI tests, also through the ``cli``
fixture: no interpreter start-up, no second torch import); ``run_cli`` starts
``python -m cnnlab`` in a subprocess (the smoke tests of the real process, marked
``@pytest.mark.smoke``, and what needs a process of its own: signals, torchrun, what a fresh
interpreter imports). Both return a ``Result``: ``returncode``, ``stdout`` and ``stderr``, as a
finished subprocess has them. The seeded weight fill is in ``tests.helpers.seeded_fill``, the small
networks of the analysis tests in ``tests.helpers.nets``; the trained runs the CLI tests share
are the session fixture ``trained_runs`` (tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import NamedTuple

import torch

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
REFERENCE_DIR = TESTS / "reference"


@cache
def _reference_file(source: str) -> dict:
    return json.loads((REFERENCE_DIR / f"{source}.json").read_text())


def reference_record(ref: str) -> dict:
    """A reference record by name (``"torchvision:resnet50"``, ``"keras:Xception"``).

    Returns ``params`` (trainable parameters), ``state_dict`` (list of (key, shape), or None),
    ``macs`` (or None) and ``input`` as (C, H, W) (or None). The files are copies of
    ``../shared/reference/`` (see tests/reference/REFERENCE_NUMBERS.md for their sources).
    """
    source, key = ref.split(":", 1)
    rec = _reference_file(source)[key]
    if source == "keras":
        params = rec.get("trainable", rec.get("count_params"))
        h, w, c = rec["input"]
        return {"params": params, "state_dict": None, "macs": None, "input": (c, h, w),
                "record": rec}
    _, c, h, w = rec["input"]
    return {"params": rec["params"], "state_dict": [(k, tuple(s)) for k, s in rec["state_dict"]],
            "macs": rec.get("macs"), "input": (c, h, w), "record": rec}


def converted(model, kind: str, x: torch.Tensor):
    """``model`` through ``torch.fx.symbolic_trace`` ("fx"), ``torch.jit.script`` ("script")
    or ``torch.export.export`` with the example input ``x`` ("export")."""
    if kind == "fx":
        return torch.fx.symbolic_trace(model)
    if kind == "script":
        return torch.jit.script(model)
    return torch.export.export(model, (x,)).module()


class Result(NamedTuple):
    """What a CLI call returned: the attributes of a finished subprocess, and a tuple
    (``code, out, err = run_main(...)``)."""

    returncode: int
    stdout: str
    stderr: str


def run_main(capsys, *argv) -> Result:
    """The real entry point, ``cnnlab.cli.main``, in this process (no interpreter start-up),
    its output taken from pytest's ``capsys``. Arguments may be paths or numbers (they are
    turned into strings)."""
    from cnnlab.cli import main

    capsys.readouterr()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse: --help, or a usage mistake; as a process would exit
        code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    out, err = capsys.readouterr()
    return Result(code, out, err)


def cli_env(env: dict | None = None) -> dict:
    """The environment of a ``python -m cnnlab`` subprocess: this checkout's source first."""
    return dict(os.environ, PYTHONPATH=str(REPO / "src"), COLUMNS="120", **(env or {}))


def run_cli(*args: str, timeout: float = 300, cwd: str | os.PathLike | None = None,
            env: dict | None = None):
    """Run the real ``cnnlab`` entry point (``python -m cnnlab``) in a subprocess, with extra
    environment variables ``env``: a smoke test of the entry point, or a call that needs a
    process of its own. Everything else goes through ``run_main``."""
    res = subprocess.run([sys.executable, "-m", "cnnlab", *map(str, args)],
                         capture_output=True, text=True, timeout=timeout, env=cli_env(env),
                         cwd=cwd)
    return Result(res.returncode, res.stdout, res.stderr)


def one_line_error(res, *needles: str) -> str:
    """``res`` (from ``run_main`` or ``run_cli``) is a user error: exit 2 and one line on
    stderr, without a traceback, containing each of ``needles``. Returns the line."""
    assert res.returncode == 2, (res.stdout, res.stderr)
    line = res.stderr.strip()
    assert "\n" not in line and "Traceback" not in line, res.stderr
    for n in needles:
        assert n in line, line
    return line


def start_cli(*args: str, env: dict | None = None) -> subprocess.Popen:
    """``python -m cnnlab ARGS`` started in the background (text pipes for stdout and stderr),
    for the tests that signal or kill a run. SIGINT is back to its default in the child, so
    that Python turns it into KeyboardInterrupt as in a terminal: a test run started in the
    background by a shell (CI) has it ignored, and a Ctrl-C would then be ignored by the run
    too."""
    return subprocess.Popen([sys.executable, "-m", "cnnlab", *map(str, args)], env=cli_env(env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for torchrun's rendezvous)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
