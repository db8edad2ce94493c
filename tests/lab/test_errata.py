"""`cnnlab errata`: every entry's command runs and prints the corrected figure; the docs page
is the generated one; the figures are the code's (checked here against arithmetic)."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import pytest

from cnnlab.lab.errata import COURSE_FILES, errata, render_markdown
from tests.helpers import REPO, run_main


def course_dir() -> Path | None:
    """The course's extracted slide text (not part of the repository): $CNNLAB_COURSE_DIR, or
    shared/course beside the checkout (../shared/course from the main checkout)."""
    candidates = [os.environ.get("CNNLAB_COURSE_DIR"), REPO.parent / "shared" / "course",
                  REPO.parents[1] / "shared" / "course"]
    for c in candidates:
        if c and (Path(c) / COURSE_FILES["redes"]).is_file():
            return Path(c)
    return None


def squash(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def entries():
    return errata()


def run_in_process(command: str, capsys) -> str:
    """The output of ``command`` (a ``cnnlab ...`` line), run in this process."""
    args = shlex.split(command)
    assert args[0] == "cnnlab"
    res = run_main(capsys, *args[1:])
    assert res.returncode == 0, (command, res.stderr)
    return res.stdout


def test_every_entry_is_complete(entries):
    ids = [e.id for e in entries]
    assert len(ids) == len(set(ids)) >= 22
    for e in entries:
        assert e.slide and e.right and e.why and e.kind in ("error", "ambiguity")
        assert e.command.startswith("cnnlab ") and e.shows, e.id
        assert e.quotes and all(f in COURSE_FILES.values() for f, _ in e.quotes), e.id
        if e.command.startswith("cnnlab errata "):
            assert e.command == f"cnnlab errata {e.id}" and e.demo is not None, e.id


@pytest.mark.skipif(course_dir() is None, reason="the course's extracted text is not here "
                    "(set CNNLAB_COURSE_DIR)")
def test_every_quote_is_the_slides_own_words(entries):
    """Each entry quotes the slide it corrects word for word (white space collapsed: the
    extraction splits table cells with tabs and line breaks)."""
    root = course_dir()
    texts = {f: squash((root / f).read_text(encoding="utf-8")) for f in COURSE_FILES.values()}
    for e in entries:
        for f, quote in e.quotes:
            assert squash(quote) in texts[f], (e.id, f, quote)


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
    assert "13 convolutions + 3 FC" in by_id["vgg-listing"].right
    assert "stride 1" in by_id["mobilenet-last-s2"].right
    # LeNet-5: C5 = 120 filters of 5x5x16 + biases; C1 = 6 x 25 + 6
    assert by_id["lenet-c5"].shows == ["features.c5", "120x1x1", f"{120 * 5 * 5 * 16 + 120:,}"]
    assert by_id["lenet-c1-params"].shows == ["6x28x28", f"{6 * 5 * 5 + 6:,}"]
    # 28 -> 24 -> 12 -> 8 -> 4, and 4 < 5 (C5's kernel); C1 padded by 2 keeps 28
    assert "C1 24x24, S2 12x12, C3 8x8, S4 4x4" in by_id["lenet-28x28"].right
    # DenseNet-121: 1 + 2 x 58 + 3 + 1 = 121, and 63 with one convolution per layer
    assert "= 121; with H as on the slide it would be 63" in by_id["densenet-bottleneck"].why
    assert by_id["densenet-bottleneck"].shows[1:3] == ["128x56x56", "32x56x56"]
    # MobileNetV2's first residual block: 24 -> 6 x 24 = 144 -> 24
    assert "24 -> 144 channels, t = 6" in by_id["inverted-residual"].right
    # AlexNet over two GPUs: conv2 256 x 48 x 5 x 5 + 256
    assert f"{256 * 48 * 25 + 256:,} parameters" in by_id["alexnet-conv2-groups"].shows
    assert f"not {256 * 96 * 25 + 256:,}" in by_id["alexnet-conv2-groups"].right
    # Keras: ResNet50 53 + 53 + 1 = 107, VGG16 13 + 3 = 16
    assert by_id["keras-depth"].shows == ["= 107 layers with weights", "(cnnlab's depth): 50",
                                          "= 16 layers with weights"]
    # 1.37M is not an error: the entry says so
    assert by_id["allcnn-params"].kind == "ambiguity"


def test_demonstrations_compute_what_they_claim(entries):
    by_id = {e.id: e for e in entries}
    kron = "\n".join(by_id["kron-snippet"].demo())
    assert "(2, 4)" in kron and "(4, 4)" in kron and "gives the same: True" in kron
    eq4 = by_id["eq4-1-over-m"].demo()
    assert "ratio 8.000 = m" in eq4[1]
    assert float(eq4[2].rsplit(" ", 1)[1]) < 1e-6
    # the slide's formula is the gradient of the tip's forward pass; read as a correlation it
    # is not; cnnlab's NumPy Conv2D (no pre-flip) has the formula rotated by 180 degrees
    flip = [float(x.rsplit(" ", 1)[1]) for x in by_id["conv-gradient-flip"].demo()[1:]]
    assert flip[0] < 1e-6 and flip[1] > 0.1 and flip[2] < 1e-9
    dy = "\n".join(by_id["dy-sign"].demo())
    assert "dark-left/bright-right edge: -1" in dy and "bright-bottom edge: +1" in dy
    assert "same edge:     -1" in dy
    line = by_id["line-45"].demo()[0]
    assert "falling to the right: 6;" in line and "rising to the right: 0" in line
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
    assert {"file": COURSE_FILES["redes"], "text": "[227x227x3] INPUT"} in data["quotes"]
    res = cli("errata", "no-such")
    assert res.returncode == 2 and "no erratum 'no-such'" in res.stderr
