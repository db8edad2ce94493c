"""The 1000 ImageNet-1k classes: WordNet ids and names, in the index order of every published
ImageNet model (the WordNet ids sorted, as torchvision's ``ImageFolder`` and timm number the
class folders of the validation set).

The list ships with cnnlab (``imagenet_classes.tsv`` beside this module; its header names its
sources). ``predict``, ``evaluate`` and ``explore`` name the outputs of a 1000-class model with
it; ``evaluate`` maps a validation folder whose sub-folders are WordNet ids onto it.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

NUM_CLASSES = 1000
WNID = re.compile(r"n\d{8}")


@cache
def _table() -> tuple[tuple[str, ...], tuple[str, ...]]:
    text = resources.files(__package__).joinpath("imagenet_classes.tsv").read_text("utf-8")
    wnids, names = [], []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        index, wnid, name = line.split("\t")
        if int(index) != len(wnids):
            raise RuntimeError(f"imagenet_classes.tsv: index {index} out of order")
        wnids.append(wnid)
        names.append(name)
    return tuple(wnids), tuple(names)


def imagenet_wnids() -> list[str]:
    """The 1000 WordNet ids (``n01440764`` ...), index order."""
    return list(_table()[0])


def imagenet_names() -> list[str]:
    """The 1000 class names (``tench``, ``goldfish`` ... ``photocopier`` at 713), index order."""
    return list(_table()[1])


@cache
def wnid_index() -> dict[str, int]:
    return {w: i for i, w in enumerate(_table()[0])}


def is_wnid(name: str) -> bool:
    """Whether a folder name looks like a WordNet id (``n`` and eight digits)."""
    return WNID.fullmatch(name) is not None


def names_for(num_classes: int) -> list[str] | None:
    """The ImageNet class names for a model with ``num_classes`` outputs (1000), else None."""
    return imagenet_names() if num_classes == NUM_CLASSES else None


__all__ = ["NUM_CLASSES", "imagenet_names", "imagenet_wnids", "is_wnid", "names_for",
           "wnid_index"]
