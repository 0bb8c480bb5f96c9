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
from .formats import FORMATS, LOAD_OPTIONS, format_for, named_format
from .formats.base import ModelFormat


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
        an ONNX model (``.onnx``, opsets 11-18; needs ``pip install
        fxplain[onnx]``), a face-model file (``.fxn``, written by
        :meth:`FaceModel.save`: network, preprocessing, metric, threshold and
        calibration record), or fxplain's own network file holding a face model.
    precision : {"fp32", "bf16"}
        Arithmetic of the convolutions; see :meth:`FaceModel.set_precision`.
    threshold : float, optional
        The decision threshold on the score scale, instead of the file's (an
        ONNX file has none: without it ``model.threshold`` is None and
        decisions raise until one is set, see :func:`fxplain.calibrate_threshold`;
        a :class:`~fxplain.FxplainWarning` says so, pointing at the caller's line).
    mean, std, channels, input_size, metric
        For formats whose files do not say them (ONNX; each format lists the
        options it takes in ``ModelFormat.options``, and any other raises
        :class:`~fxplain.InvalidInputError` naming it and the format):
        ``x = (pixel - mean) / std`` per channel in the model's channel order
        (default 127.5, 127.5, the ArcFace convention), ``channels`` ``"RGB"``
        (default) or ``"BGR"``, ``input_size`` ``(H, W)`` when the graph's is
        dynamic, ``metric`` ``"cosine"`` (default) or ``"squared_euclidean"``.

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
    given = {k: v for k, v in (("mean", mean), ("std", std), ("channels", channels),
                               ("input_size", input_size), ("metric", metric)) if v is not None}
    fmt = named_format(model) if isinstance(model, str) else None
    if fmt is not None:
        _check_options(fmt, given)
        path, loaded = fmt.load_named(model, given)
        name = model
    elif isinstance(model, (str, os.PathLike)):
        path = Path(model)
        data = read_untrusted_file(path, "model file")
        name = path.name
        fmt = format_for(path, data[:64])
        if fmt is None:
            raise ModelFormatError(f"{path}: not a model file fxplain reads (formats: {', '.join(FORMATS)})")
        _check_options(fmt, given)
        loaded = fmt.read(data, str(path), given)
        loaded.facts.setdefault("sha256", hashlib.sha256(data).hexdigest())  # of the file: .fxn files keep it
    else:
        raise InvalidInputError(f"model must be a model name ({', '.join(_names())}) or a path, "
                                f"got {type(model).__name__}")
    facts = dict(loaded.facts)
    facts["format"] = fmt.name
    model_obj = FaceModel(loaded.spec, name=name, metric=loaded.metric, threshold=loaded.threshold,
                          source=str(path), facts=facts, precision=precision)
    if threshold is not None:
        model_obj.threshold = threshold
        model_obj.facts["threshold_source"] = "given"
    elif model_obj.threshold is None:
        # stacklevel 2: the warning shows the line that called load_model (the user's), not fxplain's
        warnings.warn(f"{path}: the {fmt.label} file carries no decision threshold; scores and maps work, "
                      "decisions raise until one is set: model.threshold = fxplain.calibrate_threshold(model, "
                      "dataset), or load_model(..., threshold=t), or save a calibrated model: "
                      "fxplain calibrate MODEL DATA -o model.fxn", FxplainWarning, stacklevel=2)
    return model_obj


def _names() -> list[str]:
    return [n for fmt in FORMATS.values() for n in fmt.names]


def _check_options(fmt: ModelFormat, given: dict[str, Any]) -> None:
    """Refuse load options ``fmt`` does not take, naming them and the format."""
    refused = sorted(set(given) - set(fmt.options))
    if refused:
        takers = [f.label for f in FORMATS.values() if set(refused) & set(f.options)]
        where = f"options of {' and '.join(takers)} models" if takers else "options no model format takes"
        raise InvalidInputError(f"{', '.join(refused)}: {where}; a {fmt.label} file says its own preprocessing "
                                f"and metric ({fmt.label} models take "
                                f"{', '.join(fmt.options) if fmt.options else 'none of ' + ', '.join(LOAD_OPTIONS)})")
