"""The result of :func:`fxplain.evaluate`: a table of metrics per method and the curves behind it."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: Maps every method is compared with (drawn dashed in plots).
BASELINES = ("random", "center")

#: Which way each column of a report is better: "lower", "higher", or "neither" (a spread, a count).
#: Deletion removes the pixels a map ranks first: a faithful map makes the margin (and the
#: decision) fall fast, so a low area; insertion adds them first: a high area.
BETTER = {
    "deletion_similarity_auc": "lower", "insertion_similarity_auc": "higher",
    "deletion_dissimilarity_auc": "lower", "insertion_dissimilarity_auc": "higher",
    "deletion_similarity_accuracy_auc": "lower", "insertion_similarity_accuracy_auc": "higher",
    "deletion_dissimilarity_accuracy_auc": "lower", "insertion_dissimilarity_accuracy_auc": "higher",
    "planted_pointing": "higher", "planted_energy": "higher", "planted_auc": "higher",
    "sanity_spearman": "lower",
    "face_mass": "higher", "occlusion_correlation": "higher",
    "face_mass_sd": "neither", "occlusion_correlation_sd": "neither", "faces": "neither",
    "uniform_face_mass": "neither",
}
_ARROWS = {"lower": " ↓", "higher": " ↑", "neither": ""}


def better(column: str) -> str:
    """"lower", "higher" or "neither": which way ``column`` of a report is better."""
    return BETTER.get(column, "neither")


@dataclass
class EvaluationReport:
    """Results of :func:`evaluate`: a table of metrics and the curves behind it.

    ``tables`` holds further tables by name, each a list of rows: today
    ``"correspondence"`` (per source of per-dimension region maps, see
    :mod:`fxplain.evaluation.correspondence`) when it was measured.
    """

    rows: list[dict[str, Any]]
    curves: dict[str, dict[str, np.ndarray]]
    settings: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def table(self):
        """A pandas DataFrame (method x metric) if pandas is installed, else the list of rows."""
        try:
            import pandas as pd
        except ImportError:
            return self.rows
        return pd.DataFrame(self.rows).set_index("method")

    def to_markdown(self) -> str:
        """The table (and any further :attr:`tables`, each under its name) as Markdown (no pandas needed).

        Each column's header carries an arrow: ↓ lower is better, ↑ higher is
        better (:data:`BETTER`); a legend line says so.
        """
        parts = ["↓: lower is better, ↑: higher is better (see docs/evaluation.md)", _markdown(self.rows, "method")]
        for name, rows in self.tables.items():
            if rows:
                parts.append(f"## {name}\n\n" + _markdown(rows, "method"))
        return "\n\n".join(parts)

    def plot(self):
        """Deletion and insertion curves (normalised margin) of every method, one panel per map kind."""
        from matplotlib.figure import Figure

        fig = Figure(figsize=(10, 7), layout="constrained")
        axes = fig.subplots(2, 2)
        panels = [("deletion_similarity", "deletion of similar pixels (genuine pairs)"),
                  ("insertion_similarity", "insertion of similar pixels (genuine pairs)"),
                  ("deletion_dissimilarity", "deletion of dissimilar pixels (impostor pairs)"),
                  ("insertion_dissimilarity", "insertion of dissimilar pixels (impostor pairs)")]
        for ax, (key, title) in zip(axes.ravel(), panels):
            for method, curves in self.curves.items():
                if key in curves:
                    y = curves[key]
                    ax.plot(np.linspace(0, 1, len(y)), y, label=method,
                            linestyle="--" if method in BASELINES else "-")
            ax.axhline(0, color="gray", linewidth=0.5)
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("fraction of pixels")
            ax.set_ylabel("normalised margin")
        axes[0, 0].legend(fontsize=8)
        return fig

    def save(self, folder: str | os.PathLike) -> Path:
        """Write ``report.md``, ``results.csv`` (and ``<table>.csv`` per further table), ``better.json`` (which
        way each column is better), ``curves.png`` and ``settings.json`` into ``folder``."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.md").write_text("# fxplain evaluation\n\n" + self.to_markdown() + "\n\nSettings: `"
                                       + json.dumps(self.settings) + "`\n")
        (out / "results.csv").write_text(_csv(self.rows))
        (out / "better.json").write_text(json.dumps({k: better(k) for row in self.rows for k in row
                                                     if k != "method"}, indent=2))
        for name, rows in self.tables.items():
            if rows:
                (out / f"{name}.csv").write_text(_csv(rows))
        (out / "settings.json").write_text(json.dumps(self.settings, indent=2))
        self.plot().savefig(out / "curves.png", dpi=90)
        return out


def _markdown(rows: list[dict[str, Any]], first: str) -> str:
    keys = [k for k in rows[0] if k != first]
    lines = [f"| {first} | " + " | ".join(k + _ARROWS[better(k)] for k in keys) + " |",
             "|---" * (len(keys) + 1) + "|"]
    for row in rows:
        cells = [f"{row[k]:.3f}" if isinstance(row[k], float) else str(row[k]) for k in keys]
        lines.append(f"| {row[first]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _csv(rows: list[dict[str, Any]]) -> str:
    keys = list(rows[0])
    return "\n".join([",".join(keys)] + [",".join(str(row[k]) for k in keys) for row in rows]) + "\n"
