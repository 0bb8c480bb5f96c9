"""PyTorch modules on the C core: :func:`from_torch` exports to ONNX in memory and loads the result.

torch is needed only for this call (it is imported here, lazily). The
module is exported with torch.onnx's TorchScript exporter in eval mode and
without gradients (its training flag is restored afterwards), then read like
any ONNX file (:mod:`.formats.onnx_format`), so every white-box method
runs on it at the core's speed.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

from .._util.errors import FxplainWarning, InvalidInputError, ModelFormatError
from .face_model import FaceModel
from .formats.onnx_format import OPSETS, OnnxOptions, read_onnx


def from_torch(module: Any, *, input_size: tuple[int, int] = (112, 112), mean: Any = 127.5, std: Any = 127.5,
               channels: str = "RGB", metric: str = "cosine", threshold: float | None = None,
               name: str | None = None, opset: int = 17) -> FaceModel:
    """A PyTorch face-recognition module as a :class:`~fxplain.FaceModel` on the C core.

    Parameters
    ----------
    module : torch.nn.Module
        Maps ``(N, 3, H, W)`` float images, ``(pixel - mean) / std``, to
        ``(N, D)`` embeddings.
    input_size : (int, int)
        ``(H, W)`` of its input chips (ArcFace models: 112x112).
    mean, std, channels, metric, threshold
        As for :func:`fxplain.load_model` of an ONNX file.
    name : str, optional
        Shown in results; defaults to the module's class name.
    opset : int
        ONNX opset of the export (11 to 18).

    Returns
    -------
    FaceModel
        Gives the module's embeddings (within float32 rounding) with every
        method, gradients included, on the core.

    Raises
    ------
    InvalidInputError
        If ``module`` is not a torch module or an option is bad.
    ModelFormatError
        If the export fails or the graph holds an operator fxplain does not map.
    """
    try:
        import torch
    except ImportError:
        raise InvalidInputError("from_torch needs PyTorch installed") from None
    if not isinstance(module, torch.nn.Module):
        raise InvalidInputError(f"from_torch takes a torch.nn.Module, got {type(module).__name__}; for any other "
                                "embedding function use fxplain.wrap (black-box methods only)")
    if not (isinstance(opset, int) and OPSETS[0] <= opset <= OPSETS[1]):
        raise InvalidInputError(f"opset must be an integer from {OPSETS[0]} to {OPSETS[1]}, got {opset!r}")
    options = OnnxOptions(mean, std, channels, input_size, metric, threshold).checked()
    label = name or type(module).__name__
    buffer = io.BytesIO()
    was_training = module.training
    try:
        module.eval()
        example = torch.zeros(1, 3, *options.input_size)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch calls its TorchScript exporter "legacy"; it is the stable one
            torch.onnx.export(module, example, buffer, opset_version=opset, input_names=["image"],
                              output_names=["embedding"], dynamo=False,
                              dynamic_axes={"image": {0: "batch"}, "embedding": {0: "batch"}})
    except Exception as exc:  # noqa: BLE001 - torch's exporter raises many kinds of error
        raise ModelFormatError(f"{label}: torch.onnx.export failed: {type(exc).__name__}: {exc}") from None
    finally:
        module.train(was_training)
    loaded = read_onnx(buffer.getvalue(), f"{label} (exported from PyTorch)", options)
    facts = dict(loaded.facts, format="torch")
    model = FaceModel(loaded.spec, name=label, metric=loaded.metric, threshold=options.threshold,
                      source=f"torch module {label}", facts=facts)
    if options.threshold is None:
        warnings.warn(f"{label}: no decision threshold given; scores and maps work, decisions raise until one is "
                      "set: model.threshold = fxplain.calibrate_threshold(model, dataset)", FxplainWarning,
                      stacklevel=2)
    return model


__all__ = ["from_torch"]
