"""fxplain: explain face-recognition decisions.

Load a face-recognition model (dlib's ResNet by default) running on a oneDNN
C core, embed faces, score pairs, and explain where in each face the
evidence for and against a match lies.

>>> import fxplain
>>> model = fxplain.load_model("dlib")
>>> r = fxplain.Explainer(model, method="corrrise", seed=0).explain("a.jpg", "b.jpg")
>>> r.similarity, r.dissimilarity        # (2, H, W) maps for image A and B
>>> r.plot()
"""

from __future__ import annotations

from . import _onednn

_onednn.preload()

from . import _core
from ._errors import (
    CoreError,
    DataUnavailableError,
    FxplainError,
    InvalidInputError,
    ModelFormatError,
    ModelNotFoundError,
)
from ._wrap import CallableModel, wrap
from .evaluation import EvaluationReport, evaluate
from .explainer import Explainer
from .models import FaceModel, load_model
from .reconstruction import Decoder, load_decoder
from .results import PairExplanation
from .training import default_decoder, train_decoder

__version__ = "0.1.0"

__all__ = [
    "CallableModel",
    "CoreError",
    "DataUnavailableError",
    "Decoder",
    "EvaluationReport",
    "Explainer",
    "FaceModel",
    "FxplainError",
    "InvalidInputError",
    "ModelFormatError",
    "ModelNotFoundError",
    "PairExplanation",
    "__version__",
    "backend_info",
    "default_decoder",
    "evaluate",
    "load_decoder",
    "load_model",
    "train_decoder",
    "wrap",
]


def backend_info() -> dict:
    """Facts about the oneDNN library in use: version, build hash, CPU runtime, ISA."""
    return _core.backend_info()
