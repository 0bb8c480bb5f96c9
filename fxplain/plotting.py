"""Figures of explanations (matplotlib, imported only when a figure is drawn)."""

from __future__ import annotations

import numpy as np


def _gray(image: np.ndarray) -> np.ndarray:
    return (image @ np.array([0.299, 0.587, 0.114]) / 255.0).clip(0, 1)


def plot_pair(result, *, alpha: float = 0.6, figsize=(9.0, 6.4)):
    """Both faces, and each face's similarity and dissimilarity maps over it.

    Rows are image A and image B; columns the face, the similarity overlay
    (green) and the dissimilarity overlay (red). All four maps share one
    colour scale, from 0 to the largest value among them.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(2, 3)
    vmax = float(max(result.similarity.max(), result.dissimilarity.max(), 1e-12))
    images = np.clip(result.images, 0, 255)
    for row, label in enumerate(("A", "B")):
        gray = _gray(images[row])
        axes[row, 0].imshow(images[row].astype(np.uint8))
        axes[row, 0].set_title(f"image {label}")
        for col, (maps, cmap, name) in enumerate(((result.similarity, "Greens", "similarity"),
                                                   (result.dissimilarity, "Reds", "dissimilarity")), start=1):
            ax = axes[row, col]
            ax.imshow(gray, cmap="gray", vmin=0, vmax=1)
            shown = ax.imshow(maps[row], cmap=cmap, vmin=0, vmax=vmax, alpha=alpha)
            ax.set_title(f"{name} {label}")
            if row == 1:
                fig.colorbar(shown, ax=axes[:, col], shrink=0.6, location="bottom")
    for ax in axes.ravel():
        ax.set_axis_off()
    verdict = "MATCH" if result.match else "NO MATCH"
    fig.suptitle(f"{result.method}: score {result.score:.3f} vs threshold {result.threshold:.3f} -> {verdict}"
                 f"  (model {result.model_name})")
    return fig
