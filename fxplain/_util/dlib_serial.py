"""A bounds-checked reader of dlib's serialisation format (networks, shape predictors, detectors).

dlib's format, as far as fxplain's readers need it:

* integers: one control byte (bit 7 = sign, low 4 bits = byte count n), then n
  little-endian bytes;
* strings: an integer length, then the bytes;
* bools: the ASCII bytes ``'0'``/``'1'``;
* scalar floats: an integer mantissa m and an integer exponent e, value m * 2**e;
* tensors: version 2, dims n, k, nr, nc, then n*k*nr*nc little-endian float32.

It sits in the bottom layer because two layers read dlib files: the face
models (:mod:`fxplain.models.formats.dlib`) and the face detector and shape
predictors (:mod:`fxplain.faces`). Files are untrusted: every read is
bounds-checked and every count checked against what remains, so a truncated
or foreign file raises :class:`~fxplain.ModelFormatError`.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import ModelFormatError

#: Largest tensor read (1 GiB of float32): far above any face model.
MAX_TENSOR_ELEMENTS = 1 << 28


class DlibReader:
    """Bounds-checked cursor over the bytes of a dlib file."""

    def __init__(self, data: bytes, name: str):
        self.data = data
        self.pos = 0
        self.name = name

    def fail(self, what: str) -> ModelFormatError:
        return ModelFormatError(f"{self.name}: {what} (at byte {self.pos} of {len(self.data)})")

    def take(self, count: int) -> bytes:
        if count < 0 or self.pos + count > len(self.data):
            raise self.fail(f"file ends early: needed {count} more bytes")
        chunk = self.data[self.pos:self.pos + count]
        self.pos += count
        return chunk

    def integer(self) -> int:
        control = self.take(1)[0]
        size = control & 0x0F
        if size > 8 or control & 0x70:
            raise self.fail(f"invalid integer control byte 0x{control:02x}")
        value = int.from_bytes(self.take(size), "little")
        return -value if control & 0x80 else value

    def string(self, limit: int = 256) -> str:
        length = self.integer()
        if not 0 <= length <= limit:
            raise self.fail(f"implausible string length {length}")
        raw = self.take(length)
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise self.fail("string is not ASCII") from None

    def boolean(self) -> bool:
        byte = self.take(1)
        if byte not in (b"0", b"1"):
            raise self.fail(f"invalid bool byte {byte!r}")
        return byte == b"1"

    def scalar(self) -> float:
        mantissa = self.integer()
        exponent = self.integer()
        try:  # ldexp: mantissa (at most 2^64) times 2^exponent, refused when it leaves the doubles
            value = math.ldexp(float(mantissa), exponent) if abs(exponent) <= 1100 else math.inf
        except OverflowError:
            value = math.inf
        if not math.isfinite(value):
            raise self.fail(f"float {mantissa} * 2^{exponent} is out of range")
        return value

    def tensor(self) -> np.ndarray:
        version = self.integer()
        if version != 2:
            raise self.fail(f"unsupported tensor version {version}")
        dims = [self.integer() for _ in range(4)]
        if any(d < 0 for d in dims):
            raise self.fail(f"negative tensor dimension {dims}")
        count = dims[0] * dims[1] * dims[2] * dims[3]
        if count > MAX_TENSOR_ELEMENTS or 4 * count > len(self.data) - self.pos:
            raise self.fail(f"tensor of shape {dims} does not fit in the file")
        values = np.frombuffer(self.take(4 * count), dtype="<f4").astype(np.float32)
        if not np.all(np.isfinite(values)):
            raise self.fail("tensor holds NaN or infinite values")
        return values.reshape(dims)

    def alias_shape(self) -> tuple[int, ...]:
        version = self.integer()
        if version != 1:
            raise self.fail(f"unsupported alias_tensor version {version}")
        return tuple(self.integer() for _ in range(4))
