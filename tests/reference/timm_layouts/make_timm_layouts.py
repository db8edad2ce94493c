"""Record timm's own state_dict layouts, and timm's outputs under the seeded weight fill.

Writes, next to this file:

* ``keys.json``: per timm model, its state_dict keys and shapes in timm's order, the batch-norm
  eps its layers use, and the cnnlab model (with builder arguments) that has the same
  architecture;
* ``logits.safetensors``: per timm model (those with a cnnlab twin), the eval-mode output on the
  seeded input, with the state_dict filled by the procedure of ../outputs/README.md (sorted
  timm key order, generator seeded 0; input ``randn(2, 3, 64, 64)`` from a generator seeded 1).

cnnlab never imports timm. This script ran once, in a throwaway virtual environment that is
not part of the project::

    python -m venv /tmp/timmenv        # python 3.11
    # torch 2.13.0+cpu from the project's environment, through a .pth file
    SITE=/tmp/timmenv/lib/python3.11/site-packages
    echo /path/to/.venv/lib/python3.11/site-packages > $SITE/main.pth
    /tmp/timmenv/bin/pip install --no-deps timm==1.0.31 torchvision==0.28.0 pyyaml huggingface_hub
    # torchvision 0.28.0's wheel from PyPI is built for CUDA torch: its C ops do not load on
    # the CPU build, and torchvision/_meta_registrations.py then fails on
    # register_fake("torchvision::nms") and ("...::qnms"); those two decorators were made
    # conditional on extension._has_ops() in $SITE/torchvision/_meta_registrations.py.
    # timm's models use none of torchvision's ops.
    /tmp/timmenv/bin/python tests/reference/timm_layouts/make_timm_layouts.py
"""

from __future__ import annotations

import json
from pathlib import Path

import timm
import torch
from safetensors.torch import save_file

HERE = Path(__file__).parent

# timm model -> (cnnlab model, builder arguments) of the same architecture, or None where
# only the keys are recorded (variants whose architecture or numerics differ: see README.md).
MODELS: dict[str, tuple[str, dict] | None] = {
    "mobilenetv2_100": ("mobilenet_v2", {}),
    "mobilenetv2_140": ("mobilenet_v2", {"width_mult": 1.4}),
    "mobilenetv3_large_100": ("mobilenet_v3_large", {"bn_eps": 1e-5}),
    "mobilenetv3_small_100": ("mobilenet_v3_small", {"bn_eps": 1e-5}),
    "tf_mobilenetv3_large_100": None,
    "mobilenetv3_rw": None,
    "mobilenetv3_large_075": None,
    **{f"efficientnet_b{i}": (f"efficientnet_b{i}", {"bn_eps": 1e-5, "bn_momentum": 0.1})
       for i in range(8)},
    "tf_efficientnet_b0": None,
    "efficientnet_es": None,
    **{f"vgg{d}{bn}": (f"vgg{d}{bn}", {}) for d in (11, 13, 16, 19) for bn in ("", "_bn")},
}
SIZE = 64


def seeded_fill_(model: torch.nn.Module, seed: int = 0) -> None:
    """../outputs/README.md, step 2 (the same code as tests/helpers/seeded_fill.py)."""
    g = torch.Generator().manual_seed(seed)
    state = model.state_dict()
    with torch.no_grad():
        for key in sorted(state):
            t = state[key]
            if not t.is_floating_point():
                continue
            if key.endswith("running_var"):
                new = 0.75 + 0.5 * torch.rand(t.shape, generator=g)
            elif key.endswith("running_mean"):
                new = 0.1 * torch.randn(t.shape, generator=g)
            elif t.dim() > 1:
                new = torch.randn(t.shape, generator=g) * (2 / t[0].numel()) ** 0.5
            elif key.endswith("weight"):
                new = 1 + 0.1 * torch.randn(t.shape, generator=g)
            else:
                new = 0.1 * torch.randn(t.shape, generator=g)
            t.copy_(new)


def main() -> None:
    torch.set_num_threads(1)
    keys, logits = {}, {}
    x = torch.randn(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    for name, twin in MODELS.items():
        model = timm.create_model(name).eval()
        state = model.state_dict()
        eps = sorted({m.eps for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)})
        keys[name] = {"cnnlab": None if twin is None else {"model": twin[0], "kwargs": twin[1]},
                      "bn_eps": eps,
                      "state_dict": [[k, list(v.shape)] for k, v in state.items()]}
        if twin is not None:
            seeded_fill_(model)
            with torch.no_grad():
                logits[name] = model(x).contiguous()
        print(name, len(state), eps)
        del model, state
    info = {"timm": timm.__version__, "torch": torch.__version__, "input": [2, 3, SIZE, SIZE],
            "models": keys}
    (HERE / "keys.json").write_text(json.dumps(info, separators=(",", ":")) + "\n")
    save_file(logits, HERE / "logits.safetensors")


if __name__ == "__main__":
    main()
