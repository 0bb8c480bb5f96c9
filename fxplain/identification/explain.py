"""Explain a 1:N search: the ranking, the probe against each top identity, and the contrast between two of them.

>>> r = fxplain.explain_identification(model, "probe.jpg", "gallery/", top_k=5, method="occlusion")
>>> r.ranking[0].identity, r.ranking[0].score      # who the model says it is, and how sure
>>> r.pairs[0].plot()                              # the probe against rank 1, as any pair
>>> r.contrast.similarity                          # (H, W): what makes the probe rank 1 rather than rank 2
>>> r.plot(); r.save("r.fxi")
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from .._util.errors import InvalidInputError
from .._util.files import read_untrusted_file
from .._util.progress import Progress
from .._util.validation import is_integer
from ..explainer import Explainer
from ..faces.inputs import to_pixel_batch, to_pixel_batch_and_faces
from ..models.protocols import require_embedding_model
from ..models.scoring import Contrast, require_threshold, score_kind
from ..results import _jsonable
from .gallery import COMBINE, Candidate, Gallery
from .result import ContrastMaps, IdentificationExplanation


def explain_identification(model, probe: Any, gallery: Any, top_k: int = 5, method: str = "corrrise", *,
                           combine: str = "mean", mate: str | None = None, face: Any = "largest",
                           cache_dir: str | os.PathLike | None | bool = None, seed: int = 0, batch_size: int = 64,
                           show_progress: bool = False, **method_params: Any) -> IdentificationExplanation:
    """Search a gallery for a probe face and explain the ranking.

    Parameters
    ----------
    model : FaceModel or CallableModel
        The face-recognition model (with a decision threshold). Wrapped
        callables support the black-box methods (occlusion, corrrise).
    probe
        One face: an aligned chip, a photo (``face`` chooses its face), a
        :class:`~fxplain.Face`; a path, an array or a PIL image.
    gallery : Gallery, path or list
        A :class:`Gallery` of the same model, a folder with one sub-folder of
        images per identity, or a list of ``(identity, image)`` items.
    top_k : int
        How many identities to rank and explain (1 to the gallery's number
        of identities).
    method : str
        Explanation method, as for :class:`~fxplain.Explainer`.
    combine : {"mean", "best"}
        How an identity's images are scored: against their mean embedding
        (its representative image is the one closest to the mean) or by the
        best of them.
    mate : str, optional
        The probe's true identity. If it is not rank 1, the contrast
        explains why rank 1 beats it; else (or without a mate) why rank 1
        beats rank 2.
    face : str or int
        Which face of a probe photo (``"largest"``, ``"most_confident"`` or an
        index). Gallery photos use their largest face.
    cache_dir : path, None or False
        The gallery's embedding cache (see :class:`Gallery`).
    seed, batch_size, show_progress, **method_params
        As for :class:`~fxplain.Explainer`: the same method, parameters and
        seed explain the pairs and the contrast.

    Returns
    -------
    IdentificationExplanation
    """
    start = time.perf_counter()
    require_embedding_model(model)  # with a threshold: every candidate gets a decision
    threshold = require_threshold(model)
    explainer = Explainer(model, method=method, seed=seed, batch_size=batch_size, show_progress=show_progress,
                          **method_params)  # checks the method and its parameters before any work
    if combine not in COMBINE:
        raise InvalidInputError(f"combine must be 'mean' or 'best', got {combine!r}")
    if not is_integer(top_k) or top_k < 1:  # before the gallery is embedded; its upper bound after
        raise InvalidInputError(f"top_k must be a positive integer, got {top_k!r}")
    if mate is not None and not isinstance(mate, str):
        raise InvalidInputError(f"mate must be an identity's name (str), got {type(mate).__name__}")
    if not isinstance(gallery, Gallery):
        gallery = Gallery(model, gallery, cache_dir=cache_dir, batch_size=batch_size, show_progress=show_progress)
    elif gallery.model_hash != model.model_hash:
        raise InvalidInputError("the gallery was embedded by another model; build it with this one")
    identities = len(gallery.identities)
    if identities < 2:
        raise InvalidInputError(f"identification needs a gallery of at least two identities, this one has "
                                f"{identities} ({gallery.identities[0]!r}); for one, explain the pair with Explainer")
    if top_k > identities:
        raise InvalidInputError(f"top_k must be at most the gallery's {identities} identities, got {top_k}")
    if mate is not None:
        gallery.members(mate)  # an unknown mate raises, naming the gallery's identities

    pixels, faces = to_pixel_batch_and_faces(probe, model.input_size, face=face)
    if len(pixels) != 1:
        raise InvalidInputError(f"the probe must be one image, got {len(pixels)}")
    probe_face = faces[0]
    probe_embedding = model.embed_pixels(pixels, batch_size=1)[0]
    ranking = gallery.search(probe_embedding, combine=combine)
    top = ranking[:int(top_k)]

    # the probe as the pairs see it: its Face for a photo (no second detection), else as given
    probe_input = probe_face if probe_face is not None else probe
    pairs = [explainer.explain(probe_input, gallery.images[c.image_index]) for c in top]
    source = _probe_source(probe)
    for pair in pairs:
        pair.sources = (source, pair.sources[1] if pair.sources else None)

    mate_entry = next((c for c in ranking if c.identity == mate), None)
    second, reason = (mate_entry, "mate") if mate_entry is not None and mate_entry.rank > 1 else (ranking[1],
                                                                                                  "runner-up")
    contrast = _explain_contrast(explainer, model, pixels, probe_embedding, ranking[0], second, reason,
                                 _chips(model, gallery, (ranking[0], second), pairs))
    return IdentificationExplanation(
        probe=pixels[0].copy(), ranking=top, pairs=pairs, contrast=contrast, threshold=threshold,
        combine=combine, method=explainer.method.name, params=_jsonable(explainer.method.params), seed=explainer.seed,
        model_hash=model.model_hash, model_name=getattr(model, "name", "model"),
        gallery_identities=identities, gallery_images=len(gallery), mate=mate,
        mate_rank=None if mate_entry is None else mate_entry.rank,
        mate_score=None if mate_entry is None else mate_entry.score, seconds=time.perf_counter() - start,
        probe_source=source, extras={"score_kind": score_kind(model), "units": explainer.method.units})


def _explain_contrast(explainer: Explainer, model, pixels: np.ndarray, probe_embedding: np.ndarray,
                      first: Candidate, second: Candidate, reason: str, images: np.ndarray) -> ContrastMaps:
    """The method's maps of the probe for ``c = s(x, first) − s(x, second)``."""
    method = explainer.method
    contrast = Contrast(first.embedding, second.embedding)
    with Progress(method.contrast_work_units(model.input_size), f"{method.name} contrast",
                  explainer.show_progress) as progress:
        evidence = method.explain_contrast(model, pixels, probe_embedding, contrast, explainer.seed,
                                           explainer.batch_size, progress)
    return ContrastMaps(first=first, second=second, reason=reason, score=first.score - second.score,
                        similarity=evidence.similarity[0].astype(np.float32),
                        dissimilarity=evidence.dissimilarity[0].astype(np.float32), images=images,
                        extras=_jsonable(evidence.extras))


def _chips(model, gallery: Gallery, candidates: tuple[Candidate, ...], pairs: list) -> np.ndarray:
    """The candidates' representative chips, float32 ``(len, H, W, 3)``: from their pair when explained."""
    chips = []
    for c in candidates:
        if c.rank <= len(pairs):
            chips.append(pairs[c.rank - 1].images[1])
        else:
            chips.append(to_pixel_batch(gallery.images[c.image_index], model.input_size)[0])
    return np.stack(chips).astype(np.float32)


def _probe_source(probe: Any) -> dict | None:
    """The probe's file (path and SHA-256) when it was given as a path."""
    if isinstance(probe, (str, os.PathLike)) and Path(probe).is_file():
        data = read_untrusted_file(Path(probe), "image file")
        return {"path": str(probe), "sha256": hashlib.sha256(data).hexdigest()}
    return None
