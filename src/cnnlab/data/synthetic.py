"""A synthetic data set for tests and benchmarks: learnable, seeded, any size.

Each class has a fixed random template; an image is ``0.5 + 0.25 * template + noise``, clipped to
[0, 1]. Spec: ``synthetic`` or ``synthetic:classes=4,size=3x16x16,train=256,val=64,test=64,
noise=0.3,seed=0``.
"""

from __future__ import annotations

import torch

from ..errors import DataError
from .base import DataSplits, TensorImages

DEFAULTS = {"classes": 10, "size": "3x32x32", "train": 512, "val": 128, "test": 128,
            "noise": 0.3, "seed": 0}


def parse_spec(spec: str) -> dict:
    opts = dict(DEFAULTS)
    _, _, rest = spec.partition(":")
    for item in filter(None, (s.strip() for s in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or key not in DEFAULTS:
            raise DataError(f"bad synthetic option {item!r}; use key=value with keys "
                            f"{', '.join(DEFAULTS)}")
        opts[key] = value
    try:
        c, h, w = (int(v) for v in str(opts["size"]).lower().split("x"))
        out = {k: int(opts[k]) for k in ("classes", "train", "val", "test", "seed")}
        out["noise"] = float(opts["noise"])
    except ValueError:
        raise DataError(f"bad synthetic spec {spec!r}: size is CxHxW, counts are integers"
                        ) from None
    out["size"] = (c, h, w)
    if out["classes"] < 2 or min(c, h, w) < 1 or out["train"] < 1 or out["test"] < 1:
        raise DataError(f"bad synthetic spec {spec!r}: need >= 2 classes, a positive size "
                        "and at least one training and one test image")
    return out


def load_synthetic(spec: str = "synthetic") -> DataSplits:
    o = parse_spec(spec)
    c, h, w = o["size"]
    g = torch.Generator().manual_seed(o["seed"])
    templates = torch.randn(o["classes"], c, h, w, generator=g)

    def make(n: int) -> TensorImages:
        labels = torch.arange(n) % o["classes"]
        labels = labels[torch.randperm(n, generator=g)]
        x = 0.5 + 0.25 * templates[labels] + o["noise"] * torch.randn(n, c, h, w, generator=g)
        return TensorImages(x.clamp(0, 1), labels)

    train = make(o["train"])
    val = make(o["val"]) if o["val"] else None
    return DataSplits(
        name="synthetic", train=train, val=val, test=make(o["test"]),
        classes=[f"class{i}" for i in range(o["classes"])], channels=c, image_size=(h, w),
        mean=(0.5,) * c, std=(0.25,) * c, source=spec)
