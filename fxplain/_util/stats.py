"""Small statistics shared by the methods (Spearman CorrRISE) and the evaluation (AUC, rank correlation)."""

from __future__ import annotations

import numpy as np


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given the mean rank of their run (as Spearman's correlation needs)."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    boundaries = np.flatnonzero(np.diff(sorted_values)) + 1
    starts = np.concatenate([[0], boundaries])
    stops = np.concatenate([boundaries, [len(values)]])
    ranks = np.empty(len(values))
    for start, stop in zip(starts, stops):
        ranks[order[start:stop]] = (start + stop + 1) / 2
    return ranks


def pearson_from_sums(n: int, sum_m: np.ndarray, sum_mm: np.ndarray, sum_ms: np.ndarray,
                      scores: np.ndarray) -> np.ndarray:
    """Per-pixel Pearson correlation from streaming sums over n masks; 0 where a variance vanishes.

    ``sum_m``, ``sum_mm``, ``sum_ms`` are the sums of m, m² and m·s per pixel
    (``fxplain._core.correlation_accumulate``); ``scores`` the n scores s.
    """
    cov = n * sum_ms - sum_m * scores.sum()
    var_m = np.maximum(n * sum_mm - sum_m ** 2, 0.0)
    var_s = max(n * np.sum(scores ** 2) - scores.sum() ** 2, 0.0)
    denom = np.sqrt(var_m * var_s)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, cov / np.where(denom > 0, denom, 1.0), 0.0)
