"""ONNX face-recognition models (``.onnx``): the file checked, its graph translated onto the C core.

Parsed with the ``onnx`` package (``pip install fxplain[onnx]``), which is
imported only here. The file is untrusted: its size is bounded, the protobuf
is parsed and then checked with ``onnx.checker`` (types, topological order,
opset), the opset of the default domain must be 11 to 18, the graph must take
one image (one input of rank 4, NCHW with 3 channels, static or dynamic
batch) and give one embedding; the translation (:mod:`.onnx_graph`) refuses
every operator and attribute it does not map, naming the node. Any problem
raises :class:`~fxplain.ModelFormatError`; nothing in the file is executed.

An ONNX file carries neither the model's preprocessing nor its operating
point: :class:`OnnxOptions` gives them (``fxplain.load_model("m.onnx",
mean=127.5, std=127.5, channels="RGB", input_size=None, metric="cosine",
threshold=None)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..._util.errors import InvalidInputError, ModelFormatError
from ...runtime.spec import NetworkSpec
from .base import LoadedNetwork, ModelFormat
from .onnx_graph import translate_graph

#: Opsets of the default domain the translation is written for.
OPSETS = (11, 18)
#: Largest input side accepted (face models take 96-256 pixels).
MAX_INPUT_SIDE = 1024


@dataclass(frozen=True)
class OnnxOptions:
    """What an ONNX file does not say: preprocessing, input size and how embeddings are compared.

    ``mean``/``std``: ``x = (pixel - mean) / std`` per channel, in the model's
    channel order (one number or three); ``channels``: ``"RGB"`` or ``"BGR"``;
    ``input_size``: ``(H, W)``, needed only when the graph's input is dynamic;
    ``metric``: ``"cosine"`` or ``"squared_euclidean"``; ``threshold``: the
    decision threshold on the score scale, or None (then
    :func:`fxplain.calibrate_threshold` finds one).
    """

    mean: Any = 127.5
    std: Any = 127.5
    channels: str = "RGB"
    input_size: tuple[int, int] | None = None
    metric: str = "cosine"
    threshold: float | None = None

    def checked(self) -> OnnxOptions:
        """The options validated (InvalidInputError naming the bad one)."""
        mean, std = _per_channel(self.mean, "mean"), _per_channel(self.std, "std")
        if np.any(std == 0):
            raise InvalidInputError(f"std must be non-zero, got {self.std!r}")
        if self.channels not in ("RGB", "BGR"):
            raise InvalidInputError(f"channels must be 'RGB' or 'BGR', got {self.channels!r}")
        size = self.input_size
        if size is not None:
            if not (isinstance(size, (tuple, list)) and len(size) == 2 and all(
                    isinstance(v, (int, np.integer)) and not isinstance(v, bool) and 8 <= v <= MAX_INPUT_SIDE
                    for v in size)):
                raise InvalidInputError(f"input_size must be (H, W), each 8 to {MAX_INPUT_SIDE}, got {size!r}")
            size = (int(size[0]), int(size[1]))
        if self.metric not in ("cosine", "squared_euclidean"):
            raise InvalidInputError(f"metric must be 'cosine' or 'squared_euclidean', got {self.metric!r}")
        threshold = self.threshold
        if threshold is not None:
            try:
                threshold = float(threshold)
            except (TypeError, ValueError):
                raise InvalidInputError(f"threshold must be a number or None, got {self.threshold!r}") from None
            if not math.isfinite(threshold):
                raise InvalidInputError(f"threshold must be finite, got {self.threshold!r}")
        return OnnxOptions(tuple(mean), tuple(std), self.channels, size, self.metric, threshold)


def _per_channel(value: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(value, np.float64).ravel()
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a number or 3 numbers, got {value!r}") from None
    if arr.size == 1:
        arr = np.repeat(arr, 3)
    if arr.size != 3 or not np.all(np.isfinite(arr)):
        raise InvalidInputError(f"{name} must be a finite number or 3 of them, got {value!r}")
    return arr


def _parse(data: bytes, name: str):
    try:
        import onnx
    except ImportError:  # pragma: no cover - the onnx extra is installed with the test extra
        raise ModelFormatError(f"{name}: reading ONNX files needs the onnx package: pip install fxplain[onnx]") \
            from None
    try:
        model = onnx.load_model_from_string(data)
    except Exception as exc:  # noqa: BLE001 - protobuf raises DecodeError and others on damaged bytes
        raise ModelFormatError(f"{name}: not a readable ONNX file ({type(exc).__name__}: {exc})") from None
    if not model.HasField("graph") or not model.graph.node:
        raise ModelFormatError(f"{name}: not an ONNX model (no graph)")
    try:
        onnx.checker.check_model(model)
    except Exception as exc:  # noqa: BLE001 - ValidationError and, on hostile input, others
        raise ModelFormatError(f"{name}: the ONNX checker refuses the model: {str(exc).splitlines()[0][:300]}") \
            from None
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is None or not OPSETS[0] <= opset <= OPSETS[1]:
        raise ModelFormatError(f"{name}: opset {opset} of the default domain; fxplain reads opsets "
                               f"{OPSETS[0]} to {OPSETS[1]} (re-export with opset_version in that range)")
    return model


def _input(graph: Any, name: str, options: OnnxOptions) -> tuple[str, tuple[int, int]]:
    initializers = {init.name for init in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise ModelFormatError(f"{name}: the graph has {len(inputs)} inputs ({[i.name for i in inputs]}); "
                               "a face model takes one image")
    tensor_type = inputs[0].type.tensor_type
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim]
    if len(dims) != 4:
        raise ModelFormatError(f"{name}: the input has rank {len(dims)}; fxplain takes images as (N, 3, H, W)")
    if dims[1] != 3:
        raise ModelFormatError(f"{name}: the input's channel dimension is {dims[1]}, not 3 (images must be NCHW "
                               "RGB or BGR)")
    static = tuple(dims[2:]) if None not in dims[2:] else None
    if options.input_size is not None:
        if static is not None and static != options.input_size:
            raise InvalidInputError(f"input_size {options.input_size} disagrees with the graph's input "
                                    f"{static[0]}x{static[1]}")
        return inputs[0].name, options.input_size
    if static is None:
        raise InvalidInputError(f"{name}: the graph's input size is dynamic: pass input_size=(H, W)")
    if not all(8 <= v <= MAX_INPUT_SIDE for v in static):
        raise ModelFormatError(f"{name}: input of {static[0]}x{static[1]} pixels is outside 8 to {MAX_INPUT_SIDE}")
    return inputs[0].name, static


def read_onnx(data: bytes, name: str = "<onnx model>", options: OnnxOptions | None = None) -> LoadedNetwork:
    """Translate an ONNX face-recognition model onto the core's layer kinds.

    Parameters
    ----------
    data : bytes
        The ``.onnx`` file.
    name : str
        Shown in error messages.
    options : OnnxOptions
        Preprocessing, input size, metric and threshold.

    Returns
    -------
    LoadedNetwork
        The spec (input normalisation included), metric, threshold (NaN when
        none is given) and facts (``opset``, ``producer``, ``threshold_source``).

    Raises
    ------
    ModelFormatError
        If the file is damaged, refused by the ONNX checker, of another opset,
        or holds an operator or attribute fxplain does not map.
    InvalidInputError
        For bad options.
    """
    options = (options or OnnxOptions()).checked()
    model = _parse(data, name)
    input_name, size = _input(model.graph, name, options)
    mean, std = np.asarray(options.mean), np.asarray(options.std)
    if options.channels == "BGR":  # the spec reads RGB pixels; the model's per-channel values are in BGR order
        mean, std = mean[::-1], std[::-1]
    spec = NetworkSpec((3, size[0], size[1]), mean.astype(np.float32), (1.0 / std).astype(np.float32))
    translate_graph(model.graph, spec, input_name, name, bgr=options.channels == "BGR")
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    facts = {"opset": int(opset), "producer": f"{model.producer_name} {model.producer_version}".strip(),
             "channels": options.channels, "mean": list(options.mean), "std": list(options.std),
             "threshold_source": "given" if options.threshold is not None else "none"}
    threshold = options.threshold if options.threshold is not None else math.nan
    return LoadedNetwork(spec, options.metric, threshold, facts)


#: Field tags that may follow ``ir_version`` in a serialised ModelProto: opset_import (8), producer_name (2),
#: producer_version (3), domain (4), model_version (5), doc_string (6), graph (7), metadata_props (14).
_TAGS_AFTER_IR_VERSION = frozenset((0x42, 0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x72))


def looks_like_onnx(head: bytes) -> bool:
    """Whether ``head`` starts like a serialised ONNX ModelProto.

    Protobuf has no magic number, but every ONNX writer (onnx, PyTorch's
    exporter, onnxruntime's tools: all use protobuf's serialiser, which writes
    fields in field-number order) starts a model with field 1, ``ir_version``:
    the tag byte 0x08, a one-byte varint between 3 and 63 (IR versions so far
    are 3 to 11), then the tag of the next field present. A file that starts
    otherwise (a hand-ordered protobuf) is still read when it is named
    ``.onnx`` (suffix fallback of :func:`~fxplain.models.formats.format_for`).
    """
    return len(head) >= 3 and head[0] == 0x08 and 3 <= head[1] <= 63 and head[2] in _TAGS_AFTER_IR_VERSION


def _read(data: bytes, name: str, options: dict[str, Any] | None = None) -> LoadedNetwork:
    return read_onnx(data, name, OnnxOptions(**(options or {})))


#: ONNX files; the preprocessing and metric, which the file does not say, come from the load options.
ONNX_FORMAT = ModelFormat("onnx", (".onnx",), looks_like_onnx, _read,
                          options=("mean", "std", "channels", "input_size", "metric"), title="ONNX")

__all__ = ["ONNX_FORMAT", "OPSETS", "OnnxOptions", "looks_like_onnx", "read_onnx"]
