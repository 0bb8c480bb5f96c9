"""Measuring how faithful explanations are.

This first part implements *planted differences*, a verification-native
analogue of the inpainting game that needs no inpainting model: on aligned
chips, one facial region of a face is replaced by the same region of another
identity's face; compared with a genuine partner, the dissimilarity map of
the altered face should fall inside the replaced region.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._errors import InvalidInputError

#: Facial regions of dlib's aligned 150x150 chips, (top, left, bottom, right),
#: read off the mean of the johns chips (eyes at rows ~45, nose tip ~80, mouth ~105).
FACE_REGIONS_150: dict[str, tuple[int, int, int, int]] = {
    "eyes": (32, 22, 60, 128),
    "nose": (58, 52, 92, 98),
    "mouth": (92, 42, 122, 108),
}


@dataclass(frozen=True)
class PlantedPair:
    """A hybrid face, a genuine partner of its base identity, and the planted region."""

    hybrid: np.ndarray        # uint8 (H, W, 3): base face with `region` taken from `donor`
    partner: np.ndarray       # uint8 (H, W, 3): another chip of the base identity
    region: str
    box: tuple[int, int, int, int]
    base: int                 # indices into the image set
    donor: int
    partner_index: int


def region_mask(shape: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    """Boolean (H, W) mask of a (top, left, bottom, right) box."""
    mask = np.zeros(shape, bool)
    top, left, bottom, right = box
    mask[top:bottom, left:right] = True
    return mask


def planted_difference_pairs(images: np.ndarray, identities: list[str], *, per_region: int = 5,
                             regions: dict[str, tuple[int, int, int, int]] | None = None,
                             seed: int = 0) -> list[PlantedPair]:
    """Build planted-difference pairs from aligned chips with identity labels.

    For each region and each of ``per_region`` draws: a base chip, a donor chip
    of another identity, and a partner chip of the base identity (not the base)
    are chosen at random; the hybrid is the base with the region copied from the
    donor.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or len(images) != len(identities):
        raise InvalidInputError("images must be (N, H, W, 3) with one identity label per image")
    regions = regions or FACE_REGIONS_150
    ids = np.asarray(identities)
    rng = np.random.default_rng(seed)
    pairs = []
    for name, box in regions.items():
        top, left, bottom, right = box
        if not (0 <= top < bottom <= images.shape[1] and 0 <= left < right <= images.shape[2]):
            raise InvalidInputError(f"region {name} {box} does not fit {images.shape[1]}x{images.shape[2]} images")
        for _ in range(per_region):
            base = int(rng.integers(len(images)))
            same = np.flatnonzero((ids == ids[base]) & (np.arange(len(ids)) != base))
            other = np.flatnonzero(ids != ids[base])
            if len(same) == 0 or len(other) == 0:
                raise InvalidInputError("every identity needs two images, and two identities are needed")
            donor = int(rng.choice(other))
            partner = int(rng.choice(same))
            hybrid = images[base].copy()
            hybrid[top:bottom, left:right] = images[donor][top:bottom, left:right]
            pairs.append(PlantedPair(hybrid, images[partner], name, box, base, donor, partner))
    return pairs


def pointing_hit(saliency: np.ndarray, box: tuple[int, int, int, int], tolerance: int = 0) -> bool:
    """Does the map's maximum fall inside the box (grown by ``tolerance`` pixels)?"""
    y, x = np.unravel_index(np.argmax(saliency), saliency.shape)
    top, left, bottom, right = box
    return top - tolerance <= y < bottom + tolerance and left - tolerance <= x < right + tolerance


