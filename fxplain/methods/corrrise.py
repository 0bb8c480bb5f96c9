"""CorrRISE (Lu, Xu, Ebrahimi, WACV 2024): per-pixel correlation of random mask values with the pair's score."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from .. import _core
from .._util.errors import InvalidInputError
from .._util.stats import average_ranks, pearson_from_sums
from .._util.validation import check_int, is_finite_number
from .base import Evidence, Method, register_method
from .fills import Fill
from .precision import PrecisionMixin
from .targets import ScoreTarget

#: Masks per block of the converged mode (``n_masks="auto"``); blocks alternate between two halves.
AUTO_BLOCK = 50
#: The converged mode compares its halves from this many masks on.
AUTO_MIN_MASKS = 200


def _split_half_stability(sums: np.ndarray, scores: list[list[np.ndarray]]) -> float:
    """Spearman–Brown prediction ``2ρ / (1 + ρ)`` from the rank correlation ρ of the two halves' maps."""
    halves = []
    for half in (0, 1):
        s = np.concatenate(scores[half])
        halves.append(average_ranks(pearson_from_sums(len(s), *sums[half], s).ravel()))
    rho = float(np.corrcoef(halves[0], halves[1])[0, 1])
    if not np.isfinite(rho):
        return float("nan")
    return 2 * rho / (1 + rho) if rho > -1 else -1.0


@register_method
class CorrRISE(PrecisionMixin, Method):
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
    continuous masks would need every mask in memory); ``precision`` =
    ``"fp32"``, ``"int8"`` or ``"bf16"``, the arithmetic of the masked
    batches (:mod:`fxplain.methods.precision`; the intact pair stays FP32).

    ``n_masks="auto"`` stops when the maps have converged: masks stream in
    blocks of :data:`AUTO_BLOCK` that alternate between two halves; after
    every second block (from :data:`AUTO_MIN_MASKS` masks on) the maps of
    the two halves are compared by their Spearman rank correlation ρ, and
    the Spearman–Brown prediction ``2ρ / (1 + ρ)`` — how well the maps of
    all masks so far would agree with another run's — is the stability.
    The run stops when the least stable image of the pair reaches
    ``1 − tolerance``, or at ``max_masks``. The masks are the same stream
    as a fixed run's (mask i is mask i), so the maps equal those of a fixed
    run of the number of masks used (to rounding, ~1e-14: the halves are
    summed apart); ``r.extras`` holds ``n_masks_used`` and ``stability``.
    ``tolerance`` and ``max_masks`` apply only to ``"auto"`` (a fixed run's
    parameters are unchanged). The default ``tolerance=0.15`` asks for the
    stability 1,000 fixed masks reach on johns pairs (0.81-0.87 over the
    images of 4 pairs; 500 masks: 0.59-0.84; 2,000: 0.89-0.92).
    """

    name = "corrrise"
    units = "correlation of mask and score"
    defaults: ClassVar[dict[str, Any]] = {"n_masks": 500, "masks": "rise", "grid": 7, "p_keep": 0.5, "patch": 30,
                                          "holes": 3, "fill": "mean", "correlation": "pearson",
                                          "tolerance": 0.15, "max_masks": 2000, "precision": "fp32"}

    def validate(self) -> None:
        p = self.params
        if p["n_masks"] == "auto":
            tolerance = p["tolerance"]
            if not is_finite_number(tolerance) or not 0 < tolerance < 1:
                raise InvalidInputError(f"tolerance must be a number in (0, 1), got {tolerance!r}")
            p["max_masks"] = check_int("max_masks", p["max_masks"], AUTO_MIN_MASKS)
            if p["correlation"] != "pearson":
                raise InvalidInputError("n_masks='auto' streams masks and stops early: use correlation='pearson'")
        else:
            for name in ("tolerance", "max_masks"):
                if p[name] != self.defaults[name]:
                    raise InvalidInputError(f"{name} applies only to n_masks='auto' (n_masks is {p['n_masks']!r})")
                del p[name]  # a fixed run's parameters stay what they were before the converged mode
            if isinstance(p["n_masks"], str):
                raise InvalidInputError(f"n_masks must be an integer >= 2 or 'auto', got {p['n_masks']!r}")
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
        self._check_precision()

    def work_units(self, size):
        return self.params["max_masks"] if self.params["n_masks"] == "auto" else self.params["n_masks"]

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
        return self._maps(model, image[None], [partner], base_score, seed, batch_size, progress)[0][0]

    def explain_pair(self, model, pixels, embeddings, base_score, seed, batch_size, progress):
        # perturbed batches in the method's precision, calibrated on the intact pair (the
        # correlations ignore the shift of every score by the base, so the FP32 base serves)
        model = self.perturbation_model(model, pixels)
        # both images see the same masks: generate each chunk of masks once
        maps, extras = self._maps(model, pixels, np.ascontiguousarray(embeddings[::-1]), base_score, seed,
                                  batch_size, progress)
        return Evidence.from_signed(maps, extras)

    def _maps(self, model, images, partners, base_score, seed, batch_size, progress):
        """Correlation maps of the images and what the run reports (the converged mode's masks and stability)."""
        if self.params["n_masks"] == "auto":
            return self._correlate_until_stable(model, images, partners, base_score, seed, batch_size, progress)
        return self._correlate(model, images, partners, base_score, seed, batch_size, progress), {}

    def _correlate_until_stable(self, model, images, partners, base_score, seed, batch_size, progress):
        """``n_masks="auto"``: stream blocks of masks into two halves until the maps are stable (class doc)."""
        k_images, h, w = images.shape[:3]
        cap, target = self.params["max_masks"], 1.0 - float(self.params["tolerance"])
        fills = [self.fill(image) for image in images]
        targets = [ScoreTarget(model, partners[k], base_score) for k in range(k_images)]
        sums = np.zeros((k_images, 2, 3, h, w))
        scores: list[list[list[np.ndarray]]] = [[[], []] for _ in range(k_images)]
        used, half, stability = 0, 0, float("nan")
        while used < cap:
            count = min(AUTO_BLOCK, cap - used)
            masks = self.masks(seed, used, count, (h, w))  # the fixed run's stream: mask i is mask i
            for k in range(k_images):
                batch = _core.apply_masks(np.ascontiguousarray(images[k]), fills[k], masks)
                s = targets[k].scores(batch, batch_size)
                scores[k][half].append(s)
                _core.correlation_accumulate(masks, s, *sums[k, half])
                progress.update(count)
            used += count
            half ^= 1
            if half == 0 and used >= AUTO_MIN_MASKS:
                stability = min(_split_half_stability(sums[k], scores[k]) for k in range(k_images))
                if stability >= target:
                    break
        maps = np.stack([pearson_from_sums(used, *(sums[k, 0] + sums[k, 1]),
                                           np.concatenate(scores[k][0] + scores[k][1])) for k in range(k_images)])
        return maps, {"n_masks_used": used, "stability": stability}

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
