"""The numbers behind fxplain's test assertions, computed with the evaluation's own pieces.

* :func:`explain`: the pairs explained by one method and seed, kept for the
  test session (several assertions on the same pairs explain them once);
* :func:`baseline_comparison`: deletion and insertion areas of a method and
  of the baselines on the same pairs (:mod:`fxplain.evaluation.pair_scores`,
  :mod:`fxplain.evaluation.baselines`), as an
  :class:`~fxplain.EvaluationReport`;
* :func:`seed_correlations`, :func:`sanity_correlations`: Spearman rank
  correlations of maps between seeds, and between the model and its
  randomised copy (:mod:`fxplain.evaluation.sanity`).

The defaults are cheap, for a team's CI: :data:`QUICK_PARAMS` lowers
CorrRISE's masks, and deletion/insertion use 10 steps.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import numpy as np

from .._util.errors import InvalidInputError
from .._util.validation import check_positive_int, check_seed
from ..evaluation import metrics
from ..evaluation.baselines import center_gaussian_map, random_map
from ..evaluation.pair_scores import DeletionInsertion, pair_curves
from ..evaluation.report import EvaluationReport
from ..evaluation.sanity import randomized_model
from ..explainer import Explainer
from ..models.face_model import FaceModel
from ..protocols.pairs import Pair, as_pairs
from ..results import PairExplanation
from ..runtime.layers import LAYERS

#: Parameters the assertions give a method unless the caller sets them: CorrRISE with 200 masks instead of
#: the Explainer's 500 (seed-to-seed rank correlation ~0.6-0.8 on johns instead of ~0.8, at 40 % of the cost).
QUICK_PARAMS: dict[str, dict[str, Any]] = {"corrrise": {"n_masks": 200}}
#: Spellings of the baselines the assertions accept, to the names of the evaluation's reports.
BASELINE_NAMES = {"random": "random", "center": "center", "centre": "center"}
#: Explanations kept for the session: enough for a few methods on the plugin's small pair sets, while
#: bounding memory (one 150x150 explanation holds about 0.5 MB).
_CACHE_SIZE = 64
_cache: OrderedDict[tuple, PairExplanation] = OrderedDict()


def with_quick_defaults(method: str, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` completed with :data:`QUICK_PARAMS` of ``method`` (the caller's values win)."""
    return {**QUICK_PARAMS.get(method, {}), **params}


def pair_list(pairs: Any) -> tuple[Pair, ...]:
    """One :class:`~fxplain.Pair`, or an iterable of Pairs / ``(a, b[, same])`` file tuples, as Pairs."""
    return (pairs,) if isinstance(pairs, Pair) else as_pairs(pairs)


def explain(model, pairs: Any, method: str = "corrrise", *, seed: int = 0, **params: Any) -> list[PairExplanation]:
    """Explain every pair with ``method`` (and :data:`QUICK_PARAMS` unless overridden), kept for the session.

    The same model (weights and threshold), method, parameters, seed and
    image files give the same explanation, so a second assertion on the
    same pairs costs nothing. The explanations are shared: do not change
    their arrays in place.
    """
    params = with_quick_defaults(method, params)
    explainer = Explainer(model, method=method, seed=seed, **params)
    out = []
    for pair in pair_list(pairs):
        key = (model.model_hash, getattr(model, "threshold", None), method,
               json.dumps(params, sort_keys=True, default=repr), seed, os.fspath(pair.a), os.fspath(pair.b))
        if key not in _cache:
            _cache[key] = explainer.explain(pair.a, pair.b)
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
        _cache.move_to_end(key)
        out.append(_cache[key])
    return out


def baseline_comparison(model, pairs: Any, method: str = "corrrise", baselines: Iterable[str] = ("random", "center"),
                        *, steps: int = 10, fill: Any = "mean", seed: int = 0, **params: Any) -> EvaluationReport:
    """Deletion and insertion areas of ``method`` and of each baseline on the same labelled pairs.

    As :func:`fxplain.evaluate` scores them (:class:`~fxplain.evaluation.pair_scores.DeletionInsertion`):
    genuine pairs rank pixels by their similarity evidence, impostor pairs
    by their dissimilarity evidence; each side's pixels are deleted
    (inserted) in ``steps`` steps and the side re-scored against its intact
    partner; a curve is the normalised margin. The report's rows (method
    first, then the baselines) hold ``deletion_auc`` and ``insertion_auc``
    over all pairs' sides, and the same per map kind
    (``deletion_similarity_auc`` ...) with the accuracy areas, as the
    evaluation's table; its ``curves`` are the mean curves.
    """
    pairs = pair_list(pairs)
    unlabelled = [k for k, p in enumerate(pairs) if p.same is None]
    if unlabelled:
        raise InvalidInputError(f"deletion/insertion need labelled pairs (same=True/False); pairs {unlabelled} "
                                "have no label")
    names = [BASELINE_NAMES.get(b) for b in baselines]
    if not names or None in names:
        raise InvalidInputError(f"baselines must be some of {sorted(BASELINE_NAMES)}, got {list(baselines)!r}")
    scorer = DeletionInsertion(steps=check_positive_int("steps", steps), fill=fill)
    scorer.describe()  # refuses a bad fill before any explanation runs
    seed = check_seed(seed)
    results = explain(model, pairs, method, seed=seed, **params)
    scored = {method: [scorer(model, r, p.same) for r, p in zip(results, pairs)]}
    for name in dict.fromkeys(names):
        scored[name] = [pair_curves(model, r.images, _baseline_maps(name, r.images.shape[1:3], seed, k), p.same,
                                    steps, fill) for k, (r, p) in enumerate(zip(results, pairs))]
    rows, curves = [], {}
    for name, per_pair in scored.items():
        row, curves[name] = _summary(per_pair)
        rows.append({"method": name, **row})
    settings = {"method": method, "params": with_quick_defaults(method, params), "seed": seed, "steps": steps,
                "fill": fill if isinstance(fill, str) else np.ravel(fill).tolist(), "model": model.name,
                "model_hash": model.model_hash, "baselines": list(dict.fromkeys(names)),
                "pairs": [{"a": str(p.a), "b": str(p.b), "same": p.same} for p in pairs]}
    return EvaluationReport(rows, curves, settings)


