"""Re-run the untrusted-input campaign of issue 12 against the current code and count what happens.

    .venv/bin/python scripts/hostile_campaign.py            # the full campaign (about 4,700 cases)
    .venv/bin/python scripts/hostile_campaign.py --scale 0.1   # a tenth of every mutation family

Each case runs in a worker process, isolated: a case that crashes the
interpreter or runs past ``--timeout`` seconds is counted (``crash``,
``hang``) and the worker is replaced. Families and their outcomes:

* ``dlib``: dlib's published model with one byte changed (half the cases in
  the first 64 KiB, where the layer headers are; half anywhere) and loaded
  by path. ``refused`` (fxplain's error), ``warned`` (loaded with
  UnverifiedWeightsWarning; split by whether the embedding moved), or
  ``SILENT`` (loaded without a warning and computes a different embedding).
* ``fxd``: a decoder saved in version 2 (safetensors + checksum), one byte
  changed: ``refused``, ``same`` (identical network and metadata), ``SILENT``.
* ``fxd_v1``: the same for a version-1 file (no checksum): ``warned`` (it
  always warns) or ``refused``; ``SILENT`` would be a load without warning.
* ``results``: a saved explanation, one byte changed or truncated:
  ``refused``, ``same``, ``SILENT`` (loaded with different content).
* ``image``: a JPEG or PNG chip with one byte changed, given to ``embed``:
  ``refused`` or ``decoded`` (a different picture is not a wrong answer),
  ``SILENT`` if the embedding is not finite without an error.
* ``fifo``: a FIFO passed to every path-taking entry point, ``huge``: a float
  image of 3e38 pixels; ``threads``: score_gradient and the integrated
  gradient method from 4 threads against their serial results.

Any outcome in capitals besides these (``FOREIGN`` exceptions, ``crash``,
``hang``, ``SILENT``) is a defect; the script exits non-zero when one occurs.
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path

DEFECTS = ("SILENT", "FOREIGN", "crash", "hang")
FAMILIES = {"dlib": 2443, "fxd": 1331, "fxd_v1": 300, "results": 562, "image": 300}


# ---- the worker: runs cases, returns outcomes ---------------------------------------------------------

def _worker(connection, scratch: str) -> None:
    import warnings

    import numpy as np

    import fxplain
    from fxplain import datasets
    from fxplain.models.formats.dlib import dlib_model_path
    from fxplain.models.formats.fxspec import load_spec

    scratch = Path(scratch)
    chip = np.asarray(datasets.load_johns()[0][0], np.uint8)
    model = fxplain.load_model("dlib")
    published = dlib_model_path().read_bytes()
    reference = model.embed(chip)
    originals = {name: (scratch / name).read_bytes() for name in ("decoder_v2.fxd", "decoder_v1.fxd", "result.npz",
                                                                 "chip.jpg", "chip.png")}

    def loaded(call):
        """(value, warned) of ``call()``; fxplain's errors pass through, warnings are recorded."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = call()
        return value, any(issubclass(w.category, fxplain.UnverifiedWeightsWarning) for w in caught)

    def network_of(path):
        spec, metadata = load_spec(path, legacy_warning=False)
        return spec.weights_digest(), metadata

    def run(family: str, position: int, value: int) -> str:
        if family == "dlib":
            data = bytearray(published)
            data[position] = value
            path = scratch / "case.dat"
            path.write_bytes(bytes(data))
            damaged, warned = loaded(lambda: fxplain.load_model(path))
            moved = not np.array_equal(damaged.embed(chip), reference)
            if not warned:
                return "SILENT" if moved else "same"
            return "warned, embedding moved" if moved else "warned, embedding unchanged"
        if family in ("fxd", "fxd_v1"):
            name = "decoder_v2.fxd" if family == "fxd" else "decoder_v1.fxd"
            data = bytearray(originals[name])
            data[position % len(data)] = value
            path = scratch / "case.fxd"
            path.write_bytes(bytes(data))
            decoder, warned = loaded(lambda: fxplain.load_decoder(path))
            decoder.decode(np.zeros(decoder.embedding_size, np.float32))
            same = network_of(path) == network_of(scratch / name)
            return "same" if same else ("warned, network changed" if warned else "SILENT")
        if family == "results":
            data = bytearray(originals["result.npz"])
            if value < 0:  # a truncation
                data = data[:position % len(data)]
            else:
                data[position % len(data)] = value
            path = scratch / "case.npz"
            path.write_bytes(bytes(data))
            got = fxplain.PairExplanation.load(path)
            want = fxplain.PairExplanation.load(scratch / "result.npz")
            same = all(np.array_equal(getattr(got, k), getattr(want, k)) for k in ("similarity", "dissimilarity",
                                                                                   "images")) \
                and (got.score, got.threshold, got.match, got.method, got.params, got.extras) == \
                (want.score, want.threshold, want.match, want.method, want.params, want.extras)
            return "same" if same else "SILENT"
        if family == "image":
            name = "chip.jpg" if position % 2 else "chip.png"
            data = bytearray(originals[name])
            data[(position // 2) % len(data)] = value
            path = scratch / ("case" + Path(name).suffix)
            path.write_bytes(bytes(data))
            embedding = model.embed(path, resize=True)
            return "decoded" if np.all(np.isfinite(embedding)) else "SILENT"
        raise ValueError(family)

    while True:
        case = connection.recv()
        if case is None:
            return
        try:
            outcome = run(*case)
        except fxplain.FxplainError:
            outcome = "refused"
        except Exception as exc:  # noqa: BLE001 - the campaign counts every foreign exception
            outcome = f"FOREIGN {type(exc).__name__}: {str(exc)[:120]}"
        connection.send(outcome)


class _Pool:
    """Worker processes that are replaced when a case crashes or hangs them."""

    def __init__(self, size: int, scratch: Path, timeout: float):
        self.context = mp.get_context("spawn")
        self.scratch, self.timeout = scratch, timeout
        self.slots = [self._start(k) for k in range(size)]

    def _start(self, k: int):
        folder = self.scratch / f"w{k}"
        parent, child = self.context.Pipe()
        process = self.context.Process(target=_worker, args=(child, str(folder)), daemon=True)
        process.start()
        return process, parent

    def run(self, cases):
        """Yield (case, outcome) for every case, the workers taking turns."""
        pending = list(cases)
        busy: dict[int, tuple] = {}
        started: dict[int, float] = {}
        while pending or busy:
            for k, (process, conn) in enumerate(self.slots):
                if k not in busy and pending:
                    busy[k] = pending.pop()
                    started[k] = time.monotonic()
                    conn.send(busy[k])
            for k in list(busy):
                process, conn = self.slots[k]
                outcome = None
                if conn.poll(0.01):
                    try:
                        outcome = conn.recv()
                    except EOFError:
                        outcome = "crash"
                elif not process.is_alive():
                    outcome = "crash"
                elif time.monotonic() - started[k] > self.timeout:
                    outcome = "hang"
                if outcome is None:
                    continue
                if outcome in ("crash", "hang"):
                    process.kill()
                    process.join()
                    self.slots[k] = self._start(k)
                yield busy.pop(k), outcome

    def close(self):
        for process, conn in self.slots:
            conn.send(None)
            process.join(timeout=10)


# ---- the cases the parent checks itself: FIFOs, a huge image, threads --------------------------------

def _direct_cases(scratch: Path) -> dict[str, collections.Counter]:
    import os
    import threading

    import numpy as np

    import fxplain
    from fxplain import datasets

    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    model = fxplain.load_model("dlib")
    johns = datasets.load_johns()
    fifo = scratch / "fifo"
    os.mkfifo(fifo)
    entry_points = {
        "load_model": lambda: fxplain.load_model(fifo),
        "load_decoder": lambda: fxplain.load_decoder(fifo),
        "PairExplanation.load": lambda: fxplain.PairExplanation.load(fifo),
        "embed": lambda: model.embed(fifo),
        "Explainer.explain": lambda: fxplain.Explainer(model, method="occlusion").explain(fifo, fifo),
    }
    for name, call in entry_points.items():
        done: list[str] = []
        thread = threading.Thread(target=lambda c=call, d=done: d.append(_outcome(c)), daemon=True)
        thread.start()
        thread.join(timeout=30)
        counts["fifo"]["hang" if not done else done[0]] += 1
    counts["huge"][_outcome(lambda: model.embed(np.full((150, 150, 3), 3e38, np.float32)))] += 1

    images = johns[0][:2]
    direction = np.random.default_rng(0).normal(size=128).astype(np.float32)
    target = model.embed(johns[0][2])[0]
    explainer = fxplain.Explainer(model, method="gradient", variant="integrated", steps=8)
    serial = {"score_gradient": model.score_gradient(images, target),
              "input_gradient": model.input_gradient(images, direction[None].repeat(2, 0)),
              "integrated": explainer.explain(johns[0][0], johns[0][20]).dissimilarity}
    results: dict[str, list] = collections.defaultdict(list)

    def work() -> None:
        for _ in range(6):
            results["score_gradient"].append(model.score_gradient(images, target))
            results["input_gradient"].append(model.input_gradient(images, direction[None].repeat(2, 0)))
        results["integrated"].append(explainer.explain(johns[0][0], johns[0][20]).dissimilarity)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name, values in results.items():
        for value in values:
            counts["threads"]["same as serial" if _same(value, serial[name]) else "SILENT"] += 1
    return counts


def _same(a, b) -> bool:
    """Bit-identical results (tuples element by element)."""
    import numpy as np

    if isinstance(a, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return np.array_equal(a, b)


def _outcome(call) -> str:
    import fxplain

    try:
        call()
    except fxplain.FxplainError:
        return "refused"
    except Exception as exc:  # noqa: BLE001
        return f"FOREIGN {type(exc).__name__}"
    return "SILENT"  # every direct case is one that must be refused


# ---- main ------------------------------------------------------------------------------------------------

def _prepare(folder: Path) -> None:
    """The original files every worker mutates: a decoder in both versions, a saved explanation, two chips."""
    import numpy as np
    from PIL import Image

    import fxplain
    from fxplain import datasets
    from fxplain.models.formats.fxspec import load_spec

    model = fxplain.load_model("dlib")
    johns = datasets.load_johns()
    decoder = fxplain.default_decoder(model)
    folder.mkdir(parents=True)
    decoder.save(folder / "decoder_v2.fxd")
    # a version-1 file: the one fxplain 0.1 wrote for the tests (a small decoder)
    fixture = Path(__file__).resolve().parents[1] / "tests" / "data" / "decoder_format_v1.fxd"
    (folder / "decoder_v1.fxd").write_bytes(fixture.read_bytes())
    load_spec(folder / "decoder_v2.fxd")  # the original loads
    explanation = fxplain.Explainer(model, method="occlusion", patch_sizes=(50,)).explain(johns[0][0], johns[0][20])
    explanation.save(folder / "result.npz")
    chip = Image.fromarray(np.asarray(johns[0][0], np.uint8))
    chip.save(folder / "chip.jpg", quality=90)
    chip.save(folder / "chip.png")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of each mutation family to run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds before a case counts as a hang")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import numpy as np

    from fxplain.models.formats.dlib import dlib_model_path

    rng = np.random.default_rng(args.seed)
    size = dlib_model_path().stat().st_size
    published = dlib_model_path().read_bytes()
    cases = []
    for family, count in FAMILIES.items():
        for k in range(max(1, round(count * args.scale))):
            if family == "dlib":
                position = int(rng.integers(0, 1 << 16)) if k % 2 == 0 else int(rng.integers(0, size))
                value = int((published[position] + rng.integers(1, 256)) % 256)  # always a change
            elif family == "results" and k % 4 == 3:
                position, value = int(rng.integers(0, 1 << 30)), -1
            else:
                position, value = int(rng.integers(0, 1 << 30)), int(rng.integers(0, 256))
            cases.append((family, position, value))

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fxplain-campaign-") as tmp:
        scratch = Path(tmp)
        _prepare(scratch / "originals")
        for k in range(args.workers):
            (scratch / f"w{k}").mkdir()
            for f in (scratch / "originals").iterdir():
                (scratch / f"w{k}" / f.name).write_bytes(f.read_bytes())
        counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        pool = _Pool(args.workers, scratch, args.timeout)
        for n, ((family, _, _), outcome) in enumerate(pool.run(cases), start=1):
            counts[family][outcome] += 1
            if n % 250 == 0:
                print(f"  {n}/{len(cases)} cases, {time.monotonic() - started:.0f} s", file=sys.stderr)
        pool.close()
        for family, counter in _direct_cases(scratch).items():
            counts[family].update(counter)

    defects = 0
    print(f"{'family':<9} {'cases':>6}  outcomes")
    for family, counter in counts.items():
        print(f"{family:<9} {sum(counter.values()):>6}  " + "; ".join(f"{k}: {v}" for k, v in counter.most_common()))
        defects += sum(v for k, v in counter.items() if k.split()[0] in DEFECTS)
    print(f"total {sum(sum(c.values()) for c in counts.values())} cases in {time.monotonic() - started:.0f} s; "
          f"defects (SILENT, FOREIGN, crash, hang): {defects}")
    return 1 if defects else 0


if __name__ == "__main__":
    sys.exit(main())
