"""A stored run read back: a table of every pair, and each pair's explanation on demand.

>>> rs = fxplain.open_results("run.zarr")
>>> rs.table                          # pandas DataFrame: one row per pair
>>> fm = rs.false_matches()           # impostor pairs the model matched
>>> fm[0].plot(); fm.plot_grid()
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from .._util.errors import InvalidInputError, StoreError
from ..results import PairExplanation
from . import regions
from .regions import with_outcome
from .store import RunStore, maps_digest


def open_results(path: str | os.PathLike) -> ResultSet:
    """The result set of a store written by :func:`fxplain.explain_pairs` (complete or not).

    The store is untrusted: a damaged or foreign store raises
    :class:`~fxplain.StoreError` when opened or when the damaged part is read.
    """
    run = RunStore(path)
    if not run.exists():
        raise StoreError(f"{path} is not an fxplain result store (no run manifest)")
    run.manifest()
    return ResultSet(run)


def _with_score_columns(rows, url: str):
    """The rows with each scalar per-pair score (column ``scores``, JSON) as a column of its own."""
    parsed = []
    for text in rows["scores"]:
        try:
            value = json.loads(text) if isinstance(text, str) else {}
        except ValueError:
            raise StoreError(f"{url}: a row's scores are damaged JSON") from None
        if not isinstance(value, dict):
            raise StoreError(f"{url}: a row's scores are not a mapping")
        parsed.append(value)
    names = [k for k in dict.fromkeys(k for p in parsed for k, v in p.items()
                                      if isinstance(v, (int, float, str)) and not isinstance(v, bool))
             if k not in rows.columns]
    rows = rows.copy()
    for name in names:
        rows[name] = [p.get(name) if isinstance(p.get(name), (int, float, str)) else None for p in parsed]
    return rows


class ResultSet:
    """The pairs of a stored run (or a selection of them).

    ``len(rs)`` pairs; ``rs[i]`` is the :class:`~fxplain.PairExplanation` of
    the i-th (read from the store when asked for); iterating gives them in
    turn; ``rs.table`` is the table of their rows (pandas). Selections
    (:meth:`false_matches`, :meth:`where` ...) are result sets too.
    Only committed pairs are in it; :attr:`missing` counts the others.
    """

    def __init__(self, run: RunStore, rows=None):
        self.run = run
        if rows is None:
            rows = with_outcome(_with_score_columns(run.read_rows().to_pandas(), run.url))
        self._rows = rows

    def __len__(self) -> int:
        return len(self._rows)

    def __repr__(self) -> str:
        identity = self.run.manifest()["identity"]
        return (f"ResultSet({len(self)} pairs of {self.run.n_pairs}, method={identity['method']!r}, "
                f"model={identity['model_name']!r}, store={self.run.url!r})")

    @property
    def table(self):
        """One row per pair (pandas DataFrame): files, SHA-256, face boxes, score, decision, label, outcome
        (true/false match/non-match), method, per-pair scores, and any columns :meth:`annotate` added."""
        return self._rows.reset_index(drop=True).copy()

    @property
    def missing(self) -> int:
        """Pairs of the run not yet committed (a rerun of explain_pairs computes them)."""
        return self.run.n_pairs - len(self.run.read_rows())

    @property
    def identity(self) -> dict:
        """What was run: method, parameters, seed, model, dtype, chunk size, fxplain version."""
        return dict(self.run.manifest()["identity"])

    def __getitem__(self, index: int) -> PairExplanation:
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
            raise InvalidInputError(f"index a result set with an integer (got {type(index).__name__}); "
                                    "select with where(...)")
        if not -len(self) <= index < len(self):
            raise IndexError(f"pair {index} of a result set of {len(self)}")
        return self._explanation(self._rows.iloc[int(index)])

    def __iter__(self) -> Iterator[PairExplanation]:
        for k in range(len(self)):
            yield self[k]

    # ---- selections --------------------------------------------------------------

    def where(self, mask: Any = None, **equals: Any) -> ResultSet:
        """The pairs whose rows satisfy ``mask`` (a boolean Series/array over :attr:`table`, or a function of
        the table returning one) and equal every ``column=value`` given."""
        rows = self._rows.reset_index(drop=True)
        keep = np.ones(len(rows), bool)
        if mask is not None:
            chosen = mask(rows) if callable(mask) else mask
            chosen = np.asarray(chosen)
            if chosen.dtype != bool or chosen.shape != (len(rows),):
                raise InvalidInputError(f"mask must be {len(rows)} booleans, got {chosen.dtype} {chosen.shape}")
            keep &= chosen
        for column, value in equals.items():
            if column not in rows.columns:
                raise InvalidInputError(f"no column {column!r}; columns: {list(rows.columns)}")
            keep &= (rows[column] == value).to_numpy(dtype=bool, na_value=False)
        return ResultSet(self.run, rows[keep])

    def false_matches(self) -> ResultSet:
        """Impostor pairs (label "different") the model matched."""
        return self.where(label="different", decision="match")

    def false_non_matches(self) -> ResultSet:
        """Genuine pairs (label "same") the model did not match."""
        return self.where(label="same", decision="non-match")

    def scores(self) -> list[dict]:
        """Each pair's per-pair scores (from the run's ``scorer``), parsed: curves included."""
        return [json.loads(text) if isinstance(text, str) else {} for text in self._rows["scores"]]

    def failed(self) -> ResultSet:
        """Pairs that could not be explained (column ``error``: no face in a photo ...)."""
        return self.where(lambda t: t["error"].notna().to_numpy())

    def annotate(self, data: Any, on: str = "file") -> ResultSet:
        """The same pairs with columns of your own, matched to each side's file: a new ResultSet.

        ``data`` is a pandas DataFrame or a CSV file with a column ``on``
        naming image files (as the pairs did, or a trailing part of their
        path such as ``"Aaron/Aaron_0001.jpg"``). Each other column ``c``
        becomes ``c_a``, ``c_b`` and ``c`` (the sides' common value, "mixed"
        when they differ), ready for :meth:`where` and :meth:`region_table`::

            rs.annotate("groups.csv").region_table(by="group")
        """
        return ResultSet(self.run, regions.annotate(self._rows, data, on))

    # ---- facial regions ------------------------------------------------------------

    def region_table(self, by: Any = None, *, side: str = "both", n_boot: int = 1000, confidence: float = 0.95,
                     seed: int = 0):
        """Mean share of similarity and dissimilarity mass per facial region, per group, with intervals.

        Groups are the pairs' ``outcome`` (true/false match/non-match) by
        default, or the column(s) named by ``by`` (e.g. one :meth:`annotate`
        added). Each explained pair counts once: its two faces' shares are
        averaged (``side="A"``/``"B"``: one side). Returns a pandas DataFrame
        with columns ``[*by, "kind", "region", "share", "low", "high", "n"]``:
        the mean share, its percentile-bootstrap ``confidence`` interval
        (``n_boot`` resamples of the group's pairs, seeded by ``seed``) and
        the number of pairs. Regions: :data:`fxplain.faces.regions.REGION_NAMES`,
        from each face's own landmarks when it came from a photo, else the
        model's alignment template (see :meth:`PairExplanation.region_shares`).
        """
        return regions.region_table(self, by, side=side, n_boot=n_boot, confidence=confidence, seed=seed)

    def plot_regions(self, by: Any = None, *, kind: str = "dissimilarity", side: str = "both", n_boot: int = 1000):
        """The region table as a bar chart with intervals beside the shares drawn over the mean face.

        Returns the matplotlib Figure (see :func:`fxplain.plotting.plot_region_shares`
        and :func:`fxplain.plotting.plot_region_overlay`).
        """
        from ..plotting import plot_region_summary

        table = self.region_table(by, side=side, n_boot=n_boot)
        explained = [k for k in range(len(self)) if not isinstance(self._rows.iloc[k]["error"], str)]
        if not explained:
            raise InvalidInputError("no explained pairs to draw")
        mean_face = np.mean([self[k].images[0] for k in explained[:50]], axis=0)
        return plot_region_summary(table, mean_face, kind=kind)

    # ---- display -------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """Counts, decisions against labels and time per pair."""
        rows = self._rows
        ok = rows[rows["error"].isna()]
        out = {"pairs": int(self.run.n_pairs), "done": len(rows), "failed": int(rows["error"].notna().sum()),
               "matches": int((ok["decision"] == "match").sum()),
               "non_matches": int((ok["decision"] == "non-match").sum())}
        labelled = ok[ok["label"].notna()]
        if len(labelled):
            for name, label, decision in (("true_matches", "same", "match"), ("false_matches", "different", "match"),
                                          ("false_non_matches", "same", "non-match"),
                                          ("true_non_matches", "different", "non-match")):
                out[name] = int(((labelled["label"] == label) & (labelled["decision"] == decision)).sum())
        if len(ok):
            out["seconds_per_pair"] = float(ok["seconds"].mean())
        return out

    def plot_grid(self, n: int = 8, *, kind: str = "dissimilarity", alpha: float = 0.6, columns: int = 4):
        """The first ``n`` pairs as a grid: each pair's two faces with its ``kind`` map over them.

        One colour scale for the whole grid (maps of one method are in the same
        units across pairs). Returns the matplotlib Figure.
        """
        from ..plotting import plot_result_grid

        if kind not in ("similarity", "dissimilarity", "evidence"):
            raise InvalidInputError(f"kind must be 'similarity', 'dissimilarity' or 'evidence', got {kind!r}")
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise InvalidInputError(f"n must be a positive integer, got {n!r}")
        chosen = [k for k in range(len(self)) if not isinstance(self._rows.iloc[k]["error"], str)][:n]
        if not chosen:
            raise InvalidInputError("no explained pairs to draw")
        return plot_result_grid([self[k] for k in chosen], kind=kind, alpha=alpha, columns=columns,
                                titles=[self._title(self._rows.iloc[k]) for k in chosen])

    def report(self, folder: str | os.PathLike, *, max_pairs: int = 12):
        """Write an HTML report of these pairs into ``folder`` (``index.html`` and PNG figures); its path.

        Settings and provenance, decisions against labels (FMR, FNMR), grids
        of the false matches and false non-matches (at most ``max_pairs``
        each), the region table, time per pair and the failed pairs; see
        :func:`fxplain.protocols.report.write_report`.
        """
        from .report import write_report

        return write_report(self, folder, max_pairs=max_pairs)

    @staticmethod
    def _title(row) -> str:
        label = f", {row['label']}" if isinstance(row["label"], str) else ""
        return f"pair {row['pair_id']}: {row['decision']}{label} ({row['score']:.3f})"

    # ---- reading one pair -------------------------------------------------------------

    def _explanation(self, row) -> PairExplanation:
        index = int(row["pair_id"])
        if isinstance(row["error"], str):
            raise InvalidInputError(f"pair {index} ({row['a']}, {row['b']}) was not explained: {row['error']}")
        similarity, dissimilarity, images = self.run.read_maps(index)
        if maps_digest(similarity, dissimilarity, images) != row["maps_sha256"]:
            raise StoreError(f"{self.run.url}: the maps of pair {index} do not match their row's SHA-256 "
                             "(damaged store)")
        for name, array in (("similarity", similarity), ("dissimilarity", dissimilarity)):
            if not np.all(np.isfinite(array)) or np.any(array < 0):
                raise StoreError(f"{self.run.url}: the {name} map of pair {index} is not finite and non-negative")
        try:
            extras = json.loads(row["extras"]) if isinstance(row["extras"], str) else {}
            params = json.loads(row["params"])
        except ValueError:
            raise StoreError(f"{self.run.url}: the row of pair {index} holds damaged JSON") from None
        if not isinstance(extras, dict) or not isinstance(params, dict):
            raise StoreError(f"{self.run.url}: the row of pair {index} holds damaged JSON")
        if extras.get("faces") is None:
            extras.pop("faces", None)
        score, threshold = float(row["score"]), float(row["threshold"])
        if bool(row["match"]) != (score >= threshold):
            raise StoreError(f"{self.run.url}: the row of pair {index} has a decision its score contradicts")
        sources = tuple({"path": row[side], "sha256": row[f"sha256_{side}"]} for side in "ab")
        return PairExplanation(
            similarity=similarity.astype(np.float32), dissimilarity=dissimilarity.astype(np.float32),
            score=score, threshold=threshold, match=bool(row["match"]), method=str(row["method"]), params=params,
            seed=int(row["seed"]), model_hash=str(row["model_sha256"]), model_name=str(row["model_name"]),
            images=images.astype(np.float32), seconds=float(row["seconds"]),
            normalize=row["normalize"] if isinstance(row["normalize"], str) else None, extras=extras,
            sources=sources)
