"""Per-dimension region maps by occlusion: one sweep of patches, the change of every embedding dimension.

For an image ``x`` and square patches ``P`` filled with the image's mean
colour, ``Δ_k(P) = |f_k(x with P occluded) - f_k(x)|``; the map of dimension k
at a pixel is the mean of ``Δ_k`` over the patches covering it, normalised to
sum to 1. One forward pass per patch serves all D dimensions. The occluded
images come from the C core's ``occlude`` kernel and the per-pixel means from
its ``rect_accumulate``, as the occlusion explanation method does for scores.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _core
from .._util.errors import InvalidInputError
from .._util.validation import check_positive_int


def patch_rects(size: tuple[int, int], patch: int, stride: int) -> np.ndarray:
    """int32 ``(n, 4)`` (top, left, bottom, right) squares of side ``patch`` every ``stride``, covering every pixel."""
    h, w = size
    if patch > min(h, w):
        raise InvalidInputError(f"patch {patch} is larger than the {h}x{w} image")
    tops = sorted(set(range(0, h - patch + 1, stride)) | {h - patch})
    lefts = sorted(set(range(0, w - patch + 1, stride)) | {w - patch})
    return np.array([(t, left, t + patch, left + patch) for t in tops for left in lefts], np.int32)


def occlusion_dimension_maps(model: Any, pixels: np.ndarray, *, patch: int | None = None,
                             stride: int | None = None, batch_size: int = 32) -> np.ndarray:
    """float32 ``(D, H, W)`` occlusion maps of every dimension of ``model`` for one image (see the module doc).

    ``pixels`` is a validated float32 ``(1, H, W, 3)`` batch.
    """
    h, w = pixels.shape[1:3]
    patch = check_positive_int("patch", patch if patch is not None else max(1, min(h, w) // 6))
    stride = check_positive_int("stride", stride if stride is not None else max(1, patch // 3))
    batch_size = check_positive_int("batch_size", batch_size)
    rects = patch_rects((h, w), patch, stride)
    image = np.ascontiguousarray(pixels[0], np.float32)
    fill = np.ascontiguousarray(np.broadcast_to(image.mean(axis=(0, 1)), image.shape), np.float32)
    base = model.embed_pixels(pixels)[0].astype(np.float64)
    d = base.shape[0]
    totals = np.zeros((d, h, w))
    hits = np.zeros((h, w))
    for start in range(0, len(rects), batch_size):
        chunk = np.ascontiguousarray(rects[start:start + batch_size])
        change = np.abs(model.embed_pixels(_core.occlude(image, fill, chunk), batch_size=batch_size) - base)
        scratch = np.zeros((h, w))
        for k in range(d):  # the C kernel adds one value per rectangle; hits count once
            _core.rect_accumulate(chunk, np.ascontiguousarray(change[:, k], np.float64), totals[k],
                                  hits if k == 0 else scratch)
    maps = totals / hits
    sums = maps.reshape(d, -1).sum(axis=1)
    return (maps / np.where(sums > 0, sums, 1.0)[:, None, None]).astype(np.float32)


__all__ = ["occlusion_dimension_maps", "patch_rects"]
