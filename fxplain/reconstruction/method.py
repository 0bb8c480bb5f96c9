"""Method ``"reconstruction"``: the decoder's per-dimension region maps through the margin decomposition."""

from __future__ import annotations

import os
from typing import Any, ClassVar

from .._util.errors import InvalidInputError
from .._util.validation import is_finite_number
from ..methods.base import register_method
from ..methods.region_maps import RegionMapMethod
from ..models.face_model import FaceModel
from .decoder import Decoder, load_decoder
from .default import default_decoder


@register_method
class Reconstruction(RegionMapMethod):
    """Region maps from the face-reconstruction decoder, combined by the margin decomposition.

    For each image with embedding f, ``R_k = |G(f) − G(f − δ_k e_k)|`` (see
    :meth:`fxplain.Decoder.dimension_maps`; one decoder batch for all D
    dimensions), then the ``"net"`` (default) or ``"split"`` combination of
    :mod:`fxplain.methods.region_maps`. ``decoder`` is a
    :class:`~fxplain.Decoder`, a path to a decoder file, or None for the
    model's default decoder (:func:`fxplain.default_decoder`, trained once
    and cached). ``delta`` is the perturbation in standard deviations of each
    dimension.
    """

    name = "reconstruction"
    defaults: ClassVar[dict[str, Any]] = {"variant": "net", "delta": 1.0, "decoder": None}
    variants: ClassVar[tuple[str, ...]] = ("net", "split")

    def __init__(self, **params: Any):
        decoder = params.get("decoder")
        self.decoder = None
        if isinstance(decoder, Decoder):
            self.decoder = decoder
            params["decoder"] = f"decoder:{decoder.spec.weights_digest()[:16]}"
        elif decoder is not None:
            if not isinstance(decoder, (str, os.PathLike)):
                raise InvalidInputError(f"decoder must be a Decoder, a decoder file or None, got {type(decoder).__name__}")
            self.decoder = load_decoder(decoder)
            params["decoder"] = str(decoder)
        super().__init__(**params)

    def validate(self) -> None:
        delta = self.params["delta"]
        if not is_finite_number(delta) or delta == 0:
            raise InvalidInputError(f"delta must be a non-zero finite number, got {delta!r}")

    #: Off only in the copy made by for_randomised_model.
    require_matching_model = True

    def for_randomised_model(self, model) -> Reconstruction:
        """The randomised model's features go through ``model``'s decoder.

        A decoder for the randomised model would take minutes to train; with
        this one the contributions and the maps both still change.
        """
        copy = type(self)(**{**self.params, "decoder": self.decoder_for(model)})
        copy.require_matching_model = False
        return copy

    def decoder_for(self, model) -> Decoder:
        """The decoder in use: the one given, or ``model``'s default decoder (trained once, cached)."""
        if self.decoder is None:
            if not isinstance(model, FaceModel):
                raise InvalidInputError("method 'reconstruction' without a decoder needs a model from "
                                        "fxplain.load_model (its default decoder is trained on johns)")
            self.decoder = default_decoder(model)
        return self.decoder

    def explain_pair(self, model, pixels, embeddings, base_score, seed, batch_size, progress):
        evidence = self.combined_evidence(model, pixels, embeddings, batch_size, progress)
        # which weights made the maps, also when params say decoder=None (the default decoder)
        evidence.extras["decoder_weights"] = self.decoder.spec.weights_digest()[:16]
        return evidence

    def region_maps(self, model, pixels, embeddings, batch_size):
        self.decoder_for(model)
        if self.require_matching_model and self.decoder.model_hash != model.model_hash:
            raise InvalidInputError("this decoder was trained for another face model "
                                    f"({self.decoder.model_hash[:12]}…, the model is {model.model_hash[:12]}…)")
        return [self.decoder.dimension_maps(embeddings[side], delta=float(self.params["delta"])) for side in (0, 1)]
