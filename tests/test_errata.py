"""`cnnlab errata`: every entry's command runs and prints the corrected figure; the docs page
is the generated one; the figures are the code's (checked here against arithmetic)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from cnnlab.cli import main
from cnnlab.errata import errata, render_markdown

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def entries():
    return errata()


def run_in_process(command: str, capsys) -> str:
    args = shlex.split(command)
    assert args[0] == "cnnlab"
    capsys.readouterr()
    assert main(args[1:]) == 0, command
    return capsys.readouterr().out


def test_every_entry_is_complete(entries):
    ids = [e.id for e in entries]
    assert len(ids) == len(set(ids)) >= 13
    for e in entries:
        assert e.slide and e.right and e.why and e.kind in ("error", "ambiguity")
        assert e.command.startswith("cnnlab ") and e.shows, e.id


def test_every_command_shows_the_corrected_figure(entries, capsys):
    outputs: dict[str, str] = {}
    for e in entries:
        if e.command not in outputs:
            outputs[e.command] = run_in_process(e.command, capsys)
        for needle in e.shows:
            assert needle in outputs[e.command], (e.id, needle)


def test_the_figures_are_right_by_arithmetic(entries):
    by_id = {e.id: e for e in entries}
    # AlexNet: (227 - 11) / 4 + 1 = 55, (224 - 11) / 4 + 1 = 54.25
    assert "= 55:" in by_id["alexnet-224"].right and "54.25" in by_id["alexnet-224"].right
    assert (227 - 11) / 4 + 1 == 55 and (224 - 11) / 4 + 1 == 54.25
    # AlexNet's widths 96-256-384-384-256
    assert by_id["alexnet-filters"].shows == ["256x27x27", "384x13x13", "256x13x13"]
    # FC7: 4096 x 4096 weights + 4096 biases
    assert f"{4096 * 4096 + 4096:,}" in by_id["alexnet-fc7"].shows
    # the depthwise-separable example: 3*3*3*128 = 3,456 per position; 100*100*(27 + 384)
    assert by_id["depthwise-separable"].shows == [f"{100 * 100 * 3456:,}",
                                                  f"{100 * 100 * (27 + 384):,}", "3,456"]
    # All-CNN-C: 2,688 + 83,040 + 83,040 + 166,080 + 3 x 331,968 + 37,056 + 1,930
    assert by_id["allcnn-params"].shows == [
        f"Total params: {2688 + 2 * 83040 + 166080 + 3 * 331968 + 37056 + 1930:,}"]
    assert "1,369,738" in by_id["allcnn-params"].right
    # EfficientNet-B0: 1 + 16 + 1 = 18; four 192-channel blocks
    assert "16 MBConv blocks + the 1x1 head" in by_id["efficientnet-18-layers"].right
    assert "B0 has 4 MBConv6 k5x5 layers with 192 channels" in \
        by_id["efficientnet-b0-table"].right
    assert by_id["vgg-listing"].shows == ["Depth: 19 weighted layers"]
    assert "stride 1" in by_id["mobilenet-last-s2"].right


def test_demonstrations_compute_what_they_claim(entries):
    by_id = {e.id: e for e in entries}
    kron = "\n".join(by_id["kron-snippet"].demo())
    assert "(2, 4)" in kron and "(4, 4)" in kron and "gives the same: True" in kron
    eq4 = by_id["eq4-1-over-m"].demo()
    assert "ratio 8.000 = m" in eq4[1]
    assert float(eq4[2].rsplit(" ", 1)[1]) < 1e-6
    flip = by_id["conv-gradient-flip"].demo()
    assert float(flip[1].rsplit(" ", 1)[1]) > 0.1 and float(flip[2].rsplit(" ", 1)[1]) < 1e-9
    table = by_id["efficientnet-b0-table"].demo()
    rows192 = [x for x in table if x.split()[-2:-1] == ["192"]]
    assert len(rows192) == 1 and rows192[0].split()[-1] == "4"


def test_docs_page_is_the_generated_one(entries):
    assert (REPO / "docs" / "errata.md").read_text() == render_markdown(entries), \
        "regenerate: cnnlab errata --markdown > docs/errata.md"


def test_cli_json_and_unknown_id(cli):
    res = cli("errata", "alexnet-224", "--json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["id"] == "alexnet-224" and "54.25" in data["shows"]
    res = cli("errata", "no-such")
    assert res.returncode == 2 and "no erratum 'no-such'" in res.stderr
