"""Forward-pass throughput: fxplain versus eager PyTorch on dlib's face network.

Both run the same :class:`~fxplain.runtime.spec.NetworkSpec` (``model.spec``) on the
55 ``johns`` chips, tiled to each batch size, in the same process. Timed
repeats alternate between the two so that drift (turbo, other load) hits both
alike; each repeat runs enough batches to last at least ``--min-time``
seconds, and the median repeat is reported.

Both sides start from the same uint8 (N, 150, 150, 3) array: fxplain's
``embed`` converts internally, so the torch side's uint8 -> float32
conversion is timed too.

Usage::

    python benchmarks/bench_forward.py [--batch-sizes 1,64] [--repeats 5] [--threads 2]

Fraction of peak uses 535 GFLOP/s of FP32 for both cores of the reference
machine, scaled by ``threads / 2``, and ``model.spec.flops_per_image()``
(multiply-adds x 2 of the conv and dense layers, about 0.54 GFLOP).

Measured on the reference machine (2 AVX-512 cores, torch 2.13.0+cpu, 2 threads,
``--torch-layout`` runs): the torch baseline is faster with channels_last
activations (batch 1: ~195 vs ~135 img/s; batch 64: ~395 vs ~270 img/s), so
that is the default of :func:`torch_network.build_torch_module`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import measure, parse_batch_sizes, start_benchmark
from torch_network import DEFAULT_CHANNELS_LAST, build_torch_module

#: FP32 peak of the reference machine with both cores busy (GFLOP/s).
PEAK_GFLOPS_2_CORES = 535.0


def tile(images: np.ndarray, batch: int) -> np.ndarray:
    """The first ``batch`` images of ``images`` repeated cyclically, as one contiguous array."""
    return np.ascontiguousarray(images[np.arange(batch) % len(images)])


def peak_fraction(images_per_second: float, flops_per_image: float, threads: int) -> float:
    """Achieved FP32 FLOP/s as a fraction of the machine's peak for ``threads`` cores."""
    peak = PEAK_GFLOPS_2_CORES * 1e9 * threads / 2
    return images_per_second * flops_per_image / peak


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-sizes", type=parse_batch_sizes, default=parse_batch_sizes("1,64"),
                        help="comma-separated batch sizes (default: 1,64)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per side (default: 5)")
    parser.add_argument("--min-time", type=float, default=1.0,
                        help="minimum seconds of work per repeat (default: 1.0)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="threads for both libraries (default: os.cpu_count())")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                        help="fxplain's convolution arithmetic (default: fp32; torch always runs fp32)")
    parser.add_argument("--torch-layout", choices=("channels_last", "nchw"),
                        default="channels_last" if DEFAULT_CHANNELS_LAST else "nchw",
                        help="memory format of the torch activations (default: the faster, "
                             "see torch_network.DEFAULT_CHANNELS_LAST)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    fxplain, model, images, _identities = start_benchmark(args.threads, args.precision)
    flops = float(model.spec.flops_per_image())
    module = build_torch_module(model.spec, channels_last=args.torch_layout == "channels_last")

    backend = fxplain.backend_info() if hasattr(fxplain, "backend_info") else {}
    print(f"fxplain {fxplain.__version__} (oneDNN {backend.get('onednn_version', '?')}, "
          f"{backend.get('cpu_runtime', '?')}, {backend.get('isa', '?')}) | torch {torch.__version__} "
          f"(mkldnn available: {torch.backends.mkldnn.is_available()}, layout {args.torch_layout}, "
          f"eager) | threads {args.threads} | {flops / 1e9:.3f} GFLOP/image | "
          f"peak {PEAK_GFLOPS_2_CORES * args.threads / 2:.0f} GFLOP/s")
    # Other processes on the cores distort both columns (seen: 2-4x slower), so show the load.
    print(f"load average before timing: {os.getloadavg()[0]:.2f} (on {os.cpu_count()} CPUs)")

    rows = []
    with torch.inference_mode():
        for batch in args.batch_sizes:
            pixels = tile(images, batch)

            # default arguments bind this iteration's batch (the closures are timed right away)
            def run_fxplain(pixels=pixels, batch=batch) -> np.ndarray:
                return model.embed(pixels, batch_size=batch)

            def run_torch(pixels=pixels) -> np.ndarray:
                return module(torch.from_numpy(pixels).to(torch.float32)).numpy()

            diff = float(np.abs(run_fxplain().astype(np.float64) - run_torch()).max())
            seconds = {name: t.median for name, t in measure({"fxplain": run_fxplain, "torch": run_torch}, args.repeats,
                                                                   args.min_time).items()}
            rows.append((batch, batch / seconds["fxplain"], batch / seconds["torch"], diff))

    print(f"{'batch':>5} {'fxplain img/s':>13} {'torch img/s':>11} {'fx/torch':>8} "
          f"{'fx %peak':>8} {'torch %peak':>11} {'max|diff|':>9}")
    for batch, fx_ips, torch_ips, diff in rows:
        print(f"{batch:>5} {fx_ips:>13.1f} {torch_ips:>11.1f} {fx_ips / torch_ips:>8.2f} "
              f"{100 * peak_fraction(fx_ips, flops, args.threads):>7.1f}% "
              f"{100 * peak_fraction(torch_ips, flops, args.threads):>10.1f}% {diff:>9.2g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