def energy_in_region(saliency: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """Fraction of the map's (non-negative) mass inside the box; 0 for an all-zero map."""
    total = float(np.sum(saliency))
    if total <= 0:
        return 0.0
    return float(np.sum(saliency[region_mask(saliency.shape, box)]) / total)


def region_auc(saliency: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """ROC-AUC of the map as a detector of the box's pixels (0.5 = chance, ties count half)."""
    inside = region_mask(saliency.shape, box).ravel()
    values = np.asarray(saliency, np.float64).ravel()
    ranks = _average_ranks(values)
    n_in, n_out = inside.sum(), (~inside).sum()
    if n_in == 0 or n_out == 0:
        raise InvalidInputError("the box must cover some but not all pixels")
    return float((ranks[inside].sum() - n_in * (n_in + 1) / 2) / (n_in * n_out))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given the mean rank of their run (as Spearman's correlation needs)."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    # ranks 1..n, ties get the mean rank of their run
    boundaries = np.flatnonzero(np.diff(sorted_values)) + 1
    starts = np.concatenate([[0], boundaries])
    stops = np.concatenate([boundaries, [len(values)]])
    ranks = np.empty(len(values))
    for start, stop in zip(starts, stops):
        ranks[order[start:stop]] = (start + stop + 1) / 2
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two maps (flattened); 0 if either is constant."""
    ra = _average_ranks(np.asarray(a, np.float64).ravel())
    rb = _average_ranks(np.asarray(b, np.float64).ravel())
    ra -= ra.mean()
    rb -= rb.mean()
    denom = np.sqrt((ra ** 2).sum() * (rb ** 2).sum())
    return float((ra * rb).sum() / denom) if denom > 0 else 0.0


# ---- deletion / insertion for verification ---------------------------------


def removal_masks(saliency: np.ndarray, steps: int, mode: str) -> np.ndarray:
    """Keep-masks (steps+1, H, W): pixels leave (deletion) or arrive (insertion) most salient first.

    Step t removes (deletion) or restores (insertion) the ``t/steps`` fraction of
    pixels with the highest saliency; ties are broken by position, so the
    masks are deterministic.
    """
    if mode not in ("deletion", "insertion"):
        raise InvalidInputError(f"mode must be 'deletion' or 'insertion', got {mode!r}")
    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise InvalidInputError(f"steps must be a positive integer, got {steps!r}")
    flat = np.asarray(saliency, np.float64).ravel()
    order = np.argsort(-flat, kind="stable")
    rank = np.empty(flat.size, np.int64)
    rank[order] = np.arange(flat.size)
    counts = np.round(np.linspace(0, flat.size, steps + 1)).astype(np.int64)
    chosen = rank[None, :] < counts[:, None]  # (steps+1, pixels): the most salient `count`
    keep = ~chosen if mode == "deletion" else chosen
    return keep.reshape((steps + 1,) + np.shape(saliency)).astype(np.float32)


def perturbation_curve(model, image: np.ndarray, partner_embedding: np.ndarray, saliency: np.ndarray, *,
                       steps: int = 20, mode: str = "deletion", baseline="mean", batch_size: int = 64) -> np.ndarray:
    """Scores ``s(image_t, partner)`` as salient pixels are deleted or inserted, ``(steps+1,)``.

    Deleted pixels (and, for insertion, not yet inserted ones) take the
    ``baseline`` fill (``"mean"``, ``"blur"``, ``"zero"``, ``"gray"``, or a colour).
    The masking and scoring run in the C core.
    """
    from . import _core
    from ._fill import fill_image
    from ._images import to_pixel_batch
    from ._methods import score_kind

    pixels = to_pixel_batch(image, model.input_size)[0]
    if np.shape(saliency) != pixels.shape[:2]:
        raise InvalidInputError(f"saliency must have shape {pixels.shape[:2]}, got {np.shape(saliency)}")
    masks = removal_masks(saliency, steps, mode)
    batch = _core.apply_masks(pixels, fill_image(pixels, baseline), masks)
    emb = model.embed_pixels(batch, batch_size=batch_size)
    return _core.embedding_scores(score_kind(model), emb, np.ascontiguousarray(partner_embedding, np.float32))


def normalized_auc(curve: np.ndarray) -> float:
    """Trapezoidal area under a curve sampled evenly on [0, 1]."""
    y = np.asarray(curve, np.float64)
    return float(np.sum((y[1:] + y[:-1]) / 2) / (len(y) - 1))


# ---- baselines every method must beat --------------------------------------


def random_map(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Uniform random saliency: the floor for every metric."""
    return np.random.default_rng(seed).random(shape)


def center_gaussian_map(shape: tuple[int, int], sigma: float = 0.25) -> np.ndarray:
    """A centred Gaussian (sigma as a fraction of the size): the 'faces are in the middle' prior."""
    h, w = shape
    y = (np.arange(h) - (h - 1) / 2) / (sigma * h)
    x = (np.arange(w) - (w - 1) / 2) / (sigma * w)
    return np.exp(-0.5 * (y[:, None] ** 2 + x[None, :] ** 2))


# ---- sanity: cascading model-parameter randomisation -------------------------


def randomized_model(model, layers: int, seed: int = 0):
    """A copy of ``model`` with the weights of its last ``layers`` convolution/dense layers re-drawn.

    Weights are replaced by Gaussian noise with each layer's own standard
    deviation (biases and scale/shifts kept), from the output backwards, as in
    the cascading randomisation test of Adebayo et al. (2018).
    """
    import copy

    from .models import FaceModel

    if not isinstance(model, FaceModel):
        raise InvalidInputError("randomized_model needs a model on fxplain's core (fxplain.load_model)")
    spec = copy.deepcopy(model.spec)
    rng = np.random.default_rng(seed)
    weighted = [layer for layer in spec.layers if layer.kind in ("conv", "dense")]
    if not 0 <= layers <= len(weighted):
        raise InvalidInputError(f"layers must be in [0, {len(weighted)}], got {layers}")
    for layer in weighted[len(weighted) - layers:]:
        w = layer.params["weight"]
        layer.params["weight"] = (rng.standard_normal(w.shape) * w.std()).astype(np.float32)
    return FaceModel(spec, name=f"{model.name} (last {layers} layers randomised)", metric=model.metric,
                     threshold=model.threshold, source=model.source, facts=model.facts)
