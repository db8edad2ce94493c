"""Make a small image-folder data set of photo crops for the fine-tuning example.

Crops random square patches out of scikit-learn's two bundled photographs
(``sklearn.datasets.load_sample_images()``: china.jpg and flower.jpg, 427 x 640 each) and
files them under one folder per class: the photo and the half it comes from
(``china_top``, ``china_bottom``, ``flower_top``, ``flower_bottom``). The crops are seeded,
so the folder is the same on every machine::

    python benchmarks/make_photo_patches.py data/photo-patches
    cnnlab train resnet20 --data data/photo-patches --weights runs/resnet20-digits ...

See docs/finetune.md for the measured example.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image


def make_patches(out: Path, per_class: int = 120, size: int = 32, seed: int = 0) -> dict:
    from sklearn.datasets import load_sample_images

    photos = load_sample_images()
    rng = np.random.default_rng(seed)
    counts = {}
    for name, img in zip(("china", "flower"), photos.images, strict=True):
        h, w, _ = img.shape
        for half, (top, bottom) in (("top", (0, h // 2)), ("bottom", (h // 2, h))):
            cls = f"{name}_{half}"
            folder = out / cls
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                y = int(rng.integers(top, bottom - size + 1))
                x = int(rng.integers(0, w - size + 1))
                Image.fromarray(img[y:y + size, x:x + size]).save(folder / f"{cls}_{i:04d}.png")
            counts[cls] = per_class
    return counts


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="folder to create (one sub-folder per class)")
    p.add_argument("--per-class", type=int, default=120, help="patches per class (default 120)")
    p.add_argument("--size", type=int, default=32, help="patch side in pixels (default 32)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if args.out.exists() and any(args.out.iterdir()):
        p.error(f"{args.out} exists and is not empty; give a new folder")
    counts = make_patches(args.out, args.per_class, args.size, args.seed)
    print(f"{sum(counts.values())} patches of {args.size}x{args.size} in {args.out}: "
          + ", ".join(f"{k} {v}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