def seed_correlations(model, pairs: Any, method: str = "corrrise", seeds: Iterable[int] = (0, 1),
                      **params: Any) -> list[dict[str, Any]]:
    """Spearman correlation of each pair's evidence maps between every two of ``seeds``.

    One row per pair and pair of seeds: ``{"pair", "seeds", "rho"}``, rho the
    mean over the two images of the correlation of their signed evidence maps.
    """
    seeds = [check_seed(s) for s in seeds]
    if len(set(seeds)) < 2:
        raise InvalidInputError(f"need at least two different seeds, got {seeds}")
    pairs = pair_list(pairs)
    maps = {s: explain(model, pairs, method, seed=s, **params) for s in seeds}
    return [{"pair": k, "seeds": [s, t], "rho": _rho(maps[s][k], maps[t][k])}
            for k in range(len(pairs)) for i, s in enumerate(seeds) for t in seeds[i + 1:]]


def sanity_correlations(model, pairs: Any, method: str = "corrrise", *, seed: int = 0,
                        **params: Any) -> tuple[list[float], int]:
    """Spearman correlation of each pair's evidence maps on the model and on its randomised copy.

    The copy has the weights of every convolution and dense layer redrawn
    (:func:`fxplain.evaluation.sanity.randomized_model` with ``seed``), as
    the evaluation's sanity score; the method explains the copy as
    :func:`fxplain.evaluate` has it do (the reconstruction method keeps the
    model's decoder). Returns the correlations (mean over the two images)
    and the number of layers redrawn.
    """
    seed = check_seed(seed)
    pairs = pair_list(pairs)
    if not isinstance(model, FaceModel):
        raise InvalidInputError("the sanity check redraws the model's weights: it needs a model on fxplain's core "
                                f"(fxplain.load_model, fxplain.from_torch), got {type(model).__name__}")
    n_layers = sum(LAYERS[layer.kind].trainable for layer in model.spec.layers)
    randomized = randomized_model(model, n_layers, seed=seed)
    before = explain(model, pairs, method, seed=seed, **params)
    params = with_quick_defaults(method, params)
    other = Explainer(randomized, method=method, seed=seed)
    other.method = Explainer(model, method=method, seed=seed, **params).method.for_randomised_model(model)
    return [_rho(b, other.explain(p.a, p.b)) for b, p in zip(before, pairs)], n_layers


def _rho(first: PairExplanation, second: PairExplanation) -> float:
    """Spearman correlation of two explanations' signed evidence, averaged over the two images."""
    return float(np.mean([metrics.spearman(first.evidence[k], second.evidence[k]) for k in range(2)]))


def _baseline_maps(name: str, shape: tuple[int, int], seed: int, k: int) -> np.ndarray:
    """A baseline's ranking maps (2, H, W) for pair ``k``: fresh noise per pair and side, or the centre prior."""
    if name == "random":
        return np.stack([random_map(shape, seed=seed * 1_000_003 + 2 * k + side) for side in range(2)])
    return np.stack([center_gaussian_map(shape)] * 2)


def _summary(per_pair: list[dict[str, Any]]) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Areas under the mean curves, over all sides and per map kind (as the evaluation's table), and the curves."""
    collected: dict[str, list] = {}
    for scores in per_pair:
        for mode in ("deletion", "insertion"):
            for key in (mode, f"{mode}_{scores['kind']}"):
                collected.setdefault(key, []).extend(scores[mode])
            collected.setdefault(f"{mode}_{scores['kind']}_accuracy", []).extend(scores[f"{mode}_accuracy"])
    row, curves = {}, {}
    for key in sorted(collected, key=lambda k: (k.count("_"), k)):  # the overall areas first
        curve = np.mean(np.asarray(collected[key], np.float64), axis=0)
        row[f"{key}_auc"] = metrics.normalized_auc(curve)
        if key not in ("deletion", "insertion"):
            curves[key] = curve
    row["pairs"] = len(per_pair)
    return row, curves

