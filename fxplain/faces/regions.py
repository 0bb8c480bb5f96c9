"""Facial regions of an aligned chip, from the face's own landmarks or its template's mean face.

Every pixel of a chip gets one region of :data:`REGION_NAMES` (eyes, brows,
nose, mouth, cheeks, forehead, chin/jaw, the rest of the face, outside the
face), so the shares of a map's mass per region sum to 1
(:func:`region_shares`). The regions are drawn from dlib's 68 landmarks in
chip pixels:

* a face found in a photo brings its own: its 68 landmarks when the photo
  pipeline computed them (ArcFace-template chips), else the template's mean
  face fitted (a similarity) to the face's own 5 alignment points
  (:func:`face_landmarks68`);
* a chip without a photo uses its alignment template's mean face
  (:func:`template_landmarks68`: dlib's 150x150 chips, insightface's 112x112
  ones; other sizes are taken as dlib-like chips scaled to size), so the
  regions hold for any model.

The mean faces were measured on the 66 faces of the example photos
(``scripts/make_region_templates.py``, ``fxplain/data/face_templates.json``).
Region shapes are set in units of the distance between the eye centres, so
they scale with the face.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np

from .._util.errors import InvalidInputError
from .alignment import similarity_transform

#: The regions, in the order of :func:`region_labels`' values.
REGION_NAMES = ("eyes", "brows", "nose", "mouth", "cheeks", "forehead", "chin_jaw", "rest_of_face", "outside")

# dlib's 68-point (iBUG) layout
_JAW, _BROW_R, _BROW_L = range(17), range(17, 22), range(22, 27)
_NOSE, _EYE_R, _EYE_L, _MOUTH = range(27, 36), range(36, 42), range(42, 48), range(48, 60)
# the cheek between the eye, the nose wing, the mouth corner and the jaw, on each side
_CHEEK_R = (36, 41, 40, 39, 31, 48, 5, 4, 3, 2, 1, 0)
_CHEEK_L = (45, 46, 47, 42, 35, 54, 11, 12, 13, 14, 15, 16)

# widths, in eye-centre distances (measured by eye on johns and the example photos' faces)
_EYE_MARGIN = 0.17      # the eye opening and the lids around it
_BROW_MARGIN = 0.11
_NOSE_MARGIN = 0.07
_MOUTH_MARGIN = 0.15  # mouth corners move with expression: johns smile up to 0.17 beyond the mean mouth
_FOREHEAD_HEIGHT = 0.65  # above the brows: the face outline's top
_JAW_BAND = 0.18         # along the jaw line, and everything below the lower lip


@functools.cache
def _templates() -> dict[str, Any]:
    return json.loads((Path(__file__).resolve().parents[1] / "data" / "face_templates.json").read_text())


def _size(size: Any) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise InvalidInputError(f"size must be (height, width), got {size!r}") from None
    if not (8 <= h <= 4096 and 8 <= w <= 4096):
        raise InvalidInputError(f"chip size must be between 8 and 4096 pixels a side, got {h}x{w}")
    return h, w


def template_landmarks68(size: Any) -> np.ndarray:
    """The mean face's 68 landmarks ``(x, y)`` in a ``size`` chip's pixels, float64 ``(68, 2)``.

    112x112 chips use the ArcFace template's mean face; every other size
    dlib's 150x150 one, scaled to the chip.
    """
    h, w = _size(size)
    if (h, w) == (112, 112):
        return np.array(_templates()["arcface112"]["landmarks68"], np.float64)
    points = np.array(_templates()["dlib150"]["landmarks68"], np.float64)
    return points * np.array([w / 150.0, h / 150.0])


def face_landmarks68(record: Any, size: Any) -> np.ndarray | None:
    """A photo face's 68 landmarks in its ``size`` chip, or None when it has no landmarks.

    ``record`` is a :class:`~fxplain.Face` or its :meth:`~fxplain.Face.record`
    (what explanations keep in ``extras["faces"]``). A Face whose 68
    landmarks are known (ArcFace chips are aligned by them) gives those;
    otherwise the template's mean face is fitted to the face's own 5
    alignment points by the least-squares similarity, so the eyes follow this
    face; its mouth is placed by the template, as 5 points do not say where
    it is (on the example photos' faces, 0.83 of the mouth corners fall in
    the mouth region this way, 0.97 of the eye landmarks in the eye region).
    """
    size = _size(size)
    if record is None:
        return None
    if isinstance(record, dict):
        try:
            five = np.asarray(record["landmarks"], np.float64)
            to_photo = np.asarray(record["chip_to_photo"], np.float64)
            own68 = np.asarray(record["landmarks68"], np.float64) if "landmarks68" in record else None
        except (KeyError, TypeError, ValueError):
            return None
    else:
        five = np.asarray(record.landmarks, np.float64)
        to_photo = record.chip_and_transform(_Sized(size))[1]
        own68 = record._cache.get("landmarks68")
    if five.shape != (5, 2) or to_photo.shape != (2, 3) or not (np.all(np.isfinite(five))
                                                                and np.all(np.isfinite(to_photo))):
        return None
    try:
        to_chip = np.linalg.inv(np.vstack([to_photo, [0.0, 0.0, 1.0]]))[:2]
    except np.linalg.LinAlgError:
        return None
    if own68 is not None and own68.shape == (68, 2) and np.all(np.isfinite(own68)):
        return own68 @ to_chip[:, :2].T + to_chip[:, 2]
    chip_five = five @ to_chip[:, :2].T + to_chip[:, 2]
    template = template_landmarks68(size)
    # a similarity, not an affine map: the 5 points (4 eye corners on a line and the nose) leave an affine
    # map's vertical stretch to one point, which throws the mouth off (measured on the example photos)
    try:
        fit = similarity_transform(template[_templates()["five_point_nearest68"]], chip_five)
    except InvalidInputError:
        return None
    return template @ fit[:, :2].T + fit[:, 2]


class _Sized:
    """Stands for a model of input ``size`` where a Face asks for one."""

    def __init__(self, size: tuple[int, int]):
        self.input_size = size


def region_labels(size: Any, landmarks68: Any = None) -> np.ndarray:
    """Each pixel's region: int8 ``(H, W)`` indices into :data:`REGION_NAMES`.

    ``landmarks68`` (float ``(68, 2)``, ``(x, y)`` chip pixels) are the face's
    own (:func:`face_landmarks68`); None takes the template's mean face. The
    regions partition the chip: a pixel in two shapes goes to the first in
    the order eyes, brows, mouth, nose, forehead, chin/jaw, cheeks.
    """
    h, w = _size(size)
    if landmarks68 is None:
        return _template_labels(h, w).copy()
    return _labels(h, w, _checked_points(landmarks68))


@functools.lru_cache(maxsize=8)
def _template_labels(h: int, w: int) -> np.ndarray:
    """The template's labels, drawn once per size (every chip without a photo shares them)."""
    return _labels(h, w, template_landmarks68((h, w)))


