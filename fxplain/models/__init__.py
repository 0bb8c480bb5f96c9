"""Face-recognition models: loading them (a registry of file formats), running them, scoring pairs.

>>> model = fxplain.load_model("dlib")
>>> emb = model.embed(["a.jpg", "b.jpg"])      # (2, 128) float32
>>> model.score(emb[0], emb[1]) >= model.threshold

:class:`FaceModel` runs a network on the C core (white-box: gradients too);
:class:`CallableModel` (from :func:`wrap`) makes any Python function
explainable by the black-box methods. :mod:`fxplain.models.protocols` says
what each kind of method needs of a model.
"""

from .callable import CallableModel, wrap
from .face_model import FaceModel, Verification
from .formats.dlib import dlib_model_path
from .formats.face_model_file import save_face_model
from .loading import load_model
from .protocols import DifferentiableModel, EmbeddingModel
from .scoring import distance_from_score, require_threshold, score_and_embedding_gradient, score_kind
from .torch_import import from_torch

__all__ = ["CallableModel", "DifferentiableModel", "EmbeddingModel", "FaceModel", "Verification",
           "distance_from_score", "dlib_model_path", "from_torch", "load_model", "require_threshold",
           "save_face_model", "score_and_embedding_gradient", "score_kind", "wrap"]
