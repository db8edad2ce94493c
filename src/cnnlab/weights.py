"""Saving and loading weights: safetensors (no pickle) and the run folder's model.

A finished run folder holds ``model.safetensors`` (the weights) and ``config.json``, a small
JSON file with at least::

    {"model": "lenet5",                     # registry name
     "model_kwargs": {"num_classes": 10, "in_chans": 1},
     "input_size": [1, 32, 32],             # C, H, W the model was trained at
     "classes": ["0", "1", ...],            # class names, index order
     "mean": [0.5], "std": [0.5]}           # input normalisation used in training

:func:`load_run_model` rebuilds the model from that and loads the weights with
``strict=True``. Anything that does not fit raises :class:`~cnnlab.errors.CheckpointError`.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from .errors import CheckpointError, CnnlabError, file_problem, user_files
from .pretrained import CONFIG_FILE, WEIGHTS_FILE, convert_layout, read_weights


@contextmanager
def interrupts_deferred():
    """Hold Ctrl-C (SIGINT) back until the block has ended, then raise ``KeyboardInterrupt``.

    A Ctrl-C inside a writer such as ``torch.save`` leaves it half-way, and its clean-up then
    fails with an error of its own ("unexpected pos ...") that hides the interrupt: the user
    got a traceback instead of the one line that says how to resume. With this, the file is
    finished (2.5 ms for a LeNet-5 checkpoint; longer for a large model) and the interrupt
    arrives just after. An error inside the block is raised as it is. Only in the main thread
    and only while Python's own SIGINT handler is installed; otherwise nothing changes."""
    import signal
    import threading

    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return
    caught: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if caught:
        raise KeyboardInterrupt


def _umask() -> int:
    """The process's umask, read without changing it where Linux shows it (/proc/self/status;
    ``os.umask`` can only be read by setting it, which races with other threads)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_write(path: str | os.PathLike, durable: bool = True):
    """Open a temporary file next to ``path`` for binary writing; on success fsync it and
    rename it to ``path``, so that a reader (or a crash) never sees a half-written file. The
    caller streams into the file: nothing is built in memory first. ``durable=False`` skips
    the fsync (the rename is still atomic for readers; after a power cut the file may be
    older or empty): for files that something else can restore. A Ctrl-C while the file is
    written takes effect once it is in place (:func:`interrupts_deferred`). The file gets the
    mode ``open()`` would give it (0666 less the umask), not the temporary file's 0600."""
    path = Path(path)
    with user_files():
        path.parent.mkdir(parents=True, exist_ok=True)
    with interrupts_deferred():
        try:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        except OSError as err:  # the user's file, not the temporary one, in the message
            raise _naming(err, path) from None
        try:
            os.fchmod(fd, 0o666 & ~_umask())  # mkstemp's 0600 kept others out of run files
            with os.fdopen(fd, "wb") as f:
                yield f
                f.flush()
                if durable:
                    os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as err:
            Path(tmp).unlink(missing_ok=True)
            if isinstance(err, CnnlabError):
                raise
            if err.errno is not None and (tmp in (err.filename, err.filename2)
                                          or err.filename is None):
                raise _naming(err, path) from None
            raise file_problem(err) from err
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _naming(err: OSError, path: Path) -> OSError:
    """``err`` with ``path`` as its file (it named atomic_write's temporary file, or none), as
    the one-line :class:`~cnnlab.errors.FileProblemError` of a user's file."""
    return file_problem(err, path)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, durable: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path, durable) as f:
        f.write(data)


# torch dtype -> safetensors dtype name (the format's spec); others fall back to the library.
_ST_DTYPES = {"float64": "F64", "float32": "F32", "float16": "F16", "bfloat16": "BF16",
              "int64": "I64", "int32": "I32", "int16": "I16", "int8": "I8", "uint8": "U8",
              "bool": "BOOL"}


