"""Low-precision perturbation passes (``precision="int8"`` / ``"bf16"``) against FP32: speed and map fidelity.

For each model (dlib's ResNet; insightface's IResNet-50 exported to ONNX with
random weights, built exactly as ``bench_onnx.py`` does) and each precision:

1. **Throughput of the perturbation passes**: one batch of ``--batch`` CorrRISE-
   masked copies of a johns chip, embedded by the FP32 model
   (``model.embed_pixels``) and by its low-precision view
   (``model.low_precision(p, pair).embed_pixels``, calibrated on the intact
   pair), repeats alternating (``_common.measure``), medians; images/s and
   the ratio to FP32.
2. **Map fidelity** on ``--pairs`` johns pairs (genuine and impostor
   alternating): occlusion and CorrRISE through ``fxplain.Explainer`` in FP32
   and in ``precision=p`` (same seed); the Spearman rank correlation of each
   image's signed map (similarity - dissimilarity) with FP32's; the
   wall-clock time of the whole explanation, FP32 and low precision
   alternating pair by pair.
3. **Planted differences** (``fxplain.evaluation.planted``): hybrids against a
   genuine partner; the pointing rate of the hybrid's dissimilarity map
   (its maximum inside the planted region) in FP32 and in ``p``. For the
   112x112 IResNet chips the regions are the 150x150 ones scaled by 112/150.
   IResNet-50 has random weights here (no model hub is reachable), so its
   pointing says nothing about the method; the FP32-vs-int8 agreement still
   does.

``bf16`` is reported as refused where oneDNN has no bf16 convolution (oneDNN
3.2 on AVX2-only CPUs).

Usage::

    python benchmarks/bench_precision.py [--models dlib,iresnet50] [--threads 2] [--pairs 3]
        [--planted-per-region 2] [--n-masks 300] [--iresnet-n-masks 64] [--quick]
        [--omp-wait-policy passive] [--throughput-only]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BENCHMARKS = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS))
sys.path.insert(0, str(BENCHMARKS.parent / "tests" / "models"))

from _common import measure, start_benchmark


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="dlib,iresnet50")
    parser.add_argument("--precisions", default="int8,bf16")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--omp-wait-policy", choices=("active", "passive"), default=None)
    parser.add_argument("--batch", type=int, default=64, help="perturbed images per throughput call (dlib)")
    parser.add_argument("--iresnet-batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--min-time", type=float, default=1.0)
    parser.add_argument("--pairs", type=int, default=3, help="johns pairs for the map fidelity")
    parser.add_argument("--iresnet-pairs", type=int, default=2)
    parser.add_argument("--planted-per-region", type=int, default=2)
    parser.add_argument("--iresnet-planted-per-region", type=int, default=1)
    parser.add_argument("--n-masks", type=int, default=300, help="CorrRISE masks (dlib)")
    parser.add_argument("--iresnet-n-masks", type=int, default=64)
    parser.add_argument("--iresnet-patch", type=int, default=28, help="occlusion patch for IResNet (one size)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="1 pair, 1 planted pair per region, fewer repeats")
    parser.add_argument("--methods", default="occlusion,corrrise")
    parser.add_argument("--throughput-only", action="store_true", help="only part 1 (no maps)")
    args = parser.parse_args(argv)
    if args.quick:
        args.pairs = args.iresnet_pairs = 1
        args.planted_per_region = args.iresnet_planted_per_region = 1
        args.repeats, args.min_time = 3, 0.5
    return args


def johns_pairs(identities: list[str], count: int) -> list[tuple[int, int]]:
    """Genuine and impostor johns pairs, alternating, deterministic."""
    ids = np.asarray(identities)
    genuine = [(i, j) for i in range(len(ids)) for j in range(i + 1, len(ids)) if ids[i] == ids[j]]
    impostor = [(i, j) for i in range(len(ids)) for j in range(i + 1, len(ids)) if ids[i] != ids[j]]
    rng = np.random.default_rng(7)
    g = [genuine[k] for k in rng.permutation(len(genuine))]
    m = [impostor[k] for k in rng.permutation(len(impostor))]
    return [(g if k % 2 == 0 else m)[k // 2] for k in range(count)]


def signed(result) -> np.ndarray:
    return result.similarity - result.dissimilarity


def bench_model(fxplain, name: str, model, chips: np.ndarray, identities: list[str], methods: dict, args,
                batch: int, n_pairs: int, per_region: int, regions) -> list[dict]:
    from fxplain.evaluation.metrics import energy_in_region, pointing_hit, spearman
    from fxplain.evaluation.planted import planted_difference_pairs

    rows = []
    pair = np.ascontiguousarray(chips[:2].astype(np.float32))
    masks = fxplain._core.masks_rise(args.seed, 0, batch, chips.shape[1], chips.shape[2], 7, 0.5)
    fill = pair[0].mean(axis=(0, 1))
    perturbed = np.ascontiguousarray(fill + masks[..., None] * (pair[0] - fill), np.float32)
    pairs = johns_pairs(identities, n_pairs)
    planted = planted_difference_pairs(chips, identities, per_region=per_region, regions=regions, seed=args.seed)
    for precision in args.precisions.split(","):
        row = {"model": name, "precision": precision}
        rows.append(row)
        try:
            view = model.low_precision(precision, pair)
        except fxplain.CoreError as exc:
            row["refused"] = str(exc)
            print(f"{name} {precision}: refused: {exc}")
            continue
        # 1. throughput of the perturbation passes
        times = measure({"fp32": lambda: model.embed_pixels(perturbed, batch_size=batch),
                         precision: lambda view=view: view.embed_pixels(perturbed, batch_size=batch)},
                        args.repeats, args.min_time)
        emb32, embq = times["fp32"].result, times[precision].result
        cos = np.sum(emb32 * embq, 1) / np.linalg.norm(emb32, axis=1) / np.linalg.norm(embq, axis=1)
        row.update(fp32_ips=batch / times["fp32"].median, ips=batch / times[precision].median,
                   emb_cos_min=float(cos.min()))
        row["ratio"] = row["ips"] / row["fp32_ips"]
        print(f"{name} {precision}: perturbation passes {row['fp32_ips']:.1f} img/s fp32, {row['ips']:.1f} "
              f"img/s {precision}, ratio {row['ratio']:.2f}; min cosine of perturbed embeddings "
              f"{row['emb_cos_min']:.5f}", flush=True)
        # 2. map fidelity and end-to-end time on johns pairs
        wanted = [] if args.throughput_only else args.methods.split(",")
        for method, params in ((k, v) for k, v in methods.items() if k in wanted):
            ex32 = fxplain.Explainer(model, method=method, seed=args.seed, batch_size=batch, **params)
            exq = fxplain.Explainer(model, method=method, seed=args.seed, batch_size=batch, precision=precision,
                                    **params)
            exq.explain(chips[0], chips[1])  # warm-up: builds the low-precision plans
            rhos, t32, tq = [], 0.0, 0.0
            for i, j in pairs:
                start = time.perf_counter()
                r32 = ex32.explain(chips[i], chips[j])
                t32 += time.perf_counter() - start
                start = time.perf_counter()
                rq = exq.explain(chips[i], chips[j])
                tq += time.perf_counter() - start
                rhos += [spearman(signed(r32)[k], signed(rq)[k]) for k in (0, 1)]
            # 3. planted differences: the hybrid's dissimilarity map should point into the region
            hits32 = hitsq = 0
            energy32, energyq = [], []
            for p in planted:
                r32 = ex32.explain(p.hybrid, p.partner)
                rq = exq.explain(p.hybrid, p.partner)
                hits32 += pointing_hit(r32.dissimilarity[0], p.box)
                hitsq += pointing_hit(rq.dissimilarity[0], p.box)
                energy32.append(energy_in_region(r32.dissimilarity[0], p.box))
                energyq.append(energy_in_region(rq.dissimilarity[0], p.box))
            row[method] = {"rho_min": float(np.min(rhos)), "rho_median": float(np.median(rhos)),
                           "time_ratio": t32 / tq, "t32": t32, "tq": tq,
                           "pointing_fp32": hits32 / len(planted), "pointing": hitsq / len(planted),
                           "planted": len(planted), "energy_fp32": float(np.mean(energy32)),
                           "energy": float(np.mean(energyq))}
            m = row[method]
            print(f"{name} {precision} {method} {params}: Spearman vs fp32 min {m['rho_min']:.4f} median "
                  f"{m['rho_median']:.4f} ({2 * len(pairs)} maps); explanation time fp32 {t32:.1f} s, "
                  f"{precision} {tq:.1f} s, speed-up {m['time_ratio']:.2f}; planted pointing fp32 "
                  f"{m['pointing_fp32']:.3f} {precision} {m['pointing']:.3f} ({len(planted)} pairs); energy in "
                  f"region fp32 {m['energy_fp32']:.3f} {precision} {m['energy']:.3f}", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.omp_wait_policy:
        os.environ["OMP_WAIT_POLICY"] = args.omp_wait_policy
    fxplain, dlib, johns, identities = start_benchmark(args.threads)
    backend = fxplain.backend_info()
    print(f"fxplain {fxplain.__version__} (oneDNN {backend.get('onednn_version', '?')}, ISA {backend.get('isa', '?')})"
          f" | threads {args.threads} | OMP_WAIT_POLICY {os.environ.get('OMP_WAIT_POLICY', 'unset')}")
    print(f"load average before timing: {os.getloadavg()[0]:.2f} (on {os.cpu_count()} CPUs)", flush=True)
    rows = []
    models = args.models.split(",")
    if "dlib" in models:
        methods = {"occlusion": {}, "corrrise": {"n_masks": args.n_masks}}
        rows += bench_model(fxplain, "dlib", dlib, johns, identities, methods, args, args.batch, args.pairs,
                            args.planted_per_region, None)
    if "iresnet50" in models:
        import torch
        from bench_onnx import THRESHOLD, resized_chips
        from face_architectures import export_onnx, iresnet, randomize

        from fxplain.models.regions import FACE_REGIONS_150

        torch.manual_seed(0)
        module = randomize(iresnet(50), seed=1)
        with tempfile.TemporaryDirectory() as folder:
            path = export_onnx(module, Path(folder) / "iresnet50.onnx", opset=17)
            model = fxplain.load_model(path, threshold=THRESHOLD)
        chips = resized_chips(johns)
        regions = {k: tuple(round(v * 112 / 150) for v in box) for k, box in FACE_REGIONS_150.items()}
        methods = {"occlusion": {"patch_sizes": args.iresnet_patch}, "corrrise": {"n_masks": args.iresnet_n_masks}}
        rows += bench_model(fxplain, "iresnet50", model, chips, identities, methods, args, args.iresnet_batch,
                            args.iresnet_pairs, args.iresnet_planted_per_region, regions)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    print("\n| model | precision | passes img/s (fp32) | ratio | method | Spearman min / median | "
          "explanation speed-up | planted pointing fp32 -> low |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        if "refused" in row:
            print(f"| {row['model']} | {row['precision']} | refused | | | | | |")
            continue
        if "occlusion" not in row and "corrrise" not in row:
            print(f"| {row['model']} | {row['precision']} | {row['ips']:.1f} ({row['fp32_ips']:.1f}) | "
                  f"{row['ratio']:.2f} | | | | |")
        for method in [k for k in ("occlusion", "corrrise") if k in row]:
            m = row[method]
            print(f"| {row['model']} | {row['precision']} | {row['ips']:.1f} ({row['fp32_ips']:.1f}) | "
                  f"{row['ratio']:.2f} | {method} | {m['rho_min']:.4f} / {m['rho_median']:.4f} | "
                  f"{m['time_ratio']:.2f} | {m['pointing_fp32']:.2f} -> {m['pointing']:.2f} "
                  f"({m['planted']}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
