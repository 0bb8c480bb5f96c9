"""A face found in a photo (:class:`Face`), how faces are found (:func:`find_faces`), and the chip templates.

``find_faces`` runs dlib's pipeline on the C core — the CNN detector and the
5-point landmarks (rounded to whole pixels, as dlib stores them); a Face
aligns itself as a model's chip on demand. Turning user inputs into chips
(photos, face choices) is :mod:`fxplain.faces.inputs`.
"""

from __future__ import annotations

import hashlib
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._util.errors import InvalidInputError, LicenceWarning
from .alignment import arcface_chip, face_chip
from .detector import load_face_detector
from .shape_predictor import load_shape_predictor, shape_predictor_68_path

#: The chip templates fxplain knows, by the model's input size: dlib's
#: ``get_face_chip_details(shape, 150, 0.25)`` on its public-domain 5
#: landmarks for 150x150 models, and insightface's ArcFace five-point
#: template (eye centres, nose tip, mouth corners) for 112x112 models — those
#: points are not among dlib's 5, so they come from dlib's 68-point model,
#: whose training data (iBUG 300-W) excludes commercial use (docs/photos.md).
TEMPLATES = {(150, 150): "dlib", (112, 112): "arcface"}

#: Detection settings of ``upsample="auto"``: 0, then 1 when 0 finds nothing.
AUTO_UPSAMPLE = (0, 1)


