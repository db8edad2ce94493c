"""``cnnlab export MODEL_OR_RUN --format onnx|torchscript|exported-program -o FILE``: write a
model for use outside cnnlab, load the file back, and check it against eager PyTorch.

``MODEL_OR_RUN`` is a registered model name (random weights; said so) or a run folder (its
``model.safetensors``, or ``checkpoint.pt``, and its ``config.json``). The model is exported in
eval mode, its input is ``--input`` (default: the run's training size or the model's native
size). The file is then loaded the way a user of that format loads it (onnxruntime,
``torch.jit.load``, ``torch.export.load``) and run on a fixed seeded input; the largest
relative difference from the eager model (``max |y - y_eager| / max |y_eager|``) is printed
with the file size. ``--dynamic-batch`` leaves the batch size free, and the check then runs
at two batch sizes. ``FILE.json`` beside the file records the model, the input size, the
normalisation (mean/std of a run) and the class names, what a consumer needs to feed it.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path

from ..errors import user_files
from . import (
    add_input_size_arg,
    add_json_arg,
    add_output_arg,
    input_size_of,
    new_command,
    output_file,
    print_json,
)

FORMATS = ("onnx", "torchscript", "exported-program")
ONNX_PACKAGES = ("onnx", "onnxscript", "onnxruntime")
TOLERANCE = 1e-4        # relative; float32 kernels differ by about 1e-6
EXPORT_BATCH = 2        # with --dynamic-batch (batch 1 would be specialised); else 1
OTHER_BATCH = 3         # the second batch size checked with --dynamic-batch


def add_parser(sub) -> None:
    p = new_command(
        sub, "export", outputs=True,
        help="export a model or a trained run to ONNX, TorchScript or torch.export",
        description="Export a registered model (random weights) or a run folder (its trained "
                    "weights) and check the file: it is loaded back (onnxruntime, "
                    "torch.jit.load, torch.export.load) and compared with eager PyTorch.",
        examples=["cnnlab export lenet5 --format onnx -o lenet5.onnx",
                  "cnnlab export runs/lenet5-digits --format onnx -o digits.onnx --dynamic-batch",
                  "cnnlab export resnet18 --format torchscript -o resnet18.pt --input-size 3x64x64",
                  "cnnlab export runs/lenet5-digits --format exported-program -o lenet5.pt2"])
    p.add_argument("source", metavar="MODEL_OR_RUN",
                   help="registered model name, or a run folder (or its checkpoint.pt)")
    p.add_argument("--format", required=True, choices=FORMATS, dest="fmt",
                   help="onnx (needs pip install 'cnnlab[onnx]'), torchscript, exported-program")
    add_output_arg(p, "file to write", required=True, metavar="FILE", old=None)
    add_input_size_arg(p, "input size (default: the run's training size or the model's native "
                          "size)")
    p.add_argument("--dynamic-batch", action="store_true",
                   help="leave the batch size free (default: fixed at 1)")
    p.add_argument("--fuse", action="store_true",
                   help="fold batch norm into the convolution before it and store the "
                        "weights channels-last (cnnlab.fuse): the same outputs, faster "
                        "on a CPU")
    add_json_arg(p, "print what was written and the check's figures as JSON")
    p.set_defaults(func=run)


def check_onnx_packages() -> None:
    """One-line error when the ONNX packages are missing."""
    from ..errors import CnnlabError

    missing = []
    for name in ONNX_PACKAGES:
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise CnnlabError(f"--format onnx needs {', '.join(missing)}: "
                          "pip install 'cnnlab[onnx]'")


def open_source(source: str):
    """``(model in eval mode, info dict)`` for a model name or a run folder (or its
    model.safetensors, checkpoint.pt, a scratch run): :func:`cnnlab.resolve.open_source`."""
    from ..resolve import open_source as resolve

    src = resolve(source)
    trained = src.kind != "name"
    run = src.config if src.kind != "scratch" else None
    return src.model, {"model": src.name, "weights": "trained" if trained else "random",
                       "run": str(src.path) if trained else None,
                       "input_size": list(src.input_size),
                       "mean": run["mean"] if run else None, "std": run["std"] if run else None,
                       "classes": src.classes if trained else None,
                       "data_config": src.data_config if run else None}


@contextmanager
def quiet():
    """Silence the exporters' progress lines and warnings (not errors)."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo",
                                               "onnxscript", "torch.fx")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), open(os.devnull, "w") as devnull:
            warnings.simplefilter("ignore")
            from contextlib import redirect_stdout
            with redirect_stdout(devnull):
                yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def export_file(model, x, fmt: str, out: Path, dynamic: bool) -> str:
    """Write ``model`` (traced at input ``x``) to ``out``; returns how it was made."""
    import torch

    from ..weights import atomic_write

    dims = ({0: torch.export.Dim("batch", min=1, max=4096)},) if dynamic else None
    with quiet(), torch.no_grad():
        if fmt == "exported-program":
            ep = torch.export.export(model, (x,), dynamic_shapes=dims)
            with atomic_write(out) as f:  # an unwritable -o is an OSError: one line, exit 2
                torch.export.save(ep, f)
            return "torch.export"
        if fmt == "onnx":
            program = torch.onnx.export(model, (x,), str(out), dynamo=True,
                                        input_names=["input"], output_names=["logits"],
                                        dynamic_shapes=dims, external_data=False)
            opset = next((o.version for o in program.model_proto.opset_import
                          if o.domain in ("", "ai.onnx")), None)
            return f"torch.onnx, opset {opset}"
        try:
            module = torch.jit.script(model)
            how = "torch.jit.script"
        except Exception as err:  # scripting needs every block to be scriptable
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            module = torch.jit.trace(model, x)
            how = f"torch.jit.trace; torch.jit.script failed: {first[:70]}"
        with atomic_write(out) as f:
            torch.jit.save(module, f)
        return how


