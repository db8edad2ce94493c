"""Multi-scale feature maps: timm's ``features_only`` contract for every cnnlab model.

``create_model(name, features_only=True, out_indices=(1, 2, 3))`` returns a
:class:`FeatureListNet`: its forward gives a list of feature maps (N, C_i, H_i, W_i), from
shallow to deep, and ``feature_info`` says, per map, its channels (``num_chs``), its
reduction (input size / map size, the product of the strides before it) and the module it
taps (``module``, a name of the full model). ``feature_info.channels()`` and
``.reduction()`` give them as lists. ``out_indices`` defaults to every map; negative
indices count from the deepest (-1).

**Where the taps are.** Each model class declares, as its class attribute ``feature_spec`` (a
:class:`~cnnlab.models.base.FeatureSpec`, in the family's own file), its *trunk*: the module
paths ``forward_features`` runs one after another, as data; nothing here knows a family.
The maps are the trunk's output at the end of each stride level: a step is tapped when the
next one reduces the resolution, and the last step always is. For the ten architectures timm
1.0 shares with cnnlab this gives timm's channels and reductions
(``tests/reference/outputs/features.json``), and for resnet18, resnet50, densenet121 and
resnet50_v2 timm's values too (tested). As in timm:

* ResNet's first map is the stem after its ReLU, before the max-pool; DenseNet's first and
  last maps are ``relu0`` and ``relu5`` (timm's ``norm0``/``norm5`` include that ReLU);
* the 1x1 "head" convolution that widens the last stage before pooling is left out
  (MobileNet v2 1280, EfficientNet 1280, ShuffleNet v2 ``conv5``), and so are ResNet v2's
  final ``norm``/``act``: the last map is ``stages.3``. MobileNet v3's 960 (576) convolution
  is kept, as timm keeps it;
* Xception's maps at 1/4, 1/8 and 1/16 are the block outputs after the ReLU that opens the
  next block (timm's ``block2.rep.0``, ...; the ``tap_alias`` of ``models/xception.py``).

**What it is.** A :class:`torch.fx.GraphModule` built from that plan (no tracing of the
model's forward is needed), holding the model's own modules under their own names: the
features model's ``state_dict`` keys are the full model's, so ``load_state_dict(full_sd,
strict=False)`` reports nothing missing and, as unexpected, only the modules after the last
tap (the classifier, and the head convolution where one is left out). Modules after the
deepest requested map are not kept (as in timm). It runs in eager mode, and scripts, traces
with fx and exports where the model's blocks do.
"""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import fx, nn

from .errors import UsageError
from .models.base import FeatureSpec, check_image_batch
from .registry import list_models

__all__ = ["FeatureListNet", "FeatureSpec", "FeatureInfo", "features_model", "feature_specs",
           "spec_for", "expand_paths", "find_taps"]


def _subclasses(cls: type):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def feature_specs() -> dict[type, FeatureSpec]:
    """The taps every built-in model class declares (its own ``feature_spec`` attribute; every
    family is loaded first), by class."""
    list_models()  # imports every family
    return {cls: vars(cls)["feature_spec"] for cls in _subclasses(nn.Module)
            if "feature_spec" in vars(cls) and cls.__module__.startswith("cnnlab.models.")}


def spec_for(model: nn.Module) -> FeatureSpec:
    """The taps ``model``'s class declares (its ``feature_spec``, or a base class's)."""
    spec = getattr(type(model), "feature_spec", None)
    if not isinstance(spec, FeatureSpec):
        raise UsageError(f"{type(model).__name__} declares no feature taps; give its class a "
                         "feature_spec = FeatureSpec(trunk=...) (cnnlab.models.base)")
    return spec


def expand_paths(model: nn.Module, patterns: Sequence[str]) -> list[str]:
    """Module paths of ``patterns`` (see :class:`FeatureSpec`), Identity modules left out."""
    paths: list[str] = []
    for pattern in patterns:
        if pattern.endswith("]"):
            base, sl = pattern[:-1].split("[")
            start, stop = (int(s) if s else None for s in sl.split(":"))
            names = [n for n, _ in model.get_submodule(base).named_children()][start:stop]
            found = [f"{base}.{n}" for n in names]
        elif pattern.endswith(".*"):
            base = pattern[:-2]
            found = [f"{base}.{n}" for n, _ in model.get_submodule(base).named_children()]
        else:
            parent, _, last = pattern.rpartition(".")
            children = (model.get_submodule(parent) if parent else model).named_children()
            found = [f"{parent}.{n}" if parent else n for n, _ in children
                     if fnmatch.fnmatchcase(n, last)]
        if not found:
            raise ValueError(f"{type(model).__name__} has no module matching {pattern!r}")
        paths += [p for p in found if not isinstance(model.get_submodule(p), nn.Identity)]
    return paths


def module_stride(module: nn.Module) -> int:
    """The largest stride of any layer inside ``module`` (1 if none): the factor by which the
    module reduces the resolution, for the blocks of these networks (one strided position on
    every path)."""
    stride = 1
    for m in module.modules():
        s = getattr(m, "stride", None)
        if isinstance(s, int):
            stride = max(stride, s)
        elif isinstance(s, tuple) and all(isinstance(v, int) for v in s):
            stride = max(stride, *s)
    return stride


@dataclass(frozen=True)
class Tap:
    step: int          # index of the trunk step whose output (or its alias) is the map
    module: str        # the module whose output is the map
    reduction: int