@dataclass(frozen=True)
class Face:
    """One face in a photo: where it is, how sure the detector is, its landmarks and its photo.

    Attributes
    ----------
    box : tuple of 4 ints
        ``(left, top, right, bottom)`` in photo pixels, dlib's inclusive rectangle.
    confidence : float
        The detector's score (dlib's ``mmod_rectangle.detection_confidence``).
    landmarks : numpy.ndarray
        float64 ``(5, 2)`` ``(x, y)`` photo pixels in dlib's 5-point order
        (eye corners, then below the nose), rounded as dlib rounds them.
    photo : numpy.ndarray
        The uint8 ``(H, W, 3)`` photo the face was found in.
    source : str
        Where the photo came from (its path, or ``"<array>"``).
    upsample : int
        How many times the photo was upsampled when this face was found.
    """

    box: tuple[int, int, int, int]
    confidence: float
    landmarks: np.ndarray = field(repr=False)
    photo: np.ndarray = field(repr=False)
    source: str = "<array>"
    upsample: int = 0
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def landmarks68(self) -> np.ndarray:
        """dlib's 68 landmarks of the face (float64 ``(68, 2)``), predicted on first use (for ArcFace chips)."""
        if "landmarks68" not in self._cache:
            self._cache["landmarks68"] = _predictor68().predict(self.photo, self.box)
        return self._cache["landmarks68"]

    @property
    def area(self) -> int:
        """Pixels in :attr:`box`."""
        left, top, right, bottom = self.box
        return (right - left + 1) * (bottom - top + 1)

    def chip(self, model: Any = None) -> np.ndarray:
        """The face aligned as ``model``'s input chip (dlib's 150x150 by default), uint8 ``(H, W, 3)``."""
        return self.chip_and_transform(model)[0]

    def chip_and_transform(self, model: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """The chip and the float64 ``(2, 3)`` map from chip ``(col, row, 1)`` to photo ``(x, y)``."""
        return self._aligned(tuple(model.input_size) if model is not None else (150, 150))

    def record(self, model: Any = None) -> dict:
        """The face as JSON-able data: box, confidence, landmarks, chip-to-photo transform, source, photo size,
        the upsampling it was found at, the photo's SHA-256 (:func:`photo_digest`) and, when they are known,
        the 68 landmarks."""
        return {"box": list(self.box), "confidence": self.confidence, "landmarks": self.landmarks.tolist(),
                "chip_to_photo": self.chip_and_transform(model)[1].tolist(), "source": self.source,
                "photo_size": [int(self.photo.shape[0]), int(self.photo.shape[1])], "upsample": self.upsample,
                "photo_sha256": self.photo_sha256,
                # known when the 68-point model aligned the chip (ArcFace): the facial regions use them
                **({"landmarks68": self._cache["landmarks68"].tolist()} if "landmarks68" in self._cache else {})}

    @property
    def photo_sha256(self) -> str:
        """:func:`photo_digest` of the photo, computed once per Face (every explanation's record holds it)."""
        if "photo_sha256" not in self._cache:
            self._cache["photo_sha256"] = photo_digest(self.photo)
        return self._cache["photo_sha256"]

    def aligned_chip(self, size: tuple[int, int]) -> np.ndarray:
        """The chip for a model of input ``size`` (what image input calls for a Face)."""
        return self._aligned(tuple(size))[0]

    def _aligned(self, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        if template_for(size, self.source) == "arcface":
            return arcface_chip(self.photo, self.landmarks68, size[0])
        return face_chip(self.photo, self.landmarks, size[0], 0.25)


def photo_digest(photo: np.ndarray) -> str:
    """SHA-256 of a photo's pixels (shape and RGB bytes): what a saved explanation checks a re-attached photo by."""
    digest = hashlib.sha256(repr(tuple(photo.shape)).encode())
    digest.update(np.ascontiguousarray(photo, np.uint8).tobytes())
    return digest.hexdigest()


def find_faces(photo: np.ndarray, source: str, *, upsample: int | str = "auto",
               min_confidence: float = 0.0) -> list[Face]:
    """The faces of a uint8 RGB ``photo``, most confident first (see :func:`fxplain.faces.detect_faces`)."""
    if isinstance(upsample, str):
        if upsample != "auto":
            raise InvalidInputError(f"upsample must be 'auto' or an integer from 0 to 4, got {upsample!r}")
        faces: list[Face] = []
        for level in AUTO_UPSAMPLE:
            try:
                faces = find_faces(photo, source, upsample=level, min_confidence=min_confidence)
            except InvalidInputError:
                if level == 0:
                    raise
                break  # too large to upsample: what the lower level found (nothing) stands
            if faces:
                break
        return faces
    found = _detector().detect(photo, upsample=upsample, min_confidence=min_confidence)
    predictor = _predictor()
    return [Face(box=tuple(int(v) for v in box), confidence=float(confidence),
                 landmarks=np.floor(predictor.predict(photo, box) + 0.5), photo=photo, source=source,
                 upsample=int(upsample))
            for box, confidence in found]


def template_for(size: tuple[int, int], name: str) -> str:
    """The alignment template of a model of input ``size`` (:data:`TEMPLATES`); InvalidInputError if none."""
    if size not in TEMPLATES:
        raise InvalidInputError(f"{name}: fxplain has no face alignment template for {size[0]}x{size[1]} models "
                                f"(it has {sorted(TEMPLATES)}); pass chips aligned for the model")
    return TEMPLATES[size]


_LOCK = threading.Lock()
_LOADED: dict[str, Any] = {}


def _detector():
    with _LOCK:
        if "detector" not in _LOADED:
            _LOADED["detector"] = load_face_detector()
        return _LOADED["detector"]


def _predictor():
    with _LOCK:
        if "predictor" not in _LOADED:
            _LOADED["predictor"] = load_shape_predictor()
        return _LOADED["predictor"]


#: What the one-time warning on the 68-point model says (docs/photos.md has the details).
LANDMARKS_68_LICENCE = (
    "112x112 (ArcFace-template) chips are aligned with dlib's 68-point landmark model, trained on the iBUG "
    "300-W dataset, whose terms exclude commercial use; align with your own landmarks and pass chips if "
    "that matters to you (dlib's 150x150 chips use the public-domain 5-point model). See docs/photos.md.")


def _predictor68():
    with _LOCK:
        if "predictor68" not in _LOADED:
            _LOADED["predictor68"] = load_shape_predictor(shape_predictor_68_path())
            # once per process, when the model is first needed
            warnings.warn(LANDMARKS_68_LICENCE, LicenceWarning, stacklevel=4)
        return _LOADED["predictor68"]
