"""The network description inside fxplain's network files, checked field by field.

Both versions of the file (:mod:`.fxspec` writes version 2, :mod:`.fxspec_v1`
reads version 1) describe the network with the same JSON object::

    {"input_shape": [C, H, W], "input_mean": [...], "input_scale": [...],
     "output": node, "layers": [{"kind": ..., "inputs": [...], "params": {...}}, ...]}

They differ only in how a parameter that is an array points at its numbers
(a byte offset in version 1, a tensor name in version 2), so the reader of
each version passes :func:`build_spec` a function that resolves that
reference. Everything here treats the JSON as hostile: types, ranges, layer
kinds, wiring and shapes are checked, arrays must be finite and plausible,
and any malformation becomes :class:`~fxplain.ModelFormatError`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..._util.errors import InvalidInputError, ModelFormatError
from ...runtime.layers import LAYER_KINDS
from ...runtime.spec import NetworkSpec

#: Largest parameter magnitude a network file may hold (trained weights stay far below).
MAX_ABS_PARAMETER = 1e6

#: ``resolve(reference, layer_number, parameter_name) -> float32 array`` for an array parameter.
ArrayResolver = Callable[[Any, int, str], np.ndarray]


def describe_network(spec: NetworkSpec, array_reference: Callable[[np.ndarray, int, str], Any]) -> dict:
    """The JSON object of ``spec``; each array parameter becomes ``array_reference(array, layer, name)``."""
    layers = []
    for number, layer in enumerate(spec.layers, start=1):
        params = {}
        for key, value in layer.params.items():
            if isinstance(value, np.ndarray):
                params[key] = array_reference(value, number, key)
            elif isinstance(value, tuple):
                params[key] = list(value)
            else:
                params[key] = value
        layers.append({"kind": layer.kind, "inputs": list(layer.inputs), "params": params})
    return {"input_shape": list(spec.input_shape),
            "input_mean": np.asarray(spec.input_mean, np.float64).tolist(),
            "input_scale": np.asarray(spec.input_scale, np.float64).tolist(),
            "output": spec.output, "layers": layers}


def build_spec(network: Any, is_array: Callable[[Any], bool], resolve: ArrayResolver, path: Path) -> NetworkSpec:
    """The :class:`NetworkSpec` of a network object read from ``path``, validated.

    ``is_array(value)`` tells an array reference from a plain parameter,
    ``resolve`` turns it into the array. Raises ModelFormatError naming the
    field or layer.
    """
    try:
        if not isinstance(network, dict) or not isinstance(network.get("layers"), list):
            raise ModelFormatError(f"{path}: the header must be a JSON object with a list of layers")
        spec = NetworkSpec(tuple(check_int(v, "input_shape", path, 1, 4096) for v in network["input_shape"]),
                           finite_vector(network["input_mean"], "input_mean", path),
                           finite_vector(network["input_scale"], "input_scale", path))
        for layer in network["layers"]:
            number = len(spec.layers) + 1
            if not isinstance(layer, dict) or layer.get("kind") not in LAYER_KINDS:
                kind = layer.get("kind") if isinstance(layer, dict) else layer
                raise ModelFormatError(f"{path}: layer {number}: unknown layer kind {kind!r}")
            if not isinstance(layer.get("params"), dict) or not isinstance(layer.get("inputs"), list):
                raise ModelFormatError(f"{path}: layer {number} needs 'inputs' (a list) and 'params' (an object)")
            params = {}
            for key, value in layer["params"].items():
                if is_array(value):
                    params[key] = check_parameter(resolve(value, number, key), path, number, key)
                else:
                    params[key] = tuple(value) if isinstance(value, list) else value
            spec.add(layer["kind"], tuple(check_int(i, "inputs", path, 0, len(spec.layers))
                                          for i in layer["inputs"]), **params)
        spec.output = check_int(network["output"], "output", path, 1, len(spec.layers))
        if len(spec.input_shape) != 3 or spec.input_mean.shape != (spec.input_shape[0],) \
                or spec.input_scale.shape != (spec.input_shape[0],):
            raise ModelFormatError(f"{path}: inconsistent input shape and normalisation")
        spec.shapes()  # validates every layer's parameters against its input, and the sizes
    except ModelFormatError:
        raise
    except InvalidInputError as exc:  # a layer's own rule (a padding, a shape) refused its parameters
        raise ModelFormatError(f"{path}: {exc}") from None
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError, RecursionError,
            MemoryError) as exc:
        # a hostile header reaches these through int(), np.asarray, nesting...: all mean "malformed"
        raise ModelFormatError(f"{path}: malformed header ({type(exc).__name__}: {exc})") from None
    return spec


def check_parameter(array: np.ndarray, path: Path, layer: int, name: str) -> np.ndarray:
    """``array`` if it is finite and within :data:`MAX_ABS_PARAMETER`; else ModelFormatError."""
    if not np.all(np.isfinite(array)):
        raise ModelFormatError(f"{path}: layer {layer} {name} (shape {array.shape}) holds NaN or infinite values")
    if array.size and float(np.abs(array).max()) > MAX_ABS_PARAMETER:
        raise ModelFormatError(f"{path}: layer {layer} {name} (shape {array.shape}) holds a value of magnitude "
                               f"{float(np.abs(array).max()):.3g} (at most {MAX_ABS_PARAMETER:g} expected)")
    return array


def refuse_constant(name: str) -> Any:
    """``json.loads(parse_constant=...)``: NaN and Infinity are never valid in fxplain's files."""
    raise ModelFormatError(f"JSON constant {name} is not allowed in an fxplain network file")


def check_int(value: Any, field: str, path: Path, low: int, high: int) -> int:
    """``value`` if it is an int (not a bool) in ``[low, high]``; else ModelFormatError naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ModelFormatError(f"{path}: {field} must hold integers in [{low}, {high}], got {value!r}")
    return value


def finite_vector(value: Any, field: str, path: Path) -> np.ndarray:
    """A list of finite numbers as float32; else ModelFormatError naming ``field``."""
    if not isinstance(value, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                              for v in value):
        raise ModelFormatError(f"{path}: {field} must be a list of numbers, got {value!r}")
    array = np.asarray(value, np.float64)
    if not np.all(np.isfinite(array)) or np.any(np.abs(array) > 1e30):
        raise ModelFormatError(f"{path}: {field} must be finite, got {value!r}")
    return array.astype(np.float32)
