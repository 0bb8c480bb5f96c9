"""``load_model``: a model name or file, through the format registry, onto the C core."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .._util.errors import InvalidInputError, ModelFormatError
from .._util.files import read_untrusted_file
from .face_model import FaceModel
from .formats import FORMATS, format_for
from .formats.dlib import (
    DLIB_DISTANCE_THRESHOLD,
    DLIB_FORMAT,
    DLIB_MODEL_SHA256,
    dlib_model_path,
    score_threshold,
)


def load_model(model: str | os.PathLike = "dlib", *, precision: str = "fp32") -> FaceModel:
    """Load a face-recognition model onto the C core.

    Parameters
    ----------
    model : str or path
        ``"dlib"`` for dlib's ResNet face descriptor (LFW accuracy 99.38 %,
        public domain), or the path of a model file in a registered format
        (:data:`fxplain.models.formats.FORMATS`): a dlib ``.dat`` network, or
        fxplain's own network file holding a face model.
    precision : {"fp32", "bf16"}
        Arithmetic of the convolutions; see :meth:`FaceModel.set_precision`.

    Returns
    -------
    FaceModel

    Raises
    ------
    ModelNotFoundError
        If the file does not exist or the default model is not installed.
    ModelFormatError
        If the file is truncated, corrupted, or not a supported network.
    """
    if isinstance(model, str) and model == "dlib":
        path = dlib_model_path()
        data = read_untrusted_file(path, "model file")
        digest = hashlib.sha256(data).hexdigest()
        if digest != DLIB_MODEL_SHA256:
            raise ModelFormatError(f"{path}: SHA-256 {digest} is not that of dlib's published model "
                                   f"({DLIB_MODEL_SHA256}); the file is corrupted or a different model")
        fmt, name = DLIB_FORMAT, "dlib"
    elif isinstance(model, (str, os.PathLike)):
        path = Path(model)
        data = read_untrusted_file(path, "model file")
        name = path.name
        fmt = format_for(path, data[:64])
        if fmt is None:
            hint = "; ONNX models are not supported yet" if path.suffix.lower() == ".onnx" else ""
            raise ModelFormatError(f"{path}: not a model file fxplain reads (formats: {', '.join(FORMATS)}){hint}")
    else:
        raise InvalidInputError(f"model must be 'dlib' or a path, got {type(model).__name__}")

    loaded = fmt.read(data, str(path))
    facts, threshold = dict(loaded.facts), loaded.threshold
    if name == "dlib":  # the published operating point, whatever the file stores
        facts["distance_threshold"] = DLIB_DISTANCE_THRESHOLD
        threshold = score_threshold(DLIB_DISTANCE_THRESHOLD)
    facts["format"] = fmt.name
    return FaceModel(loaded.spec, name=name, metric=loaded.metric, threshold=threshold,
                     source=str(path), facts=facts, precision=precision)
