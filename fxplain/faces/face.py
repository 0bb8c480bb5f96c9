"""Faces found in a photo, and how a photo becomes a model's chip: :func:`detect_faces`, :class:`Face`.

``detect_faces`` runs dlib's pipeline on the C core — the CNN detector, the
5-point landmarks (rounded to whole pixels, as dlib stores them), and, on
demand, the aligned chip. Registering :func:`align_face` with
:mod:`fxplain._util.images` (done when this package is imported) lets every
entry point that takes images (``model.embed``, ``model.verify``,
``Explainer.explain``, the CLI) take photos: a photo that is not already a
chip of the model's size is replaced by the chip of its largest face (or the
one ``face=`` chooses, :func:`choose_face`), and a :class:`Face` by its own
chip.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._util.errors import InvalidInputError
from .._util.images import check_face_choice, is_photo, load_photo, register_photo_aligner
from .alignment import arcface_chip, face_chip
from .detector import load_face_detector
from .shape_predictor import load_shape_predictor, shape_predictor_68_path

#: The chip templates fxplain knows, by the model's input size: dlib's
#: ``get_face_chip_details(shape, 150, 0.25)`` on its 5 landmarks for 150x150
#: models, and insightface's ArcFace five-point template (eye centres, nose
#: tip, mouth corners from dlib's 68 landmarks) for 112x112 models.
TEMPLATES = {(150, 150): "dlib", (112, 112): "arcface"}


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
    """

    box: tuple[int, int, int, int]
    confidence: float
    landmarks: np.ndarray = field(repr=False)
    photo: np.ndarray = field(repr=False)
    source: str = "<array>"
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
        """The face as JSON-able data (box, confidence, landmarks, chip-to-photo transform, source)."""
        return {"box": list(self.box), "confidence": self.confidence, "landmarks": self.landmarks.tolist(),
                "chip_to_photo": self.chip_and_transform(model)[1].tolist(), "source": self.source,
                "photo_size": [int(self.photo.shape[0]), int(self.photo.shape[1])]}

    def aligned_chip(self, size: tuple[int, int]) -> np.ndarray:
        """The chip for a model of input ``size`` (what image input calls for a Face)."""
        return self._aligned(tuple(size))[0]

    def _aligned(self, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        if _template(size, self.source) == "arcface":
            return arcface_chip(self.photo, self.landmarks68, size[0])
        return face_chip(self.photo, self.landmarks, size[0], 0.25)


def detect_faces(image: Any, *, upsample: int = 0, min_confidence: float = 0.0) -> list[Face]:
    """The faces in a photo, most confident first.

    Parameters
    ----------
    image : path, PIL image or array
        An RGB photo (uint8 ``(H, W, 3)``, or a file Pillow reads).
    upsample : int
        Upsample the photo this many times before detecting (finds faces down
        to about 40 pixels at 0, 20 at 1), as dlib's Python
        ``cnn_face_detection_model_v1(img, upsample)``; boxes are in the
        original photo's pixels.
    min_confidence : float
        dlib's ``adjust_threshold``: detections scoring below it are dropped.

    Returns
    -------
    list of Face
        Sorted by confidence, highest first; empty when there is none.
    """
    photo, source = load_photo(image)
    found = _detector().detect(photo, upsample=upsample, min_confidence=min_confidence)
    predictor = _predictor()
    return [Face(box=tuple(int(v) for v in box), confidence=float(confidence),
                 landmarks=np.floor(predictor.predict(photo, box) + 0.5), photo=photo, source=source)
            for box, confidence in found]


def align_face(photo: np.ndarray, size: tuple[int, int], name: str, face: Any = "largest") -> np.ndarray:
    """The chip of the chosen face of ``photo`` for a model of input ``size``; InvalidInputError if none.

    See :func:`choose_face`; this is what image inputs call for a photo.
    """
    _template(tuple(size), name)  # a model fxplain has no template for: say so before detecting
    return choose_face(photo, name, face).aligned_chip(size)


def face_in(image: Any, size: tuple[int, int], face: Any = "largest") -> tuple[Face | None, Any]:
    """The Face an image input stands for, and what to take the pixels from.

    A Face gives itself; a photo — a uint8 RGB image (array, file or PIL
    image) that is not of the model's input ``size`` — its chosen face
    (:func:`choose_face`); a chip ``None`` and its decoded pixels (so a file
    is read once). Anything else (float pixels, batches, bad input) gives
    ``(None, image)``, left to the image checks.
    """
    face = check_face_choice(face)
    if isinstance(image, Face):
        return image, image
    try:
        photo, name = load_photo(image)
    except InvalidInputError:
        return None, image
    if not is_photo(photo, size):
        return None, photo
    _template(tuple(size), name)
    chosen = choose_face(photo, name, face)
    return chosen, chosen


def choose_face(photo: np.ndarray, name: str, face: Any = "largest") -> Face:
    """The face of ``photo`` that stands for it; InvalidInputError naming ``name`` if there is none.

    Parameters
    ----------
    photo : numpy.ndarray
        uint8 ``(H, W, 3)``.
    name : str
        The photo's name in errors and in the Face's ``source``.
    face : str or int
        ``"largest"`` (most pixels in its box; default), ``"most_confident"``,
        or the index of the face in :func:`detect_faces` order (most confident
        first). Faces are detected at upsample 0, and at upsample 1 when there
        is none (small faces), as far as the photo's size allows.
    """
    face = check_face_choice(face)
    faces = detect_faces(photo)
    if not faces:
        try:
            faces = detect_faces(photo, upsample=1)
        except InvalidInputError:  # too large to upsample: what upsample 0 found (nothing) stands
            faces = []
    if not faces:
        raise InvalidInputError(f"{name}: no face found in the {photo.shape[1]}x{photo.shape[0]} photo "
                                "(dlib's CNN detector, upsampled once); pass an aligned chip of the model's "
                                "size, or a Face from fxplain.detect_faces")
    if face == "largest":
        chosen = max(faces, key=lambda f: f.area)
    elif face == "most_confident":
        chosen = faces[0]
    elif face < len(faces):
        chosen = faces[face]
    else:
        raise InvalidInputError(f"{name}: face={face} asked for, but the photo has {len(faces)} "
                                f"face{'s' if len(faces) != 1 else ''} (0 to {len(faces) - 1}, most confident first)")
    return Face(chosen.box, chosen.confidence, chosen.landmarks, chosen.photo, name)


def _template(size: tuple[int, int], name: str) -> str:
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


def _predictor68():
    with _LOCK:
        if "predictor68" not in _LOADED:
            _LOADED["predictor68"] = load_shape_predictor(shape_predictor_68_path())
        return _LOADED["predictor68"]


register_photo_aligner(align_face)
