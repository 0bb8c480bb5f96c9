"""Result objects: what an explanation of a pair holds, shows and saves."""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._util.errors import InvalidInputError, ModelFormatError

_FORMAT = "fxplain.PairExplanation"
_VERSION = 1


@dataclass
class PairExplanation:
    """Why a face-recognition model matched (or did not match) two faces.

    Attributes
    ----------
    similarity, dissimilarity : numpy.ndarray
        float32 ``(2, H, W)``, non-negative; index 0 is image A, 1 is image B.
        Evidence for the match (similarity) and against it (dissimilarity), at
        the input resolution, in the method's own units (score change for
        occlusion, correlation for CorrRISE). Not normalised unless the
        explainer was asked to (``normalize=``), so maps of different pairs
        explained by the same method are comparable.
    score, threshold : float
        The model's similarity score of the intact pair and its decision
        threshold (same scale; higher = more alike).
    match : bool
        ``score >= threshold``.
    method : str
        Name of the explanation method.
    params : dict
        The method's parameters, defaults included.
    seed : int
        Seed of the method's random numbers.
    model_hash, model_name : str
        Identity of the model (SHA-256 of its architecture and weights).
    images : numpy.ndarray
        float32 ``(2, H, W, 3)`` pixels (0-255) of the two images, for plots.
    seconds : float
        Wall time of the explanation.
    """

    similarity: np.ndarray
    dissimilarity: np.ndarray
    score: float
    threshold: float
    match: bool
    method: str
    params: dict[str, Any]
    seed: int
    model_hash: str
    model_name: str
    images: np.ndarray
    seconds: float = 0.0
    normalize: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def evidence(self) -> np.ndarray:
        """Signed map ``similarity - dissimilarity`` (positive supports the match)."""
        return self.similarity - self.dissimilarity

    @property
    def contributions(self) -> np.ndarray | None:
        """Per-dimension margin contributions ``c_k`` (methods that decompose the margin), else None."""
        values = self.extras.get("contributions")
        return None if values is None else np.asarray(values)

    @property
    def margin(self) -> float:
        """``score - threshold``: how far the pair is from the decision boundary."""
        return self.score - self.threshold

    def __repr__(self) -> str:
        verdict = "match" if self.match else "non-match"
        return (f"PairExplanation(method={self.method!r}, score={self.score:.4f}, threshold={self.threshold:.4f}"
                f" -> {verdict}, maps {self.similarity.shape[1]}x{self.similarity.shape[2]})")

    # ---- display --------------------------------------------------------

    @property
    def distance(self) -> float | None:
        """Euclidean distance of the embeddings for squared-Euclidean models (dlib), else None."""
        if self.extras.get("score_kind") != "neg_squared_euclidean":
            return None
        return float(np.sqrt(max(-self.score, 0.0)))

    @property
    def distance_threshold(self) -> float | None:
        """The distance rule users know (dlib: same person iff distance < 0.6), else None."""
        if self.extras.get("score_kind") != "neg_squared_euclidean":
            return None
        return float(np.sqrt(max(-self.threshold, 0.0)))

    def plot(self, ax=None, *, side: str = "A", kind: str = "dissimilarity", alpha: float = 0.6,
             figsize: tuple[float, float] = (9.0, 6.4)):
        """Draw the explanation; see :func:`fxplain.plotting.plot_pair`.

        Without ``ax``, a new figure: both faces with their similarity and
        dissimilarity overlays, one colour scale shared by all four maps so
        their strengths compare directly. With ``ax`` a 2x3 array of axes,
        the same grid drawn into them; with ``ax`` one
        :class:`matplotlib.axes.Axes`, one panel (``side`` "A" or "B",
        ``kind`` "similarity", "dissimilarity" or "image") for paper figures.
        Returns the :class:`matplotlib.figure.Figure` drawn on.
        """
        from .plotting import plot_pair

        return plot_pair(self, ax=ax, side=side, kind=kind, alpha=alpha, figsize=figsize)

    def _repr_png_(self) -> bytes:
        from matplotlib.figure import Figure  # noqa: F401 - fail early if matplotlib is missing

        fig = self.plot()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
        return buffer.getvalue()

    # ---- persistence ----------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """Write the explanation to a ``.npz`` file: arrays as float32, metadata as JSON. No pickle."""
        meta = {
            "format": _FORMAT, "version": _VERSION, "score": self.score, "threshold": self.threshold,
            "match": bool(self.match), "method": self.method, "params": _jsonable(self.params),
            "seed": self.seed, "model_hash": self.model_hash, "model_name": self.model_name,
            "seconds": self.seconds, "normalize": self.normalize, "extras": _jsonable(self.extras),
        }
        with open(path, "wb") as f:
            np.savez(f, similarity=self.similarity, dissimilarity=self.dissimilarity, images=self.images,
                     meta=np.array(json.dumps(meta)))

    @classmethod
    def load(cls, path: str | os.PathLike) -> PairExplanation:
        """Read an explanation written by :meth:`save`."""
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                arrays = {k: data[k] for k in ("similarity", "dissimilarity", "images")}
        except FileNotFoundError:
            raise InvalidInputError(f"explanation file not found: {path}") from None
        except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
            raise ModelFormatError(f"{path} is not a saved fxplain explanation: {exc}") from None
        if meta.get("format") != _FORMAT or meta.get("version") != _VERSION:
            raise ModelFormatError(f"{path} is not a version-{_VERSION} fxplain explanation")
        return cls(similarity=arrays["similarity"], dissimilarity=arrays["dissimilarity"], images=arrays["images"],
                   score=meta["score"], threshold=meta["threshold"], match=meta["match"], method=meta["method"],
                   params=meta["params"], seed=meta["seed"], model_hash=meta["model_hash"],
                   model_name=meta["model_name"], seconds=meta["seconds"], normalize=meta["normalize"],
                   extras=meta["extras"])


def _jsonable(value: Any) -> Any:
    """Tuples to lists, NumPy scalars to Python numbers, recursively."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
