"""Batch norm folded into the convolution (or linear layer) before it, for inference.

In eval mode a batch norm is a fixed affine map per channel, ``y = (x - mean) / sqrt(var + eps)
* gamma + beta``; when its input is the output of a convolution ``x = W * u + b`` and nothing
else reads that output, the two are one convolution with ``W' = W * s`` and
``b' = (b - mean) * s + beta``, ``s = gamma / sqrt(var + eps)`` per output channel. The fused
model does one pass over memory less per batch norm.

:func:`fuse` finds the pairs the way torch.fx's own fuser does (``torch.fx.experimental.
optimization.fuse``): it traces the eval-mode forward with ``torch.fx`` and takes every batch
norm whose input is a ``Conv1d/2d/3d`` (or ``Linear``, for ``BatchNorm1d``) node with no other
user, each module called once. Unlike that fuser it returns the model's own class, not a
``GraphModule``: a deep copy in which each folded convolution carries the new weights and
each folded batch norm is ``nn.Identity``, so ``forward_features``, ``forward_head``, the
module names and ``state_dict`` keys (less the batch norms') stay as they were. Batch norms
that do not directly follow a convolution (pre-activation ResNet v2 and DenseNet put BN-ReLU
before the convolution; a few read a concatenation) are kept, and counted in the report.

The weights are computed in float64, then stored in the convolution's dtype: outputs agree
with the unfused model to float32 rounding (tests/test_fuse.py: 1e-5 relative, every
registered model).

Folding alone saves one elementwise pass per batch norm: on a CPU that is 0.85-0.98x of the
eager time for ImageNet models (benchmarks/results/fuse_cpu.md), because the convolutions take
nearly all of it. Most of what a fused model can gain in plain PyTorch is the memory layout:
oneDNN, PyTorch's CPU convolution library, computes in channels-last (NHWC) order, and a
model kept in PyTorch's default NCHW order has every convolution's input and output reordered
on every call. So :func:`fuse` also stores the 4-D weights channels-last (``channels_last=
True``, the default, for a model with 2-D convolutions): the first convolution then gives a
channels-last output for an ordinary NCHW input, and every layer after it stays in that
layout; the outputs are the same values (a different order of summation: within float32
rounding). The feature maps it returns (``forward_features``) are channels-last too: call
``.contiguous()`` before ``.view()`` on them. ``channels_last=False`` folds only (the layout of
the unfused model).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import nn

from .errors import CnnlabError, NotAModelError

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_BNS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


class FuseError(CnnlabError, ValueError):
    """A model :func:`fuse` cannot fold: in training mode, or not traceable by torch.fx."""


@dataclass
class FuseReport:
    """What :func:`fuse` did: the ``(conv, bn)`` module names folded, the batch norms kept."""

    folded: list[tuple[str, str]] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    not_run: list[str] = field(default_factory=list)  # e.g. auxiliary heads (training only)
    channels_last: bool = False  # the 4-D weights were stored channels-last

    def line(self) -> str:
        text = f"fused {len(self.folded)} batch norm(s) into the layer before them"
        if self.kept:
            text += (f"; {len(self.kept)} kept (not directly after a convolution or linear "
                     f"layer, e.g. {self.kept[0]})")
        if self.not_run:
            text += f"; {len(self.not_run)} not run in eval mode (left as they are)"
        if self.channels_last:
            text += "; weights stored channels-last"
        return text


def fuse(model: nn.Module, *, channels_last: bool = True) -> nn.Module:
    """A copy of ``model`` (in eval mode) with every batch norm that directly follows a
    convolution or linear layer folded into it, and (``channels_last=True``, for a model with
    2-D convolutions) its 4-D weights stored channels-last; ``model`` is left untouched. The
    copy's ``fuse_report`` attribute is a :class:`FuseReport`. Raises :class:`FuseError` for a
    model in training mode (batch norm then uses the batch's statistics, which cannot be
    folded)."""
    return fuse_with_report(model, channels_last=channels_last)[0]


def fuse_with_report(model: nn.Module, *, channels_last: bool = True
                     ) -> tuple[nn.Module, FuseReport]:
    """:func:`fuse`, also returning the :class:`FuseReport`."""
    NotAModelError.check(model, "fuse")
    if model.training:
        raise FuseError(f"fuse folds batch norm's running statistics, which only eval mode "
                        f"uses; call model.eval() on the {type(model).__name__} first")
    fused = copy.deepcopy(model)
    pairs, called = fusable_pairs(fused)
    modules = dict(fused.named_modules())
    report = FuseReport()
    for conv_name, bn_name in pairs:
        fold_into(modules[conv_name], modules[bn_name])
        _set_module(fused, bn_name, nn.Identity())
        report.folded.append((conv_name, bn_name))
    done = {bn for _, bn in pairs}
    bns = [n for n, m in modules.items() if isinstance(m, _BNS) and n not in done]
    report.kept = [n for n in bns if n in called]
    report.not_run = [n for n in bns if n not in called]
    if channels_last and any(isinstance(m, nn.Conv2d) for m in fused.modules()):
        fused.to(memory_format=torch.channels_last)  # 4-D parameters and buffers only
        report.channels_last = True
    fused.fuse_report = report
    return fused, report


def fusable_pairs(model: nn.Module) -> tuple[list[tuple[str, str]], set[str]]:
    """``(conv name, bn name)`` for each batch norm of the traced eval forward whose only input
    is a convolution's (or linear layer's) output that nothing else reads; and the names of
    the modules the trace calls."""
    import torch.fx

    try:
        graph = torch.fx.symbolic_trace(model).graph
    except Exception as err:  # torch.fx raises many kinds; the user needs the one line
        raise FuseError(f"fuse traces the model with torch.fx, which failed on "
                        f"{type(model).__name__}: {type(err).__name__}: "
                        f"{str(err).splitlines()[0] if str(err) else ''}") from None
    modules = dict(model.named_modules())
    calls: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    pairs = []
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(modules[node.target], _BNS):
            continue
        src = node.args[0] if node.args else None
        if not isinstance(src, torch.fx.Node) or src.op != "call_module":
            continue
        layer, bn = modules[src.target], modules[node.target]
        ok = (isinstance(layer, _CONVS) and layer.out_channels == bn.num_features
              or isinstance(layer, nn.Linear) and isinstance(bn, nn.BatchNorm1d)
              and layer.out_features == bn.num_features)
        if (ok and len(src.users) == 1 and calls[src.target] == 1 and calls[node.target] == 1
                and bn.track_running_stats and bn.running_mean is not None):
            pairs.append((src.target, node.target))
    return pairs, set(calls)


@torch.no_grad()
def fold_into(layer: nn.Module, bn: nn.Module) -> None:
    """Fold the eval-mode ``bn`` into ``layer`` (a convolution or linear layer), in place."""
    w = layer.weight
    dtype = w.dtype
    scale = (bn.running_var.double() + bn.eps).rsqrt()
    if bn.weight is not None:
        scale = scale * bn.weight.double()
    shift = -bn.running_mean.double() * scale
    if bn.bias is not None:
        shift = shift + bn.bias.double()
    shape = [-1] + [1] * (w.dim() - 1)  # out channels first, for conv and linear alike
    new_w = (w.double() * scale.reshape(shape)).to(dtype)
    bias = layer.bias.double() if layer.bias is not None else torch.zeros_like(scale)
    new_b = (bias * scale + shift).to(dtype)
    layer.weight = nn.Parameter(new_w, requires_grad=w.requires_grad)
    layer.bias = nn.Parameter(new_b, requires_grad=w.requires_grad)


def _set_module(root: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, leaf, new)
