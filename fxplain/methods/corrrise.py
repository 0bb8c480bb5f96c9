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

#: Masks per block of the converged mode (``n_masks="auto"``) with random sampling; blocks alternate
#: between two halves (with orthogonal sampling a block is one orthogonal design).
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
    continuous masks would need every mask in memory); ``sampling`` =
    ``"random"`` (every mask drawn on its own) or ``"orthogonal"`` (``"rise"``
    masks with ``p_keep=0.5`` drawn in blocks of
    ``_core.orthogonal_block_size(grid)`` — 68 for the 7x7 grid — whose cells
    follow the orthogonal, balanced columns of a Paley Hadamard design, with
    random column choice, signs and one shift per block). Each orthogonal
    mask alone is a uniform random RISE mask, so both estimate the same
    maps; but within a block the part of the score that is linear in the
    cells cancels exactly from every pixel's covariance, which removes most
    of the Monte-Carlo noise: on johns pairs 272 orthogonal masks agree with
    another seed's run as well as 1,000 random ones do (see
    ``docs/explanations.md``). The default ``sampling=None`` is
    ``"orthogonal"`` for ``n_masks="auto"`` and ``"random"`` (today's
    masks, bit for bit) for a fixed number. ``precision`` = ``"fp32"``,
    ``"int8"`` or ``"bf16"``, the arithmetic of the masked batches
    (:mod:`fxplain.methods.precision`; the intact pair stays FP32).

    ``n_masks="auto"`` stops when the maps have converged: masks stream in
    blocks (one orthogonal design, 68 masks for the 7x7 grid, or
    :data:`AUTO_BLOCK` random masks) that alternate between two halves;
    after every second block (from :data:`AUTO_MIN_MASKS` masks on) the
    maps of the two halves are compared by their Spearman rank correlation
    ρ, and the Spearman–Brown prediction ``2ρ / (1 + ρ)`` — how well the
    maps of all masks so far would agree with another run's — is the
    stability. Each image of the pair stops on its own when its stability
    reaches ``1 − tolerance``, or at ``max_masks`` (if the cap ends an odd
    number of blocks, the stability reported compares the final, unequal
    halves). The masks are the same stream as a fixed run's with the same
    sampling (mask i is mask i), so each map equals that of a fixed run of
    the number of masks its image used (to rounding, ~1e-14: the halves are
    summed apart); ``r.extras`` holds ``n_masks_used`` and ``stability``,
    lists with one entry per image (A, B). ``tolerance`` and ``max_masks``
    apply only to ``"auto"`` (a fixed run's parameters are unchanged). The
    default ``tolerance=0.15`` asks for the stability 1,000 fixed random
    masks reach on johns pairs (0.81-0.87 over the images of 4 pairs; 500
    masks: 0.59-0.84; 2,000: 0.89-0.92).
    """

    name = "corrrise"
    units = "correlation of mask and score"
    defaults: ClassVar[dict[str, Any]] = {"n_masks": 500, "masks": "rise", "grid": 7, "p_keep": 0.5, "patch": 30,
                                          "holes": 3, "fill": "mean", "correlation": "pearson",
                                          "tolerance": 0.15, "max_masks": 2000, "sampling": None,
                                          "precision": "fp32"}

    def validate(self) -> None:
        p = self.params
        if p["sampling"] is None:
            p["sampling"] = "orthogonal" if p["n_masks"] == "auto" else "random"
        if p["sampling"] not in ("random", "orthogonal"):
            raise InvalidInputError(f"sampling must be 'random' or 'orthogonal', got {p['sampling']!r}")
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
        if p["sampling"] == "orthogonal" and (p["masks"] != "rise" or p["p_keep"] != 0.5):
            raise InvalidInputError("sampling='orthogonal' draws 'rise' masks with p_keep=0.5 "
                                    f"(got masks={p['masks']!r}, p_keep={p['p_keep']!r})")
        if p["n_masks"] != "auto" and p["sampling"] == "random":
            del p["sampling"]  # today's fixed runs keep the parameters they had
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
            if p.get("sampling") == "orthogonal":
                return _core.masks_rise_orthogonal(seed, first, count, h, w, p["grid"])
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
        # an orthogonal design cancels noise only as a whole block: blocks are designs
        block = (_core.orthogonal_block_size(self.params["grid"]) if self.params["sampling"] == "orthogonal"
                 else AUTO_BLOCK)
        fills = [self.fill(image) for image in images]
        targets = [ScoreTarget(model, partners[k], base_score) for k in range(k_images)]
        sums = np.zeros((k_images, 2, 3, h, w))
        scores: list[list[list[np.ndarray]]] = [[[], []] for _ in range(k_images)]
        # each image stops on its own: the pair's easier image does not wait for the harder one
        used, stability = [0] * k_images, [float("nan")] * k_images
        active = list(range(k_images))
        done, half = 0, 0
        while active and done < cap:
            count = min(block, cap - done)
            masks = self.masks(seed, done, count, (h, w))  # the fixed run's stream: mask i is mask i
            for k in active:
                batch = _core.apply_masks(np.ascontiguousarray(images[k]), fills[k], masks)
                s = targets[k].scores(batch, batch_size)
                scores[k][half].append(s)
                _core.correlation_accumulate(masks, s, *sums[k, half])
                used[k] += count
            progress.update(count * len(active))
            done += count
            half ^= 1
            if half == 0 and done >= AUTO_MIN_MASKS:
                for k in list(active):
                    stability[k] = _split_half_stability(sums[k], scores[k])
                    if stability[k] >= target:
                        active.remove(k)
        if half == 1:  # the cap fell between comparisons: report the final masks' stability all the same
            for k in active:
                stability[k] = _split_half_stability(sums[k], scores[k])
        # masks not run count as done for the progress bar
        progress.update(sum(cap - n for n in used))
        maps = np.stack([pearson_from_sums(used[k], *(sums[k, 0] + sums[k, 1]),
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
