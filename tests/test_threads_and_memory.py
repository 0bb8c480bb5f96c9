"""Sharing a model between threads, and repeated calls that must not leak."""

from __future__ import annotations

import itertools
import resource
import threading

import numpy as np


def _in_threads(work, count: int) -> None:
    """Run ``work(k)`` for k < count in as many threads at once; re-raise what any of them raised."""
    errors: list[BaseException] = []

    def guarded(k: int) -> None:
        try:
            work(k)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(k,)) for k in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def test_threads_give_the_serial_result(model, johns, johns_embeddings):
    images = johns[0]
    results: dict[int, np.ndarray] = {}

    def work(k: int) -> None:
        chunk = images[k * 11:(k + 1) * 11]
        for _ in range(3):
            results[k] = model.embed(chunk, batch_size=4 + k)

    _in_threads(work, 5)
    np.testing.assert_allclose(np.concatenate([results[k] for k in range(5)]), johns_embeddings,
                               rtol=0, atol=2e-6)


def test_inputs_are_not_modified(model, johns):
    images = johns[0][:3].copy()
    floats = images.astype(np.float32)
    model.embed(images)
    model.embed(floats)
    np.testing.assert_array_equal(images, johns[0][:3])
    np.testing.assert_array_equal(floats, johns[0][:3].astype(np.float32))


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def test_repeated_calls_do_not_leak(model, johns):
    images = johns[0][:4]
    for _ in range(5):  # warm up: plans and allocator pools
        model.embed(images)
    before = _rss_mib()
    for _ in range(200):
        model.embed(images)
    assert _rss_mib() - before < 20


def test_building_and_dropping_models_does_not_leak(model):
    from fxplain.runtime.core_net import build_core_net

    for _ in range(3):
        build_core_net(model.spec).forward(np.zeros((1, 150, 150, 3), np.float32))
    before = _rss_mib()
    for _ in range(15):
        net = build_core_net(model.spec)
        net.forward(np.zeros((2, 150, 150, 3), np.float32))
        del net
    assert _rss_mib() - before < 60


def test_every_entry_point_gives_the_serial_result_from_several_threads(model, johns, default_decoder, tmp_path):
    """Calls that run a forward and a backward pass (score_gradient, the integrated gradient variant)
    are one transaction on the model, so threads interleaving other calls cannot break them."""
    import fxplain

    images = johns[0]
    a, b, c = images[0], images[1], images[30]
    reference = model.embed(b)[0]
    integrated = fxplain.Explainer(model, method="gradient", steps=2, samples=2, batch_size=4)
    files = johns[2]
    listing = tmp_path / "pairs.csv"
    listing.write_text(f"{files[0]},{files[1]},1\n{files[0]},{files[30]},0\n")
    stores = itertools.count()
    stored = fxplain.explain_pairs(model, fxplain.read_pairs(listing), n_masks=8, store=tmp_path / "stored.zarr",
                                   show_progress=False)
    calls = {
        "embed": lambda: model.embed(images[:6], batch_size=3),
        "score_gradient": lambda: np.concatenate([g.ravel() for g in model.score_gradient(images[2:6], reference,
                                                                                          batch_size=2)]),
        "input_gradient": lambda: model.input_gradient(images[:2], np.ones(128, np.float32)),
        "dimension_maps": lambda: model.dimension_maps(a, batch_size=64)[:8],
        "verify": lambda: np.array([model.verify(a, c).score]),
        "integrated": lambda: integrated.explain(a, b).evidence,
        "net": lambda: fxplain.Explainer(model, method="gradient", variant="net").explain(a, c).evidence,
        "occlusion": lambda: fxplain.Explainer(model, method="occlusion", patch_sizes=(50,)).explain(a, b).evidence,
        "corrrise": lambda: fxplain.Explainer(model, n_masks=16, batch_size=8).explain(a, c).evidence,
        "reconstruct": lambda: default_decoder.reconstruct(model.embed(a)[0]),
        "counterfactual": lambda: fxplain.Explainer(model, method="reconstruction",
                                                    decoder=default_decoder).explain(a, c).evidence,
        "atlas": lambda: default_decoder.region_atlas(model.embed(images[:2])).maps[:4],
        "occlusion_maps": lambda: model.dimension_maps(a, method="occlusion", patch=50, stride=50)[:8],
        "explain_pairs": lambda: np.stack([r.evidence for r in fxplain.explain_pairs(
            model, fxplain.read_pairs(listing), n_masks=8, store=tmp_path / f"run{next(stores)}.zarr",
            show_progress=False)]),
        "open_results": lambda: np.stack([r.evidence for r in fxplain.open_results(stored.run.root)]),
        "region_shares": lambda: stored[1].region_shares().to_numpy(),
        "region_table": lambda: stored.region_table(n_boot=20)["share"].to_numpy(),
    }
    serial = {name: call() for name, call in calls.items()}
    results: dict[tuple[int, str], np.ndarray] = {}

    def work(k: int) -> None:
        names = list(calls)
        order = names[k:] + names[:k]  # each thread in a different order, so different calls overlap
        for _ in range(2):
            for name in order:
                results[k, name] = calls[name]()

    _in_threads(work, 4)
    for (k, name), value in results.items():
        np.testing.assert_array_equal(value, serial[name], err_msg=f"thread {k}, {name}")


def test_explain_identification_from_two_threads_gives_the_serial_result(model, johns, tmp_path):
    """Two threads identifying at once (each building the gallery, so both write the same cache entries)."""
    import fxplain

    _, identities, paths = johns
    items = [(identities[k], str(paths[k])) for k in (1, 2, 12, 13, 23, 24)]
    probes = [str(paths[0]), str(paths[11])]
    options = {"top_k": 2, "method": "corrrise", "n_masks": 16, "batch_size": 8, "cache_dir": tmp_path / "cache"}

    def summary(r) -> np.ndarray:
        return np.concatenate([[c.score for c in r.ranking], r.contrast.similarity.ravel(),
                               r.contrast.dissimilarity.ravel()] + [p.evidence.ravel() for p in r.pairs])

    serial = [summary(fxplain.explain_identification(model, probe, items, **options)) for probe in probes]
    results: dict[tuple[int, int], np.ndarray] = {}

    def work(k: int) -> None:
        for j in (k, 1 - k):  # the threads take the probes in opposite orders
            results[k, j] = summary(fxplain.explain_identification(model, probes[j], items, **options))

    _in_threads(work, 2)
    for (k, j), value in results.items():
        np.testing.assert_array_equal(value, serial[j], err_msg=f"thread {k}, probe {j}")
