"""The start-up every benchmark shares: thread counts, then fxplain, the dlib model and the johns chips."""

from __future__ import annotations

import os


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
