"""``load_model``: a model name or file, through the format registry, onto the C core."""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Any

from .._util.errors import FxplainWarning, InvalidInputError, ModelFormatError
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
from .formats.onnx_format import OnnxOptions, read_onnx


def load_model(model: str | os.PathLike = "dlib", *, precision: str = "fp32", threshold: float | None = None,
               mean: Any = None, std: Any = None, channels: str | None = None,
               input_size: tuple[int, int] | None = None, metric: str | None = None) -> FaceModel:
    """Load a face-recognition model onto the C core.

    Parameters
    ----------
    model : str or path
        ``"dlib"`` for dlib's ResNet face descriptor (LFW accuracy 99.38 %,
        public domain), or the path of a model file in a registered format
        (:data:`fxplain.models.formats.FORMATS`): a dlib ``.dat`` network,
        fxplain's own network file holding a face model, or an ONNX model
        (``.onnx``, opsets 11-18; needs ``pip install fxplain[onnx]``).
    precision : {"fp32", "bf16"}
        Arithmetic of the convolutions; see :meth:`FaceModel.set_precision`.
    threshold : float, optional
        The decision threshold on the score scale, instead of the file's (an
        ONNX file has none: without it, decisions raise until one is set,
        see :func:`fxplain.calibrate_threshold`).
    mean, std, channels, input_size, metric
        ONNX models only (the file does not say): ``x = (pixel - mean) / std``
        per channel in the model's channel order (default 127.5, 127.5, the
        ArcFace convention), ``channels`` ``"RGB"`` (default) or ``"BGR"``,
        ``input_size`` ``(H, W)`` when the graph's is dynamic, ``metric``
        ``"cosine"`` (default) or ``"squared_euclidean"``.

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
            raise ModelFormatError(f"{path}: not a model file fxplain reads (formats: {', '.join(FORMATS)})")
    else:
        raise InvalidInputError(f"model must be 'dlib' or a path, got {type(model).__name__}")

    onnx_given = {k: v for k, v in (("mean", mean), ("std", std), ("channels", channels),
                                    ("input_size", input_size), ("metric", metric)) if v is not None}
    if fmt.name == "onnx":
        loaded = read_onnx(data, str(path), OnnxOptions(**onnx_given))
    elif onnx_given:
        raise InvalidInputError(f"{', '.join(sorted(onnx_given))}: options of ONNX models; a {fmt.name} file "
                                "says its own preprocessing and metric")
    else:
        loaded = fmt.read(data, str(path))
    facts, file_threshold = dict(loaded.facts), loaded.threshold
    if name == "dlib":  # the published operating point, whatever the file stores
        facts["distance_threshold"] = DLIB_DISTANCE_THRESHOLD
        file_threshold = score_threshold(DLIB_DISTANCE_THRESHOLD)
    facts["format"] = fmt.name
    model_obj = FaceModel(loaded.spec, name=name, metric=loaded.metric, threshold=file_threshold,
                          source=str(path), facts=facts, precision=precision)
    if threshold is not None:
        model_obj.threshold = threshold
        model_obj.facts["threshold_source"] = "given"
    elif fmt.name == "onnx":
        warnings.warn(f"{path}: an ONNX file carries no decision threshold; scores and maps work, decisions "
                      "raise until one is set: model.threshold = fxplain.calibrate_threshold(model, dataset)",
                      FxplainWarning, stacklevel=2)
    return model_obj
