"""Inference backends side by side: what the machine is, and how fast each backend runs.

This module starts with the machine: the CPU features that decide which backend can be fast
(:func:`cpu_features`, from ``/proc/cpuinfo``) and a header (:func:`machine_lines`: CPU,
cores, load average, torch threads, versions) printed beside every figure, because timings on
a shared machine swing with its load.
"""

from __future__ import annotations

import math
import os
import platform
from dataclasses import dataclass

from ..errors import CnnlabError

# flag in /proc/cpuinfo -> what it is called in the tables
FEATURE_FLAGS = {
    "avx2": "AVX2",
    "avx512f": "AVX-512",
    "avx512_vnni": "AVX-512 VNNI",
    "avx_vnni": "AVX-VNNI",
    "avx512_bf16": "AVX-512 BF16",
    "amx_tile": "AMX",
    "amx_bf16": "AMX-BF16",
    "amx_int8": "AMX-INT8",
}


def _cpuinfo() -> tuple[str, set[str]]:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name":
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return model, flags


def cpu_features() -> dict[str, bool]:
    """``{"AVX2": True, "AVX-512": False, ..., "native bf16": ..., "int8 dot product": ...}``
    from the CPU's flags. Native bf16 means instructions that multiply bf16 (AVX-512 BF16 or
    AMX-BF16); without them bf16 is converted to fp32 and back around every operation."""
    _, flags = _cpuinfo()
    out = {name: flag in flags for flag, name in FEATURE_FLAGS.items()}
    out["native bf16"] = out["AVX-512 BF16"] or out["AMX-BF16"]
    out["int8 dot product"] = out["AVX-512 VNNI"] or out["AVX-VNNI"] or out["AMX-INT8"]
    return out


def feature_line() -> str:
    feats = cpu_features()
    return "CPU features: " + ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in feats.items())


def machine_lines(device=None) -> list[str]:
    """Lines for a results header: CPU, cores, load, threads, versions, features; and the GPU
    (name, memory, compute capability, CUDA version) when ``device`` is a CUDA device."""
    import torch

    model, _ = _cpuinfo()
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    lines = [f"CPU: {model}; {os.cpu_count()} cores; load average {load[0]:.2f} "
             f"{load[1]:.2f} {load[2]:.2f}; torch threads {torch.get_num_threads()}",
             f"versions: python {platform.python_version()}, torch {torch.__version__}"
             + "".join(f", {n} {v}" for n, v in _versions().items()),
             feature_line()]
    if device is not None and torch.device(device).type == "cuda":
        props = torch.cuda.get_device_properties(torch.device(device))
        lines.append(f"GPU: {props.name}; {props.total_memory / 2**30:.0f} GiB; compute "
                     f"capability {props.major}.{props.minor}; CUDA {torch.version.cuda}")
    return lines


def _versions() -> dict[str, str]:
    from importlib import metadata

    found = {}
    for name in ("onnxruntime", "torchao"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


# ---------------------------------------------------------------------------------------------
# backends: each turns an eval-mode model into a function x -> logits (float32)

BACKENDS = ("eager", "channels_last", "bf16", "fused", "compile", "compile_bf16", "int8", "ort",
            "ort_int8")
PRECISION = {"eager": "fp32", "channels_last": "fp32", "bf16": "bf16", "fused": "fp32",
             "compile": "fp32", "compile_bf16": "bf16", "int8": "int8", "ort": "fp32",
             "ort_int8": "int8"}
DESCRIPTION = {
    "eager": "eager fp32 (the reference)",
    "channels_last": "eager fp32, channels-last memory format",
    "bf16": "eager under torch.autocast bfloat16, channels-last",
    "fused": "cnnlab.fuse: batch norm folded into the convolutions, weights channels-last, fp32",
    "compile": "torch.compile (inductor, frozen weights) of the batch-norm-folded model, fp32",
    "compile_bf16": "torch.compile (inductor, frozen weights) of the batch-norm-folded model "
                    "in bfloat16",
    "int8": "PT2E int8: X86InductorQuantizer, calibrated, lowered to oneDNN int8 kernels",
    "ort": "ONNX Runtime fp32 (CPU provider, graph optimisations on)",
    "ort_int8": "ONNX Runtime int8 (onnxruntime.quantization static QDQ, calibrated)",
}


CPU_ONLY = ("int8", "ort", "ort_int8")  # oneDNN int8 kernels; ONNX Runtime's CPU provider


class BackendError(CnnlabError, ValueError):
    """A backend that cannot run here or on this model: one line naming why and the fix."""


def check_backends(names) -> list[str]:
    """The backend names, checked (``auto`` is not a backend of the table)."""
    out = []
    for name in names:
        if name not in BACKENDS:
            raise BackendError(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
        if name not in out:
            out.append(name)
    return out


def _one_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0][:200] if text else ''}"


