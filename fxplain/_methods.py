"""Explanation methods: occlusion and CorrRISE (perturbation), gradient and
reconstruction (per-dimension region maps with the margin decomposition).

Each method turns a pair into signed *evidence maps*: positive where the
pixels support the match, negative where they argue against it. The Python
code here only orchestrates. Masks, perturbed batches, scores and the
per-pixel reductions are C kernels (``fxplain._core``), and perturbed images
stream through the network in chunks of ``batch_size`` so memory does not
grow with the number of perturbations. The region-map methods run backward
passes (gradient) or one decoder batch (reconstruction) per image and share
one combiner (:mod:`fxplain.decomposition`).
"""
from __future__ import annotations

import os
from typing import Any, ClassVar

import numpy as np

from . import _core
from ._errors import InvalidInputError
from ._fill import fill_image
from .metrics import _average_ranks


def score_kind(model) -> str:
    """Name of the C scoring kernel matching a model's metric."""
    return "neg_squared_euclidean" if model.metric == "squared_euclidean" else "cosine"


def _check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low or (
            high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise InvalidInputError(f"{name} must be an integer {bound}, got {value!r}")
    return int(value)


def _is_finite_number(value: Any) -> bool:
    """A real (not bool) finite number."""
    return not isinstance(value, bool) and isinstance(value, (int, float, np.floating)) \
        and bool(np.isfinite(value))


class Method:
    """Base of the explanation methods: parameters, defaults, validation."""

    name = ""
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, **params: Any):
        unknown = set(params) - set(self.defaults)
        if unknown:
            raise InvalidInputError(f"unknown parameter(s) {sorted(unknown)} for method {self.name!r}; "
                                    f"known: {sorted(self.defaults)}")
        self.params = {**self.defaults, **params}
        self.validate()

    def validate(self) -> None:  # pragma: no cover - overridden
        pass

    def for_randomised_model(self, model) -> Method:
        """The same method, to explain a randomised copy of ``model`` (the sanity check)."""
        return type(self)(**self.params)

    def work_units(self, size: tuple[int, int]) -> int:
        """Number of perturbed images one call of :meth:`evidence` runs through the model."""
        raise NotImplementedError

    def evidence(self, model, image: np.ndarray, partner: np.ndarray, base_score: float, seed: int,
                 batch_size: int, progress) -> np.ndarray:
        """Signed (H, W) float64 evidence map of ``image`` against the ``partner`` embedding."""
        raise NotImplementedError

    def evidence_pair(self, model, pixels: np.ndarray, embeddings: np.ndarray, base_score: float, seed: int,
                      batch_size: int, progress):
        """Evidence maps (2, H, W) of both images, each against its intact partner.

        Returns one signed array, or a (similarity, dissimilarity) tuple of
        non-negative arrays for methods that keep the two apart.
        """
        return np.stack([self.evidence(model, np.ascontiguousarray(pixels[side]),
                                       np.ascontiguousarray(embeddings[1 - side]), base_score, seed, batch_size,
                                       progress) for side in (0, 1)])


class Occlusion(Method):
    """Slide square patches of several sizes over the image; record the score change.

    For each patch size, the evidence at a pixel is minus the mean score
    change of the patches covering it (occluding a region that supports the
    match lowers the score, so its evidence is positive); sizes are averaged.
    Units: score units of the model.
    """

    name = "occlusion"
    defaults: ClassVar[dict[str, Any]] = {"patch_sizes": (20, 30, 40), "stride": 0.5, "fill": "mean"}

    def validate(self) -> None:
        sizes = self.params["patch_sizes"]
        if isinstance(sizes, (int, np.integer)):
            sizes = (sizes,)
        sizes = tuple(_check_int("patch_sizes entries", s, 1) for s in sizes)
        if not sizes:
            raise InvalidInputError("patch_sizes must name at least one size")
        self.params["patch_sizes"] = sizes
        stride = self.params["stride"]
        if not isinstance(stride, (int, float, np.number)) or isinstance(stride, bool) or not 0 < stride <= 1:
            raise InvalidInputError(f"stride must be a fraction of the patch size in (0, 1], got {stride!r}")

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

    def evidence(self, model, image, partner, base_score, seed, batch_size, progress):
        h, w = image.shape[:2]
        fill = fill_image(image, self.params["fill"])
        kind = score_kind(model)
        maps = []
        for rects in self.rects((h, w)):
            total = np.zeros((h, w))
            hits = np.zeros((h, w))
            for start in range(0, len(rects), batch_size):
                chunk = np.ascontiguousarray(rects[start:start + batch_size])
                batch = _core.occlude(image, fill, chunk)
                scores = _core.embedding_scores(kind, model.embed_pixels(batch, batch_size=batch_size), partner)
                _core.rect_accumulate(chunk, scores - base_score, total, hits)
                progress.update(len(chunk))
            maps.append(-total / hits)
        return np.mean(maps, axis=0)


