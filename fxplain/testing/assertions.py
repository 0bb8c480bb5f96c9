"""Assertions about a face-recognition model's explanations, for a team's own test suite.

>>> from fxplain.testing import assert_beats_baselines, assert_sanity_check
>>> def test_explanations_are_faithful(fxplain_model, fxplain_pairs):
...     assert_beats_baselines(fxplain_model, fxplain_pairs, method="corrrise", metric="both")
...     assert_sanity_check(fxplain_model, fxplain_pairs[:2], method="corrrise")

Each helper computes its numbers with fxplain's evaluation pieces
(:mod:`fxplain.testing.faithfulness`), writes them to the plugin's report
folder when one is set (:mod:`fxplain.testing.recording`), and raises
AssertionError whose message quotes them: the method's value, the baselines'
or the bound, and how many pairs or maps. Bad arguments raise
:class:`~fxplain.InvalidInputError`. See docs/testing.md for what each
check costs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from .._util.errors import InvalidInputError
from .._util.validation import is_finite_number
from ..evaluation.pair_scores import BETTER
from ..evaluation.report import EvaluationReport
from ..faces.regions import REGION_NAMES
from ..results import PairExplanation
from . import faithfulness, recording

_METRICS = {"deletion": ("deletion",), "insertion": ("insertion",), "both": ("deletion", "insertion")}
_KINDS = {"similarity": ("similarity",), "dissimilarity": ("dissimilarity",), "both": ("similarity", "dissimilarity")}
#: The default of :func:`assert_region_shares`: at most half of the evidence off the face (on a 150x150 dlib
#: chip "outside" covers 31 % of the pixels, so a uniform map has 0.31 there).
DEFAULT_REGION_BOUNDS = MappingProxyType({"outside": (0.0, 0.5)})


def assert_beats_baselines(model, pairs: Any, method: str = "corrrise", metric: str = "both",
                           baselines: Iterable[str] = ("random", "center"), margin: float = 0.0, *,
                           steps: int = 10, fill: Any = "mean", seed: int = 0,
                           **method_params: Any) -> EvaluationReport:
    """Assert that ``method``'s maps beat the baseline maps on deletion and/or insertion.

    Deletion and insertion for verification as :func:`fxplain.evaluate`
    measures them (docs/evaluation.md): a genuine pair's pixels are removed
    (or inserted) in the order of its similarity evidence, an impostor
    pair's in the order of its dissimilarity evidence, and each image is
    re-scored against its intact partner; the value is the area under the
    normalised-margin curve over all pairs' images. **Deletion: lower is
    better** (a faithful map makes the margin fall fast); **insertion:
    higher is better**. The method must beat every baseline by more than
    ``margin``.

    Cost: each pair explained once (CorrRISE: 200 passes of the model per
    image), plus ``4 * (steps + 1)`` passes per pair for the method and for
    each baseline.

    Parameters
    ----------
    model : FaceModel or CallableModel
        With a decision threshold.
    pairs : Pair or iterable of Pair / (a, b, same)
        Labelled pairs of image files (the plugin's ``fxplain_pairs``).
    method : str
        An explanation method (:meth:`fxplain.Explainer.methods`).
    metric : {"both", "deletion", "insertion"}
    baselines : iterable of str
        Among ``"random"`` (uniform noise) and ``"center"`` (or ``"centre"``:
        a centred Gaussian, a strong prior on aligned chips).
    margin : float
        How much better than each baseline the method must be (in AUC units).
    steps : int
        Deletion/insertion steps (the evaluation's default is 20; 10 halves the cost).
    fill : str or colour
        What removed pixels become (``"mean"``, ``"blur"``, ...).
    seed : int
        The method's seed (and the random baseline's).
    **method_params
        The method's parameters; CorrRISE gets ``n_masks=200`` unless given
        (:data:`fxplain.testing.faithfulness.QUICK_PARAMS`).

    Returns
    -------
    EvaluationReport
        The method's and the baselines' areas (``report.table``) and curves.
    """
    __tracebackhide__ = True  # pytest shows the failure at the caller's line, not in here
    if metric not in _METRICS:
        raise InvalidInputError(f"metric must be one of {sorted(_METRICS)}, got {metric!r}")
    if not is_finite_number(margin) or margin < 0:
        raise InvalidInputError(f"margin must be a non-negative number, got {margin!r}")
    report = faithfulness.baseline_comparison(model, pairs, method, tuple(baselines), steps=steps, fill=fill,
                                              seed=seed, **method_params)
    rows = {row["method"]: row for row in report.rows}
    ours, others = rows[method], [name for name in rows if name != method]
    lines, failed, checks = [], False, []
    for mode in _METRICS[metric]:
        direction = BETTER[f"{mode}_auc"]
        value = ours[f"{mode}_auc"]
        parts = []
        for name in others:
            other = rows[name][f"{mode}_auc"]
            bar = other - margin if direction == "lower" else other + margin
            ok = value < bar if direction == "lower" else value > bar
            failed |= not ok
            checks.append({"metric": f"{mode}_auc", "baseline": name, "method_value": value, "baseline_value": other,
                           "bar": bar, "passed": bool(ok)})
            parts.append(f"{name} {other:.3f} -> needs {'<' if direction == 'lower' else '>'} {bar:.3f}: "
                         f"{'ok' if ok else 'FAILED'}")
        lines.append(f"  {mode} AUC ({direction} is better): {method} {value:.3f}; " + "; ".join(parts))
    pairs = faithfulness.pair_list(pairs)
    n_genuine = sum(bool(p.same) for p in pairs)
    kinds = [f"{mode}_{kind}_auc" for mode in _METRICS[metric] for kind in ("similarity", "dissimilarity")
             if f"{mode}_{kind}_auc" in ours]
    per_kind = "; ".join(f"{key[:-4].replace('_', ' ')} " + " / ".join(f"{rows[n][key]:.3f}" for n in rows)
                         for key in kinds)
    header = (f"{method} {'does not beat' if failed else 'beats'} the baselines on {len(pairs)} pairs "
              f"({n_genuine} genuine, {len(pairs) - n_genuine} impostor) of model {model.name!r}:")
    message = "\n".join([header, *lines,
                         f"  per map kind ({' / '.join(rows)}): {per_kind}",
                         (f"  settings: {_params(report.settings['params'])}, seed {seed}, {steps} steps, "
                          f"fill {fill!r}, margin {margin:g}")])
    recording.record("assert_beats_baselines", {"passed": not failed, "message": message, "checks": checks,
                                                "rows": report.rows, "settings": report.settings}, report)
    if failed:
        raise AssertionError(message)
    return report


def assert_stable_under_seed(model, pairs: Any, method: str = "corrrise", seeds: Iterable[int] = (0, 1),
                             min_rank_correlation: float = 0.5, **method_params: Any) -> list[dict[str, Any]]:
    """Assert that ``method``'s maps hardly depend on its seed: mean Spearman correlation ``>= min_rank_correlation``.

    Each pair is explained with every seed; the Spearman rank correlation
    of its signed evidence maps (similarity − dissimilarity, averaged over
    the two images) between every two seeds is computed, and their mean over
    pairs and seed pairs must reach ``min_rank_correlation``. Deterministic
    methods (occlusion) give 1. CorrRISE on johns gives about 0.6 to 0.8
    with 200 masks, 0.8 with 500.

    ``pairs``: one Pair or several (labels not needed). Returns the rows
    ``{"pair", "seeds", "rho"}``. Cost: each pair explained once per seed
    (the first seed's explanations are shared with the other assertions).
    """
    __tracebackhide__ = True
    _check_unit_bound("min_rank_correlation", min_rank_correlation)
    rows = faithfulness.seed_correlations(model, pairs, method, tuple(seeds), **method_params)
    value = float(np.mean([r["rho"] for r in rows]))
    ok = value >= min_rank_correlation
    n_pairs = len({r["pair"] for r in rows})
    each = ", ".join(f"{r['rho']:.3f}" for r in rows)
    message = (f"{method} maps {'are' if ok else 'are not'} stable under the seed: mean Spearman rank correlation "
               f"{value:.3f} {'>=' if ok else '<'} {min_rank_correlation:.3f} required (seeds "
               f"{', '.join(str(s) for s in dict.fromkeys(seeds))}; {n_pairs} pair{'s' * (n_pairs != 1)}; "
               f"per pair and seed pair: {each}; "
               f"{_params(faithfulness.with_quick_defaults(method, method_params))})")
    recording.record("assert_stable_under_seed", {"passed": ok, "message": message, "mean_rho": value,
                                                  "min_rank_correlation": min_rank_correlation, "rows": rows})
    if not ok:
        raise AssertionError(message)
    return rows


def assert_sanity_check(model, pairs: Any, method: str = "corrrise", max_rank_correlation: float = 0.8, *,
                        seed: int = 0, **method_params: Any) -> list[float]:
    """Assert that ``method``'s maps change when the model's weights are randomised (Adebayo et al., 2018).

    The weights of every convolution and dense layer are redrawn
    (:func:`fxplain.evaluation.sanity.randomized_model`, ``seed``), each pair
    is explained on the model and on the randomised copy, and the Spearman
    correlation of the signed evidence maps (averaged over the two images)
    must stay at most ``max_rank_correlation`` on average over the pairs: a
    method whose maps survive randomisation shows the image, not the model.
    fxplain's own test suite uses 0.8 (docs/evaluation.md: −0.03 to 0.66 for
    its methods on johns).

    Needs a model on fxplain's core. Returns the per-pair correlations.
    Cost: each pair explained twice (the model's explanation is shared with
    the other assertions).
    """
    __tracebackhide__ = True
    _check_unit_bound("max_rank_correlation", max_rank_correlation)
    rhos, n_layers = faithfulness.sanity_correlations(model, pairs, method, seed=seed, **method_params)
    value = float(np.mean(rhos))
    ok = value <= max_rank_correlation
    message = (f"{method} {'passes' if ok else 'fails'} the model-randomisation sanity check: with all {n_layers} "
               f"convolution/dense layers of model {model.name!r} redrawn (seed {seed}), the maps' mean Spearman "
               f"correlation with the model's is {value:.3f} {'<=' if ok else '>'} {max_rank_correlation:.3f} "
               f"allowed ({len(rhos)} pair{'s' * (len(rhos) != 1)}: {', '.join(f'{r:.3f}' for r in rhos)}; "
               f"{_params(faithfulness.with_quick_defaults(method, method_params))})"
               + ("" if ok else ": the maps do not depend on the model's weights"))
    recording.record("assert_sanity_check", {"passed": ok, "message": message, "mean_rho": value, "rhos": rhos,
                                             "max_rank_correlation": max_rank_correlation, "layers": n_layers})
    if not ok:
        raise AssertionError(message)
    return rhos


def assert_region_shares(explanations: Any, bounds: Mapping[str, tuple[float, float]] = DEFAULT_REGION_BOUNDS,
                         kind: str = "dissimilarity", *, each: bool = False):
    """Assert that the share of the maps' mass in facial regions lies within ``bounds``.

    ``bounds`` maps region names of :data:`fxplain.faces.regions.REGION_NAMES`
    (eyes, brows, nose, mouth, cheeks, forehead, chin_jaw, rest_of_face,
    outside) to ``(low, high)`` shares in [0, 1]; the default allows at most
    half of the mass outside the face. ``kind``: ``"dissimilarity"``,
    ``"similarity"`` or ``"both"``. The shares come from
    :meth:`fxplain.PairExplanation.region_shares` for both images of every
    explanation; by default their mean over those maps is checked, with
    ``each=True`` every map. Maps with no mass at all (no dissimilarity in
    a pair the model finds alike throughout) have no shares and are left
    out. Costs nothing beyond the explanations (:func:`fxplain.testing.explain`).

    Returns the shares table (pandas DataFrame, a row per explanation, side and kind).
    """
    __tracebackhide__ = True
    import pandas as pd

    results = [explanations] if isinstance(explanations, PairExplanation) else list(explanations)
    if not results or not all(isinstance(r, PairExplanation) for r in results):
        raise InvalidInputError("explanations must be a PairExplanation or a non-empty list of them")
    if kind not in _KINDS:
        raise InvalidInputError(f"kind must be one of {sorted(_KINDS)}, got {kind!r}")
    bounds = _checked_bounds(bounds)
    table = pd.concat([r.region_shares() for r in results], keys=range(len(results)), names=["explanation"])
    table = table[table.index.get_level_values("kind").isin(_KINDS[kind])]
    table = table[table.notna().all(axis=1)]
    if table.empty:
        raise AssertionError(f"no {kind} map of the {len(results)} explanations has any mass: no region shares to "
                             "check")
    # what a uniform map would put in each region: its area on the chip, for the message's scale
    area = {name: float(np.mean([np.mean(r.region_labels(side) == REGION_NAMES.index(name))
                                 for r in results for side in "AB"])) for name in bounds}
    lines, checks = [], []
    for name, (low, high) in bounds.items():
        values = table[name].to_numpy(np.float64)
        tested = values if each else np.array([values.mean()])
        bad = ~((tested >= low) & (tested <= high))
        checks.append({"region": name, "low": low, "high": high, "mean": float(values.mean()),
                       "values": values.tolist(), "area": area[name], "passed": not bad.any()})
        what = f"{bad.sum()} of {len(values)} maps outside" if each else f"mean share {values.mean():.3f}, bounds"
        per_map = ", ".join(f"{v:.3f}" for v in values)
        lines.append(f"  {name}: {what} [{low:g}, {high:g}]: {'FAILED' if bad.any() else 'ok'} (per map: {per_map}; "
                     f"the region covers {area[name]:.3f} of the chip, a uniform map's share)")
    failed = not all(c["passed"] for c in checks)
    header = (f"{kind} region shares of {len(results)} explanation{'s' * (len(results) != 1)} "
              f"({len(table)} maps) {'are not' if failed else 'are'} within bounds:")
    message = "\n".join([header, *lines])
    recording.record("assert_region_shares", {"passed": not failed, "message": message, "kind": kind,
                                              "each": each, "checks": checks})
    if failed:
        raise AssertionError(message)
    return table


def _checked_bounds(bounds: Any) -> dict[str, tuple[float, float]]:
    if not isinstance(bounds, Mapping) or not bounds:
        raise InvalidInputError(f"bounds must be a non-empty dict region -> (low, high), got {bounds!r:.80}")
    out = {}
    for name, pair in bounds.items():
        if name not in REGION_NAMES:
            raise InvalidInputError(f"unknown region {name!r}; regions: {', '.join(REGION_NAMES)}")
        if not isinstance(pair, (tuple, list)) or len(pair) != 2 or not all(is_finite_number(v) for v in pair) \
                or not 0 <= pair[0] <= pair[1] <= 1:
            raise InvalidInputError(f"bounds[{name!r}] must be (low, high) with 0 <= low <= high <= 1, got {pair!r}")
        out[name] = (float(pair[0]), float(pair[1]))
    return out


def _check_unit_bound(name: str, value: Any) -> None:
    if not is_finite_number(value) or not -1 <= value <= 1:
        raise InvalidInputError(f"{name} must be a number in [-1, 1], got {value!r}")


def _params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in params.items()) or "default parameters"