def _labels(h: int, w: int, points: np.ndarray) -> np.ndarray:
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    pixels = np.stack([xs.ravel(), ys.ravel()], axis=1)
    unit = np.linalg.norm(points[_EYE_L].mean(axis=0) - points[_EYE_R].mean(axis=0))
    if not unit > 0:
        raise InvalidInputError("the landmarks put both eyes at the same point")
    eye_axis = (points[_EYE_L].mean(axis=0) - points[_EYE_R].mean(axis=0)) / unit
    up = np.array([eye_axis[1], -eye_axis[0]])  # image y grows downwards

    def near(indices, margin, closed=True):
        return _distance_to_polygon(pixels, points[list(indices)], closed) <= margin * unit

    raised_brows = points[list(_BROW_L)[::-1] + list(_BROW_R)[::-1]] + _FOREHEAD_HEIGHT * unit * up
    outline = np.vstack([points[list(_JAW)], raised_brows])
    face = _inside(pixels, outline)
    brows_polygon = points[list(_BROW_R) + list(_BROW_L)]
    forehead = _inside(pixels, np.vstack([brows_polygon, raised_brows]))
    lower_lip = points[57]
    below_mouth = ((pixels - lower_lip) @ up) < -_MOUTH_MARGIN * unit
    shapes = {
        "eyes": near(_EYE_R, _EYE_MARGIN) | near(_EYE_L, _EYE_MARGIN),
        "brows": near(_BROW_R, _BROW_MARGIN, closed=False) | near(_BROW_L, _BROW_MARGIN, closed=False),
        "mouth": near(_hull_indices(points, _MOUTH), _MOUTH_MARGIN),
        "nose": near(_hull_indices(points, _NOSE), _NOSE_MARGIN),
        "forehead": forehead & face,
        "cheeks": (_inside(pixels, points[list(_CHEEK_R)]) | _inside(pixels, points[list(_CHEEK_L)])) & face,
        "chin_jaw": face & (near(range(2, 15), _JAW_BAND, closed=False) | below_mouth),
        "rest_of_face": face,
    }
    labels = np.full(h * w, REGION_NAMES.index("outside"), np.int8)
    unassigned = np.ones(h * w, bool)
    for name in ("eyes", "brows", "mouth", "nose", "forehead", "chin_jaw", "cheeks", "rest_of_face"):
        take = shapes[name] & unassigned
        labels[take] = REGION_NAMES.index(name)
        unassigned &= ~take
    return labels.reshape(h, w)


