"""Pictures of the lab: filter responses, learned kernels, feature maps. Saved to PNG files.

Matplotlib runs headless here (the Agg backend is selected in this module, and only here).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import InputShapeError, UsageError, user_files


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | os.PathLike) -> Path:
    path = Path(path)
    try:
        kinds = fig.canvas.get_supported_filetypes()
        if path.suffix.lower().lstrip(".") not in kinds:
            raise UsageError(f"{path}: a figure needs a file name ending in .png (or "
                             f"{', '.join('.' + k for k in sorted(kinds) if k != 'png')})")
        with user_files(path):  # a folder, no permission, no space: the user's to fix
            path.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(path, dpi=110, bbox_inches="tight")
    finally:
        _plt().close(fig)
    return path


def side_by_side(original: np.ndarray, responses: Sequence[tuple[str, np.ndarray]],
                 path: str | os.PathLike, title: str = "") -> Path:
    """The original image and each filter response, side by side. Signed responses use a
    diverging colour map centred on 0 (symmetric limits), the others gray."""
    plt = _plt()
    panels = [("original", original)] + list(responses)
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.4), squeeze=False)
    for ax, (name, img) in zip(axes[0], panels, strict=True):
        if name != "original" and img.min() < 0:
            m = float(np.abs(img).max()) or 1.0
            im = ax.imshow(img, cmap="RdBu_r", vmin=-m, vmax=m)
        else:
            im = ax.imshow(img, cmap="gray")
        ax.set_title(f"{name}\n[{img.min():.3g}, {img.max():.3g}]", fontsize=9)
        ax.axis("off")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def plot_kernels(weights: np.ndarray, path: str | os.PathLike, title: str = "",
                 max_kernels: int = 64) -> Path:
    """A grid of first-layer kernels ``weights`` (O, C, kh, kw). One gray image per kernel for
    C = 1 or C > 3 (channels averaged), an RGB image for C = 3; each kernel is scaled to its own
    [-max|w|, +max|w|] (gray 0.5 is weight 0)."""
    plt = _plt()
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 4:
        raise InputShapeError(f"kernels must be (out, in, kh, kw), got shape {w.shape}")
    w = w[:max_kernels]
    n = len(w)
    cols = min(n, 8)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.4 * cols, 1.5 * rows + 0.4), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k >= n:
            continue
        m = np.abs(w[k]).max() or 1.0
        if w.shape[1] == 3:
            ax.imshow(np.clip(w[k].transpose(1, 2, 0) / (2 * m) + 0.5, 0, 1))
        else:
            ax.imshow(w[k].mean(axis=0), cmap="gray", vmin=-m, vmax=m)
        ax.set_title(str(k), fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def plot_feature_maps(image: np.ndarray, layers: Sequence[tuple[str, np.ndarray]],
                      path: str | os.PathLike, title: str = "", max_maps: int = 16) -> Path:
    """One row per layer: the input image, then up to ``max_maps`` maps (C, H, W) of each
    layer; vectors (F,) and 1x1 maps are drawn as a single strip."""
    plt = _plt()
    cols = max_maps + 1
    fig, axes = plt.subplots(len(layers), cols, figsize=(1.1 * cols, 1.25 * len(layers) + 0.4),
                             squeeze=False)
    for r, (name, act) in enumerate(layers):
        act = np.asarray(act, dtype=np.float64)
        row = axes[r]
        for ax in row:
            ax.axis("off")
        if r == 0:
            row[0].imshow(image, cmap="gray")
            row[0].set_title("input", fontsize=7)
        if act.ndim == 3 and act.shape[1] * act.shape[2] > 1:
            for k in range(min(act.shape[0], max_maps)):
                row[k + 1].imshow(act[k], cmap="viridis")
            label = f"{name} {act.shape[0]}@{act.shape[1]}x{act.shape[2]}"
        else:
            vec = act.reshape(-1)
            # a strip spanning the map columns
            ax = fig.add_subplot(len(layers), cols, (r * cols + 2, r * cols + cols))
            ax.imshow(vec[None, :], cmap="viridis", aspect="auto")
            ax.set_yticks([])
            ax.set_xticks([] if vec.size > 20 else range(vec.size))
            ax.tick_params(labelsize=6)
            label = f"{name} ({vec.size})"
        row[1].set_title(label, fontsize=8, loc="left")
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)
