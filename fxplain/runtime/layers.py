"""The table of layer kinds: for each kind, everything fxplain's Python side knows about it.

One :class:`LayerKind` per kind holds its shape rule (validating parameters
against the input), how to add it to the C core's ``_core.Net``, and its
NumPy reference forward and backward passes (the test oracle, kernels in
:mod:`fxplain.runtime.numpy_ops`). :class:`~fxplain.runtime.spec.NetworkSpec`,
:func:`~fxplain.runtime.core_net.build_core_net` and
:mod:`fxplain.runtime.reference` all dispatch through :data:`LAYERS`, so a new
kind is added here (plus its C side, see docs/runtime.md) and nowhere else.

Shapes are ``(C, H, W)`` of one image; a shape rule raises
:class:`~fxplain.ModelFormatError` naming the layer's node when the
parameters do not fit the input, because specs come from untrusted files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._util.errors import ModelFormatError
from . import numpy_ops as ops

Shape = tuple[int, int, int]


def _f32(array) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=np.float32)


def _bias(params: dict) -> np.ndarray | None:
    return None if params.get("bias") is None else _f32(params["bias"])


#: Largest kernel, stride or padding (the C core's FX_MAX_DIM).
_MAX_WINDOW = 1 << 16


def _windowed(size: int, kernel: int, stride: int, pad: int, node: int, pad_end: int | None = None,
              dilation: int = 1) -> int:
    """Output length of a sliding window (floor rounding), checking the window's numbers.

    ``out = (size + pad + pad_end - dilation * (kernel - 1) - 1) // stride + 1``, ``pad_end``
    defaulting to ``pad``. The same rules as the C core's ``check_window`` (net_graph.c), so
    that a file the core would refuse is refused when it is read, naming the layer.
    """
    pad_end = pad if pad_end is None else pad_end
    if not (1 <= kernel <= _MAX_WINDOW and 1 <= stride <= _MAX_WINDOW and 0 <= pad <= _MAX_WINDOW
            and 0 <= pad_end <= _MAX_WINDOW and 1 <= dilation <= _MAX_WINDOW):
        raise ModelFormatError(f"layer {node}: invalid window (kernel {kernel}, stride {stride}, padding {pad}, "
                               f"end padding {pad_end}, dilation {dilation})")
    extent = dilation * (kernel - 1) + 1
    if extent > _MAX_WINDOW:
        raise ModelFormatError(f"layer {node}: a kernel of {kernel} dilated by {dilation} is too wide")
    if pad >= extent or pad_end >= extent:
        raise ModelFormatError(f"layer {node}: padding {pad} (end {pad_end}) must be smaller than the kernel {extent}")
    out = (size + pad + pad_end - extent) // stride + 1
    if out < 1:
        raise ModelFormatError(f"layer {node}: a {extent}-wide window does not fit an input of size {size}")
    return out


def _end(p: dict, axis: int) -> int:
    """End (bottom/right) padding of a conv or pool: ``padding_end``, else ``padding``."""
    end = p.get("padding_end")
    return int((p["padding"] if end is None else end)[axis])


def _dilation(p: dict, axis: int) -> int:
    return int((p.get("dilation") or (1, 1))[axis])


def _same_shape(shapes: list[Shape], params: dict, node: int) -> Shape:
    return shapes[0]


def _per_channel(*names: str):
    """A shape rule for a layer with one value per input channel in each of ``names``."""
    def shape(shapes: list[Shape], params: dict, node: int) -> Shape:
        for name in names:
            _expect_length(params[name], shapes[0][0], name, node)
        return shapes[0]
    return shape


def _expect_length(array: np.ndarray | None, length: int, name: str, node: int) -> None:
    if array is not None and array.shape != (length,):
        raise ModelFormatError(f"layer {node}: {name} has shape {array.shape}, expected ({length},)")


def check_params(kind: LayerKind, params: dict, node: int) -> None:
    """Refuse parameters that are not exactly the kind's, of its types (ModelFormatError naming the layer).

    Specs come from untrusted files, whose JSON can put a dict where an
    array belongs or drop a stride; the shape rules and the C core can then
    rely on the types.
    """
    expected = kind.params
    optional = {name for name, code in expected.items() if code.endswith("?")}
    if not set(expected) - optional <= set(params) <= set(expected):
        raise ModelFormatError(f"layer {node} ({kind.name}) takes parameters {sorted(expected)}, "
                               f"got {sorted(params)}")
    for name, value in params.items():
        code = expected[name].rstrip("?")
        if code.startswith("array"):
            ok = (value is None and name in optional) or (
                isinstance(value, np.ndarray) and value.ndim == int(code[5:]) and value.dtype.kind == "f")
        elif value is None and name in optional:
            ok = True  # an optional parameter given as None means its default
        elif code in ("pair", "triple"):
            ok = isinstance(value, (tuple, list)) and len(value) == (2 if code == "pair" else 3) and all(
                isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)
        elif code == "int":
            ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
        elif code == "scalar":
            ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
                and bool(np.isfinite(value)) and abs(float(value)) <= _MAX_FLOAT32
        else:
            ok = isinstance(value, str)
        if not ok:
            shown = f"an array of shape {value.shape}" if isinstance(value, np.ndarray) else repr(value)[:80]
            raise ModelFormatError(f"layer {node} ({kind.name}) parameter {name!r} must be {_DESCRIBE[code]}, "
                                   f"got {shown}")


_DESCRIBE = {"array1": "a 1-D float array", "array2": "a 2-D float array", "array4": "a 4-D float array",
             "pair": "2 integers", "triple": "3 integers", "int": "an integer", "mode": "a string",
             "scalar": "a finite number (float32 range)"}

#: Largest float32: a "scalar" parameter must survive the conversion to the core's float.
_MAX_FLOAT32 = float(np.finfo(np.float32).max)


def _no_flops(shapes: list[Shape], out: Shape, params: dict) -> int:
    return 0


@dataclass(frozen=True)
class LayerKind:
    """Everything about one layer kind.

    Attributes
    ----------
    name : str
        The kind's name in specs and files (``"conv"``, ``"max_pool"``, ...).
    arity : int
        Number of input nodes.
    shape : callable
        ``shape(input_shapes, params, node) -> (C, H, W)``; raises ModelFormatError.
    build : callable
        ``build(net, inputs, params) -> node id``: adds the layer to a ``_core.Net``.
    forward : callable
        ``forward(inputs, params) -> array``: the NumPy reference on NCHW float64 arrays.
    backward : callable
        ``backward(inputs, output, dy, params) -> [d input for each input]``.
    parameter_gradients : callable or None
        ``(x, dy, params) -> (d weight, d bias)`` for layers with trainable
        weights (conv, dense); None for the others.
    flops : callable
        ``flops(input_shapes, output_shape, params) -> int`` multiply-adds x 2 per image.
    params : dict
        The parameters the kind takes and their types (``"array1"``: a 1-D
        array, ``"array1?"``: one or None, ``"array2"``, ``"array4"``,
        ``"pair"``/``"triple"``: 2 or 3 integers, ``"int"``: an integer,
        ``"scalar"``: a finite number within float32's range, ``"mode"``: a
        string; a trailing ``"?"`` makes any of them optional: absent or None
        means its default), checked by :func:`check_params` before the shape
        rule runs.
    """

    name: str
    arity: int
    shape: Callable[[list[Shape], dict, int], Shape]
    build: Callable[[Any, tuple[int, ...], dict], int]
    forward: Callable[[list[np.ndarray], dict], np.ndarray]
    backward: Callable[[list[np.ndarray], np.ndarray, np.ndarray, dict], list[np.ndarray]]
    parameter_gradients: Callable[[np.ndarray, np.ndarray, dict], tuple] | None = None
    flops: Callable[[list[Shape], Shape, dict], int] = _no_flops
    params: dict[str, str] = field(default_factory=dict)

    @property
    def trainable(self) -> bool:
        """Has weights that training and the randomisation test change (conv, dense)."""
        return self.parameter_gradients is not None


# ---- conv -------------------------------------------------------------------

def _groups(p: dict) -> int:
    return 1 if p.get("groups") is None else int(p["groups"])


def _conv_shape(shapes, p, node):
    c, h, w = shapes[0]
    o, i, kh, kw = p["weight"].shape
    groups = _groups(p)
    if not 1 <= groups <= c or c % groups or o % groups:
        raise ModelFormatError(f"layer {node} (conv): groups {groups} must divide its {c} input and {o} output "
                               "channels")
    if i * groups != c:
        raise ModelFormatError(f"layer {node} (conv) expects {i * groups} input channels ({i} per group x "
                               f"{groups}), its input has {c}")
    _expect_length(p.get("bias"), o, "bias", node)
    return (o, _windowed(h, kh, p["stride"][0], p["padding"][0], node, _end(p, 0), _dilation(p, 0)),
            _windowed(w, kw, p["stride"][1], p["padding"][1], node, _end(p, 1), _dilation(p, 1)))


def _conv_window(p: dict) -> dict:
    """The optional window parameters of a conv, with their defaults, as keyword arguments."""
    return {"padding_end": (_end(p, 0), _end(p, 1)), "dilation": (_dilation(p, 0), _dilation(p, 1)),
            "groups": _groups(p)}


_CONV = LayerKind(
    "conv", 1, _conv_shape,
    params={"weight": "array4", "bias": "array1?", "stride": "pair", "padding": "pair", "padding_end": "pair?",
            "dilation": "pair?", "groups": "int?"},
    build=lambda net, src, p: net.add_conv(src[0], _f32(p["weight"]), _bias(p), tuple(p["stride"]),
                                           tuple(p["padding"]), **_conv_window(p)),
    forward=lambda x, p: ops.conv2d(x[0], p["weight"], p.get("bias"), p["stride"], p["padding"], **_conv_window(p)),
    backward=lambda x, y, dy, p: [ops.conv2d_backward(dy, p["weight"], p["stride"], p["padding"], x[0].shape,
                                                      **_conv_window(p))],
    parameter_gradients=lambda x, dy, p: ops.conv2d_weight_gradient(x, dy, p["weight"].shape[2:], p["stride"],
                                                                    p["padding"], **_conv_window(p)),
    # the weight holds I/groups inputs per output, so its size already counts a grouped conv's work
    flops=lambda shapes, out, p: 2 * int(np.prod(p["weight"].shape)) * out[1] * out[2],
)

# ---- per-channel and element-wise layers ------------------------------------

_SCALE_SHIFT = LayerKind(
    "scale_shift", 1, _per_channel("scale", "shift"), params={"scale": "array1", "shift": "array1"},
    build=lambda net, src, p: net.add_scale_shift(src[0], _f32(p["scale"]), _f32(p["shift"])),
    forward=lambda x, p: ops.scale_shift(x[0], p["scale"], p["shift"]),
    backward=lambda x, y, dy, p: [dy * np.asarray(p["scale"], np.float64)[None, :, None, None]],
)

_RELU = LayerKind(
    "relu", 1, _same_shape,
    build=lambda net, src, p: net.add_relu(src[0]),
    forward=lambda x, p: ops.relu(x[0]),
    backward=lambda x, y, dy, p: [dy * (y > 0)],
)

_PRELU = LayerKind(
    "prelu", 1, _per_channel("slope"), params={"slope": "array1"},
    build=lambda net, src, p: net.add_prelu(src[0], _f32(p["slope"])),
    forward=lambda x, p: ops.prelu(x[0], p["slope"]),
    backward=lambda x, y, dy, p: [np.where(x[0] > 0, dy, dy * np.asarray(p["slope"], np.float64)[None, :, None, None])],
)

_LEAKY_RELU = LayerKind(
    "leaky_relu", 1, _same_shape, params={"alpha": "scalar"},
    build=lambda net, src, p: net.add_leaky_relu(src[0], float(p["alpha"])),
    forward=lambda x, p: ops.leaky_relu(x[0], p["alpha"]),
    backward=lambda x, y, dy, p: [np.where(x[0] > 0, dy, dy * float(p["alpha"]))],
)

_SIGMOID = LayerKind(
    "sigmoid", 1, _same_shape,
    build=lambda net, src, p: net.add_sigmoid(src[0]),
    forward=lambda x, p: ops.sigmoid(x[0]),
    backward=lambda x, y, dy, p: [dy * y * (1.0 - y)],  # from the output, as the core does
)

# ---- pooling ----------------------------------------------------------------

def _pool_shape(shapes, p, node):
    c, h, w = shapes[0]
    kh, kw = p["kernel"]
    return (c, _windowed(h, kh, p["stride"][0], p["padding"][0], node, _end(p, 0)),
            _windowed(w, kw, p["stride"][1], p["padding"][1], node, _end(p, 1)))


def _pool(name: str, kernel: Callable) -> LayerKind:
    short = name[:3]  # "max" / "avg", as the core and pool_backward name them
    return LayerKind(
        name, 1, _pool_shape, params={"kernel": "pair", "stride": "pair", "padding": "pair", "padding_end": "pair?"},
        build=lambda net, src, p: net.add_pool(src[0], short, tuple(p["kernel"]), tuple(p["stride"]),
                                               tuple(p["padding"]), (_end(p, 0), _end(p, 1))),
        forward=lambda x, p: kernel(x[0], p["kernel"], p["stride"], p["padding"], (_end(p, 0), _end(p, 1))),
        backward=lambda x, y, dy, p: [ops.pool_backward(x[0], dy, short, p["kernel"], p["stride"], p["padding"],
                                                        (_end(p, 0), _end(p, 1)))],
    )


_GLOBAL_AVG_POOL = LayerKind(
    "global_avg_pool", 1, lambda shapes, p, node: (shapes[0][0], 1, 1),
    build=lambda net, src, p: net.add_global_avg_pool(src[0]),
    forward=lambda x, p: ops.global_avg_pool(x[0]),
    backward=lambda x, y, dy, p: [np.broadcast_to(dy, x[0].shape) / (x[0].shape[2] * x[0].shape[3])],
)

# ---- sum of two nodes -------------------------------------------------------

_SUM = LayerKind(
    "sum", 2, lambda shapes, p, node: tuple(max(a, b) for a, b in zip(shapes[0], shapes[1])),
    build=lambda net, src, p: net.add_sum(src[0], src[1]),
    forward=lambda x, p: ops.padded_sum(x[0], x[1]),
    backward=lambda x, y, dy, p: [dy[tuple(slice(0, s) for s in t.shape)] for t in x],
)

# ---- product and concatenation of two nodes --------------------------------

def _mul_shape(shapes, p, node):
    a, b = shapes
    if a == b:
        return a
    for full, gate in ((a, b), (b, a)):
        if gate == (full[0], 1, 1):
            return full
    raise ModelFormatError(f"layer {node} (mul) needs equal shapes or a (C, 1, 1) gate of the other's "
                           f"channels, got {a} and {b}")


_MUL = LayerKind(
    "mul", 2, _mul_shape,
    build=lambda net, src, p: net.add_mul(src[0], src[1]),
    forward=lambda x, p: ops.mul(x[0], x[1]),
    backward=lambda x, y, dy, p: ops.mul_backward(x[0], x[1], dy),
)


def _concat_shape(shapes, p, node):
    a, b = shapes
    if a[1:] != b[1:]:
        raise ModelFormatError(f"layer {node} (concat) needs inputs of the same rows and columns, got {a} and {b}")
    return (a[0] + b[0],) + a[1:]


_CONCAT = LayerKind(
    "concat", 2, _concat_shape,
    build=lambda net, src, p: net.add_concat(src[0], src[1]),
    forward=lambda x, p: np.concatenate(x, axis=1),
    backward=lambda x, y, dy, p: [dy[:, :x[0].shape[1]], dy[:, x[0].shape[1]:]],
)

# ---- dense ------------------------------------------------------------------

def _dense_shape(shapes, p, node):
    c, h, w = shapes[0]
    o, k = p["weight"].shape
    if k != c * h * w:
        raise ModelFormatError(f"layer {node} (dense) expects {k} inputs, its input has {c * h * w}")
    _expect_length(p.get("bias"), o, "bias", node)
    return (o, 1, 1)


_DENSE = LayerKind(
    "dense", 1, _dense_shape, params={"weight": "array2", "bias": "array1?"},
    build=lambda net, src, p: net.add_dense(src[0], _f32(p["weight"]), _bias(p)),
    forward=lambda x, p: ops.dense(x[0], p["weight"], p.get("bias")),
    backward=lambda x, y, dy, p: [(dy[:, :, 0, 0] @ np.asarray(p["weight"], np.float64)).reshape(x[0].shape)],
    parameter_gradients=lambda x, dy, p: ops.dense_weight_gradient(x, dy),
    flops=lambda shapes, out, p: 2 * int(p["weight"].size),
)

# ---- shape changes ----------------------------------------------------------

def _reshape_shape(shapes, p, node):
    c, h, w = shapes[0]
    shape = tuple(int(v) for v in p["shape"])
    if len(shape) != 3 or min(shape) < 1 or int(np.prod(shape)) != c * h * w:
        raise ModelFormatError(f"layer {node} (reshape) cannot view {c * h * w} values as {shape}")
    return shape


_RESHAPE = LayerKind(
    "reshape", 1, _reshape_shape, params={"shape": "triple"},
    build=lambda net, src, p: net.add_reshape(src[0], tuple(int(v) for v in p["shape"])),
    forward=lambda x, p: x[0].reshape((x[0].shape[0],) + tuple(p["shape"])),
    backward=lambda x, y, dy, p: [dy.reshape(x[0].shape)],
)


def _resize_shape(shapes, p, node):
    size = tuple(int(v) for v in p["size"])
    if len(size) != 2 or min(size) < 1 or p["mode"] not in ("nearest", "bilinear"):
        raise ModelFormatError(f"layer {node} (resize) needs a positive size and mode "
                               f"'nearest' or 'bilinear', got {size} {p['mode']!r}")
    return (shapes[0][0], size[0], size[1])


_RESIZE = LayerKind(
    "resize", 1, _resize_shape, params={"size": "pair", "mode": "mode"},
    build=lambda net, src, p: net.add_resize(src[0], tuple(int(v) for v in p["size"]), p["mode"]),
    forward=lambda x, p: ops.resize(x[0], p["size"], p["mode"]),
    backward=lambda x, y, dy, p: [ops.resize_backward(x[0].shape, dy, p["mode"])],
)

#: Every layer kind, by name, in the order of the C core's ``fx_layer_kind`` enum.
LAYERS: dict[str, LayerKind] = {kind.name: kind for kind in (
    _CONV, _SCALE_SHIFT, _RELU, _PRELU, _pool("max_pool", ops.max_pool), _pool("avg_pool", ops.avg_pool),
    _GLOBAL_AVG_POOL, _SUM, _DENSE, _RESHAPE, _RESIZE, _SIGMOID, _MUL, _LEAKY_RELU, _CONCAT,
)}

#: The names of :data:`LAYERS`.
LAYER_KINDS: tuple[str, ...] = tuple(LAYERS)
