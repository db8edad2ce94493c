"""Timing an inference step: warm-up, synchronisation, the median of several runs.

The figure is the wall-clock time of one forward pass of a batch in eval mode under
``torch.inference_mode``, in milliseconds: the median of ``repeats`` runs after ``warmup``
runs that are not timed (they pay for memory allocation and kernel selection). On CUDA every
run is bracketed by ``torch.cuda.synchronize()``. The CPU thread count is whatever
``torch.get_num_threads()`` says, and is reported with the figure. A ``time_budget_s`` caps
the total: after the first (warm-up) step has shown how long a step takes, the number of
timed runs is cut so that the whole measurement fits, but never below one.
"""

from __future__ import annotations

import platform
import statistics
import time
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import UsageError


@dataclass(frozen=True)
class Timing:
    median_ms: float
    runs: int
    warmup: int
    batch: int
    device: str
    threads: int


def check_device(device: str) -> torch.device:
    """``torch.device(device)``, or a ``ValueError`` saying why it cannot be used here."""
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise UsageError(f"unknown device {device!r}; use cpu or cuda") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"device {device!r} is not available: this torch build "
                             f"({torch.__version__}) sees no CUDA GPU; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UsageError(f"device {device!r} is not available: there are "
                             f"{torch.cuda.device_count()} CUDA devices")
    elif dev.type != "cpu":
        raise UsageError(f"device {device!r} is not supported; use cpu or cuda")
    return dev


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _check_batch_fits(model: nn.Module, input_size, batch: int) -> None:
    """Refuse a batch whose input cannot fit, with the output of the first layer beside it
    (at least as large for every model here): a lower bound, before anything is allocated."""
    import math

    from ..memory import check_fits, parameter_count

    name = getattr(model, "model_name", type(model).__name__)
    inputs = batch * math.prod(input_size) * 4
    check_fits(2 * inputs + parameter_count(model) * 4,
               f"running {name} on a batch of {batch} at {'x'.join(map(str, input_size))}",
               "use a smaller --batch")


def time_inference(model: nn.Module, input_size, *, batch: int = 32, device: str = "cpu",
                   repeats: int = 10, warmup: int = 2, time_budget_s: float | None = None,
                   seed: int = 0, channels_last: bool = False, amp: str | None = None
                   ) -> Timing:
    """Median milliseconds of one forward pass of ``batch`` inputs (eval, inference mode).

    The model is moved to ``device`` and put in eval mode (its previous mode is restored).
    The input is seeded random normal data from a private generator; the caller's RNG state
    is not touched. ``channels_last`` converts the model and the input to the channels-last
    memory format (the model stays converted); ``amp="bf16"`` runs the forward pass under
    ``torch.autocast`` in bfloat16 (see :func:`inference_context`).
    """
    if batch < 1 or repeats < 1 or warmup < 0:
        raise UsageError(f"batch and repeats must be >= 1 and warmup >= 0, got batch={batch}, "
                         f"repeats={repeats}, warmup={warmup}")
    dev = check_device(device)
    _check_batch_fits(model, input_size, batch)
    was_training = model.training
    model.to(dev).eval()
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, *input_size, generator=gen).to(dev)
    if channels_last:
        model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    times = []
    try:
        with torch.inference_mode(), inference_context(dev, amp):
            for i in range(max(warmup, 1) + repeats):
                _sync(dev)
                t0 = time.perf_counter()
                model(x)
                _sync(dev)
                dt = time.perf_counter() - t0
                if i == 0 and time_budget_s is not None:
                    fit = int(time_budget_s / max(dt, 1e-9)) - max(warmup, 1)
                    repeats = max(1, min(repeats, fit))
                if i >= max(warmup, 1):
                    times.append(dt)
                if len(times) >= repeats:
                    break
    finally:
        model.train(was_training)
    return Timing(statistics.median(times) * 1e3, len(times), max(warmup, 1), batch, str(dev),
                  torch.get_num_threads())


AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def inference_context(device, amp: str | None):
    """``torch.autocast`` for ``amp`` ("bf16" or "fp16") on ``device``, or a no-op for None."""
    import contextlib

    if amp is None:
        return contextlib.nullcontext()
    if amp not in AMP_DTYPES:
        raise UsageError(f"amp must be one of {', '.join(AMP_DTYPES)}, got {amp!r}")
    return torch.autocast(torch.device(device).type, dtype=AMP_DTYPES[amp])


def machine_description(device: str = "cpu") -> str:
    """CPU model (or GPU name), thread count, torch version: for the table's header."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    text = f"CPU: {cpu}, torch threads: {torch.get_num_threads()}, torch {torch.__version__}"
    if device.startswith("cuda") and torch.cuda.is_available():
        text += f", GPU: {torch.cuda.get_device_name(torch.device(device))}"
    return text
