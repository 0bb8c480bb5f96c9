"""Augmentation of aligned face chips, for training decoders on small sets.

Offline face data is scarce (55 johns chips), so each training image is
varied in ways that keep it an aligned face: horizontal flips, colour jitter
(brightness, contrast, per-channel gain), small geometric jitter (rotation,
scale, shift about the chip's centre), and swapping a facial part (eyes,
nose or mouth band, with a feathered edge) in from another chip. Every
augmented chip is re-embedded by the face model, so the decoder always learns
from a consistent (embedding, image) pair.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..models.regions import face_ellipse, face_regions


@dataclass(frozen=True)
class Augmentation:
    """Strengths of each augmentation (0 turns one off)."""

    flip: float = 0.5            # probability of a horizontal flip
    brightness: float = 0.15     # factor drawn from 1 ± brightness
    contrast: float = 0.15       # factor about the chip's mean, 1 ± contrast
    channel_gain: float = 0.06   # per-channel factor 1 ± channel_gain
    rotate_deg: float = 5.0      # rotation drawn from ± rotate_deg
    scale: float = 0.05          # zoom 1 ± scale
    shift: float = 4.0           # translation ± shift pixels (at 150 px, scaled with the chip)
    part_swap: float = 0.3       # probability of pasting one facial part from another chip

    def to_dict(self) -> dict:
        return dict(self.__dict__)


NO_AUGMENTATION = Augmentation(0, 0, 0, 0, 0, 0, 0, 0)


def augment(images: np.ndarray, indices: np.ndarray, rng: np.random.Generator, aug: Augmentation) -> np.ndarray:
    """Augmented copies of ``images[indices]``: float32 (len(indices), H, W, 3) on the 0-255 scale."""
    n, h, w, _ = images.shape
    out = np.empty((len(indices), h, w, 3), np.float32)
    for i, index in enumerate(indices):
        img = images[index].astype(np.float32)
        if aug.part_swap > 0 and n > 1 and rng.random() < aug.part_swap:
            donor = images[(index + rng.integers(1, n)) % n].astype(np.float32)
            img = _swap_part(img, donor, rng)
        if rng.random() < aug.flip:
            img = img[:, ::-1]
        img = _geometric(img, rng, aug)
        img = _colour(img, rng, aug)
        out[i] = img
    return out


def _swap_part(img: np.ndarray, donor: np.ndarray, rng) -> np.ndarray:
    h, w, _ = img.shape
    regions = face_regions((h, w))
    names = sorted(regions)
    top, left, bottom, right = regions[names[rng.integers(len(names))]]
    # a feathered rectangle, so no hard edge teaches the decoder seams
    ys, xs = np.arange(h)[:, None], np.arange(w)[None, :]
    feather = 4.0 * h / 150.0
    inside_y = np.clip(np.minimum(ys - top, bottom - ys) / feather, 0, 1)
    inside_x = np.clip(np.minimum(xs - left, right - xs) / feather, 0, 1)
    alpha = (inside_y * inside_x)[..., None].astype(np.float32)
    return (img * (1 - alpha) + donor * alpha).astype(np.float32)


def _geometric(img: np.ndarray, rng, aug: Augmentation) -> np.ndarray:
    if aug.rotate_deg == 0 and aug.scale == 0 and aug.shift == 0:
        return img
    from PIL import Image

    h, w, _ = img.shape
    angle = np.deg2rad(rng.uniform(-aug.rotate_deg, aug.rotate_deg))
    zoom = 1.0 + rng.uniform(-aug.scale, aug.scale)
    tx, ty = rng.uniform(-aug.shift, aug.shift, 2) * (w / 150.0)
    # PIL maps output (x, y) to input (a x + b y + c, d x + e y + f): the inverse of
    # "rotate and zoom about the centre, then shift"
    cos, sin = np.cos(angle) / zoom, np.sin(angle) / zoom
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    a, b, d, e = cos, sin, -sin, cos
    c = cx - a * (cx + tx) - b * (cy + ty)
    f = cy - d * (cx + tx) - e * (cy + ty)
    # mode "F" is float32: a float64 plane would be read as float32 bytes (garbage; NaN at some sizes)
    channels = [np.asarray(Image.fromarray(np.ascontiguousarray(img[..., k], dtype=np.float32), mode="F")
                           .transform((w, h), Image.AFFINE, (a, b, c, d, e, f), resample=Image.BILINEAR,
                                      fillcolor=float(img[..., k].mean())))
                for k in range(3)]
    return np.stack(channels, axis=-1)


def _colour(img: np.ndarray, rng, aug: Augmentation) -> np.ndarray:
    gain = (1.0 + rng.uniform(-aug.brightness, aug.brightness)) \
        * (1.0 + rng.uniform(-aug.channel_gain, aug.channel_gain, 3))
    contrast = 1.0 + rng.uniform(-aug.contrast, aug.contrast)
    mean = img.mean()
    return np.clip(((img - mean) * contrast + mean) * gain.astype(np.float32), 0, 255)


#: What training does outside the aligned face (:func:`separate_background`).
BACKGROUNDS = ("keep", "neutral", "random")
#: Width (pixels at 150 px) of the ramp between face and neutralised background.
BACKGROUND_FEATHER = 6.0
#: The neutral colour: mid grey, the decoder's output 0 on its ``value/255 - 0.5`` scale.
NEUTRAL_GREY = 127.5


def separate_background(images: np.ndarray, mode: str, rng: np.random.Generator, *,
                        face_scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """What the model embeds and what the decoder must rebuild, from augmented chips (float32 NHWC).

    The background and borders of aligned chips vary from photo to photo and
    carry no identity; a decoder asked to rebuild them spends its feature on
    them and draws its region maps there. Outside the face ellipse
    (:func:`fxplain.models.regions.face_ellipse` with its semi-axes times
    ``face_scale``, feathered):

    * ``"keep"`` — nothing changes: inputs and targets are the chips;
    * ``"neutral"`` — inputs and targets get a mid-grey background;
    * ``"random"`` — the targets get the grey background, but the model
      embeds each face in front of another chip's background, so whatever the
      background does to the feature is noise the decoder learns to ignore.
    """
    if mode == "keep":
        return images, images
    alpha = face_ellipse(images.shape[1:3], feather=BACKGROUND_FEATHER, scale=face_scale)[None, :, :, None]
    target = np.ascontiguousarray(images * alpha + np.float32(NEUTRAL_GREY) * (1 - alpha), np.float32)
    if mode == "neutral":
        return target, target
    donors = images[(np.arange(len(images)) + rng.integers(1, max(2, len(images)), len(images))) % len(images)]
    inputs = np.ascontiguousarray(images * alpha + donors * (1 - alpha), np.float32)
    return inputs, target
