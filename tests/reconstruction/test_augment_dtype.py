"""Augmented training chips are the chips, varied: never garbage from a dtype slip."""

from __future__ import annotations

import numpy as np
import pytest

from fxplain.reconstruction.augment import Augmentation, augment


@pytest.mark.parametrize("size", [150, 112])
def test_every_augmentation_keeps_pixels_on_the_scale(johns, size):
    """All augmentations at once, part swaps included (they returned float64, which PIL read as float32 bytes)."""
    chips = np.ascontiguousarray(johns[0][:, :size, :size])
    rng = np.random.default_rng(0)
    out = augment(chips, np.arange(len(chips)), rng, Augmentation(part_swap=1.0, flip=0.5))
    assert out.dtype == np.float32 and np.isfinite(out).all()
    assert out.min() >= 0 and out.max() <= 255
    # still the same faces: each augmented chip stays close to its source (geometric jitter is small)
    diff = np.abs(out - chips.astype(np.float32)).mean(axis=(1, 2, 3))
    assert np.median(diff) < 40
