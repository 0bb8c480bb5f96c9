"""Baseline maps every method must beat: random saliency and the "faces are in the middle" prior."""

from __future__ import annotations

import numpy as np


def random_map(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Uniform random saliency: the floor for every metric."""
    return np.random.default_rng(seed).random(shape)


def center_gaussian_map(shape: tuple[int, int], sigma: float = 0.25) -> np.ndarray:
    """A centred Gaussian (sigma as a fraction of the size): the 'faces are in the middle' prior."""
    h, w = shape
    y = (np.arange(h) - (h - 1) / 2) / (sigma * h)
    x = (np.arange(w) - (w - 1) / 2) / (sigma * w)
    return np.exp(-0.5 * (y[:, None] ** 2 + x[None, :] ** 2))