def write_safetensors(f, tensors: dict[str, torch.Tensor]) -> None:
    """Write ``tensors`` to the open binary file ``f`` in the safetensors format, one tensor
    at a time (an 8-byte header length, a JSON header padded to 8 bytes, then the raw
    little-endian data in header order): the peak memory is one tensor, not the whole file."""
    import sys

    if sys.byteorder != "little":  # pragma: no cover - the format is little-endian
        raise RuntimeError("write_safetensors needs a little-endian machine")
    header, offset = {}, 0
    for name, t in tensors.items():
        n = t.numel() * t.element_size()
        header[name] = {"dtype": _ST_DTYPES[str(t.dtype).removeprefix("torch.")],
                        "shape": list(t.shape), "data_offsets": [offset, offset + n]}
        offset += n
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    f.write(len(text).to_bytes(8, "little"))
    f.write(text)
    for t in tensors.values():
        if t.numel():
            f.write(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().data)


def save_weights(model: nn.Module, path: str | os.PathLike, durable: bool = True) -> None:
    """Save the model's state_dict as safetensors, atomically, streamed to the file
    (``durable``: see :func:`atomic_write`)."""
    state = model.state_dict()
    if all(str(v.dtype).removeprefix("torch.") in _ST_DTYPES for v in state.values()):
        with atomic_write(path, durable) as f:
            write_safetensors(f, state)
        return
    from safetensors.torch import save

    state = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    atomic_write_bytes(path, save(state), durable)


def load_weights(model: nn.Module, path: str | os.PathLike, strict: bool = True, *,
                 allow_nonfinite: bool | None = None) -> nn.Module:
    """Load a state_dict file into ``model`` key for key; mismatches raise
    :class:`CheckpointError`.

    safetensors and PyTorch files (read with ``weights_only=True``, containers unwrapped, see
    :func:`cnnlab.pretrained.read_weights`); a layout the model's family converts (timm's, see
    :func:`cnnlab.pretrained.convert_layout`) is converted first. To replace the classifier or
    adapt the first convolution, use :func:`cnnlab.load_pretrained`.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no weights file at {path}")
    state, _ = convert_layout(read_weights(path, allow_nonfinite=allow_nonfinite).state,
                              model)  # NaN/inf: refused
    try:
        model.load_state_dict(state, strict=strict)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[:3]
        raise CheckpointError(f"{path} does not fit the model: {' '.join(first)}; "
                              "cnnlab.load_pretrained adapts the classifier and stem") from None
    return model


def save_run_model(run_dir: str | os.PathLike, model: nn.Module, config: dict) -> None:
    """Write ``model.safetensors`` and ``config.json`` into ``run_dir`` (atomically)."""
    run_dir = Path(run_dir)
    save_weights(model, run_dir / WEIGHTS_FILE)
    atomic_write_bytes(run_dir / CONFIG_FILE, json.dumps(config, indent=2).encode())


def read_run_config(run_dir: str | os.PathLike) -> dict:
    run_dir = Path(run_dir)
    cfg_path = run_dir / CONFIG_FILE
    if not cfg_path.is_file():
        raise CheckpointError(f"{run_dir} is not a cnnlab run: it has no {CONFIG_FILE}")
    try:
        config = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{cfg_path} is not valid JSON: {err}") from None
    if not isinstance(config, dict) or "model" not in config:
        raise CheckpointError(f"{cfg_path} does not name a model (no 'model' key)")
    return config


def load_run_model(run_dir: str | os.PathLike, map_location: str | torch.device = "cpu"):
    """Rebuild the model of a run folder and load its (raw) weights; returns
    ``(model, config)``, the config checked against the run-config schema. The one opener of
    every kind of model source (names, checkpoints, EMA weights, scratch runs) is
    :func:`cnnlab.resolve.open_source`, a layer above this one."""
    from .build import build_model
    from .training.schema import check_model_outputs, validate_run_config

    run_dir = Path(run_dir)
    if not (run_dir / CONFIG_FILE).is_file():
        raise CheckpointError(f"{run_dir} is not a cnnlab run: it has no {CONFIG_FILE}")
    config = validate_run_config(read_run_config(run_dir), run_dir / CONFIG_FILE)
    model = build_model(config["model"], **config.get("model_kwargs", {}))
    load_weights(model, run_dir / WEIGHTS_FILE)
    model = model.to(map_location).eval()
    check_model_outputs(model, config, run_dir)
    return model, config
