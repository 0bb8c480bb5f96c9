"""Every face in a set of photos as an aligned chip: training material from ordinary photos.

Offline face data is scarce on a machine without model hubs, so the photos
that ship with fxplain's dependencies are put to work: dlib's
``examples/faces`` (the ``bald_guys`` collage, Tom Cruise, nine PASCAL
street photos; ``dogs.jpg`` has no face) and matplotlib's Grace Hopper.
(scikit-image's astronaut is left out on purpose: scikit-image is not a
dependency, and the default decoder must not depend on what else happens to
be installed; pass ``skimage.data.astronaut()`` in a list to use it.)
:func:`faces_in_photos` turns any photos into chips of *every* face the
detector finds (not only the largest), for :func:`fxplain.train_decoder`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .._util.errors import InvalidInputError
from .inputs import detect_faces

#: Detector upsampling for collecting faces: the street photos' faces are small.
COLLECT_UPSAMPLE = 1
#: Detections below this confidence are not taken as training faces.
COLLECT_MIN_CONFIDENCE = 0.5
#: Faces smaller than this (box side, photo pixels) are too blurred to teach a 150-pixel decoder.
COLLECT_MIN_SIDE = 40


def example_photos() -> list[Path]:
    """The photos with faces that come with fxplain's dependencies (see the module doc).

    dlib's examples arrive with the johns faces (:func:`fxplain.datasets.examples_dir`).
    """
    from .. import datasets

    folder = datasets.examples_dir() / "faces"
    photos = [p for p in sorted(folder.glob("*.jpg")) if p.name != "dogs.jpg"]
    import matplotlib

    hopper = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    if hopper.is_file():
        photos.append(hopper)
    return photos


def faces_in_photos(photos: Any, size: tuple[int, int], *, upsample: int = COLLECT_UPSAMPLE,
                    min_confidence: float = COLLECT_MIN_CONFIDENCE, min_side: int = COLLECT_MIN_SIDE) -> np.ndarray:
    """Chips of every face found in ``photos`` (paths or uint8 RGB arrays), aligned for a ``size`` model.

    Returns uint8 ``(N, H, W, 3)`` in photo order, most confident first within
    a photo; faces below ``min_confidence`` or with a box side under
    ``min_side`` photo pixels are left out. A photo without faces adds none;
    if no photo has one, :class:`~fxplain.InvalidInputError` is raised.
    """
    if isinstance(photos, (str, os.PathLike, np.ndarray)):
        photos = [photos]
    chips = []
    for photo in photos:
        for face in detect_faces(photo, upsample=upsample, min_confidence=min_confidence):
            left, top, right, bottom = face.box
            if min(right - left, bottom - top) + 1 >= min_side:
                chips.append(face.aligned_chip(tuple(size)))
    if not chips:
        raise InvalidInputError("no face found in the photos")
    return np.stack(chips).astype(np.uint8)


def example_faces(size: tuple[int, int] = (150, 150)) -> np.ndarray:
    """Every face of :func:`example_photos` as an aligned uint8 chip of ``size`` (see :func:`faces_in_photos`)."""
    return faces_in_photos(example_photos(), size)


__all__ = ["example_faces", "example_photos", "faces_in_photos"]