def prepare(backend: str, model, example, calibration=None, workdir=None):
    """``(run, setup_s, note)``: ``run(x)`` gives float32 logits for a batch ``x`` shaped like
    ``example``; ``setup_s`` is the time to make it (compile, quantize, export), reported apart
    from the step time. ``calibration`` (a list of input batches) calibrates int8. Raises
    :class:`BackendError` (one line) when the backend cannot run here or on this model."""
    import time

    import torch

    from ..models.base import main_logits

    t0 = time.perf_counter()
    note = ""
    device = example.device
    if backend in CPU_ONLY and device.type != "cpu":
        raise BackendError(f"{backend} runs on the CPU only ({DESCRIPTION[backend]}); it is "
                           f"not timed on {device.type}: bench it with --device cpu")
    if backend == "eager":
        def run(x):
            return main_logits(model(x))
    elif backend in ("channels_last", "bf16"):
        import copy

        m = copy.deepcopy(model).to(memory_format=torch.channels_last)
        if backend == "bf16":
            if device.type == "cpu" and not cpu_features()["native bf16"]:
                note = ("no native bf16 on this CPU (no AVX-512 BF16 / AMX): every bf16 "
                        "operation converts to fp32 and back, expect it slower than fp32")

            def run(x):
                with torch.autocast(device.type, dtype=torch.bfloat16):
                    return main_logits(m(x.contiguous(memory_format=torch.channels_last))
                                       ).float()
        else:
            def run(x):
                return main_logits(m(x.contiguous(memory_format=torch.channels_last)))
    elif backend == "fused":
        from ..fuse import fuse

        m = fuse(model)
        note = m.fuse_report.line()

        def run(x):
            return main_logits(m(x))
    elif backend in ("compile", "compile_bf16"):
        run, note = _compiled(model, example, bf16=backend == "compile_bf16")
    elif backend == "int8":
        run, note = _int8(model, example, calibration)
    elif backend in ("ort", "ort_int8"):
        run, note = _onnxruntime(model, example, calibration, backend == "ort_int8", workdir)
    else:
        raise BackendError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    with torch.inference_mode():
        run(example)  # the first call pays for compilation / kernel selection
    return run, time.perf_counter() - t0, note


def _c_compiler() -> str | None:
    import shutil

    for cc in (os.environ.get("CXX"), "g++", "c++", "clang++"):
        if cc and shutil.which(cc):
            return cc
    return None


def _compiled(model, example, bf16: bool = False):
    """torch.compile of the model with its batch norms folded (:func:`cnnlab.fuse`,
    ``channels_last=False``: inductor chooses the layout) with inductor's ``freezing``: the
    weights become constants of the compiled graph, so inductor packs them once into oneDNN's
    layout and fuses each convolution with the activation after it, instead of reordering the
    weights on every call. ``bf16``: the model's weights and
    input in bfloat16 (batch norm folded first, in float32, so no batch norm runs in
    bfloat16), the logits returned as float32."""
    import torch
    import torch._inductor.config as inductor_config

    from ..fuse import fuse
    from ..models.base import main_logits

    on_cpu = example.device.type == "cpu"
    if on_cpu and _c_compiler() is None:
        raise BackendError("torch.compile (inductor) needs a C++ compiler on the CPU and none "
                           "was found (g++, c++, clang++ or $CXX): install one, e.g. "
                           "apt-get install g++")
    # Folded in NCHW: inductor chooses the layout itself (its layout optimisation makes the
    # convolutions channels-last). Channels-last weights given to it make a 1-channel input
    # at batch 1 (a tensor both contiguous and channels-last) fail inductor's stride check.
    m = fuse(model, channels_last=False)
    dtype = torch.bfloat16 if bf16 else torch.float32
    m = m.to(dtype)
    # static shapes: each batch size gets its own graph (bench prepares one per batch size),
    # and inductor packs the frozen weights into oneDNN's layout only for a static shape
    compiled = torch.compile(m, dynamic=False)

    def run(x):
        return main_logits(compiled(x.to(dtype))).float()
    try:
        with inductor_config.patch(freezing=True), torch.inference_mode():
            run(example)  # compiles now, with the weights frozen
    except Exception as err:  # inductor raises many kinds; the table needs the one line
        raise BackendError(f"torch.compile failed on {type(model).__name__}: "
                           f"{_one_line(err)}") from None
    note = "torch.compile, inductor, default mode, freezing"
    if bf16 and on_cpu and not cpu_features()["native bf16"]:
        note += ("; no native bf16 on this CPU (no AVX-512 BF16 / AMX): expect it slower than "
                 "fp32")
    return run, note


