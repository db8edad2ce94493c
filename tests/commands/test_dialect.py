"""One CLI dialect (issue 21 item 5): --input-size CxHxW, -o/--output, --device auto and --json
on every command that has them; old spellings work for one release with a deprecation line;
``cnnlab --help`` lists the commands by group."""

from __future__ import annotations

import argparse
import contextlib
import io
import json

import numpy as np
import pytest

from cnnlab.cli import COMMANDS, GROUPS, build_parser, main

SYN = "synthetic:classes=2,size=1x8x8,train=8,val=2,test=2"


def run_main(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse (--help)
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def _parsers():
    """(command words, parser) of every command and sub-command."""
    def walk(parser, words):
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            yield " ".join(words), parser
            return
        for name, child in subs[0].choices.items():
            yield from walk(child, [*words, name])

    yield from walk(build_parser(), [])


def _visible(parser) -> dict[str, argparse.Action]:
    return {s: a for a in parser._actions for s in a.option_strings
            if a.help != argparse.SUPPRESS}


def test_every_command_speaks_one_dialect():
    seen_json = set()
    for words, parser in _parsers():
        opts = _visible(parser)
        for old in ("--input", "--out"):  # old spellings are hidden (and deprecated)
            assert old not in opts, f"cnnlab {words} shows {old}"
        if "--device" in opts:
            assert opts["--device"].default in ("auto", None), words  # train: None = auto
        if "--output" in opts:
            assert "-o" in opts, words
        if "--json" in opts:
            seen_json.add(words)
    must = {"train", "evaluate", "predict", "export", "explore", "visualize", "filter",
            "summary", "macs", "cost", "compare", "bench", "list", "errata", "scale-search",
            "weights inspect", "scratch train"}
    assert must <= seen_json, must - seen_json


def test_help_lists_the_commands_by_group():
    code, out, _ = run_main("--help")
    assert code == 0
    listed = out[out.index("commands:"):out.index("examples:")]
    positions = [listed.index(f"  {g}:\n") for g in GROUPS]
    assert positions == sorted(positions) and list(GROUPS) == ["models", "training",
                                                               "analysis", "lab"]
    found: dict[str, list[str]] = {}
    group = ""
    for line in listed.splitlines()[1:]:
        if line.startswith("    "):
            found[group].append(line.split()[0])
        elif line.strip():
            group = line.strip().rstrip(":")
            found[group] = []
    assert found == GROUPS
    assert sorted(COMMANDS) == sorted(n for names in GROUPS.values() for n in names)
    assert len(COMMANDS) == len(set(COMMANDS))


def test_old_input_spelling_works_with_one_deprecation_line():
    new = run_main("summary", "lenet5", "--input-size", "1x36x36", "--json")
    old = run_main("summary", "lenet5", "--input", "1x36x36", "--json")
    assert new[0] == old[0] == 0 and new[1] == old[1] and new[2] == ""
    assert old[2].count("\n") == 1
    assert "--input is deprecated" in old[2] and "use --input-size" in old[2]
    assert json.loads(new[1])["input_size"][-2:] == [36, 36]


def test_cost_takes_input_size_and_keeps_its_old_hwc_form():
    new = run_main("cost", "--input-size", "32x112x96", "--maps", "64", "--json")
    old = run_main("cost", "--input", "112x96x32", "--maps", "64", "--json")
    assert new[0] == old[0] == 0 and new[1] == old[1] and new[2] == ""
    data = json.loads(new[1])
    assert data["standard_mults"] == 112 * 96 * 9 * 32 * 64
    assert "--input HxWxC is deprecated" in old[2] and "--input-size 32x112x96" in old[2]
    code, _, err = run_main("cost", "--input-size", "112x112")
    assert code == 2 and "CxHxW" in err and err.count("\n") == 1


@pytest.fixture
def image(tmp_path):
    from PIL import Image

    path = tmp_path / "img.png"
    Image.fromarray((np.arange(64).reshape(8, 8) * 4).astype(np.uint8)).save(path)
    return path


def test_filter_output_old_and_new_and_json(tmp_path, image):
    code, out, err = run_main("filter", image, "-k", "sobel-x", "--figure", "none",
                              "-o", tmp_path / "a.png", "--json")
    assert code == 0 and err == ""
    doc = json.loads(out)
    assert doc["wrote"] == [str(tmp_path / "a.png")] and (tmp_path / "a.png").is_file()
    assert doc["filters"][0]["kernel"] == "sobel-x" and doc["filters"][0]["size"] == [3, 3]
    code, out, err = run_main("filter", image, "-k", "sobel-x", "--figure", "none",
                              "--out", tmp_path / "b.png")
    assert code == 0 and (tmp_path / "b.png").is_file()
    assert "--out is deprecated" in err and "use -o/--output" in err
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("dialect")
    code, out, err = run_main("train", "lenet5", "--data", SYN, "--epochs", "1", "--threads",
                              "1", "--runs-dir", root, "--name", "r", "--no-plots", "--json")
    assert code == 0, err
    return root / "r", json.loads(out)


def test_train_json_is_its_results(run):
    path, results = run
    assert results["model"] == "lenet5" and results["epochs"] == 1
    saved = json.loads((path / "results.json").read_text())
    assert {k: results[k] for k in saved if k in results} == {
        k: v for k, v in saved.items() if k in results} and "test_top1" in saved
    assert 0 <= results["test_top1"] <= 100


def test_visualize_json_and_old_out(run, tmp_path, image):
    path, _ = run
    code, out, err = run_main("visualize", path, "--filters", "--features", image, "-o",
                              tmp_path / "v", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["wrote"] == [str(tmp_path / "v" / "filters.png"),
                            str(tmp_path / "v" / "feature_maps.png")]
    assert doc["predicted"]["class"] in ("class0", "class1") and doc["kernels"][0] == 6
    code, out, err = run_main("visualize", path, "--filters", "--out", tmp_path / "w")
    assert code == 0 and (tmp_path / "w" / "filters.png").is_file()
    assert "--out is deprecated" in err


def test_visualize_opens_a_checkpoint_now(run, tmp_path):
    path, _ = run  # it refused checkpoint.pt before the one opener
    code, _, err = run_main("visualize", path / "checkpoint.pt", "--filters", "-o", tmp_path)
    assert code == 0, err
    assert (tmp_path / "filters.png").is_file()


def test_export_json(run, tmp_path):
    path, _ = run
    code, out, err = run_main("export", path, "--format", "torchscript", "-o",
                              tmp_path / "m.pt", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["wrote"] == [str(tmp_path / "m.pt"), str(tmp_path / "m.pt.json")]
    assert doc["check_passed"] is True and doc["max_relative_difference"] < 1e-4
    assert doc["size_bytes"] == (tmp_path / "m.pt").stat().st_size
    assert doc["classes"] == ["class0", "class1"] and doc["input_size"] == [1, 32, 32]


def test_explore_json(tmp_path):
    code, out, err = run_main("explore", "lenet5", "--depth", "1", "-o", tmp_path / "p.html",
                              "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["wrote"] == [str(tmp_path / "p.html")] and doc["rows"] == 3
    assert doc["size_bytes"] == (tmp_path / "p.html").stat().st_size


def test_scratch_train_json_and_input_size(tmp_path):
    code, out, err = run_main("scratch", "train", "--epochs", "1", "--limit", "20",
                              "--no-progress", "--input-size", "1x32x32", "-o", tmp_path / "np",
                              "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["input_size"] == [1, 32, 32] and 0 <= doc["test_acc"] <= 1
    assert json.loads((tmp_path / "np" / "scratch_config.json").read_text())["input_size"] == 32
    code, _, err = run_main("scratch", "train", "--input-size", "1x30x30")
    assert code == 2 and "1x28x28" in err and err.count("\n") == 1


def test_device_auto_is_accepted_and_a_missing_device_is_one_line(run):
    path, _ = run
    code, out, err = run_main("evaluate", path, "--device", "auto", "--json")
    assert code == 0, err
    assert json.loads(out)["images"] == 2
    import torch

    if not torch.cuda.is_available():
        code, _, err = run_main("predict", path, "x.png", "--device", "cuda")
        assert code == 2 and err.count("\n") == 1 and "CUDA is not available" in err
