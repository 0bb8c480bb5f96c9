"""Face alignment as dlib does it: ``extract_image_chip(img, get_face_chip_details(shape, size, padding))``.

The chip is placed by the least-squares similarity transform from dlib's
5-point template (shrunk by ``padding`` on each side) to the landmarks, and
sampled bilinearly; when the chip is more than twice smaller than its
footprint in the photo, dlib first shrinks the region around the face with its
``pyramid_down<2>`` image pyramid (a 5x5 binomial filter) and samples the
right level, so the chip is anti-aliased. The work is done in the C core
(``csrc/chip.c``); :mod:`fxplain.faces.reference` is its NumPy twin.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _core
from .._util.errors import InvalidInputError
from .._util.validation import is_finite_number, is_integer
from .shape_predictor import check_image

#: Landmark coordinates beyond this (in pixels) are surely a mistake.
_MAX_COORDINATE = 1e7


def check_landmarks(landmarks: Any) -> np.ndarray:
    """Five ``(x, y)`` landmarks in dlib's part order as float64 (5, 2); else InvalidInputError."""
    try:
        values = np.array(landmarks, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInputError(f"landmarks must be a (5, 2) array of (x, y) points, got {landmarks!r}") from None
    if values.shape != (5, 2):
        raise InvalidInputError(f"landmarks must have shape (5, 2) (dlib's 5-point order), got {values.shape}")
    if not np.all(np.isfinite(values)):
        raise InvalidInputError("landmarks hold NaN or infinite values")
    if np.any(np.abs(values) > _MAX_COORDINATE):
        raise InvalidInputError(f"landmarks are implausibly far from the image (|coordinate| > {_MAX_COORDINATE:g})")
    spread = values - values.mean(axis=0)
    if not np.any(spread):
        raise InvalidInputError("landmarks are all the same point: no face to align")
    return values


def check_chip_args(size: Any, padding: Any) -> tuple[int, float]:
    """``size`` an int in [2, 8192] and ``padding`` a finite number in [0, 10]; else InvalidInputError."""
    if not is_integer(size) or not 2 <= int(size) <= 8192:
        raise InvalidInputError(f"size must be an integer between 2 and 8192, got {size!r}")
    if not is_finite_number(padding) or not 0 <= float(padding) <= 10:
        raise InvalidInputError(f"padding must be a finite number between 0 and 10, got {padding!r}")
    return int(size), float(padding)


def face_chip_details(landmarks: Any, size: int = 150, padding: float = 0.25) -> tuple[tuple[float, ...], int, int]:
    """dlib's ``get_face_chip_details(shape, size, padding)``.

    Returns
    -------
    tuple
        ``((left, top, right, bottom, angle), rows, cols)``: the chip's rectangle
        in the photo (before its rotation by ``angle`` radians about its centre)
        and its size in pixels.
    """
    size, padding = check_chip_args(size, padding)
    return _core.face_chip_details(check_landmarks(landmarks), size, padding)


def face_chip(image: np.ndarray, landmarks: Any, size: int = 150, padding: float = 0.25
              ) -> tuple[np.ndarray, np.ndarray]:
    """The aligned face chip dlib's face descriptor expects.

    Parameters
    ----------
    image : numpy.ndarray
        uint8 RGB photo ``(H, W, 3)`` (grayscale ``(H, W)`` is taken as gray RGB).
    landmarks : array_like
        ``(5, 2)`` ``(x, y)`` points in dlib's 5-point order, e.g. from
        :meth:`ShapePredictor.predict`. dlib itself aligns on the landmarks
        rounded to whole pixels; pass ``np.floor(landmarks + 0.5)`` to get its
        chip exactly.
    size : int
        Side of the square chip in pixels (150 for dlib's ResNet).
    padding : float
        Margin around the template face, as a fraction of its size (0.25 in
        dlib's examples and face_recognition).

    Returns
    -------
    chip : numpy.ndarray
        uint8 ``(size, size, 3)``; black where the chip reaches outside the photo.
    transform : numpy.ndarray
        float64 ``(2, 3)`` affine map from chip pixel ``(col, row, 1)`` to photo
        ``(x, y)``, so ``transform @ [c, r, 1]`` is where chip pixel ``(r, c)``
        came from (use it to carry maps computed on the chip back onto the photo).

    Raises
    ------
    InvalidInputError
        For an image of the wrong type, dtype or shape, landmarks that are not
        five finite points, or a bad size or padding.
    """
    image = check_image(image)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    size, padding = check_chip_args(size, padding)
    return _core.face_chip(image, check_landmarks(landmarks), size, padding)


#: insightface's ArcFace template for 112x112 chips (``arcface_dst``): the eye centres, the nose tip and the
#: mouth corners, image-left first, in chip pixels.
ARCFACE_TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                             [41.5493, 92.3655], [70.7299, 92.2041]])


