"""Throughput of whole protocols: pairs per second in one process and on 1 and 2 Dask workers, per method.

    .venv/bin/python benchmarks/bench_pairs.py [--pairs 8] [--methods corrrise,occlusion,gradient]
    .venv/bin/python benchmarks/bench_pairs.py --memory 1000   # RSS of an in-process run at 100 and 1,000 pairs

Side by side, in one driver process, for each method on the same johns pairs:

* ``in-process, 2 threads``: ``explain_pairs`` without a client (the core's OpenMP pool of 2 threads);
* ``dask 1 worker x 1 thread`` and ``dask 2 workers x 1 thread``: a LocalCluster of worker processes.

Each configuration writes a fresh store; the times include the cluster's start-up of the model (loaded once
per worker) but not the cluster's own start. The last lines project an LFW-sized run (6,000 pairs) per
method on N machines like this one from the best configuration's rate.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

LFW_PAIRS = 6000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=8, help="pairs per configuration (default: %(default)s)")
    parser.add_argument("--methods", default="corrrise,occlusion,gradient")
    parser.add_argument("--memory", type=int, default=0,
                        help="instead: run this many pairs of a cheap method in-process and print RSS as it goes")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    import fxplain

    model = fxplain.load_model("dlib")
    if args.memory:
        return memory_run(fxplain, model, args.memory)
    from distributed import Client, LocalCluster

    made = fxplain.make_pairs(fxplain.datasets.johns_dir(), impostors=max(args.pairs, 10), seed=0)
    pairs = ([p for p in made if p.same][:args.pairs // 2] + [p for p in made if p.same is False])[:args.pairs]
    rates: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        clusters = {}
        for workers in (1, 2):
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0")
            clusters[workers] = (cluster, Client(cluster))
        try:
            for method in args.methods.split(","):
                rates[method] = {}
                configs = {"in-process, 2 threads": None, "dask 1 worker x 1 thread": clusters[1][1],
                           "dask 2 workers x 1 thread": clusters[2][1]}
                for name, client in configs.items():
                    store = Path(tmp) / f"{method}-{len(rates[method])}.zarr"
                    started = time.perf_counter()
                    fxplain.explain_pairs(model, pairs, method=method, store=store, client=client, chunk_size=1,
                                          show_progress=False)
                    seconds = time.perf_counter() - started
                    rates[method][name] = len(pairs) / seconds
                    print(f"{method:12s} {name:28s} {len(pairs)} pairs in {seconds:6.1f} s: "
                          f"{rates[method][name]:.3f} pairs/s", flush=True)
                base = rates[method]["in-process, 2 threads"]
                print(f"{method:12s} ratio to in-process: " + ", ".join(
                    f"{name} {rate / base:.2f}x" for name, rate in rates[method].items()), flush=True)
        finally:
            for cluster, client in clusters.values():
                client.close()
                cluster.close()
    print(f"\nprojection for an LFW-sized run ({LFW_PAIRS} pairs), at the best rate measured per machine:")
    for method, by_config in rates.items():
        best = max(by_config.values())
        hours = [LFW_PAIRS / best / n / 3600 for n in (1, 4, 16)]
        print(f"  {method:12s} {best:.3f} pairs/s per machine -> 1 machine {hours[0]:.1f} h, 4 machines "
              f"{hours[1]:.2f} h, 16 machines {hours[2]:.2f} h")


def memory_run(fxplain, model, n: int) -> None:
    """Explain ``n`` pairs with a cheap occlusion in-process; print the RSS as pairs are committed.

    A sampler thread reads the process's resident set (VmRSS) every 0.2 s and
    the number of committed pairs (rows files x chunk size) in the store.
    """
    import threading

    made = fxplain.make_pairs(fxplain.datasets.johns_dir(), impostors=n, seed=0)
    pairs = list(made[:n])
    chunk = 8
    marks = sorted({10, 100, 250, 500, 1000, n} & set(range(1, n + 1)))
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "run.zarr"
        stop = threading.Event()

        def sample():
            pending = list(marks)
            while not stop.is_set() and pending:
                rows = store / "rows"
                done = len(list(rows.glob("chunk-*.parquet"))) * chunk if rows.exists() else 0
                while pending and done >= pending[0]:
                    print(f"  {pending.pop(0):5d} pairs committed: RSS {_rss_mib():.0f} MiB", flush=True)
                time.sleep(0.2)

        sampler = threading.Thread(target=sample)
        print(f"RSS before the run: {_rss_mib():.0f} MiB (model loaded)")
        started = time.perf_counter()
        sampler.start()
        fxplain.explain_pairs(model, pairs, method="occlusion", patch_sizes=(75,), stride=1.0, store=store,
                              chunk_size=chunk, show_progress=False)
        stop.set()
        sampler.join()
        print(f"{n} pairs in {time.perf_counter() - started:.1f} s; RSS at the end {_rss_mib():.0f} MiB, peak "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


if __name__ == "__main__":
    main()
