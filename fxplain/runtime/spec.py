"""A framework-neutral description of a feed-forward network.

Model readers (dlib ``.dat``, fxplain's own files, later ONNX) translate their
files into a :class:`NetworkSpec`; the C core
(:func:`fxplain.runtime.core_net.build_core_net`), the NumPy reference
(:mod:`fxplain.runtime.reference`) and the PyTorch module of the benchmarks are
all built from the same spec, which is what makes them comparable. What each
layer kind means is in one table, :mod:`fxplain.runtime.layers`.

Conventions
-----------
* Node 0 is the input image, shaped ``(C, H, W)``; layer ``i`` of
  ``spec.layers`` produces node ``i + 1``. A layer's inputs are earlier nodes.
* Images enter as pixel values (0-255) in NHWC order; the network first
  computes ``x = (pixel - input_mean[c]) * input_scale[c]``.
* Tensors are NCHW; convolutions are cross-correlations with weights
  ``(out_channels, in_channels, kh, kw)``.
* Convolution and pooling use floor rounding:
  ``out = (in + pad + pad_end - dilation * (kernel - 1) - 1) // stride + 1``
  (``pad_end`` = ``padding_end``, default ``padding``; dilation 1 for pools);
  average pooling excludes padded cells from the count.
* ``sum`` adds two nodes; when their shapes differ, each is zero-padded at the
  end of every axis (channels, rows, columns) to the larger shape, as dlib's
  ``add_prev`` does in its down-sampling residual blocks.
* ``dense`` flattens its input in C, H, W order; weights are
  ``(out_features, C * H * W)``. Its output has shape ``(out_features, 1, 1)``.

Layer kinds and their ``params``:

=================  ===========================================================
kind               params
=================  ===========================================================
conv               weight (O, I/groups, kh, kw), bias (O,) or None, stride (sh, sw),
                   padding (top, left); optional padding_end (bottom, right,
                   default padding), dilation (dh, dw, default (1, 1)),
                   groups (default 1; depthwise: groups == I == O)
scale_shift        scale (C,), shift (C,)   -- y = x * scale[c] + shift[c]
relu               --
prelu              slope (C,)               -- y = x if x > 0 else slope[c] * x
leaky_relu         alpha (a finite float)   -- y = x if x > 0 else alpha * x
sigmoid            --                       -- y = 1 / (1 + exp(-x))
max_pool           kernel (kh, kw), stride (sh, sw), padding (top, left);
                   optional padding_end (bottom, right, default padding)
avg_pool           as max_pool
global_avg_pool    --
sum                -- (two inputs)
mul                -- (two inputs) a * b: equal shapes, or one of them
                   (C, 1, 1) scaling the other's channels (either order)
concat             -- (two inputs) stacked along channels, a first; rows
                   and columns must agree
dense              weight (O, C*H*W), bias (O,) or None
reshape            shape (C, H, W)          -- the input's values, flattened in
                   C, H, W order, viewed in a new shape (same count)
resize             size (H, W), mode "nearest" | "bilinear" -- half-pixel
                   centres: output o samples (o + 0.5) * in / out - 0.5
                   (clamped to the input for bilinear)
=================  ===========================================================
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._util.errors import ModelFormatError
from .layers import LAYER_KINDS, LAYERS, check_params

#: Largest output of one layer for one image (256 MiB of float32): far above face
#: models (dlib's largest is 32x72x72), far below what exhausts memory at batch 1.
MAX_NODE_VALUES = 1 << 26


@dataclass
class Layer:
    """One layer of a :class:`NetworkSpec`: its kind, input node ids and parameters."""

    kind: str
    inputs: tuple[int, ...]
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class NetworkSpec:
    """A feed-forward network as a list of layers over numbered nodes."""

    input_shape: tuple[int, int, int]
    input_mean: np.ndarray
    input_scale: np.ndarray
    layers: list[Layer] = field(default_factory=list)
    output: int = -1

    def add(self, kind: str, inputs: int | tuple[int, ...], **params: Any) -> int:
        """Append a layer and return the id of the node it produces."""
        if kind not in LAYER_KINDS:
            raise ModelFormatError(f"unknown layer kind {kind!r}; expected one of {LAYER_KINDS}")
        if isinstance(inputs, int):
            inputs = (inputs,)
        self.layers.append(Layer(kind, tuple(inputs), params))
        self.output = len(self.layers)
        return self.output

    def shapes(self) -> list[tuple[int, int, int]]:
        """Shape ``(C, H, W)`` of every node, validating the graph on the way."""
        shapes = [tuple(self.input_shape)]
        for index, layer in enumerate(self.layers):
            node = index + 1
            kind = LAYERS[layer.kind]
            if len(layer.inputs) != kind.arity:
                raise ModelFormatError(f"layer {node} ({layer.kind}) takes {kind.arity} input(s), "
                                       f"got {len(layer.inputs)}")
            for src in layer.inputs:
                if not 0 <= src < node:
                    raise ModelFormatError(f"layer {node} ({layer.kind}) reads node {src}, which is not an earlier node")
            check_params(kind, layer.params, node)
            shape = tuple(kind.shape([shapes[src] for src in layer.inputs], layer.params, node))
            if math.prod(shape) > MAX_NODE_VALUES:
                raise ModelFormatError(f"layer {node} ({layer.kind}) outputs {shape[0]}x{shape[1]}x{shape[2]} values "
                                       f"per image, more than any supported network ({MAX_NODE_VALUES})")
            shapes.append(shape)
        return shapes

    def architecture(self) -> dict[str, Any]:
        """The network without its weights, as JSON-serialisable data.

        Input shape, normalisation, output node, and per layer its kind, its
        inputs, its non-array parameters and the shapes of its arrays: what a
        reader compares with a known architecture to refuse a file whose
        strides, paddings or shapes were changed.
        """
        def describe(value: Any) -> Any:
            if isinstance(value, np.ndarray):
                return {"shape": list(value.shape)}
            return list(value) if isinstance(value, tuple) else value

        return {"input_shape": list(self.input_shape),
                "input_mean": np.asarray(self.input_mean, np.float64).round(6).tolist(),
                "input_scale": np.asarray(self.input_scale, np.float64).round(9).tolist(),
                "output": self.output,
                "layers": [{"kind": layer.kind, "inputs": list(layer.inputs),
                            "params": {k: describe(v) for k, v in sorted(layer.params.items()) if v is not None}}
                           for layer in self.layers]}

    def weights_digest(self) -> str:
        """SHA-256 over the architecture and every parameter: the model's identity."""
        digest = hashlib.sha256()
        digest.update(repr((self.input_shape, self.output)).encode())
        digest.update(np.ascontiguousarray(self.input_mean, np.float32).tobytes())
        digest.update(np.ascontiguousarray(self.input_scale, np.float32).tobytes())
        for layer in self.layers:
            digest.update(repr((layer.kind, layer.inputs)).encode())
            for key in sorted(layer.params):
                value = layer.params[key]
                digest.update(key.encode())
                if isinstance(value, np.ndarray):
                    digest.update(repr(value.shape).encode())
                    digest.update(np.ascontiguousarray(value, np.float32).tobytes())
                else:
                    digest.update(repr(value).encode())
        return digest.hexdigest()

    def flops_per_image(self) -> int:
        """Multiply-adds x 2 of the convolution and dense layers for one image."""
        shapes = self.shapes()
        return sum(LAYERS[layer.kind].flops([shapes[src] for src in layer.inputs], shapes[index + 1], layer.params)
                   for index, layer in enumerate(self.layers))
