"""Facial-region tables of a result set: where the evidence lies, per group of pairs, with intervals.

For each explained pair, the share of its similarity and dissimilarity mass
per facial region (:meth:`fxplain.PairExplanation.region_shares`, averaged
over the pair's two faces or taken from one side); over a result set, the
mean share per region in each group of pairs with a percentile bootstrap
interval (pairs resampled with replacement within the group). Groups are the
decision outcome by default (``"outcome"``: true/false match/non-match) or
any columns of the table, such as those :func:`annotate` adds from a CSV
keyed by file (a demographic group, a capture condition).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .._util.errors import InvalidInputError
from ..faces.regions import REGION_NAMES

KINDS = ("similarity", "dissimilarity")
SIDES = ("both", "A", "B")


def outcome(label: Any, decision: Any, error: Any = None) -> str:
    """A pair's outcome: "true match", "false match", "true non-match", "false non-match", the bare
    decision when the pair has no label, or "failed"."""
    if isinstance(error, str):
        return "failed"
    if label == "same":
        return "true match" if decision == "match" else "false non-match"
    if label == "different":
        return "false match" if decision == "match" else "true non-match"
    return str(decision)


def pair_shares(result_set, side: str = "both"):
    """One row per explained pair and kind: ``pair_id``, ``kind`` and a share column per region.

    ``side="both"`` averages the two faces' shares (a face with no mass of
    that kind is left out of the mean); ``"A"`` or ``"B"`` takes one side.
    """
    import pandas as pd

    if side not in SIDES:
        raise InvalidInputError(f"side must be one of {SIDES}, got {side!r}")
    rows = result_set._rows
    records = []
    for k in range(len(rows)):
        row = rows.iloc[k]
        if isinstance(row["error"], str):
            continue
        shares = result_set[k].region_shares()
        for kind in KINDS:
            values = shares.xs(kind, level="kind").to_numpy()  # (2, regions): sides A, B
            if side != "both":
                values = values["AB".index(side)][None]
            with np.errstate(invalid="ignore"):
                mean = np.nanmean(values, axis=0) if np.any(np.isfinite(values)) else values[0]
            records.append({"pair_id": int(row["pair_id"]), "kind": kind,
                            **dict(zip(REGION_NAMES, mean.tolist(), strict=True))})
    return pd.DataFrame.from_records(records, columns=["pair_id", "kind", *REGION_NAMES])


def region_table(result_set, by: Any = None, *, side: str = "both", n_boot: int = 1000,
                 confidence: float = 0.95, seed: int = 0):
    """Mean region shares per group with bootstrap intervals (see :meth:`fxplain.ResultSet.region_table`)."""
    import pandas as pd

    by = ["outcome"] if by is None else [by] if isinstance(by, str) else list(by)
    table = with_outcome(result_set._rows)
    for column in by:
        if column not in table.columns:
            raise InvalidInputError(f"no column {column!r} to group by; columns: {list(table.columns)} "
                                    "(add your own with rs.annotate(csv))")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or not 0 <= n_boot <= 100_000:
        raise InvalidInputError(f"n_boot must be an integer from 0 to 100000, got {n_boot!r}")
    if not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise InvalidInputError(f"confidence must be in (0, 1), got {confidence!r}")
    shares = pair_shares(result_set, side)
    merged = shares.merge(table[["pair_id", *by]], on="pair_id", how="left")
    rng = np.random.default_rng(seed)
    tail = (1 - confidence) / 2
    out = []
    for key, group in merged.groupby([*by, "kind"], sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        for region in REGION_NAMES:
            values = group[region].to_numpy(np.float64)
            values = values[np.isfinite(values)]
            record = dict(zip([*by, "kind"], key, strict=True))
            record.update(region=region, n=len(values), share=float(values.mean()) if len(values) else np.nan)
            if len(values) and n_boot:
                means = values[rng.integers(0, len(values), (n_boot, len(values)))].mean(axis=1)
                record["low"], record["high"] = (float(v) for v in np.quantile(means, [tail, 1 - tail]))
            else:
                record["low"] = record["high"] = np.nan
            out.append(record)
    return pd.DataFrame.from_records(out, columns=[*by, "kind", "region", "share", "low", "high", "n"])


def with_outcome(rows):
    """The rows with an ``outcome`` column (:func:`outcome`)."""
    rows = rows.copy()
    rows["outcome"] = [outcome(label, decision, error) for label, decision, error
                       in zip(rows["label"], rows["decision"], rows["error"], strict=True)]
    return rows


def annotate(rows, data: Any, on: str = "file"):
    """``rows`` with the columns of ``data`` (a DataFrame or a CSV file) matched to each side's file.

    ``data[on]`` names files as the pairs did or by a trailing part of their
    path (``"Aaron/Aaron_0001.jpg"`` matches ``/data/lfw/Aaron/Aaron_0001.jpg``).
    Every other column ``c`` of ``data`` becomes ``c_a`` and ``c_b`` (the value
    for each side's file) and ``c`` (their common value, or ``"mixed"`` when
    the sides differ, missing when either is unknown).
    """
    import pandas as pd

    if isinstance(data, (str, os.PathLike)):
        path = Path(data)
        if not path.is_file():
            raise InvalidInputError(f"{path}: no such annotation file (a CSV with a {on!r} column)")
        try:
            data = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as error:
            raise InvalidInputError(f"{path}: not a readable CSV: {error}") from None
    if not isinstance(data, pd.DataFrame):
        raise InvalidInputError(f"annotate takes a DataFrame or a CSV file, got {type(data).__name__}")
    if on not in data.columns:
        raise InvalidInputError(f"the annotations have no {on!r} column; columns: {list(data.columns)}")
    columns = [c for c in data.columns if c != on]
    clash = [c for c in columns for name in (c, f"{c}_a", f"{c}_b") if name in rows.columns]
    if clash:
        raise InvalidInputError(f"annotation column(s) {sorted(set(clash))} would overwrite the table's")
    keys = {_normal(k): k for k in data[on].astype(str)}
    if len(keys) != len(data):
        raise InvalidInputError(f"the annotations name some file twice in column {on!r}")
    by_key = data.set_index(data[on].astype(str).map(_normal))

    def lookup(path: Any) -> str | None:
        parts = _normal(str(path)).split("/")
        for start in range(len(parts)):
            key = "/".join(parts[start:])
            if key in keys:
                return key
        return None

    rows = rows.copy()
    found = {side: [lookup(p) for p in rows[side]] for side in "ab"}
    for column in columns:
        for side in "ab":
            rows[f"{column}_{side}"] = [by_key.at[k, column] if k is not None else None for k in found[side]]
        rows[column] = [None if pd.isna(x) or pd.isna(y) else x if x == y else "mixed"
                        for x, y in zip(rows[f"{column}_a"], rows[f"{column}_b"], strict=True)]
    return rows


def _normal(path: str) -> str:
    return path.replace(os.sep, "/").strip("/")
