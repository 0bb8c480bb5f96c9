"""Does a method's per-dimension region map show where the model's dimension really looks?

The reconstruction module claims that its decoder's map ``R_k`` shows which
facial region feature dimension k encodes. This module checks that claim (and
the same claim of any other source of per-dimension maps) against the model's
own sensitivity:

* **face mass** — the share of ``R_k``'s mass inside the face ellipse
  (:func:`fxplain.models.regions.face_ellipse`, 45 % of the chip); uniform
  maps score 0.45, maps on the background and borders less;
* **occlusion correlation** — Spearman's rank correlation over the pixels
  between ``R_k`` and dimension k's occlusion map
  (:meth:`fxplain.FaceModel.dimension_maps` with ``method="occlusion"``: how
  much ``f_k`` changes when each patch is hidden), the reference because it
  measures the model directly, without gradients or a decoder.

Both are averaged over the dimensions and the faces. :func:`correspondence_table`
returns one row per method of region maps: ``"decoder"`` (the
reconstruction decoder's maps), ``"gradient"`` and ``"occlusion"``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._util.errors import InvalidInputError
from ..explainer import Explainer
from ..faces.inputs import to_pixel_batch
from ..models.face_model import FaceModel
from ..models.regions import FACE_ELLIPSE_AREA, face_ellipse, face_mass
from .metrics import spearman

#: The sources of per-dimension region maps :func:`correspondence_table` compares.
MAP_METHODS = ("decoder", "gradient", "occlusion")


def rank_correlations(maps: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Spearman correlation of ``maps[k]`` with ``reference[k]`` over the pixels, for every k: ``(D,)``.

    A constant map has no ranking and scores 0.
    """
    if np.shape(maps) != np.shape(reference):
        raise InvalidInputError(f"maps {np.shape(maps)} and reference {np.shape(reference)} differ in shape")
    return np.array([spearman(a, b) for a, b in zip(maps, reference)])


def dimension_region_maps(model, image: np.ndarray, method: str, decoder=None) -> np.ndarray:
    """The ``(D, H, W)`` per-dimension maps of one chip by ``method`` (one of :data:`MAP_METHODS`)."""
    if method == "decoder":
        if decoder is None:
            raise InvalidInputError("method 'decoder' needs a decoder")
        return decoder.dimension_maps(model.embed(image)[0])
    if method in ("gradient", "occlusion"):
        return model.dimension_maps(image, method=method)
    raise InvalidInputError(f"region-map method must be one of {MAP_METHODS}, got {method!r}")


def correspondence_table(model, images: Any, *, decoder=None, methods=MAP_METHODS) -> list[dict[str, Any]]:
    """Face mass and occlusion correlation of per-dimension region maps, one row per method.

    Parameters
    ----------
    model : FaceModel
        The face model (its occlusion maps are the reference).
    images
        Aligned chips (anything :meth:`FaceModel.embed` takes), best faces the
        decoder never saw.
    decoder : Decoder, optional
        For method ``"decoder"``; None uses the model's default decoder.
    methods : sequence of str
        Any of ``"decoder"``, ``"gradient"``, ``"occlusion"``.

    Returns
    -------
    list of dict
        Per method: ``face_mass`` and ``occlusion_correlation`` (means over
        dimensions and faces, with the standard deviation over faces),
        ``faces`` and ``uniform_face_mass`` (what maps spread evenly score).
        The occlusion row's correlation is 1 by definition.
    """
    if not isinstance(model, FaceModel):
        raise InvalidInputError("the correspondence check needs a model on fxplain's core (fxplain.load_model): "
                                "its occlusion and gradient maps run there")
    methods = list(methods)
    for m in methods:
        if m not in MAP_METHODS:
            raise InvalidInputError(f"region-map method must be one of {MAP_METHODS}, got {m!r}")
    if not methods:
        raise InvalidInputError("no region-map method to compare")
    pixels = to_pixel_batch(images, model.input_size)
    if "decoder" in methods and decoder is None:  # the reconstruction method's default decoder
        decoder = Explainer(model, method="reconstruction").method.decoder_for(model)
    if "decoder" in methods and decoder.model_hash != model.model_hash:
        raise InvalidInputError(f"the decoder was trained for another face model ({decoder.model_hash[:12]}…, "
                                f"the model is {model.model_hash[:12]}…)")
    face = face_ellipse(model.input_size)
    masses: dict[str, list[float]] = {m: [] for m in methods}
    correlations: dict[str, list[float]] = {m: [] for m in methods}
    for chip in pixels:
        reference = model.dimension_maps(chip[None], method="occlusion")
        for m in methods:
            maps = reference if m == "occlusion" else dimension_region_maps(model, chip[None], m, decoder)
            masses[m].append(float(face_mass(maps, face).mean()))
            correlations[m].append(1.0 if m == "occlusion" else float(rank_correlations(maps, reference).mean()))
    return [{"method": m, "face_mass": float(np.mean(masses[m])), "face_mass_sd": float(np.std(masses[m])),
             "occlusion_correlation": float(np.mean(correlations[m])),
             "occlusion_correlation_sd": float(np.std(correlations[m])),
             "faces": len(pixels), "uniform_face_mass": float(face.mean())} for m in methods]


__all__ = ["FACE_ELLIPSE_AREA", "MAP_METHODS", "correspondence_table", "dimension_region_maps", "face_mass",
           "rank_correlations"]
