"""The command line through its real entry point: exit codes and one-line errors."""


def test_help_lists_the_commands(cli):
    res = cli("--help")
    assert res.returncode == 0
    assert "list" in res.stdout


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


def test_a_closed_pipe_is_not_an_error():
    import subprocess
    import sys

    from .conftest import REPO

    env = {"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"}
    res = subprocess.run(f"{sys.executable} -m cnnlab macs mobilenet_v1 --per-layer | head -2",
                         shell=True, capture_output=True, text=True, env=env, timeout=300)
    assert len(res.stdout.splitlines()) == 2
    assert "error" not in res.stderr and "Traceback" not in res.stderr
