"""Facial regions of aligned chips: where eyes, nose and mouth lie in a model's input.

Used to plant differences (evaluation), to swap facial parts between chips
(decoder training augmentation), to keep decoders' training on the face
(:func:`face_ellipse`) and to measure how much of a map lies on the face.
"""

from __future__ import annotations

import numpy as np

#: Facial regions of dlib's aligned 150x150 chips, (top, left, bottom, right),
#: read off the mean of the johns chips (eyes at rows ~45, nose tip ~80, mouth ~105).
FACE_REGIONS_150: dict[str, tuple[int, int, int, int]] = {
    "eyes": (32, 22, 60, 128),
    "nose": (58, 52, 92, 98),
    "mouth": (92, 42, 122, 108),
}

#: Share of an aligned chip covered by :func:`face_ellipse` (the face from brows to chin).
FACE_ELLIPSE_AREA = 0.45

#: Centre (row, column) and semi-axes (vertical, horizontal) of the face ellipse as
#: fractions of the chip's height and width, per alignment template. dlib's chips
#: (padding 0.25) put the eyes at row ~0.30 and the mouth at ~0.70; insightface's
#: 112x112 template puts them at 0.46 and 0.82, so its face sits lower.
_ELLIPSES = {"dlib": (0.52, 0.50), "arcface": (0.58, 0.50)}
_SEMI_AXES = (0.42, 0.34)  # pi * 0.42 * 0.34 = 0.449 of the chip


def face_ellipse(size: tuple[int, int], *, feather: float = 0.0, scale: float = 1.0) -> np.ndarray:
    """The aligned face's region of a ``size`` chip: float32 ``(H, W)`` in [0, 1], 1 on the face.

    An ellipse covering :data:`FACE_ELLIPSE_AREA` of the chip, centred where
    the model's alignment template puts the face (dlib's 150x150 chips and
    insightface's 112x112 ones; other sizes are taken as dlib-like). With
    ``feather`` (in pixels at 150 px, scaled with the chip) the edge ramps
    linearly from 1 to 0 over that width outside the ellipse, so nothing
    built from it has a hard seam. Without it the mask is 0 or 1. ``scale``
    shrinks (< 1) or grows the semi-axes about the same centre.
    """
    h, w = int(size[0]), int(size[1])
    template = "arcface" if (h, w) == (112, 112) else "dlib"
    cy, cx = _ELLIPSES[template]
    ay, ax = _SEMI_AXES[0] * scale, _SEMI_AXES[1] * scale
    ys = (np.arange(h) + 0.5) / h - cy
    xs = (np.arange(w) + 0.5) / w - cx
    radius = np.sqrt((ys[:, None] / ay) ** 2 + (xs[None, :] / ax) ** 2)  # 1 on the ellipse
    if feather <= 0:
        return (radius <= 1.0).astype(np.float32)
    # distance outside the ellipse, approximately, in pixels of this chip
    outside = (radius - 1.0) * min(ay * h, ax * w)
    return np.clip(1.0 - outside / (feather * min(h, w) / 150.0), 0.0, 1.0).astype(np.float32)


def face_regions(size: tuple[int, int]) -> dict[str, tuple[int, int, int, int]]:
    """:data:`FACE_REGIONS_150` scaled to a ``size`` chip, (top, left, bottom, right) each."""
    sy, sx = size[0] / 150.0, size[1] / 150.0
    return {name: (int(t * sy), int(left * sx), int(b * sy), int(r * sx))
            for name, (t, left, b, r) in FACE_REGIONS_150.items()}


def face_mass(maps: np.ndarray, face: np.ndarray) -> np.ndarray:
    """Share of each map's mass on the face: ``(D,)`` from maps ``(D, H, W)`` and a 0/1 face mask ``(H, W)``."""
    maps = np.asarray(maps, np.float64)
    totals = maps.reshape(len(maps), -1).sum(axis=1)
    inside = (maps * face).reshape(len(maps), -1).sum(axis=1)
    return inside / np.where(totals > 0, totals, 1.0)
