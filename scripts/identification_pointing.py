"""Pointing game of the contrastive maps of 1:N identification, against the pair maps, on johns.

For every ordered pair of johns identities (P, Q) and every facial region
(eyes, nose, mouth), a chip of P gets that region pasted from a chip of Q
(:func:`fxplain.evaluation.planted_contrast.planted_contrast_cases`); cases
where the paste moved the contrast ``s(x, P) − s(x, Q)`` by less than
``--min-shift`` score units are dropped. Each hybrid is searched in the
gallery of P's and Q's other chips (``mate=P``), and scored: does the
maximum of the contrastive map "for Q over P" fall in the pasted region
(8-px tolerance), and does the maximum of the hybrid's pair dissimilarity map
against P's representative image? Per method and seed the table gives both
rates, the mean mass inside the region, and the chance level (the region's
area share, with the tolerance).

    .venv/bin/python scripts/identification_pointing.py                      # all methods, seeds 0 1 2
    .venv/bin/python scripts/identification_pointing.py --methods occlusion --seeds 0

The numbers in docs/identification.md come from this script.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

import numpy as np

import fxplain
from fxplain import datasets
from fxplain.evaluation.planted_contrast import planted_contrast_cases, score_planted_contrast

#: Method settings of the table (cheaper than the defaults where noted, so the full set runs in an hour or so).
CONFIGS = {
    "occlusion": {"method": "occlusion", "patch_sizes": (30,)},             # default sizes 20/30/40
    "corrrise": {"method": "corrrise", "n_masks": 250},                      # default 500
    "gradient": {"method": "gradient", "steps": 8, "samples": 2},            # integrated; default 16 x 8
    "reconstruction": {"method": "reconstruction"},                          # counterfactual, default decoder
}


def chance(box: tuple[int, int, int, int], size: tuple[int, int], tolerance: int) -> float:
    """Share of the chip within ``tolerance`` of the box: the pointing rate of a random maximum."""
    top, left, bottom, right = box
    h = min(bottom + tolerance, size[0]) - max(top - tolerance, 0)
    w = min(right + tolerance, size[1]) - max(left - tolerance, 0)
    return h * w / (size[0] * size[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", default=",".join(CONFIGS), help="comma-separated, among " + ", ".join(CONFIGS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--min-shift", type=float, default=0.1, help="score units (default: %(default)s)")
    parser.add_argument("--tolerance", type=int, default=8)
    parser.add_argument("--limit", type=int, default=20,
                        help="at most this many cases per seed, drawn at random (default: %(default)s; 0: all)")
    args = parser.parse_args(argv)
    model = fxplain.load_model("dlib")
    images, identities, paths = datasets.load_johns()
    items = [(i, str(p)) for i, p in zip(identities, paths)]
    embeddings = model.embed(images, batch_size=64)
    cache = tempfile.mkdtemp(prefix="fxplain-gallery-")
    print("| method | seed | cases | contrastive map: pointing | pair map: pointing | contrastive mass | "
          "pair mass | chance (area, tolerance) | rank-1 flipped | s/case |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    totals: dict[str, list[tuple[float, float]]] = {}
    regions: dict[tuple[str, str], list[tuple[bool, bool]]] = {}
    for name in args.methods.split(","):
        config = dict(CONFIGS[name])
        method = config.pop("method")
        for seed in args.seeds:
            cases = planted_contrast_cases(model, images, identities, seed=seed, min_shift=args.min_shift,
                                           embeddings=embeddings)
            if args.limit:
                chosen = np.random.default_rng([seed, 1]).permutation(len(cases))[:args.limit]
                cases = [cases[k] for k in sorted(chosen)]
            start = time.perf_counter()
            rows = [score_planted_contrast(model, case, items, method, tolerance=args.tolerance, seed=seed,
                                           cache_dir=cache, **config) for case in cases]
            seconds = (time.perf_counter() - start) / max(len(cases), 1)
            contrast = np.mean([r["contrast_hit"] for r in rows])
            pair = np.mean([r["pair_hit"] for r in rows])
            area = np.mean([chance(c.box, images.shape[1:3], 0) for c in cases])
            tolerant = np.mean([chance(c.box, images.shape[1:3], args.tolerance) for c in cases])
            totals.setdefault(name, []).append((contrast, pair))
            for case, row in zip(cases, rows):
                regions.setdefault((name, case.region), []).append((row["contrast_hit"], row["pair_hit"]))
            print(f"| {name} | {seed} | {len(cases)} | {contrast:.2f} | {pair:.2f} | "
                  f"{np.mean([r['contrast_mass'] for r in rows]):.2f} | {np.mean([r['pair_mass'] for r in rows]):.2f} | "
                  f"{area:.2f}, {tolerant:.2f} | {np.mean([r['flipped'] for r in rows]):.2f} | {seconds:.1f} |",
                  flush=True)
    print()
    for name, values in totals.items():
        c, p = np.array(values).T
        print(f"{name}: contrastive {c.mean():.2f} (seeds {c.min():.2f}-{c.max():.2f}), "
              f"pair {p.mean():.2f} (seeds {p.min():.2f}-{p.max():.2f}); by region (contrastive / pair): " + ", ".join(
                  f"{region} {np.mean([h[0] for h in hits]):.2f} / {np.mean([h[1] for h in hits]):.2f} ({len(hits)})"
                  for (method, region), hits in regions.items() if method == name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