def arcface_points(landmarks68: Any) -> np.ndarray:
    """The five points of ArcFace's template from dlib's 68 landmarks: eye centres, nose tip, mouth corners.

    The eye centres are the means of each eye's six landmarks (36-41 on the
    image's left, 42-47 on its right), the nose tip is point 30, the mouth
    corners 48 and 54 — the points face detectors such as RetinaFace give.
    """
    points = np.asarray(landmarks68, np.float64)
    if points.shape != (68, 2) or not np.all(np.isfinite(points)):
        raise InvalidInputError(f"landmarks68 must be 68 finite (x, y) points, got shape {points.shape}")
    return np.stack([points[36:42].mean(axis=0), points[42:48].mean(axis=0), points[30], points[48], points[54]])


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The least-squares similarity (rotation, uniform scale, translation) taking ``source`` onto ``target``.

    Umeyama's method, as ``skimage.transform.SimilarityTransform.estimate``
    (what insightface's ``norm_crop`` uses). Returns float64 ``(2, 3)``.
    """
    src, dst = np.asarray(source, np.float64), np.asarray(target, np.float64)
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    covariance = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(covariance)
    sign = np.diag([1.0, -1.0 if np.linalg.det(u) * np.linalg.det(vt) < 0 else 1.0])
    rotation = u @ sign @ vt
    variance = (src_c ** 2).sum() / len(src)
    if variance == 0:
        raise InvalidInputError("the points coincide: no similarity transform")
    scale = float(np.trace(np.diag(s) @ sign)) / variance
    translation = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, translation[:, None]])


def arcface_chip(image: np.ndarray, landmarks68: Any, size: int = 112) -> tuple[np.ndarray, np.ndarray]:
    """The face aligned as ArcFace models expect: the template's five points fitted to the face's, 112x112.

    The similarity from the chip's template points to the face's points
    (:func:`arcface_points`, :func:`similarity_transform`) becomes dlib's
    chip rectangle and angle, sampled by the same C kernel as dlib's chips
    (bilinear, with dlib's ``pyramid_down<2>`` anti-aliasing when the face is
    large; insightface's ``cv2.warpAffine`` samples without it).

    Returns ``(chip uint8 (size, size, 3), transform float64 (2, 3))``, the
    transform mapping chip ``(col, row, 1)`` to photo ``(x, y)``.
    """
    image = check_image(image)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if size != 112:
        raise InvalidInputError(f"the ArcFace template is for 112x112 chips, got size {size}")
    to_photo = similarity_transform(ARCFACE_TEMPLATE, arcface_points(landmarks68))
    a, b = to_photo[0, 0], to_photo[1, 0]  # [[a, -b], [b, a]]: scale k, angle theta
    k, angle = float(np.hypot(a, b)), float(np.arctan2(b, a))
    centre = to_photo @ np.array([(size - 1) / 2, (size - 1) / 2, 1.0])
    half = k * (size - 1) / 2  # dlib maps chip column cols-1 to the rectangle's right edge
    rect = (centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half, angle)
    return _core.extract_chip(image, rect, size, size)
