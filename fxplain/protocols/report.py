"""The HTML report of a stored run: one static page (``index.html``) with PNG figures beside it.

>>> fxplain.open_results("run.zarr").report("report/")      # -> report/index.html
$ fxplain report run.zarr -o report/

The page needs no server and loads nothing from elsewhere (inline CSS, no
script): settings and provenance, decisions against labels with FMR and
FNMR, grids of the false matches and false non-matches, the region table
and its charts, time per pair, and the pairs that failed. Every text taken
from the store (file names, errors, the model's name) is untrusted and is
HTML-escaped. A folder is written only if it is new, empty, or a previous
report (its marker file ``fxplain-report.json``), which is then replaced.
"""

from __future__ import annotations

import html
import json
import math
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from .._util.errors import InvalidInputError
from .._util.version import __version__
from .resultset import ResultSet

INDEX = "index.html"
#: The marker file that makes a folder a previous report (which a new report may replace).
MARKER = "fxplain-report.json"
MARKER_FORMAT = "fxplain.Report"
#: Every figure a report may write; a new report removes those of the previous one first.
FIGURES = {"false_matches": "false-matches.png", "false_non_matches": "false-non-matches.png",
           **{f"region_{chart}_{kind}": f"region-{chart}-{kind}.png" for chart in ("shares", "overlay")
              for kind in ("similarity", "dissimilarity")},
           "seconds": "seconds-per-pair.png"}
#: Largest marker read back (ours are a few hundred bytes).
_MAX_MARKER_BYTES = 1 << 16
#: Failed pairs listed at most (the rest are counted).
_MAX_ERRORS = 200
_DPI = 100
#: No script, no fetching: should escaping ever miss, the browser still runs nothing and loads only our images.
_CSP = "default-src 'none'; img-src 'self' file:; style-src 'unsafe-inline'"

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top;
         overflow-wrap: anywhere; }
