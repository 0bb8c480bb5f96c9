"""Turning what users pass as "images" into one float32 NHWC pixel batch.

Accepted: a uint8 or float array ``(H, W, 3)`` or ``(N, H, W, 3)`` (floats
are pixel values on the 0-255 scale, which is what perturbation methods
produce), a torch tensor of the same (or in torch's ``(N, 3, H, W)``
layout; detached, moved to the CPU), a PIL image, a path to an image file, a :class:`~fxplain.Face`, or
a list of these. A uint8 photo (array, file or PIL image) that is not of the
model's size (:func:`is_photo`) is replaced by the aligned chip of one of its
faces — the largest by default, see :func:`check_face_choice` — by the
aligner :mod:`fxplain.faces` registers; a Face by its own chip. Every
problem (wrong shape or dtype, NaN, an empty batch, an unreadable file, a
size that is not the model's) raises :class:`~fxplain.InvalidInputError`
naming what was expected and what was given.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InvalidInputError
from .files import require_regular_file

#: Largest pixel magnitude accepted: far outside 0-255 (noisy points on an
#: integration path stay within a few hundred), far below what overflows.
MAX_ABS_PIXEL = 1e4


#: Largest image read from a file (about 8k x 6k): larger ones are refused before decoding.
MAX_IMAGE_PIXELS = 50_000_000


def _from_file(path: Path) -> np.ndarray:
    require_regular_file(path, "image file", InvalidInputError)
    return decode_image(path, str(path))


def decode_image(source: Any, name: str) -> np.ndarray:
    """Decode an image file (a path or a binary file object) to ``(H, W, 3)`` uint8; ``name`` names it in errors."""
    from PIL import Image

    try:
        with Image.open(source) as img:
            # open() reads only the header: refuse a decompression bomb before decoding it
            if img.width * img.height > MAX_IMAGE_PIXELS:
                raise InvalidInputError(f"image file {name} is {img.width}x{img.height} pixels, more than the "
                                        f"{MAX_IMAGE_PIXELS} fxplain reads")
            return np.asarray(img.convert("RGB"))
    except InvalidInputError:
        raise
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types on damaged files; all mean "unreadable"
        raise InvalidInputError(f"cannot read image file {name}: {type(exc).__name__}: {exc}") from None


#: How a photo that is not a chip of the model's size becomes one:
#: ``align(photo uint8 (H, W, 3), size (H, W), name, face choice) -> chip``.
#: The layer that detects and aligns faces (fxplain.faces) registers it, so
#: that this bottom layer takes photos without importing the layers above it.
_photo_aligner: Callable[[np.ndarray, tuple[int, int], str, Any], np.ndarray] | None = None

#: The named ways to choose a photo's face (an int picks by index).
FACE_CHOICES = ("largest", "most_confident")


def register_photo_aligner(align: Callable[[np.ndarray, tuple[int, int], str, Any], np.ndarray]) -> None:
    """Make ``align`` turn photos into chips wherever images are taken (see :data:`_photo_aligner`)."""
    global _photo_aligner
    _photo_aligner = align


def is_photo(image: Any, size: tuple[int, int]) -> bool:
    """Whether ``image`` (an array) is a photo to detect faces in for a model of input ``size``.

    A photo is uint8 RGB ``(H, W, 3)`` and not already ``size``; float pixels
    never are (they come from perturbations and reconstructions of chips).
    """
    return isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 \
        and image.shape[2] == 3 and image.shape[:2] != tuple(size)


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


def load_photo(image: Any) -> tuple[np.ndarray, str]:
    """A photo as uint8 ``(H, W, 3)`` RGB and the name of its source (path, PIL image or uint8 array)."""
    name = str(image) if isinstance(image, (str, os.PathLike)) else "<array>"
    photo = _one(image, "photo", None)
    if photo.dtype != np.uint8 or photo.ndim != 3 or photo.shape[2] != 3:
        raise InvalidInputError(f"{name}: a photo must be uint8 (H, W, 3) RGB, got {photo.dtype} {photo.shape}")
    return photo, name


def _one(item: Any, where: str, size: tuple[int, int] | None, face: Any = "largest") -> np.ndarray:
    """A single image as an (H, W, 3) array (uint8 or float); a photo becomes the chip of ``size`` if it can."""
    if hasattr(item, "aligned_chip"):  # a Face: its own chip
        if size is None:
            raise InvalidInputError(f"{where}: expected a photo, got a Face")
        return item.aligned_chip(size)
    if isinstance(item, (str, os.PathLike)):
        return _aligned(_from_file(Path(item)), size, str(item), face)
    return _aligned(_array(item, where), size, where, face)


def _aligned(image: np.ndarray, size: tuple[int, int] | None, name: str, face: Any) -> np.ndarray:
    """``image``, or the chip of its chosen face when it is a photo (:func:`is_photo`)."""
    if size is None or _photo_aligner is None or not is_photo(image, size):
        return image
    return _photo_aligner(image, tuple(size), name, face)


def _from_tensor(item: Any) -> Any:
    """A torch tensor as a NumPy array (detached, on the CPU); images (C, H, W) / (N, C, H, W) made channels-last.

    NumPy's layout is channels-last; a tensor whose last axis is not 3 but
    whose channel axis (0 of 3, 1 of 4) is 3 is taken as torch's CHW layout.
    """
    if not (hasattr(item, "detach") and hasattr(item, "cpu") and hasattr(item, "numpy")):
        return item
    arr = item.detach().cpu().numpy()
    if arr.ndim == 3 and arr.shape[-1] != 3 and arr.shape[0] == 3:
        arr = arr.transpose(1, 2, 0)
    elif arr.ndim == 4 and arr.shape[-1] != 3 and arr.shape[1] == 3:
        arr = arr.transpose(0, 2, 3, 1)
    return np.ascontiguousarray(arr)


def _array(item: Any, where: str) -> np.ndarray:
    item = _from_tensor(item)
    try:
        from PIL import Image

        if isinstance(item, Image.Image):
            return np.asarray(item.convert("RGB"))
    except ImportError:  # pragma: no cover - Pillow is a dependency
        pass
    if isinstance(item, np.ndarray):
        if item.ndim != 3:
            raise InvalidInputError(f"{where}: expected an image of shape (H, W, 3), got shape {item.shape}")
        return item
    raise InvalidInputError(f"{where}: expected an array, PIL image or file path, got {type(item).__name__}")


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


def to_pixel_batch(images: Any, size: tuple[int, int], *, resize: bool = False,
                   face: Any = "largest") -> np.ndarray:
    """Convert ``images`` to a C-contiguous float32 array ``(N, H, W, 3)`` of 0-255 pixels.

    Parameters
    ----------
    images
        See the module docstring.
    size
        ``(H, W)`` the model expects.
    resize
        If False (default), images of another size are an error. If True, they
        are resized bilinearly to ``size`` — only sensible for face crops that
        are already aligned like the model's chips, never for whole photos.
    face
        Which face of each photo stands for it (:func:`check_face_choice`).
    """
    face = check_face_choice(face)
    images = _from_tensor(images)
    if isinstance(images, (list, tuple)):
        if len(images) == 0:
            raise InvalidInputError("expected at least one image, got an empty list")
        arrays = [_one(item, f"image {i}", None if resize else size, face) for i, item in enumerate(images)]
        shapes = {a.shape for a in arrays}
        if len(shapes) > 1 and not resize:
            raise InvalidInputError(f"images in one batch must share a size, got {sorted(shapes)}")
        # the list is joined as float32: whether the user gave floats decides the 0-1 check
        given_floats = any(np.issubdtype(a.dtype, np.floating) for a in arrays)
        batch_list = [np.asarray(a, np.float32)[None] for a in arrays]
        if resize:
            batch_list = [_resize(b, size) if b.shape[1:3] != size else b for b in batch_list]
        batch = np.concatenate(batch_list, axis=0)
    elif isinstance(images, np.ndarray) and images.ndim == 4:
        batch = images
        given_floats = np.issubdtype(batch.dtype, np.floating)
    else:
        batch = _one(images, "image", None if resize else size, face)[None]
        given_floats = np.issubdtype(batch.dtype, np.floating)

    if batch.dtype != np.uint8 and not np.issubdtype(batch.dtype, np.floating):
        raise InvalidInputError(f"images must be uint8 or floating point (0-255 scale), got dtype {batch.dtype}")
    if batch.shape[0] == 0:
        raise InvalidInputError("expected at least one image, got an empty batch")
    if batch.shape[-1] != 3:
        raise InvalidInputError(f"images must have 3 colour channels (RGB) in the last axis, got shape {batch.shape}")
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
