"""Pair-explanation speed: fxplain's Explainer versus a plain PyTorch implementation.

For one pair of ``johns`` chips (default: 0 vs 1, a genuine pair) both sides
compute the same evidence maps of dlib's face network:

* **CorrRISE** (``--n-masks`` masks): for each image of the pair, N masked
  copies ``fill + m * (X - fill)`` (fill = the image's mean colour), embedded
  in batches, scored against the intact partner (``-||e - e_partner||^2``);
  the evidence at a pixel is the Pearson correlation over the masks between
  the mask value there and the score.
* **Occlusion** (fxplain's default patch set, ``Occlusion.defaults``; the
  number of patches per image is printed): evidence = minus the mean score
  change of the patches covering a pixel, averaged over the patch sizes.

The fxplain side is ``Explainer(...).explain(a, b)``. The torch side is what a
competent PyTorch user would write around ``torch_network.build_torch_module``
(eager, channels_last, ``torch.inference_mode()``, batches of ``--batch-size``):
masking, forward, scores and the final reductions in torch. It keeps all masks
and scores and correlates at the end (fxplain streams running sums instead),
which costs N x H x W float32 of masks plus as much again for the centred copy:
~90 + 90 MB at N = 1000 on 150x150 chips.

The RISE masks are *not* regenerated in torch: the torch side calls fxplain's
own mask generator (``fxplain._core.masks_rise``, same seed, grid and p_keep)
so that both sides use identical masks and the maps can be compared. That call
is timed as part of the torch side (once per pair: a torch user reuses the
masks for both images, while fxplain regenerates them per image). Occlusion
uses the same rectangles (``fxplain.methods.Occlusion().rects``).

Both sides start from the same uint8 pair, so the torch side's uint8 -> float32
conversion and its embedding of the intact pair are timed, as fxplain's are.
Timed repeats alternate between the sides so that drift hits both alike. The
maps of the last repeat are compared; the script exits with status 1 if the
evidence maps differ by more than ``--tolerance``.

Usage::

    python benchmarks/bench_explain.py [--n-masks 500,1000] [--repeats 3] [--threads 2]
                                       [--methods corrrise,occlusion] [--profile]

``--profile`` re-runs fxplain's CorrRISE loop step by step (the same calls as
``fxplain.methods.CorrRISE.evidence``) with timers around each kernel and the
forward pass, and does the same for the torch side.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import measure, start_benchmark
from torch_network import DEFAULT_CHANNELS_LAST, TorchNetwork, build_torch_module

#: fxplain's CorrRISE mask parameters, copied from ``CorrRISE.defaults`` at run time.
MaskParams = dict[str, Any]


# ---- the PyTorch implementation ---------------------------------------------


def torch_scores(embeddings: torch.Tensor, partner: torch.Tensor) -> torch.Tensor:
    """dlib's similarity: minus the squared Euclidean distance of each embedding to ``partner``."""
    return -((embeddings - partner) ** 2).sum(dim=1)


