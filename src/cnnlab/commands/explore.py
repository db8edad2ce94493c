"""``cnnlab explore MODEL_OR_RUN [--image FILE] [--depth N] [-o FILE.html]``: one offline page
that shows how the model turns an image into a prediction."""

from __future__ import annotations

import time
from pathlib import Path

from . import (
    add_input_size_arg,
    add_json_arg,
    add_output_arg,
    new_command,
    output_file,
    print_json,
)


def add_parser(sub) -> None:
    p = new_command(
        sub, "explore", outputs=True,
        help="write one offline HTML page that shows a model at work on an image",
        description="Write one self-contained HTML file (no network needed to open it): the "
                    "architecture as it is built (stages, blocks, Inception branches, residual "
                    "shortcuts, dense concatenations, auxiliary heads), each layer's output "
                    "shape, parameters, MACs, receptive field and feature maps for one image, "
                    "its kernels, and the arithmetic of a convolution, pooling, batch norm and "
                    "softmax, recomputed and checked against PyTorch by the page itself. "
                    "MODEL_OR_RUN is a registered model, a run folder of "
                    "'cnnlab train', or a folder of 'cnnlab scratch train --out'. A registered "
                    "model shows --weights FILE, its bundled weights (lenet5), or random "
                    "initial weights (the page says so).",
        examples=["cnnlab explore lenet5   # the LeNet-5 cnnlab ships, trained on the digits",
                  "cnnlab explore resnet50 --weights resnet50-0676ba61.pth -o resnet50.html",
                  "cnnlab explore runs/lenet5-digits -o lenet5.html",
                  "cnnlab explore resnet50 --image cat.jpg --depth 2 -o resnet50.html",
                  "cnnlab explore googlenet --input-size 3x64x64",
                  "cnnlab explore runs/np   # a 'cnnlab scratch train --out runs/np' run"])
    p.add_argument("target", metavar="MODEL_OR_RUN",
                   help="registered model name, run folder / checkpoint, or scratch run folder")
    p.add_argument("--image", type=Path, default=None, metavar="FILE",
                   help="image to run (default: a test image of the run's data, or a digit)")
    p.add_argument("--weights", metavar="FILE", default=None,
                   help="trained weights for a registered model: a .safetensors/.pth/.pt file "
                        "(torchvision, timm or cnnlab layout) or a cnnlab run folder; 'digits' "
                        "for lenet5's bundled weights (its default). Without it other models "
                        "show random initial weights")
    p.add_argument("--depth", type=int, default=3,
                   help="how deep to open nested blocks (default 3, as 'cnnlab summary')")
    add_input_size_arg(p, "input size for a registered model (default: its native size)")
    add_output_arg(p, "where to write the page (default: explore-<name>.html)", type=Path,
                   metavar="FILE.html")
    add_json_arg(p, "print what was written and its figures as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..errors import DataError, OptionError
    from ..explore import write_page
    from ..resolve import classify
    from .summary import input_size_arg

    if args.depth < 1:
        raise OptionError(f"--depth must be at least 1, got {args.depth}")
    target = Path(args.target)
    size = None
    if args.input_size is not None:
        if classify(args.target)[0] != "name":
            raise OptionError("--input-size is for a registered model; a run uses its own size")
        size = input_size_arg(args.target, args.input_size)
    if args.image is not None and not args.image.is_file():
        raise DataError(f"no image file at {args.image}")
    out = args.output or Path(f"explore-{target.name.replace('.', '_') or 'model'}.html")
    if out.suffix.lower() not in (".html", ".htm"):
        raise OptionError(f"the page is HTML: give -o a name ending in .html, got {out}")
    start = time.perf_counter()
    import os
    import sys

    from tqdm import tqdm

    tmp = out.with_name(f".{out.name}.{os.getpid()}.html")
    bar = tqdm(unit="layer", leave=False, file=sys.stderr, disable=not sys.stderr.isatty())

    def progress(done, total, name):  # the layers of the forward pass, as they are recorded
        bar.total = total
        bar.set_description(name[-40:], refresh=False)
        bar.update(1)

    try:
        data = write_page(args.target, tmp, image=args.image, depth=args.depth,
                          input_size=size, weights=args.weights, progress=progress)
        output_file(out, args, "-o")  # after the mistakes write_page finds (unknown model...)
        os.replace(tmp, out)
    finally:
        bar.close()
        tmp.unlink(missing_ok=True)
    size_mb = out.stat().st_size / 2**20
    seconds = time.perf_counter() - start
    if args.json:
        print_json({"wrote": [str(out)], "size_bytes": out.stat().st_size,
                    "rows": data["rows"], "depth": args.depth, "seconds": round(seconds, 3),
                    "source": data.get("source")})
        return 0
    print(f"wrote {out} ({size_mb:.2f} MB, {data['rows']} layer boxes at depth {args.depth}, "
          f"{seconds:.1f}s); open it in a browser")
    return 0
