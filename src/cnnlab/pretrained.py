"""Starting from existing weights: read a file, find what it is, load it into a model.

Files come from the user (nothing is downloaded): a torchvision or timm download, a colleague's
checkpoint, an earlier cnnlab run. :func:`read_weights` reads

* safetensors files (no code can hide in them), and
* PyTorch files (``.pth``, ``.pt``, ``.bin``, ``.ckpt``), always with
  ``torch.load(weights_only=True)``: a file that needs arbitrary unpickling (a pickled
  ``nn.Module``, a hostile ``__reduce__``) is refused, never run. The one class allowed beyond
  torch's own list is ``argparse.Namespace``, for the training checkpoints of timm's
  ``train.py`` and torchvision's ``references/classification/train.py`` (they save the
  command line's ``args``), only for the duration of the load (torch's ``safe_globals``), and
  only holding plain values (numbers, strings, None, and lists, tuples, dicts of them);
* a cnnlab run folder (its ``model.safetensors``, else its ``checkpoint.pt``).

The format is recognised from the file's first bytes, not its name. The usual containers are
unwrapped (``{"state_dict": ...}``, ``{"model": ...}``, ``{"model_ema": ...}``,
``{"state_dict_ema": ...}``; the non-EMA weights win when a file holds both), ``module.``
(DataParallel / DDP) and ``_orig_mod.`` (``torch.compile``) prefixes are stripped.

Other layouts of the same architecture are converted by the model's family: a model class may
declare ``checkpoint_filter(state, model) -> (state, notes)`` (timm's ``checkpoint_filter_fn``
idea): it returns ``state`` in the model's own layout, or unchanged when it is not a layout the
family knows, and lines that say what was converted and what differs (``model`` may be on the
meta device). :func:`load_pretrained`, :func:`create_pretrained` and the matching call it for
every model; nothing here knows a family (timm's MobileNet v2/v3, EfficientNet and VGG files
are converted in ``models/mobilenet.py``, ``models/efficientnet.py``, ``models/vgg.py``, the
old ``norm.1`` key names of torchvision's DenseNet files in ``models/densenet.py``).

:func:`load_pretrained` then loads the state into a model, adapting two things a
practitioner changes on purpose:

* **the classifier**: when the file's class count differs from the model's, every key under
  the model's classifier (``get_classifier()``, auxiliary heads too) keeps the model's fresh
  initialisation, and one line says which keys were replaced: ``fc.weight 1000x2048 ->
  10x2048``;
* **the first convolution**, when the input channels differ (:func:`adapt_input_conv`).

Every other key must be there with its shape; otherwise one :class:`CheckpointError` lists
what is missing, unexpected or of another shape, says which layout the model expects and
which registered architectures the file does match.
"""

from __future__ import annotations

import argparse
import contextvars
import hashlib
import json
import math
import pickle
import re
import sys
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from .build import build_model, skipped_init
from .errors import CheckpointError
from .registry import get_entry, list_models

WEIGHTS_FILE = "model.safetensors"   # a cnnlab run folder's weights (cnnlab.weights writes it)
CONFIG_FILE = "config.json"          # and its settings
CONTAINER_KEYS = ("state_dict", "model", "model_ema", "state_dict_ema")
STRIP_PREFIXES = ("module.", "_orig_mod.")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Builds a candidate with this many classes, so the class-width tensors stand out by shape.
_CLASS_PROBE = 997
_BUFFER_SUFFIXES = (".running_mean", ".running_var", ".num_batches_tracked")


@dataclass
class WeightsFile:
    """A state_dict read from a file, and what is known about where it came from."""

    path: Path                     # the file actually read
    state: dict[str, torch.Tensor]
    format: str                    # "safetensors" or "pytorch"
    container: str                 # how the state_dict was stored, in words
    sha256: str
    size_bytes: int
    run_config: dict | None = None  # a cnnlab run's config.json (run folders, checkpoints)
    notes: list[str] = field(default_factory=list)


@dataclass
class LoadReport:
    """What :func:`load_pretrained` did."""

    file: WeightsFile
    replaced: list[str] = field(default_factory=list)   # classifier keys freshly initialised
    stem: str | None = None                              # how the first conv was adapted
    notes: list[str] = field(default_factory=list)       # every line that was logged


