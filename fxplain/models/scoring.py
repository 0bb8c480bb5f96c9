"""How embeddings are compared: the score, its gradient, and the margin's per-dimension split.

Two metrics: ``"squared_euclidean"`` (score ``−‖a − b‖²``, dlib) and
``"cosine"`` (cosine similarity). Higher scores mean more alike; a pair
matches iff ``score >= threshold``. Each metric has its own distance
(:func:`distance_from_score`): the Euclidean distance ``‖a − b‖`` for
``squared_euclidean``, the cosine distance ``1 − cos`` for ``cosine``; a
model without a threshold (None) refuses decisions (:func:`require_threshold`).

A :class:`Contrast` reference stands for the score difference
``c(x) = s(x, first) − s(x, second)`` (1:N identification: why a probe is
closer to one gallery identity than to another); the score targets of the
perturbation methods and :func:`score_and_embedding_gradient` take it
wherever they take one reference embedding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._util.errors import InvalidInputError

METRICS = ("squared_euclidean", "cosine")


def check_metric(metric: Any) -> str:
    """``metric`` if it is one of :data:`METRICS`; else raise."""
    if metric not in METRICS:
        raise InvalidInputError(f"metric must be 'squared_euclidean' or 'cosine', got {metric!r}")
    return metric


def distance_from_score(metric: str, score: Any) -> Any:
    """The distance a metric reports for a score (a float, or an array for an array of scores).

    ``squared_euclidean``: the Euclidean distance ``sqrt(-score)`` (dlib's
    "same person iff distance < 0.6"); ``cosine``: the cosine distance
    ``1 - score`` (0 for the same direction, 2 for opposite ones). The
    distance falls as the score rises, so ``score >= threshold`` iff
    ``distance <= distance_from_score(metric, threshold)``.
    """
    check_metric(metric)
    s = np.asarray(score, np.float64)
    d = np.sqrt(np.maximum(-s, 0.0)) if metric == "squared_euclidean" else 1.0 - s
    return float(d) if np.ndim(d) == 0 else d


def require_threshold(model: Any) -> float:
    """``model.threshold`` as a float; a model without one (None) raises InvalidInputError saying how to get one.

    Every decision (``verify``, ``match``, margins) goes through here, so a
    model loaded without a threshold computes scores and maps but refuses
    decisions with the same message everywhere.
    """
    threshold = getattr(model, "threshold", None)
    if threshold is None:
        raise InvalidInputError(
            f"model {getattr(model, 'name', 'model')!r} has no decision threshold (an ONNX file carries none): "
            "calibrate one on faces of known identity, threshold = fxplain.calibrate_threshold(model, dataset, "
            "fmr=1e-3), then set model.threshold = threshold (or pass threshold= to load_model, or --threshold "
            "on the command line; `fxplain calibrate MODEL DATA -o model.fxn` keeps a calibrated model)")
    return float(threshold)


def check_embeddings(emb: Any, size: int, name: str) -> np.ndarray:
    """``emb`` as an array of ``(size,)`` or ``(N, size)`` finite floats; else raise."""
    arr = np.asarray(emb)
    if arr.ndim not in (1, 2) or arr.shape[-1] != size:
        raise InvalidInputError(f"{name} must have shape ({size},) or (N, {size}), got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating) or not np.all(np.isfinite(arr)):
        raise InvalidInputError(f"{name} must hold finite floating-point values")
    return arr


def score_embeddings(metric: str, a: np.ndarray, b: np.ndarray) -> np.ndarray | float:
    """Score of checked embeddings (float64 arithmetic): a float for vectors, ``(N,)`` for batches."""
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if metric == "squared_euclidean":
        s = -np.sum((a64 - b64) ** 2, axis=-1)
    else:
        na = np.linalg.norm(a64, axis=-1)
        nb = np.linalg.norm(b64, axis=-1)
        s = np.sum(a64 * b64, axis=-1) / np.maximum(na * nb, 1e-12)
    return float(s) if np.ndim(s) == 0 else s


@dataclass(frozen=True, eq=False)
class Contrast:
    """The reference of a contrast: ``c(x) = s(x, first) − s(x, second)``.

    ``first`` and ``second`` are two ``(D,)`` embeddings (two gallery
    identities); a perturbed image's target is how much closer it is to
    ``first`` than to ``second``. Both are kept as finite float64 vectors of
    one length; anything else raises InvalidInputError.
    """

    first: np.ndarray
    second: np.ndarray

    def __post_init__(self):
        first = np.array(self.first, np.float64)  # copies: later changes to the caller's arrays stay out
        second = np.array(self.second, np.float64)
        if first.ndim != 1 or first.shape != second.shape or first.size == 0:
            raise InvalidInputError(f"a contrast needs two (D,) embeddings of one length, got "
                                    f"{np.shape(self.first)} and {np.shape(self.second)}")
        if not (np.all(np.isfinite(first)) and np.all(np.isfinite(second))):
            raise InvalidInputError("a contrast's embeddings must hold finite values")
        first.flags.writeable = second.flags.writeable = False
        object.__setattr__(self, "first", first)
        object.__setattr__(self, "second", second)

    def score(self, metric: str, emb: np.ndarray) -> np.ndarray | float:
        """``c`` of checked embeddings ``(D,)`` or ``(N, D)``: score against first minus against second."""
        return score_embeddings(metric, emb, self.first) - score_embeddings(metric, emb, self.second)


def score_and_embedding_gradient(metric: str, emb: np.ndarray,
                                 reference: np.ndarray | Contrast) -> tuple[np.ndarray, np.ndarray]:
    """Scores ``s(emb_n, reference)`` (N,) and ``∂s/∂emb`` (N, D), float64, for a model metric.

    ``squared_euclidean``: s = −‖e − r‖², ∂s/∂e = −2 (e − r).
    ``cosine``: s = ê·r̂, ∂s/∂e = (r̂ − s ê) / ‖e‖.
    A :class:`Contrast` reference gives ``c = s1 − s2`` and ``∂c/∂e = ∂s1/∂e − ∂s2/∂e``.
    """
    if isinstance(reference, Contrast):
        s1, d1 = score_and_embedding_gradient(metric, emb, reference.first)
        s2, d2 = score_and_embedding_gradient(metric, emb, reference.second)
        return s1 - s2, d1 - d2
    if metric == "squared_euclidean":
        diff = emb - reference
        return -np.sum(diff ** 2, axis=1), -2.0 * diff
    norm = np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    unit = emb / norm
    ref_unit = reference / max(np.linalg.norm(reference), 1e-12)
    scores = unit @ ref_unit
    return scores, (ref_unit[None, :] - scores[:, None] * unit) / norm


def score_kind(model) -> str:
    """Name of the C scoring kernel (``_core.embedding_scores``) matching a model's metric."""
    return "neg_squared_euclidean" if model.metric == "squared_euclidean" else "cosine"
