"""Methods built on per-dimension region maps and the margin decomposition.

For each image, a region map ``R_k`` per embedding dimension k says which
pixels dimension k depends on; the pair's margin splits into per-dimension
contributions ``c_k`` (:mod:`fxplain.methods.decomposition`). Subclasses say
where the ``R_k`` come from (gradients, the reconstruction decoder); this
base combines them, in two variants:

* ``"net"``: ``S = Σ_k c_k R_k`` (pixels sum to the margin); similarity
  ``max(S, 0)``, dissimilarity ``max(−S, 0)``;
* ``"split"`` (xSSAB-style): the dimensions arguing for and against are kept
  apart: similarity ``Σ_{c_k>0} c_k R_k``, dissimilarity ``Σ_{c_k<0} |c_k| R_k``.

The contributions travel in ``extras["contributions"]``. A contrast of
1:N identification (:meth:`~fxplain.methods.base.Method.explain_contrast`)
goes through the same combiner with the contrast's contributions
(:func:`~fxplain.methods.decomposition.contrast_contributions`) and the
probe's region maps.
"""

from __future__ import annotations

import numpy as np

from .base import Evidence, Method
from .decomposition import combine, contrast_contributions, margin_contributions


class RegionMapMethod(Method):
    """Base of the methods that combine per-dimension region maps by the margin decomposition."""

    units = "score units per pixel"

    def region_map(self, model, image: np.ndarray, embedding: np.ndarray, batch_size: int) -> np.ndarray:
        """The (D, H, W) non-negative region maps of one image (float32 ``(H, W, 3)``, embedding ``(D,)``)."""
        raise NotImplementedError

    def region_maps(self, model, pixels: np.ndarray, embeddings: np.ndarray,
                    batch_size: int) -> list[np.ndarray]:
        """The (D, H, W) non-negative region maps of both images."""
        return [self.region_map(model, pixels[side], embeddings[side], batch_size) for side in (0, 1)]

    def work_units(self, size):
        return 1

    def combined_evidence(self, model, pixels, embeddings, batch_size, progress) -> Evidence:
        """The ``"net"`` or ``"split"`` evidence of both images, with the contributions in extras."""
        region_maps = self.region_maps(model, pixels, embeddings, batch_size)
        progress.update(2)
        contributions = margin_contributions(model, embeddings[0], embeddings[1])
        return self._combined(contributions, region_maps)

    def combined_contrast_evidence(self, model, probe_pixels, probe_embedding, contrast, batch_size,
                                   progress) -> Evidence:
        """``"net"`` or ``"split"`` contrast evidence of a probe (contrast contributions, probe maps)."""
        region_map = self.region_map(model, probe_pixels[0], probe_embedding, batch_size)
        progress.update(1)
        return self._combined(contrast_contributions(model, probe_embedding, contrast), [region_map])

    def _combined(self, contributions: np.ndarray, region_maps: list[np.ndarray]) -> Evidence:
        """Net or split maps ``(len(region_maps), H, W)`` of the contributions, which travel in extras."""
        extras = {"contributions": contributions.tolist()}
        if self.params["variant"] == "net":
            return Evidence.from_signed(np.stack([combine(contributions, r) for r in region_maps]), extras)
        for_match, against = np.maximum(contributions, 0), np.maximum(-contributions, 0)
        return Evidence(np.stack([combine(for_match, r) for r in region_maps]),
                        np.stack([combine(against, r) for r in region_maps]), extras)

    def explain_pair(self, model, pixels, embeddings, base_score, seed, batch_size, progress):
        return self.combined_evidence(model, pixels, embeddings, batch_size, progress)

    def explain_contrast(self, model, probe_pixels, probe_embedding, contrast, seed, batch_size, progress):
        return self.combined_contrast_evidence(model, probe_pixels, probe_embedding, contrast, batch_size,
                                               progress)
