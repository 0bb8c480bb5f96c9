"""The one way in: every image input becomes a model's chip here.

Every entry point that takes images — ``model.embed``, ``model.verify``,
``Explainer.explain``, calibration, evaluation, decoder training, the CLI —
calls :func:`to_pixel_batch` (or :func:`resolve_image` when it also keeps the
:class:`~fxplain.Face` a chip was cut from). The path of one input:

1. **Source → array.** A path is read by :func:`fxplain._util.images.read_image_file`
   (regular files only, bounded size); a PIL image, a torch tensor and any
   type registered with :func:`register_image_source` are converted by their
   source; a NumPy array is taken as it is; a :class:`~fxplain.Face` is
   already a face.
2. **Colours → RGB.** Grayscale ``(H, W)`` / ``(H, W, 1)`` is replicated to
   three channels; ``channels="BGR"`` (or a source registered as BGR, e.g.
   OpenCV frames) is reversed to RGB. Nothing else is guessed: any other
   channel count is an error.
3. **Photo → face → chip.** A uint8 RGB image that is not of the model's
   input size is a photo (:func:`is_photo`): its faces are found by
   :func:`detect_faces` (dlib's CNN detector and 5-point landmarks on the C
   core), one is chosen (:func:`choose_face`: ``"largest"``,
   ``"most_confident"`` or an index into the list :func:`detect_faces`
   returns), and it is aligned as the model's chip by the template of its
   input size (:data:`fxplain.faces.face.TEMPLATES`).
4. **Checks.** The batch is float32 ``(N, H, W, 3)`` on the 0-255 scale,
   finite, of the model's size; every problem raises
   :class:`~fxplain.InvalidInputError` naming what was expected and given.

Layer: :mod:`fxplain.faces` sits below :mod:`fxplain.models`, which imports
this module; nothing here knows about models beyond their input size.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._util.errors import InvalidInputError
from .._util.images import read_image_file
from .face import Face, find_faces, template_for

#: Largest pixel magnitude accepted: far outside 0-255 (noisy points on an
#: integration path stay within a few hundred), far below what overflows.
MAX_ABS_PIXEL = 1e4

#: The named ways to choose a photo's face (an int picks by index).
FACE_CHOICES = ("largest", "most_confident")

#: Channel orders of array inputs; files and PIL images are always decoded as RGB.
CHANNELS = ("RGB", "BGR")

#: How many times a registered source may hand over to another source (a
#: source returning a PIL image, say) before fxplain calls it a loop.
_MAX_SOURCE_HOPS = 4


# ---- image sources: the extension point ------------------------------------


@dataclass(frozen=True)
class ImageSource:
    """A kind of object fxplain takes as an image: how to recognise it and how to read its pixels.

    ``matches(item) -> bool``; ``to_array(item)`` returns a NumPy array
    ``(H, W, 3)``, ``(N, H, W, 3)``, grayscale ``(H, W)`` / ``(H, W, 1)``, or
    anything else fxplain takes (a PIL image, a path, a Face); ``channels``
    is the channel order of the arrays it returns.
    """

    name: str
    matches: Callable[[Any], bool]
    to_array: Callable[[Any], Any]
    channels: str = "RGB"


_SOURCES_LOCK = threading.Lock()
_USER_SOURCES: tuple[ImageSource, ...] = ()


def register_image_source(kind: type | Callable[[Any], bool], to_array: Callable[[Any], Any], *,
                          channels: str = "RGB", name: str | None = None) -> ImageSource:
    """Teach every fxplain entry point to take a new kind of image object.

    Parameters
    ----------
    kind : type or callable
        The class of the objects (``isinstance`` decides), or a predicate
        ``kind(item) -> bool``.
    to_array : callable
        ``to_array(item)`` returns the pixels: a NumPy array ``(H, W, 3)``,
        a batch ``(N, H, W, 3)``, grayscale ``(H, W)`` / ``(H, W, 1)``
        (replicated to RGB), or a PIL image, a file path or a
        :class:`~fxplain.Face`. uint8 arrays that are not of the model's
        size are photos, whose faces are detected and aligned.
    channels : {"RGB", "BGR"}
        Channel order of the arrays ``to_array`` returns (OpenCV's is BGR).
    name : str, optional
        Name of the source in errors and in a Face's ``source``.

    Returns
    -------
    ImageSource
        The registered source (sources registered later are tried first,
        before fxplain's own PIL and torch sources).

    Examples
    --------
    >>> fxplain.faces.register_image_source(MyFrame, lambda f: f.pixels, channels="BGR")
    >>> model.embed(my_frame)
    """
    global _USER_SOURCES
    channels = check_channels(channels)
    if not callable(to_array):
        raise InvalidInputError(f"to_array must be callable, got {type(to_array).__name__}")
    if isinstance(kind, type):
        cls = kind
        matches = lambda item: isinstance(item, cls)  # a one-line predicate
        label = name or cls.__name__
    elif callable(kind):
        matches, label = kind, name or getattr(kind, "__name__", "image source")
    else:
        raise InvalidInputError(f"kind must be a type or a predicate, got {type(kind).__name__}")
    source = ImageSource(str(label), matches, to_array, channels)
    with _SOURCES_LOCK:
        _USER_SOURCES = (source,) + _USER_SOURCES
    return source


def unregister_image_source(source: ImageSource) -> None:
    """Remove a source returned by :func:`register_image_source` (no-op if it is not registered)."""
    global _USER_SOURCES
    with _SOURCES_LOCK:
        _USER_SOURCES = tuple(s for s in _USER_SOURCES if s is not source)


def _is_tensor(item: Any) -> bool:
    return hasattr(item, "detach") and hasattr(item, "cpu") and hasattr(item, "numpy")


def _tensor_to_array(item: Any) -> np.ndarray:
    """A torch tensor as a NumPy array (detached, on the CPU); torch's (C, H, W) / (N, C, H, W) made channels-last.

    A tensor whose last axis is not 3 but whose channel axis (0 of 3, 1 of 4)
    is 3 is taken as torch's CHW layout.
    """
    arr = item.detach().cpu().numpy()
    if arr.ndim == 3 and arr.shape[-1] != 3 and arr.shape[0] == 3:
        arr = arr.transpose(1, 2, 0)
    elif arr.ndim == 4 and arr.shape[-1] != 3 and arr.shape[1] == 3:
        arr = arr.transpose(0, 2, 3, 1)
    return np.ascontiguousarray(arr)


def _is_pil(item: Any) -> bool:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a dependency
        return False
    return isinstance(item, Image.Image)


def _pil_to_array(item: Any) -> np.ndarray:
    return np.asarray(item.convert("RGB"))


#: fxplain's own sources, tried after the user's.
_BUILTIN_SOURCES = (ImageSource("torch tensor", _is_tensor, _tensor_to_array),
                    ImageSource("PIL image", _is_pil, _pil_to_array))


def _source_of(item: Any) -> ImageSource | None:
    for source in _USER_SOURCES + _BUILTIN_SOURCES:
        if source.matches(item):
            return source
    return None


# ---- choices and checks ----------------------------------------------------


def check_channels(channels: Any) -> str:
    """``channels`` checked as one of :data:`CHANNELS`."""
    if channels not in CHANNELS:
        raise InvalidInputError(f"channels must be 'RGB' or 'BGR' (the channel order of array inputs), "
                                f"got {channels!r}")
    return channels


def check_face_choice(face: Any) -> str | int:
    """``face`` checked as a choice of which face of a photo stands for it (InvalidInputError if not one).

    ``"largest"`` (most pixels in its box; the default), ``"most_confident"``
    (the detector's best), or an int ``i``: the i-th face of
    ``fxplain.detect_faces(photo)`` (most confident first).
    """
    if isinstance(face, str) and face in FACE_CHOICES:
        return face
    if isinstance(face, (int, np.integer)) and not isinstance(face, bool) and face >= 0:
        return int(face)
    raise InvalidInputError(f"face must be one of {FACE_CHOICES} or a face index >= 0 (the order of "
                            f"fxplain.detect_faces, most confident first), got {face!r}")


def pair_face_choices(face: Any) -> tuple[str | int, str | int]:
    """``face=`` of a pair entry point: one choice for both sides, or a ``(choice_a, choice_b)`` pair."""
    if isinstance(face, (tuple, list)):
        if len(face) != 2:
            raise InvalidInputError(f"face must be one choice or a pair (choice_a, choice_b), got {face!r}")
        return check_face_choice(face[0]), check_face_choice(face[1])
    choice = check_face_choice(face)
    return choice, choice


def is_photo(image: Any, size: tuple[int, int]) -> bool:
    """Whether ``image`` (an array) is a photo to detect faces in for a model of input ``size``.

    A photo is uint8 RGB ``(H, W, 3)`` and not already ``size``; float pixels
    never are (they come from perturbations and reconstructions of chips).
    """
    return isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 \
        and image.shape[2] == 3 and image.shape[:2] != tuple(size)


def _to_rgb(arr: np.ndarray, channels: str, where: str) -> np.ndarray:
    """``arr`` with grayscale replicated to 3 channels and BGR reversed to RGB; any other layout refused."""
    if arr.ndim == 2 or (arr.ndim in (3, 4) and arr.shape[-1] == 1):
        gray = arr if arr.ndim == 2 else arr[..., 0]
        return np.ascontiguousarray(np.repeat(gray[..., None], 3, axis=-1))
    if arr.ndim not in (3, 4) or arr.shape[-1] != 3:
        raise InvalidInputError(f"{where}: images must have 3 colour channels (RGB) in the last axis — (H, W, 3) "
                                f"or a batch (N, H, W, 3) — or be grayscale (H, W) / (H, W, 1); got shape {arr.shape}")
    return np.ascontiguousarray(arr[..., ::-1]) if channels == "BGR" else arr


# ---- one input -------------------------------------------------------------


def _read(item: Any, where: str, channels: str) -> tuple[Any, str]:
    """One input as an RGB array (or a Face), and its name: files decoded, sources converted, colours fixed."""
    for _ in range(_MAX_SOURCE_HOPS):
        if isinstance(item, Face):
            return item, item.source
        if isinstance(item, (str, os.PathLike)):
            return read_image_file(Path(item)), str(item)  # files decode to RGB
        if isinstance(item, np.ndarray):
            return _to_rgb(item, channels, where), "<array>"
        source = _source_of(item)
        if source is None:
            break
        try:
            converted = source.to_array(item)
        except InvalidInputError:
            raise
        except Exception as exc:  # a user's converter may raise anything: say which source failed
            raise InvalidInputError(f"{where}: the {source.name} image source failed: "
                                    f"{type(exc).__name__}: {exc}") from exc
        if isinstance(converted, np.ndarray):
            name = "<array>" if source in _BUILTIN_SOURCES else f"<{source.name}>"
            return _to_rgb(converted, source.channels if source not in _BUILTIN_SOURCES else channels, where), name
        item = converted
    raise InvalidInputError(f"{where}: expected an array, PIL image, torch tensor, Face or file path (or an "
                            f"object of a source registered with fxplain.faces.register_image_source), got "
                            f"{type(item).__name__}")


def load_photo(image: Any, *, channels: str = "RGB") -> tuple[np.ndarray, str]:
    """A photo as uint8 ``(H, W, 3)`` RGB and the name of its source (path, PIL image, array, registered source)."""
    photo, name = _read(image, "photo", check_channels(channels))
    if isinstance(photo, Face):
        raise InvalidInputError("expected a photo, got a Face (its photo is face.photo)")
    if photo.dtype != np.uint8 or photo.ndim != 3:
        raise InvalidInputError(f"{name}: a photo must be uint8 (H, W, 3) RGB, got {photo.dtype} {photo.shape}")
    return photo, name


def detect_faces(image: Any, *, upsample: int | str = "auto", min_confidence: float = 0.0,
                 channels: str = "RGB") -> list[Face]:
    """The faces in a photo, most confident first — the list every ``face=`` index refers to.

    Parameters
    ----------
    image : path, PIL image, array or registered source
        A photo (uint8 ``(H, W, 3)`` RGB or grayscale, or a file Pillow reads).
    upsample : int or "auto"
        Upsample the photo this many times before detecting (finds faces down
        to about 40 pixels at 0, 20 at 1), as dlib's Python
        ``cnn_face_detection_model_v1(img, upsample)``; boxes are in the
        original photo's pixels. ``"auto"`` (default, and what every entry
        point that takes photos uses): 0, then 1 if that finds no face and
        the photo is small enough to upsample. Each Face records the
        upsampling it was found at (:attr:`Face.upsample`).
    min_confidence : float
        dlib's ``adjust_threshold``: detections scoring below it are dropped.
    channels : {"RGB", "BGR"}
        Channel order of an array photo.

    Returns
    -------
    list of Face
        Sorted by confidence, highest first; empty when there is none.
    """
    photo, source = load_photo(image, channels=channels)
    return find_faces(photo, source, upsample=upsample, min_confidence=min_confidence)


def choose_face(photo: np.ndarray, name: str, face: Any = "largest") -> Face:
    """The face of ``photo`` that stands for it; InvalidInputError naming ``name`` if there is none.

    Parameters
    ----------
    photo : numpy.ndarray
        uint8 ``(H, W, 3)`` RGB.
    name : str
        The photo's name in errors and in the Face's ``source``.
    face : str or int
        ``"largest"`` (most pixels in its box; default), ``"most_confident"``,
        or the index of the face in :func:`detect_faces` order (most confident
        first), with :func:`detect_faces`' default settings.
    """
    index, faces = choose_face_index(photo, name, face)
    return faces[index]


def choose_face_index(photo: np.ndarray, name: str, face: Any = "largest") -> tuple[int, list[Face]]:
    """:func:`choose_face` as the index of the chosen face in the list :func:`detect_faces` gives, and that list."""
    face = check_face_choice(face)
    faces = find_faces(photo, name)
    if not faces:
        raise InvalidInputError(f"{name}: no face found in the {photo.shape[1]}x{photo.shape[0]} photo "
                                "(dlib's CNN detector, upsampled once); pass an aligned chip of the model's "
                                "size, or a Face from fxplain.detect_faces")
    if face == "largest":
        return max(range(len(faces)), key=lambda k: faces[k].area), faces
    if face == "most_confident":
        return 0, faces
    if face < len(faces):
        return face, faces
    raise InvalidInputError(f"{name}: face={face} asked for, but the photo has {len(faces)} "
                            f"face{'s' if len(faces) != 1 else ''} (0 to {len(faces) - 1}, most confident first, "
                            "as fxplain.detect_faces and `fxplain faces` list them)")


def resolve_image(item: Any, size: tuple[int, int] | None, *, face: Any = "largest", channels: str = "RGB",
                  where: str = "image") -> tuple[np.ndarray, Face | None]:
    """One input as an RGB array — the chip of its chosen face when it is a photo — and that Face (or None).

    ``size`` is the model's ``(H, W)``; with ``None`` photos are returned as
    they are (``resize=True`` callers resize crops themselves).
    """
    image, name = _read(item, where, check_channels(channels))
    if isinstance(image, Face):
        if size is None:
            raise InvalidInputError(f"{where}: a Face is aligned for a model's input size; got no size to align to")
        return image.aligned_chip(tuple(size)), image
    if size is None or not is_photo(image, size):
        return image, None
    template_for(tuple(size), name)  # a model fxplain has no template for: say so before detecting
    chosen = choose_face(image, name, check_face_choice(face))
    return chosen.aligned_chip(tuple(size)), chosen


# ---- batches ---------------------------------------------------------------


def _resize(batch: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    out = np.empty((batch.shape[0], size[0], size[1], 3), np.float32)
    for i, img in enumerate(batch):
        channels = [Image.fromarray(np.ascontiguousarray(img[..., c], np.float32), mode="F")
                    .resize((size[1], size[0]), Image.BILINEAR) for c in range(3)]
        out[i] = np.stack([np.asarray(ch) for ch in channels], axis=-1)
    return out


def align_batch(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 ``(N, H, W, 3)`` images of another size, each taken as a photo: its largest face aligned as a chip of
    ``size``, as uint8 (johns' 150x150 dlib chips for a 112x112 model)."""
    return np.clip(np.rint(to_pixel_batch(list(images), size)), 0, 255).astype(np.uint8)


def to_pixel_batch(images: Any, size: tuple[int, int], *, resize: bool = False, face: Any = "largest",
                   channels: str = "RGB") -> np.ndarray:
    """Convert ``images`` to a C-contiguous float32 array ``(N, H, W, 3)`` of 0-255 RGB pixels.

    Parameters
    ----------
    images
        One image or a list of them: arrays (uint8, or floats on the 0-255
        scale), batches ``(N, H, W, 3)``, PIL images, torch tensors, file
        paths, :class:`~fxplain.Face` objects, registered sources (see the
        module docstring).
    size
        ``(H, W)`` the model expects.
    resize
        If False (default), images of another size are an error. If True, they
        are resized bilinearly to ``size`` — only sensible for face crops that
        are already aligned like the model's chips, never for whole photos.
    face
        Which face of each photo stands for it (:func:`check_face_choice`).
    channels
        Channel order of array inputs: ``"RGB"`` (default) or ``"BGR"``.
    """
    return to_pixel_batch_and_faces(images, size, resize=resize, face=face, channels=channels)[0]


def to_pixel_batch_and_faces(images: Any, size: tuple[int, int], *, resize: bool = False, face: Any = "largest",
                             channels: str = "RGB") -> tuple[np.ndarray, list[Face | None]]:
    """:func:`to_pixel_batch`, and the Face each image of the batch was cut from (None for chips)."""
    face = check_face_choice(face)
    channels = check_channels(channels)
    target = None if resize else tuple(size)
    if isinstance(images, (list, tuple)):
        if len(images) == 0:
            raise InvalidInputError("expected at least one image, got an empty list")
        resolved = [resolve_image(item, target, face=face, channels=channels, where=f"image {i}")
                    for i, item in enumerate(images)]
        arrays = [a for a, _ in resolved]
        faces = [f for _, f in resolved]
        for i, a in enumerate(arrays):
            if a.ndim != 3:
                raise InvalidInputError(f"image {i}: expected an image of shape (H, W, 3) in a list, got shape "
                                        f"{a.shape}")
        shapes = {a.shape for a in arrays}
        if len(shapes) > 1 and not resize:
            raise InvalidInputError(f"images in one batch must share a size, got {sorted(shapes)}")
        # the list is joined as float32: whether the user gave floats decides the 0-1 check
        given_floats = any(np.issubdtype(a.dtype, np.floating) for a in arrays)
        batch_list = [np.asarray(a, np.float32)[None] for a in arrays]
        if resize:
            batch_list = [_resize(b, size) if b.shape[1:3] != tuple(size) else b for b in batch_list]
        batch = np.concatenate(batch_list, axis=0)
    else:
        image, chosen = resolve_image(images, target, face=face, channels=channels)
        batch = image if image.ndim == 4 else image[None]
        faces = [chosen] * len(batch)
        given_floats = np.issubdtype(batch.dtype, np.floating)
    return _checked_batch(batch, size, resize, given_floats), faces


def _checked_batch(batch: np.ndarray, size: tuple[int, int], resize: bool, given_floats: bool) -> np.ndarray:
    """``batch`` as checked float32 pixels of ``size`` (or resized to it)."""
    if batch.dtype != np.uint8 and not np.issubdtype(batch.dtype, np.floating):
        raise InvalidInputError(f"images must be uint8 or floating point (0-255 scale), got dtype {batch.dtype}")
    if batch.shape[0] == 0:
        raise InvalidInputError("expected at least one image, got an empty batch")
    if batch.shape[1:3] != tuple(size):
        if not resize:
            # resize=True is not offered here: on a photo it squashes the whole
            # frame into a chip, and every pair of photos then "matches"
            raise InvalidInputError(
                f"images must be {size[0]}x{size[1]} aligned face chips, got {batch.shape[1]}x{batch.shape[2]}; "
                "photos (uint8 RGB, files or PIL images) are detected and aligned one by one, float arrays "
                "and batches of another size are not: pass them as a list of uint8 photos or as chips"
            )
        batch = _resize(np.asarray(batch, np.float32), size)
    batch = np.ascontiguousarray(batch, dtype=np.float32)
    if not np.all(np.isfinite(batch)):
        raise InvalidInputError("images contain NaN or infinite values")
    low, high = float(batch.min()), float(batch.max())
    if max(-low, high) > MAX_ABS_PIXEL:
        # finite but absurd values (3e38) overflow inside the network into
        # huge or non-finite embeddings and maps
        raise InvalidInputError(f"pixel values must lie on the 0-255 scale (within ±{MAX_ABS_PIXEL:g}); "
                                f"got a value of magnitude {max(-low, high):.3g}")
    if given_floats and 0.0 <= low and 0.0 < high <= 1.0:
        # a 0-1 image read as 0-255 is nearly black, and every pair of such
        # images "matches"; an all-zero image means the same on both scales
        raise InvalidInputError(
            "float images must hold pixel values on the 0-255 scale; these all lie in [0, 1], "
            "which looks like the 0-1 scale: multiply by 255 (or pass uint8 images)"
        )
    return batch
