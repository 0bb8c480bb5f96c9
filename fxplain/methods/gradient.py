"""The gradient method: integrated gradients of the pair score (default), or per-dimension gradient maps."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from .._util.errors import InvalidInputError
from .._util.validation import check_int, is_finite_number
from ..models.protocols import require_differentiable
from ..models.scoring import require_threshold
from .base import Evidence, register_method
from .decomposition import contrast_contributions, margin_contributions
from .fills import Fill
from .integrated import FILL_PATH_POWER, integrated_score_map
from .region_maps import RegionMapMethod


@register_method
class Gradient(RegionMapMethod):
    """Gradients of the model through the C core's backward pass, in three variants.

    With ``variant="integrated"`` (the default) the two maps of each image
    come from integrated gradients of the pair score (see
    :mod:`fxplain.methods.integrated`; ``steps`` midpoint nodes, ``samples``
    SmoothGrad draws of ``noise`` grey levels per node), each along the
    straight path from the baseline that fits its question:

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
    raw per-dimension maps (docs/explanations.md, docs/evaluation.md), which
    is why it is the default.

    With ``variant="net"`` or ``"split"``, the region maps are
    ``R_k = |∂f_k/∂x|`` summed over colour and normalised to sum 1 (one
    batched backward pass for all D dimensions), combined as described in
    :mod:`fxplain.methods.region_maps`. Units: score units per pixel. The
    contributions ``c_k`` are in ``result.extras["contributions"]`` for
    every variant.
    """

    name = "gradient"
    defaults: ClassVar[dict[str, Any]] = {"variant": "integrated", "steps": 16, "samples": 8, "noise": 15.0,
                                          "fill": "mean"}
    variants: ClassVar[tuple[str, ...]] = ("integrated", "net", "split")

    def validate(self) -> None:
        check_int("steps", self.params["steps"], 1)
        check_int("samples", self.params["samples"], 1)
        noise = self.params["noise"]
        if not is_finite_number(noise) or noise < 0:
            raise InvalidInputError(f"noise must be a finite number >= 0 (grey levels), got {noise!r}")
        self.fill = Fill(self.params["fill"])

    def work_units(self, size):
        return 2 * self.params["steps"] * self.params["samples"] if self.params["variant"] == "integrated" else 1

    def contrast_work_units(self, size):
        # a contrast has only the path from the fill
        return self.params["steps"] * self.params["samples"] if self.params["variant"] == "integrated" else 1

    def region_map(self, model, image, embedding, batch_size):
        return require_differentiable(model, self.name).dimension_maps(image, batch_size=batch_size)

    def _path_options(self, batch_size: int) -> dict[str, Any]:
        return {"steps": self.params["steps"], "samples": self.params["samples"],
                "noise": float(self.params["noise"]), "batch_size": batch_size}

    def explain_pair(self, model, pixels, embeddings, base_score, seed, batch_size, progress):
        if self.params["variant"] != "integrated":
            return self.combined_evidence(model, pixels, embeddings, batch_size, progress)
        model = require_differentiable(model, self.name)
        path_options = self._path_options(batch_size)
        margin = base_score - require_threshold(model)
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
            fill = self.fill(image)
            from_fill = integrated_score_map(model, image, fill, partner_emb, power=FILL_PATH_POWER,
                                             rng=np.random.default_rng([seed, side, 1]), **path_options)
            fill_score = model.score(model.embed_pixels(fill[None])[0], partner_emb)
            fill_gaps.append(float(base_score - fill_score - from_fill.sum()))
            similarity.append(np.maximum(from_fill, 0))
            progress.update(self.work_units(pixels.shape[1:3]))
        contributions = margin_contributions(model, embeddings[0], embeddings[1])
        return Evidence(np.stack(similarity), np.stack(dissimilarity),
                        {"contributions": contributions.tolist(), "path_gap": gaps, "fill_path_gap": fill_gaps})

    def explain_contrast(self, model, probe_pixels, probe_embedding, contrast, seed, batch_size, progress):
        """Integrated gradients of the contrast ``c(x) = s(x, g1) − s(x, g2)`` from the ``fill`` image.

        The gallery identities have no one image the probe could start from
        (a mean embedding, several images), so the path starts where the
        similarity path of a pair starts: the plain fill image. Similarity
        ``max(IG, 0)`` (pixels for g1), dissimilarity ``max(−IG, 0)`` (for
        g2); ``extras["fill_path_gap"]`` is ``c(probe) − c(fill) − Σ IG``.
        """
        if self.params["variant"] != "integrated":
            return self.combined_contrast_evidence(model, probe_pixels, probe_embedding, contrast, batch_size,
                                                   progress)
        model = require_differentiable(model, self.name)
        image = probe_pixels[0]
        fill = self.fill(image)
        path = integrated_score_map(model, image, fill, contrast, power=FILL_PATH_POWER,
                                    rng=np.random.default_rng([seed, 0, 1]), **self._path_options(batch_size))
        progress.update(self.contrast_work_units(probe_pixels.shape[1:3]))
        probe_c = contrast.score(model.metric, np.asarray(probe_embedding, np.float64))
        fill_c = contrast.score(model.metric, model.embed_pixels(fill[None])[0].astype(np.float64))
        return Evidence.from_signed(path[None], {
            "contributions": contrast_contributions(model, probe_embedding, contrast).tolist(),
            "fill_path_gap": [float(probe_c - fill_c - path.sum())]})