class CorrRISE(Method):
    """CorrRISE (Lu, Xu, Ebrahimi, WACV 2024): correlation of mask values with scores.

    ``n_masks`` random masks are applied to the image (the partner stays
    intact); at each pixel the evidence is the correlation, across masks,
    between the mask value there and the pair's score. Units: correlation,
    in [-1, 1]. The same masks (from ``seed``) are used for both images.

    Parameters: ``n_masks``; ``masks`` = ``"rise"`` (``grid`` cells kept with
    probability ``p_keep``, bilinearly upsampled with a random shift) or
    ``"patches"`` (binary: ``holes`` squares of side ``patch`` removed);
    ``fill`` (see :func:`fxplain._fill.fill_image`); ``correlation`` =
    ``"pearson"`` or ``"spearman"`` (ranks of scores; exact for the binary
    ``"patches"`` masks, refused for ``"rise"`` because per-pixel ranks of
    continuous masks would need every mask in memory).
    """

    name = "corrrise"
    defaults: ClassVar[dict[str, Any]] = {"n_masks": 500, "masks": "rise", "grid": 7, "p_keep": 0.5, "patch": 30, "holes": 3,
                "fill": "mean", "correlation": "pearson"}

    def validate(self) -> None:
        p = self.params
        p["n_masks"] = _check_int("n_masks", p["n_masks"], 2)
        if p["masks"] not in ("rise", "patches"):
            raise InvalidInputError(f"masks must be 'rise' or 'patches', got {p['masks']!r}")
        p["grid"] = _check_int("grid", p["grid"], 1)
        p["patch"] = _check_int("patch", p["patch"], 1)
        p["holes"] = _check_int("holes", p["holes"], 1)
        if not isinstance(p["p_keep"], (int, float, np.number)) or not 0 < p["p_keep"] < 1:
            raise InvalidInputError(f"p_keep must be in (0, 1), got {p['p_keep']!r}")
        if p["correlation"] not in ("pearson", "spearman"):
            raise InvalidInputError(f"correlation must be 'pearson' or 'spearman', got {p['correlation']!r}")
        if p["correlation"] == "spearman" and p["masks"] != "patches":
            raise InvalidInputError("correlation='spearman' needs binary masks (masks='patches'); "
                                    "with continuous 'rise' masks use 'pearson'")

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
        return self._correlate(model, image[None], partner[None], base_score, seed, batch_size, progress)[0]

    def evidence_pair(self, model, pixels, embeddings, base_score, seed, batch_size, progress):
        # both images see the same masks: generate each chunk of masks once
        return self._correlate(model, pixels, np.ascontiguousarray(embeddings[::-1]), base_score, seed,
                               batch_size, progress)

    def _correlate(self, model, images, partners, base_score, seed, batch_size, progress):
        """Correlation maps (len(images), H, W); image k is scored against partners[k]."""
        k_images, h, w = images.shape[:3]
        n = self.params["n_masks"]
        fills = [fill_image(image, self.params["fill"]) for image in images]
        kind = score_kind(model)
        scores = np.empty((k_images, n))
        sums = np.zeros((k_images, 3, h, w))
        spearman = self.params["correlation"] == "spearman"
        for first in range(0, n, batch_size):
            count = min(batch_size, n - first)
            masks = self.masks(seed, first, count, (h, w))
            for k in range(k_images):
                batch = _core.apply_masks(np.ascontiguousarray(images[k]), fills[k], masks)
                emb = model.embed_pixels(batch, batch_size=batch_size)
                # centring on the intact pair's score keeps the streaming sums well conditioned
                s = _core.embedding_scores(kind, emb, partners[k]) - base_score
                scores[k, first:first + count] = s
                if not spearman:
                    _core.correlation_accumulate(masks, s, *sums[k])
                progress.update(count)
        if spearman:
            # second pass: regenerate the (cheap) masks, correlate with score ranks
            scores = np.stack([_average_ranks(row) for row in scores])
            for first in range(0, n, batch_size):
                count = min(batch_size, n - first)
                masks = self.masks(seed, first, count, (h, w))
                for k in range(k_images):
                    _core.correlation_accumulate(masks, np.ascontiguousarray(scores[k, first:first + count]),
                                                 *sums[k])
        return np.stack([_pearson_from_sums(n, *sums[k], scores[k]) for k in range(k_images)])


