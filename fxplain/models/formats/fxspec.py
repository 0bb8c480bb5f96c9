"""fxplain's network file (``.fxd`` decoders, ``.fxn`` face models): a NetworkSpec plus metadata, never pickle.

Version 2 (written since fxplain 0.2) is a `safetensors
<https://huggingface.co/docs/safetensors>`_ container: the ecosystem's safe
tensor format, whose reader validates its header, dtypes, shapes and offsets
(no overlaps, no gaps, nothing past the end). Its tensors are the network's
float32 arrays, named ``"<layer>.<parameter>"`` (``"1.weight"``); its
``__metadata__`` holds one key, ``"fxplain"``, a JSON object::

    {"format": "fxplain-network", "format_version": 2,
     "network":  "<JSON text: the network object of fxspec_header>",
     "metadata": "<JSON text: what the file is, how it was made>",
     "payload_sha256": "<hex>"}

where an array parameter in the network is ``{"tensor": name}`` and
``payload_sha256`` covers the network text, the metadata text and every
tensor (name, shape, bytes) in the order the layers use them. Reading checks
the container, the record's schema field by field, the checksum (any changed
byte is refused), then the network field by field: the checksum tells
damage, the field checks still refuse a hostile file whose checksum was
recomputed. Version 1 files (:mod:`.fxspec_v1`) are still read. Any problem
raises :class:`~fxplain.ModelFormatError`; nothing in the file is executed.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import safetensors
import safetensors.numpy

from ..._util.errors import InvalidInputError, ModelFormatError, UnverifiedWeightsWarning
from ..._util.files import read_untrusted_file
from ...runtime.spec import NetworkSpec
from .base import LoadedNetwork, ModelFormat
from .fxspec_header import MAX_ABS_PARAMETER, build_spec, describe_network, refuse_constant
from .fxspec_v1 import MAGIC as V1_MAGIC
from .fxspec_v1 import parse_v1

__all__ = ["FACE_MODEL_KIND", "FXSPEC_FORMAT", "MAX_ABS_PARAMETER", "VERSION", "is_version_1", "load_spec", "parse_spec",
           "payload_digest", "save_spec", "spec_bytes"]

#: The version :func:`save_spec` writes.
VERSION = 2
FORMAT_NAME = "fxplain-network"
_RECORD_KEYS = {"format", "format_version", "network", "metadata", "payload_sha256"}
#: What a version-2 file starts with: safetensors' header length, then its JSON with our record first.
_V2_HEAD = b'{"__metadata__":{"fxplain":'


def save_spec(path: str | os.PathLike, spec: NetworkSpec, metadata: dict[str, Any]) -> None:
    """Write ``spec`` and JSON-serialisable ``metadata`` to ``path`` (atomically: a temp file, then rename)."""
    blob = spec_bytes(spec, metadata, path)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(blob)
    os.replace(tmp, path)


def spec_bytes(spec: NetworkSpec, metadata: dict[str, Any], name: Any = "<network>") -> bytes:
    """The bytes :func:`save_spec` writes (version 2) for ``spec`` and ``metadata`` (``name`` for errors)."""
    path = name
    tensors: dict[str, np.ndarray] = {}

    def reference(array: np.ndarray, layer: int, name: str) -> dict:
        key = f"{layer}.{name}"
        tensors[key] = np.ascontiguousarray(array, "<f4")
        return {"tensor": key}

    try:  # the reader refuses NaN and Infinity, so the writer never produces them
        network = json.dumps(describe_network(spec, reference), allow_nan=False)
        meta = json.dumps(metadata, allow_nan=False)
    except ValueError as exc:
        raise InvalidInputError(f"cannot save {path}: the network's numbers and metadata must be finite "
                                f"({exc})") from None
    record = {"format": FORMAT_NAME, "format_version": VERSION, "network": network, "metadata": meta,
              "payload_sha256": payload_digest(network, meta, tensors)}
    return safetensors.numpy.save(tensors, metadata={"fxplain": json.dumps(record, sort_keys=True)})


def load_spec(path: str | os.PathLike, *, legacy_warning: bool = True) -> tuple[NetworkSpec, dict[str, Any]]:
    """Read a file written by :func:`save_spec` (either version): ``(spec, metadata)``."""
    path = Path(path)
    return parse_spec(read_untrusted_file(path, "network file"), path, legacy_warning=legacy_warning)


def is_version_1(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a version-1 file (no checksum), which :func:`save_spec` would upgrade."""
    with open(path, "rb") as f:
        return f.read(8) == V1_MAGIC


