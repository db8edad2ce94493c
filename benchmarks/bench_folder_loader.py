"""Image-folder loading speed: cnnlab's training loader against a hand-written PyTorch one.

The data: 2,000 JPEG photos of about 500 x 375 pixels (random crops of random size out of
scikit-learn's two bundled photographs, ``sklearn.datasets.load_sample_images``, resized to
500 x 375 +- 10 %, quality 90), one class folder per source photo, written once into a
temporary folder (``--photos``, default /tmp/cnnlab-bench-photos).

What is timed is the loader alone: passes in batches of 64, each image decoded,
random-resized-cropped to 224 x 224 (scale 0.08-1, ratio 3/4-4/3, bilinear, antialiased),
flipped with probability 1/2 and normalised; nothing is trained.

* **cnnlab**: the training split as ``cnnlab train --augment rrc`` builds it
  (``data.folder.ImageFiles`` + ``data.augment.PhotoPrepared``/``PhotoRecipe``) iterated by the
  trainer's own ``training.loop.iterate_batches`` over ``epoch_batches``; and the same with
  ``--cache`` (decoded images kept in memory; the one-time decoding is timed apart).
* **hand-written**: the ordinary way: a ``Dataset`` whose ``__getitem__`` opens the file with
  Pillow, converts it to RGB, makes a float tensor in [0, 1] of it, crops a random-resized box
  (the same algorithm, torch's global RNG), resizes it with ``F.interpolate(antialias=True)``,
  flips and normalises; ``DataLoader(batch_size=64, shuffle=True, num_workers=W)``.

At 0, 1 and 2 workers the two are run in alternating order (cnnlab first in odd rounds);
each round times one pass of each over the same ``--per-pass`` images (default 512, a seeded
random subset of the 2,000 drawn anew each round; a full pass of 2,000 takes long enough on a
shared machine for the load to change under it), worker start-up included; the ratio cnnlab /
hand is the median of the per-round ratios. torch uses one thread in the main process
(``torch.set_num_threads(1)``; workers use one by default). The CPU's flags and the load
average are printed with the figures.

    PYTHONPATH=src python benchmarks/bench_folder_loader.py [--rounds 9] [--per-pass 512]
        [--out benchmarks/results/folder_loader.md]
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset

SIZE = (224, 224)
BATCH = 64
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def make_photos(out: Path, n: int, seed: int = 0) -> list[tuple[Path, int]]:
    """``n`` JPEGs of about 500 x 375 cut from the bundled photos (kept if already there)."""
    from sklearn.datasets import load_sample_images

    names = ("china", "flower")
    files = [(out / names[i % 2] / f"{i:05d}.jpg", i % 2) for i in range(n)]
    if all(f.is_file() for f, _ in files):
        return files
    photos = load_sample_images().images
    rng = np.random.default_rng(seed)
    for (f, c) in files:
        img = photos[c]
        h, w, _ = img.shape
        ch = int(rng.integers(h // 2, h + 1))
        cw = min(w, int(ch * 4 / 3))
        y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        tw = int(500 * rng.uniform(0.9, 1.1))
        f.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img[y:y + ch, x:x + cw]).resize((tw, tw * 3 // 4), Image.BILINEAR
                                                         ).save(f, quality=90)
    return files


# --------------------------------------------------------------------------- the hand-written one

def rrc_box(h, w, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    area = h * w
    log_r = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * torch.empty(1).uniform_(*scale).item()
        aspect = math.exp(torch.empty(1).uniform_(*log_r).item())
        cw, ch = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            return (torch.randint(0, h - ch + 1, (1,)).item(),
                    torch.randint(0, w - cw + 1, (1,)).item(), ch, cw)
    s = min(h, w)
    return (h - s) // 2, (w - s) // 2, s, s


class HandFolder(Dataset):
    def __init__(self, files):
        self.files = files
        self.mean = torch.tensor(MEAN).view(3, 1, 1)
        self.std = torch.tensor(STD).view(3, 1, 1)

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        path, label = self.files[i]
        with Image.open(path) as im:
            x = torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1).float() / 255
        top, left, h, w = rrc_box(x.shape[1], x.shape[2])
        x = F.interpolate(x[None, :, top:top + h, left:left + w], size=SIZE, mode="bilinear",
                          align_corners=False, antialias=True)[0]
        if torch.rand(1).item() < 0.5:
            x = x.flip(-1)
        return (x - self.mean) / self.std, label


class Subset(Dataset):
    def __init__(self, ds, index):
        self.ds, self.index = ds, index

    def __len__(self):
        return len(self.index)

    def __getitem__(self, i):
        return self.ds[self.index[i]]


def hand_pass(files, workers: int, index) -> float:
    loader = DataLoader(Subset(HandFolder(files), index), batch_size=BATCH, shuffle=True,
                        num_workers=workers)
    t0 = time.perf_counter()
    n = sum(len(y) for _, y in loader)
    return n / (time.perf_counter() - t0)


# --------------------------------------------------------------------------- cnnlab's

def cnnlab_dataset(files, cache: bool):
    from cnnlab.data.augment import PhotoPrepared, PhotoRecipe
    from cnnlab.data.folder import ImageFiles
    from cnnlab.data.transforms import Preprocess

    base = ImageFiles([f for f, _ in files], [c for _, c in files], 3)
    pre = Preprocess(3, SIZE, MEAN, STD)
    recipe = PhotoRecipe("rrc", 3, SIZE, MEAN, STD)
    return PhotoPrepared(base, pre, recipe, seed=0, cache=cache)


def cnnlab_pass(ds, workers: int, epoch: int, index) -> float:
    """The trainer's batching (a seeded shuffle, batches of 64) of the images ``index``."""
    from cnnlab.training.config import TrainConfig
    from cnnlab.training.distributed import DistInfo
    from cnnlab.training.loop import epoch_batches, iterate_batches

    cfg = TrainConfig(model="lenet5", batch_size=BATCH, seed=0)
    batches = [[index[i] for i in b] for b in epoch_batches(len(index), cfg, epoch, DistInfo())]
    ds.set_epoch(epoch)
    t0 = time.perf_counter()
    n = sum(len(y) for _, y in iterate_batches(ds, batches, workers, epoch))
    return n / (time.perf_counter() - t0)