th { background: #f3f3f3; }
th, td.num { white-space: nowrap; overflow-wrap: normal; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code, .mono { font-family: ui-monospace, monospace; font-size: 0.9em; word-break: break-all; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
.note { color: #666; font-size: 0.9em; }
.error { color: #a00; }
"""


def write_report(results, folder: str | os.PathLike, *, max_pairs: int = 12) -> Path:
    """Write the HTML report of ``results`` (a :class:`~fxplain.protocols.ResultSet`) into ``folder``.

    ``max_pairs`` caps the pairs drawn in each grid (the page says how many
    there are). The folder is created if missing; a non-empty folder that is
    not a previous fxplain report raises :class:`~fxplain.InvalidInputError`.
    Returns the path of ``index.html``.
    """
    if not isinstance(results, ResultSet):
        raise InvalidInputError(f"write_report takes a ResultSet (fxplain.open_results), got {type(results).__name__}")
    if isinstance(max_pairs, bool) or not isinstance(max_pairs, (int, np.integer)) or max_pairs < 1:
        raise InvalidInputError(f"max_pairs must be a positive integer, got {max_pairs!r}")
    try:
        return _write(results, Path(folder), max_pairs)
    except OSError as exc:  # a folder we may not write, a full disk: the user's to fix, not a crash
        raise InvalidInputError(f"cannot write the report into {folder}: {exc}") from None


def _write(results, folder: Path, max_pairs: int) -> Path:
    out = _claim_folder(folder, results.run.url)
    figures: dict[str, str] = {}
    sections = [_settings(results), _decisions(results),
                _grid(results.false_matches(), "false_matches", "False matches", "similarity",
                      ("Impostor pairs the model matched", "green: where it found the two faces alike"),
                      max_pairs, out, figures),
                _grid(results.false_non_matches(), "false_non_matches", "False non-matches", "dissimilarity",
                      ("Genuine pairs the model did not match", "red: where it found the two faces different"),
                      max_pairs, out, figures),
                _regions(results, out, figures), _timing(results, out, figures), _errors(results)]
    identity = results.identity
    title = f"fxplain report: {identity['method']} on {identity['model_name']}"
    page = ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{_CSP}\">\n"
            f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<h1>{_e(title)}</h1>\n"
            + "\n".join(sections)
            + f"\n<p class=\"note\">Written by fxplain {_e(__version__)} on {_e(_now())}.</p>\n</body>\n</html>\n")
    index = out / INDEX
    index.write_text(page, encoding="utf-8")
    _write_marker(out, results.run.url, [INDEX, *figures.values()])
    return index


# ---- the folder ----------------------------------------------------------------------


def _claim_folder(folder: Path, store: str) -> Path:
    """The output folder, created if missing; a previous report's files are removed, anything else refused."""
    if folder.exists() and not folder.is_dir():
        raise InvalidInputError(f"{folder} is a file, not a folder for a report")
    folder.mkdir(parents=True, exist_ok=True)
    entries = list(folder.iterdir())
    if entries and not _is_report(folder / MARKER):
        raise InvalidInputError(f"{folder} is not empty and holds no fxplain report ({MARKER}); choose a new "
                                "or empty folder")
    # ours only: the fixed names this module writes (the marker is untrusted, so its list is not used)
    for name in (INDEX, *FIGURES.values()):
        _remove(folder / name)
    # claim the folder before writing figures: a report stopped half-way is still replaced by the next one
    _write_marker(folder, store, [])
    return folder


def _remove(path: Path) -> None:
    """Remove a file of a previous report (a link itself, never what it points to)."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        raise InvalidInputError(f"{path} is not a file; a report writes a file of that name")


def _is_report(marker: Path) -> bool:
    try:
        if not marker.is_file() or marker.stat().st_size > _MAX_MARKER_BYTES:
            return False
        value = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return False
    return isinstance(value, dict) and value.get("format") == MARKER_FORMAT


def _write_marker(folder: Path, store: str, files: list[str]) -> None:
    marker = {"format": MARKER_FORMAT, "version": 1, "store": store, "fxplain_version": __version__,
              "written": _now(), "files": files}
    _remove(folder / MARKER)
    (folder / MARKER).write_text(json.dumps(marker, indent=1) + "\n", encoding="utf-8")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# ---- HTML pieces ---------------------------------------------------------------------


def _e(value: Any) -> str:
    """Text for HTML, escaped (quotes too: some of it goes into attributes)."""
    return html.escape(str(value), quote=True)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    """An HTML table; every cell escaped; numbers right-aligned."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>\n" for row in rows)
    return f"<table>\n<tr>{head}</tr>\n{body}</table>"


def _cell(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        text = "n/a" if not math.isfinite(value) else f"{value:.4g}"
        return f"<td class=\"num\">{_e(text)}</td>"
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return f"<td class=\"num\">{_e(value)}</td>"
    return f"<td>{_e('' if value is None else value)}</td>"


def _facts(rows: list[tuple[str, Any]]) -> str:
    """A two-column table of named facts (values in monospace: hashes, paths, JSON)."""
    body = "".join(f"<tr><th>{_e(k)}</th><td class=\"mono\">{_e(v)}</td></tr>\n" for k, v in rows)
    return f"<table>\n{body}</table>"


def _figure(fig, out: Path, key: str, figures: dict[str, str], alt: str) -> str:
    """Save a matplotlib Figure as PNG beside the page; its <img> tag."""
    name = FIGURES[key]
    fig.savefig(out / name, dpi=_DPI, format="png")
    figures[key] = name
    return f"<p><img src=\"{_e(name)}\" alt=\"{_e(alt)}\"></p>"


# ---- sections --------------------------------------------------------------------------


def _settings(results) -> str:
    identity, summary = results.identity, results.summary()
    facts = [("method", identity["method"]), ("parameters", json.dumps(identity["params"], sort_keys=True)),
             ("seed", identity["seed"]), ("normalisation", identity.get("normalize")),
             ("face choice", json.dumps(identity.get("face"))), ("channels", identity.get("channels")),
             ("model", identity["model_name"]), ("model SHA-256", identity["model_sha256"]),
             ("threshold", identity["threshold"]), ("input size", identity.get("input_size")),
             ("maps stored as", identity.get("dtype")), ("chunk size", identity.get("chunk_size")),
             ("fxplain version of the run", identity.get("fxplain_version")),
             ("store", results.run.url), ("run started", _started(results.run)),
             ("pairs of the run", summary["pairs"]), ("done", summary["pairs"] - results.missing),
             ("pairs in this report", summary["done"]), ("failed", summary["failed"])]
    if identity.get("scorer") is not None:
        facts.append(("per-pair scorer", json.dumps(identity["scorer"], sort_keys=True)))
    missing = results.missing
    note = (f"<p class=\"note\">{missing} pairs are not done yet: rerun the same explain-pairs command to resume; "
            "this report covers the pairs done.</p>" if missing else "")
    return f"<h2>Run</h2>\n{_facts(facts)}\n{note}"


def _started(run) -> str:
    """When the run's manifest was written (the store records no time of its own), or "unknown"."""
    from .store import MANIFEST

    try:
        when = run.fs.modified(run._path(MANIFEST))
    except (OSError, NotImplementedError, KeyError, ValueError):
        return "unknown"
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="seconds")


def decision_counts(results) -> dict[str, Any]:
    """Decisions against labels over the explained pairs: the four counts, FMR and FNMR (None when undefined).

    FMR = false matches / impostor pairs; FNMR = false non-matches / genuine pairs.
    """
    summary = results.summary()
    counts = {name: summary.get(name, 0) for name in ("true_matches", "false_matches", "false_non_matches",
                                                      "true_non_matches")}
    impostors = counts["false_matches"] + counts["true_non_matches"]
    genuine = counts["true_matches"] + counts["false_non_matches"]
    return {**counts, "impostor_pairs": impostors, "genuine_pairs": genuine,
            "matches": summary["matches"], "non_matches": summary["non_matches"],
            "fmr": counts["false_matches"] / impostors if impostors else None,
            "fnmr": counts["false_non_matches"] / genuine if genuine else None}


def _rate(value: float | None, errors: int, total: int, pairs: str) -> str:
    if value is None:
        return f"n/a (no {pairs} pairs)"
    return f"{value:.4f} ({errors} of {total} {pairs} pairs)"


def _decisions(results) -> str:
    c = decision_counts(results)
    threshold = results.identity["threshold"]
    table = _table(["", "decided match", "decided non-match"],
                   [["genuine (label same)", c["true_matches"], c["false_non_matches"]],
                    ["impostor (label different)", c["false_matches"], c["true_non_matches"]]])
    rates = _facts([("FMR", _rate(c["fmr"], c["false_matches"], c["impostor_pairs"], "impostor")),
                    ("FNMR", _rate(c["fnmr"], c["false_non_matches"], c["genuine_pairs"], "genuine"))])
    unlabelled = c["matches"] + c["non_matches"] - c["impostor_pairs"] - c["genuine_pairs"]
    note = f"<p class=\"note\">{_count(unlabelled, 'explained pair')} without a label.</p>" if unlabelled else ""
    return (f"<h2>Decisions against labels</h2>\n<p>At the threshold {_e(f'{threshold:.4g}')} "
            f"(a pair matches when its score is at least the threshold); explained pairs only.</p>\n"
            f"{table}\n{rates}\n{note}")


def _grid(selection, key: str, title: str, kind: str, what: tuple[str, str], max_pairs: int, out: Path,
          figures: dict[str, str]) -> str:
    n = len(selection)
    head = f"<h2>{_e(title)}</h2>\n<p>{_e(what[0])}: {n}.</p>"
    if n == 0:
        return head
    shown = min(n, max_pairs)
    fig = selection.plot_grid(shown, kind=kind)
    rows = [[int(r.pair_id), r.a, r.b, float(r.score)] for r in selection.table.head(shown).itertuples()]
    which = f"The first {shown} of {n}" if shown < n else f"All {n}"
    caption = f"<p class=\"note\">{which}; {_e(what[1])}, one colour scale for the grid.</p>"
    return (f"{head}\n{caption}\n{_figure(fig, out, key, figures, f'{title}: {kind} maps')}\n"
            + _table(["pair", "image A", "image B", "score"], rows))


def _regions(results, out: Path, figures: dict[str, str]) -> str:
    from ..plotting import plot_region_shares

    head = ("<h2>Regions</h2>\n<p>Mean share of each kind of evidence per facial region, by outcome, with 95 % "
            "bootstrap intervals (each explained pair counts once, its two faces averaged).</p>")
    explained = [k for k, error in enumerate(results.table["error"]) if not isinstance(error, str)]
    if not explained:
        return f"{head}\n<p>No explained pairs.</p>"
    table = results.region_table()
    groups = list(table.columns[:list(table.columns).index("kind")])
    # the overlays are drawn on the mean face of (up to 50 of) the pairs, as ResultSet.plot_regions does
    mean_face = np.mean([results[k].images[0] for k in explained[:50]], axis=0)
    parts = [head]
    for kind in ("similarity", "dissimilarity"):
        rows = table[table["kind"] == kind]
        parts.append(f"<h3>{_e(kind.capitalize())}</h3>")
        if not (rows["n"] > 0).any():   # e.g. no dissimilarity anywhere when every pair is a clear match
            parts.append(f"<p>No pair has any {_e(kind)}.</p>")
            continue
        parts.append(_figure(plot_region_shares(table, kind=kind), out, f"region_shares_{kind}", figures,
                             f"share of {kind} per region"))
        parts.append(_figure(_overlays(table, mean_face, kind, groups), out, f"region_overlay_{kind}", figures,
                             f"share of {kind} per region over the mean face"))
        parts.append(_region_html(rows, groups))
    return "\n".join(parts)


def _overlays(table, mean_face: np.ndarray, kind: str, groups: list[str]):
    """One face per group with its region shares of ``kind`` painted over it, side by side."""
    from matplotlib.figure import Figure

    from ..plotting import plot_region_overlay

    rows = table[(table["kind"] == kind) & (table["n"] > 0)]   # a group without this kind's mass has no face
    keys = list(rows[groups].drop_duplicates().itertuples(index=False, name=None)) if groups else [None]
    fig = Figure(figsize=(3.0 * len(keys), 3.6), layout="constrained")
    for ax, key in zip(np.atleast_1d(fig.subplots(1, len(keys))), keys):
        plot_region_overlay(table, mean_face, ax=ax, kind=kind,
                            group=key[0] if key is not None and len(key) == 1 else key)
    return fig


def _region_html(rows, groups: list[str]) -> str:
    """One kind of the region table: a row per region, a column per group, "share (low-high)" in percent."""
    if groups:
        keyed = rows.assign(_group=[", ".join(map(str, k)) for k in rows[groups].itertuples(index=False, name=None)])
    else:
        keyed = rows.assign(_group="all pairs")
    names = list(dict.fromkeys(keyed["_group"]))
    counts = {g: int(keyed.loc[keyed["_group"] == g, "n"].max()) for g in names}
    body = []
    for region in dict.fromkeys(keyed["region"]):
        cells = [str(region).replace("_", " ")]
        for g in names:
            match = keyed[(keyed["region"] == region) & (keyed["_group"] == g)]
            cells.append(_share_text(match.iloc[0]) if len(match) else "")
        body.append(cells)
    return _table(["region", *(f"{g} (n={counts[g]})" for g in names)], body)


def _share_text(row) -> str:
    def percent(value) -> str:
        return "n/a" if not np.isfinite(value) else f"{100 * value:.1f}%"

    if not np.isfinite(row["share"]):
        return "n/a"
    if not (np.isfinite(row["low"]) and np.isfinite(row["high"])):
        return percent(row["share"])
    return f"{percent(row['share'])} ({percent(row['low'])} to {percent(row['high'])})"


def _timing(results, out: Path, figures: dict[str, str]) -> str:
    from matplotlib.figure import Figure

    table = results.table
    seconds = table.loc[table["error"].isna(), "seconds"].to_numpy(dtype=float)
    head = "<h2>Time per pair</h2>"
    if not len(seconds):
        return f"{head}\n<p>No explained pairs.</p>"
    facts = _facts([("mean", f"{seconds.mean():.3f} s"), ("median", f"{np.median(seconds):.3f} s"),
                    ("total", f"{seconds.sum():.1f} s over {len(seconds)} explained pairs")])
    fig = Figure(figsize=(5, 2.6), layout="constrained")
    ax = fig.subplots()
    ax.hist(seconds, bins=min(30, max(5, len(seconds) // 2)), color="#4a7ab5")
    ax.set_xlabel("seconds per pair (one process's wall time)")
    ax.set_ylabel("pairs")
    return f"{head}\n{facts}\n{_figure(fig, out, 'seconds', figures, 'histogram of seconds per pair')}"


def _errors(results) -> str:
    failed = results.failed().table
    head = f"<h2>Failed pairs</h2>\n<p>{_count(len(failed), 'pair')} could not be explained.</p>"
    if not len(failed):
        return head
    rows = [[int(r.pair_id), r.a, r.b, r.error] for r in failed.head(_MAX_ERRORS).itertuples()]
    more = (f"<p class=\"note\">... and {len(failed) - _MAX_ERRORS} more (rs.failed().table lists them).</p>"
            if len(failed) > _MAX_ERRORS else "")
    return f"{head}\n<div class=\"error\">{_table(['pair', 'image A', 'image B', 'error'], rows)}</div>\n{more}"
