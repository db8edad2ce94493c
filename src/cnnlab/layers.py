"""Building blocks shared by several architecture families.

Each block lives here once and is reused by the model files. Blocks are ``nn.Sequential``
subclasses where the reference implementation (torchvision) numbers its sub-modules, so the
state_dict keys come out the same; ``names=`` gives them words instead where a family uses
named sub-modules (``conv``/``bn``).
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from collections.abc import Callable, Sequence
from functools import partial

import torch
from torch import nn

from .errors import CheckpointError, UsageError

LayerFactory = Callable[..., nn.Module]


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None,
                   round_limit: float = 0.9) -> int:
    """Round ``value`` to the nearest multiple of ``divisor``, never more than 10% down.

    The rule of the MobileNet v2/v3 and EfficientNet reference code (torchvision's
    ``_make_divisible``, Keras' ``round_filters``): channel counts stay multiples of 8, and if
    rounding would lose more than ``1 - round_limit`` of the value, one more ``divisor`` is added.
    """
    min_value = min_value or divisor
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new < round_limit * value:
        new += divisor
    return new


def make_activation(act_layer: LayerFactory | None) -> nn.Module | None:
    """Instantiate ``act_layer`` (in place where the layer supports it), or ``None``."""
    if act_layer is None:
        return None
    try:
        return act_layer(inplace=True)
    except TypeError:
        return act_layer()


def _sequential(modules: Sequence[nn.Module | None], names: Sequence[str] | None) -> OrderedDict:
    """Name the modules that are not ``None``, in order; extra names are left unused."""
    kept = [m for m in modules if m is not None]
    if names is None:
        names = [str(i) for i in range(len(kept))]
    if len(names) < len(kept):
        raise ValueError(f"need {len(kept)} names for the sub-modules, got {list(names)}")
    return OrderedDict(zip(list(names)[:len(kept)], kept, strict=True))


class ConvNormAct(nn.Sequential):
    """Convolution, then normalisation, then activation (conv -> BN -> ReLU by default).

    ``padding`` defaults to ``dilation * (kernel_size - 1) // 2`` ("same" for odd kernels at
    stride 1). The convolution has a bias only when there is no normalisation layer, unless
    ``bias`` says otherwise. Pass ``norm_layer=None`` or ``act_layer=None`` to drop a stage, and
    ``functools.partial(nn.BatchNorm2d, eps=1e-3)`` for other normalisation settings.
    """

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int | tuple[int, int] = 3,
                 stride: int = 1, padding: int | tuple[int, int] | None = None, groups: int = 1,
                 dilation: int = 1, bias: bool | None = None,
                 norm_layer: LayerFactory | None = nn.BatchNorm2d,
                 act_layer: LayerFactory | None = nn.ReLU,
                 names: Sequence[str] | None = None):
        if padding is None:
            ks = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
            padding = tuple(dilation * (k - 1) // 2 for k in ks)
        if bias is None:
            bias = norm_layer is None
        conv = nn.Conv2d(in_chs, out_chs, kernel_size, stride, padding, dilation=dilation,
                         groups=groups, bias=bias)
        norm = norm_layer(out_chs) if norm_layer is not None else None
        super().__init__(_sequential([conv, norm, make_activation(act_layer)], names))
        self.out_channels = out_chs


class NormActConv(nn.Sequential):
    """Pre-activation order: normalisation, activation, then convolution (no bias).

    The unit of DenseNet layers and ResNet v2 (He et al. 2016, "Identity mappings").
    """

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int = 3, stride: int = 1,
                 padding: int | None = None, groups: int = 1,
                 norm_layer: LayerFactory = nn.BatchNorm2d,
                 act_layer: LayerFactory = nn.ReLU,
                 names: Sequence[str] | None = None):
        if padding is None:
            padding = (kernel_size - 1) // 2
        conv = nn.Conv2d(in_chs, out_chs, kernel_size, stride, padding, groups=groups, bias=False)
        super().__init__(_sequential([norm_layer(in_chs), make_activation(act_layer), conv], names))
        self.out_channels = out_chs


class SeparableConv2d(nn.Sequential):
    """Depthwise k x k convolution followed by a pointwise 1 x 1 convolution, nothing between.

    The separable convolution of Xception (Keras ``SeparableConv2D``): parameters
    ``k*k*C_in + C_in*C_out`` instead of ``k*k*C_in*C_out``.
    """

    def __init__(self, in_chs: int, out_chs: int, kernel_size: int = 3, stride: int = 1,
                 padding: int | None = None, dilation: int = 1, bias: bool = False,
                 names: Sequence[str] = ("depthwise", "pointwise")):
        if padding is None:
            padding = dilation * (kernel_size - 1) // 2
        dw = nn.Conv2d(in_chs, in_chs, kernel_size, stride, padding, dilation=dilation,
                       groups=in_chs, bias=bias)
        pw = nn.Conv2d(in_chs, out_chs, 1, bias=bias)
        super().__init__(_sequential([dw, pw], names))
        self.out_channels = out_chs


class DepthwiseSeparable(nn.Sequential):
    """MobileNet v1's unit: depthwise 3x3 conv-BN-act, then pointwise 1x1 conv-BN-act.

    Cost (MobileNet paper, eq. 5 vs 4): ``Dk*Dk*M*Df*Df + M*N*Df*Df`` multiply-adds instead of
    ``Dk*Dk*M*N*Df*Df``, a ratio of ``1/N + 1/Dk^2``.
    """

    def __init__(self, in_chs: int, out_chs: int, stride: int = 1, kernel_size: int = 3,
                 norm_layer: LayerFactory | None = nn.BatchNorm2d,
                 act_layer: LayerFactory | None = nn.ReLU,
                 names: Sequence[str] = ("dw", "pw")):
        dw = ConvNormAct(in_chs, in_chs, kernel_size, stride, groups=in_chs,
                         norm_layer=norm_layer, act_layer=act_layer)
        pw = ConvNormAct(in_chs, out_chs, 1, norm_layer=norm_layer, act_layer=act_layer)
        super().__init__(_sequential([dw, pw], names))
        self.out_channels = out_chs


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation (Hu et al. 2018): global pool, 1x1 reduce, act, 1x1 expand, gate.

    Sub-module names ``fc1``/``fc2`` follow torchvision's ``SqueezeExcitation``.
    """

    def __init__(self, channels: int, squeeze_channels: int,
                 act_layer: LayerFactory = nn.ReLU, gate_layer: LayerFactory = nn.Sigmoid):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)
        self.activation = act_layer()
        self.scale_activation = gate_layer()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.fc2(self.activation(self.fc1(self.avgpool(x))))
        return x * self.scale_activation(s)