def parse_spec(data: bytes, path: str | os.PathLike, *,
               legacy_warning: bool = True) -> tuple[NetworkSpec, dict[str, Any]]:
    """Parse the bytes of a file written by :func:`save_spec` (``path`` names it in errors).

    A version-1 file carries no checksum, so a changed weight cannot be told
    from a trained one: it loads with :class:`~fxplain.UnverifiedWeightsWarning`
    (unless ``legacy_warning=False``, for files fxplain itself cached).
    """
    path = Path(path)
    if data[:8] == V1_MAGIC:
        if len(data) < 16:
            raise ModelFormatError(f"{path} is too short to be an fxplain network file")
        version = struct.unpack_from("<I", data, 8)[0]
        if version != 1:
            raise ModelFormatError(f"{path} has format version {version}; this fxplain reads versions 1 and "
                                   f"{VERSION}")
        spec, metadata = parse_v1(data, path)
        if legacy_warning:
            warnings.warn(f"{path} is a version-1 fxplain network file, which carries no checksum: a damaged "
                          "weight would go unnoticed. Load it once and save it again to write version 2",
                          UnverifiedWeightsWarning, stacklevel=3)
        return spec, metadata
    if data[8:8 + len(_V2_HEAD)] != _V2_HEAD:
        raise ModelFormatError(f"{path} is not an fxplain network file (neither a safetensors container with "
                               f"fxplain's record nor the version-1 magic {V1_MAGIC!r})")
    return _parse_v2(data, path)


def _parse_v2(data: bytes, path: Path) -> tuple[NetworkSpec, dict[str, Any]]:
    try:  # the container first: safetensors validates its header, dtypes and offsets
        tensors = {name: entry for name, entry in safetensors.deserialize(data)}
    except (safetensors.SafetensorError, ValueError, OverflowError, MemoryError) as exc:
        raise ModelFormatError(f"{path}: not a valid safetensors container ({exc})") from None
    # the container is valid, so its header is JSON of the length it says
    header = _json(data[8:8 + int.from_bytes(data[:8], "little")], "the safetensors header", path)
    record = _record(header.get("__metadata__") if isinstance(header, dict) else None, path)
    used: list[str] = []

    def resolve(value: Any, layer: int, name: str) -> np.ndarray:
        key = value["tensor"]
        entry = tensors.get(key) if isinstance(key, str) else None
        if entry is None or key in used:
            raise ModelFormatError(f"{path}: layer {layer} {name} refers to tensor {key!r}, which is "
                                   f"{'used twice' if key in used else 'not in the file'}")
        if entry["dtype"] != "F32":
            raise ModelFormatError(f"{path}: tensor {key!r} is {entry['dtype']}, expected F32")
        used.append(key)
        return np.frombuffer(entry["data"], "<f4").reshape(entry["shape"]).astype(np.float32)

    network = _json(record["network"], "network", path)
    metadata = _json(record["metadata"], "metadata", path)
    # the checksum before the network's meaning: it names damage as damage
    digest = payload_digest(record["network"], record["metadata"],
                            {key: (entry["shape"], bytes(entry["data"])) for key, entry in tensors.items()})
    if digest != record["payload_sha256"]:
        raise ModelFormatError(f"{path}: the payload's SHA-256 is {digest[:16]}…, the file says "
                               f"{record['payload_sha256'][:16]}…: the file is damaged")
    spec = build_spec(network, lambda v: isinstance(v, dict) and "tensor" in v, resolve, path)
    if len(used) != len(tensors):
        raise ModelFormatError(f"{path}: tensors {sorted(set(tensors) - set(used))[:5]} are not used by any layer")
    if not isinstance(metadata, dict):
        raise ModelFormatError(f"{path}: 'metadata' must be a JSON object")
    return spec, metadata


