"""Inference backends side by side: what the machine is, and how fast each backend runs.

This module starts with the machine: the CPU features that decide which backend can be fast
(:func:`cpu_features`, from ``/proc/cpuinfo``) and a header (:func:`machine_lines`: CPU,
cores, load average, torch threads, versions) printed beside every figure, because timings on
a shared machine swing with its load.
"""

from __future__ import annotations

import os
import platform

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


def machine_lines() -> list[str]:
    """Lines for a results header: CPU, cores, load, threads, versions, features."""
    import torch

    model, _ = _cpuinfo()
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    lines = [f"CPU: {model}; {os.cpu_count()} cores; load average {load[0]:.2f} "
             f"{load[1]:.2f} {load[2]:.2f}; torch threads {torch.get_num_threads()}",
             f"versions: python {platform.python_version()}, torch {torch.__version__}"
             + "".join(f", {n} {v}" for n, v in _versions().items()),
             feature_line()]
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
