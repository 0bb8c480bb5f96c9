"""Planted contrasts: do the contrastive maps of an identification point at a face part pasted from a rival?

The 1:N analogue of :mod:`fxplain.evaluation.planted`. For two identities P
and Q of a set of aligned chips, a chip of P gets one facial region (eyes,
nose, mouth) pasted from a chip of Q. In a gallery holding the other chips
of P and Q, the contrast ``c(x) = s(x, P) − s(x, Q)`` of this hybrid probe
falls (it looks more like Q than before) — by ``shift``. The probe's pixels
that support Q over P should then lie in the pasted region: the pointing
game scores the contrastive map "for Q over P"
(:func:`score_planted_contrast`), next to the pair map that answers the
1:1 question, the hybrid's dissimilarity map against P's representative image.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from .._util.errors import InvalidInputError
from .._util.progress import Progress
from ..explainer import Explainer
from ..faces.inputs import to_pixel_batch
from ..identification import Gallery, explain_identification
from ..methods.base import METHODS
from ..models.regions import face_regions
from ..models.scoring import Contrast
from .metrics import energy_in_region, pointing_hit


@dataclass(frozen=True)
class PlantedContrast:
    """A hybrid probe of identity ``mate`` carrying ``region`` of a chip of ``rival``, and its gallery."""

    hybrid: np.ndarray            # uint8 (H, W, 3)
    mate: str                     # P: the base chip's identity
    rival: str                    # Q: the donor chip's identity
    region: str
    box: tuple[int, int, int, int]
    base: int                     # indices into the image set
    donor: int
    gallery: tuple[int, ...]      # P's and Q's other chips
    shift: float                  # c(base) − c(hybrid), c = s(x, P) − s(x, Q) against the gallery means


def planted_contrast_cases(model, images: np.ndarray, identities, *, seed: int = 0, min_shift: float = 0.0,
                           regions: dict[str, tuple[int, int, int, int]] | None = None,
                           embeddings: np.ndarray | None = None) -> list[PlantedContrast]:
    """One hybrid per ordered identity pair (P, Q) and region, kept when the paste moved the contrast enough.

    The base chip of P and the donor chip of Q are drawn with ``seed``; a
    case is kept if ``shift`` (see :class:`PlantedContrast`) is at least
    ``min_shift`` score units. ``embeddings`` (the chips' own, if known)
    saves embedding them again.
    """
    images = np.asarray(images)
    labels = np.asarray(list(identities))
    if images.ndim != 4 or images.shape[-1] != 3 or len(images) != len(labels):
        raise InvalidInputError("images must be (N, H, W, 3) with one identity label per image")
    regions = regions or face_regions(images.shape[1:3])
    emb = model.embed(images, batch_size=64) if embeddings is None else np.asarray(embeddings)
    rng = np.random.default_rng(seed)
    names = list(dict.fromkeys(labels.tolist()))
    cases, hybrids = [], []
    for mate, rival in itertools.permutations(names, 2):
        for region, box in regions.items():
            mates, rivals = np.flatnonzero(labels == mate), np.flatnonzero(labels == rival)
            if len(mates) < 2 or len(rivals) < 2:
                raise InvalidInputError("every identity needs two chips: one to alter, one for the gallery")
            base, donor = int(rng.choice(mates)), int(rng.choice(rivals))
            top, left, bottom, right = box
            hybrid = images[base].copy()
            hybrid[top:bottom, left:right] = images[donor][top:bottom, left:right]
            gallery = tuple(int(i) for i in np.concatenate([mates[mates != base], rivals[rivals != donor]]))
            cases.append((mate, rival, region, tuple(box), base, donor, gallery))
            hybrids.append(hybrid)
    hybrid_emb = model.embed(np.stack(hybrids), batch_size=64)
    kept = []
    for (mate, rival, region, box, base, donor, gallery), hybrid, h_emb in zip(cases, hybrids, hybrid_emb):
        ids = np.asarray(gallery)
        means = [emb[ids[labels[ids] == name]].astype(np.float64).mean(axis=0) for name in (mate, rival)]
        before, after = (model.score(e, means[0]) - model.score(e, means[1]) for e in (emb[base], h_emb))
        shift = float(before - after)
        if shift >= min_shift:
            kept.append(PlantedContrast(hybrid, mate, rival, region, box, base, donor, gallery, shift))
    return kept


def score_planted_contrast(model, case: PlantedContrast, items, method: str, *, tolerance: int = 8,
                           seed: int = 0, batch_size: int = 64, cache_dir=None, pair: bool = True,
                           **method_params) -> dict:
    """Pointing and mass in the pasted region: the contrastive map "for Q over P", and the pair map.

    ``items`` are the image set's ``(identity, image)`` items (paths let the
    gallery's embeddings be cached in ``cache_dir``). The probe is searched in
    the gallery of P's and Q's other chips with ``mate=P``
    (:func:`~fxplain.explain_identification`), so the contrast is P against
    Q whichever ranks first; the pair map is the hybrid's dissimilarity map
    against P's representative image (the probe's own pair, ``r.pairs[0]``
    when P is rank 1). With ``pair=False`` only the contrast is explained
    (the method's :meth:`~fxplain.methods.base.Method.explain_contrast`, as
    explain_identification calls it) and the pair entries are None.
    """
    gallery = Gallery(model, [items[i] for i in case.gallery], cache_dir=cache_dir, batch_size=batch_size)
    options = dict(method=method, seed=seed, batch_size=batch_size, **method_params)
    if pair:
        r = explain_identification(model, case.hybrid, gallery, top_k=1, mate=case.mate, **options)
        first, second, evidence, score = r.contrast.first, r.contrast.second, r.contrast, r.contrast.score
    else:
        first, second, evidence, score = _contrast_only(model, case, gallery, options)
    if {first.identity, second.identity} != {case.mate, case.rival}:
        raise InvalidInputError("the contrast must be between the case's two identities")
    rival_map = evidence.dissimilarity if first.identity == case.mate else evidence.similarity
    row = {"contrast_hit": bool(pointing_hit(rival_map, case.box, tolerance)),
           "contrast_mass": energy_in_region(rival_map, case.box), "flipped": first.identity != case.mate,
           "contrast_score": score, "pair_hit": None, "pair_mass": None}
    if pair:
        if r.top.identity == case.mate:
            explained = r.pairs[0]
        else:  # the rival ranks first: the probe's own pair is explained on its own
            explained = Explainer(model, **options).explain(case.hybrid, gallery.images[second.image_index])
        pair_map = explained.dissimilarity[0]
        row.update(pair_hit=bool(pointing_hit(pair_map, case.box, tolerance)),
                   pair_mass=energy_in_region(pair_map, case.box))
    return row


def _contrast_only(model, case: PlantedContrast, gallery: Gallery, options: dict):
    """Rank 1, rank 2, their contrastive maps ``(H, W)`` and ``c`` of the hybrid, without the pairs."""
    pixels = to_pixel_batch(case.hybrid, model.input_size)
    embedding = model.embed_pixels(pixels, batch_size=1)[0]
    first, second = gallery.search(embedding)
    method = METHODS[options["method"]](**{k: v for k, v in options.items()
                                           if k not in ("method", "seed", "batch_size")})
    with Progress(1, "", False) as progress:
        contrast = Contrast(first.embedding, second.embedding)
        evidence = method.explain_contrast(model, pixels, embedding, contrast, options["seed"],
                                           options["batch_size"], progress)
    maps = SimpleNamespace(similarity=evidence.similarity[0], dissimilarity=evidence.dissimilarity[0])
    return first, second, maps, first.score - second.score
