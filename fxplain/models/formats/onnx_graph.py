"""An ONNX face-recognition graph translated onto fxplain's layer kinds (:class:`~fxplain.runtime.NetworkSpec`).

The graph is walked once, in its (topological) node order. Every tensor is
either a **constant** (an initializer, a ``Constant`` node, or a node whose
inputs are all constants, evaluated here: exports from PyTorch compute the
targets of ``Reshape`` and ``Pad`` from ``Shape``/``Gather``/``Concat``
chains) or an **activation** of one image: a node of the spec with its shape
``(C, H, W)`` (vectors are ``(D, 1, 1)``). The batch dimension is implicit:
the spec describes one image, and a ``Shape`` of an activation reports batch
1, which is what per-image reshapes then see.

Folding keeps the spec small and fast: BatchNormalization and constant
per-channel Mul/Add/Sub/Div become the weights and bias of the convolution
or dense layer before them when nothing else reads that layer's output,
else a ``scale_shift`` layer; a zero ``Pad`` becomes the padding of the
convolution after it; Dropout and Identity vanish. Anything else is refused
with :class:`~fxplain.ModelFormatError` naming the operator, the node and
what is supported.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..._util.errors import ModelFormatError
from ...runtime.spec import NetworkSpec

# The operator lists (ACTIVATION_OPS, FOLDED_OPS, SUPPORTED_OPS) are derived from the handler tables at the
# end of this module (_HANDLERS for operators on activations, _FOLDERS for operators evaluated on
# constants), so what the error messages and docs list is exactly what the translation does.
#: Largest constant the folding computes (values); weights of face models are far smaller per tensor.
MAX_CONSTANT_VALUES = 1 << 27


@dataclass
class Activation:
    """A tensor of one image: the spec node holding it and its shape (C, H, W)."""

    node: int
    shape: tuple[int, int, int]
    pad: tuple[int, int, int, int] | None = None  # a zero Pad not yet taken by a convolution (t, l, b, r)
    pad_channels: int = 0  # channels of zeros a Pad appends, taken by a sum (dlib's add_prev pads the skip)


class _Translation:
    """The state of one graph's translation (see the module docstring)."""

    def __init__(self, graph: Any, spec: NetworkSpec, input_name: str, name: str, bgr: bool = False):

        self.name = name
        self.bgr = bgr  # the model reads BGR: the convolutions reading the input take RGB with flipped weights
        self.spec = spec
        self.values: dict[str, Any] = {init.name: _tensor_value(init, name) for init in graph.initializer}
        self.values[input_name] = Activation(0, spec.input_shape)
        self.readers = Counter(i for node in graph.node for i in node.input if i)
        for out in graph.output:
            self.readers[out.name] += 1
        self.producer_of_node: dict[int, str] = {}  # spec node -> the ONNX tensor it holds

    # ---- errors and helpers ---------------------------------------------

    def fail(self, node: Any, message: str) -> ModelFormatError:
        label = f"node {node.name!r} ({node.op_type})" if node.name else f"a {node.op_type} node"
        return ModelFormatError(f"{self.name}: {label}: {message}")

    def unsupported(self, node: Any, what: str = "") -> ModelFormatError:
        return self.fail(node, f"{what or 'operator not supported'}; fxplain maps {', '.join(ACTIVATION_OPS)} "
                               f"on activations (and folds {', '.join(FOLDED_OPS)} on constants)")

    def value(self, node: Any, index: int) -> Any:
        if index >= len(node.input) or not node.input[index]:
            return None
        name = node.input[index]
        if name not in self.values:
            raise self.fail(node, f"input {name!r} is computed later or nowhere (the graph is not sorted)")
        return self.values[name]

    def activation(self, node: Any, index: int = 0) -> Activation:
        v = self.value(node, index)
        if not isinstance(v, Activation):
            raise self.fail(node, f"input {index} must be computed from the image, got a constant")
        if v.node == 0 and self.bgr and node.op_type not in ("Conv", "Pad"):
            raise self.fail(node, "channels='BGR' needs the image read by convolutions only (their weights take "
                                  "the channel order); this model reads it otherwise: convert its input instead")
        return v

    def constant(self, node: Any, index: int, what: str) -> np.ndarray:
        v = self.value(node, index)
        if not isinstance(v, np.ndarray):
            raise self.fail(node, f"{what} (input {index}) must be a constant, not computed from the image")
        return v

    def weights(self, node: Any, index: int, what: str) -> np.ndarray:
        """A constant that becomes layer parameters: floating point and finite, as float64."""
        v = self.constant(node, index, what)
        if v.dtype.kind != "f":
            raise self.fail(node, f"{what} (input {index}) must be floating point, got {v.dtype}")
        if not np.all(np.isfinite(v)):
            raise self.fail(node, f"{what} (input {index}) holds NaN or infinite values")
        return v.astype(np.float64)

    def add(self, node: Any, kind: str, inputs, out_name: str, **params: Any) -> Activation:
        spec_node = self.spec.add(kind, inputs, **params)
        try:
            shape = self.spec.shapes()[spec_node]
        except ModelFormatError as exc:
            raise self.fail(node, str(exc)) from None
        self.producer_of_node[spec_node] = out_name
        return Activation(spec_node, tuple(shape))

    def sole_layer(self, act: Activation, onnx_name: str, kinds: tuple[str, ...]):
        """The spec layer producing ``act`` if it is one of ``kinds`` and only one node reads it (so it can fold)."""
        if act.node == 0 or act.pad is not None or self.readers[onnx_name] != 1:
            return None
        layer = self.spec.layers[act.node - 1]
        return layer if layer.kind in kinds and self.producer_of_node.get(act.node) == onnx_name else None

    def materialize(self, node: Any, act: Activation) -> Activation:
        """An activation with a pending Pad that no convolution or sum took: refused."""
        if act.pad is not None or act.pad_channels:
            raise self.fail(node, "a Pad is followed by something other than a convolution or an Add; fxplain "
                                  "folds zero padding of H and W into the next Conv, and zero padding at the end "
                                  "into the sum it feeds")
        return act

    # ---- the walk -------------------------------------------------------

    def run(self, graph: Any) -> Activation:
        for node in graph.node:
            if node.domain not in ("", "ai.onnx"):
                raise self.unsupported(node, f"operator of domain {node.domain!r}")
            inputs = [self.values.get(i) if i else None for i in node.input]
            missing = [i for i, v in zip(node.input, inputs) if i and v is None and i not in self.values]
            if missing:
                raise self.fail(node, f"input {missing[0]!r} is computed later or nowhere (the graph is not sorted)")
            if node.op_type == "Constant" or (all(not isinstance(v, Activation) for v in inputs) and inputs):
                outputs = _fold(self, node, inputs)
            else:
                handler = _HANDLERS.get(node.op_type)
                if handler is None:
                    raise self.unsupported(node)
                try:
                    outputs = handler(self, node)
                except ModelFormatError:
                    raise
                except (IndexError, KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
                    # attributes the checker lets through but the operator cannot have (a pads list of 3)
                    raise self.fail(node, f"malformed attributes or inputs ({type(exc).__name__}: "
                                          f"{str(exc)[:200]})") from None
                if not isinstance(outputs, tuple):
                    outputs = (outputs,)
            for name, value in zip(node.output, outputs):
                if name:
                    self.values[name] = value
        if len(graph.output) != 1:
            raise ModelFormatError(f"{self.name}: the graph has {len(graph.output)} outputs; a face model has "
                                   "one (the embedding)")
        out = self.values.get(graph.output[0].name)
        if not isinstance(out, Activation):
            raise ModelFormatError(f"{self.name}: the graph's output does not depend on its input")
        if out.pad is not None or out.pad_channels:
            raise ModelFormatError(f"{self.name}: the graph ends with a Pad")
        if out.shape[1:] != (1, 1):
            raise ModelFormatError(f"{self.name}: the output has shape {out.shape} per image; a face model's "
                                   "embedding is a vector (add Flatten)")
        return out


def _tensor_value(tensor: Any, name: str) -> np.ndarray:
    """An initializer or Constant tensor as NumPy; a damaged or oversized one raises ModelFormatError."""
    from onnx import numpy_helper

    dims = [int(d) for d in tensor.dims]
    if any(d < 0 for d in dims) or int(np.prod(dims, dtype=np.float64)) > MAX_CONSTANT_VALUES:
        raise ModelFormatError(f"{name}: tensor {tensor.name!r} of shape {dims} is negative or too large")
    try:
        return np.asarray(numpy_helper.to_array(tensor))
    except Exception as exc:  # noqa: BLE001 - onnx raises ValueError, TypeError, ... on damaged tensors
        raise ModelFormatError(f"{name}: tensor {tensor.name!r} is damaged ({type(exc).__name__}: "
                               f"{str(exc)[:200]})") from None


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


# ---- constants ---------------------------------------------------------------

def _fold(t: _Translation, node: Any, inputs: list) -> tuple:
    """Evaluate a node on constants (see ``_FOLDERS``); numpy errors become ModelFormatError naming the node."""
    folder = _FOLDERS.get(node.op_type)
    if folder is None:
        raise t.unsupported(node, "operator not supported on constants")
    try:
        with np.errstate(all="raise"):  # overflow or NaN in a file's shape arithmetic: refused, not warned
            return folder(t, node, _attrs(node), inputs)
    except ModelFormatError:
        raise
    except (ValueError, TypeError, IndexError, KeyError, AttributeError, FloatingPointError, OverflowError,
            MemoryError) as exc:
        raise t.fail(node, f"cannot evaluate on its constant inputs: {type(exc).__name__}: {exc}") from None


# Each folder: (translation, node, attributes, constant inputs) -> the node's outputs, as a tuple.

def _fold_constant(t: _Translation, node: Any, a: dict, inputs: list) -> tuple:
    if "value" not in a:
        raise t.fail(node, f"only tensor constants are supported, got attributes {sorted(a)}")
    return (_tensor_value(a["value"], t.name),)


def _fold_shape(t: _Translation, node: Any, a: dict, inputs: list) -> tuple:
    return (np.array(np.shape(inputs[0]), np.int64)[a.get("start", 0):a.get("end", None)],)


def _fold_identity(t: _Translation, node: Any, a: dict, inputs: list) -> tuple:
    return (inputs[0],)


def _fold_cast(t: _Translation, node: Any, a: dict, inputs: list) -> tuple:
    from onnx import helper

    return (np.asarray(inputs[0]).astype(helper.tensor_dtype_to_np_dtype(a["to"])),)


def _fold_gather(t: _Translation, node: Any, a: dict, inputs: list) -> tuple:
    return (np.take(inputs[0], inputs[1], axis=a.get("axis", 0)),)


def _fold_unsqueeze(t: _Translation, node: Any, a: dict, inputs: list) -> tuple:
    axes = np.ravel(a.get("axes", inputs[1] if len(inputs) > 1 else None))
    out = np.asarray(inputs[0])
    for axis in sorted(int(v) % (out.ndim + axes.size) for v in axes):
        out = np.expand_dims(out, axis)
    return (out,)


def _fold_squeeze(t: _Translation, node: Any, a: dict, inputs: list) -> tuple:
    axes = a.get("axes", inputs[1] if len(inputs) > 1 else None)
    return (np.squeeze(inputs[0], axis=None if axes is None else tuple(int(v) for v in np.ravel(axes))),)


def _fold_concat(t: _Translation, node: Any, a: dict, inputs: list) -> tuple:
    return (np.concatenate([np.atleast_1d(v) for v in inputs], axis=a["axis"]),)


def _fold_reshape(t: _Translation, node: Any, a: dict, inputs: list) -> tuple:
    x = inputs[0]
    target = [int(v) for v in inputs[1]]
    target = [x.shape[i] if v == 0 else v for i, v in enumerate(target)]
    return (np.reshape(x, target),)


def _fold_slice(t: _Translation, node: Any, a: dict, inputs: list) -> tuple:
    x, starts, ends = inputs[0], inputs[1], inputs[2]
    axes = inputs[3] if len(inputs) > 3 and inputs[3] is not None else range(len(starts))
    steps = inputs[4] if len(inputs) > 4 and inputs[4] is not None else [1] * len(starts)
    index = [slice(None)] * np.ndim(x)
    for s, e, ax, st in zip(starts, ends, axes, steps):
        index[int(ax)] = slice(int(s), int(e), int(st))
    return (np.asarray(x)[tuple(index)],)


_ARITHMETIC = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}


