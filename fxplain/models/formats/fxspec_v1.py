"""Reader of version 1 of fxplain's network file (fxplain 0.1.0 wrote it; still read, never written).

Layout (all integers little-endian)::

    bytes 0-7    magic  b"FXPLNET\\0"
    bytes 8-11   uint32 format version (1)
    bytes 12-15  uint32 length L of the header
    bytes 16..   L bytes of UTF-8 JSON: the network object of
                 :mod:`.fxspec_header` plus ``"metadata"``
    then         raw little-endian float32 arrays, each 16-byte aligned
                 relative to the start of the file

An array parameter is ``{"array": [offset, shape]}``. Version 1 has no
checksum: the reader checks every offset (inside the data section, aligned)
and size against the file's length, and the network field by field.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any

import numpy as np

from ..._util.errors import ModelFormatError
from .fxspec_header import build_spec, check_int, refuse_constant

MAGIC = b"FXPLNET\0"
VERSION = 1
PREFIX = struct.Struct("<8sII")
ALIGN = 16
_MAX_HEADER = 64 << 20


def parse_v1(data: bytes, path: Path):
    """``(spec, metadata)`` of the bytes of a version-1 file (``path`` names it in errors)."""
    magic, version, length = PREFIX.unpack_from(data)
    if magic != MAGIC or version != VERSION:
        raise ModelFormatError(f"{path}: not a version-1 fxplain network file")
    if length > _MAX_HEADER or PREFIX.size + length > len(data):
        raise ModelFormatError(f"{path}: header length {length} runs past the end of the file")
    data_start = PREFIX.size + length
    try:
        header = json.loads(data[PREFIX.size:data_start].decode(), parse_constant=refuse_constant)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ModelFormatError(f"{path}: malformed header ({type(exc).__name__}: {exc})") from None

    def resolve(value: Any, layer: int, name: str) -> np.ndarray:
        offset, shape = value["array"]
        shape = tuple(check_int(s, f"layer {layer} {name} shape", path, 0, 1 << 30) for s in shape)
        offset = check_int(offset, f"layer {layer} {name} offset", path, 0, len(data))
        # arrays live in the data section, aligned as the writer put them: an
        # offset into the header would read the JSON text as weights
        if offset < data_start or offset % ALIGN:
            raise ModelFormatError(f"{path}: layer {layer} {name}: an array at byte {offset} is not in the data "
                                   f"section (from byte {data_start}, {ALIGN}-byte aligned)")
        nbytes = 4 * math.prod(shape)  # Python ints: no overflow however large the claimed shape
        if offset + nbytes > len(data):
            raise ModelFormatError(f"{path}: layer {layer} {name}: an array of shape {shape} at byte {offset} "
                                   "runs past the end of the file")
        return np.frombuffer(data, "<f4", count=nbytes // 4, offset=offset).reshape(shape).astype(np.float32)

    spec = build_spec(header, lambda v: isinstance(v, dict) and "array" in v, resolve, path)
    metadata = header.get("metadata", {})
    if not isinstance(metadata, dict):
        raise ModelFormatError(f"{path}: 'metadata' must be a JSON object")
    return spec, metadata
