"""fxplain: explain face-recognition decisions.

Load a face-recognition model (dlib's ResNet by default) running on a oneDNN
C core, embed faces, score pairs, and explain where in each face the
evidence for and against a match lies.

>>> import fxplain
>>> model = fxplain.load_model("dlib")
>>> r = fxplain.Explainer(model, method="corrrise", seed=0).explain("a.jpg", "b.jpg")
>>> r.similarity, r.dissimilarity        # (2, H, W) maps for image A and B
>>> r.plot()

The package is layered; each layer imports only those below it (a test
checks): ``_util`` → ``runtime`` → ``faces`` → ``models`` → ``methods`` →
``explainer`` / ``results`` / ``plotting`` → ``reconstruction`` /
``evaluation`` → ``cli``. ``datasets`` sits beside ``_util``.
"""

from __future__ import annotations

from ._util import onednn as _onednn

_onednn.preload()

from . import _core, faces
from ._util.errors import (
    CoreError,
    DataUnavailableError,
    FxplainError,
    FxplainWarning,
    InvalidInputError,
    LicenceWarning,
    ModelFormatError,
    ModelNotFoundError,
    StoreError,
    UnverifiedWeightsWarning,
)
from ._util.version import __version__
from .evaluation import EvaluationReport, ThresholdCalibration, calibrate_threshold, evaluate
from .explainer import Explainer
from .faces import Face, detect_faces
from .identification import Gallery, IdentificationExplanation, explain_identification
from .models import CallableModel, FaceModel, from_torch, load_model, save_face_model, wrap
from .protocols import Pair, ResultSet, explain_pairs, make_pairs, open_results, read_pairs
from .reconstruction import Decoder, default_decoder, load_decoder, train_decoder
from .results import PairExplanation
from .runtime import NetworkSpec

__all__ = [
    "CallableModel",
    "CoreError",
    "DataUnavailableError",
    "Decoder",
    "EvaluationReport",
    "Explainer",
    "Face",
    "FaceModel",
    "FxplainError",
    "FxplainWarning",
    "Gallery",
    "IdentificationExplanation",
    "InvalidInputError",
    "LicenceWarning",
    "ModelFormatError",
    "ModelNotFoundError",
    "NetworkSpec",
    "Pair",
    "PairExplanation",
    "ResultSet",
    "StoreError",
    "ThresholdCalibration",
    "UnverifiedWeightsWarning",
    "__version__",
    "backend_info",
    "calibrate_threshold",
    "default_decoder",
    "detect_faces",
    "evaluate",
    "explain_identification",
    "explain_pairs",
    "faces",
    "from_torch",
    "load_decoder",
    "load_model",
    "make_pairs",
    "open_results",
    "read_pairs",
    "save_face_model",
    "train_decoder",
    "wrap",
]


def backend_info() -> dict:
    """Facts about the oneDNN library in use: version, build hash, CPU runtime, ISA."""
    return _core.backend_info()
