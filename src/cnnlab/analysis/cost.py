"""Cost arithmetic of one convolution: standard vs depthwise-separable.

A standard k x k convolution from C input maps to N output maps has ``k*k*C*N`` weights
and, on an H' x W' output, ``H'*W'*k*k*C*N`` multiplications (= multiply-accumulates; the
bias adds are not counted). The depthwise-separable version (MobileNet, Howard et al. 2017,
§3.1) is a depthwise k x k convolution (one kernel per input map: ``k*k*C`` weights,
``H'*W'*k*k*C`` multiplications) followed by a pointwise 1 x 1 convolution (``C*N`` weights,
``H'*W'*C*N`` multiplications). The ratio separable / standard is therefore::

    (k*k*C + C*N) / (k*k*C*N) = 1/N + 1/k^2

for the weights and for the multiplications alike.

:data:`SLIDE_EXAMPLE` is the course slide's example (100x100x3 input, 128 maps, 3x3, 'same'
padding). Its figures, 16,380,000 multiplications standard vs 3,930,000 separable, are
1,638 and 393 = 9 + 384 per output position times 100*100 positions; the correct per-position
counts are 3*3*3*128 = 3,456 and 3*3*3 + 3*128 = 411 (see :func:`slide_explanation`).

A *grouped* convolution (AlexNet's two GPUs, ResNeXt, ShuffleNet) splits the C input maps and
the N filters into G groups; each filter sees only the C/G maps of its group, so weights and
multiplications are divided by G: ``k*k*(C/G)*N`` and ``H'*W'*k*k*(C/G)*N``. G = C is the
depthwise case (with N = C).

When the stride does not fit, ``(H + 2p - k) / s + 1`` is not a whole number: the last rows
or columns of the input are never covered by a window. AlexNet's first layer (11x11, stride
4, no padding) gives (227 - 11) / 4 + 1 = 55 on 227x227 but 54.25 on the 224x224 the paper
states; :attr:`ConvCost.warnings` says so.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..errors import UsageError


@dataclass(frozen=True)
class ConvCost:
    """Parameters and multiplications of a standard vs a depthwise-separable convolution."""

    height: int
    width: int
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    padding: int
    out_height: int
    out_width: int
    standard_weights: int
    standard_biases: int
    standard_mults: int
    depthwise_weights: int
    depthwise_mults: int
    pointwise_weights: int
    pointwise_biases: int
    pointwise_mults: int
    groups: int = 1

    @property
    def grouped_weights(self) -> int:
        """Weights of the standard convolution split into ``groups`` groups."""
        return self.standard_weights // self.groups

    @property
    def grouped_mults(self) -> int:
        return self.standard_mults // self.groups

    @property
    def exact_out(self) -> tuple[float, float]:
        """``(H + 2p - k) / s + 1`` per axis before rounding down."""
        return tuple((x + 2 * self.padding - self.kernel) / self.stride + 1
                     for x in (self.height, self.width))

    @property
    def warnings(self) -> list[str]:
        """Where the stride does not fit the input: what is lost and which size would fit."""
        out = []
        axes = [("height", self.height, self.exact_out[0]), ("width", self.width,
                                                              self.exact_out[1])]
        if self.height == self.width:
            axes = [("height and width", self.height, self.exact_out[0])]
        for axis, x, exact in axes:
            if exact == int(exact):
                continue
            span = x + 2 * self.padding - self.kernel
            lost = span % self.stride
            fit_up = x + (self.stride - lost)
            out.append(
                f"the stride does not fit the {axis}: ({x} + 2*{self.padding} - {self.kernel})"
                f" / {self.stride} + 1 = {exact:g}, not a whole number; the output has "
                f"{int(exact)} and the last {lost} input pixel(s) are never covered; "
                f"{fit_up} (or {x - lost}) would fit exactly, giving {int(exact) + 1} "
                f"(or {int(exact)})")
        return out

    @property
    def separable_weights(self) -> int:
        return self.depthwise_weights + self.pointwise_weights

    @property
    def separable_mults(self) -> int:
        return self.depthwise_mults + self.pointwise_mults

    @property
    def ratio(self) -> float:
        """Separable / standard multiplications (equal to the weight ratio)."""
        return self.separable_mults / self.standard_mults

    @property
    def formula_ratio(self) -> float:
        """The MobileNet paper's 1/N + 1/k^2."""
        return 1 / self.out_channels + 1 / self.kernel**2

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(separable_weights=self.separable_weights, separable_mults=self.separable_mults,
                 ratio=self.ratio, formula_ratio=self.formula_ratio,
                 grouped_weights=self.grouped_weights, grouped_mults=self.grouped_mults,
                 exact_out=list(self.exact_out), warnings=self.warnings)
        return d


