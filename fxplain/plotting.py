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


def plot_reconstructions(originals: np.ndarray, reconstructions: np.ndarray, *, labels=None, figsize=None):
    """Faces (top row) and what the decoder rebuilds from their embeddings (bottom row)."""
    from matplotlib.figure import Figure

    n = len(originals)
    fig = Figure(figsize=figsize or (2.0 * n, 4.4), layout="constrained")
    axes = np.asarray(fig.subplots(2, n)).reshape(2, n)
    for i in range(n):
        axes[0, i].imshow(np.clip(originals[i], 0, 255).astype(np.uint8))
        axes[1, i].imshow(reconstructions[i])
        if labels is not None:
            axes[0, i].set_title(str(labels[i]), fontsize=9)
    axes[0, 0].set_ylabel("face")
    axes[1, 0].set_ylabel("rebuilt from its feature")
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


def plot_dimension_grid(image: np.ndarray, region_maps: np.ndarray, contributions: np.ndarray, *, k: int = 4,
                        alpha: float = 0.6, figsize=None):
    """The ``k`` dimensions arguing most for a match (top row) and most against it (bottom row).

    Each panel overlays the dimension's region map ``R_k`` on ``image`` and
    names the dimension and its contribution ``c_k`` to the margin.
    """
    from matplotlib.figure import Figure

    c = np.asarray(contributions, np.float64)
    order = np.argsort(c)
    rows = (("for", order[::-1][:k], "Greens"), ("against", order[:k], "Reds"))
    fig = Figure(figsize=figsize or (2.2 * k, 4.8), layout="constrained")
    axes = np.asarray(fig.subplots(2, k)).reshape(2, k)
    gray = _gray(np.clip(image, 0, 255))
    for row, (label, dims, cmap) in enumerate(rows):
        for col, dim in enumerate(dims):
            ax = axes[row, col]
            ax.imshow(gray, cmap="gray", vmin=0, vmax=1)
            ax.imshow(region_maps[dim], cmap=cmap, alpha=alpha)
            ax.set_title(f"{label}: dim {dim}, c={c[dim]:+.4f}", fontsize=8)
            ax.set_axis_off()
    fig.suptitle("dimensions arguing for (top) and against (bottom) the match, with the regions they encode")
    return fig
