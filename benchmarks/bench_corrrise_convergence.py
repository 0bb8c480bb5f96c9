"""How fast CorrRISE converges: fixed random masks versus ``n_masks="auto"`` (orthogonal sampling).

Two measurements on johns chips (dlib's model unless ``--model``):

* **stability and time** on ``--pairs`` genuine and as many impostor pairs
  (drawn with ``--pair-seed``; each pair explained with mask seeds 0 and 1):
  per configuration the time per pair, the masks used, the split-half
  (Spearman–Brown) stability the run reaches — for the fixed 1,000 random
  masks computed exactly as the converged mode computes it — and the
  test-retest rank correlation of each image's signed map between the two
  seeds (the agreement the stability predicts);
* **planted-difference pointing** on ``--planted`` hybrids per region
  (:func:`fxplain.evaluation.planted.planted_difference_pairs`, seeds
  ``--planted-seeds``): does the hybrid's dissimilarity maximum fall in the
  pasted region (8 px tolerance, as the evaluation suite scores it).

Usage::

    python benchmarks/bench_corrrise_convergence.py [--pairs 3] [--pair-seed 0] [--planted 2] [--planted-seeds 0,1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import fxplain
from fxplain import datasets
from fxplain._util.stats import average_ranks
from fxplain.evaluation import metrics
from fxplain.evaluation.planted import planted_difference_pairs

#: name -> CorrRISE parameters. "random-1000" is the fixed run of 1,000 random masks: the converged
#: mode with random sampling, an unreachable tolerance and a cap of 1,000 gives the same maps and
#: reports the split-half stability of those 1,000 masks.
CONFIGS = {
    "random-500": {"n_masks": 500},
    "random-1000": {"n_masks": "auto", "sampling": "random", "tolerance": 1e-9, "max_masks": 1000},
    "orthogonal-272": {"n_masks": 272, "sampling": "orthogonal"},
    "auto": {"n_masks": "auto"},
}


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(average_ranks(a.ravel()), average_ranks(b.ravel()))[0, 1])


def stability_and_time(model, images, pairs, configs) -> None:
    print(f"{'config':>15} {'pair':>9} {'label':>8} {'s/pair':>7} {'masks (A/B, 2 seeds)':>19} {'stability':>9} "
          f"{'retest A':>8} {'retest B':>8}")
    summary: dict[str, dict[str, list]] = {name: {"time": [], "masks": [], "stability": [], "retest": []}
                                           for name in configs}
    for a, b, genuine in pairs:
        for name, params in configs.items():
            maps, times, used, stable = [], [], [], []
            for seed in (0, 1):
                explainer = fxplain.Explainer(model, method="corrrise", seed=seed, **params)
                start = time.perf_counter()
                r = explainer.explain(images[a], images[b])
                times.append(time.perf_counter() - start)
                maps.append(r.evidence)
                used += r.extras.get("n_masks_used", [params["n_masks"]] * 2)  # per image
                stable += r.extras.get("stability", [float("nan")] * 2)
            retest = [rank_correlation(maps[0][side], maps[1][side]) for side in (0, 1)]
            s = summary[name]
            s["time"] += times
            s["masks"] += used
            s["stability"] += stable
            s["retest"] += retest
            print(f"{name:>15} {f'{a}-{b}':>9} {'genuine' if genuine else 'impostor':>8} {np.mean(times):7.2f} "
                  f"{'/'.join(map(str, used)):>19} {np.nanmin(stable):9.3f} {retest[0]:8.3f} {retest[1]:8.3f}",
                  flush=True)
    print("\nsummary (over pairs, seeds and sides):")
    base = np.median(summary["random-1000"]["time"])
    for name, s in summary.items():
        masks = np.asarray(s["masks"], float)
        print(f"{name:>15}: time/pair median {np.median(s['time']):.2f} s ({np.median(s['time']) / base:.2f}x "
              f"random-1000), masks used min/median/max {masks.min():.0f}/{np.median(masks):.0f}/{masks.max():.0f}, "
              f"stability {np.nanmin(s['stability']):.3f}-{np.nanmax(s['stability']):.3f}, "
              f"retest {np.min(s['retest']):.3f}-{np.max(s['retest']):.3f} (mean {np.mean(s['retest']):.3f})")


def planted_pointing(model, images, identities, per_region, seeds, configs) -> None:
    print("\nplanted-difference pointing (hit rate; per hybrid set):")
    for name, params in configs.items():
        rates = []
        for seed in seeds:
            hybrids = planted_difference_pairs(images, identities, per_region=per_region, seed=seed)
            explainer = fxplain.Explainer(model, method="corrrise", seed=seed, **params)
            hits = [metrics.pointing_hit(explainer.explain(p.hybrid, p.partner).dissimilarity[0], p.box,
                                         tolerance=8) for p in hybrids]
            rates.append(float(np.mean(hits)))
        print(f"{name:>15}: " + "  ".join(f"seed {s}: {r:.2f} (n={len(hybrids)})" for s, r in zip(seeds, rates))
              + f"  mean {np.mean(rates):.2f}", flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="dlib")
    parser.add_argument("--pairs", type=int, default=3, help="genuine pairs (and as many impostor pairs)")
    parser.add_argument("--pair-seed", type=int, default=0)
    parser.add_argument("--planted", type=int, default=2, help="hybrids per region and seed (0: skip)")
    parser.add_argument("--planted-seeds", default="0,1")
    parser.add_argument("--configs", default=",".join(CONFIGS))
    args = parser.parse_args(argv)
    configs = {name: CONFIGS[name] for name in args.configs.split(",")}
    model = fxplain.load_model(args.model)
    images, identities, _ = datasets.load_johns()
    pairs, labels = datasets.johns_pairs()
    pairs, labels = np.asarray(pairs), np.asarray(labels, bool)
    rng = np.random.default_rng(args.pair_seed)
    chosen = [(*pairs[i], True) for i in rng.choice(np.flatnonzero(labels), args.pairs, replace=False)]
    chosen += [(*pairs[i], False) for i in rng.choice(np.flatnonzero(~labels), args.pairs, replace=False)]
    stability_and_time(model, images, chosen, configs)
    if args.planted:
        planted_pointing(model, images, identities, args.planted,
                         [int(s) for s in args.planted_seeds.split(",")], configs)


if __name__ == "__main__":
    main()