def load_file(fmt: str, out: Path):
    """A function ``x -> output tensor`` running the written file as its users would."""
    import torch

    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda x: torch.from_numpy(session.run(None, {name: x.numpy()})[0])
    if fmt == "torchscript":
        return torch.jit.load(str(out), map_location="cpu")
    with open(out, "rb") as f:  # a file object: any file name, not only *.pt2
        return torch.export.load(f).module()


def relative_difference(y, ref) -> float:
    return ((y.float() - ref.float()).abs().max() / ref.float().abs().max().clamp_min(1e-12)).item()


def human_size(n: int) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError


def run(args) -> int:
    import torch

    from ..errors import CnnlabError

    out = Path(args.output)
    if out.is_dir():
        raise CnnlabError(f"-o {out} is a folder; give a file name, for example "
                          f"{out / 'model'}{'.onnx' if args.fmt == 'onnx' else '.pt'}")
    output_file(out, args, "-o")
    if args.fmt == "onnx":
        check_onnx_packages()
    input_size_of(args)  # a bad size fails before the model is opened
    model, info = open_source(args.source)
    if args.fuse:
        from ..fuse import fuse
        model = fuse(model.eval())
    if args.input_size is not None:
        info["input_size"] = list(input_size_of(args))
    c, h, w = info["input_size"]
    batch = EXPORT_BATCH if args.dynamic_batch else 1
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, c, h, w, generator=gen)
    with torch.no_grad():
        model.check_input(x)  # a size the model cannot take fails here, in one line
        want = model(x)

    say = (lambda *a, **k: None) if args.json else print  # --json: one JSON document
    if info["weights"] == "random":
        say(f"{info['model']}: random weights (not trained); export a run folder for "
              "trained weights")
    else:
        say(f"{info['model']}: trained weights from {info['run']}")
    with user_files():  # a file where a folder is needed, no permission: the user's to fix
        out.parent.mkdir(parents=True, exist_ok=True)
    how = export_file(model, x, args.fmt, out, args.dynamic_batch)
    size = out.stat().st_size
    say(f"wrote {out} ({args.fmt}, {how}), {human_size(size)}")

    run_file = load_file(args.fmt, out)
    checks = [(batch, x, want)]
    if args.dynamic_batch:
        x2 = torch.randn(OTHER_BATCH, c, h, w, generator=gen)
        with torch.no_grad():
            checks.append((OTHER_BATCH, x2, model(x2)))
    diffs = []
    for n, xb, ref in checks:
        try:
            with torch.no_grad():
                diffs.append((n, relative_difference(run_file(xb), ref)))
        except Exception as err:
            first = str(err).strip().splitlines()[0][:160] if str(err).strip() else ""
            print(f"cnnlab export: check failed: {out} does not run at batch {n}: "
                  f"{type(err).__name__}: {first}", file=sys.stderr)
            return 1
    loader = {"onnx": "onnxruntime", "torchscript": "torch.jit.load",
              "exported-program": "torch.export.load"}[args.fmt]
    shown = ", ".join(f"{d:.2e} at batch {n}" for n, d in diffs)
    say(f"loaded with {loader}; input {batch if not args.dynamic_batch else 'N'}x{c}x{h}x{w}"
          f"{' (dynamic batch)' if args.dynamic_batch else ''}; largest relative difference "
          f"from eager PyTorch: {shown}")

    sidecar = out.with_name(out.name + ".json")
    meta = {"model": info["model"], "weights": info["weights"], "run": info["run"],
            "format": args.fmt, "exported_with": how, "torch": torch.__version__,
            "input_size": info["input_size"], "dynamic_batch": args.dynamic_batch,
            "batch": None if args.dynamic_batch else batch,
            "mean": info["mean"], "std": info["std"], "classes": info["classes"],
            "data_config": info["data_config"].to_dict() if info["data_config"] else None,
            "preprocess": (f"pixels scaled to [0, 1], {info['data_config'].describe()}: "
                           "(x - mean) / std per channel") if info["data_config"] else None,
            "input_name": "input" if args.fmt == "onnx" else None,
            "output_name": "logits" if args.fmt == "onnx" else None,
            "max_relative_difference": max(d for _, d in diffs)}
    sidecar.write_text(json.dumps(meta, indent=2) + "\n")
    say(f"wrote {sidecar} (input size{', normalisation, classes' if info['data_config'] else ''})")
    worst = max(d for _, d in diffs)
    if args.json:
        print_json({"wrote": [str(out), str(sidecar)], "size_bytes": size,
                    "check_passed": worst <= TOLERANCE, "tolerance": TOLERANCE, **meta,
                    "relative_difference": {str(n): d for n, d in diffs}})
    if worst > TOLERANCE:
        print(f"cnnlab export: check failed: {out} differs from eager PyTorch by {worst:.2e} "
              f"(more than {TOLERANCE:g})", file=sys.stderr)
        return 1
    return 0
