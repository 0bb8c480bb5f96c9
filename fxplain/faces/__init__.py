"""Faces in photos: dlib's CNN face detector, its 5-point landmarks and its aligned face chips.

>>> faces = fxplain.detect_faces("photo.jpg")          # [Face(box=..., confidence=...), ...]
>>> model.embed(faces[0])                              # its chip, aligned for the model
>>> model.embed("photo.jpg")                           # the largest face's chip

Every entry point that takes images turns them into chips through
:mod:`fxplain.faces.inputs` (:func:`to_pixel_batch`); new kinds of image
objects are taught to all of them at once with :func:`register_image_source`.

The pieces, one by one:

>>> detector = fxplain.faces.load_face_detector()
>>> [(box, confidence)] = detector.detect(photo)       # box: dlib's (left, top, right, bottom)
>>> sp = fxplain.faces.load_shape_predictor()
>>> landmarks = sp.predict(photo, box)
>>> chip, transform = fxplain.faces.face_chip(photo, np.floor(landmarks + 0.5))
>>> fxplain.load_model("dlib").embed(chip)           # dlib's face descriptor

All run in the C core and reproduce dlib 19.24 (``mmod_human_face_detector``
with ``cnn_face_detection_model_v1``'s upsampling, ``shape_predictor``,
``get_face_chip_details`` + ``extract_image_chip``); ``transform`` maps chip
pixels back onto the photo.

Layer: above :mod:`fxplain.runtime`, below :mod:`fxplain.models` (which imports :mod:`.inputs`).
"""

from . import regions
from .alignment import face_chip, face_chip_details
from .detector import FaceDetector, face_detector_path, load_face_detector
from .face import TEMPLATES, Face
from .inputs import (
    ImageSource,
    choose_face,
    detect_faces,
    register_image_source,
    to_pixel_batch,
    unregister_image_source,
)
from .shape_predictor import ShapePredictor, load_shape_predictor, shape_predictor_path

__all__ = [
           "TEMPLATES",
           "Face",
           "FaceDetector",
           "ImageSource",
           "ShapePredictor",
           "choose_face",
           "detect_faces",
           "face_chip",
           "face_chip_details",
           "face_detector_path",
           "load_face_detector",
           "load_shape_predictor",
           "regions",
           "register_image_source",
           "shape_predictor_path",
           "to_pixel_batch",
           "unregister_image_source",
]
