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
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

from ..._util.errors import ModelFormatError
from ..._util.files import read_untrusted_file
from ...runtime.layers import LAYER_KINDS
from ...runtime.spec import NetworkSpec
from .base import LoadedNetwork, ModelFormat

MAGIC = b"FXPLNET\0"
VERSION = 1
_PREFIX = struct.Struct("<8sII")
_ALIGN = 16
_MAX_HEADER = 64 << 20


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
    try:
        header = json.loads(data[_PREFIX.size:_PREFIX.size + length].decode())
        spec = NetworkSpec(tuple(int(v) for v in header["input_shape"]),
                           np.asarray(header["input_mean"], np.float32), np.asarray(header["input_scale"], np.float32))
        for layer in header["layers"]:
            if layer["kind"] not in LAYER_KINDS:
                raise ModelFormatError(f"{path}: unknown layer kind {layer['kind']!r}")
            params = {key: _param(data, value, path) for key, value in layer["params"].items()}
            spec.add(layer["kind"], tuple(int(i) for i in layer["inputs"]), **params)
        spec.output = int(header["output"])
        metadata = header.get("metadata", {})
    except ModelFormatError:
        raise
    except (KeyError, TypeError, ValueError, UnicodeDecodeError) as exc:
        raise ModelFormatError(f"{path}: malformed header ({type(exc).__name__}: {exc})") from None
    if len(spec.input_shape) != 3 or spec.input_mean.shape != (spec.input_shape[0],) \
            or spec.input_scale.shape != (spec.input_shape[0],) or not 1 <= spec.output <= len(spec.layers):
        raise ModelFormatError(f"{path}: inconsistent input normalisation or output node")
    spec.shapes()  # validates every layer's shapes
    return spec, metadata


def _param(data: bytes, value: Any, path: Path) -> Any:
    if isinstance(value, dict) and "array" in value:
        offset, shape = value["array"]
        shape = tuple(int(s) for s in shape)
        if offset < 0 or any(s < 0 for s in shape):
            raise ModelFormatError(f"{path}: negative array offset or size")
        nbytes = 4 * int(np.prod(shape, dtype=np.int64))
        if offset + nbytes > len(data):
            raise ModelFormatError(f"{path}: an array of shape {shape} at byte {offset} runs past the end of the file")
        array = np.frombuffer(data, "<f4", count=nbytes // 4, offset=offset).reshape(shape).astype(np.float32)
        if not np.all(np.isfinite(array)):
            raise ModelFormatError(f"{path}: an array of shape {shape} holds NaN or infinite values")
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