class ChannelShuffle(nn.Module):
    """ShuffleNet's channel shuffle: (N, g*n, H, W) -> view (N, g, n) -> transpose -> flatten.

    Channel ``i*n + j`` (group ``i``, position ``j``) moves to position ``j*g + i``, so each
    group of the next grouped convolution sees one channel from every group of this one.
    The forward has no Python branch on the shape (it traces and scripts); a channel count
    that ``groups`` does not divide fails in ``unflatten``. The units that use it check their
    widths when they are built.
    """

    def __init__(self, groups: int):
        super().__init__()
        if groups < 1:
            raise UsageError(f"channel shuffle needs groups >= 1, got {groups}")
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(1, (self.groups, -1)).transpose(1, 2).flatten(1, 2)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


class LocalResponseNorm(nn.LocalResponseNorm):
    """Local response normalisation with the *paper's* constants (Krizhevsky et al. 2012).

    The paper computes ``b = a / (k + alpha * sum(a^2 over n neighbours))^beta``. PyTorch's
    ``nn.LocalResponseNorm`` divides ``alpha`` by ``n``; this subclass multiplies it back, so
    ``LocalResponseNorm(n=5, alpha=1e-4, beta=0.75, k=2)`` is exactly the paper's layer.
    """

    def __init__(self, n: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0):
        super().__init__(size=n, alpha=alpha * n, beta=beta, k=k)
        self.paper_alpha = alpha

    def extra_repr(self) -> str:
        return f"n={self.size}, alpha={self.paper_alpha} (paper), beta={self.beta}, k={self.k}"


