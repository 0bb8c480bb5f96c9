"""What perturbation methods paint over removed pixels (and deletion/insertion curves use too).

A :class:`Fill` is checked once when it is made and then gives, for each
image, the (H, W, 3) float32 image that replaces removed pixels.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._util.errors import InvalidInputError

FILL_CHOICES = ("mean", "zero", "gray", "blur")


def _box_blur(image: np.ndarray, radius: int) -> np.ndarray:
    """Separable box blur with edge padding (three passes approximate a Gaussian)."""
    out = image.astype(np.float64)
    size = 2 * radius + 1
    for _ in range(3):
        for axis in (0, 1):
            pad = [(0, 0)] * out.ndim
            pad[axis] = (radius + 1, radius)
            c = np.cumsum(np.pad(out, pad, mode="edge"), axis=axis)
            hi = np.take(c, np.arange(size, size + out.shape[axis]), axis=axis)
            lo = np.take(c, np.arange(0, out.shape[axis]), axis=axis)
            out = (hi - lo) / size
    return out


class Fill:
    """The replacement for removed pixels.

    ``spec`` is ``"mean"`` (the image's mean colour, the default), ``"zero"``
    (black), ``"gray"`` (128), ``"blur"`` (a strongly blurred copy, keeping the
    low frequencies), a number, or an RGB triple on the 0-255 scale. Anything
    else raises :class:`~fxplain.InvalidInputError` here, before any work.
    """

    def __init__(self, spec: Any = "mean"):
        if isinstance(spec, Fill):
            spec = spec.spec
        if isinstance(spec, str):
            if spec not in FILL_CHOICES:
                raise InvalidInputError(f"fill must be one of {FILL_CHOICES}, a number or an RGB triple, got {spec!r}")
            self.value = None
        else:
            value = np.asarray(spec, np.float64)
            if value.shape not in ((), (3,)) or not np.all(np.isfinite(value)):
                raise InvalidInputError(f"fill must be one of {FILL_CHOICES}, a number or an RGB triple, got {spec!r}")
            self.value = value
        self.spec = spec

    def __repr__(self) -> str:
        return f"Fill({self.spec!r})"

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """The (H, W, 3) float32 image that replaces removed pixels of ``image``."""
        if self.value is not None:
            return np.ascontiguousarray(np.broadcast_to(self.value, image.shape), np.float32)
        if self.spec == "mean":
            return np.ascontiguousarray(np.broadcast_to(image.mean(axis=(0, 1)), image.shape), np.float32)
        if self.spec == "zero":
            return np.zeros_like(image, np.float32)
        if self.spec == "gray":
            return np.full_like(image, 128.0, np.float32)
        return _box_blur(image, max(1, image.shape[0] // 15)).astype(np.float32)


def fill_image(image: np.ndarray, fill: Any) -> np.ndarray:
    """The (H, W, 3) float32 image that replaces removed pixels (see :class:`Fill` for ``fill``)."""
    return Fill(fill)(image)