def _pearson_from_sums(n: int, sum_m: np.ndarray, sum_mm: np.ndarray, sum_ms: np.ndarray,
                       scores: np.ndarray) -> np.ndarray:
    """Per-pixel Pearson correlation from the streaming sums; 0 where a variance vanishes."""
    cov = n * sum_ms - sum_m * scores.sum()
    var_m = np.maximum(n * sum_mm - sum_m ** 2, 0.0)
    var_s = max(n * np.sum(scores ** 2) - scores.sum() ** 2, 0.0)
    denom = np.sqrt(var_m * var_s)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, cov / np.where(denom > 0, denom, 1.0), 0.0)


class Gradient(Method):
    """Per-dimension gradient region maps combined by the margin decomposition.

    For each image, ``R_k = |∂f_k/∂x|`` summed over colour and normalised to
    sum 1 (one batched backward pass through the C core for all D
    dimensions); the pair's margin splits into ``c_k`` (see
    :mod:`fxplain.decomposition`). With ``variant="net"`` (default) the
    evidence is ``S = Σ_k c_k R_k``, whose pixels sum to ``score − threshold``;
    similarity ``max(S, 0)``, dissimilarity ``max(−S, 0)``. With
    ``variant="split"`` (xSSAB-style) the dimensions arguing for and against
    are kept apart: similarity ``Σ_{c_k>0} c_k R_k``, dissimilarity
    ``Σ_{c_k<0} |c_k| R_k`` (a pixel can carry both). Units: score units per
    pixel. The contributions are returned in ``result.extras["contributions"]``.

    With ``variant="integrated"`` the two maps of each image come from
    integrated gradients of the pair score (see :mod:`fxplain._integrated`;
    ``steps`` midpoint nodes, ``samples`` SmoothGrad draws of ``noise`` grey
    levels per node), each along the straight path from the baseline that
    fits its question:

    * dissimilarity, "what makes A differ from B": the path from the partner
      image B (aligned chips, so pixel p of one faces pixel p of the other).
      ``S = IG + (m − Σ_p IG)/HW`` sums to the margin m exactly (the path
      attributes ``s(A, B) − s(B, B)``; the rest, ``s(B, B) − τ`` and the
      quadrature and noise error ``result.extras["path_gap"]``, is spread
      evenly); dissimilarity ``max(−S, 0)``.
    * similarity, "what makes A resemble B": the path from the ``fill``
      image (default the image's mean colour, as deletion uses), which
      attributes ``s(A, B) − s(fill, B)``; similarity ``max(IG, 0)``, gap in
      ``result.extras["fill_path_gap"]``.

    IG is the sum of the per-dimension path attributions, so the same
    ``c_k`` hold. It costs ``2 · steps · samples`` forward and backward
    passes per image. It localises planted differences far better than the
    raw per-dimension maps (docs/explanations.md, docs/evaluation.md).
    """

    name = "gradient"
    defaults: ClassVar[dict[str, Any]] = {"variant": "net", "steps": 16, "samples": 8, "noise": 15.0,
                                          "fill": "mean"}
    variants: ClassVar[tuple[str, ...]] = ("net", "split", "integrated")

    def validate(self) -> None:
        if self.params["variant"] not in self.variants:
            raise InvalidInputError(f"variant must be one of {', '.join(map(repr, self.variants))}, "
                                    f"got {self.params['variant']!r}")
        if "steps" in self.params:
            _check_int("steps", self.params["steps"], 1)
            _check_int("samples", self.params["samples"], 1)
            noise = self.params["noise"]
            if not _is_finite_number(noise) or noise < 0:
                raise InvalidInputError(f"noise must be a finite number >= 0 (grey levels), got {noise!r}")
            fill_image(np.zeros((8, 8, 3), np.float32), self.params["fill"])  # raises on a bad fill

    def work_units(self, size):
        return 2 * self.params["steps"] * self.params["samples"] if self.params["variant"] == "integrated" else 1

    def region_maps(self, model, pixels, embeddings, batch_size) -> list[np.ndarray]:
        """The (D, H, W) region maps of both images."""
        if not hasattr(model, "dimension_maps"):
            raise InvalidInputError("method 'gradient' needs a model running on fxplain's core "
                                    "(fxplain.load_model); wrapped callables support occlusion and corrrise")
        return [model.dimension_maps(pixels[side], batch_size=batch_size) for side in (0, 1)]

    def evidence_pair(self, model, pixels, embeddings, base_score, seed, batch_size, progress):
        from .decomposition import combine, margin_contributions

        self.last_extras: dict[str, Any] = {}
        if self.params["variant"] == "integrated":
            self.last_contributions = margin_contributions(model, embeddings[0], embeddings[1])
            return self._integrated_evidence(model, pixels, embeddings, base_score, seed, batch_size, progress)
        region_maps = self.region_maps(model, pixels, embeddings, batch_size)
        progress.update(2)
        contributions = margin_contributions(model, embeddings[0], embeddings[1])
        self.last_contributions = contributions
        if self.params["variant"] == "net":
            return np.stack([combine(contributions, r) for r in region_maps])
        for_match, against = np.maximum(contributions, 0), np.maximum(-contributions, 0)
        return (np.stack([combine(for_match, r) for r in region_maps]),
                np.stack([combine(against, r) for r in region_maps]))

    def _integrated_evidence(self, model, pixels, embeddings, base_score, seed, batch_size, progress):
        """(similarity, dissimilarity) of both images from the fill and partner paths (``variant="integrated"``)."""
        from ._integrated import FILL_PATH_POWER, integrated_score_map

        if not hasattr(model, "score_gradient_pixels"):
            raise InvalidInputError("method 'gradient' needs a model running on fxplain's core "
                                    "(fxplain.load_model); wrapped callables support occlusion and corrrise")
        path_options = {"steps": self.params["steps"], "samples": self.params["samples"],
                        "noise": float(self.params["noise"]), "batch_size": batch_size}
        margin = base_score - model.threshold
        similarity, dissimilarity, gaps, fill_gaps = [], [], [], []
        for side in (0, 1):
            image, partner = pixels[side], pixels[1 - side]
            partner_emb = embeddings[1 - side]
            path = integrated_score_map(model, image, partner, partner_emb,
                                        rng=np.random.default_rng([seed, side]), **path_options)
            # the path attributes s(A, B) − s(B, B) up to quadrature and noise; the
            # rest of the margin (s(B, B) − τ, and that gap) is spread evenly
            gaps.append(float(base_score - model.score(partner_emb, partner_emb) - path.sum()))
            dissimilarity.append(np.maximum(-(path + (margin - path.sum()) / path.size), 0))
            fill = fill_image(image, self.params["fill"])
            from_fill = integrated_score_map(model, image, fill, partner_emb, power=FILL_PATH_POWER,
                                             rng=np.random.default_rng([seed, side, 1]), **path_options)
            fill_score = model.score(model.embed_pixels(fill[None])[0], partner_emb)
            fill_gaps.append(float(base_score - fill_score - from_fill.sum()))
            similarity.append(np.maximum(from_fill, 0))
            progress.update(self.work_units(pixels.shape[1:3]))
        self.last_extras = {"path_gap": gaps, "fill_path_gap": fill_gaps}
        return np.stack(similarity), np.stack(dissimilarity)