class StochasticDepth(nn.Module):
    """Drop the whole residual branch of a sample with probability ``p`` while training.

    Huang et al. 2016 ("Deep networks with stochastic depth"); survivors are scaled by
    ``1/(1-p)`` so that evaluation needs no change. No parameters, no effect in eval mode.
    """

    def __init__(self, p: float):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise UsageError(f"stochastic depth probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty([x.shape[0]] + [1] * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


def init_weights(module: nn.Module, linear_std: float | None = 0.01) -> None:
    """The common initialisation: Kaiming-normal (fan_out) convolutions with zero bias,
    normalisation layers at weight 1 and bias 0, and linear layers ``N(0, linear_std)`` with zero
    bias (``linear_std=None`` keeps PyTorch's default uniform init for linear layers)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            if m.weight is not None:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and linear_std is not None:
            nn.init.normal_(m.weight, 0.0, linear_std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def conv_out_size(size: int, kernel: int, stride: int = 1, padding: int = 0,
                  dilation: int = 1, ceil_mode: bool = False) -> int:
    """Output length of a convolution or pooling along one axis (PyTorch's formula)."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    return (math.ceil(span / stride) if ceil_mode else span // stride) + 1


# --- inverted residual / MBConv (MobileNet v2, v3, EfficientNet) -----------------

class InvertedResidual(nn.Module):
    """Inverted residual with linear bottleneck (MobileNet v2), a.k.a. MBConv (v3, EfficientNet).

    ``x -> [expand 1x1 conv-BN-act] -> depthwise kxk conv-BN-act (stride) -> [squeeze-excite]
    -> project 1x1 conv-BN (linear: no activation) -> (+ x)``. The expansion is skipped when
    ``mid_chs == in_chs`` (expansion ratio 1); squeeze-excitation (on the ``mid_chs`` expanded
    channels, squeezed to ``se_chs``) only when ``se_chs > 0``. The identity shortcut is used when
    ``stride == 1`` and ``in_chs == out_chs``; ``drop_path`` is then the stochastic-depth
    probability of the branch (EfficientNet).

    ``layout`` picks torchvision's module names, so checkpoints load key for key:

    * ``"block"`` (MobileNet v3, EfficientNet): ``block.0`` expand, ``block.1`` depthwise,
      ``block.2`` SE (``fc1``/``fc2``), ``block.3`` projection, each a :class:`ConvNormAct`
      (``block.k.0`` conv, ``block.k.1`` BN);
    * ``"conv"`` (MobileNet v2): ``conv.0`` expand, ``conv.1`` depthwise, then the projection's
      convolution and BN flat as ``conv.2`` and ``conv.3``.

    The body is the attribute ``block`` or ``conv`` (the other one is ``None``), and
    ``forward`` reads it by attribute, so the block traces and scripts.
    """

    def __init__(self, in_chs: int, out_chs: int, stride: int = 1, mid_chs: int | None = None,
                 kernel_size: int = 3, act_layer: LayerFactory = nn.ReLU6,
                 norm_layer: LayerFactory = nn.BatchNorm2d, se_chs: int = 0,
                 se_act_layer: LayerFactory = nn.ReLU, se_gate_layer: LayerFactory = nn.Sigmoid,
                 drop_path: float = 0.0, layout: str = "block"):
        super().__init__()
        if stride not in (1, 2):
            raise UsageError(f"inverted residual stride must be 1 or 2, got {stride}")
        if layout not in ("block", "conv"):
            raise UsageError(f"layout must be 'block' or 'conv', got {layout!r}")
        mid_chs = in_chs if mid_chs is None else mid_chs
        layers: list[nn.Module] = []
        if mid_chs != in_chs:
            layers.append(ConvNormAct(in_chs, mid_chs, 1, norm_layer=norm_layer,
                                      act_layer=act_layer))
        layers.append(ConvNormAct(mid_chs, mid_chs, kernel_size, stride, groups=mid_chs,
                                  norm_layer=norm_layer, act_layer=act_layer))
        if se_chs > 0:
            layers.append(SqueezeExcite(mid_chs, se_chs, act_layer=se_act_layer,
                                        gate_layer=se_gate_layer))
        if layout == "conv":
            layers += [nn.Conv2d(mid_chs, out_chs, 1, bias=False), norm_layer(out_chs)]
        else:
            layers.append(ConvNormAct(mid_chs, out_chs, 1, norm_layer=norm_layer, act_layer=None))
        self.layout = layout
        body = nn.Sequential(*layers)
        self.block = body if layout == "block" else None
        self.conv = body if layout == "conv" else None
        self.use_residual = stride == 1 and in_chs == out_chs
        self.stochastic_depth = StochasticDepth(drop_path) if self.use_residual else nn.Identity()
        self.in_channels, self.out_channels, self.stride = in_chs, out_chs, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x) if self.conv is None else self.conv(x)
        return x + self.stochastic_depth(out) if self.use_residual else out


# timm's names for the same blocks (timm/models/_efficientnet_blocks.py), used by the MobileNet
# and EfficientNet families to convert timm's files: ``blocks.<stage>.<index>.<part>.<leaf>``.
TIMM_BLOCK_KEY = re.compile(r"^blocks\.(\d+)\.(\d+)\.(.+)\.(\w+)$")
# Parts of timm blocks that have no counterpart here, and what they belong to.
TIMM_FOREIGN_PARTS = {
    "conv_exp": "an EdgeResidual (fused MBConv) block, as in timm's efficientnet_es/em/el and "
                "EfficientNet v2",
    "conv_dw.0": "a mixed-kernel depthwise convolution (timm's mixnet)",
    "routing_fn": "a CondConv block (timm's efficientnet_cc)",
    "dw_start": "a universal inverted bottleneck (timm's MobileNet v4)",
}


def timm_blocks(keys) -> dict[tuple[int, int], set[str]]:
    """The parts (``conv_pw``, ``bn1``, ``se.conv_reduce`` ...) of each timm block
    ``(stage, index)`` among ``keys``, in numeric block order."""
    blocks: dict[tuple[int, int], set[str]] = {}
    for key in keys:
        m = TIMM_BLOCK_KEY.match(key)
        if m:
            blocks.setdefault((int(m[1]), int(m[2])), set()).add(m[3])
    return dict(sorted(blocks.items()))


def rename_timm_keys(keys, names: dict, top: dict, family: str) -> dict[str, str]:
    """timm key -> cnnlab key for every key of a timm MBConv network: block keys through
    ``names`` ((stage, index, part) -> module path), the others through ``top`` (timm module ->
    module path); a key of neither kind is refused, naming ``family``."""
    from .errors import CheckpointError

    out = {}
    for key in keys:
        m = TIMM_BLOCK_KEY.match(key)
        module, _, leaf = key.rpartition(".")
        if m:
            out[key] = f"{names[int(m[1]), int(m[2]), m[3]]}.{m[4]}"
        elif module in top:
            out[key] = f"{top[module]}.{leaf}"
        else:
            raise CheckpointError(f"{key} is not a key of timm's {family}")
    return out


def timm_block_names(parts, layout: str = "block") -> dict[str, str]:
    """timm's part names of one MBConv block -> the module paths of :class:`InvertedResidual`
    with the same layers (``layout`` as there).

    timm names a block without expansion (``DepthwiseSeparableConv``) ``conv_dw, bn1,
    [se.conv_reduce, se.conv_expand], conv_pw, bn2`` and one with expansion
    (``InvertedResidual``) ``conv_pw, bn1, conv_dw, bn2, [se...], conv_pwl, bn3``; the order of
    the layers is the same as here. Raises ``ValueError`` with the part that has no place here.
    """
    parts = set(parts)
    expand = "conv_pwl" in parts
    units = [("conv_pw", "bn1"), ("conv_dw", "bn2")] if expand else [("conv_dw", "bn1")]
    if "se.conv_reduce" in parts:
        units.append(("se.conv_reduce", "se.conv_expand"))
    units.append(("conv_pwl", "bn3") if expand else ("conv_pw", "bn2"))
    names = {}
    for k, (conv, second) in enumerate(units):
        if conv.startswith("se."):
            names[conv], names[second] = f"{layout}.{k}.fc1", f"{layout}.{k}.fc2"
        elif layout == "conv" and k == len(units) - 1:  # the projection, flat
            names[conv], names[second] = f"conv.{k}", f"conv.{k + 1}"
        else:
            names[conv], names[second] = f"{layout}.{k}.0", f"{layout}.{k}.1"
    extra = sorted(parts - set(names))
    if extra:
        what = TIMM_FOREIGN_PARTS.get(extra[0], "a part an MBConv block here does not have")
        raise CheckpointError(f"{extra[0]}: {what}")
    return names

# --- input-size arithmetic (AlexNet, VGG, All-CNN) ---------------------------------------------

def smallest_input_side(modules, limit: int = 4096) -> int:
    """Smallest square input side ``n`` that every convolution and pooling in ``modules`` takes.

    ``modules`` are applied in the order given (a plain sequential model; adaptive and global
    pooling accept any size and are skipped). The answer is the first ``n`` for which each
    layer's output, by PyTorch's formula (:func:`conv_out_size`), is at least 1; ``n - 1``
    then fails somewhere. Raises ``ValueError`` if no side up to ``limit`` works.
    """
    def one(v):
        return v[0] if isinstance(v, (tuple, list)) else v

    ops = []
    for m in modules:
        if isinstance(m, nn.Conv2d):
            ops.append((one(m.kernel_size), one(m.stride), one(m.padding), one(m.dilation), False))
        elif isinstance(m, nn.MaxPool2d):
            ops.append((one(m.kernel_size), one(m.stride), one(m.padding), one(m.dilation),
                        m.ceil_mode))
        elif isinstance(m, nn.AvgPool2d):
            ops.append((one(m.kernel_size), one(m.stride), one(m.padding), 1, m.ceil_mode))
    for n in range(1, limit + 1):
        size = n
        for k, s, p, d, ceil in ops:
            size = conv_out_size(size, k, s, p, d, ceil)
            if size < 1:
                break
        else:
            return n
    raise ValueError(f"no input side up to {limit} fits these layers")

# --- residual shortcuts (ResNet v1/v2) and flat registration (ResNet, DenseNet) ---

def add_flat(parent: nn.Module, *units: nn.Module) -> None:
    """Register the sub-modules of each unit directly on ``parent``, under their own names.

    Lets a block be *built* from :class:`ConvNormAct` / :class:`NormActConv` units while its
    state_dict keys stay flat like the reference implementations' (``layer1.0.conv1.weight``,
    ``denselayer1.norm1.weight``): ``add_flat(self, ConvNormAct(..., names=("conv1", "bn1")))``
    gives the block the attributes ``conv1`` and ``bn1``. The unit itself is not kept; the
    block's ``forward`` calls the attributes by name.
    """
    for unit in units:
        for name, module in unit.named_children():
            if hasattr(parent, name):
                raise ValueError(f"{type(parent).__name__} already has a sub-module {name!r}")
            parent.add_module(name, module)


class ZeroPadShortcut(nn.Module):
    """ResNet's option A shortcut (He et al. 2015, sec. 3.3 and 4.2): parameter-free.

    Identity, taken with ``stride`` (every ``stride``-th row and column, the size a stride-s
    3x3 convolution with padding 1 gives), with ``out_chs - in_chs`` channels of zeros appended.
    """

    def __init__(self, in_chs: int, out_chs: int, stride: int = 1):
        super().__init__()
        if out_chs < in_chs:
            raise UsageError(
                f"a zero-padding shortcut cannot reduce channels ({in_chs} -> {out_chs})")
        self.in_chs, self.out_chs, self.stride = in_chs, out_chs, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, ::self.stride, ::self.stride]
        return nn.functional.pad(x, (0, 0, 0, 0, 0, self.out_chs - self.in_chs))

    def extra_repr(self) -> str:
        return f"{self.in_chs}, {self.out_chs}, stride={self.stride}"


