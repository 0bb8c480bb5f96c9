"""Planted differences: a verification-native analogue of the inpainting game that needs no inpainting model.

On aligned chips, one facial region of a face is replaced by the same region
of another identity's face; compared with a genuine partner, the
dissimilarity map of the altered face should fall inside the replaced region
(scored by :func:`~fxplain.evaluation.metrics.pointing_hit`,
:func:`~fxplain.evaluation.metrics.energy_in_region` and
:func:`~fxplain.evaluation.metrics.region_auc`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._util.errors import InvalidInputError
from ..models.regions import FACE_REGIONS_150

__all__ = ["FACE_REGIONS_150", "PlantedPair", "planted_difference_pairs", "region_mask"]


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