def _positive(name: str, value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise UsageError(f"{name} must be a positive integer, got {value!r}")
    return value


def conv_cost(height: int, width: int, in_channels: int, out_channels: int, kernel: int = 3,
              stride: int = 1, padding: int | str = "same", groups: int = 1) -> ConvCost:
    """Weights and multiplications of a k x k convolution, standard vs depthwise + pointwise.

    ``padding`` is a number of pixels or ``"same"`` (``(k - 1) // 2``: the output keeps the
    input's size at stride 1) or ``"valid"`` (0). The depthwise convolution takes the stride;
    the pointwise one runs on its output. ``groups`` splits the standard convolution's input
    maps and filters into that many groups (both must divide by it).
    """
    for name, v in (("height", height), ("width", width), ("in_channels", in_channels),
                    ("out_channels", out_channels), ("kernel", kernel), ("stride", stride),
                    ("groups", groups)):
        _positive(name, v)
    if in_channels % groups or out_channels % groups:
        raise UsageError(f"groups={groups} must divide both the input maps ({in_channels}) and "
                         f"the output maps ({out_channels})")
    if padding == "same":
        pad = (kernel - 1) // 2
    elif padding == "valid":
        pad = 0
    elif isinstance(padding, int) and not isinstance(padding, bool) and padding >= 0:
        pad = padding
    else:
        raise UsageError(f"padding must be 'same', 'valid' or a non-negative integer, "
                         f"got {padding!r}")
    oh = (height + 2 * pad - kernel) // stride + 1
    ow = (width + 2 * pad - kernel) // stride + 1
    if oh <= 0 or ow <= 0:
        raise UsageError(f"a {kernel}x{kernel} kernel does not fit a {height}x{width} input "
                         f"with padding {pad}; use a larger input or more padding")
    k2, c, n, pos = kernel * kernel, in_channels, out_channels, oh * ow
    return ConvCost(
        height, width, c, n, kernel, stride, pad, oh, ow,
        standard_weights=k2 * c * n, standard_biases=n, standard_mults=pos * k2 * c * n,
        depthwise_weights=k2 * c, depthwise_mults=pos * k2 * c,
        pointwise_weights=c * n, pointwise_biases=n, pointwise_mults=pos * c * n,
        groups=groups,
    )


# The course slide: 100x100x3 input, 128 output maps, 3x3 kernels, 'same' padding.
SLIDE_EXAMPLE = {"height": 100, "width": 100, "in_channels": 3, "out_channels": 128,
                 "kernel": 3}
SLIDE_FIGURES = {"standard_mults": 16_380_000, "separable_mults": 3_930_000,
                 "standard_per_position": 1_638, "depthwise_per_position": 9,
                 "pointwise_per_position": 384}


def slide_explanation(cost: ConvCost) -> list[str]:
    """Why the slide's 16,380,000 vs 3,930,000 differ from the correct figures."""
    pos = cost.out_height * cost.out_width
    s = SLIDE_FIGURES
    k, c, n = cost.kernel, cost.in_channels, cost.out_channels
    slide_ratio = s["separable_mults"] / s["standard_mults"]
    return [
        f"The slide's figures are per-position counts times the {pos:,} output positions: "
        f"{s['standard_per_position']:,} x {pos:,} = {s['standard_mults']:,} and "
        f"({s['depthwise_per_position']} + {s['pointwise_per_position']}) x {pos:,} = "
        f"{s['separable_mults']:,}.",
        f"Standard: each position needs {k}x{k}x{c}x{n} = {k * k * c * n:,} multiplications, "
        f"not {s['standard_per_position']:,}. 1,638 = 2 x 3^2 x 7 x 13 has prime factors 7 and "
        f"13 that no product of this layer's sizes ({k}x{k} kernel, {c} input and {n} output "
        f"maps) contains, so it cannot be this layer's count under any convention.",
        f"Depthwise: {s['depthwise_per_position']} is one {k}x{k} kernel, i.e. a single input "
        f"map; with {c} input maps the depthwise step needs {k}x{k}x{c} = {k * k * c} per "
        f"position.",
        f"Pointwise: {c}x{n} = {c * n} per position, as the slide says.",
        f"The slide is not self-consistent: its pointwise term uses {c} input maps, its "
        f"depthwise term 1. Its ratio {s['separable_mults']:,}/{s['standard_mults']:,} = "
        f"{slide_ratio:.3f}; the correct ratio is {cost.separable_mults:,}/"
        f"{cost.standard_mults:,} = {cost.ratio:.4f} = 1/{n} + 1/{k}^2 "
        f"(about {1 / cost.ratio:.1f}x fewer multiplications and weights).",
    ]


def format_cost(cost: ConvCost, slide: bool = False) -> str:
    """The cost table (and, for the slide's example, the slide's figures and the explanation)."""
    oh, ow = cost.out_height, cost.out_width
    k, c, n = cost.kernel, cost.in_channels, cost.out_channels
    rows = [
        ("standard conv", f"{k}x{k}, {c}->{n}", cost.standard_weights, cost.standard_biases,
         cost.standard_mults, f"{oh}*{ow}*{k}*{k}*{c}*{n}"),
        ("depthwise", f"{k}x{k}, one per map", cost.depthwise_weights, c,
         cost.depthwise_mults, f"{oh}*{ow}*{k}*{k}*{c}"),
        ("pointwise", f"1x1, {c}->{n}", cost.pointwise_weights, cost.pointwise_biases,
         cost.pointwise_mults, f"{oh}*{ow}*{c}*{n}"),
        ("depthwise + pointwise", "", cost.separable_weights, c + cost.pointwise_biases,
         cost.separable_mults, ""),
    ]
    if cost.groups > 1:
        g = cost.groups
        rows.insert(1, (f"grouped conv, G={g}", f"{k}x{k}, {g} x ({c // g}->{n // g})",
                        cost.grouped_weights, n, cost.grouped_mults,
                        f"{oh}*{ow}*{k}*{k}*({c}/{g})*{n}"))
    header = ("Layer", "Kernel", "Weights", "Biases", "Multiplications (MACs)", "= ")
    table = [header] + [(a, b, f"{w:,}", f"{bi:,}", f"{m:,}", f"= {f}" if f else "")
                        for a, b, w, bi, m, f in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    right = {2, 3, 4}
    lines = [
        f"Input {cost.height}x{cost.width}x{c} (HxWxC), {n} output maps, {k}x{k} kernel, "
        f"stride {cost.stride}, padding {cost.padding} -> output {oh}x{ow}x{n}",
        "",
    ]
    for i, r in enumerate(table):
        lines.append("  ".join(x.rjust(w) if j in right and i else x.ljust(w)
                               for j, (x, w) in enumerate(zip(r, widths, strict=False))).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines += [
        "",
        f"separable / standard = {cost.separable_mults:,} / {cost.standard_mults:,} = "
        f"{cost.ratio:.4f}; 1/N + 1/k^2 = 1/{n} + 1/{k * k} = {cost.formula_ratio:.4f} "
        f"({1 / cost.ratio:.1f}x fewer multiplications and weights)",
        "Multiplications are multiply-accumulates (MACs), biases not counted; FLOPs = 2 x MACs.",
    ]
    if cost.groups > 1:
        g = cost.groups
        lines.append(f"grouped / standard = 1/G = 1/{g}: each of the {n} filters sees only the "
                     f"{c // g} input maps of its group ({k}x{k}x{c // g} = "
                     f"{k * k * (c // g):,} weights per filter instead of {k * k * c:,}).")
    lines += [f"warning: {w}" for w in cost.warnings]
    if slide:
        s = SLIDE_FIGURES
        lines += [
            "",
            "The slide says: standard 16,380,000 multiplications "
            f"({s['standard_per_position']:,} per position), depthwise + pointwise 3,930,000 "
            f"({s['depthwise_per_position']} + {s['pointwise_per_position']} per position).",
            f"Correct:        standard {cost.standard_mults:,} "
            f"({cost.standard_weights:,} per position), depthwise + pointwise "
            f"{cost.separable_mults:,} ({cost.depthwise_weights} + {cost.pointwise_weights} "
            "per position).",
            "Why they differ:",
        ] + [f"  - {line}" for line in slide_explanation(cost)]
    return "\n".join(lines)
