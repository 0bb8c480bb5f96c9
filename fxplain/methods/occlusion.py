"""Occlusion: slide square patches over the image and record how the pair's score changes."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from .. import _core
from .._util.errors import InvalidInputError
from .._util.validation import check_int
from .base import Evidence, Method, register_method
from .fills import Fill
from .precision import PrecisionMixin
from .targets import ScoreTarget


@register_method
class Occlusion(PrecisionMixin, Method):
    """Slide square patches of several sizes over the image; record the score change.

    For each patch size, the evidence at a pixel is minus the mean score
    change of the patches covering it (occluding a region that supports the
    match lowers the score, so its evidence is positive); sizes are averaged.
    Units: score units of the model.

    Parameters: ``patch_sizes`` (one size or several, pixels), ``stride``
    (fraction of the patch size in (0, 1]), ``fill`` (see :class:`~fxplain.methods.fills.Fill`),
    ``precision`` (``"fp32"``, ``"int8"`` or ``"bf16"``: the arithmetic of the
    occluded batches, see :mod:`fxplain.methods.precision`; in low precision
    the score changes are taken from the intact image's score in the same
    arithmetic, so the quantisation offset of the score cancels).
    """

    name = "occlusion"
    units = "score drop when occluded (score units)"
    defaults: ClassVar[dict[str, Any]] = {"patch_sizes": (20, 30, 40), "stride": 0.5, "fill": "mean",
                                          "precision": "fp32"}

    def validate(self) -> None:
        sizes = self.params["patch_sizes"]
        if isinstance(sizes, (int, np.integer)):
            sizes = (sizes,)
        sizes = tuple(check_int("patch_sizes entries", s, 1) for s in sizes)
        if not sizes:
            raise InvalidInputError("patch_sizes must name at least one size")
        self.params["patch_sizes"] = sizes
        stride = self.params["stride"]
        if not isinstance(stride, (int, float, np.number)) or isinstance(stride, bool) or not 0 < stride <= 1:
            raise InvalidInputError(f"stride must be a fraction of the patch size in (0, 1], got {stride!r}")
        self.fill = Fill(self.params["fill"])
        self._check_precision()

    def rects(self, size: tuple[int, int]) -> list[np.ndarray]:
        """Patch rectangles (top, left, bottom, right) per patch size, covering every pixel."""
        h, w = size
        out = []
        for patch in self.params["patch_sizes"]:
            if patch > min(h, w):
                raise InvalidInputError(f"patch size {patch} is larger than the {h}x{w} image")
            step = max(1, round(patch * self.params["stride"]))
            tops = sorted(set(range(0, h - patch + 1, step)) | {h - patch})
            lefts = sorted(set(range(0, w - patch + 1, step)) | {w - patch})
            out.append(np.array([(t, l, t + patch, l + patch) for t in tops for l in lefts], np.int32))
        return out

    def work_units(self, size):
        return sum(len(r) for r in self.rects(size))

    def explain_pair(self, model, pixels, embeddings, base_score, seed, batch_size, progress):
        view = self.perturbation_model(model, pixels)
        if view is model:
            return super().explain_pair(model, pixels, embeddings, base_score, seed, batch_size, progress)
        maps = []
        for side in (0, 1):
            image, partner = np.ascontiguousarray(pixels[side]), np.ascontiguousarray(embeddings[1 - side])
            maps.append(self.evidence(view, image, partner, self.intact_score(view, image, partner), seed,
                                      batch_size, progress))
        return Evidence.from_signed(np.stack(maps))

    def evidence(self, model, image, partner, base_score, seed, batch_size, progress):
        h, w = image.shape[:2]
        fill = self.fill(image)
        target = ScoreTarget(model, partner, base_score)
        maps = []
        for rects in self.rects((h, w)):
            total = np.zeros((h, w))
            hits = np.zeros((h, w))
            for start in range(0, len(rects), batch_size):
                chunk = np.ascontiguousarray(rects[start:start + batch_size])
                scores = target.scores(_core.occlude(image, fill, chunk), batch_size)
                _core.rect_accumulate(chunk, scores, total, hits)
                progress.update(len(chunk))
            maps.append(-total / hits)
        return np.mean(maps, axis=0)
