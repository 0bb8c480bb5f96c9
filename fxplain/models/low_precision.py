"""Low-precision perturbation passes: a model's embeddings of perturbed batches in INT8 (or BF16).

Perturbation methods (occlusion, CorrRISE) push hundreds of altered copies of
one image through the network; their maps need score *differences*, not the
last digit of each embedding. :meth:`FaceModel.low_precision` gives a view
of the model whose :meth:`~LowPrecisionView.embed_pixels` runs on a second
core net in a cheaper arithmetic, while everything else (the intact pair's
embeddings, score and decision) stays the model's FP32.

* ``"int8"``: every convolution with 8 or more input channels runs on
  oneDNN's int8 kernels; weights quantised symmetrically per output channel
  (s8), each convolution's input per tensor (u8, or s8 where it can be
  negative) with the largest absolute value an FP32 pass over the
  *calibration* images (the intact pair) produced. The first (RGB) layer,
  pooling, sums and dense layers stay FP32 (``csrc/net_int8.c``).
* ``"bf16"``: bfloat16 convolutions, where oneDNN has kernels for them
  (AVX512-BF16, AMX). Refused with :class:`~fxplain.CoreError` elsewhere:
  oneDNN 3.2 has no bf16 convolution at all on AVX2-only CPUs, not even a
  slow reference one.

See ``docs/performance.md`` for the speed and map fidelity measured.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from .._util.errors import CoreError, InvalidInputError

#: The arithmetics a perturbation method's ``precision=`` accepts.
PRECISIONS = ("fp32", "bf16", "int8")


def check_precision(precision: Any) -> str:
    """``precision`` if it names one of :data:`PRECISIONS`, else InvalidInputError."""
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise InvalidInputError(f"precision must be one of {', '.join(map(repr, PRECISIONS))}, got {precision!r}")
    return precision


class LowPrecisionNet:
    """A second core net of a model in ``"int8"`` or ``"bf16"`` arithmetic, with its own lock.

    The int8 net's activation scales belong to the last calibration; every
    view remembers its own calibration images and recalibrates (one FP32 pass
    over them, no rebuild) when another view calibrated in between, so views
    of different pairs used from several threads give their serial results.
    """

    def __init__(self, model, precision: str):
        from ..runtime.core_net import build_core_net

        self.precision = precision
        self.net = build_core_net(model.spec)
        self.lock = threading.Lock()
        self._calibrated_for: object | None = None
        self.net.set_math_mode(precision)
        if precision == "bf16":
            c, h, w = model.spec.input_shape
            try:
                self.net.forward(np.full((1, h, w, c), 128.0, np.float32))
            except CoreError as exc:
                raise CoreError(f"precision 'bf16' is not available on this CPU with the oneDNN in use ({exc}); "
                                "oneDNN 3.2 has bf16 convolutions only on CPUs with AVX512 (BF16) or AMX. "
                                "Use precision='int8' or 'fp32'") from None

    def forward(self, pixels: np.ndarray, token: object, calibration: np.ndarray | None) -> np.ndarray:
        """The net's output for ``pixels``, calibrated on ``calibration`` (identified by ``token``) if int8."""
        with self.lock:
            if calibration is not None and self._calibrated_for is not token:
                self.net.calibrate_int8(calibration)
                self._calibrated_for = token
            return self.net.forward(pixels)


class LowPrecisionView:
    """A model whose :meth:`embed_pixels` runs in low precision; every other attribute is the model's.

    Made by :meth:`FaceModel.low_precision`; perturbation methods score their
    batches through it (:class:`~fxplain.methods.targets.ScoreTarget`).
    """

    def __init__(self, model, lowp: LowPrecisionNet, calibration: np.ndarray | None):
        self._model = model
        self._lowp = lowp
        self._calibration = calibration
        self._token = object()
        self.precision = lowp.precision

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def embed_pixels(self, pixels: np.ndarray, *, batch_size: int = 32) -> np.ndarray:
        """Low-precision embeddings of a validated float32 ``(N, H, W, 3)`` C-contiguous pixel batch."""
        out = np.empty((pixels.shape[0], self._model.embedding_size), np.float32)
        for start in range(0, pixels.shape[0], batch_size):
            chunk = pixels[start:start + batch_size]
            out[start:start + chunk.shape[0]] = self._lowp.forward(chunk, self._token, self._calibration).reshape(
                chunk.shape[0], -1)
        return self._model._finite(out, f"{self.precision} embeddings")
