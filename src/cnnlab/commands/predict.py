"""``cnnlab predict RUN_OR_CHECKPOINT IMAGE...``: the top-k classes of each image."""

from __future__ import annotations

import json

from . import new_command


def add_parser(sub) -> None:
    p = new_command(sub, "predict", help="classify image files with a trained run",
                    examples=["cnnlab predict runs/lenet5-digits digit.png",
                              "cnnlab predict runs/resnet20-cifar cat.jpg dog.jpg --top-k 3"])
    p.add_argument("run", help="run folder, its model.safetensors, or a checkpoint.pt")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    p.add_argument("--top-k", type=int, default=5, help="classes to show per image (default 5)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    from ..data.folder import load_image
    from ..training.runs import open_run

    if args.top_k < 1:
        raise ValueError(f"--top-k must be at least 1, got {args.top_k}")
    model, config, pre = open_run(args.run, args.device)
    classes = config["classes"]
    k = min(args.top_k, len(classes))
    # Read every image first: a bad file fails before any output.
    images = [load_image(path, 1 if pre.channels == 1 else 3) for path in args.images]
    x = torch.stack([pre(im) for im in images]).to(next(model.parameters()).device)
    with torch.no_grad():
        probs = torch.softmax(model(x).float(), dim=1)
    top = probs.topk(k, dim=1)
    out = []
    for path, p, i in zip(args.images, top.values.tolist(), top.indices.tolist(), strict=True):
        out.append({"image": path, "top": [{"class": classes[j], "index": j, "probability": q}
                                           for q, j in zip(p, i, strict=True)]})
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    for item in out:
        print(item["image"])
        for rank, t in enumerate(item["top"], 1):
            print(f"  {rank}. {t['class']:<20} {100 * t['probability']:6.2f}%")
    return 0