# --------------------------------------------------------------------------- report

def cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
    except OSError:
        return platform.processor() or "unknown"
    model = next((x.split(":", 1)[1].strip() for x in info.splitlines()
                  if x.startswith("model name")), "unknown")
    flags = next((x.split(":", 1)[1].split() for x in info.splitlines()
                  if x.startswith("flags")), [])
    keep = [f for f in flags if f.startswith(("avx", "sse4", "fma", "amx", "f16c"))]
    return f"{model}; flags: {' '.join(keep)}"


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--photos", type=Path, default=Path("/tmp/cnnlab-bench-photos"))
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--per-pass", type=int, default=512, help="images timed per pass")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", type=Path, help="append the report (Markdown) to this file")
    args = p.parse_args()
    torch.set_num_threads(1)
    lines = []

    def say(text=""):
        print(text, flush=True)
        lines.append(text)

    files = make_photos(args.photos, args.images)
    sizes = [Image.open(f).size for f, _ in files[:50]]
    say(f"date: {datetime.datetime.now().isoformat(timespec='seconds')}")
    say(f"machine: {platform.machine()}, {len(os.sched_getaffinity(0))} usable cores, "
        f"torch {torch.__version__}, 1 torch thread; {cpu_flags()}")
    say(f"data: {len(files)} JPEG photos in {args.photos} (first 50: {min(sizes)} to "
        f"{max(sizes)} pixels), batch {BATCH}, random-resized crop to {SIZE[0]}x{SIZE[1]} + "
        f"flip + normalise; {args.rounds} rounds per worker count, {args.per_pass} images "
        "timed per pass")
    plain = cnnlab_dataset(files, cache=False)
    t0 = time.perf_counter()
    cached = cnnlab_dataset(files, cache=True)
    decode_s = time.perf_counter() - t0
    say(f"--cache: decoding {len(files)} images into memory took {decode_s:.1f} s "
        f"({cached.cache_note})")
    say()
    for w in args.workers:
        ours, hand, mem = [], [], []
        l0 = load()
        for r in range(args.rounds):
            index = torch.randperm(len(files), generator=torch.Generator().manual_seed(r))
            index = index[:args.per_pass].tolist()
            if r % 2 == 0:
                ours.append(cnnlab_pass(plain, w, r, index))
                hand.append(hand_pass(files, w, index))
            else:
                hand.append(hand_pass(files, w, index))
                ours.append(cnnlab_pass(plain, w, r, index))
            mem.append(cnnlab_pass(cached, w, r, index))
        ratios = [a / b for a, b in zip(ours, hand, strict=True)]
        cratios = [a / b for a, b in zip(mem, hand, strict=True)]
        say(f"{w} workers (load {l0} -> {load()}):")
        say(f"  cnnlab          median {statistics.median(ours):7.1f} img/s  "
            f"({', '.join(f'{v:.1f}' for v in ours)})")
        say(f"  hand-written    median {statistics.median(hand):7.1f} img/s  "
            f"({', '.join(f'{v:.1f}' for v in hand)})")
        say(f"  cnnlab --cache  median {statistics.median(mem):7.1f} img/s  "
            f"({', '.join(f'{v:.1f}' for v in mem)})")
        say(f"  ratio cnnlab / hand: median {statistics.median(ratios):.3f} "
            f"(rounds: {', '.join(f'{v:.3f}' for v in ratios)}); "
            f"--cache / hand: {statistics.median(cratios):.3f}")
    if args.out:
        with open(args.out, "a") as f:
            f.write("\n```\n$ PYTHONPATH=src python " + " ".join(sys.argv) + "\n"
                    + "\n".join(lines) + "\n```\n")


if __name__ == "__main__":
    main()
