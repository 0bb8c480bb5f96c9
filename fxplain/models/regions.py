"""Facial regions of aligned chips: where eyes, nose and mouth lie in a model's input.

Used to plant differences (evaluation) and to swap facial parts between
chips (decoder training augmentation).
"""

from __future__ import annotations

#: Facial regions of dlib's aligned 150x150 chips, (top, left, bottom, right),
#: read off the mean of the johns chips (eyes at rows ~45, nose tip ~80, mouth ~105).
FACE_REGIONS_150: dict[str, tuple[int, int, int, int]] = {
    "eyes": (32, 22, 60, 128),
    "nose": (58, 52, 92, 98),
    "mouth": (92, 42, 122, 108),
}
