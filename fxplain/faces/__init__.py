"""Faces in photos: dlib's CNN face detector, its 5-point landmarks and its aligned face chips.

>>> faces = fxplain.detect_faces("photo.jpg")          # [Face(box=..., confidence=...), ...]
>>> model.embed(faces[0])                              # its chip, aligned for the model
>>> model.embed("photo.jpg")                           # the largest face's chip

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

Layer: above :mod:`fxplain.models`, below :mod:`fxplain.methods`.
"""

from .alignment import face_chip, face_chip_details
from .detector import FaceDetector, face_detector_path, load_face_detector
from .face import Face, align_face, choose_face, detect_faces, face_in
from .shape_predictor import ShapePredictor, load_shape_predictor, shape_predictor_path

__all__ = [
           "Face",
           "FaceDetector",
           "ShapePredictor",
           "align_face",
           "choose_face",
           "detect_faces",
           "face_chip",
           "face_chip_details",
           "face_detector_path",
           "face_in",
           "load_face_detector",
           "load_shape_predictor",
           "shape_predictor_path",
]
