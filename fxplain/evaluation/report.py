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


@dataclass
class EvaluationReport:
    """Results of :func:`evaluate`: a table of metrics and the curves behind it."""

    rows: list[dict[str, Any]]
    curves: dict[str, dict[str, np.ndarray]]
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def table(self):
        """A pandas DataFrame (method x metric) if pandas is installed, else the list of rows."""
        try:
            import pandas as pd
        except ImportError:
            return self.rows
        return pd.DataFrame(self.rows).set_index("method")

    def to_markdown(self) -> str:
        """The table as Markdown (no dependency on pandas)."""
        keys = [k for k in self.rows[0] if k != "method"]
        lines = ["| method | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
        for row in self.rows:
            cells = [f"{row[k]:.3f}" if isinstance(row[k], float) else str(row[k]) for k in keys]
            lines.append(f"| {row['method']} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

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
        """Write ``report.md``, ``results.csv``, ``curves.png`` and ``settings.json`` into ``folder``."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.md").write_text("# fxplain evaluation\n\n" + self.to_markdown() + "\n\nSettings: `"
                                       + json.dumps(self.settings) + "`\n")
        keys = list(self.rows[0])
        csv = [",".join(keys)] + [",".join(str(row[k]) for k in keys) for row in self.rows]
        (out / "results.csv").write_text("\n".join(csv) + "\n")
        (out / "settings.json").write_text(json.dumps(self.settings, indent=2))
        self.plot().savefig(out / "curves.png", dpi=90)
        return out
