"""What perturbation methods paint over removed pixels."""

from __future__ import annotations

import numpy as np

from ._errors import InvalidInputError

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


def fill_image(image: np.ndarray, fill) -> np.ndarray:
    """The (H, W, 3) float32 image that replaces removed pixels.

    ``fill`` is ``"mean"`` (the image's mean colour, the default), ``"zero"``
    (black), ``"gray"`` (128), ``"blur"`` (a strongly blurred copy, keeping the
    low frequencies), a number, or an RGB triple on the 0-255 scale.
    """
    if isinstance(fill, str):
        if fill == "mean":
            return np.ascontiguousarray(np.broadcast_to(image.mean(axis=(0, 1)), image.shape), np.float32)
        if fill == "zero":
            return np.zeros_like(image, np.float32)
        if fill == "gray":
            return np.full_like(image, 128.0, np.float32)
        if fill == "blur":
            return _box_blur(image, max(1, image.shape[0] // 15)).astype(np.float32)
        raise InvalidInputError(f"fill must be one of {FILL_CHOICES}, a number or an RGB triple, got {fill!r}")
    value = np.asarray(fill, np.float64)
    if value.shape not in ((), (3,)) or not np.all(np.isfinite(value)):
        raise InvalidInputError(f"fill must be one of {FILL_CHOICES}, a number or an RGB triple, got {fill!r}")
    return np.ascontiguousarray(np.broadcast_to(value, image.shape), np.float32)