def _fold_arithmetic(t: _Translation, node: Any, a: dict, inputs: list) -> tuple:
    x, b = inputs[0], inputs[1]
    if node.op_type == "Div" and np.issubdtype(np.asarray(x).dtype, np.integer):
        return ((np.asarray(x) // b).astype(np.asarray(x).dtype),)
    return (_ARITHMETIC[node.op_type](x, b).astype(np.result_type(x, b)),)


def _fold_constant_of_shape(t: _Translation, node: Any, a: dict, inputs: list) -> tuple:
    shape = [int(v) for v in np.ravel(inputs[0])]
    if int(np.prod(shape)) > MAX_CONSTANT_VALUES:
        raise t.fail(node, f"a constant of shape {shape} is too large")
    fill = _tensor_value(a["value"], t.name) if "value" in a else np.zeros(1, np.float32)
    return (np.full(shape, fill.ravel()[0], fill.dtype),)


def _fold_transpose(t: _Translation, node: Any, a: dict, inputs: list) -> tuple:
    return (np.transpose(inputs[0], a.get("perm")),)


def _fold_range(t: _Translation, node: Any, a: dict, inputs: list) -> tuple:
    start, limit, delta = (float(np.ravel(v)[0]) for v in inputs[:3])
    if delta == 0 or not 0 <= (limit - start) / delta <= MAX_CONSTANT_VALUES:
        raise t.fail(node, f"a Range of ({start}, {limit}, {delta}) is empty-stepped or too long")
    return (np.arange(inputs[0], inputs[1], inputs[2]),)


def _fold_neg(t: _Translation, node: Any, a: dict, inputs: list) -> tuple:
    return (-np.asarray(inputs[0]),)


def _fold_sqrt(t: _Translation, node: Any, a: dict, inputs: list) -> tuple:
    return (np.sqrt(inputs[0]),)


def _shape_of(t: _Translation, node: Any) -> Any:
    """``Shape`` of an activation: (1, C, H, W), the batch being one image."""
    act = t.value(node, 0)
    start, end = _attrs(node).get("start", 0), _attrs(node).get("end", None)
    return np.array((1,) + act.shape, np.int64)[start:end]


# ---- convolution and dense -------------------------------------------------------

def _pads(node: Any, attrs: dict, in_hw: tuple[int, int], kernel, strides, dilations) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of a Conv or pool, from ``pads`` or ``auto_pad``."""
    auto = attrs.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto in ("NOTSET", "VALID"):
        pads = [int(v) for v in attrs.get("pads", [0, 0, 0, 0])] if auto == "NOTSET" else [0, 0, 0, 0]
        if len(pads) != 4 or min(pads) < 0:
            raise ModelFormatError(f"node {node.name!r} ({node.op_type}): pads {pads}: expected 4 values >= 0")
        return pads[0], pads[1], pads[2], pads[3]
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        raise ModelFormatError(f"node {node.name!r} ({node.op_type}): unknown auto_pad {auto!r}")
    begin, end = [], []
    for size, k, s, d in zip(in_hw, kernel, strides, dilations):
        out = -(-size // s)
        total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
        small, large = total // 2, total - total // 2
        begin.append(small if auto == "SAME_UPPER" else large)
        end.append(large if auto == "SAME_UPPER" else small)
    return begin[0], begin[1], end[0], end[1]


def _pair(t: _Translation, node: Any, attrs: dict, name: str) -> tuple[int, int]:
    """A 2-D window attribute (strides, dilations, kernel_shape): two integers >= 1 (default 1, 1)."""
    values = tuple(int(v) for v in attrs.get(name, (1, 1)))
    if len(values) != 2 or min(values) < 1:
        raise t.fail(node, f"{name} {list(values)}: expected 2 values >= 1 (2-D images)")
    return values


def _conv(t: _Translation, node: Any) -> Activation:
    act = t.activation(node)
    weight = t.weights(node, 1, "the weight").astype(np.float32)
    if act.node == 0 and t.bgr:
        weight = np.ascontiguousarray(weight[:, ::-1])
    bias = t.weights(node, 2, "the bias") if t.value(node, 2) is not None else None
    a = _attrs(node)
    if weight.ndim != 4:
        raise t.fail(node, f"only 2-D convolutions are supported (weight of shape {weight.shape})")
    kernel = tuple(weight.shape[2:])
    strides = _pair(t, node, a, "strides")
    dilations = _pair(t, node, a, "dilations")
    groups = int(a.get("group", 1))
    top, left, bottom, right = _pads(node, a, act.shape[1:], kernel, strides, dilations)
    if act.pad_channels:
        raise t.fail(node, "a convolution of an input padded with zero channels is not supported")
    if act.pad is not None:  # a zero Pad before the convolution
        top, left, bottom, right = (top + act.pad[0], left + act.pad[1], bottom + act.pad[2], right + act.pad[3])
    params: dict[str, Any] = {"weight": weight, "bias": None if bias is None else bias.astype(np.float32),
                              "stride": strides, "padding": (top, left)}
    if (bottom, right) != (top, left):
        params["padding_end"] = (bottom, right)
    if dilations != (1, 1):
        params["dilation"] = dilations
    if groups != 1:
        params["groups"] = groups
    return t.add(node, "conv", act.node, node.output[0], **params)


def _dense(t: _Translation, node: Any, act: Activation, weight: np.ndarray, bias: np.ndarray | None) -> Activation:
    """A dense layer ``y = W x + b`` on the flattened activation, ``W`` of shape (out, in)."""
    act = t.materialize(node, act)
    size = int(np.prod(act.shape))
    if weight.ndim != 2 or weight.shape[1] != size:
        raise t.fail(node, f"a weight of shape {weight.shape} cannot multiply {size} inputs")
    return t.add(node, "dense", act.node, node.output[0], weight=np.ascontiguousarray(weight, np.float32),
                 bias=None if bias is None else np.ascontiguousarray(np.ravel(bias), np.float32))


def _gemm(t: _Translation, node: Any) -> Activation:
    a = _attrs(node)
    if a.get("transA", 0):
        raise t.fail(node, "transA=1 is not supported")
    act = t.activation(node)
    b = t.weights(node, 1, "B") * float(a.get("alpha", 1.0))
    weight = b if a.get("transB", 0) else b.T
    c = t.weights(node, 2, "C") if t.value(node, 2) is not None else None
    bias = None if c is None else np.broadcast_to(np.ravel(c) * float(a.get("beta", 1.0)), (weight.shape[0],))
    return _dense(t, node, act, weight, bias)


def _matmul(t: _Translation, node: Any) -> Activation:
    act = t.activation(node)
    b = t.weights(node, 1, "the right-hand matrix")
    if b.ndim != 2:
        raise t.fail(node, f"only an activation times a constant matrix is supported (got {b.shape})")
    return _dense(t, node, act, b.T, None)


# ---- per-channel affine: BatchNormalization and constant arithmetic ----------------

def _affine(t: _Translation, node: Any, act: Activation, scale: np.ndarray, shift: np.ndarray) -> Activation:
    """``y = x * scale[c] + shift[c]``: folded into the conv/dense before it when only this node reads it."""
    act = t.materialize(node, act)
    channels = act.shape[0]
    scale = np.broadcast_to(np.asarray(scale, np.float64), (channels,))
    shift = np.broadcast_to(np.asarray(shift, np.float64), (channels,))
    layer = t.sole_layer(act, node.input[0], ("conv", "dense"))
    if layer is not None:
        w = np.asarray(layer.params["weight"], np.float64)
        b = layer.params.get("bias")
        b = np.zeros(channels) if b is None else np.asarray(b, np.float64)
        layer.params["weight"] = (w * scale.reshape((-1,) + (1,) * (w.ndim - 1))).astype(np.float32)
        layer.params["bias"] = (b * scale + shift).astype(np.float32)
        t.producer_of_node[act.node] = node.output[0]  # the folded layer now holds this node's output
        return act
    return t.add(node, "scale_shift", act.node, node.output[0], scale=scale.astype(np.float32),
                 shift=shift.astype(np.float32))


def _batch_norm(t: _Translation, node: Any) -> Activation:
    act = t.activation(node)
    gamma, beta, mean, var = (t.weights(node, i, what) for i, what in
                              ((1, "scale"), (2, "bias"), (3, "mean"), (4, "variance")))
    eps = float(_attrs(node).get("epsilon", 1e-5))
    if not (gamma.shape == beta.shape == mean.shape == var.shape == (act.shape[0],)):
        raise t.fail(node, f"parameters of shapes {gamma.shape}, {beta.shape}, {mean.shape}, {var.shape} for "
                           f"{act.shape[0]} channels")
    if np.any(var + eps <= 0):
        raise t.fail(node, "variance + epsilon must be positive")
    scale = gamma / np.sqrt(var + eps)
    return _affine(t, node, act, scale, beta - mean * scale)


def _channel_constant(t: _Translation, node: Any, c: np.ndarray, act: Activation) -> np.ndarray | None:
    """A constant broadcasting per channel over ``act`` (scalar, (C,), (C,1,1), (1,C,1,1), (1,C)), as (C,); else None."""
    c = np.asarray(c, np.float64)
    channels = act.shape[0]
    if c.size == 1:
        return np.full(channels, float(c.ravel()[0]))
    squeezed = c.reshape([d for d in c.shape if d != 1] or [1])
    per_image = (channels, 1, 1)
    if squeezed.shape == (channels,) and (c.ndim <= 2 or c.shape[-len(per_image):] == per_image
                                          or c.shape[-2:] == (1, 1)):
        return squeezed
    return None


def _padded_shape(act: Activation) -> tuple[int, int, int]:
    pad = act.pad or (0, 0, 0, 0)
    return (act.shape[0] + act.pad_channels, act.shape[1] + pad[2], act.shape[2] + pad[3])


def _end_padded(t: _Translation, node: Any, act: Activation) -> Activation:
    """An Add's input: a pending Pad must pad at the end only (the sum pads there)."""
    if act.pad is not None and (act.pad[0] or act.pad[1]):
        raise t.fail(node, "an Add of an activation padded at its start; fxplain's sum pads at the end only")
    return act


def _arithmetic(t: _Translation, node: Any) -> Activation:
    op = node.op_type
    x, y = t.value(node, 0), t.value(node, 1)
    if isinstance(x, Activation) and isinstance(y, Activation):
        if op == "Add":
            x, y = _end_padded(t, node, x), _end_padded(t, node, y)
            if _padded_shape(x) != _padded_shape(y):
                raise t.fail(node, f"an Add of activations of shapes {_padded_shape(x)} and {_padded_shape(y)}")
            # the core's sum zero-pads both at the end of C, H and W to the larger shape: the Pad's own work
            return t.add(node, "sum", (x.node, y.node), node.output[0])
        x, y = t.materialize(node, x), t.materialize(node, y)
        if op == "Mul":
            return t.add(node, "mul", (x.node, y.node), node.output[0])
        raise t.unsupported(node, f"{op} of two activations")
    act, c, act_first = (x, y, True) if isinstance(x, Activation) else (y, x, False)
    c = t.weights(node, 1 if act_first else 0, "the constant")
    per_channel = _channel_constant(t, node, c, act)
    if per_channel is None:
        raise t.fail(node, f"a constant of shape {np.shape(c)} does not broadcast per channel over {act.shape}")
    ones, zeros = np.ones_like(per_channel), np.zeros_like(per_channel)
    if op == "Add":
        return _affine(t, node, act, ones, per_channel)
    if op == "Mul":
        return _affine(t, node, act, per_channel, zeros)
    if op == "Sub":
        return _affine(t, node, act, ones, -per_channel) if act_first else _affine(t, node, act, -ones, per_channel)
    if act_first:  # Div by a constant
        if np.any(per_channel == 0):
            raise t.fail(node, "division by zero")
        return _affine(t, node, act, 1.0 / per_channel, zeros)
    raise t.unsupported(node, "a constant divided by an activation")


# ---- activations -----------------------------------------------------------------

def _relu(t: _Translation, node: Any) -> Activation:
    return t.add(node, "relu", t.materialize(node, t.activation(node)).node, node.output[0])


def _sigmoid(t: _Translation, node: Any) -> Activation:
    return t.add(node, "sigmoid", t.materialize(node, t.activation(node)).node, node.output[0])


def _leaky_relu(t: _Translation, node: Any) -> Activation:
    act = t.materialize(node, t.activation(node))
    return t.add(node, "leaky_relu", act.node, node.output[0], alpha=float(_attrs(node).get("alpha", 0.01)))


def _prelu(t: _Translation, node: Any) -> Activation:
    act = t.materialize(node, t.activation(node))
    slope = _channel_constant(t, node, t.weights(node, 1, "the slope"), act)
    if slope is None:
        raise t.fail(node, "the slope must be shared or one per channel")
    return t.add(node, "prelu", act.node, node.output[0], slope=slope.astype(np.float32))


# ---- pooling -----------------------------------------------------------------------

def _pool(t: _Translation, node: Any) -> Activation:
    act = t.materialize(node, t.activation(node))
    a = _attrs(node)
    if "kernel_shape" not in a:
        raise t.fail(node, "kernel_shape is missing")
    kernel = _pair(t, node, a, "kernel_shape")
    strides = _pair(t, node, a, "strides")
    if _pair(t, node, a, "dilations") != (1, 1):
        raise t.fail(node, "only 2-D pooling without dilation is supported")
    top, left, bottom, right = _pads(node, a, act.shape[1:], kernel, strides, (1, 1))
    if a.get("ceil_mode", 0):  # ceil rounding = floor rounding with enough extra padding at the end
        h, w = act.shape[1:]
        extra = [(-(in_ + b + e - k) % s) for in_, b, e, k, s in
                 ((h, top, bottom, kernel[0], strides[0]), (w, left, right, kernel[1], strides[1]))]
        bottom, right = bottom + extra[0], right + extra[1]
    kind = "max_pool" if node.op_type == "MaxPool" else "avg_pool"
    if kind == "avg_pool" and a.get("count_include_pad", 0) and (top, left, bottom, right) != (0, 0, 0, 0):
        raise t.fail(node, "count_include_pad=1 with padding is not supported (fxplain's average excludes padding)")
    params: dict[str, Any] = {"kernel": kernel, "stride": strides, "padding": (top, left)}
    if (bottom, right) != (top, left):
        params["padding_end"] = (bottom, right)
    return t.add(node, kind, act.node, node.output[0], **params)


def _global_pool(t: _Translation, node: Any) -> Activation:
    return t.add(node, "global_avg_pool", t.materialize(node, t.activation(node)).node, node.output[0])


def _reduce_mean(t: _Translation, node: Any) -> Activation:
    act = t.materialize(node, t.activation(node))
    a = _attrs(node)
    axes = a.get("axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        axes = t.constant(node, 1, "the axes")
    if axes is None or sorted(int(v) % 4 for v in np.ravel(axes)) != [2, 3]:
        raise t.fail(node, f"only the mean over H and W (axes 2, 3) is supported, got axes {axes}")
    return t.add(node, "global_avg_pool", act.node, node.output[0])  # keepdims or not: (C, 1, 1) per image


# ---- shapes ------------------------------------------------------------------------

def _pad(t: _Translation, node: Any) -> Activation:
    act = t.activation(node)
    a = _attrs(node)
    mode = a.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    pads = a.get("pads")
    if pads is None:
        pads = t.constant(node, 1, "the pads")
    value = t.value(node, 2) if len(node.input) > 2 else None
    pads = [int(v) for v in np.ravel(pads)]
    if mode != "constant" or (value is not None and np.any(np.asarray(value) != 0)) or float(a.get("value", 0)):
        raise t.fail(node, f"only zero padding is supported (mode {mode!r})")
    if len(pads) != 8 or any(pads[i] for i in (0, 1, 4)) or min(pads) < 0:
        raise t.fail(node, f"only non-negative padding of H and W, and of channels at the end, is supported, "
                           f"got pads {pads}")
    before = act.pad or (0, 0, 0, 0)
    pending = (before[0] + pads[2], before[1] + pads[3], before[2] + pads[6], before[3] + pads[7])
    return Activation(act.node, act.shape, pending, act.pad_channels + pads[5])


def _concat(t: _Translation, node: Any) -> Activation:
    if _attrs(node).get("axis") not in (1, -3):
        raise t.fail(node, f"only concatenation along channels (axis 1) is supported, got {_attrs(node).get('axis')}")
    parts = [t.materialize(node, t.activation(node, i)) for i in range(len(node.input))]
    out = parts[0]
    for part in parts[1:]:
        out = t.add(node, "concat", (out.node, part.node), node.output[0])
    return out


def _flatten(t: _Translation, node: Any) -> Activation:
    act = t.materialize(node, t.activation(node))
    if _attrs(node).get("axis", 1) != 1:
        raise t.fail(node, "only Flatten(axis=1) (one vector per image) is supported")
    return _as_vector(t, node, act)


def _as_vector(t: _Translation, node: Any, act: Activation) -> Activation:
    if act.shape[1:] == (1, 1):
        return act
    return t.add(node, "reshape", act.node, node.output[0], shape=(int(np.prod(act.shape)), 1, 1))


def _reshape(t: _Translation, node: Any) -> Activation:
    act = t.materialize(node, t.activation(node))
    target = [int(v) for v in np.ravel(t.constant(node, 1, "the shape"))]
    size = int(np.prod(act.shape))
    per_image = target[1:] if target and target[0] in (1, -1, 0) and len(target) > 1 else target
    per_image = [act.shape[i] if v == 0 and i < 3 else v for i, v in enumerate(per_image)]
    if per_image.count(-1) == 1:
        known = int(np.prod([v for v in per_image if v != -1]))
        per_image[per_image.index(-1)] = size // known if known and size % known == 0 else -2
    if int(np.prod(per_image)) != size or min(per_image, default=0) < 1:
        raise t.fail(node, f"cannot reshape one image's {act.shape} to {target}")
    if len(per_image) == 1 or all(v == 1 for v in per_image[1:]):
        return _as_vector(t, node, act)
    if len(per_image) == 3:
        if tuple(per_image) == act.shape:
            return act
        return t.add(node, "reshape", act.node, node.output[0], shape=tuple(per_image))
    raise t.fail(node, f"only reshapes to vectors or to (C, H, W) are supported, got {target}")


def _vector_view(t: _Translation, node: Any) -> Activation:
    """Unsqueeze/Squeeze of a vector's trailing unit axes: (N, D) and (N, D, 1, 1) are one thing per image."""
    act = t.materialize(node, t.activation(node))
    axes = _attrs(node).get("axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        axes = t.constant(node, 1, "the axes")
    trailing = {2, 3, -1, -2}  # the unit axes after (N, D)
    if act.shape[1:] != (1, 1) or axes is None or not {int(v) for v in np.ravel(axes)} <= trailing:
        raise t.unsupported(node, f"{node.op_type} other than of a vector's trailing unit axes")
    return act


def _slice(t: _Translation, node: Any) -> Activation:
    """A Slice that keeps everything (exports write ``x[:, :]``): the activation itself; any other is refused."""
    act = t.materialize(node, t.activation(node))
    starts, ends = t.constant(node, 1, "starts"), t.constant(node, 2, "ends")
    axes = t.constant(node, 3, "axes") if len(node.input) > 3 and node.input[3] else np.arange(len(starts))
    steps = t.constant(node, 4, "steps") if len(node.input) > 4 and node.input[4] else np.ones(len(starts))
    dims = (1,) + act.shape
    for start, end, axis, step in zip(np.ravel(starts), np.ravel(ends), np.ravel(axes), np.ravel(steps)):
        axis = int(axis) % 4
        if int(step) != 1 or int(start) != 0 or int(end) < dims[axis]:
            raise t.unsupported(node, "a Slice of an activation that drops values")
    return act


def _alias(t: _Translation, node: Any):
    act = t.activation(node)
    return (act, None) if node.op_type == "Dropout" else act


_HANDLERS = {
    "Conv": _conv, "BatchNormalization": _batch_norm, "Relu": _relu, "PRelu": _prelu, "LeakyRelu": _leaky_relu,
    "Sigmoid": _sigmoid, "Add": _arithmetic, "Sub": _arithmetic, "Mul": _arithmetic, "Div": _arithmetic,
    "MaxPool": _pool, "AveragePool": _pool, "GlobalAveragePool": _global_pool, "ReduceMean": _reduce_mean,
    "Pad": _pad, "Concat": _concat, "Flatten": _flatten, "Reshape": _reshape, "Gemm": _gemm, "MatMul": _matmul,
    "Dropout": _alias, "Identity": _alias, "Shape": _shape_of, "Unsqueeze": _vector_view, "Squeeze": _vector_view,
    "Slice": _slice,
}

#: Operators evaluated on constants (shape arithmetic of exports, weight preprocessing): op_type -> folder.
_FOLDERS = {
    "Constant": _fold_constant, "Shape": _fold_shape, "Gather": _fold_gather, "Unsqueeze": _fold_unsqueeze,
    "Squeeze": _fold_squeeze, "Concat": _fold_concat, "Cast": _fold_cast, "Reshape": _fold_reshape,
    "Slice": _fold_slice, "Add": _fold_arithmetic, "Sub": _fold_arithmetic, "Mul": _fold_arithmetic,
    "Div": _fold_arithmetic, "ConstantOfShape": _fold_constant_of_shape, "Identity": _fold_identity,
    "Transpose": _fold_transpose, "Range": _fold_range, "Neg": _fold_neg, "Sqrt": _fold_sqrt,
}

#: The operators an activation (a tensor computed from the image) may go through: the keys of ``_HANDLERS``.
ACTIVATION_OPS = tuple(_HANDLERS)
#: Operators evaluated on constants: the keys of ``_FOLDERS``.
FOLDED_OPS = tuple(_FOLDERS)
#: Every operator the import reads, on activations or on constants (derived from the two tables).
SUPPORTED_OPS = tuple(sorted(set(ACTIVATION_OPS) | set(FOLDED_OPS)))


def translate_graph(graph: Any, spec: NetworkSpec, input_name: str, name: str, *, bgr: bool = False) -> NetworkSpec:
    """Append ``graph``'s layers to ``spec`` (whose input is ``input_name``) and set its output; see the module doc.

    ``bgr``: the model reads its channels in BGR order; the convolutions that
    read the image get their input channels flipped, so the spec reads RGB.
    """
    translation = _Translation(graph, spec, input_name, name, bgr)
    out = translation.run(graph)
    if out.node == 0:
        raise ModelFormatError(f"{name}: the graph's output is its input")
    spec.output = out.node
    return spec
