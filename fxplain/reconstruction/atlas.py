"""Dataset-level region maps: which facial region each feature dimension encodes, over many faces.

A :class:`RegionAtlas` averages per-dimension maps ``R_k`` (each summing to
1) over a set of aligned faces and names, for every dimension, the facial
region where its mass is most concentrated relative to the region's size.
:meth:`fxplain.Decoder.region_atlas` builds one from the decoder's maps;
:meth:`RegionAtlas.from_maps` from any stack of per-dimension maps (the
model's own gradient or occlusion maps, :meth:`fxplain.FaceModel.dimension_maps`),
so the decoder's atlas can be set beside the model's.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._util.errors import InvalidInputError
from ..models.regions import face_ellipse, face_mass, face_regions

#: The atlas' partition of a chip: the three parts, the rest of the face ellipse, the background.
ATLAS_REGIONS = ("eyes", "nose", "mouth", "rest of face", "background")


def region_labels(size: tuple[int, int]) -> np.ndarray:
    """int ``(H, W)``: the index in :data:`ATLAS_REGIONS` of every pixel of a ``size`` chip.

    Eyes, nose and mouth are the boxes of :func:`fxplain.models.regions.face_regions`
    (where two overlap, the earlier wins), the rest of the face is the face
    ellipse without them, the background everything else.
    """
    labels = np.where(face_ellipse(size) > 0, 3, 4)
    for index, name in reversed(list(enumerate(ATLAS_REGIONS[:3]))):
        top, left, bottom, right = face_regions(size)[name]
        labels[top:bottom, left:right] = index
    return labels


@dataclass
class RegionAtlas:
    """Average per-dimension region maps over a set of faces, with the region each dimension encodes most.

    Attributes
    ----------
    maps : numpy.ndarray
        float32 ``(D, H, W)``, the mean over faces of each dimension's map (each sums to 1).
    enrichment : numpy.ndarray
        float ``(D, R)``: share of dimension k's mass in region r divided by
        the region's share of the chip (1 = as much as a uniform map), for
        the regions :data:`ATLAS_REGIONS`.
    regions : list of str
        Per dimension, the region of highest enrichment.
    distinctive : list of str
        Per dimension, the facial region (not the background) where it is
        densest *compared with the other dimensions*: the highest
        ``enrichment[k, r] / mean_j enrichment[j, r]``. Smooth maps make most
        dimensions densest on the central boxes; this label says what sets a
        dimension apart.
    faces : int
        How many faces were averaged.
    backdrop : numpy.ndarray or None
        uint8 ``(H, W, 3)`` face drawn under the maps (the decoder's rebuilt
        mean face, or the mean chip).
    source : str
        What made the maps (``"decoder"``, ``"gradient"``, ``"occlusion"``...).
    """

    maps: np.ndarray
    enrichment: np.ndarray
    regions: list[str]
    faces: int
    backdrop: np.ndarray | None = field(default=None, repr=False)
    source: str = "decoder"
    distinctive: list[str] = field(default_factory=list)

    @classmethod
    def from_maps(cls, maps: Any, *, backdrop: np.ndarray | None = None, source: str = "maps") -> RegionAtlas:
        """An atlas from per-face, per-dimension maps: an iterable of ``(D, H, W)`` arrays, or ``(N, D, H, W)``."""
        total, count = None, 0
        for one in maps:
            one = np.asarray(one, np.float64)
            if one.ndim != 3 or (total is not None and one.shape != total.shape):
                raise InvalidInputError(f"each face's maps must be (D, H, W) of one shape, got {one.shape}")
            if not np.all(np.isfinite(one)) or one.min() < 0:
                raise InvalidInputError("region maps must be finite and non-negative")
            sums = one.reshape(len(one), -1).sum(axis=1)
            one = one / np.where(sums > 0, sums, 1.0)[:, None, None]
            total = one if total is None else total + one
            count += 1
        if total is None:
            raise InvalidInputError("no maps to build an atlas from")
        mean = total / count
        labels = region_labels(mean.shape[1:])
        area = np.array([np.mean(labels == r) for r in range(len(ATLAS_REGIONS))])
        mass = np.stack([mean[:, labels == r].sum(axis=1) for r in range(len(ATLAS_REGIONS))], axis=1)
        enrichment = mass / area[None]
        regions = [ATLAS_REGIONS[r] for r in enrichment.argmax(axis=1)]
        facial = enrichment[:, :4]  # eyes, nose, mouth, rest of face
        relative = facial / np.maximum(facial.mean(axis=0, keepdims=True), 1e-12)
        distinctive = [ATLAS_REGIONS[r] for r in relative.argmax(axis=1)]
        return cls(mean.astype(np.float32), enrichment, regions, count, backdrop, source, distinctive)

    def counts(self, *, distinctive: bool = False) -> dict[str, int]:
        """How many dimensions encode each region most (every region of :data:`ATLAS_REGIONS` listed).

        With ``distinctive``, by :attr:`distinctive` instead of :attr:`regions`.
        """
        counted = Counter(self.distinctive if distinctive else self.regions)
        return {name: counted.get(name, 0) for name in ATLAS_REGIONS}

    def face_mass(self) -> np.ndarray:
        """``(D,)`` share of each dimension's mean map inside the face ellipse."""
        return face_mass(self.maps, face_ellipse(self.maps.shape[1:]))

    def plot(self, dimensions: Any = None, *, columns: int = 16, size: float = 0.9):
        """All (or the chosen) dimensions' mean maps in a grid, each titled with its index, its region, how
        concentrated it is there (the enrichment: 1.0× is no more than a uniform map) and, after a slash, its
        distinctive region when that differs."""
        from matplotlib.figure import Figure

        dims = list(range(len(self.maps))) if dimensions is None else [int(k) for k in dimensions]
        if not dims or min(dims) < 0 or max(dims) >= len(self.maps):
            raise InvalidInputError(f"dimensions must be indices below {len(self.maps)}")
        columns = max(1, min(int(columns), len(dims)))
        rows = -(-len(dims) // columns)
        fig = Figure(figsize=(columns * size, rows * size * 1.15 + 0.5), layout="constrained")
        axes = np.atleast_1d(fig.subplots(rows, columns)).ravel()
        short = {"eyes": "eyes", "nose": "nose", "mouth": "mouth", "rest of face": "face", "background": "bg"}
        for ax, k in zip(axes, dims):
            if self.backdrop is not None:
                ax.imshow(self.backdrop.mean(axis=2), cmap="gray", alpha=0.6)
            ax.imshow(self.maps[k], cmap="inferno", alpha=0.75 if self.backdrop is not None else 1.0)
            enrichment = self.enrichment[k, ATLAS_REGIONS.index(self.regions[k])]
            apart = f"/{short[self.distinctive[k]]}" if self.distinctive[k] != self.regions[k] else ""
            ax.set_title(f"{k} {short[self.regions[k]]} {enrichment:.1f}×{apart}", fontsize=6, pad=1)
        for ax in axes:
            ax.set_axis_off()
        counts = ", ".join(f"{name} {n}" for name, n in self.counts().items())
        apart = ", ".join(f"{name} {n}" for name, n in self.counts(distinctive=True).items() if name != "background")
        fig.suptitle(f"{self.source} region atlas over {self.faces} faces — densest region: {counts}; "
                     f"distinctive region: {apart}", fontsize=8)
        return fig


__all__ = ["ATLAS_REGIONS", "RegionAtlas", "region_labels"]
