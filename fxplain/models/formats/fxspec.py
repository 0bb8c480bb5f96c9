"""fxplain's network weight file (``.fxd``): a NetworkSpec plus metadata, never pickle.

Layout (all integers little-endian)::

    bytes 0-7    magic  b"FXPLNET\\0"
    bytes 8-11   uint32 format version (1)
    bytes 12-15  uint32 length L of the header
    bytes 16..   L bytes of UTF-8 JSON: the header
    then         raw little-endian float32 arrays, each 16-byte aligned
                 relative to the start of the file

The header holds ``input_shape``, ``input_mean``, ``input_scale`` (lists),
``output``, ``layers`` (a list of ``{"kind", "inputs", "params"}``, where a
parameter that is an array is ``{"array": [offset, shape]}`` pointing into the
data section) and ``metadata`` (free JSON: what the file is, how it was made).
Reading checks the magic, the version, every offset and size against the
file's length, and the network's shapes; any problem raises
:class:`~fxplain.ModelFormatError`. Nothing in the file is executed.
"""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

from ..._util.errors import InvalidInputError, ModelFormatError
from ..._util.files import read_untrusted_file
from ...runtime.layers import LAYER_KINDS
from ...runtime.spec import NetworkSpec
from .base import LoadedNetwork, ModelFormat

MAGIC = b"FXPLNET\0"
VERSION = 1
_PREFIX = struct.Struct("<8sII")
_ALIGN = 16
_MAX_HEADER = 64 << 20
#: Largest parameter magnitude a network file may hold (trained weights stay far below).
MAX_ABS_PARAMETER = 1e6


def save_spec(path: str | os.PathLike, spec: NetworkSpec, metadata: dict[str, Any]) -> None:
    """Write ``spec`` and JSON-serialisable ``metadata`` to ``path`` (atomically: a temp file, then rename)."""
    arrays: list[np.ndarray] = []
    slots: list[dict] = []  # the header entries that point at arrays[i]
    layers = []
    for layer in spec.layers:
        params = {}
        for key, value in layer.params.items():
            if isinstance(value, np.ndarray):
                params[key] = {"array": None}
                slots.append(params[key])
                arrays.append(np.ascontiguousarray(value, "<f4"))
            elif isinstance(value, tuple):
                params[key] = list(value)
            else:
                params[key] = value
        layers.append({"kind": layer.kind, "inputs": list(layer.inputs), "params": params})
    header = {"input_shape": list(spec.input_shape),
              "input_mean": np.asarray(spec.input_mean, np.float64).tolist(),
              "input_scale": np.asarray(spec.input_scale, np.float64).tolist(),
              "output": spec.output, "layers": layers, "metadata": metadata}
    # the offsets depend on the header's length, which depends on the offsets:
    # reserve room for the header, and grow the reserve until it fits
    try:  # the reader refuses NaN and Infinity, so the writer never produces them
        json.dumps(header, allow_nan=False)
    except ValueError as exc:
        raise InvalidInputError(f"cannot save {path}: the network's numbers and metadata must be finite "
                                f"({exc})") from None
    reserve = len(json.dumps(header)) + 48 * len(arrays) + 64
    while True:
        data_start = _aligned(_PREFIX.size + reserve)
        offsets, cursor = [], data_start
        for slot, array in zip(slots, arrays):
            slot["array"] = [cursor, list(array.shape)]
            offsets.append(cursor)
            cursor = _aligned(cursor + array.nbytes)
        blob = json.dumps(header).encode()
        if _PREFIX.size + len(blob) <= data_start:
            break
        reserve *= 2
    blob = blob.ljust(data_start - _PREFIX.size, b" ")
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(_PREFIX.pack(MAGIC, VERSION, len(blob)))
        f.write(blob)
        for offset, array in zip(offsets, arrays):
            f.seek(offset)
            f.write(array.tobytes())
    os.replace(tmp, path)


def load_spec(path: str | os.PathLike) -> tuple[NetworkSpec, dict[str, Any]]:
    """Read a file written by :func:`save_spec`: ``(spec, metadata)``."""
    path = Path(path)
    return parse_spec(read_untrusted_file(path, "network file"), path)


