"""Mutation-audit test for LeNet-5's sparse C3 (issue 21): the connection table is the paper's
Table I, transcribed here on its own (X = connected, rows = S2 maps, columns = C3 maps), and
each C3 map really reads only its S2 maps (a map swapped for another keeps the parameter
count, so a count cannot see it)."""

from __future__ import annotations

import torch

from cnnlab import create_model
from cnnlab.models.lenet import LECUN1998_C3_TABLE

# LeCun, Bottou, Bengio & Haffner (1998), Table I.
TABLE_I = """
X . . . X X X . . X X X X . X X
X X . . . X X X . . X X X X . X
X X X . . . X X X . . X . X X X
. X X X . . X X X X . . X . X X
. . X X X . . X X X X . X X . X
. . . X X X . . X X X X . X X X
"""


def paper_columns() -> list[tuple[int, ...]]:
    rows = [line.split() for line in TABLE_I.strip().splitlines()]
    return [tuple(r for r in range(6) if rows[r][c] == "X") for c in range(16)]


def test_the_table_is_the_papers_table_one():
    assert list(LECUN1998_C3_TABLE) == paper_columns()
    assert sum(len(c) for c in LECUN1998_C3_TABLE) == 60


def test_each_c3_map_reads_only_its_s2_maps():
    torch.manual_seed(0)
    c3 = create_model("lenet5", c3_table="lecun1998").features.c3
    x = torch.randn(1, 6, 14, 14)
    with torch.no_grad():
        base = c3(x)
        for s2 in range(6):
            bumped = x.clone()
            bumped[0, s2] += 1.0
            changed = (c3(bumped) - base).abs().flatten(2).amax(2)[0] > 1e-6
            reads = [s2 in cols for cols in paper_columns()]
            assert changed.tolist() == reads, s2
