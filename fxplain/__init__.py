"""fxplain: explain face-recognition decisions.

Load a face-recognition model (dlib's ResNet by default) running on a oneDNN
C core, embed faces, score pairs, and (in later modules) explain where in
each face the evidence for and against a match lies.

>>> import fxplain
>>> model = fxplain.load_model("dlib")
>>> emb = model.embed(images)            # (N, 128) float32
>>> model.score(emb[0], emb[1]) >= model.threshold
"""

from __future__ import annotations

from . import _onednn

_onednn.preload()

from . import _core  # noqa: E402
from ._errors import (  # noqa: E402
    CoreError,
    DataUnavailableError,
    FxplainError,
    InvalidInputError,
    ModelFormatError,
    ModelNotFoundError,
)
from .models import FaceModel, load_model  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "CoreError",
    "DataUnavailableError",
    "FaceModel",
    "FxplainError",
    "InvalidInputError",
    "ModelFormatError",
    "ModelNotFoundError",
    "backend_info",
    "load_model",
    "__version__",
]


def backend_info() -> dict:
    """Facts about the oneDNN library in use: version, build hash, CPU runtime, ISA."""
    return _core.backend_info()