def parse_spec(data: bytes, path: str | os.PathLike) -> tuple[NetworkSpec, dict[str, Any]]:
    """Parse the bytes of a file written by :func:`save_spec` (``path`` names it in errors)."""
    path = Path(path)
    if len(data) < _PREFIX.size:
        raise ModelFormatError(f"{path} is too short to be an fxplain network file")
    magic, version, length = _PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise ModelFormatError(f"{path} is not an fxplain network file (magic {magic!r}, expected {MAGIC!r})")
    if version != VERSION:
        raise ModelFormatError(f"{path} has format version {version}; this fxplain reads version {VERSION}")
    if length > _MAX_HEADER or _PREFIX.size + length > len(data):
        raise ModelFormatError(f"{path}: header length {length} runs past the end of the file")
    data_start = _PREFIX.size + length
    try:
        header = json.loads(data[_PREFIX.size:data_start].decode(), parse_constant=_refuse_constant)
        if not isinstance(header, dict) or not isinstance(header.get("layers"), list):
            raise ModelFormatError(f"{path}: the header must be a JSON object with a list of layers")
        spec = NetworkSpec(tuple(_int(v, "input_shape", path, 1, 4096) for v in header["input_shape"]),
                           _finite_vector(header["input_mean"], "input_mean", path),
                           _finite_vector(header["input_scale"], "input_scale", path))
        for layer in header["layers"]:
            if not isinstance(layer, dict) or layer.get("kind") not in LAYER_KINDS:
                raise ModelFormatError(f"{path}: unknown layer kind {layer.get('kind') if isinstance(layer, dict) else layer!r}")
            if not isinstance(layer.get("params"), dict) or not isinstance(layer.get("inputs"), list):
                raise ModelFormatError(f"{path}: layer {len(spec.layers) + 1} needs 'inputs' (a list) and "
                                       "'params' (an object)")
            params = {key: _param(data, value, path, data_start) for key, value in layer["params"].items()}
            spec.add(layer["kind"], tuple(_int(i, "inputs", path, 0, len(spec.layers)) for i in layer["inputs"]),
                     **params)
        spec.output = _int(header["output"], "output", path, 1, len(spec.layers))
        metadata = header.get("metadata", {})
        if not isinstance(metadata, dict):
            raise ModelFormatError(f"{path}: 'metadata' must be a JSON object")
        if len(spec.input_shape) != 3 or spec.input_mean.shape != (spec.input_shape[0],) \
                or spec.input_scale.shape != (spec.input_shape[0],):
            raise ModelFormatError(f"{path}: inconsistent input shape and normalisation")
        spec.shapes()  # validates every layer's parameters against its input, and the sizes
    except ModelFormatError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError, RecursionError,
            UnicodeDecodeError, MemoryError) as exc:
        # a hostile header reaches these through int(), np.asarray, nesting...: all mean "malformed"
        raise ModelFormatError(f"{path}: malformed header ({type(exc).__name__}: {exc})") from None
    return spec, metadata


def _refuse_constant(name: str) -> Any:
    raise ModelFormatError(f"JSON constant {name} is not allowed in an fxplain network file")


def _int(value: Any, field: str, path: Path, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ModelFormatError(f"{path}: {field} must hold integers in [{low}, {high}], got {value!r}")
    return value


def _finite_vector(value: Any, field: str, path: Path) -> np.ndarray:
    if not isinstance(value, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                              for v in value):
        raise ModelFormatError(f"{path}: {field} must be a list of numbers, got {value!r}")
    array = np.asarray(value, np.float64)
    if not np.all(np.isfinite(array)) or np.any(np.abs(array) > 1e30):
        raise ModelFormatError(f"{path}: {field} must be finite, got {value!r}")
    return array.astype(np.float32)


def _param(data: bytes, value: Any, path: Path, data_start: int) -> Any:
    if isinstance(value, dict) and "array" in value:
        offset, shape = value["array"]
        shape = tuple(_int(s, "array shapes", path, 0, 1 << 30) for s in shape)
        offset = _int(offset, "array offsets", path, 0, len(data))
        # arrays live in the data section, aligned as save_spec writes them: an
        # offset into the header would read the JSON text as weights
        if offset < data_start or offset % _ALIGN:
            raise ModelFormatError(f"{path}: an array at byte {offset} is not in the data section "
                                   f"(from byte {data_start}, {_ALIGN}-byte aligned)")
        nbytes = 4 * math.prod(shape)  # Python ints: no overflow however large the claimed shape
        if offset + nbytes > len(data):
            raise ModelFormatError(f"{path}: an array of shape {shape} at byte {offset} runs past the end of the file")
        array = np.frombuffer(data, "<f4", count=nbytes // 4, offset=offset).reshape(shape).astype(np.float32)
        if not np.all(np.isfinite(array)):
            raise ModelFormatError(f"{path}: an array of shape {shape} holds NaN or infinite values")
        if array.size and float(np.abs(array).max()) > MAX_ABS_PARAMETER:
            raise ModelFormatError(f"{path}: an array of shape {shape} holds a value of magnitude "
                                   f"{float(np.abs(array).max()):.3g} (at most {MAX_ABS_PARAMETER:g} expected)")
        return array
    if isinstance(value, list):
        return tuple(value)
    return value


def _aligned(n: int) -> int:
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


#: ``metadata["kind"]`` of a face-recognition model saved in this format.
FACE_MODEL_KIND = "fxplain-face-model"


def _read_face_model(data: bytes, name: str) -> LoadedNetwork:
    spec, metadata = parse_spec(data, name)
    if metadata.get("kind") != FACE_MODEL_KIND:
        raise ModelFormatError(f"{name} is an fxplain network file, but not a face model "
                               f"(kind {metadata.get('kind')!r}; decoders load with fxplain.load_decoder)")
    metric, threshold = metadata.get("metric"), metadata.get("threshold")
    if metric not in ("squared_euclidean", "cosine") or isinstance(threshold, bool) \
            or not isinstance(threshold, (int, float)) or not np.isfinite(threshold):
        raise ModelFormatError(f"{name}: a face model needs a metric ('squared_euclidean' or 'cosine') and a "
                               f"finite threshold, got {metric!r} and {threshold!r}")
    facts = metadata.get("facts", {})
    if not isinstance(facts, dict):
        raise ModelFormatError(f"{name}: 'facts' must be a JSON object")
    return LoadedNetwork(spec, metric=metric, threshold=float(threshold), facts=facts)


#: fxplain's own network file holding a face model (``metadata["kind"] == "fxplain-face-model"``).
FXSPEC_FORMAT = ModelFormat("fxspec", (".fxn", ".fxd"), lambda head: head[:8] == MAGIC, _read_face_model)