def _record(meta: Any, path: Path) -> dict[str, Any]:
    """fxplain's record from the container's ``__metadata__``, its schema checked field by field."""
    text = meta.get("fxplain") if isinstance(meta, dict) else None
    record = _json(text, "the fxplain record", path) if isinstance(text, str) else None
    if not isinstance(record, dict) or set(record) != _RECORD_KEYS:
        keys = sorted(record) if isinstance(record, dict) else record
        raise ModelFormatError(f"{path}: fxplain's record must have exactly the fields {sorted(_RECORD_KEYS)}, "
                               f"got {keys!r}")
    if record["format"] != FORMAT_NAME:
        raise ModelFormatError(f"{path}: format {record['format']!r}, expected {FORMAT_NAME!r}")
    if record["format_version"] != VERSION or isinstance(record["format_version"], bool):
        raise ModelFormatError(f"{path} has format version {record['format_version']!r}; this fxplain reads "
                               f"versions 1 and {VERSION}")
    for key in ("network", "metadata", "payload_sha256"):
        if not isinstance(record[key], str):
            raise ModelFormatError(f"{path}: the record's {key!r} must be a string, got "
                                   f"{type(record[key]).__name__}")
    return record


def _json(text: str | bytes, field: str, path: Path) -> Any:
    try:
        return json.loads(text, parse_constant=refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise ModelFormatError(f"{path}: {field} is not valid JSON ({type(exc).__name__}: {exc})") from None


def payload_digest(network: str, metadata: str, tensors: dict[str, Any]) -> str:
    """SHA-256 over the network and metadata texts and every tensor's name, shape and bytes, length-prefixed.

    ``tensors`` maps names to arrays or ``(shape, bytes)``. They are taken in
    the order the network's layers refer to them, then any the network does
    not use (which the reader refuses, but the checksum covers too), so the
    digest does not depend on the container's own ordering.
    """
    try:
        layers = json.loads(network)["layers"]
        referenced = [value["tensor"] for layer in layers for value in layer["params"].values()
                      if isinstance(value, dict) and isinstance(value.get("tensor"), str)]
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        referenced = []  # a broken network: the reader reports it once the checksum holds
    order = [name for name in dict.fromkeys(referenced) if name in tensors]
    order += sorted(set(tensors) - set(order))
    digest = hashlib.sha256()

    def part(blob: bytes) -> None:
        digest.update(len(blob).to_bytes(8, "little"))
        digest.update(blob)

    part(network.encode())
    part(metadata.encode())
    for name in order:
        value = tensors[name]
        shape, raw = (value.shape, value.tobytes()) if isinstance(value, np.ndarray) else value
        part(name.encode())
        part(json.dumps([int(s) for s in shape]).encode())
        part(raw)
    return digest.hexdigest()


#: ``metadata["kind"]`` of a face-recognition model saved in this format.
FACE_MODEL_KIND = "fxplain-face-model"


def _read_face_model(data: bytes, name: str, options: dict | None = None) -> LoadedNetwork:
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
#: Its files are recognised by their bytes; the ``.fxn`` suffix belongs to the face-model file
#: (:mod:`.face_model_file`), which wraps this format with preprocessing, threshold and calibration.
FXSPEC_FORMAT = ModelFormat("fxspec", (".fxd",),
                            lambda head: head[:8] == V1_MAGIC or head[8:8 + len(_V2_HEAD)] == _V2_HEAD,
                            _read_face_model, title="fxplain network")
