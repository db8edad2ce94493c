"""Make ``eval_transform_torchvision.npz``: torchvision's evaluation preset on photos of several
aspect ratios, the reference of ``tests/data/test_eval_transform.py``.

torchvision is not a dependency of cnnlab; this script was run once, with torch 2.13 and
torchvision 0.28.0 installed beside it (``pip install --no-deps --target DIR torchvision``;
its compiled operators do not load against a CPU torch, so their registration module is
stubbed out: the transforms are pure Python and torch)::

    PYTHONPATH=DIR python tests/reference/make_eval_transform_reference.py

For each photo and each (resize, crop, interpolation) it stores the output of
``torchvision.transforms._presets.ImageClassification(crop_size=crop, resize_size=resize,
interpolation=..., mean=0, std=1)`` on the photo as a uint8 C x H x W tensor (the tensor path:
``F.resize(..., antialias=True)`` on uint8, ``F.center_crop``), times 255, as uint8: the pixels
before normalisation.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np

# Stub out the meta registrations of torchvision's compiled operators (see the module doc).
sys.modules["torchvision._meta_registrations"] = types.ModuleType("torchvision._meta_registrations")

import torch  # noqa: E402
import torchvision  # noqa: E402
from torchvision.transforms import InterpolationMode  # noqa: E402
from torchvision.transforms._presets import ImageClassification  # noqa: E402

OUT = Path(__file__).with_name("eval_transform_torchvision.npz")


def photos() -> dict[str, np.ndarray]:
    """H x W x 3 uint8 photos of several aspect ratios, cut from scikit-learn's two bundled
    photos (china.jpg and flower.jpg, 427 x 640)."""
    from sklearn.datasets import load_sample_images

    china, flower = load_sample_images().images
    return {"landscape": china,                       # 427 x 640
            "portrait": china[:, 150:431],            # 427 x 281
            "square": flower[60:361, 200:501],        # 301 x 301
            "small": flower[::16, ::16]}              # 27 x 40: smaller than every crop


CASES = [(64, 56, "bilinear"), (75, 64, "bicubic"), (256, 224, "bilinear")]
FULL_SIZE_ONLY = {"portrait"}  # the 256/224 case is stored for this one only (file size)


def main() -> None:
    out = {"torchvision_version": np.array(torchvision.__version__),
           "torch_version": np.array(torch.__version__)}
    for name, img in photos().items():
        x = torch.from_numpy(np.array(img)).permute(2, 0, 1).contiguous()
        for resize, crop, interp in CASES:
            if resize == 256 and name not in FULL_SIZE_ONLY:
                continue
            t = ImageClassification(crop_size=crop, resize_size=resize, mean=(0.0, 0.0, 0.0),
                                    std=(1.0, 1.0, 1.0),
                                    interpolation=InterpolationMode(interp))
            y = t(x)
            pixels = torch.round(y * 255).clamp(0, 255).to(torch.uint8)
            assert torch.allclose(pixels.float() / 255, y, atol=1e-6)
            out[f"{name}/{resize}/{crop}/{interp}"] = pixels.numpy()
    np.savez_compressed(OUT, **out)
    print(f"wrote {OUT} ({OUT.stat().st_size:,} bytes): {sorted(k for k in out if '/' in k)}")


if __name__ == "__main__":
    main()
