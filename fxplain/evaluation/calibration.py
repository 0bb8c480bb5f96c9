"""A decision threshold users can trust: :func:`calibrate_threshold` at a chosen false-match rate.

An ONNX file (or a PyTorch module) carries no operating point. The
threshold of a face-verification system is set on faces of known identity:
every genuine pair (two faces of one person) and every impostor pair (two
people) is scored, and the threshold is the lowest score at which at most a
fraction ``fmr`` of impostor pairs would match. The calibration keeps both
score distributions, the false non-match rate at that threshold, and draws
them (``cal.plot()``).
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._util.errors import FxplainWarning, InvalidInputError
from ..faces.inputs import to_pixel_batch
from .evaluate import load_dataset


@dataclass(frozen=True)
class ThresholdCalibration:
    """The threshold at a false-match rate, and the scores it was set on.

    ``float(cal)`` is the threshold, so ``model.threshold = cal`` works.

    Attributes
    ----------
    threshold : float
        On the model's score scale: a pair matches iff ``score >= threshold``.
    fmr : float
        The false-match rate asked for.
    achieved_fmr : float
        Impostor pairs scoring at or above the threshold, as a fraction.
    fnmr : float
        Genuine pairs scoring below the threshold, as a fraction.
    genuine, impostor : numpy.ndarray
        float64 scores of every genuine and impostor pair.
    metric : str
        The model's score (``"cosine"`` or ``"squared_euclidean"``).
    """

    threshold: float
    fmr: float
    achieved_fmr: float
    fnmr: float
    genuine: np.ndarray
    impostor: np.ndarray
    metric: str

    def __float__(self) -> float:
        return self.threshold

    def __repr__(self) -> str:
        return (f"ThresholdCalibration(threshold={self.threshold:.4f} at FMR {self.fmr:g}: achieved FMR "
                f"{self.achieved_fmr:.4g} on {len(self.impostor)} impostor pairs, FNMR {self.fnmr:.4g} on "
                f"{len(self.genuine)} genuine pairs)")

    def plot(self, figsize: tuple[float, float] = (7.0, 4.0)):
        """Histograms of the genuine and impostor scores with the threshold; a matplotlib Figure."""
        from matplotlib.figure import Figure

        fig = Figure(figsize=figsize, layout="constrained")
        ax = fig.subplots()
        both = np.concatenate([self.genuine, self.impostor])
        bins = np.linspace(both.min(), both.max(), 60)
        ax.hist(self.impostor, bins=bins, density=True, alpha=0.6, color="tab:red",
                label=f"impostor pairs ({len(self.impostor)})")
        ax.hist(self.genuine, bins=bins, density=True, alpha=0.6, color="tab:green",
                label=f"genuine pairs ({len(self.genuine)})")
        ax.axvline(self.threshold, color="black", linestyle="--",
                   label=f"threshold {self.threshold:.3f} (FMR {self.achieved_fmr:.2g}, FNMR {self.fnmr:.2g})")
        ax.set_xlabel("cosine similarity" if self.metric == "cosine" else "score (-squared distance)")
        ax.set_ylabel("density")
        ax.legend(fontsize=8)
        return fig

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.plot().savefig(buffer, format="png", dpi=80)
        return buffer.getvalue()


def threshold_at_fmr(impostor: np.ndarray, fmr: float) -> float:
    """The lowest threshold at which at most ``fmr`` of the ``impostor`` scores are ``>=`` it."""
    ranked = np.sort(np.asarray(impostor, np.float64))[::-1]
    allowed = math.floor(fmr * len(ranked) + 1e-9)  # impostor pairs that may match
    if allowed >= len(ranked):
        return float(ranked[-1])
    # just above the (allowed + 1)-th highest: it and every lower (tied) score fall below
    return float(np.nextafter(ranked[allowed], np.inf))


def _pair_scores(model: Any, dataset: Any) -> tuple[np.ndarray, np.ndarray]:
    """(genuine, impostor) scores of a dataset or of a list of (image_a, image_b, same) pairs."""
    if isinstance(dataset, list) and dataset and all(isinstance(p, tuple) and len(p) == 3 for p in dataset):
        size = model.input_size
        a = model.embed_pixels(np.concatenate([to_pixel_batch(p[0], size) for p in dataset]))
        b = model.embed_pixels(np.concatenate([to_pixel_batch(p[1], size) for p in dataset]))
        if len(a) != len(dataset) or len(b) != len(dataset):
            raise InvalidInputError("each pair must hold one image per side")
        same = np.array([bool(p[2]) for p in dataset])
        scores = np.asarray(model.score(a, b), np.float64)
        return scores[same], scores[~same]
    images, identities = load_dataset(dataset, model.input_size)
    emb = model.embed_pixels(np.ascontiguousarray(images, np.float32)).astype(np.float64)
    ids = np.asarray(identities)
    upper = np.triu_indices(len(ids), k=1)
    if model.metric == "cosine":
        unit = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        scores = (unit @ unit.T)[upper]
    else:
        squared = (emb ** 2).sum(axis=1)
        scores = -np.maximum(squared[:, None] + squared[None] - 2 * emb @ emb.T, 0.0)[upper]
    same = ids[upper[0]] == ids[upper[1]]
    return scores[same], scores[~same]


def calibrate_threshold(model: Any, dataset: Any, *, fmr: float = 1e-3) -> ThresholdCalibration:
    """The decision threshold of ``model`` at false-match rate ``fmr``, set on faces of known identity.

    Parameters
    ----------
    model : FaceModel or CallableModel
        Any model with ``embed_pixels``, ``score``, ``metric`` and ``input_size``.
    dataset
        ``"johns"``, a folder with one sub-folder of face images per identity
        (aligned chips of the model's size, or photos, whose largest face is
        aligned), ``(images, identities)``, or a list of ``(image_a, image_b,
        same)`` pairs. Every genuine and impostor pair of a dataset is scored.
    fmr : float
        The false-match rate, in (0, 1): the share of impostor pairs allowed
        to match. Measuring it needs at least ``1 / fmr`` impostor pairs; with
        fewer, the threshold lies just above the highest impostor score and a
        :class:`~fxplain.FxplainWarning` says so.

    Returns
    -------
    ThresholdCalibration
        ``float(cal)`` is the threshold: ``model.threshold = cal``; ``cal.plot()``
        draws both score distributions.

    Raises
    ------
    InvalidInputError
        For a bad ``fmr``, or a dataset without genuine or impostor pairs.
    """
    try:
        fmr = float(fmr)
    except (TypeError, ValueError):
        raise InvalidInputError(f"fmr must be a number in (0, 1), got {fmr!r}") from None
    if not 0.0 < fmr < 1.0:
        raise InvalidInputError(f"fmr must be a number in (0, 1), got {fmr!r}")
    genuine, impostor = _pair_scores(model, dataset)
    if len(genuine) == 0 or len(impostor) == 0:
        raise InvalidInputError(f"calibration needs genuine and impostor pairs; the dataset gives {len(genuine)} "
                                f"genuine and {len(impostor)} impostor pairs")
    if fmr * len(impostor) < 1:
        warnings.warn(f"FMR {fmr:g} needs at least {math.ceil(1 / fmr)} impostor pairs to be measured; with "
                      f"{len(impostor)} the threshold lies just above the highest impostor score",
                      FxplainWarning, stacklevel=2)
    threshold = threshold_at_fmr(impostor, fmr)
    return ThresholdCalibration(
        threshold=threshold, fmr=fmr, achieved_fmr=float(np.mean(impostor >= threshold)),
        fnmr=float(np.mean(genuine < threshold)), genuine=genuine, impostor=impostor, metric=model.metric)


__all__ = ["ThresholdCalibration", "calibrate_threshold", "threshold_at_fmr"]
