"""``cnnlab explore MODEL_OR_RUN [--image FILE] [--depth N] [-o FILE.html]``: one offline page
that shows how the model turns an image into a prediction."""

from __future__ import annotations

import time
from pathlib import Path

from ..errors import MissingFileError, UsageError
from . import new_command, output_file


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
                    "MODEL_OR_RUN is a registered model (initial weights), a run folder of "
                    "'cnnlab train', or a folder of 'cnnlab scratch train --out'.",
        examples=["cnnlab explore runs/lenet5-digits -o lenet5.html",
                  "cnnlab explore resnet50 --image cat.jpg --depth 2 -o resnet50.html",
                  "cnnlab explore googlenet --input 3x64x64",
                  "cnnlab explore runs/np   # a 'cnnlab scratch train --out runs/np' run"])
    p.add_argument("target", metavar="MODEL_OR_RUN",
                   help="registered model name, run folder / checkpoint, or scratch run folder")
    p.add_argument("--image", type=Path, default=None, metavar="FILE",
                   help="image to run (default: a test image of the run's data, or a digit)")
    p.add_argument("--depth", type=int, default=3,
                   help="how deep to open nested blocks (default 3, as 'cnnlab summary')")
    p.add_argument("--input", metavar="CxHxW", default=None,
                   help="input size for a registered model (default: its native size)")
    p.add_argument("-o", "--output", type=Path, default=None, metavar="FILE.html",
                   help="where to write the page (default: explore-<name>.html)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..explore import write_page
    from .summary import input_size_arg

    if args.depth < 1:
        raise UsageError(f"--depth must be at least 1, got {args.depth}")
    target = Path(args.target)
    size = None
    if args.input is not None:
        if target.exists():
            raise UsageError("--input is for a registered model; a run uses its own size")
        size = input_size_arg(args.target, args.input)
    if args.image is not None and not args.image.is_file():
        raise MissingFileError(f"no image file at {args.image}")
    out = args.output or Path(f"explore-{target.name.replace('.', '_') or 'model'}.html")
    if out.suffix.lower() not in (".html", ".htm"):
        raise UsageError(f"the page is HTML: give -o a name ending in .html, got {out}")
    start = time.perf_counter()
    import os

    tmp = out.with_name(f".{out.name}.{os.getpid()}.html")
    try:
        data = write_page(args.target, tmp, image=args.image, depth=args.depth,
                          input_size=size)
        output_file(out, args, "-o")  # after the mistakes write_page finds (unknown model...)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    size_mb = out.stat().st_size / 2**20
    print(f"wrote {out} ({size_mb:.2f} MB, {data['rows']} layer boxes at depth {args.depth}, "
          f"{time.perf_counter() - start:.1f}s); open it in a browser")
    return 0