SHORTCUT_KINDS = ("A", "B")


def residual_shortcut(in_chs: int, out_chs: int, stride: int = 1, kind: str = "B",
                      norm_layer: LayerFactory | None = nn.BatchNorm2d,
                      names: Sequence[str] | None = None) -> nn.Module | None:
    """The shortcut of a residual block, or ``None`` where the identity fits.

    He et al. 2015 (sec. 3.3) use the identity whenever input and output have the same shape.
    Where they differ (more channels, or a stride), option ``"A"`` pads zeros
    (:class:`ZeroPadShortcut`, no parameters) and option ``"B"`` projects with a 1x1 convolution
    of that stride (no bias), followed by ``norm_layer`` unless it is ``None`` (the pre-activation
    blocks of ResNet v2 project the already-normalised input).
    """
    if kind not in SHORTCUT_KINDS:
        raise UsageError(
            f"shortcut must be one of {SHORTCUT_KINDS} (the paper's options), got {kind!r}")
    if stride == 1 and in_chs == out_chs:
        return None
    if kind == "A":
        return ZeroPadShortcut(in_chs, out_chs, stride)
    return ConvNormAct(in_chs, out_chs, 1, stride, padding=0, bias=False, norm_layer=norm_layer,
                       act_layer=None, names=names)


# torchvision's BasicConv2d: conv (no bias) -> BN (eps 1e-3) -> ReLU, sub-modules conv/bn.
BasicConv2d = partial(ConvNormAct, norm_layer=partial(nn.BatchNorm2d, eps=0.001),
                      names=("conv", "bn", "act"))


def to_google_range(x: torch.Tensor) -> torch.Tensor:
    """``transform_input``: undo ImageNet mean/std normalisation, then map [0, 1] to [-1, 1].

    ``x * std / 0.5 + (mean - 0.5) / 0.5`` per RGB channel, the input range of the weights
    Google trained (torchvision's ``transform_input`` of GoogLeNet and Inception v3).
    """
    std = torch.tensor([0.229, 0.224, 0.225], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    mean = torch.tensor([0.485, 0.456, 0.406], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return x * (std / 0.5) + (mean - 0.5) / 0.5


def google_range_prologue(model: nn.Module):
    """The first step of a feature extractor (:class:`~cnnlab.models.base.FeatureSpec`) of
    GoogLeNet and Inception v3: the model's ``transform_input``, when it is on."""
    return to_google_range if model.transform_input else None
