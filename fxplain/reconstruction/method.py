"""Method ``"reconstruction"``: the decoder's view of a pair, through the margin decomposition.

Default variant ``"counterfactual"`` (the pair's "against" / "for" dimensions moved together in the
decoder); ``"net"`` and ``"split"`` combine the decoder's per-dimension region maps.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

import numpy as np

from .._util.errors import InvalidInputError
from .._util.validation import is_finite_number
from ..methods.base import Evidence, register_method
from ..methods.decomposition import contrast_contributions, margin_contributions
from ..methods.region_maps import RegionMapMethod
from ..models.face_model import FaceModel
from .decoder import Decoder, load_decoder
from .default import default_decoder


@register_method
class Reconstruction(RegionMapMethod):
    """Region maps from the face-reconstruction decoder, combined by the margin decomposition.

    Variants ``"net"`` and ``"split"``: for each image with
    embedding f, ``R_k = |G(f) − G(f − δ_k e_k)|`` (see
    :meth:`fxplain.Decoder.dimension_maps`; one decoder batch for all D
    dimensions), then the combination of :mod:`fxplain.methods.region_maps`.

    Variant ``"counterfactual"`` (default): the dimensions move together, by
    the pair's own amounts. With ``c_k`` the margin contributions, image A's
    dissimilarity map is ``|G(f_A) − G(f_A with its "against" dimensions
    (c_k < 0) set to B's values)|`` — where A's rebuilt face would change to
    take on what B has instead — and its similarity map ``|G(f_A) − G(f_A
    with its "for" dimensions (c_k > 0) set to the decoder's mean feature)|``
    — what A's face would lose if what it shares with B became average; the
    same for B. Each map is summed over colour and scaled to the total of its
    contributions (``Σ_{c_k<0} |c_k|``, ``Σ_{c_k>0} c_k``), as the split
    variant. Three decoder passes per image, no per-dimension batch. On 60
    held-out planted differences it points at the planted region in 0.50 of
    them, split in 0.32, net in 0.17 (docs/reconstruction.md).

    ``decoder`` is a :class:`~fxplain.Decoder`, a path to a decoder file, or
    None for the model's default decoder (:func:`fxplain.default_decoder`,
    trained once and cached). ``delta`` (net and split only) is the
    perturbation in standard deviations of each dimension.
    """

    name = "reconstruction"
    defaults: ClassVar[dict[str, Any]] = {"variant": "counterfactual", "delta": 1.0, "decoder": None}
    variants: ClassVar[tuple[str, ...]] = ("counterfactual", "net", "split")

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
        if self.params["variant"] == "counterfactual":
            evidence = self.counterfactual_evidence(model, embeddings)
            progress.update(2)
        else:
            evidence = self.combined_evidence(model, pixels, embeddings, batch_size, progress)
        # which weights made the maps, also when params say decoder=None (the default decoder)
        evidence.extras["decoder_weights"] = self.decoder.spec.weights_digest()[:16]
        return evidence

    def counterfactual_evidence(self, model, embeddings) -> Evidence:
        """The ``"counterfactual"`` variant's maps of both images (see the class doc)."""
        decoder = self._checked_decoder(model)
        contributions = margin_contributions(model, embeddings[0], embeddings[1])
        against, agree = contributions < 0, contributions > 0
        totals = (float(contributions[agree].sum()), float(-contributions[against].sum()))
        similarity, dissimilarity = [], []
        for side in (0, 1):
            f, partner = embeddings[side], embeddings[1 - side]
            takes_partner, loses_shared = f.copy(), f.copy()
            takes_partner[against] = partner[against]
            loses_shared[agree] = decoder.embedding_mean[agree]
            out = decoder.decode(np.stack([f, loses_shared, takes_partner]))
            for maps, moved, total in ((similarity, out[1], totals[0]), (dissimilarity, out[2], totals[1])):
                maps.append(_scaled_change(out[0], moved, total))
        return Evidence(np.stack(similarity), np.stack(dissimilarity), {"contributions": contributions.tolist()})

    def _checked_decoder(self, model) -> Decoder:
        self.decoder_for(model)
        if self.require_matching_model and self.decoder.model_hash != model.model_hash:
            raise InvalidInputError("this decoder was trained for another face model "
                                    f"({self.decoder.model_hash[:12]}…, the model is {model.model_hash[:12]}…)")
        return self.decoder

    def region_map(self, model, image, embedding, batch_size):
        return self._checked_decoder(model).dimension_maps(embedding, delta=float(self.params["delta"]))

    def explain_contrast(self, model, probe_pixels, probe_embedding, contrast, seed, batch_size, progress):
        """The probe's maps for ``c = s(p, g1) − s(p, g2)``: counterfactual by default (below), or net, split.

        The counterfactual contrast: with the contrast's contributions
        ``c_k`` (:func:`~fxplain.methods.decomposition.contrast_contributions`),
        the similarity map is ``|G(f_p) − G(f_p with its dimensions favouring
        g1 (c_k > 0) set to g2's values)|`` — what of the probe's face makes
        it g1 rather than g2 — and the dissimilarity map ``|G(f_p) − G(f_p
        with its dimensions favouring g2 (c_k < 0) set to g1's values)|``;
        summed over colour and scaled to ``Σ_{c_k>0} c_k`` and
        ``Σ_{c_k<0} |c_k|``, as for a pair.
        """
        if self.params["variant"] == "counterfactual":
            evidence = self.counterfactual_contrast_evidence(model, probe_embedding, contrast)
            progress.update(1)
        else:
            evidence = self.combined_contrast_evidence(model, probe_pixels, probe_embedding, contrast,
                                                       batch_size, progress)
        evidence.extras["decoder_weights"] = self.decoder.spec.weights_digest()[:16]
        return evidence

    def counterfactual_contrast_evidence(self, model, probe_embedding, contrast) -> Evidence:
        """``"counterfactual"`` maps ``(1, H, W)`` of a probe for a contrast; see :meth:`explain_contrast`."""
        decoder = self._checked_decoder(model)
        contributions = contrast_contributions(model, probe_embedding, contrast)
        for_first, for_second = contributions > 0, contributions < 0
        f = np.asarray(probe_embedding, np.float32)
        takes_second, takes_first = f.copy(), f.copy()
        takes_second[for_first] = contrast.second[for_first]
        takes_first[for_second] = contrast.first[for_second]
        out = decoder.decode(np.stack([f, takes_second, takes_first]))
        maps = [_scaled_change(out[0], out[1], float(contributions[for_first].sum())),
                _scaled_change(out[0], out[2], float(-contributions[for_second].sum()))]
        return Evidence(maps[0][None], maps[1][None], {"contributions": contributions.tolist()})


def _scaled_change(rebuilt: np.ndarray, moved: np.ndarray, total: float) -> np.ndarray:
    """``|moved − rebuilt|`` summed over colour (decoder output ``(3, H, W)``), scaled to sum to ``total``."""
    change = np.abs(moved - rebuilt).sum(axis=0, dtype=np.float64)
    mass = change.sum()
    return change * (total / mass) if mass > 0 else np.zeros_like(change)
