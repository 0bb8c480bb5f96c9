"""Sanity: cascading model-parameter randomisation (Adebayo et al., 2018) — explanations must change with the model."""

from __future__ import annotations

import copy

import numpy as np

from .._util.errors import InvalidInputError
from ..models.face_model import FaceModel
from ..runtime.layers import LAYERS


def randomized_model(model, layers: int, seed: int = 0):
    """A copy of ``model`` with the weights of its last ``layers`` convolution/dense layers re-drawn.

    Weights are replaced by Gaussian noise with each layer's own standard
    deviation (biases and scale/shifts kept), from the output backwards, as in
    the cascading randomisation test of Adebayo et al. (2018).
    """
    if not isinstance(model, FaceModel):
        raise InvalidInputError("randomized_model needs a model on fxplain's core (fxplain.load_model)")
    spec = copy.deepcopy(model.spec)
    rng = np.random.default_rng(seed)
    weighted = [layer for layer in spec.layers if LAYERS[layer.kind].trainable]
    if not 0 <= layers <= len(weighted):
        raise InvalidInputError(f"layers must be in [0, {len(weighted)}], got {layers}")
    for layer in weighted[len(weighted) - layers:]:
        w = layer.params["weight"]
        layer.params["weight"] = (rng.standard_normal(w.shape) * w.std()).astype(np.float32)
    return FaceModel(spec, name=f"{model.name} (last {layers} layers randomised)", metric=model.metric,
                     threshold=model.threshold, source=model.source, facts=model.facts)
