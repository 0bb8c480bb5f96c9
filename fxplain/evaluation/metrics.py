"""Faithfulness metrics of explanation maps.

Region scores (does a map point into a known region: the planted
differences of :mod:`fxplain.evaluation.planted`), map agreement (Spearman),
and deletion/insertion for verification (CorrRISE protocol): remove or
insert the most salient pixels of one image in steps and track the score
against the intact partner.
"""

from __future__ import annotations

import numpy as np

from .. import _core
from .._util.errors import InvalidInputError
from .._util.stats import average_ranks
from .._util.validation import check_positive_int
from ..faces.inputs import to_pixel_batch
from ..methods.fills import Fill
from ..methods.targets import ScoreTarget
from .planted import region_mask


def pointing_hit(saliency: np.ndarray, box: tuple[int, int, int, int], tolerance: int = 0) -> bool:
    """Does the map's maximum fall inside the box (grown by ``tolerance`` pixels)?"""
    y, x = np.unravel_index(np.argmax(saliency), saliency.shape)
    top, left, bottom, right = box
    return top - tolerance <= y < bottom + tolerance and left - tolerance <= x < right + tolerance


def energy_in_region(saliency: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """Fraction of the map's (non-negative) mass inside the box; 0 for an all-zero map."""
    total = float(np.sum(saliency))
    if total <= 0:
        return 0.0
    return float(np.sum(saliency[region_mask(saliency.shape, box)]) / total)


def region_auc(saliency: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """ROC-AUC of the map as a detector of the box's pixels (0.5 = chance, ties count half)."""
    inside = region_mask(saliency.shape, box).ravel()
    values = np.asarray(saliency, np.float64).ravel()
    ranks = average_ranks(values)
    n_in, n_out = inside.sum(), (~inside).sum()
    if n_in == 0 or n_out == 0:
        raise InvalidInputError("the box must cover some but not all pixels")
    return float((ranks[inside].sum() - n_in * (n_in + 1) / 2) / (n_in * n_out))


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two maps (flattened); 0 if either is constant."""
    ra = average_ranks(np.asarray(a, np.float64).ravel())
    rb = average_ranks(np.asarray(b, np.float64).ravel())
    ra -= ra.mean()
    rb -= rb.mean()
    denom = np.sqrt((ra ** 2).sum() * (rb ** 2).sum())
    return float((ra * rb).sum() / denom) if denom > 0 else 0.0


# ---- deletion / insertion for verification ---------------------------------


def removal_masks(saliency: np.ndarray, steps: int, mode: str) -> np.ndarray:
    """Keep-masks (steps+1, H, W): pixels leave (deletion) or arrive (insertion) most salient first.

    Step t removes (deletion) or restores (insertion) the ``t/steps`` fraction of
    pixels with the highest saliency; ties are broken by position, so the
    masks are deterministic.
    """
    if mode not in ("deletion", "insertion"):
        raise InvalidInputError(f"mode must be 'deletion' or 'insertion', got {mode!r}")
    check_positive_int("steps", steps)
    flat = np.asarray(saliency, np.float64).ravel()
    order = np.argsort(-flat, kind="stable")
    rank = np.empty(flat.size, np.int64)
    rank[order] = np.arange(flat.size)
    counts = np.round(np.linspace(0, flat.size, steps + 1)).astype(np.int64)
    chosen = rank[None, :] < counts[:, None]  # (steps+1, pixels): the most salient `count`
    keep = ~chosen if mode == "deletion" else chosen
    return keep.reshape((steps + 1,) + np.shape(saliency)).astype(np.float32)


def perturbation_curve(model, image: np.ndarray, partner_embedding: np.ndarray, saliency: np.ndarray, *,
                       steps: int = 20, mode: str = "deletion", fill="mean", batch_size: int = 64) -> np.ndarray:
    """Scores ``s(image_t, partner)`` as salient pixels are deleted or inserted, ``(steps+1,)``.

    Deleted pixels (and, for insertion, not yet inserted ones) take the
    ``fill`` (``"mean"``, ``"blur"``, ``"zero"``, ``"gray"``, or a colour; as the
    methods' ``fill``, see :class:`~fxplain.methods.fills.Fill`).
    The masking and scoring run in the C core.
    """
    fill = Fill(fill)
    pixels = to_pixel_batch(image, model.input_size)[0]
    if np.shape(saliency) != pixels.shape[:2]:
        raise InvalidInputError(f"saliency must have shape {pixels.shape[:2]}, got {np.shape(saliency)}")
    masks = removal_masks(saliency, steps, mode)
    batch = _core.apply_masks(pixels, fill(pixels), masks)
    return ScoreTarget(model, partner_embedding).scores(batch, batch_size)


def normalized_auc(curve: np.ndarray) -> float:
    """Trapezoidal area under a curve sampled evenly on [0, 1]."""
    y = np.asarray(curve, np.float64)
    return float(np.sum((y[1:] + y[:-1]) / 2) / (len(y) - 1))
