"""``cnnlab weights inspect FILE``: what a weights file is and which models it fits."""

from __future__ import annotations

import json

from . import new_command


def add_parser(sub) -> None:
    p = new_command(
        sub, "weights", help="inspect weights files (torchvision, timm, cnnlab runs)",
        description="Work with weights files. 'inspect' reads a safetensors or PyTorch file "
                    "(weights_only, never arbitrary unpickling) or a cnnlab run folder and "
                    "prints its tensors, parameters, dtypes, container, SHA-256 and the "
                    "registered architectures whose state_dict it fits, with the evaluation "
                    "transform each takes (the published weights' resize, crop, "
                    "interpolation, mean and std).",
        examples=["cnnlab weights inspect resnet50-0676ba61.pth",
                  "cnnlab weights inspect runs/resnet20-digits --json",
                  "cnnlab weights inspect model.safetensors --weights-sha256 0676ba61"])
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    i = actions.add_parser("inspect", help="describe a weights file",
                           description="Describe a weights file or cnnlab run folder.")
    i.add_argument("file", help="a .safetensors/.pth/.pt/.bin file or a cnnlab run folder")
    i.add_argument("--json", action="store_true", help="print JSON")
    i.add_argument("--weights-sha256", metavar="HEX",
                   help="refuse the file unless its SHA-256 starts with HEX")
    i.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    p.set_defaults(func=run)


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n:,} bytes"


def data_configs(info: dict) -> dict:
    """The evaluation data configuration the file takes: a cnnlab run's own (its config.json),
    else that of each architecture it fits (torchvision's or timm's published transform)."""
    from ..data.config import data_config, from_run_config

    run = info.get("run")
    if run and {"input_size", "mean", "std"} <= set(run):
        return {run.get("model") or "run": from_run_config(run)}
    return {m["model"]: data_config(m["model"]) for m in info["matches"]}


def run(args) -> int:
    from ..errors import CheckpointError
    from ..pretrained import inspect_weights
    from ..resolve import classify

    kind, _ = classify(args.file)  # the one opener's errors for a path that is not there
    if kind in ("name", "scratch"):
        raise CheckpointError(
            f"{args.file} is a {'model name' if kind == 'name' else 'cnnlab scratch train run'}"
            ": give a weights file (.safetensors/.pth/.pt/.bin) or a cnnlab run folder"
            + (f" ('cnnlab summary {args.file}' describes the architecture)"
               if kind == "name" else ""))
    info = inspect_weights(args.file, args.weights_sha256)
    configs = data_configs(info)
    info["data_config"] = {k: v.to_dict() for k, v in configs.items()}
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    dtypes = ", ".join(f"{d} ({n})" for d, n in info["dtypes"].items())
    rows = [("file", f"{info['file']} ({_mb(info['size_bytes'])}, {info['format']})"),
            ("sha256", info["sha256"]),
            ("container", info["container"]),
            ("tensors", f"{info['tensors']:,}"),
            ("parameters", f"{info['parameters']:,} (not counting BN running statistics)"),
            ("dtypes", dtypes)]
    if info["matches"]:
        for n, m in enumerate(info["matches"]):
            kw = ", ".join(f"{k}={v}" for k, v in m["kwargs"].items())
            head = (f"{m['num_classes']} classes" if m["num_classes"] is not None
                    else "no classifier")
            rows.append(("matches" if n == 0 else "",
                         f"{m['model']}{f' ({kw})' if kw else ''}: {head}, "
                         f"{m['in_chans']} input channels"))
    else:
        rows.append(("matches", "no registered architecture (keys and shapes compared, "
                                "classifier aside)"))
    width = info["classifier_width"]
    rows.append(("classifier", "-" if width is None else f"{width} classes"))
    if "run" in info:
        r = info["run"]
        rows.append(("cnnlab run", f"{r.get('model')} at {r.get('input_size')}, mean "
                                   f"{r.get('mean')}, std {r.get('std')}"))
    for n, (model, dc) in enumerate(configs.items()):
        rows.append(("evaluation" if n == 0 else "",
                     f"{model}: {dc.describe()} ({dc.source})"))
    for note in info["notes"]:
        rows.append(("note", note))
    w = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{w}}  {v}")
    return 0
