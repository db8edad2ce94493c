"""``cnnlab filter IMAGE --kernel NAME``: classical filters on any image Pillow reads."""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import UsageError, user_files
from . import add_json_arg, add_output_arg, new_command, output_file, print_json


def add_parser(sub) -> None:
    p = new_command(
        sub, "filter", torch=False, outputs=True,
        help="apply classical filters (Sobel, Prewitt, lines, blur...) to an image",
        description="Convolve a grayscale version of IMAGE with named masks and write the "
                    "filtered image(s) and a side-by-side PNG figure. Responses are computed "
                    "in float; --normalize says how they become 0..255 pixels.",
        examples=["cnnlab filter --list",
                  "cnnlab filter photo.jpg --kernel sobel",
                  "cnnlab filter photo.jpg --kernel sobel-x --kernel sobel-y -o edges.png",
                  "cnnlab filter photo.jpg --kernel gaussian --size 7 --sigma 2",
                  "cnnlab filter photo.jpg --kernel '0,-1,0;-1,5,-1;0,-1,0' -o sharp.png",
                  "cnnlab filter photo.jpg --kernel sobel-x -o gx.npy   # raw float values"])
    p.add_argument("image", nargs="?", type=Path, help="any image Pillow can read")
    p.add_argument("--kernel", "-k", action="append", default=[],
                   help="kernel name (see --list) or inline 'a,b,c;d,e,f;...'; repeatable")
    p.add_argument("--list", action="store_true", help="list the named kernels and exit")
    add_output_arg(p, "output file (.png/.jpg..., or .npy for the float response); with "
                      "several kernels the kernel name is appended. Default: IMAGE_<kernel>.png "
                      "here", type=Path, metavar="FILE")
    p.add_argument("--figure", type=Path, default=None,
                   help="side-by-side figure (default: <out stem>_figure.png); 'none' to skip")
    p.add_argument("--correlate", action="store_true",
                   help="correlate instead of convolving (no kernel flip)")
    p.add_argument("--mode", choices=("auto", "same", "valid", "full"), default="auto",
                   help="output size; auto = same for odd kernels, valid for even ones")
    p.add_argument("--boundary", choices=("zero", "reflect", "symmetric", "replicate", "wrap"),
                   default="replicate", help="border handling (default replicate)")
    p.add_argument("--stride", type=int, default=1)
    p.add_argument("--size", type=int, default=None, help="size of the box/gaussian kernel")
    p.add_argument("--sigma", type=float, default=None, help="sigma of the gaussian kernel")
    p.add_argument("--normalize", choices=("auto", "minmax", "symmetric", "abs", "clip"),
                   default="auto", help="how float responses map to 0..255 (see docs/lab.md)")
    add_json_arg(p, "print the files written and each response's figures as JSON")
    p.set_defaults(func=run)


def read_grayscale(path: Path):
    """The image as float64 gray levels on the 0..255 scale (Pillow's 'L' luma, 0.299 R +
    0.587 G + 0.114 B, for colour; 16-bit and float images keep their precision: see
    :mod:`cnnlab.data.images`)."""
    from ..data.images import read_image

    return read_image(path, channels=1, dtype="float64")[0] * 255.0


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9+.-]+", "_", name).strip("_") or "kernel"


def run(args) -> int:
    import numpy as np
    from PIL import Image

    from ..lab import filters as F
    from ..lab.plots_lab import side_by_side

    if args.list:
        for name, desc, shape in F.describe_kernels():
            print(f"{name:<11} {shape[0]}x{shape[1]}  {desc}")
        return 0
    if args.image is None or not args.kernel:
        raise UsageError("give an IMAGE and at least one --kernel NAME (or --list)")
    out = args.output or Path(f"{args.image.stem}_{_safe(args.kernel[0])}.png")
    if not out.name or (args.figure is not None and not args.figure.name):
        raise UsageError("-o/--output and --figure take a file name, e.g. edges.png")
    paths = [out if len(args.kernel) == 1 else out.with_name(f"{out.stem}_{_safe(n)}{out.suffix}")
             for n in args.kernel]
    fig = None
    if args.figure is None or str(args.figure).lower() != "none":
        fig = args.figure or out.with_name(f"{out.stem}_figure.png")
    for path, flag in [(p, "-o") for p in paths] + ([(fig, "--figure")] if fig else []):
        output_file(path, args, flag)  # before any work: an existing file is not replaced
        if flag == "-o" and path.suffix.lower() not in {".npy", *Image.registered_extensions()}:
            raise UsageError(f"{flag} {path}: give a file name ending in .png (or .npy for the "
                             "raw values; other image types: .jpg, .tif, ...)")
    image = read_grayscale(args.image)
    responses, figures = [], []
    say = (lambda *a, **k: None) if args.json else print
    for name in args.kernel:
        # resolve first so unknown names fail before any work
        base = F.MAGNITUDES.get(name.lower(), (name,))[0]
        kernel = (F.parse_kernel(base) if any(c in base for c in ",;")
                  else F.get_kernel(base, args.size, args.sigma))
        mode = args.mode
        if mode == "auto":
            mode = "same" if kernel.shape[0] % 2 and kernel.shape[1] % 2 else "valid"
        resp = F.apply_filter(image, name, op="correlate" if args.correlate else "convolve",
                              mode=mode, boundary=args.boundary, stride=args.stride,
                              size=args.size, sigma=args.sigma)
        responses.append((name, resp))
        figures.append({"kernel": name, "size": list(kernel.shape), "mode": mode,
                        "output": list(resp.shape), "min": float(resp.min()),
                        "max": float(resp.max())})
        say(f"{name}: kernel {kernel.shape[0]}x{kernel.shape[1]}, mode {mode}, output "
              f"{resp.shape[0]}x{resp.shape[1]}, values [{resp.min():.4g}, {resp.max():.4g}]")
    for (_, resp), path in zip(responses, paths, strict=True):
        with user_files(path):  # a folder, no permission, no space: the user's to fix
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.suffix.lower() == ".npy":
                np.save(path, resp)
            else:
                Image.fromarray(F.to_uint8(resp, args.normalize)).save(path)
        say(f"saved {path}")
    if fig is not None:
        op = "correlation" if args.correlate else "convolution"
        side_by_side(image, responses, fig, title=f"{args.image.name}: {op}, "
                     f"boundary {args.boundary}")
        say(f"saved {fig}")
    if args.json:
        print_json({"image": str(args.image), "wrote": [str(p) for p in paths]
                    + ([str(fig)] if fig is not None else []), "filters": figures})
    return 0
