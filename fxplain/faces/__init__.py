"""Faces in photos: dlib's 5-point landmarks and its aligned face chips.

>>> sp = fxplain.faces.load_shape_predictor()
>>> landmarks = sp.predict(photo, box)               # box: dlib's (left, top, right, bottom)
>>> chip, transform = fxplain.faces.face_chip(photo, np.floor(landmarks + 0.5))
>>> fxplain.load_model("dlib").embed(chip)           # dlib's face descriptor

Both run in the C core and reproduce dlib 19.24 (``shape_predictor``,
``get_face_chip_details`` + ``extract_image_chip``); ``transform`` maps chip
pixels back onto the photo. Detection is not here yet: the box comes from a
detector (dlib's ``mmod_human_face_detector`` in dlib's own pipeline).

Layer: above :mod:`fxplain.models`, below :mod:`fxplain.methods`.
"""

from .alignment import face_chip, face_chip_details
from .shape_predictor import ShapePredictor, load_shape_predictor, shape_predictor_path

__all__ = ["ShapePredictor", "face_chip", "face_chip_details", "load_shape_predictor", "shape_predictor_path"]
