"""Margin decomposition: which embedding dimensions argue for or against a match.

For a pair with embeddings a, b, score s and threshold τ, the margin
``m = s − τ`` splits exactly into per-dimension contributions ``c_k``
(``Σ_k c_k = m``):

* squared-Euclidean models (dlib; score −‖a − b‖², threshold −t²):
  ``c_k = t²/D − (a_k − b_k)²``;
* cosine models: ``c_k = â_k b̂_k − τ/D`` with â, b̂ the normalised embeddings.

``c_k > 0`` argues for the match, ``c_k < 0`` against it. Given a
non-negative region map ``R_k`` per dimension (normalised to sum to 1),
:func:`combine` forms ``S = Σ_k c_k R_k``: the similarity map is ``max(S, 0)``
and the dissimilarity map ``max(−S, 0)``; ``S`` sums to the margin over the
pixels. The combiner does not care where ``R_k`` comes from (gradients in
:mod:`fxplain.methods.gradient`, the decoder in
:mod:`fxplain.reconstruction.method`; see :mod:`fxplain.methods.region_maps`).

A contrast (1:N identification, ``c = s(p, g1) − s(p, g2)``) splits the same
way, without a threshold (:func:`contrast_contributions`):
``c_k = −(p_k − g1_k)² + (p_k − g2_k)²`` (squared-Euclidean) or
``c_k = p̂_k (ĝ1_k − ĝ2_k)`` (cosine); ``c_k > 0`` favours g1, ``c_k < 0`` g2.
"""

from __future__ import annotations

import numpy as np

from .._util.errors import InvalidInputError
from ..models.scoring import require_threshold


def margin_contributions(model, emb_a, emb_b) -> np.ndarray:
    """Per-dimension contributions ``c_k`` (float64, ``(D,)``) with ``Σ c_k = score − threshold``."""
    a = model.check_embeddings(emb_a, "emb_a").astype(np.float64)
    b = model.check_embeddings(emb_b, "emb_b").astype(np.float64)
    if a.ndim != 1 or b.ndim != 1:
        raise InvalidInputError("margin_contributions takes one pair of (D,) embeddings")
    d = a.shape[0]
    threshold = require_threshold(model)  # a model without one refuses: the margin needs it
    if model.metric == "squared_euclidean":
        return -threshold / d - (a - b) ** 2
    a_hat = a / max(np.linalg.norm(a), 1e-12)
    b_hat = b / max(np.linalg.norm(b), 1e-12)
    return a_hat * b_hat - threshold / d


def contrast_contributions(model, probe_embedding, contrast) -> np.ndarray:
    """Per-dimension contributions ``c_k`` (float64 ``(D,)``) of a contrast, ``Σ c_k = s(p, g1) − s(p, g2)``.

    ``contrast`` is a :class:`~fxplain.models.scoring.Contrast` ``(g1, g2)``;
    see the module docstring for the formulas.
    """
    p = model.check_embeddings(probe_embedding, "probe_embedding").astype(np.float64)
    if p.ndim != 1 or contrast.first.shape != p.shape:
        raise InvalidInputError(f"contrast_contributions takes a (D,) probe embedding and a contrast of the "
                                f"same length; got {p.shape} and {contrast.first.shape}")
    g1, g2 = contrast.first, contrast.second
    if model.metric == "squared_euclidean":
        return (p - g2) ** 2 - (p - g1) ** 2
    p_hat, g1_hat, g2_hat = (v / max(np.linalg.norm(v), 1e-12) for v in (p, g1, g2))
    return p_hat * (g1_hat - g2_hat)


def combine(contributions: np.ndarray, region_maps: np.ndarray) -> np.ndarray:
    """``S = Σ_k c_k R_k``: (D,) contributions and (D, H, W) region maps to a signed (H, W) map."""
    c = np.asarray(contributions, np.float64)
    r = np.asarray(region_maps, np.float64)
    if c.ndim != 1 or r.ndim != 3 or r.shape[0] != c.shape[0]:
        raise InvalidInputError(f"need contributions (D,) and region maps (D, H, W); got {c.shape} and {r.shape}")
    if np.any(r < 0):
        raise InvalidInputError("region maps must be non-negative")
    return np.tensordot(c, r, axes=1)
