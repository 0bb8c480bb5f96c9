"""Per-pair faithfulness scores: deletion and insertion curves of one explained pair.

:class:`DeletionInsertion` is the scorer :func:`fxplain.evaluate` hands to
:func:`fxplain.explain_pairs` (``scorer=``): each pair's curves and their
areas are computed where the pair is explained (in-process or on a Dask
worker) and kept in its row of the result store, so an evaluation resumes
and distributes like any protocol run.

For a genuine pair the similarity evidence orders the pixels, for an
impostor pair the dissimilarity evidence; each side's pixels are deleted (or
inserted into the fill) in that order and the side is re-scored against the
intact partner. A curve is the normalised margin ``m_t / m_0`` with
``m = s − τ``: 1 for the intact pair, 0 at the decision boundary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..methods.fills import Fill
from ..models.scoring import require_threshold
from . import metrics

#: Whether a lower or a higher value of each per-pair score is better.
BETTER = {"deletion_auc": "lower", "insertion_auc": "higher"}


@dataclass(frozen=True)
class DeletionInsertion:
    """Deletion and insertion curves of a pair's evidence maps (``steps`` steps, pixels filled with ``fill``)."""

    steps: int = 20
    fill: Any = "mean"

    name = "deletion_insertion"

    def describe(self) -> dict[str, Any]:
        """What the scores depend on (kept in the run's identity: a rerun with other settings is refused)."""
        Fill(self.fill)  # refuse a bad fill before any work
        fill = self.fill if isinstance(self.fill, str) else [float(v) for v in np.ravel(self.fill)]
        return {"name": self.name, "steps": int(self.steps), "fill": fill}

    def __call__(self, model, result, same: bool | None) -> dict[str, Any]:
        """Scores of one explained pair (``result``: its PairExplanation; ``same``: its label)."""
        if same is None:
            return {}
        genuine = bool(same)
        maps = result.similarity - result.dissimilarity if genuine else result.dissimilarity - result.similarity
        return pair_curves(model, result.images, maps, genuine, self.steps, self.fill)


def pair_curves(model, images: np.ndarray, maps: np.ndarray, genuine: bool, steps: int, fill: Any) -> dict[str, Any]:
    """Curves of both sides of a pair: ``images`` (2, H, W, 3) pixels, ``maps`` (2, H, W) ranking each side.

    Returns ``{"kind", "deletion": [curve_a, curve_b], "insertion": [...],
    "deletion_accuracy": [...], "insertion_accuracy": [...], "deletion_auc",
    "insertion_auc"}`` (areas averaged over the two sides).
    """
    emb = model.embed_pixels(np.ascontiguousarray(images, np.float32), batch_size=2)
    base_margin = float(model.score(emb[0], emb[1])) - require_threshold(model)
    scale = base_margin if abs(base_margin) > 1e-12 else 1e-12
    out: dict[str, Any] = {"kind": "similarity" if genuine else "dissimilarity"}
    for mode in ("deletion", "insertion"):
        curves, accuracy = [], []
        for side, partner in ((0, 1), (1, 0)):
            scores = metrics.perturbation_curve(model, images[side], emb[partner], maps[side], steps=steps,
                                                mode=mode, fill=fill)
            curve = (scores - require_threshold(model)) / scale
            curves.append([float(v) for v in curve])
            accuracy.append([bool(v) for v in (curve * base_margin >= 0) == genuine])
        out[mode] = curves
        out[f"{mode}_accuracy"] = accuracy
        out[f"{mode}_auc"] = float(np.mean([metrics.normalized_auc(np.asarray(c)) for c in curves]))
    return out