class Reconstruction(Gradient):
    """Region maps from the face-reconstruction decoder, combined by the margin decomposition.

    For each image with embedding f, ``R_k = |G(f) − G(f − δ_k e_k)|`` (see
    :meth:`fxplain.reconstruction.Decoder.dimension_maps`; one decoder batch
    for all D dimensions), then the same combiner and the "net" and "split" variants of
    ``"gradient"``. ``decoder`` is a :class:`~fxplain.reconstruction.Decoder`,
    a path to a decoder file, or None for the model's default decoder
    (:func:`fxplain.default_decoder`, trained once and cached). ``delta`` is
    the perturbation in standard deviations of each dimension.
    """

    name = "reconstruction"
    defaults: ClassVar[dict[str, Any]] = {"variant": "net", "delta": 1.0, "decoder": None}
    variants: ClassVar[tuple[str, ...]] = ("net", "split")

    def __init__(self, **params: Any):
        from .reconstruction import Decoder, load_decoder

        decoder = params.get("decoder")
        self.decoder = None
        if isinstance(decoder, Decoder):
            self.decoder = decoder
            params["decoder"] = f"decoder:{decoder.spec.weights_digest()[:16]}"
        elif decoder is not None:
            if not isinstance(decoder, (str, os.PathLike)):
                raise InvalidInputError(f"decoder must be a Decoder, a decoder file or None, got {type(decoder).__name__}")
            self.decoder = load_decoder(decoder)
            params["decoder"] = str(decoder)
        super().__init__(**params)

    def validate(self) -> None:
        super().validate()
        delta = self.params["delta"]
        if not _is_finite_number(delta) or delta == 0:
            raise InvalidInputError(f"delta must be a non-zero finite number, got {delta!r}")

    #: Off only in the copy made by for_randomised_model.
    require_matching_model = True

    def for_randomised_model(self, model) -> Reconstruction:
        """The randomised model's features go through ``model``'s decoder.

        A decoder for the randomised model would take minutes to train; with
        this one the contributions and the maps both still change.
        """
        copy = type(self)(**{**self.params, "decoder": self.decoder_for(model)})
        copy.require_matching_model = False
        return copy

    def decoder_for(self, model):
        """The decoder in use: the one given, or ``model``'s default decoder (trained once, cached)."""
        from .training import default_decoder

        if self.decoder is None:
            if not hasattr(model, "spec"):
                raise InvalidInputError("method 'reconstruction' without a decoder needs a model from "
                                        "fxplain.load_model (its default decoder is trained on johns)")
            self.decoder = default_decoder(model)
        return self.decoder

    def evidence_pair(self, model, pixels, embeddings, base_score, seed, batch_size, progress):
        maps = super().evidence_pair(model, pixels, embeddings, base_score, seed, batch_size, progress)
        # which weights made the maps, also when params say decoder=None (the default decoder)
        self.last_extras = {"decoder_weights": self.decoder.spec.weights_digest()[:16]}
        return maps

    def region_maps(self, model, pixels, embeddings, batch_size):
        self.decoder_for(model)
        if self.require_matching_model and self.decoder.model_hash != model.model_hash:
            raise InvalidInputError("this decoder was trained for another face model "
                                    f"({self.decoder.model_hash[:12]}…, the model is {model.model_hash[:12]}…)")
        return [self.decoder.dimension_maps(embeddings[side], delta=float(self.params["delta"])) for side in (0, 1)]


METHODS: dict[str, type[Method]] = {cls.name: cls for cls in (Occlusion, CorrRISE, Gradient, Reconstruction)}
