"""The command line through its real entry point: exit codes and one-line errors.

Most calls run ``cnnlab.cli.main`` in this process (the ``cli`` fixture); the smoke tests
(``-m smoke``) start the real process: ``python -m cnnlab`` and the console script's entry
point."""

import subprocess
import sys

import pytest

from tests.helpers import cli_env, run_cli


@pytest.mark.smoke
def test_help_lists_the_commands():
    res = run_cli("--help")
    assert res.returncode == 0, res.stderr
    assert "list" in res.stdout and "train" in res.stdout


@pytest.mark.smoke
def test_the_console_script_runs_a_command():
    """What the ``cnnlab`` executable pip writes does: ``sys.exit(run_process())``."""
    code = ("import sys\nfrom cnnlab.cli import run_process\n"
            "sys.argv = ['cnnlab', 'list', 'lenet5']\nsys.exit(run_process())")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=cli_env(), timeout=300)
    assert res.returncode == 0, res.stderr
    assert "61,706" in res.stdout and "lenet5" in res.stdout
    res = subprocess.run([sys.executable, "-c", code.replace("'lenet5'", "'nothing*'")],
                         capture_output=True, text=True, env=cli_env(), timeout=300)
    assert res.returncode == 2 and "no model matches" in res.stderr
    assert res.stderr.strip().count("\n") == 0


def test_list_prints_models_with_parameter_counts(cli):
    res = cli("list", "lenet*")
    assert res.returncode == 0, res.stderr
    line = next(line for line in res.stdout.splitlines() if line.startswith("lenet5"))
    assert "61,706" in line and "1x32x32" in line


def test_list_has_a_header_and_sorts_numbers_as_numbers(cli):
    res = cli("list", "resnet1*")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].split()[:3] == ["model", "parameters", "input"]
    names = [line.split()[0] for line in lines[1:]]
    assert names == ["resnet18", "resnet101", "resnet101_v2", "resnet110", "resnet152",
                     "resnet152_v2"]


def test_list_unknown_pattern_is_a_one_line_error(cli):
    res = cli("list", "nothing-like-this*")
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0
    assert "no model matches" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.smoke
def test_a_closed_pipe_is_not_an_error():
    from tests.helpers import REPO

    env = {"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"}
    res = subprocess.run(f"{sys.executable} -m cnnlab macs mobilenet_v1 --per-layer | head -2",
                         shell=True, capture_output=True, text=True, env=env, timeout=300)
    assert len(res.stdout.splitlines()) == 2
    assert "error" not in res.stderr and "Traceback" not in res.stderr


def test_a_command_process_pauses_the_collector_for_torch_and_freezes_it():
    """``cnnlab`` (and ``python -m cnnlab``) imports torch with the collector paused, collects
    normally while the command runs, and freezes everything before it exits; code that calls
    ``main`` itself keeps its collector as it was."""
    import gc

    from cnnlab import cli

    assert gc.isenabled() and gc.get_freeze_count() == 0
    seen = {}
    with cli._one_command_collector(True) as started:
        seen["paused"] = not gc.isenabled()
        started()
        seen["running"] = gc.isenabled()
        seen["frozen"] = gc.get_freeze_count()
        junk = []
        junk.append(junk)  # a cycle made by the command is still collected
        del junk
        seen["collected"] = gc.collect() >= 1
        kept = [["made by the command"]]
        seen["kept tracked"] = any(o is kept for o in gc.get_objects())
    try:
        assert seen == {"paused": True, "running": True, "frozen": seen["frozen"],
                        "collected": True, "kept tracked": True}
        assert seen["frozen"] > 1000  # what existed when the command started (this test run)
        assert gc.isenabled()
        assert not any(o is kept for o in gc.get_objects())  # frozen at the end: skipped
    finally:
        gc.unfreeze()
    with cli._one_command_collector(False) as started:
        assert gc.isenabled()
        started()
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_main_leaves_the_callers_collector_alone(capsys):
    import gc

    from cnnlab.cli import main

    assert main(["cost"]) == 0
    assert gc.isenabled() and gc.get_freeze_count() == 0
    assert "Multiplications" in capsys.readouterr().out


def test_the_process_entry_points_are_run_process():
    import tomllib

    from tests.helpers import REPO

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"cnnlab": "cnnlab.cli:run_process"}
    assert "run_process()" in (REPO / "src" / "cnnlab" / "__main__.py").read_text()