@dataclass(frozen=True)
class Match:
    """A registered architecture whose state_dict a file fits (classifier width aside)."""

    model: str
    kwargs: dict
    num_classes: int | None      # the file's classifier width (None: the file has no head)
    in_chans: int | None


# --------------------------------------------------------------------------- reading

def sha256_of(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_sha256(path: Path, actual: str, expected: str | None) -> None:
    """Refuse ``path`` unless its SHA-256 is ``expected`` (the whole hash, or a prefix of at
    least 8 hex digits as in torchvision's file names ``resnet50-0676ba61.pth``)."""
    if expected is None:
        return
    want = str(expected).strip().lower().removeprefix("sha256:")
    if not re.fullmatch(r"[0-9a-f]{8,64}", want):
        raise CheckpointError(f"{expected!r} is not a SHA-256: give its 64 hex digits (or at "
                              "least the first 8)")
    if not actual.startswith(want):
        raise CheckpointError(f"{path}: SHA-256 is {actual}, not {want}; the file is not the "
                              "one you expected (re-download or copy it again)")


def _sniff(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(9)
    if head[:4] == b"PK\x03\x04":
        return "pytorch"                       # torch.save's zip format
    if head[:1] == b"\x80" and len(head) > 1 and head[1] <= 5:
        return "pytorch"                       # torch.save's legacy (pickle) format
    if head[:4] == b"\x89HDF":
        return "hdf5"
    if len(head) == 9 and head[8:9] == b"{":
        return "safetensors"                   # 8-byte header length, then a JSON header
    if path.suffix == ".safetensors":
        return "safetensors"
    if path.suffix in (".pth", ".pt", ".bin", ".ckpt", ".tar"):
        return "pytorch"
    return "unknown"


def locate_weights(path: Path) -> tuple[Path, dict | None]:
    """The file to read for a weights ``path`` (a file, or a run folder's weights) and the
    run's raw config when it is (in) a cnnlab run: what :func:`read_weights` reads (and
    :mod:`cnnlab.resolve`, the one opener, for ``--weights``)."""
    if not path.exists():
        raise CheckpointError(f"{path} does not exist; give a .safetensors/.pth/.pt/.bin file "
                              "or a cnnlab run folder")
    run_dir = path if path.is_dir() else path.parent
    config = None
    if (run_dir / CONFIG_FILE).is_file() and (path.is_dir() or path.name in
                                               (WEIGHTS_FILE, "checkpoint.pt")):
        try:
            config = json.loads((run_dir / CONFIG_FILE).read_text())
        except (json.JSONDecodeError, UnicodeDecodeError, OSError):
            config = None
    if path.is_dir():
        for name in (WEIGHTS_FILE, "checkpoint.pt"):
            if (path / name).is_file():
                return path / name, config
        raise CheckpointError(f"{path} is a folder without {WEIGHTS_FILE} or checkpoint.pt; "
                              "give a weights file or a cnnlab run folder")
    return path, config


# What an argparse.Namespace in a training checkpoint may hold.
_PLAIN = (type(None), bool, int, float, complex, str, bytes)


def _plain(value, depth: int = 0) -> bool:
    if isinstance(value, _PLAIN):
        return type(value) in _PLAIN  # not a subclass with behaviour of its own
    if depth < 8 and type(value) in (list, tuple, set, frozenset):
        return all(_plain(v, depth + 1) for v in value)
    if depth < 8 and type(value) is dict:
        return all(_plain(k, depth + 1) and _plain(v, depth + 1) for k, v in value.items())
    return False


def _namespaces(obj, where: str = "", depth: int = 0):
    """(place, Namespace) for each argparse.Namespace in the loaded object."""
    if type(obj) is argparse.Namespace:
        yield where or "the file", obj
    elif depth < 6 and isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(v, torch.Tensor):
                yield from _namespaces(v, f"{where}[{k!r}]", depth + 1)
    elif depth < 6 and isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _namespaces(v, f"{where}[{i}]", depth + 1)


def _check_namespaces(obj, path: Path) -> None:
    for where, ns in _namespaces(obj):
        bad = next(((k, v) for k, v in vars(ns).items() if not _plain(v)), None)
        if bad is not None:
            raise CheckpointError(
                f"{path} was refused: its argparse.Namespace {where} holds {bad[0]}= of type "
                f"{type(bad[1]).__name__}; cnnlab reads training checkpoints whose args are "
                "plain values (numbers, strings, lists). If you trust the file, re-save just "
                "its state_dict with torch.save(...) or as safetensors")


def _load_pytorch(path: Path):
    # argparse.Namespace is allowed for this load only (and not removed afterwards when the
    # caller had allowed it process-wide).
    extra = [] if argparse.Namespace in torch.serialization.get_safe_globals() \
        else [argparse.Namespace]
    try:
        with torch.serialization.safe_globals(extra):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        text = " ".join(str(err).split())
        m = re.search(r"(Unsupported global: GLOBAL [\w.]+|Unsupported operand \d+|"
                      r"Trying to [^.]*)", text)
        why = m.group(1) if m else text[:120]
        raise CheckpointError(
            f"{path} was refused: it needs arbitrary unpickling ({why}), which could run code "
            "hidden in the file; cnnlab reads PyTorch files with weights_only=True only. If you "
            "trust the file, re-save just its state_dict with torch.save(...) or as safetensors"
        ) from None
    except Exception as err:  # torch raises many kinds for damaged files
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        raise CheckpointError(f"{path} is not a readable PyTorch file (truncated or corrupt?): "
                              f"{first}") from None
    _check_namespaces(obj, path)
    return obj


def _training_note(obj) -> str | None:
    """One line on a reference trainer's checkpoint (a dict with an argparse ``args``)."""
    if not isinstance(obj, dict) or type(obj.get("args")) is not argparse.Namespace:
        return None
    arch = obj.get("arch") or getattr(obj["args"], "model", None)
    parts = [f"model {arch!r}" if isinstance(arch, str) else None,
             f"epoch {obj['epoch']}" if isinstance(obj.get("epoch"), int) else None]
    ignored = [k for k in ("optimizer", "lr_scheduler", "scaler", "amp_scaler", "args")
               if k in obj]
    said = ", ".join(p for p in parts if p)
    return (f"training checkpoint ({said}); only the model weights are read, not its "
            f"{', '.join(ignored)}" if said else
            f"training checkpoint; only the model weights are read, not its {', '.join(ignored)}")


def _load_safetensors(path: Path) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{path} is not a readable safetensors file (truncated or "
                              f"corrupt?): {err}") from None


def _is_state(obj) -> bool:
    return (isinstance(obj, dict) and bool(obj)
            and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()))


def _unwrap(obj, path: Path) -> tuple[dict, list[str]]:
    """The state_dict inside ``obj`` and the container keys it was found under."""
    keys: list[str] = []
    for _ in range(4):
        if _is_state(obj):
            return obj, keys
        if not isinstance(obj, dict):
            break
        inner = next((k for k in CONTAINER_KEYS if isinstance(obj.get(k), dict)), None)
        if inner is None:
            break
        keys.append(inner)
        obj = obj[inner]
    if isinstance(obj, dict) and obj:
        tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
        if tensors and all(isinstance(k, str) for k in tensors) and len(tensors) * 2 > len(obj):
            return tensors, keys  # a state_dict with a few non-tensor extras
        shown = ", ".join(map(str, list(obj)[:8]))
        raise CheckpointError(f"{path}: no state_dict found; its top-level keys are {shown}; "
                              f"expected a state_dict or a dict with one of "
                              f"{', '.join(CONTAINER_KEYS)}")
    raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a state_dict")


def _clean_keys(state: dict) -> tuple[dict, list[str]]:
    notes = []
    for prefix in STRIP_PREFIXES:
        n = sum(k.startswith(prefix) for k in state)
        if n:
            state = {k.removeprefix(prefix): v for k, v in state.items()}
            notes.append(f"'{prefix}' prefix stripped from {n} keys")
    return state, notes


_NONFINITE_OK = contextvars.ContextVar("cnnlab_allow_nonfinite", default=False)


@contextmanager
def nonfinite_allowed(allow: bool = True):
    """Within the block, weights files with NaN or infinite values load (what the command
    line's ``--allow-nonfinite`` does for the whole command)."""
    token = _NONFINITE_OK.set(bool(allow))
    try:
        yield
    finally:
        _NONFINITE_OK.reset(token)


def check_finite(state: dict, src) -> None:
    """Refuse a state_dict with NaN or infinite values, naming the tensors that hold them
    (it loaded without a word, and every prediction was then NaN)."""
    bad = [k for k, t in state.items() if isinstance(t, torch.Tensor)
           and (t.is_floating_point() or t.is_complex()) and t.numel()
           and t.device.type != "meta" and not bool(torch.isfinite(t).all())]
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise CheckpointError(f"{src}: {len(bad)} tensor{'s' if len(bad) > 1 else ''} hold "
                              f"NaN or infinite values ({shown}); the model would predict NaN. "
                              "Load it anyway with --allow-nonfinite (Python: "
                              "allow_nonfinite=True)")


def _nonfinite_notes(wf) -> list[str]:
    try:
        check_finite(wf.state, wf.path)
    except CheckpointError as err:
        return [str(err).split(": ", 1)[1].split("; ")[0]]
    return []


def read_weights(path: str | Path, sha256: str | None = None, *,
                 allow_nonfinite: bool | None = None) -> WeightsFile:
    """Read a weights file (or cnnlab run folder) safely; see the module docstring.

    A file with NaN or infinite values is refused (:func:`check_finite`) unless
    ``allow_nonfinite`` (None: as :func:`nonfinite_allowed` says, by default no)."""
    src, config = locate_weights(Path(path).expanduser())
    kind = _sniff(src)
    if kind == "hdf5":
        raise CheckpointError(f"{src} is an HDF5 (Keras) file; cnnlab reads safetensors and "
                              "PyTorch files (.pth, .pt, .bin)")
    if kind == "unknown":
        raise CheckpointError(f"{src}: unknown file format; cnnlab reads safetensors and "
                              "PyTorch files (.pth, .pt, .bin)")
    digest = sha256_of(src)
    check_sha256(src, digest, sha256)
    keys: list[str] = []
    trained = None
    if kind == "safetensors":
        state = _load_safetensors(src)
    else:
        obj = _load_pytorch(src)
        if isinstance(obj, dict) and obj.get("format") == "cnnlab-checkpoint":
            try:
                config = json.loads(obj.get("config"))
            except (TypeError, json.JSONDecodeError):
                pass
        state, keys = _unwrap(obj, src)
        trained = _training_note(obj)
    container = "".join(f'{{"{k}": ' for k in keys) + "state_dict" + "}" * len(keys)
    if config is not None:
        container = f"cnnlab run ({src.name}: {container})"
    state, notes = _clean_keys(state)
    if trained:
        notes.insert(0, trained)
    if not (_NONFINITE_OK.get() if allow_nonfinite is None else allow_nonfinite):
        check_finite(state, src)
    return WeightsFile(src, state, kind, container, digest, src.stat().st_size, config, notes)


# --------------------------------------------------------------------------- the model's side

def classifier_prefixes(model: nn.Module) -> list[str]:
    """Module paths of the model's classifier(s), auxiliary heads included (the head API's
    ``classifier_names()``; ``fc``/``classifier``/``head`` for a model without it)."""
    fn = getattr(model, "classifier_names", None)
    if callable(fn):
        return list(fn())
    return [a for a in ("fc", "classifier", "head") if isinstance(getattr(model, a, None),
                                                                 nn.Module)][:1]


def classifier_keys(model: nn.Module, state: dict | None = None) -> list[str]:
    """The model's state_dict keys that belong to its classifier(s)."""
    prefixes = classifier_prefixes(model)
    state = model.state_dict() if state is None else state
    return [k for k in state if any(k.startswith(p + ".") for p in prefixes)]


def first_conv_key(state: dict, in_chans: int) -> str | None:
    """The first 4-D weight whose input-channel dimension is ``in_chans`` (the stem conv)."""
    for k, v in state.items():
        if k.endswith("weight") and v.dim() == 4 and v.shape[1] == in_chans:
            return k
    return None


def adapt_input_conv(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """Adapt a first-convolution kernel (O x C x kh x kw) to ``in_chans`` input channels.

    * 1 channel: the sum of the C kernels (a grey image then gives the same output as the
      C-channel network fed that grey image in every channel);
    * 2 channels from RGB: channel 0 is R + B/2, channel 1 is G + B/2 (the sum of the two is
      still R + G + B, so the same grey image in both channels gives the RGB network's output,
      and the two channels keep different kernels);
    * anything else (timm's rule): the C kernels repeated to ``in_chans`` and scaled by
      C / in_chans (for RGB, 3 / N); 3 -> 6 gives each kernel twice at half strength.
    """
    c = weight.shape[1]
    if in_chans == c:
        return weight
    dtype = weight.dtype
    w = weight.float()
    if in_chans == 1:
        out = w.sum(dim=1, keepdim=True)
    elif in_chans == 2 and c == 3:
        out = torch.stack([w[:, 0] + w[:, 2] / 2, w[:, 1] + w[:, 2] / 2], dim=1)
    else:
        reps = math.ceil(in_chans / c)
        out = w.repeat(1, reps, 1, 1)[:, :in_chans] * (c / in_chans)
    return out.to(dtype)


def _rule(c: int, n: int) -> str:
    if n == 1:
        return "sum of the kernels"
    if n == 2 and c == 3:
        return "R + B/2 and G + B/2"
    return f"kernels repeated, scaled by {c}/{n}"


def _shape(t) -> str:
    return "x".join(str(s) for s in t.shape) if len(t.shape) else "scalar"


def expected_layout(name: str) -> str:
    """Which published layout the registered model ``name`` has, in words."""
    refs = [r for r, _ in get_entry(name).references]
    tv = [r.split(":", 1)[1] for r in refs if r.startswith("torchvision:")]
    timm = [r.split(":", 1)[1] for r in refs if r.startswith("timm:")]
    if tv:
        return (f"{name} expects torchvision's layout (torchvision's {tv[0]} weights load as "
                f"they are) or a cnnlab run of {name}")
    if timm:
        return (f"{name} expects timm's layout (timm's {timm[0]} weights load as they are) or "
                f"a cnnlab run of {name}")
    return (f"{name} has cnnlab's own layout (no torchvision or timm model has it): use a cnnlab "
            f"run of {name}")


def convert_layout(state: dict, model: nn.Module) -> tuple[dict, list[str]]:
    """``state`` in ``model``'s layout, by the model's ``checkpoint_filter`` (see the module
    docstring), and the lines it said; ``(state, [])`` for a model without one."""
    fn = getattr(model, "checkpoint_filter", None)
    if fn is None:
        return state, []
    out, notes = fn(state, model)
    return out, list(notes)


# --------------------------------------------------------------------------- matching

class Signature(NamedTuple):
    """A registered configuration as the matching sees it."""

    shapes: dict            # key -> shape
    cls: frozenset          # the keys whose first dimension is the class count
    stem: str | None        # the first convolution's weight
    model: nn.Module | None  # the meta-device model, kept when it converts layouts


@cache
def _signature(name: str, kwargs_items: tuple) -> Signature | None:
    """The :class:`Signature` of ``name`` built on the meta device."""
    kwargs = dict(kwargs_items)
    with torch.device("meta"), skipped_init():
        try:
            model = build_model(name, num_classes=_CLASS_PROBE, **kwargs)
            probe = _CLASS_PROBE
        except Exception:  # noqa: BLE001  (a builder that needs its own class count)
            try:
                model = build_model(name, **kwargs)
            except Exception:  # noqa: BLE001
                return None
            probe = getattr(model, "num_classes", None)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    if probe == _CLASS_PROBE:
        cls = frozenset(k for k, s in shapes.items() if s[:1] == (probe,))
    else:
        cls = frozenset(k for k in classifier_keys(model, shapes) if shapes[k][:1] == (probe,))
    c = get_entry(name).input_size[0]
    stem = next((k for k, s in shapes.items() if k.endswith("weight") and len(s) == 4
                 and s[1] == c), None)
    return Signature(shapes, cls, stem,
                     model if getattr(model, "checkpoint_filter", None) else None)


def _converted(state: dict, sig: Signature) -> dict:
    """``state`` in the layout of ``sig``'s model (as it is when that has no conversion)."""
    if sig.model is None:
        return state
    try:
        return convert_layout(state, sig.model)[0]
    except Exception:  # noqa: BLE001  (a filter that fails on a foreign file: no match)
        return state


def _variants(name: str) -> list[dict]:
    out: list[dict] = [{}]
    for _, kw in get_entry(name).references:
        if kw and kw not in out:
            out.append(dict(kw))
    return out


def _fit(state: dict, sig) -> tuple[int | None, int | None] | None:
    """(classifier width, in_chans) when ``state`` fits the signature, else None."""
    shapes, cls, stem, _ = sig
    keys = set(state)
    if keys - set(shapes):
        return None
    missing = set(shapes) - keys
    if missing and not missing <= cls:
        return None
    width = None
    for k in cls & keys:
        s = tuple(state[k].shape)
        if s[1:] != shapes[k][1:] or (width is not None and s[0] != width):
            return None
        width = s[0]
    in_chans = None
    for k in keys - cls:
        s, m = tuple(state[k].shape), shapes[k]
        if s == m:
            continue
        if k == stem and len(s) == 4 and (s[0], *s[2:]) == (m[0], *m[2:]):
            continue
        return None
    if stem is not None and stem in state:
        in_chans = int(state[stem].shape[1])
    return width, in_chans


def match_architectures(state: dict, names: list[str] | None = None) -> list[Match]:
    """Registered architectures (and reference configurations) whose state_dict ``state``
    fits: same keys and shapes, the classifier's class count and the stem's input channels
    aside, after the conversion the candidate's family makes (a timm file of a family that
    converts it). Candidates are built once on the meta device (no memory, no
    initialisation) and compared by their key sets before any shape."""
    out = []
    n = len(state)
    for name in names or list_models():
        for kw in _variants(name):
            sig = _signature(name, tuple(sorted(kw.items())))
            if sig is None:
                continue
            shapes, cls = sig.shapes, sig.cls
            if not (len(shapes) - len(cls) <= n <= len(shapes)):
                continue          # prefilter: the number of tensors cannot fit
            fit = _fit(_converted(state, sig), sig)
            if fit is not None:
                out.append(Match(name, kw, *fit))
    return out


def layout_notes(state: dict, names: list[str] | None = None) -> list[str]:
    """What each family that converts layouts (among ``names``, default all) says of ``state``:
    its first line, converted or not converted and why; nothing for the registry's layouts."""
    out, seen = [], set()
    for name in names or list_models():
        sig = _signature(name, ())
        fn = getattr(sig.model, "checkpoint_filter", None) if sig else None
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        try:
            _, lines = convert_layout(state, sig.model)
        except Exception:  # noqa: BLE001
            continue
        out += lines[:1]
    return out


def describe_matches(matches: list[Match]) -> str:
    if not matches:
        return "no registered architecture"
    parts = []
    for m in matches:
        kw = ", ".join(f"{k}={v}" for k, v in m.kwargs.items())
        parts.append(m.model + (f" ({kw})" if kw else ""))
    return ", ".join(dict.fromkeys(parts))


# --------------------------------------------------------------------------- loading

def _default_log(line: str) -> None:
    print(line, file=sys.stderr)


def _name_of(model: nn.Module) -> str:
    return getattr(model, "model_name", type(model).__name__)


def _aux_keys_absent(model: nn.Module) -> set[str]:
    """Keys the model's auxiliary heads would have, when it was built without them."""
    if getattr(model, "aux_logits", None) is not False or not hasattr(model, "model_name"):
        return set()
    sig = _signature(model.model_name, (("aux_logits", True),))
    return set(sig.shapes) - set(model.state_dict()) if sig else set()


def _adapt_classifier(model: nn.Module, state: dict, target: dict, report: LoadReport,
                      note: Callable[[str], None]) -> None:
    """Give ``state`` the model's fresh classifier when the class count differs (the file's
    old classifier keys dropped), or the missing classifier keys (a file without head)."""
    name = _name_of(model)
    cls = classifier_keys(model, target)
    differ = [k for k in cls if k in state and state[k].shape != target[k].shape]
    absent = [k for k in cls if k not in state]
    if differ:
        report.replaced = [f"{k} {_shape(state[k])} -> {_shape(target[k])}" for k in differ]
        prefixes = classifier_prefixes(model)
        for k in list(state):
            if any(k.startswith(p + ".") for p in prefixes) and k not in target:
                del state[k]
        for k in cls:
            state[k] = target[k]
        note(f"{name}: new classifier for {getattr(model, 'num_classes', '?')} classes, freshly "
             f"initialised: {', '.join(report.replaced)}")
    elif absent:
        for k in absent:
            state[k] = target[k]
        shown = ", ".join(absent[:4]) + (" ..." if len(absent) > 4 else "")
        note(f"{name}: {len(absent)} classifier keys are not in the file and keep their fresh "
             f"initialisation: {shown}")


def _adapt_stem(model: nn.Module, state: dict, target: dict, report: LoadReport,
                note: Callable[[str], None]) -> None:
    """Adapt the file's first convolution to the model's input channels
    (:func:`adapt_input_conv`), or refuse a count it cannot be adapted to."""
    c_model = getattr(model, "in_chans", None)
    stem = first_conv_key(target, c_model) if c_model else None
    if not (stem and stem in state and state[stem].dim() == 4
            and state[stem].shape != target[stem].shape):
        return
    s, t = state[stem].shape, target[stem].shape
    if (s[0], *s[2:]) != (t[0], *t[2:]):
        return
    c_file = s[1]
    if c_model != 1 and not (c_file == 3 or c_file == 1 or c_model % c_file == 0):
        raise CheckpointError(f"{report.file.path}: cannot adapt {stem} from {c_file} to "
                              f"{c_model} input channels; build the model with "
                              f"in_chans={c_file}, 1, or a multiple of {c_file}")
    state[stem] = adapt_input_conv(state[stem], c_model)
    report.stem = f"{stem} adapted from {c_file} to {c_model} input channels " \
                  f"({_rule(c_file, c_model)})"
    note(f"{_name_of(model)}: {report.stem}")


def load_pretrained(model: nn.Module, weights: str | Path | WeightsFile, *,
                    sha256: str | None = None,
                    log: Callable[[str], None] | None = _default_log) -> LoadReport:
    """Load ``weights`` (a file, a run folder or a :class:`WeightsFile`) into ``model``.

    The classifier is replaced when the class count differs, the first convolution adapted
    when the input channels differ (see the module docstring); every other key must fit.
    ``sha256`` refuses a file with another hash. Each adaptation is reported as one line
    through ``log`` (stderr by default; ``None`` to stay quiet) and in the returned report.
    """
    wf = weights if isinstance(weights, WeightsFile) else read_weights(weights, sha256)
    if isinstance(weights, WeightsFile):
        check_sha256(wf.path, wf.sha256, sha256)
    report = LoadReport(wf)
    name = _name_of(model)
    state, converted = convert_layout(dict(wf.state), model)
    state = dict(state)
    target = model.state_dict()

    def note(line: str) -> None:  # logged once the whole file is known to fit
        report.notes.append(line)

    for line in wf.notes:
        note(f"{wf.path.name}: {line}")
    for line in converted:
        note(f"{name}: {line}")

    # Auxiliary heads the file has and the model was built without.
    aux = _aux_keys_absent(model) & set(state)
    if aux:
        for k in aux:
            del state[k]
        note(f"{name}: ignored {len(aux)} keys of auxiliary heads the model was built without "
             "(aux_logits=False)")

    _adapt_classifier(model, state, target, report, note)
    _adapt_stem(model, state, target, report, note)

    # Everything else must fit.
    missing = [k for k in target if k not in state]
    unexpected = [k for k in state if k not in target]
    wrong = [k for k in target if k in state and state[k].shape != target[k].shape]
    if missing or unexpected or wrong:
        raise CheckpointError(_mismatch_message(wf, name, state, target, missing, unexpected,
                                                wrong, converted))
    dtypes = sorted({str(v.dtype).removeprefix("torch.") for v in wf.state.values()
                     if v.is_floating_point()})
    model_dtypes = sorted({str(v.dtype).removeprefix("torch.") for v in target.values()
                           if v.is_floating_point()})
    if dtypes and dtypes != model_dtypes:
        note(f"{wf.path.name}: weights stored as {', '.join(dtypes)}, converted to "
             f"{', '.join(model_dtypes)}")
    with torch.no_grad():
        model.load_state_dict(state, strict=True)
    for line in report.notes if log is not None else ():
        log(line)
    return report


def _mismatch_message(wf, name, state, target, missing, unexpected, wrong, converted) -> str:
    def few(keys, n=3):
        return ", ".join(keys[:n]) + (f" and {len(keys) - n} more" if len(keys) > n else "")

    parts = []
    if missing:
        parts.append(f"{len(missing)} missing ({few(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected ({few(unexpected)})")
    if wrong:
        shown = "; ".join(f"{k}: file {_shape(state[k])}, model {_shape(target[k])}"
                          for k in wrong[:3])
        more = f" and {len(wrong) - 3} more" if len(wrong) > 3 else ""
        parts.append(f"{len(wrong)} of another shape ({shown}{more})")
    try:
        hint = expected_layout(name)
    except Exception:  # noqa: BLE001  (a model built outside the registry)
        hint = f"{name} is not a registered model"
    if converted:  # what the family said of the file's layout: what was converted, what differs
        hint = f"{'; '.join(converted)}. {hint}"
    matches = describe_matches(match_architectures(wf.state))
    return (f"{wf.path} does not fit {name}: {'; '.join(parts)}. {hint}; the file matches "
            f"{matches}")


def file_head(name: str, wf: WeightsFile) -> tuple[int | None, int | None]:
    """(classifier width, input channels) of ``wf`` read as the architecture ``name``."""
    sig = _signature(name, ())
    if sig is None:
        return None, None
    state = _converted(wf.state, sig)
    width = next((int(state[k].shape[0]) for k in sig.cls if k in state
                  and state[k].dim() >= 1), None)
    c = int(state[sig.stem].shape[1]) if sig.stem and sig.stem in state \
        and state[sig.stem].dim() == 4 else None
    return width, c


def create_pretrained(name: str, weights: str | Path | WeightsFile, *,
                      sha256: str | None = None,
                      log: Callable[[str], None] | None = _default_log, **kwargs) -> nn.Module:
    """``create_model(name, **kwargs)`` with the weights of a file loaded.

    ``num_classes`` and ``in_chans`` default to the file's (its classifier's width, its first
    convolution's input channels); a cnnlab run of the same model also gives its builder
    arguments, and a file that fits only one of the registry's reference configurations
    (``googlenet`` saved with ``aux_logits=False``) gives that one's. Giving other values
    replaces the classifier / adapts the stem.
    """
    wf = weights if isinstance(weights, WeightsFile) else read_weights(weights, sha256)
    kw: dict = {}
    if wf.run_config and wf.run_config.get("model") == name:
        kw.update(wf.run_config.get("model_kwargs") or {})
    else:  # a reference configuration the file fits, e.g. googlenet without its aux heads
        fits = match_architectures(wf.state, names=[name])
        if fits and all(m.kwargs for m in fits):
            kw.update(fits[0].kwargs)
    width, c = file_head(name, wf)
    if width is not None:
        kw.setdefault("num_classes", width)
    if c is not None:
        kw.setdefault("in_chans", c)
    kw.update({k: v for k, v in kwargs.items() if v is not None})
    model = build_model(name, **kw)
    load_pretrained(model, wf, sha256=sha256, log=log)
    return model


# --------------------------------------------------------------------------- inspecting

def is_imagenet_architecture(name: str) -> bool:
    """Designed for ImageNet (native input of 224 pixels or more)."""
    return get_entry(name).input_size[1] >= 224


def inspect_weights(path: str | Path, sha256: str | None = None) -> dict:
    """What a weights file is: tensors, parameters, dtypes, matching architectures, ..."""
    wf = read_weights(path, sha256, allow_nonfinite=True)  # inspecting shows them instead
    dtypes: dict[str, int] = {}
    for v in wf.state.values():
        d = str(v.dtype).removeprefix("torch.")
        dtypes[d] = dtypes.get(d, 0) + 1
    params = sum(v.numel() for k, v in wf.state.items() if not k.endswith(_BUFFER_SUFFIXES))
    matches = match_architectures(wf.state)
    widths = sorted({m.num_classes for m in matches if m.num_classes is not None})
    chans = sorted({m.in_chans for m in matches if m.in_chans is not None})
    info = {
        "file": str(wf.path), "format": wf.format, "container": wf.container,
        "size_bytes": wf.size_bytes, "sha256": wf.sha256, "tensors": len(wf.state),
        "parameters": params, "values": sum(v.numel() for v in wf.state.values()),
        "dtypes": dtypes,
        "matches": [{"model": m.model, "kwargs": m.kwargs, "num_classes": m.num_classes,
                     "in_chans": m.in_chans} for m in matches],
        "classifier_width": widths[0] if len(widths) == 1 else (widths or None),
        "in_chans": chans[0] if len(chans) == 1 else (chans or None),
        "notes": list(wf.notes) + layout_notes(wf.state, [m.model for m in matches])
                 + _nonfinite_notes(wf),
    }
    if wf.run_config:
        info["run"] = {k: wf.run_config.get(k) for k in ("model", "model_kwargs", "input_size",
                                                         "mean", "std", "data_config")
                       if k in wf.run_config}
    return info
