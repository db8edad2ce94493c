"""Refusing work that cannot fit in memory, before anything is allocated.

A size that cannot fit (``--input-size 3x100000x100000``, ``--model-arg width_mult=1e9``,
``--batch 100000000``, a 100001x100001 filter kernel) used to end in the allocator's traceback
("you tried to allocate 120000000000 bytes") after minutes of work, or worse, in swapping.
The shapes are known before anything is allocated: the model is built on the meta device
(its parameters counted) and traced there (every layer's output shape, see
:func:`cnnlab.analysis.macs.trace`). :func:`check_fits` compares such an estimate with the
memory the machine has available and raises :class:`~cnnlab.errors.ResourceError` (one line,
exit 2) naming both.

The estimates are lower bounds (they count what must exist, not what an allocator wastes),
so a refusal is certain; a run that passes may still fail, and that failure is one line too
(``cnnlab.cli`` turns allocation errors into :class:`ResourceError`'s message form).
"""

from __future__ import annotations

import math
import os
import re

from .errors import ResourceError

_FLOAT = 4  # bytes of a float32


def available_bytes() -> int | None:
    """Memory a new allocation can get without swapping: ``MemAvailable`` of /proc/meminfo
    (Linux), else the free physical pages (``os.sysconf``); None where neither exists."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def human_bytes(n: float) -> str:
    """``120000000000`` -> ``"111.8 GiB"``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover


def check_fits(needed: int, what: str, fix: str, available: int | None = None) -> None:
    """Raise :class:`ResourceError` when ``needed`` bytes exceed the available memory.

    ``what`` says what needs the memory ("training lenet5 at 3x100000x100000, batch 16"),
    ``fix`` what to change ("use a smaller --input-size or --batch-size")."""
    available = available_bytes() if available is None else available
    if available is None or needed <= available:
        return
    raise ResourceError(f"{what} needs at least {human_bytes(needed)} of memory; this machine "
                        f"has {human_bytes(available)} available: {fix}")


_ALLOC = re.compile(r"(?:tried to allocate|Unable to allocate)\s+([\d.]+)\s*(\w+)?")
_UNITS = {"bytes": 1, "b": 1, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
          "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12}


def allocation_failure(err: BaseException) -> str | None:
    """One line for an allocation that failed (torch's "you tried to allocate", NumPy's
    ``_ArrayMemoryError``, a plain ``MemoryError``); None when ``err`` is something else."""
    text = str(err)
    is_torch = isinstance(err, RuntimeError) and (
        "tried to allocate" in text or "can't allocate memory" in text
        or "out of memory" in text.lower() or "size calculation overflowed" in text)
    is_numpy = isinstance(err, ValueError) and (  # sizes past what an address can hold
        "array is too big" in text or "maximum allowed dimension exceeded" in text.lower())
    if not (isinstance(err, MemoryError) or is_torch or is_numpy):
        return None
    m = _ALLOC.search(text)
    size = ""
    if m:
        n = float(m.group(1)) * _UNITS.get((m.group(2) or "bytes").lower(), 1)
        size = f" ({human_bytes(n)} in one piece"
        available = available_bytes()
        size += f"; {human_bytes(available)} available)" if available else ")"
    return (f"not enough memory{size}: use smaller sizes (input size, batch, model width, "
            "kernel size) or a machine with more memory")


# ------------------------------------------------------------------------ model estimates
def _meta_model(name: str, kwargs: dict, what: str, fix: str):
    """The model built on the meta device (nothing allocated), or a ResourceError when even
    its parameter count overflows; None when it cannot be built there (the real build then
    reports whatever is wrong, as before)."""
    import torch

    from .registry import create_model

    try:
        with torch.device("meta"):
            return create_model(name, **kwargs)
    except RuntimeError as err:
        if "overflow" in str(err).lower():
            available = available_bytes()
            has = f"this machine has {human_bytes(available)} available" if available else ""
            raise ResourceError(f"{what} with {_args(kwargs)} needs more than 2^63 parameters, "
                                f"more memory than any machine has ({has}): {fix}") from None
        return None
    except Exception:
        return None


def _args(kwargs: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in kwargs.items()) or "its defaults"


def parameter_count(model) -> int:
    """Parameters and buffers as a Python int (no int64 overflow for absurd widths)."""
    seen, n = set(), 0
    for t in list(model.parameters()) + list(model.buffers()):
        if id(t) not in seen:
            seen.add(id(t))
            n += math.prod(t.shape)
    return n


def activation_counts(model, input_size) -> tuple[int, int] | None:
    """``(sum, largest)`` of the output elements of the layers that hold parameters, for one
    input of ``input_size`` (batch 1), traced on the meta device; None if it cannot be traced.
    What backpropagation keeps is at least the sum; evaluation needs at least the largest."""
    from .analysis.macs import trace

    try:
        t = trace(model, tuple(input_size))
    except Exception:
        return None
    modules = dict(model.named_modules())
    total = largest = 0
    for name, rec in t.modules.items():
        m = modules.get(name)
        if m is None or list(m.children()) or not any(True for _ in m.parameters(False)):
            continue
        for shape in rec.output_shapes:
            shapes = shape if shape and isinstance(shape[0], tuple) else (shape,)
            for s in shapes:
                n = math.prod(s[1:]) if s else 0  # per sample
                total += n
                largest = max(largest, n)
    return total, largest


def check_training_fits(name: str, kwargs: dict, input_size, batch_size: int,
                        optimizer: str = "sgd") -> None:
    """Refuse a training run whose parameters, gradients, optimizer state and one batch's
    activations cannot fit (see the module's docstring)."""
    size = "x".join(str(s) for s in input_size)
    c, h, w = input_size
    inputs = batch_size * c * h * w * _FLOAT
    what = f"training {name} at {size}, batch {batch_size}"
    fix = "use a smaller --input-size, --batch-size or --model-arg"
    check_fits(inputs, what, fix)  # before even the meta model: an absurd size ends here
    model = _meta_model(name, kwargs, what, fix)
    if model is None:
        return
    copies = {"sgd": 3, "adam": 4, "adamw": 4}.get(optimizer, 3)  # weights, grads, state
    params = parameter_count(model) * _FLOAT * copies
    check_fits(params + inputs, what, fix)
    acts = activation_counts(model, input_size)
    if acts is not None:
        check_fits(params + inputs + acts[0] * batch_size * _FLOAT, what, fix)


def check_inference_fits(name: str, model, input_size, batch: int, fix: str) -> None:
    """Refuse a forward pass of ``batch`` inputs of ``input_size`` through ``model`` (built
    on the meta device) that cannot fit: weights, the input and the largest layer output."""
    c, h, w = input_size
    size = "x".join(str(s) for s in input_size)
    inputs = batch * c * h * w * _FLOAT
    what = f"running {name} on a batch of {batch} at {size}"
    check_fits(inputs, what, fix)
    params = parameter_count(model) * _FLOAT
    acts = activation_counts(model, input_size)
    largest = acts[1] * batch * _FLOAT if acts else 0
    check_fits(params + inputs + largest, what, fix)