class _ReLU(__import__("torch").nn.Module):
    """nn.ReLU as a function call. torch.export groups every call of one module instance into
    one source partition; a ReLU module used twice (ResNet's blocks, as torchvision's) makes
    the x86 quantizer fail ('Input partition has more than one output node')."""

    def __init__(self, six: bool = False):
        super().__init__()
        self.six = six

    def forward(self, x):
        import torch.nn.functional as F

        return F.relu6(x) if self.six else F.relu(x)


def _unshare_activations(model):
    from torch import nn

    for mod in list(model.modules()):
        for name, child in list(mod.named_children()):
            if type(child) in (nn.ReLU, nn.ReLU6):
                setattr(mod, name, _ReLU(type(child) is nn.ReLU6))
    return model


def quantization_api():
    """``(prepare_pt2e, convert_pt2e, X86InductorQuantizer, default config, lower)``: torch 2.13
    no longer ships ``torch.ao.quantization.quantize_pt2e``; the flow lives in torchao."""
    import logging

    # torchao logs every optional CUDA extension it cannot load, and torch a deprecation
    for name in ("torchao", "torch.utils._pytree"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
        from torchao.quantization.pt2e.lowering import lower_pt2e_quantized_to_x86
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    except ImportError:
        try:  # torch before 2.10 or so
            import torch.ao.quantization.quantizer.x86_inductor_quantizer as xiq
            from torch.ao.quantization.quantize_pt2e import convert_pt2e, prepare_pt2e
            lower_pt2e_quantized_to_x86 = None
        except ImportError:
            raise BackendError("int8 needs PyTorch's PT2E quantization, which torch 2.13 moved "
                               "to torchao: pip install 'cnnlab[int8]'") from None
    return (prepare_pt2e, convert_pt2e, xiq.X86InductorQuantizer,
            xiq.get_default_x86_inductor_quantization_config, lower_pt2e_quantized_to_x86)


def _int8(model, example, calibration):
    import copy
    import warnings

    import torch

    from ..models.base import main_logits

    prepare_pt2e, convert_pt2e, Quantizer, default_config, lower = quantization_api()
    m = _unshare_activations(copy.deepcopy(model))
    stage = "export"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph = torch.export.export(m, (example,)).module()
            stage = "quantizer"
            q = Quantizer()
            q.set_global(default_config())
            prepared = prepare_pt2e(graph, q)
            stage = "calibration"
            with torch.no_grad():  # the exported graph keeps the example's batch size
                for xb, _ in _chunks(torch.cat(calibration) if calibration else example,
                                     example.shape[0]):
                    prepared(xb)
            stage = "convert"
            converted = convert_pt2e(prepared)
            stage = "lowering"
            if lower is not None:
                qm = lower(converted, (example,))
                how = "lowered to oneDNN int8 kernels (no C++ compiler needed)"
            else:
                qm = torch.compile(converted)
                how = "torch.compile (inductor) int8"
    except BackendError:
        raise
    except Exception as err:
        raise BackendError(f"int8 (PT2E, X86InductorQuantizer) failed on "
                           f"{type(model).__name__} at {stage}"
                           f"{_layer_in(err, model)}: {_one_line(err)}") from None
    n_q, n_f = _int8_coverage(qm)
    note = f"{how}; {n_q} conv/linear int8" + (f", {n_f} left in float" if n_f else "")

    def run(x):
        return main_logits(qm(x)).float()
    return run, note


def _layer_in(err: BaseException, model) -> str:
    """' (layer NAME)' when the error message names one of the model's modules."""
    import re

    text = str(err)
    names = sorted((n for n, _ in model.named_modules() if n), key=len, reverse=True)
    for n in names:
        if re.search(rf"\b{re.escape(n)}\b", text) or n.replace(".", "_") in text:
            return f" (layer {n})"
    return ""


def _int8_coverage(qm) -> tuple[int, int]:
    """Convolutions/linears running int8 and those left in float, from the lowered graph."""
    import torch

    q = f = 0
    graph = getattr(qm, "graph", None)
    if graph is None:
        return 0, 0
    float_ops = {torch.ops.aten.conv2d.default, torch.ops.aten.linear.default,
                 torch.ops.aten.convolution.default, torch.ops.aten.addmm.default}
    for node in graph.nodes:
        if node.op != "call_function":
            continue
        name = str(node.target)
        if "qconv" in name or "qlinear" in name:
            q += 1
        elif node.target in float_ops:
            f += 1
    return q, f


def _onnxruntime(model, example, calibration, int8: bool, workdir):
    import tempfile
    from pathlib import Path

    import numpy as np
    import torch

    try:
        import onnx  # noqa: F401
        import onnxruntime as ort
    except ImportError:
        raise BackendError("the ONNX Runtime backends need onnx and onnxruntime: "
                           "pip install 'cnnlab[onnx]'") from None
    from ..commands.export import export_file

    folder = Path(workdir or tempfile.mkdtemp(prefix="cnnlab-bench-"))
    path = folder / f"{type(model).__name__}-{id(model)}.onnx"
    try:
        export_file(model, example, "onnx", path, dynamic=True)
    except Exception as err:
        raise BackendError(f"ONNX export of {type(model).__name__} failed: "
                           f"{_one_line(err)}") from None
    note = "ONNX Runtime " + ort.__version__
    if int8:
        from onnxruntime.quantization import (
            CalibrationDataReader,
            QuantFormat,
            QuantType,
            quantize_static,
        )
        from onnxruntime.quantization.shape_inference import quant_pre_process

        batches = [b.numpy() for b in (calibration or [example])]

        class Reader(CalibrationDataReader):
            def __init__(self):
                self.it = iter(batches)

            def get_next(self):
                b = next(self.it, None)
                return None if b is None else {"input": b}

        pre = path.with_suffix(".pre.onnx")
        qpath = path.with_suffix(".int8.onnx")
        try:
            quant_pre_process(str(path), str(pre), skip_symbolic_shape=True)
            quantize_static(str(pre), str(qpath), Reader(), quant_format=QuantFormat.QDQ,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            per_channel=True)
        except Exception as err:
            raise BackendError(f"onnxruntime.quantization failed on {type(model).__name__}: "
                               f"{_one_line(err)}") from None
        path = qpath
        note += ", static QDQ int8 (u8 activations, s8 per-channel weights)"
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def run(x):
        return torch.from_numpy(np.asarray(session.run(None, {name: x.numpy()})[0]))
    return run, note


# ---------------------------------------------------------------------------------------------
# the machine's limit: matrix-multiply peaks

def peak_kernels(precisions=("fp32", "bf16", "int8"), *, size: int = 1024,
                 step_s: float = 0.5, device="cpu") -> dict:
    """``{precision: (f, macs)}``: ``f()`` multiplies two square matrices (``torch.mm`` for fp32
    and bf16, ``torch._int_mm`` int8 x int8 -> int32) of ``macs`` multiply-accumulates, torch's
    own kernels at torch's thread count: the attainable peak of each precision. The side is
    ``size``, halved while one product takes longer than ``step_s`` (a precision without fast
    kernels). A precision this torch build cannot run is left out. On a GPU (``device``) the
    matrices are made there and ``f()`` waits for the product (``synchronize``); the side is
    then 4096 (a GPU needs large products to be busy)."""
    import time

    import torch

    device = torch.device(device)
    sync = _synchronizer(device)
    if device.type != "cpu":
        size = max(size, 4096)
    out = {}
    for prec in precisions:
        def mm(n, prec=prec):
            gen = torch.Generator().manual_seed(0)
            if prec == "int8":
                a = torch.randint(-128, 127, (n, n), dtype=torch.int8, generator=gen).to(device)
                b = torch.randint(-128, 127, (n, n), dtype=torch.int8, generator=gen).to(device)

                def product():
                    torch._int_mm(a, b)
                    sync()
                return product
            dtype = torch.float32 if prec == "fp32" else torch.bfloat16
            a = torch.randn(n, n, generator=gen).to(device, dtype)
            b = torch.randn(n, n, generator=gen).to(device, dtype)

            def product():
                torch.mm(a, b)
                sync()
            return product

        try:
            n = 256
            f = mm(n)
            f()
            t = time.perf_counter()
            f()
            rate = n ** 3 / max(time.perf_counter() - t, 1e-9)
            n = size
            while n > 256 and n ** 3 / rate > step_s:
                n //= 2
            f = mm(n)
            f()
            out[prec] = (f, n ** 3)
        except RuntimeError:  # e.g. no _int_mm kernel for the CPU in this build
            continue
    return out


def _synchronizer(device):
    """A function that waits until ``device`` has finished its queued work (a no-op on the
    CPU): a GPU runs asynchronously, so a clock read without it times the launch only."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def measure_peaks(precisions=("fp32", "bf16", "int8"), *, repeats: int = 5) -> dict[str, float]:
    """MAC/s of :func:`peak_kernels`, median of ``repeats`` (interleaved across precisions)."""
    import statistics
    import time

    kernels = peak_kernels(precisions)
    times: dict[str, list[float]] = {p: [] for p in kernels}
    for _ in range(repeats):
        for p, (f, _) in kernels.items():
            t = time.perf_counter()
            f()
            times[p].append(time.perf_counter() - t)
    return {p: kernels[p][1] / statistics.median(ts) for p, ts in times.items()}


# ---------------------------------------------------------------------------------------------
# the benchmark

@dataclass
class Result:
    model: str
    batch: int
    backend: str
    precision: str
    ms: float | None = None
    runs: int = 0
    setup_s: float | None = None
    agreement: float | None = None     # top-1 agreement with eager fp32 on the fixed images
    logit_error: float | None = None   # |logits - eager's| / |eager's| (L2) on those images
    random_weights: bool = False       # a registered name, not a trained run
    device: str = "cpu"
    accuracy: float | None = None      # % on the run's test split (runs trained by cnnlab)
    macs: int = 0                      # per image
    peak: float | None = None          # MAC/s of this precision's matmul peak
    note: str = ""
    error: str | None = None

    @property
    def images_per_s(self) -> float | None:
        return None if not self.ms else self.batch * 1e3 / self.ms

    @property
    def mac_rate(self) -> float | None:
        return None if not self.ms else self.macs * self.batch * 1e3 / self.ms

    @property
    def fraction_of_peak(self) -> float | None:
        r = self.mac_rate
        return None if r is None or not self.peak or self.peak != self.peak else r / self.peak

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d.update(images_per_s=self.images_per_s, mac_per_s=self.mac_rate,
                 fraction_of_peak=self.fraction_of_peak)
        return d


@dataclass
class Subject:
    """A model to benchmark: a registered name (seeded random weights, the digits images at
    its input) or a run folder (trained weights, the run's own data and preprocessing).

    A registered model's batch norms get their statistics from the calibration images
    (:func:`estimate_bn_stats`): with freshly initialised statistics (mean 0, variance 1) the
    activations of a deep network shrink layer after layer (MobileNet v2's logits are about
    1e-9), int8 rounds them all to zero and top-1 agreement means nothing."""
    name: str
    model: object
    input_size: tuple[int, int, int]
    images: object            # the fixed images for agreement (tensor)
    calibration: list         # batches for int8 calibration
    test: object = None       # (x, y) of a run's test split, for accuracy
    run: str | None = None


def open_subject(source: str, *, images: int = 32, calibration: int = 64,
                 input_size=None, test_images: int | None = None) -> Subject:

    import torch

    from ..data import Prepared, Preprocess, load_data
    from ..registry import create_model, get_entry
    from ..resolve import classify

    if classify(source)[0] != "name":  # the one opener's errors for a bad path or name
        from ..training.runs import open_run

        model, config, pre = open_run(source)
        data = load_data(config.get("data", {}).get("spec", "digits"))
        name, run = config["model"], str(source)
        size = (pre.channels, *pre.size)
    else:
        entry = get_entry(source)  # unknown names: one line with suggestions
        torch.manual_seed(0)
        size = tuple(input_size or entry.input_size)
        model = create_model(source, in_chans=size[0])
        data = load_data("digits")
        pre = Preprocess(size[0], size[1:], (0.5,) * size[0], (0.5,) * size[0])
        name, run = source, None
    model.eval()
    test = Prepared(data.split("test"), pre)
    train = Prepared(data.split("train"), pre)
    fixed, _ = test.batch(list(range(min(images, len(test)))))
    calib, _ = train.batch(list(range(min(calibration, len(train)))))
    if run is None:
        estimate_bn_stats(model, calib.split(16))
    held = None
    if run is not None:
        n = len(test) if test_images is None else min(test_images, len(test))
        held = test.batch(list(range(n)))
    return Subject(name, model, size, fixed, list(calib.split(16)), held, run)


def estimate_bn_stats(model, batches) -> None:
    """Batch-norm running statistics as the average over ``batches`` (train-mode forward
    passes without gradients; no weight changes); the model is left in eval mode."""
    import torch
    from torch import nn

    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        for xb in batches:
            model(xb)
    for m, mom in zip(bns, saved, strict=True):
        m.momentum = mom
    model.eval()


def _chunks(x, batch: int):
    """``x`` in batches of exactly ``batch`` (the last padded by repeating; the padding's
    outputs are dropped): int8 and exported graphs keep the batch size they were made at."""
    import torch

    n = x.shape[0]
    for i in range(0, n, batch):
        xb = x[i:i + batch]
        k = xb.shape[0]
        if k < batch:
            xb = torch.cat([xb, x[:1].expand(batch - k, *x.shape[1:])])
        yield xb, k


def _logits(run, x, batch: int):
    import torch

    out = []
    with torch.inference_mode():
        for xb, k in _chunks(x, batch):
            out.append(run(xb.contiguous())[:k].float().cpu())
    return torch.cat(out)


def bench(sources, *, batches=(1, 32), backends=BACKENDS, repeats: int = 5, warmup: int = 1,
          images: int = 32, peaks: bool = False, input_size=None, progress=None,
          workdir=None, test_images: int | None = None,
          min_round_s: float = 0.05, device="cpu") -> list[Result]:
    """One :class:`Result` per (model, batch, backend). For each model and batch size the
    backends are prepared, then timed in rounds, one step of each backend per round, so that
    a change of the machine's load hits every backend alike; the median of the rounds is
    the figure; a fast backend runs several steps per round (at least ``min_round_s``), so
    that a short step is not lost in the scheduler's noise. ``peaks=True`` times the
    matrix-multiply peak kernels (:func:`peak_kernels`)
    in the same rounds, and each result's ``peak`` is the median MAC/s of its precision's
    kernel in its rounds. A backend that cannot run gives a result with ``error``.

    ``device``: where the model runs (``"cuda"``: the model, the fixed images and a run's test
    images are moved there, every timed step waits for the GPU to finish, the peaks are the
    GPU's; the int8 and ONNX Runtime backends are CPU-only and say so in their row)."""
    import statistics

    import torch

    from .macs import count_macs

    backends = check_backends(backends)
    device = torch.device(device)
    sync = _synchronizer(device)
    kernels = peak_kernels(device=device) if peaks else {}
    results: list[Result] = []
    for source in sources:
        subj = open_subject(source, images=images, input_size=input_size,
                            test_images=test_images)
        macs = count_macs(subj.model, subj.input_size).macs
        if device.type != "cpu":  # the int8 calibration batches stay: int8 is CPU-only
            subj.model.to(device)
            subj.images = subj.images.to(device)
            if subj.test is not None:
                subj.test = (subj.test[0].to(device), subj.test[1])
        for batch in batches:
            reps = (subj.images.repeat((batch + images - 1) // images, 1, 1, 1)[:batch]
                    if batch > subj.images.shape[0] else subj.images[:batch]).contiguous()
            rows = {b: Result(subj.name, batch, b, PRECISION[b], macs=macs, device=str(device),
                              random_weights=subj.run is None) for b in backends}
            results.extend(rows.values())
            ready = _prepare_rows(subj, batch, rows, reps, workdir, progress)
            times, peak_times = _timed_rounds(ready, reps, kernels, repeats, warmup,
                                              min_round_s, sync, progress,
                                              f"{subj.name} batch {batch}")
            for b, ts in times.items():
                rows[b].ms, rows[b].runs = statistics.median(ts) * 1e3, len(ts)
            for r in rows.values():
                if r.precision in peak_times:
                    r.peak = kernels[r.precision][1] / statistics.median(peak_times[r.precision])
    return results


def _prepare_rows(subj: Subject, batch: int, rows: dict[str, Result], reps, workdir,
                  progress) -> dict:
    """Prepare each backend of ``rows`` for ``batch`` (a failure is its row's ``error``), and
    fill its setup time, note, top-1 agreement and logit error against eager fp32 on the fixed
    images, and a run's test accuracy. Returns ``{backend: run}`` of those that can run."""
    ready, ref = {}, None
    for b, r in rows.items():
        if progress:
            progress(f"{subj.name} batch {batch}: preparing {b}")
        try:
            run, setup, note = prepare(b, subj.model, reps, subj.calibration, workdir)
        except BackendError as err:
            r.error = str(err)
            continue
        r.setup_s, r.note = setup, note
        logits = _logits(run, subj.images, batch)
        if b == "eager" or ref is None and "eager" not in rows:
            ref = logits
        if ref is not None:
            r.agreement = (logits.argmax(1) == ref.argmax(1)).float().mean().item()
            r.logit_error = ((logits - ref).norm() / ref.norm().clamp_min(1e-30)).item()
        if subj.test is not None:
            x, y = subj.test
            pred = _logits(run, x, batch).argmax(1)
            r.accuracy = 100.0 * (pred == y).float().mean().item()
        ready[b] = run
    return ready


def _timed_rounds(ready: dict, reps, kernels: dict, repeats: int, warmup: int,
                  min_round_s: float, sync, progress, what: str) -> tuple[dict, dict]:
    """Seconds per step of each backend, one list entry per round (one step of each backend a
    round, or several for a fast one: a round lasts at least ``min_round_s``), and the matmul
    peak kernels' seconds in the same rounds."""
    import time

    import torch

    times = {b: [] for b in ready}
    peak_times = {p: [] for p in kernels}
    inner = dict.fromkeys(ready, 1)  # steps per round
    with torch.inference_mode():
        for _ in range(max(warmup, 1)):
            for b, run in ready.items():
                sync()
                t = time.perf_counter()
                run(reps)
                sync()
                inner[b] = max(1, math.ceil(min_round_s / (time.perf_counter() - t)))
        for i in range(repeats):
            if progress:
                progress(f"{what}: round {i + 1}/{repeats}")
            for b, run in ready.items():
                sync()
                t = time.perf_counter()
                for _ in range(inner[b]):
                    run(reps)
                sync()
                times[b].append((time.perf_counter() - t) / inner[b])
            for p, (f, _) in kernels.items():
                t = time.perf_counter()
                f()
                peak_times[p].append(time.perf_counter() - t)
    return times, peak_times


def pick(results: list[Result], *, min_agreement: float = 0.97,
         max_accuracy_drop: float = 0.5) -> dict[tuple[str, int], Result]:
    """The fastest backend per (model, batch) that keeps top-1: agreement with eager fp32 at
    least ``min_agreement`` and, where a test accuracy was measured, at most
    ``max_accuracy_drop`` points below eager's."""
    best: dict[tuple[str, int], Result] = {}
    eager = {(r.model, r.batch): r for r in results if r.backend == "eager"}
    for r in results:
        if r.ms is None or r.agreement is None or r.agreement < min_agreement:
            continue
        e = eager.get((r.model, r.batch))
        if (r.accuracy is not None and e is not None and e.accuracy is not None
                and e.accuracy - r.accuracy > max_accuracy_drop):
            continue
        key = (r.model, r.batch)
        if key not in best or r.ms < best[key].ms:
            best[key] = r
    return best


def pick_caveats(results: list[Result], best: dict, *, min_agreement: float = 0.97
                 ) -> list[str]:
    """One line per random-weight model whose faster backends missed the agreement only:
    with random weights the logits are nearly tied, so a rounding that changes nothing that
    matters on a trained model (bf16, int8) flips the top-1 of many images."""
    lines = []
    for (model, batch), chosen in best.items():
        missed = [r for r in results if r.model == model and r.batch == batch and r.ms
                  and r.random_weights and r.ms < chosen.ms and r.agreement is not None
                  and r.agreement < min_agreement]
        if missed:
            lines.append(
                f"{model} has random weights: its logits are nearly tied, so "
                + ", ".join(f"{r.backend} ({100 * r.agreement:.0f}%, logit err "
                            f"{r.logit_error:.1e})" for r in missed)
                + f" missed {100 * min_agreement:.0f}% top-1 agreement at batch {batch}; "
                "bench a trained run (a run folder) to judge them")
    return lines


def format_results(results: list[Result], markdown: bool = False) -> str:
    from ..training.metrics import format_table, markdown_table

    eager = {(r.model, r.batch): r.ms for r in results if r.backend == "eager"}
    head = ["model", "batch", "backend", "ms/step", "images/s", "x eager", "setup s",
            "top-1 agree", "logit err", "test acc %", "GMAC/s", "% of peak"]
    rows = []
    for r in results:
        if r.error:
            rows.append([r.model, r.batch, r.backend] + ["-"] * (len(head) - 3))
            continue
        e = eager.get((r.model, r.batch))
        frac = r.fraction_of_peak
        rows.append([r.model, r.batch, r.backend, f"{r.ms:.2f}", f"{r.images_per_s:.1f}",
                     f"{e / r.ms:.2f}" if e else "-",
                     f"{r.setup_s:.1f}",
                     "-" if r.agreement is None else f"{100 * r.agreement:.0f}%",
                     "-" if r.logit_error is None else f"{r.logit_error:.1e}",
                     "-" if r.accuracy is None else f"{r.accuracy:.2f}",
                     f"{r.mac_rate / 1e9:.1f}",
                     "-" if frac is None else f"{100 * frac:.0f}% {r.precision}"])
    table = (markdown_table if markdown else format_table)(head, rows)
    notes = [f"- {r.model} {r.backend}: {r.error or r.note}" for r in results
             if (r.error or r.note) and r.batch == results[0].batch]
    return table + ("\n\n" + "\n".join(notes) if notes else "")


def peak_line(results: list[Result]) -> str:
    """The matmul peaks measured in the rounds (median over the model/batch groups)."""
    import statistics

    by: dict[str, list[float]] = {}
    for r in results:
        if r.peak:
            by.setdefault(r.precision, []).append(r.peak)
    return ("% of peak: achieved MAC/s over the matrix-multiply peak of the backend's precision "
            "(torch.mm fp32/bf16, torch._int_mm int8, square matrices), timed in the same "
            "rounds: " + ", ".join(f"{p} {statistics.median(v) / 1e9:.1f} GMAC/s"
                                   for p, v in by.items()))


def timed_with_backend(name: str, backend: str, *, batch: int, repeats: int = 5,
                       warmup: int = 1) -> tuple[str, float, int]:
    """``(backend, ms per step, runs)`` of model ``name`` for ``compare --backend``; ``"auto"``
    benchmarks every backend and takes :func:`pick`'s (eager if none keeps top-1)."""
    names = list(BACKENDS) if backend == "auto" else ["eager", *check_backends([backend])]
    results = bench([name], batches=[batch], backends=names, repeats=repeats, warmup=warmup)
    if backend == "auto":
        chosen = pick(results).get((name, batch)) or results[0]
    else:
        chosen = next(r for r in results if r.backend == backend)
        if chosen.error:
            raise BackendError(chosen.error)
    return chosen.backend, chosen.ms, chosen.runs
