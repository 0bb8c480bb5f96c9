"""NumPy twin of the C core's network runtime: the test oracle for whole networks.

Runs a :class:`~fxplain.runtime.spec.NetworkSpec` forward and backward in
float64 through each layer kind's reference (:mod:`fxplain.runtime.layers`,
kernels in :mod:`fxplain.runtime.numpy_ops`).
"""

from __future__ import annotations

import numpy as np

from .layers import LAYERS
from .numpy_ops import adam_update, normalize_input
from .spec import NetworkSpec

__all__ = ["adam_update", "forward", "input_gradient", "parameter_gradients", "run_layer"]


def run_layer(kind: str, inputs: list[np.ndarray], params: dict) -> np.ndarray:
    """Apply one layer of a :class:`~fxplain.runtime.spec.NetworkSpec` to its inputs."""
    if kind not in LAYERS:
        raise ValueError(f"unknown layer kind {kind!r}")
    return LAYERS[kind].forward(inputs, params)


def _nodes(spec: NetworkSpec, pixels: np.ndarray) -> list[np.ndarray]:
    nodes = [normalize_input(pixels, spec.input_mean, spec.input_scale)]
    for layer in spec.layers:
        nodes.append(run_layer(layer.kind, [nodes[i] for i in layer.inputs], layer.params))
    return nodes


def forward(spec: NetworkSpec, pixels: np.ndarray) -> np.ndarray:
    """Run a whole network on NHWC pixels; returns the output node as (N, C, H, W) float64."""
    return _nodes(spec, pixels)[spec.output]


def _backward(spec: NetworkSpec, pixels: np.ndarray, grad_output: np.ndarray):
    """Forward pass keeping every node, then the gradient of every node: (nodes, grads)."""
    nodes = _nodes(spec, pixels)
    grads: list = [None] * len(nodes)
    grads[spec.output] = np.asarray(grad_output, np.float64).reshape(nodes[spec.output].shape)
    for index in range(len(spec.layers), 0, -1):
        if grads[index] is None:
            continue
        layer = spec.layers[index - 1]
        parts = LAYERS[layer.kind].backward([nodes[i] for i in layer.inputs], nodes[index], grads[index],
                                            layer.params)
        for src, part in zip(layer.inputs, parts):
            grads[src] = part if grads[src] is None else grads[src] + part
    return nodes, grads


def input_gradient(spec: NetworkSpec, pixels: np.ndarray, grad_output: np.ndarray) -> np.ndarray:
    """Gradient of ``sum(forward(pixels) * grad_output)`` with respect to the NHWC pixels (float64)."""
    _, grads = _backward(spec, pixels, grad_output)
    return grads[0].transpose(0, 2, 3, 1) * np.asarray(spec.input_scale, np.float64)


def parameter_gradients(spec: NetworkSpec, pixels: np.ndarray, grad_output: np.ndarray) -> dict:
    """Gradients of ``sum(forward(pixels) * grad_output)`` for every trainable layer: {node: (dW, db)}."""
    nodes, grads = _backward(spec, pixels, grad_output)
    out = {}
    for index, layer in enumerate(spec.layers, start=1):
        kind = LAYERS[layer.kind]
        if not kind.trainable or grads[index] is None:
            continue
        dw, db = kind.parameter_gradients(nodes[layer.inputs[0]], grads[index], layer.params)
        out[index] = (dw, db if layer.params.get("bias") is not None else None)
    return out
