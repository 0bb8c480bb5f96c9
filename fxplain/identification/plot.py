"""The figure of an identification: the probe, the ranked gallery faces with their pair maps, the contrast."""

from __future__ import annotations

import numpy as np


def _gray(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0, 255) @ np.array([0.299, 0.587, 0.114]) / 255.0).clip(0, 1)


def _overlay(ax, image: np.ndarray, values: np.ndarray, cmap: str, vmax: float, alpha: float):
    ax.imshow(_gray(image), cmap="gray", vmin=0, vmax=1)
    return ax.imshow(values, cmap=cmap, vmin=0, vmax=vmax, alpha=alpha)


def _verdict(candidate) -> str:
    return "match" if candidate.match else "no match"


def plot_identification(result, *, alpha: float = 0.6, figsize: tuple[float, float] | None = None):
    """Draw an :class:`~fxplain.IdentificationExplanation`.

    Columns: the probe, then the ranked identities. Top row: the faces (each
    identity's representative image, titled with rank, name, score and
    decision). Middle and bottom rows under each identity: the similarity
    (green) and dissimilarity (red) maps of that pair on the probe, one
    colour scale for all pairs (maps of one method share units). Under the
    probe: the contrastive maps — pixels of the probe supporting rank 1 over
    the contrast's second identity (green) and the second over rank 1 (red),
    on their own colour scale. Returns a :class:`matplotlib.figure.Figure`.
    """
    from matplotlib.figure import Figure

    pairs, contrast = result.pairs, result.contrast
    k = len(pairs)
    fig = Figure(figsize=figsize or (2.2 * (k + 1) + 0.4, 7.6), layout="constrained")
    axes = np.asarray(fig.subplots(3, k + 1, squeeze=False))
    probe = np.clip(result.probe, 0, 255)
    axes[0, 0].imshow(probe.astype(np.uint8))
    axes[0, 0].set_title("probe" + (f"\n(mate: {result.mate})" if result.mate else ""), fontsize=9)
    pair_vmax = float(max(max(p.similarity[0].max(), p.dissimilarity[0].max()) for p in pairs) or 1e-12)
    contrast_vmax = float(max(contrast.similarity.max(), contrast.dissimilarity.max()) or 1e-12)
    first, second = contrast.first.identity, contrast.second.identity
    shown_contrast = None
    for row, kind, cmap in ((1, "similarity", "Greens"), (2, "dissimilarity", "Reds")):
        values = getattr(contrast, kind)
        shown_contrast = _overlay(axes[row, 0], probe, values, cmap, contrast_vmax, alpha)
        winner, loser = (first, second) if kind == "similarity" else (second, first)
        axes[row, 0].set_title(f"contrast: for {winner[:14]}\nover {loser[:14]}", fontsize=8)
    shown_pairs = None
    for col, (candidate, pair) in enumerate(zip(result.ranking, pairs), start=1):
        axes[0, col].imshow(np.clip(pair.images[1], 0, 255).astype(np.uint8))
        mark = " (mate)" if candidate.identity == result.mate else ""
        axes[0, col].set_title(f"{candidate.rank}. {candidate.identity[:16]}{mark}\nscore {candidate.score:.3f}, "
                               f"{_verdict(candidate)}", fontsize=8)
        for row, kind, cmap in ((1, "similarity", "Greens"), (2, "dissimilarity", "Reds")):
            shown_pairs = _overlay(axes[row, col], probe, getattr(pair, kind)[0], cmap, pair_vmax, alpha)
            axes[row, col].set_title(f"probe {kind}\nwith {candidate.identity[:14]}", fontsize=8)
    for ax in axes.ravel():
        ax.set_axis_off()
    units = result.extras.get("units", "evidence")
    fig.colorbar(shown_contrast, ax=axes[1:, 0], location="bottom", shrink=0.9, label="contrast")
    fig.colorbar(shown_pairs, ax=axes[1:, 1:], location="bottom", shrink=0.6, label=f"pair maps: {units}")
    why = "why rank 1 beats the mate" if contrast.reason == "mate" else "why rank 1 beats rank 2"
    fig.suptitle(f"{result.method}, combine={result.combine}: {result.top.identity} is rank 1 of "
                 f"{result.gallery_identities} (score {result.top.score:.3f}, {_verdict(result.top)}); "
                 f"contrast = {why}", fontsize=10)
    return fig
