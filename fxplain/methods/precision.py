"""``precision=`` of the perturbation methods: perturbed batches in INT8 (or BF16), the intact pair in FP32.

Occlusion and CorrRISE spend nearly all their time embedding perturbed
copies of the pair. With ``precision="int8"`` those batches run through the
model's int8 twin (:meth:`FaceModel.low_precision`), its activation scales
calibrated on the intact pair; the pair's own embeddings, score and decision
stay FP32. ``"fp32"`` (the default) is exactly the FP32 method, parameters
included (the key is then left out of the stored parameters).
"""

from __future__ import annotations

import numpy as np

from .._util.errors import InvalidInputError
from ..models.low_precision import check_precision
from .base import Evidence
from .targets import ScoreTarget


class PrecisionMixin:
    """Adds ``precision`` to a perturbation method (listed first among its bases)."""

    def _check_precision(self) -> None:
        self.params["precision"] = check_precision(self.params["precision"])
        if self.params["precision"] == "fp32":
            del self.params["precision"]  # FP32 runs keep the parameters they had before this option

    @property
    def precision(self) -> str:
        """The arithmetic of the perturbed batches."""
        return self.params.get("precision", "fp32")

    def perturbation_model(self, model, calibration: np.ndarray):
        """``model``, or its low-precision view calibrated on ``calibration`` (the intact images)."""
        if self.precision == "fp32":
            return model
        low_precision = getattr(model, "low_precision", None)
        if low_precision is None:
            raise InvalidInputError(f"precision={self.precision!r} needs a network run by fxplain's core "
                                    f"(a FaceModel); {type(model).__name__} is a black box: use precision='fp32'")
        return low_precision(self.precision, np.ascontiguousarray(calibration, np.float32))

    @staticmethod
    def intact_score(view, image: np.ndarray, partner) -> float:
        """Score of the intact ``image`` against ``partner`` in the view's arithmetic (the perturbations' zero)."""
        return float(ScoreTarget(view, partner, 0.0).scores(np.ascontiguousarray(image[None]), 1)[0])

    def explain_contrast(self, model, probe_pixels, probe_embedding, contrast, seed, batch_size, progress):
        view = self.perturbation_model(model, probe_pixels)
        if view is model:
            return super().explain_contrast(model, probe_pixels, probe_embedding, contrast, seed, batch_size,
                                            progress)
        image = np.ascontiguousarray(probe_pixels[0])
        signed = self.evidence(view, image, contrast, self.intact_score(view, image, contrast), seed, batch_size,
                               progress)
        return Evidence.from_signed(signed[None])
