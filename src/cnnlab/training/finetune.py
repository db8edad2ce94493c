"""Fine-tuning pieces of the trainer: start from a weights file, freeze, a learning rate for the
head, the normalisation that goes with the weights.

* ``--weights FILE`` loads a file (or cnnlab run) into the freshly built model before anything
  is written (:func:`cnnlab.pretrained.load_pretrained`: a new classifier when the class count
  differs, an adapted first convolution when the channels differ). ``config.json`` records the
  file's name, path and SHA-256 and what was adapted.
* ``--freeze features`` trains only the classifier(s) (``classifier_names()``: the final layer
  and the auxiliary heads' final layers). Everything else has ``requires_grad=False`` and runs
  in evaluation mode while training, so its weights *and* its BatchNorm running statistics
  stay bit for bit what the file had (dropout and stochastic depth are off there too).
* ``--head-lr LR`` puts the classifier's parameters in their own optimizer group.
* Normalisation: ``--mean/--std`` when given; else that of the cnnlab run the weights come
  from; else, for an ImageNet architecture started from a file, ImageNet's
  (mean 0.485, 0.456, 0.406; std 0.229, 0.224, 0.225); else the data set's.
"""

from __future__ import annotations

from torch import nn

from ..errors import UsageError
from ..pretrained import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    classifier_prefixes,
    is_imagenet_architecture,
    load_pretrained,
    read_weights,
)
from .config import FREEZE_CHOICES  # noqa: F401  (re-exported)

_FROZEN_ATTR = "frozen_modules"


def _unwrap(model: nn.Module) -> nn.Module:
    while hasattr(model, "module") and isinstance(model.module, nn.Module):
        model = model.module  # DistributedDataParallel
    return getattr(model, "_orig_mod", model)  # torch.compile


def _in_classifier(name: str, prefixes: list[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _holds_classifier(name: str, prefixes: list[str]) -> bool:
    return name == "" or any(p.startswith(name + ".") for p in prefixes)


def freeze_features(model: nn.Module) -> tuple[int, int]:
    """Freeze everything but the classifier(s); returns (frozen, trainable) parameter counts."""
    prefixes = classifier_prefixes(model)
    frozen_modules = [name for name, _ in model.named_modules()
                      if not _in_classifier(name, prefixes)
                      and not _holds_classifier(name, prefixes)]
    frozen = trainable = 0
    for name, p in model.named_parameters():
        if _in_classifier(name.rsplit(".", 1)[0], prefixes):
            trainable += p.numel()
        else:
            p.requires_grad_(False)
            frozen += p.numel()
    setattr(model, _FROZEN_ATTR, frozen_modules)
    return frozen, trainable


def apply_frozen_modes(model: nn.Module, training: bool) -> None:
    """After ``model.train(training)``: put the frozen part back in evaluation mode."""
    model = _unwrap(model)
    names = getattr(model, _FROZEN_ATTR, None)
    if training and names:
        modules = dict(model.named_modules())
        for name in names:
            modules[name].eval()


def head_parameters(model: nn.Module) -> list[nn.Parameter]:
    prefixes = classifier_prefixes(_unwrap(model))
    return [p for n, p in _unwrap(model).named_parameters()
            if _in_classifier(n.rsplit(".", 1)[0], prefixes)]


def split_param_groups(model: nn.Module, lr: float, head_lr: float | None) -> list[dict]:
    """One group at ``lr``, or the body at ``lr`` and the classifier(s) at ``head_lr``."""
    params = [p for p in model.parameters() if p.requires_grad]
    if head_lr is None:
        return [{"params": params, "lr": lr}]
    head = {id(p) for p in head_parameters(model)}
    body = [p for p in params if id(p) not in head]
    groups = [{"params": body, "lr": lr}] if body else []
    return groups + [{"params": [p for p in params if id(p) in head], "lr": head_lr}]


def start_from_weights(cfg, model: nn.Module, channels: int, data_stats,
                       load: bool = True) -> dict:
    """Load ``cfg.weights`` into ``model`` and decide the normalisation.

    Returns ``{"record": <config.json's "weights" entry>, "mean", "std", "notes": [lines]}``;
    raises :class:`~cnnlab.errors.CheckpointError` (before anything is written) when the
    file cannot be read or does not fit. ``load=False`` (a resumed run, whose checkpoint has
    the weights) only freezes and takes the normalisation the run recorded in ``cfg``.
    """
    notes: list[str] = []
    record = None
    source_cfg = None
    if cfg.weights and load:
        wf = read_weights(cfg.weights, cfg.weights_sha256)
        report = load_pretrained(model, wf, log=notes.append)
        source_cfg = wf.run_config
        record = {"file": wf.path.name, "given": str(cfg.weights),
                  "path": str(wf.path.resolve()), "sha256": wf.sha256,
                  "container": wf.container, "replaced": report.replaced, "stem": report.stem}
        if source_cfg:
            record["source_run"] = {"model": source_cfg.get("model"),
                                    "classes": len(source_cfg.get("classes") or [])}
    mean, std = data_stats
    how = None
    if cfg.mean is not None or cfg.std is not None:
        mean, std = cfg.mean or mean, cfg.std or std
        how = "given"
        for key, v in (("mean", cfg.mean), ("std", cfg.std)):
            if v is not None and len(v) not in (1, channels):
                raise UsageError(f"--{key} has {len(v)} values, but {cfg.model} takes "
                                 f"{channels}-channel input: give 1 value"
                                 + (f" or {channels}" if channels > 1 else ""))
    elif source_cfg and source_cfg.get("mean") and len(source_cfg["mean"]) in (1, channels):
        mean, std = source_cfg["mean"], source_cfg["std"]
        how = f"the source run's ({source_cfg.get('model')})"
        notes.append(f"normalisation of the run the weights come from: mean {list(mean)}, "
                     f"std {list(std)}; --mean/--std to change it")
    elif cfg.weights and channels == 3 and is_imagenet_architecture(cfg.model):
        mean, std = IMAGENET_MEAN, IMAGENET_STD
        how = "ImageNet"
        notes.append(f"{cfg.model} from a weights file: ImageNet normalisation (mean "
                     f"{list(IMAGENET_MEAN)}, std {list(IMAGENET_STD)}); --mean/--std to "
                     "change it")
    if record is not None:
        record["normalisation"] = how or "the data set's"
    if cfg.freeze == "features":
        frozen, trainable = freeze_features(model)
        notes.append(f"--freeze features: {trainable:,} classifier parameters train, {frozen:,} "
                     "are frozen (and their BatchNorm statistics, in eval mode)")
        if record is None:
            notes.append("note: --freeze features without --weights trains a classifier on "
                         "random features")
    return {"record": record, "mean": tuple(mean), "std": tuple(std), "notes": notes}