def region_masks(size: Any, landmarks68: Any = None) -> dict[str, np.ndarray]:
    """:func:`region_labels` as one boolean ``(H, W)`` mask per region name."""
    labels = region_labels(size, landmarks68)
    return {name: labels == k for k, name in enumerate(REGION_NAMES)}


def region_shares(values: Any, labels: np.ndarray) -> np.ndarray:
    """Share of a non-negative map's mass per region: float64 ``(len(REGION_NAMES),)`` summing to 1.

    A map with no mass (all zeros) has no shares: all NaN.
    """
    values = np.asarray(values, np.float64)
    if values.shape != labels.shape:
        raise InvalidInputError(f"map of shape {values.shape} does not fit regions of shape {labels.shape}")
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise InvalidInputError("region shares need a finite, non-negative map")
    mass = np.bincount(labels.ravel(), weights=values.ravel(), minlength=len(REGION_NAMES))
    total = mass.sum()
    return mass / total if total > 0 else np.full(len(REGION_NAMES), np.nan)


def _checked_points(landmarks68: Any) -> np.ndarray:
    points = np.asarray(landmarks68, np.float64)
    if points.shape != (68, 2) or not np.all(np.isfinite(points)):
        raise InvalidInputError(f"landmarks68 must be 68 finite (x, y) points, got shape {points.shape}")
    return points


def _hull_indices(points: np.ndarray, indices) -> list[int]:
    """The landmarks of ``indices`` on their convex hull, in order (Andrew's monotone chain)."""
    order = sorted(indices, key=lambda i: (points[i][0], points[i][1]))

    def half(seq):
        chain: list[int] = []
        for i in seq:
            while len(chain) >= 2 and _cross(points[chain[-2]], points[chain[-1]], points[i]) <= 0:
                chain.pop()
            chain.append(i)
        return chain

    lower, upper = half(order), half(order[::-1])
    return lower[:-1] + upper[:-1]


def _cross(o, a, b) -> float:
    return float((a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]))


def _inside(pixels: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Even-odd rule: which ``(N, 2)`` points lie inside the closed ``polygon`` ``(M, 2)``."""
    inside = np.zeros(len(pixels), bool)
    x, y = pixels[:, 0], pixels[:, 1]
    for (x0, y0), (x1, y1) in zip(polygon, np.roll(polygon, -1, axis=0), strict=True):
        if y0 == y1:
            continue
        crosses = (y0 > y) != (y1 > y)
        x_at = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (x < x_at)
    return inside


def _distance_to_polygon(pixels: np.ndarray, polygon: np.ndarray, closed: bool) -> np.ndarray:
    """Distance of each point to a polygon's area (0 inside) when ``closed``, else to the polyline."""
    ends = np.roll(polygon, -1, axis=0) if closed else polygon[1:]
    starts = polygon if closed else polygon[:-1]
    best = np.full(len(pixels), np.inf)
    for a, b in zip(starts, ends, strict=True):
        edge = b - a
        length2 = float(edge @ edge)
        t = np.clip(((pixels - a) @ edge) / length2, 0.0, 1.0) if length2 > 0 else np.zeros(len(pixels))
        best = np.minimum(best, np.linalg.norm(pixels - (a + t[:, None] * edge), axis=1))
    if closed and len(polygon) >= 3:
        best[_inside(pixels, polygon)] = 0.0
    return best


__all__ = ["REGION_NAMES", "face_landmarks68", "region_labels", "region_masks", "region_shares",
           "template_landmarks68"]
