"""CorrRISE (Lu, Xu, Ebrahimi, WACV 2024): per-pixel correlation of random mask values with the pair's score."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from .. import _core
from .._util.errors import InvalidInputError
from .._util.stats import average_ranks, pearson_from_sums
from .._util.validation import check_int
from .base import Evidence, Method, register_method
from .fills import Fill
from .targets import ScoreTarget


@register_method
class CorrRISE(Method):
    """CorrRISE (Lu, Xu, Ebrahimi, WACV 2024): correlation of mask values with scores.

    ``n_masks`` random masks are applied to the image (the partner stays
    intact); at each pixel the evidence is the correlation, across masks,
    between the mask value there and the pair's score. Units: correlation,
    in [-1, 1]. The same masks (from ``seed``) are used for both images.

    Parameters: ``n_masks``; ``masks`` = ``"rise"`` (``grid`` cells kept with
    probability ``p_keep``, bilinearly upsampled with a random shift) or
    ``"patches"`` (binary: ``holes`` squares of side ``patch`` removed);
    ``fill`` (see :class:`~fxplain.methods.fills.Fill`); ``correlation`` =
    ``"pearson"`` or ``"spearman"`` (ranks of scores; exact for the binary
    ``"patches"`` masks, refused for ``"rise"`` because per-pixel ranks of
    continuous masks would need every mask in memory).
    """

    name = "corrrise"
    units = "correlation of mask and score"
    defaults: ClassVar[dict[str, Any]] = {"n_masks": 500, "masks": "rise", "grid": 7, "p_keep": 0.5, "patch": 30,
                                          "holes": 3, "fill": "mean", "correlation": "pearson"}

    def validate(self) -> None:
        p = self.params
        p["n_masks"] = check_int("n_masks", p["n_masks"], 2)
        if p["masks"] not in ("rise", "patches"):
            raise InvalidInputError(f"masks must be 'rise' or 'patches', got {p['masks']!r}")
        p["grid"] = check_int("grid", p["grid"], 1)
        p["patch"] = check_int("patch", p["patch"], 1)
        p["holes"] = check_int("holes", p["holes"], 1)
        if not isinstance(p["p_keep"], (int, float, np.number)) or not 0 < p["p_keep"] < 1:
            raise InvalidInputError(f"p_keep must be in (0, 1), got {p['p_keep']!r}")
        if p["correlation"] not in ("pearson", "spearman"):
            raise InvalidInputError(f"correlation must be 'pearson' or 'spearman', got {p['correlation']!r}")
        if p["correlation"] == "spearman" and p["masks"] != "patches":
            raise InvalidInputError("correlation='spearman' needs binary masks (masks='patches'); "
                                    "with continuous 'rise' masks use 'pearson'")
        self.fill = Fill(p["fill"])

    def work_units(self, size):
        return self.params["n_masks"]

    def masks(self, seed: int, first: int, count: int, size: tuple[int, int]) -> np.ndarray:
        """Masks ``first .. first+count-1`` of this configuration, float32 (count, H, W)."""
        p = self.params
        h, w = size
        if p["masks"] == "rise":
            if p["grid"] > min(h, w):
                raise InvalidInputError(f"grid {p['grid']} is finer than the {h}x{w} image")
            return _core.masks_rise(seed, first, count, h, w, p["grid"], float(p["p_keep"]))
        if p["patch"] > min(h, w):
            raise InvalidInputError(f"patch {p['patch']} is larger than the {h}x{w} image")
        return _core.masks_patches(seed, first, count, h, w, p["patch"], p["holes"])

    def evidence(self, model, image, partner, base_score, seed, batch_size, progress):
        # a list, not partner[None]: the partner may be a Contrast of two embeddings
        return self._correlate(model, image[None], [partner], base_score, seed, batch_size, progress)[0]

    def explain_pair(self, model, pixels, embeddings, base_score, seed, batch_size, progress):
        # both images see the same masks: generate each chunk of masks once
        return Evidence.from_signed(self._correlate(model, pixels, np.ascontiguousarray(embeddings[::-1]),
                                                    base_score, seed, batch_size, progress))

    def _correlate(self, model, images, partners, base_score, seed, batch_size, progress):
        """Correlation maps (len(images), H, W); image k is scored against partners[k] (embedding or Contrast)."""
        k_images, h, w = images.shape[:3]
        n = self.params["n_masks"]
        fills = [self.fill(image) for image in images]
        # centring on the intact pair's score keeps the streaming sums well conditioned
        targets = [ScoreTarget(model, partners[k], base_score) for k in range(k_images)]
        scores = np.empty((k_images, n))
        sums = np.zeros((k_images, 3, h, w))
        spearman = self.params["correlation"] == "spearman"
        for first in range(0, n, batch_size):
            count = min(batch_size, n - first)
            masks = self.masks(seed, first, count, (h, w))
            for k in range(k_images):
                batch = _core.apply_masks(np.ascontiguousarray(images[k]), fills[k], masks)
                s = targets[k].scores(batch, batch_size)
                scores[k, first:first + count] = s
                if not spearman:
                    _core.correlation_accumulate(masks, s, *sums[k])
                progress.update(count)
        if spearman:
            # second pass: regenerate the (cheap) masks, correlate with score ranks
            scores = np.stack([average_ranks(row) for row in scores])
            for first in range(0, n, batch_size):
                count = min(batch_size, n - first)
                masks = self.masks(seed, first, count, (h, w))
                for k in range(k_images):
                    _core.correlation_accumulate(masks, np.ascontiguousarray(scores[k, first:first + count]),
                                                 *sums[k])
        return np.stack([pearson_from_sums(n, *sums[k], scores[k]) for k in range(k_images)])