def torch_pearson(masks: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """Per-pixel Pearson correlation over N masks between mask value and score.

    ``masks`` is (N, H, W), ``scores`` (N,); returns (H, W). Pixels whose mask
    value never varies get 0, as in fxplain.
    """
    n, h, w = masks.shape
    centred = masks.reshape(n, h * w) - masks.reshape(n, h * w).mean(dim=0)  # another N x H x W
    s = scores - scores.mean()
    cov = s @ centred  # (H*W,): one matrix-vector product
    denom = torch.sqrt((centred * centred).sum(dim=0) * (s * s).sum())
    corr = torch.where(denom > 0, cov / torch.where(denom > 0, denom, torch.ones_like(denom)),
                       torch.zeros_like(denom))
    return corr.reshape(h, w)


def mean_fill(image: torch.Tensor) -> torch.Tensor:
    """The image's mean colour, shaped (3,) so that it broadcasts over (.., H, W, 3)."""
    return image.mean(dim=(0, 1))


def torch_corrrise(module: TorchNetwork, pair: np.ndarray, n_masks: int, seed: int, params: MaskParams,
                   batch_size: int, mask_fn: Callable[..., np.ndarray]) -> np.ndarray:
    """CorrRISE evidence maps (2, H, W) of a uint8 (2, H, W, 3) pair, in PyTorch.

    ``mask_fn`` is ``fxplain._core.masks_rise``: called once, the N masks are
    reused for both images (the same masks fxplain uses for each of them).
    """
    with torch.inference_mode():
        pixels = torch.from_numpy(pair).to(torch.float32)
        _, h, w, _ = pixels.shape
        intact = module(pixels)
        masks = torch.from_numpy(mask_fn(seed, 0, n_masks, h, w, params["grid"], float(params["p_keep"])))
        evidence = torch.empty(2, h, w, dtype=torch.float64)
        for side in (0, 1):
            image, partner = pixels[side], intact[1 - side]
            fill = mean_fill(image)
            delta = image - fill
            scores = torch.empty(n_masks)
            for start in range(0, n_masks, batch_size):
                m = masks[start:start + batch_size, :, :, None]  # (B, H, W, 1) broadcasts over colour
                batch = fill + m * delta
                scores[start:start + len(m)] = torch_scores(module(batch), partner)
            evidence[side] = torch_pearson(masks, scores)
        return evidence.numpy()


def occluders(rects: np.ndarray, h: int, w: int) -> torch.Tensor:
    """Boolean (K, H, W) masks, True inside each rectangle (top, left, bottom, right)."""
    out = torch.zeros(len(rects), h, w, dtype=torch.bool)
    for i, (top, left, bottom, right) in enumerate(rects.tolist()):
        out[i, top:bottom, left:right] = True
    return out


def torch_occlusion(module: TorchNetwork, pair: np.ndarray, rects_per_size: list[np.ndarray],
                    batch_size: int) -> np.ndarray:
    """Occlusion evidence maps (2, H, W) of a uint8 (2, H, W, 3) pair, in PyTorch."""
    with torch.inference_mode():
        pixels = torch.from_numpy(pair).to(torch.float32)
        _, h, w, _ = pixels.shape
        intact = module(pixels)
        base = torch_scores(intact[:1], intact[1])  # the pair's own score, same from either side
        covers = [occluders(rects, h, w) for rects in rects_per_size]
        evidence = torch.empty(2, h, w, dtype=torch.float64)
        for side in (0, 1):
            image, partner = pixels[side], intact[1 - side]
            fill = mean_fill(image)
            maps = []
            for cover in covers:
                scores = torch.empty(len(cover))
                for start in range(0, len(cover), batch_size):
                    c = cover[start:start + batch_size, :, :, None]
                    batch = torch.where(c, fill, image)  # the fill colour inside the patch
                    scores[start:start + len(c)] = torch_scores(module(batch), partner)
                change = (scores - base).to(torch.float64)
                hits = cover.sum(dim=0, dtype=torch.float64)
                total = torch.einsum("k,khw->hw", change, cover.to(torch.float64))
                maps.append(-total / hits)
            evidence[side] = torch.stack(maps).mean(dim=0)
        return evidence.numpy()


# ---- fxplain ------------------------------------------------------------------


def fxplain_evidence(explainer: Any, pair: np.ndarray) -> np.ndarray:
    """Signed evidence maps (2, H, W) from ``Explainer.explain``: similarity minus dissimilarity."""
    result = explainer.explain(pair[0], pair[1])
    return result.similarity.astype(np.float64) - result.dissimilarity.astype(np.float64)


# ---- timing -------------------------------------------------------------------


def warm_up(model: Any, module: TorchNetwork, pixels: np.ndarray, batch_size: int) -> None:
    """One full batch and one pair through each network.

    Pays for oneDNN primitive creation and first-touch allocations before timing.
    """
    batch = np.ascontiguousarray(pixels[np.arange(batch_size) % len(pixels)], np.float32)
    for size in (batch_size, 2):
        model.embed_pixels(batch[:size], batch_size=size)
        with torch.inference_mode():
            module(torch.from_numpy(batch[:size]))


# ---- profile ------------------------------------------------------------------


class Stopwatch:
    """Accumulates wall-clock seconds per named step."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}

    def time(self, name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        self.totals[name] = self.totals.get(name, 0.0) + time.perf_counter() - start
        return out


def profile_fxplain(model: Any, pair: np.ndarray, n_masks: int, seed: int, params: MaskParams,
                    batch_size: int) -> Stopwatch:
    """fxplain's CorrRISE on one pair, step by step, with a timer around each call.

    The calls and their order are those of ``Explainer.explain`` and
    ``CorrRISE.evidence`` (pearson, rise masks, mean fill); the progress bar
    and result packaging are left out.
    """
    from fxplain import _core
    from fxplain._util.stats import pearson_from_sums as _pearson_from_sums
    from fxplain.faces.inputs import to_pixel_batch
    from fxplain.methods.fills import fill_image
    from fxplain.models.scoring import score_kind

    kind = score_kind(model)
    clock = Stopwatch()
    pixels = clock.time("to_pixel_batch", lambda: np.ascontiguousarray(
        np.concatenate([to_pixel_batch(x, model.input_size) for x in pair])))
    intact = clock.time("embed_pixels (intact pair)", model.embed_pixels, pixels, batch_size=2)
    _, h, w, _ = pixels.shape
    for side in (0, 1):
        image = np.ascontiguousarray(pixels[side])
        partner = np.ascontiguousarray(intact[1 - side])
        base = float(model.score(intact[side], partner))
        fill = clock.time("fill_image", fill_image, image, "mean")
        sums = [np.zeros((h, w)) for _ in range(3)]
        scores = np.empty(n_masks)
        for first in range(0, n_masks, batch_size):
            count = min(batch_size, n_masks - first)
            masks = clock.time("C masks_rise", _core.masks_rise, seed, first, count, h, w, params["grid"],
                               float(params["p_keep"]))
            batch = clock.time("C apply_masks", _core.apply_masks, image, fill, masks)
            emb = clock.time("embed_pixels (forward)", model.embed_pixels, batch, batch_size=batch_size)
            s = clock.time("C embedding_scores", _core.embedding_scores, kind, emb, partner)
            s = s - base
            scores[first:first + count] = s
            clock.time("C correlation_accumulate", _core.correlation_accumulate, masks, s, *sums)
        clock.time("final correlation (NumPy)", _pearson_from_sums, n_masks, *sums, scores)
    return clock


def profile_torch(module: TorchNetwork, pair: np.ndarray, n_masks: int, seed: int, params: MaskParams,
                  batch_size: int, mask_fn: Callable[..., np.ndarray]) -> Stopwatch:
    """:func:`torch_corrrise` step by step, with a timer around each step."""
    clock = Stopwatch()
    with torch.inference_mode():
        pixels = clock.time("uint8 -> float32", lambda: torch.from_numpy(pair).to(torch.float32))
        _, h, w, _ = pixels.shape
        intact = clock.time("forward (intact pair)", module, pixels)
        masks = torch.from_numpy(clock.time("fxplain masks_rise (all N)", mask_fn, seed, 0, n_masks, h, w,
                                            params["grid"], float(params["p_keep"])))
        for side in (0, 1):
            image, partner = pixels[side], intact[1 - side]
            fill = clock.time("mean fill", mean_fill, image)
            delta = image - fill
            scores = torch.empty(n_masks)
            for start in range(0, n_masks, batch_size):
                m = masks[start:start + batch_size, :, :, None]
                batch = clock.time("masking", lambda m=m: fill + m * delta)  # noqa: B023 - called at once
                emb = clock.time("forward", module, batch)
                scores[start:start + len(m)] = clock.time("scores", torch_scores, emb, partner)
            clock.time("pearson (all masks)", torch_pearson, masks, scores)
    return clock


def print_profile(title: str, clock: Stopwatch, images: int) -> None:
    """A breakdown table: seconds and share of each step, and the forward pass's images/s."""
    total = sum(clock.totals.values())
    print(f"\n{title}: {total:.2f} s for the pair ({images} perturbed images)")
    for name, seconds in sorted(clock.totals.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<30} {seconds:>8.3f} s {100 * seconds / total:>6.1f}%")
    forward = clock.totals.get("embed_pixels (forward)", clock.totals.get("forward", 0.0))
    if forward > 0:
        print(f"  forward pass alone: {images / forward:.1f} img/s; everything else: "
              f"{total - forward:.3f} s ({100 * (total - forward) / total:.1f}%)")


def forward_sweep(model: Any, module: TorchNetwork, pair: np.ndarray, params: MaskParams, seed: int,
                  batch_sizes: tuple[int, ...] = (1, 8, 16, 32, 64), images: int = 256) -> None:
    """Forward-pass img/s of each network on masked chips, per batch size.

    The explain loop is dominated by the forward pass, so how its speed
    depends on the batch size (the Explainer's ``batch_size``) bounds what
    either side can reach. Timed on ``images`` masked copies of the first chip.
    """
    from fxplain import _core
    from fxplain.methods.fills import fill_image

    image = np.ascontiguousarray(pair[0], np.float32)
    masks = _core.masks_rise(seed, 0, images, *image.shape[:2], params["grid"], float(params["p_keep"]))
    batch = _core.apply_masks(image, fill_image(image, "mean"), masks)
    print(f"\nforward img/s on {images} masked chips by batch size (the explain loop's main cost)")
    print(f"{'batch':>5} {'fxplain':>8} {'torch':>8} {'fx/torch':>8}")
    tensor = torch.from_numpy(batch)
    for size in batch_sizes:
        def run_fx(size=size) -> None:
            model.embed_pixels(batch, batch_size=size)

        def run_torch(size=size) -> None:
            with torch.inference_mode():
                for start in range(0, images, size):
                    module(tensor[start:start + size])

        rates = {}
        for name, run in (("fxplain", run_fx), ("torch", run_torch)):
            run()  # warm-up: new shapes mean new oneDNN primitives
            start = time.perf_counter()
            run()
            rates[name] = images / (time.perf_counter() - start)
        fx, th = rates["fxplain"], rates["torch"]
        print(f"{size:>5} {fx:>8.1f} {th:>8.1f} {fx / th:>8.2f}")


# ---- command line -------------------------------------------------------------


def parse_ints(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or min(values) < 2:
        raise argparse.ArgumentTypeError(f"expected integers >= 2 separated by commas, got {text!r}")
    return values


def parse_methods(text: str) -> list[str]:
    methods = [part.strip() for part in text.split(",") if part.strip()]
    if not methods or set(methods) - {"corrrise", "occlusion"}:
        raise argparse.ArgumentTypeError(f"expected corrrise and/or occlusion, got {text!r}")
    return methods


def parse_pair(text: str) -> tuple[int, int]:
    parts = [int(part) for part in text.split(",")]
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected two chip indices like 0,1, got {text!r}")
    return parts[0], parts[1]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-masks", type=parse_ints, default=parse_ints("500,1000"),
                        help="comma-separated CorrRISE mask counts (default: 500,1000)")
    parser.add_argument("--methods", type=parse_methods, default=parse_methods("corrrise,occlusion"),
                        help="methods to time (default: corrrise,occlusion)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per side (default: 3)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="threads for both libraries (default: os.cpu_count())")
    parser.add_argument("--batch-size", type=int, default=64,
                        help="perturbed images per forward pass, both sides (default: 64)")
    parser.add_argument("--pair", type=parse_pair, default=(0, 1),
                        help="indices of the two johns chips (default: 0,1, a genuine pair)")
    parser.add_argument("--seed", type=int, default=0, help="CorrRISE seed (default: 0)")
    parser.add_argument("--tolerance", type=float, default=1e-3,
                        help="largest allowed |fxplain - torch| of the evidence maps (default: 1e-3)")
    parser.add_argument("--torch-layout", choices=("channels_last", "nchw"),
                        default="channels_last" if DEFAULT_CHANNELS_LAST else "nchw",
                        help="memory format of the torch activations (default: the faster)")
    parser.add_argument("--profile", action="store_true",
                        help="also break one CorrRISE pair down by step on both sides (largest N)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    fxplain, model, images, identities = start_benchmark(args.threads)
    from fxplain import _core
    from fxplain.methods import CorrRISE, Occlusion

    pair = np.ascontiguousarray(images[list(args.pair)])
    module = build_torch_module(model.spec, channels_last=args.torch_layout == "channels_last")
    params: MaskParams = dict(CorrRISE.defaults)
    occlusion = Occlusion()
    rects = occlusion.rects(model.input_size)
    n_rects = sum(len(r) for r in rects)

    backend = fxplain.backend_info()
    print(f"fxplain {fxplain.__version__} (oneDNN {backend.get('onednn_version', '?')}, "
          f"{backend.get('isa', '?')}) | torch {torch.__version__} (layout {args.torch_layout}, eager, "
          f"inference_mode) | threads {args.threads} | batch {args.batch_size}")
    a, b = args.pair
    print(f"pair: johns {a} ({identities[a]}) vs {b} ({identities[b]}) | CorrRISE rise masks grid "
          f"{params['grid']}, p_keep {params['p_keep']}, seed {args.seed}, fill mean | occlusion "
          f"sizes {occlusion.params['patch_sizes']}, stride {occlusion.params['stride']}, "
          f"{n_rects} patches/image")
    print("masks: the torch side calls fxplain._core.masks_rise (identical masks; timed on the torch side)")

    warm_up(model, module, images, args.batch_size)
    cases: list[tuple[str, int | None]] = []
    if "corrrise" in args.methods:
        cases += [("corrrise", n) for n in args.n_masks]
    if "occlusion" in args.methods:
        cases.append(("occlusion", None))

    # Other processes on the cores distort both columns, so show the load.
    print(f"load average before timing: {os.getloadavg()[0]:.2f} (on {os.cpu_count()} CPUs)")
    rows = []
    for method, n in cases:
        if method == "corrrise":
            explainer = fxplain.Explainer(model, method="corrrise", seed=args.seed,
                                          batch_size=args.batch_size, n_masks=n)
            run_torch = (lambda n=n: torch_corrrise(module, pair, n, args.seed, params, args.batch_size,
                                                    _core.masks_rise))
            perturbed = 2 * n
        else:
            explainer = fxplain.Explainer(model, method="occlusion", batch_size=args.batch_size)
            run_torch = (lambda: torch_occlusion(module, pair, rects, args.batch_size))
            perturbed = 2 * n_rects
        timings = measure({"fxplain": lambda ex=explainer: fxplain_evidence(ex, pair), "torch": run_torch},
                          args.repeats)
        diff = float(np.abs(timings["fxplain"].result - timings["torch"].result).max())
        rows.append((method, n if n is not None else n_rects, perturbed, timings, diff))
    print(f"load average after timing: {os.getloadavg()[0]:.2f}")

    print(f"\n{'method':<9} {'N':>5} {'fxplain s/pair':>18} {'torch s/pair':>18} {'torch/fx':>8} "
          f"{'fx img/s':>8} {'torch img/s':>11} {'max|diff|':>9}")
    print(f"{'':<9} {'':>5} {'median (min)':>18} {'median (min)':>18}")
    failed = False
    for method, n, perturbed, t, diff in rows:
        fx, th = t["fxplain"], t["torch"]
        print(f"{method:<9} {n:>5} {fx.median:>9.2f} ({fx.best:>6.2f}) {th.median:>9.2f} ({th.best:>6.2f}) "
              f"{th.median / fx.median:>8.2f} {perturbed / fx.median:>8.1f} {perturbed / th.median:>11.1f} "
              f"{diff:>9.2g}")
        failed |= not diff < args.tolerance
    print("N = masks per image (occlusion: patches per image); "
          "img/s = perturbed images of the pair / median s")

    if args.profile and "corrrise" in args.methods:
        n = max(args.n_masks)
        print_profile(f"fxplain CorrRISE profile, N={n}",
                      profile_fxplain(model, pair, n, args.seed, params, args.batch_size), 2 * n)
        print_profile(f"torch CorrRISE profile, N={n}",
                      profile_torch(module, pair, n, args.seed, params, args.batch_size, _core.masks_rise),
                      2 * n)
        forward_sweep(model, module, pair, params, args.seed)

    if failed:
        print(f"FAIL: evidence maps differ by more than {args.tolerance:g}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
