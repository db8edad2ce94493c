"""A Sequential network and the LeNet-5 of the slides, in NumPy."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np

from ..errors import CheckpointError, UnknownNameError, UsageError
from ..lab.init_gains import XAVIER_GAIN  # Glorot gains, shared with the PyTorch LeNet-5
from .layers import AvgPool2D, Conv2D, Dense, Flatten, Layer, MaxPool2D, ReLU, Sigmoid, Tanh
from .losses import softmax_cross_entropy


class Sequential:
    """Layers applied in order; ``backward`` runs them in reverse.

    ``layers`` is a list of ``(name, layer)`` pairs (or bare layers, then named "0", "1", ...).
    Parameters are named ``"<layer>.<key>"`` (``"c1.W"``), as in a PyTorch state_dict.
    """

    def __init__(self, layers):
        self.layers: list[tuple[str, Layer]] = [
            item if isinstance(item, tuple) else (str(i), item) for i, item in enumerate(layers)]
        names = [n for n, _ in self.layers]
        if len(set(names)) != len(names):
            raise UsageError(f"layer names must be unique, got {names}")

    def __getitem__(self, name: str) -> Layer:
        for n, layer in self.layers:
            if n == name:
                return layer
        raise UnknownNameError(f"no layer named {name!r}; layers: {[n for n, _ in self.layers]}")

    def forward(self, x: np.ndarray, keep: bool = False):
        """Output of the network; with ``keep=True`` also the list of (name, output) of every
        layer (the feature maps)."""
        outs = []
        for name, layer in self.layers:
            x = layer.forward(x)
            if keep:
                outs.append((name, x))
        return (x, outs) if keep else x

    __call__ = forward

    def backward(self, delta: np.ndarray) -> np.ndarray | None:
        for _, layer in reversed(self.layers):
            delta = layer.backward(delta)
            if delta is None:  # a first layer that skips its input gradient
                break
        return delta

    def loss_and_grads(self, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        """Forward, softmax cross-entropy, backward: returns (loss, logits)."""
        logits = self.forward(x)
        loss, dlogits = softmax_cross_entropy(logits, y)
        self.backward(dlogits)
        return loss, logits

    def parameters(self) -> Iterator[tuple[str, Layer, str]]:
        for name, layer in self.layers:
            for key in layer.params:
                yield f"{name}.{key}", layer, key

    def state_dict(self) -> dict[str, np.ndarray]:
        return {n: layer.params[k] for n, layer, k in self.parameters()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        own = {n: (layer, k) for n, layer, k in self.parameters()}
        if set(own) != set(state):
            raise CheckpointError(f"state does not fit the network: missing "
                                  f"{sorted(set(own) - set(state))}, unexpected "
                                  f"{sorted(set(state) - set(own))}")
        for n, (layer, k) in own.items():
            if layer.params[k].shape != state[n].shape:
                raise CheckpointError(
                    f"{n}: shape {state[n].shape} does not fit {layer.params[k].shape}")
            layer.params[k] = np.array(state[n], dtype=layer.params[k].dtype)

    def astype(self, dtype) -> Sequential:
        for _, layer, k in self.parameters():
            layer.params[k] = layer.params[k].astype(dtype)
        return self

    def num_params(self) -> int:
        return sum(layer.params[k].size for _, layer, k in self.parameters())

    def save(self, path: str | os.PathLike) -> None:
        """Save the parameters as an ``.npz`` (plain arrays, loaded without pickle)."""
        np.savez(path, **self.state_dict())

    def load(self, path: str | os.PathLike) -> Sequential:
        try:
            with np.load(path, allow_pickle=False) as f:
                state = {k: f[k] for k in f.files}
        except (OSError, ValueError) as err:
            raise CheckpointError(f"{path} is not a readable .npz weights file: {err}") from None
        self.load_state_dict(state)
        return self

    def __repr__(self) -> str:
        body = "\n".join(f"  ({n}): {layer!r}" for n, layer in self.layers)
        return f"Sequential(\n{body}\n)"


ACTIVATIONS = {"sigmoid": Sigmoid, "tanh": Tanh, "relu": ReLU}


def xavier_init(net: Sequential, gain: float, rng: np.random.Generator) -> None:
    """Re-initialise every Conv2D/Dense: weights uniform in ``+-gain*sqrt(6/(fan_in+fan_out))``
    (fan = channels x kernel area), biases 0."""
    for _, layer in net.layers:
        if "W" not in layer.params:
            continue
        w = layer.params["W"]
        area = int(np.prod(w.shape[2:])) if w.ndim == 4 else 1
        bound = gain * np.sqrt(6.0 / ((w.shape[0] + w.shape[1]) * area))
        layer.params["W"] = rng.uniform(-bound, bound, w.shape).astype(w.dtype)
        layer.params["b"] = np.zeros_like(layer.params["b"])
POOLS = {"avg": AvgPool2D, "max": MaxPool2D}


def lenet5(input_size: int = 28, num_classes: int = 10, activation: str = "sigmoid",
           pool: str = "avg", seed: int = 0, dtype=np.float64, init: str = "xavier"
           ) -> Sequential:
    """LeNet-5 of the slides, layer for layer the same as ``cnnlab.create_model("lenet5")``
    (``c1_padding=2`` for 28x28 input): C1 conv 5x5 6 maps, S2 pool 2, C3 conv 5x5 16 maps
    (full connections), S4 pool 2, C5 conv 5x5 120 maps, F6 dense 84, output dense.
    61,706 parameters for 10 classes.

    ``input_size`` 32 is the paper's; 28 (the lab's) pads C1 by 2 so its maps stay 28x28.

    ``init="xavier"`` (default) is Glorot's uniform initialisation with the gain of the
    activation (4 for the sigmoid), biases 0. ``init="torch"`` is PyTorch's default (uniform
    in +-1/sqrt(fan_in)): with it the sigmoid network stays at chance (10 %) for the first
    epochs on the digits, as the PyTorch LeNet-5 does with the same optimiser.
    """
    if input_size not in (28, 32):
        raise UsageError(f"input_size must be 28 (padded C1) or 32 (the paper), got {input_size}")
    if activation not in ACTIVATIONS:
        raise UsageError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    if pool not in POOLS:
        raise UsageError(f"pool must be one of {sorted(POOLS)}, got {pool!r}")
    if init not in ("xavier", "torch"):
        raise UsageError(f"init must be 'xavier' or 'torch', got {init!r}")
    rng = np.random.default_rng(seed)
    act, pooling = ACTIVATIONS[activation], POOLS[pool]
    c1 = Conv2D(1, 6, 5, padding=2 if input_size == 28 else 0, rng=rng, dtype=dtype)
    c1.need_input_grad = False  # nothing before C1 needs it
    net = Sequential([
        ("c1", c1), ("act1", act()), ("s2", pooling(2)),
        ("c3", Conv2D(6, 16, 5, rng=rng, dtype=dtype)), ("act3", act()), ("s4", pooling(2)),
        ("c5", Conv2D(16, 120, 5, rng=rng, dtype=dtype)), ("act5", act()),
        ("flatten", Flatten()),
        ("f6", Dense(120, 84, rng=rng, dtype=dtype)), ("act6", act()),
        ("output", Dense(84, num_classes, rng=rng, dtype=dtype)),
    ])
    if init == "xavier":
        xavier_init(net, XAVIER_GAIN[activation], rng)
    return net
