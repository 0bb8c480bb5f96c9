"""What the layers above expect of a model, stated once as :class:`typing.Protocol` s.

:class:`EmbeddingModel` is what black-box methods (occlusion, CorrRISE) and
the evaluation need: both :class:`~fxplain.FaceModel` and
:class:`~fxplain.CallableModel` satisfy it. :class:`DifferentiableModel` adds
the backward passes the white-box methods (gradient) need; only models
running on fxplain's core satisfy it. Methods check with ``isinstance``
(the protocols are runtime-checkable), so an error names the protocol.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from .._util.errors import InvalidInputError
from .scoring import require_threshold


@runtime_checkable
class EmbeddingModel(Protocol):
    """A face-recognition model seen from outside: images in, embeddings and scores out."""

    name: str
    input_size: tuple[int, int]
    embedding_size: int
    metric: str
    threshold: float | None  # None: no decision threshold; decisions raise (models.scoring.require_threshold)
    model_hash: str

    def embed(self, images: Any, *, batch_size: int = 32) -> np.ndarray:
        """Embeddings ``(N, D)`` of user images (arrays, PIL images, paths)."""

    def embed_pixels(self, pixels: np.ndarray, *, batch_size: int = 32) -> np.ndarray:
        """Embeddings ``(N, D)`` of a validated float32 ``(N, H, W, 3)`` pixel batch."""

    def score(self, emb_a: np.ndarray, emb_b: np.ndarray) -> Any:
        """Similarity of embeddings, on the scale of ``threshold``."""

    def check_embeddings(self, emb: Any, name: str) -> np.ndarray:
        """``emb`` validated as ``(D,)`` or ``(N, D)`` finite floats."""


@runtime_checkable
class DifferentiableModel(EmbeddingModel, Protocol):
    """An embedding model whose backward passes fxplain can run (a model on the C core)."""

    def dimension_maps(self, image: Any, *, batch_size: int = 32) -> np.ndarray:
        """``(D, H, W)`` maps ``|∂f_k/∂x|`` summed over colour, each normalised to sum 1."""

    def score_gradient_pixels(self, pixels: np.ndarray, reference: np.ndarray, *,
                              batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
        """Scores against ``reference`` and their pixel gradients, for validated pixels."""


def _members(protocol: type) -> list[str]:
    """The attribute and method names a protocol declares (its own and its bases')."""
    names: set[str] = set()
    for cls in protocol.__mro__:
        if cls in (object, Protocol) or not getattr(cls, "_is_protocol", False):
            continue
        names.update(getattr(cls, "__annotations__", {}))
        names.update(name for name, value in vars(cls).items() if callable(value) and not name.startswith("_"))
    return sorted(names)


def require_embedding_model(model: Any, *, decisions: bool = True) -> EmbeddingModel:
    """``model`` if it is an :class:`EmbeddingModel`; else an error naming what it lacks.

    With ``decisions`` (the default, what the Explainer asks: every
    explanation states the model's decision), the model must also have a
    decision threshold: one without (``threshold`` None) raises the
    "no decision threshold ... calibrate" error of
    :func:`fxplain.models.scoring.require_threshold` before any work.
    """
    if not isinstance(model, EmbeddingModel):
        missing = [name for name in _members(EmbeddingModel) if not hasattr(model, name)]
        raise InvalidInputError(f"model must be a FaceModel or come from fxplain.wrap(); it lacks "
                                f"{', '.join(map(repr, missing))}")
    if decisions:
        require_threshold(model)
    return model


def require_differentiable(model: Any, method: str) -> DifferentiableModel:
    """``model`` if it is a :class:`DifferentiableModel`; else an error naming ``method``."""
    if not isinstance(model, DifferentiableModel):
        raise InvalidInputError(f"method {method!r} needs a model running on fxplain's core "
                                "(fxplain.load_model); wrapped callables support occlusion and corrrise")
    return model