def find_taps(model: nn.Module, spec: FeatureSpec | None = None) -> tuple[list[str], list[Tap]]:
    """``(trunk paths, taps)``: a tap at the last step of every stride level."""
    spec = spec or spec_for(model)
    steps = expand_paths(model, spec.trunk)
    reductions, r = [], 1
    for path in steps:
        r *= module_stride(model.get_submodule(path))
        reductions.append(r)
    taps = [Tap(i, spec.tap_alias.get(path, path), reductions[i])
            for i, path in enumerate(steps)
            if i == len(steps) - 1 or reductions[i + 1] > reductions[i]]
    return steps, taps


class FeatureInfo(list):
    """One dict per feature map (``num_chs``, ``reduction``, ``module``, ``index``), in output
    order, with timm's accessors."""

    def channels(self, idx: int | None = None):
        return self._get("num_chs", idx)

    def reduction(self, idx: int | None = None):
        return self._get("reduction", idx)

    def module_name(self, idx: int | None = None):
        return self._get("module", idx)

    def get_dicts(self) -> list[dict]:
        return [dict(d) for d in self]

    def _get(self, key: str, idx: int | None):
        return [d[key] for d in self] if idx is None else self[idx][key]


# fx keeps the check as one call in a trace (the wrap patches this module's name for it)
fx.wrap("check_image_batch")


class InputCheck(nn.Module):
    """The models' input check (:func:`~cnnlab.models.base.check_image_batch`): eager,
    scripted and fx-traced alike, with the model's message."""

    def __init__(self, name: str, in_chans: int, min_input_size: tuple[int, int]):
        super().__init__()
        self.name, self.in_chans = name, in_chans
        self.min_h, self.min_w = min_input_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_batch(x, self.name, self.in_chans, self.min_h, self.min_w)
        return x


class FeatureListNet(fx.GraphModule):
    """A model's trunk up to its deepest requested tap; forward returns the list of maps.

    Built by :func:`features_model`; its ``feature_info`` (a :class:`FeatureInfo`) describes
    the maps. It checks its input as the model does (``check_image_batch``). (No class
    annotation for ``feature_info``: TorchScript would try to compile the type.)
    """

    _extra_attrs = ("feature_info", "model_name", "in_chans", "min_input_size")

    def __deepcopy__(self, memo):
        """GraphModule's copy rebuilds a plain GraphModule: keep what this class adds."""
        res = super().__deepcopy__(memo)
        for key in self._extra_attrs:
            if key in self.__dict__:
                setattr(res, key, copy.deepcopy(self.__dict__[key], memo))
        type(res).__name__ = type(self).__name__
        return res


def resolve_out_indices(name: str, n: int, out_indices) -> list[int]:
    """``out_indices`` (None = all; negative count from the end) as sorted indices."""
    if out_indices is None:
        return list(range(n))
    if isinstance(out_indices, int):
        out_indices = (out_indices,)
    idx = []
    for i in out_indices:
        if isinstance(i, bool) or not isinstance(i, int):
            raise UsageError(f"out_indices must be integers, got {i!r}")
        if not -n <= i < n:
            raise UsageError(f"{name} has {n} feature maps: out_indices must be in 0..{n - 1} "
                             f"(or -{n}..-1), got {i}")
        idx.append(i % n)
    if not idx:
        raise UsageError("out_indices is empty; leave it out for every feature map")
    if len(set(idx)) != len(idx):
        raise UsageError(f"out_indices names a feature map twice: {tuple(out_indices)}")
    return sorted(idx)


def features_model(model: nn.Module,
                   out_indices: Sequence[int] | int | None = None) -> FeatureListNet:
    """The multi-scale feature extractor of ``model`` (see the module docstring); it shares the
    model's modules (and so its weights). The channels are measured with one forward pass at
    the model's smallest input size."""
    spec = spec_for(model)
    steps, taps = find_taps(model, spec)
    name = getattr(model, "model_name", type(model).__name__.lower())
    chosen = [taps[i] for i in resolve_out_indices(name, len(taps), out_indices)]

    graph = fx.Graph()
    modules: dict[str, nn.Module] = {}
    x = graph.placeholder("x")
    min_size = tuple(getattr(model, "min_input_size", (1, 1)))
    modules["input_check"] = InputCheck(name, model.in_chans, min_size)
    x = graph.call_module("input_check", (x,))
    prologue = spec.prologue(model) if spec.prologue else None
    if prologue is not None:
        x = graph.call_function(prologue, (x,))
    outputs = []
    wanted = {t.step: t for t in chosen}
    for i, path in enumerate(steps[: chosen[-1].step + 1]):
        modules[path] = model.get_submodule(path)
        x = graph.call_module(path, (x,))
        if i in wanted:
            tap = wanted[i]
            if tap.module != path:
                modules[tap.module] = model.get_submodule(tap.module)
                outputs.append(graph.call_module(tap.module, (x,)))
            else:
                outputs.append(x)
    graph.output(outputs)
    net = FeatureListNet(modules, graph, class_name="FeatureListNet")
    net.train(model.training)
    net.model_name, net.in_chans, net.min_input_size = name, model.in_chans, min_size

    shapes = _probe_shapes(net, (model.in_chans, *min_size))
    net.feature_info = FeatureInfo(
        {"num_chs": s[1], "reduction": t.reduction, "module": t.module, "index": i}
        for i, t, s in zip((taps.index(t) for t in chosen), chosen, shapes, strict=True))
    return net


def _probe_shapes(net: nn.Module, input_size: Sequence[int]) -> list[torch.Size]:
    """The output shapes for one input of the smallest size, in eval mode (nothing changes)."""
    p = next(net.parameters())
    x = torch.zeros(1, *input_size, device=p.device, dtype=p.dtype)
    was_training = net.training
    try:
        with torch.no_grad():
            outs = net.eval()(x)
    finally:
        net.train(was_training)
    return [o.shape for o in outs]
