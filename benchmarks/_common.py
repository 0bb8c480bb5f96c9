"""What every benchmark shares: the start-up (thread counts, fxplain, the dlib model, the johns chips) and the timing.

Timing alternates the sides' repeats (so drift on a shared machine hits all
alike) and reports the median and the best repeat.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


def start_benchmark(threads: int, precision: str = "fp32"):
    """Size both libraries' thread pools, import fxplain, load the model and faces.

    fxplain's oneDNN uses OpenMP and has no thread setter: OMP_NUM_THREADS, read
    when libgomp loads, sizes its pool, so it is set before fxplain is imported
    (callers parse their arguments first, so ``--help`` works without the C
    extension). With the torch build used here both libraries share the system
    libgomp, and ``torch.set_num_threads`` (omp_set_num_threads) then applies to both.

    Returns ``(fxplain, model, images, identities)``.
    """
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    import fxplain
    import fxplain.datasets

    torch.set_num_threads(threads)
    model = fxplain.load_model("dlib", precision=precision)
    images, identities, _paths = fxplain.datasets.load_johns()
    return fxplain, model, images, identities


@dataclass
class Timing:
    """Seconds per call of each repeat of one side, and the side's last result."""

    seconds: list[float] = field(default_factory=list)
    result: Any = None

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def best(self) -> float:
        return min(self.seconds)


def time_repeat(run: Callable[[], Any], iterations: int) -> tuple[float, Any]:
    """Seconds per call of ``run`` over ``iterations`` back-to-back calls, and the last result."""
    start = time.perf_counter()
    for _ in range(iterations):
        result = run()
    return (time.perf_counter() - start) / iterations, result


def calibrate(run: Callable[[], Any], min_time: float) -> int:
    """Number of calls that makes one repeat last at least ``min_time`` seconds.

    Also the warm-up: the first calls pay for allocations, oneDNN primitive
    creation, cold caches and (torch) autograd set-up, so they are not used
    for the estimate.
    """
    run()
    run()
    once, _ = time_repeat(run, 2)
    return max(1, math.ceil(min_time / once))


def measure(runs: dict[str, Callable[[], Any]], repeats: int, min_time: float | None = None) -> dict[str, Timing]:
    """Time each run ``repeats`` times, alternating between them; keep each run's last result.

    ``min_time=None``: one call per repeat and no warm-up here (the caller
    warmed up; for calls that take seconds). Otherwise each run is first
    calibrated (and warmed up) so that a repeat lasts at least ``min_time``.
    """
    iterations = {name: 1 if min_time is None else calibrate(run, min_time) for name, run in runs.items()}
    timings = {name: Timing() for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            seconds, timings[name].result = time_repeat(run, iterations[name])
            timings[name].seconds.append(seconds)
    return timings


def parse_batch_sizes(text: str) -> list[int]:
    """``--batch-sizes``: positive integers separated by commas."""
    sizes = [int(part) for part in text.split(",") if part.strip()]
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers separated by commas, got {text!r}")
    return sizes
