"""The face-reconstruction decoder: its network, file format, training and maps."""

from __future__ import annotations

import struct

import numpy as np
import pytest

import fxplain
from fxplain.evaluation import metrics
from fxplain.evaluation.correspondence import correspondence_table
from fxplain.evaluation.planted import planted_difference_pairs
from fxplain.faces.collection import example_faces
from fxplain.methods.decomposition import combine, margin_contributions
from fxplain.models.formats.fxspec import load_spec, save_spec
from fxplain.models.regions import face_ellipse
from fxplain.reconstruction import Decoder, decoder_spec, to_uint8
from fxplain.reconstruction.training import train_decoder
from fxplain.runtime import reference as _reference


def _small_decoder(seed=0) -> Decoder:
    rng = np.random.default_rng(seed)
    spec = decoder_spec(8, (21, 21), widths=(6, 5, 4), start=3, embedding_mean=rng.standard_normal(8) * 0.1,
                        embedding_std=rng.uniform(0.05, 0.2, 8), seed=seed)
    return Decoder(spec, model_hash="test")


def test_decoder_network_matches_numpy_twin():
    dec = _small_decoder()
    emb = np.random.default_rng(1).standard_normal((4, 8)).astype(np.float32) * 0.1
    got = dec.decode(emb)
    want = _reference.forward(dec.spec, emb.reshape(4, 1, 1, 8))
    assert got.shape == (4, 3, 21, 21)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * max(1.0, np.abs(want).max()))
    images = dec.reconstruct(emb)
    assert images.dtype == np.uint8 and images.shape == (4, 21, 21, 3)
    np.testing.assert_array_equal(images, to_uint8(got))   # reconstruct is decode, rounded
    # against the twin: equal up to a pixel value lying within float error of a rounding boundary
    assert np.abs(images.astype(int) - to_uint8(want.astype(np.float32)).astype(int)).max() <= 1
    assert dec.reconstruct(emb[0]).shape == (21, 21, 3)


def test_dimension_maps_are_one_decoder_batch_of_perturbations():
    dec = _small_decoder()
    f = np.random.default_rng(2).standard_normal(8).astype(np.float32) * 0.1
    maps = dec.dimension_maps(f, delta=1.5, normalize=False)
    assert maps.shape == (8, 21, 21) and maps.min() >= 0
    for k in (0, 5):
        moved = f.copy()
        moved[k] -= 1.5 * dec.embedding_std[k]
        want = np.abs(dec.decode(f) - dec.decode(moved)).sum(axis=1)[0]
        np.testing.assert_allclose(maps[k], want, atol=1e-5)
    normed = dec.dimension_maps(f, delta=1.5)
    np.testing.assert_allclose(normed.reshape(8, -1).sum(axis=1), 1.0, rtol=1e-5)
    average = dec.average_region_maps(np.stack([f, -f]), delta=1.5)
    np.testing.assert_allclose(average, (normed + dec.dimension_maps(-f, delta=1.5)) / 2, atol=1e-6)


def test_decoder_file_round_trip_and_corrupt_files(tmp_path):
    dec = _small_decoder()
    dec.info = {"trained_on": "nothing", "history": {"pixel": [0.5, 0.25]}}
    path = dec.save(tmp_path / "d.fxd")
    back = fxplain.load_decoder(path)
    emb = np.random.default_rng(3).standard_normal((2, 8)).astype(np.float32)
    np.testing.assert_array_equal(back.decode(emb), dec.decode(emb))
    assert back.info == dec.info and back.model_hash == "test"
    assert back.spec.weights_digest() == dec.spec.weights_digest()
    data = path.read_bytes()
    assert data[8:35] == b'{"__metadata__":{"fxplain":'  # version 2: a safetensors container

    def corrupt(name, blob):
        p = tmp_path / name
        p.write_bytes(blob)
        return p

    with pytest.raises(fxplain.ModelFormatError, match="not an fxplain network file"):
        fxplain.load_decoder(corrupt("magic.fxd", data[:8] + b"PK" + data[10:]))
    with pytest.raises(fxplain.ModelFormatError, match="version 7"):
        fxplain.load_decoder(corrupt("version.fxd", data.replace(b'format_version\\": 2', b'format_version\\": 7')))
    with pytest.raises(fxplain.ModelFormatError, match="not a valid safetensors container"):
        fxplain.load_decoder(corrupt("truncated.fxd", data[: len(data) // 2]))
    with pytest.raises(fxplain.ModelFormatError, match="not an fxplain network file"):
        fxplain.load_decoder(corrupt("empty.fxd", b""))
    nan = bytearray(data)
    nan[-4:] = struct.pack("<f", float("nan"))
    with pytest.raises(fxplain.ModelFormatError, match="the file is damaged"):
        fxplain.load_decoder(corrupt("nan.fxd", bytes(nan)))
    with pytest.raises(fxplain.ModelNotFoundError):
        fxplain.load_decoder(tmp_path / "missing.fxd")
    save_spec(tmp_path / "net.fxd", dec.spec, {"kind": "something else"})
    assert load_spec(tmp_path / "net.fxd")[1] == {"kind": "something else"}
    with pytest.raises(fxplain.ModelFormatError, match="not a decoder"):
        fxplain.load_decoder(tmp_path / "net.fxd")


def test_decoder_bad_input():
    dec = _small_decoder()
    with pytest.raises(fxplain.InvalidInputError, match=r"shape \(N, 8\)"):
        dec.reconstruct(np.zeros((2, 7), np.float32))
    with pytest.raises(fxplain.InvalidInputError, match="NaN"):
        dec.reconstruct(np.full(8, np.nan))
    with pytest.raises(fxplain.InvalidInputError, match="numeric"):
        dec.reconstruct(np.array(["a"] * 8))
    with pytest.raises(fxplain.InvalidInputError, match="one embedding"):
        dec.dimension_maps(np.zeros((2, 8)))
    with pytest.raises(fxplain.InvalidInputError, match="delta"):
        dec.dimension_maps(np.zeros(8), delta=0.0)


def test_training_options_are_checked(model, tmp_path):
    with pytest.raises(fxplain.InvalidInputError, match="unknown training option"):
        train_decoder(model, "johns", steps=1, learning_rat=1e-3)
    with pytest.raises(fxplain.InvalidInputError, match="steps must be a positive integer"):
        train_decoder(model, "johns", steps=0)
    with pytest.raises(fxplain.InvalidInputError, match="pixel_loss"):
        train_decoder(model, "johns", steps=1, pixel_loss="l3")
    with pytest.raises(fxplain.InvalidInputError, match="not found"):
        train_decoder(model, tmp_path / "nowhere", steps=1)
    (tmp_path / "empty").mkdir()
    with pytest.raises(fxplain.InvalidInputError, match="holds no images"):
        train_decoder(model, tmp_path / "empty", steps=1)
    with pytest.raises(fxplain.InvalidInputError, match="seed"):
        train_decoder(model, "johns", steps=1, seed=-1)
    with pytest.raises(fxplain.InvalidInputError, match="load_model"):
        train_decoder(fxplain.wrap(lambda x: np.zeros((len(x), 4)), input_size=(150, 150), threshold=0.5),
                      "johns", steps=1)
    with pytest.raises(fxplain.InvalidInputError, match="checkpoint_every"):
        train_decoder(model, "johns", steps=1, checkpoint_every=0)
    with pytest.raises(fxplain.InvalidInputError, match="at least 2"):
        train_decoder(model, np.zeros((1, 150, 150, 3), np.uint8), steps=1)


def test_short_training_lowers_the_loss_and_resumes_exactly(model, johns, tmp_path):
    """A few johns chips, a short budget: the loss falls; a resumed run equals an uninterrupted one."""
    images = johns[0][::11][:4]
    options = {"seed": 3, "batch_size": 8, "pool_size": 32, "refresh_every": 10, "widths": (32, 32, 16, 8),
               "show_progress": False}
    full = train_decoder(model, images, steps=40, **options)
    pixel = np.array(full.info["history"]["pixel"])
    assert pixel[-10:].mean() < 0.8 * pixel[:5].mean()
    checkpoint = tmp_path / "run.npz"
    train_decoder(model, images, steps=25, checkpoint=checkpoint, checkpoint_every=10, **options)
    resumed = train_decoder(model, images, steps=40, checkpoint=checkpoint, checkpoint_every=10, **options)
    assert resumed.info["history"]["pixel"] == full.info["history"]["pixel"]
    emb = model.embed(images)
    np.testing.assert_allclose(resumed.decode(emb), full.decode(emb), atol=1e-5)
    with pytest.raises(fxplain.ModelFormatError, match="another model, training set or settings"):
        train_decoder(model, images, steps=40, checkpoint=checkpoint, **{**options, "seed": 4})


def test_default_decoder_reconstructs_its_training_faces_recognisably(model, johns, johns_embeddings,
                                                                        default_decoder):
    images, identities, _ = johns
    history = default_decoder.info["history"]
    assert np.mean(history["pixel"][-50:]) < 0.6 * np.mean(history["pixel"][:10])
    rebuilt = default_decoder.reconstruct(johns_embeddings)
    assert rebuilt.shape == images.shape
    again = model.embed(rebuilt)
    # nearest real chip of each reconstruction's embedding belongs to its own identity
    distances = ((again[:, None] - johns_embeddings[None]) ** 2).sum(axis=-1)
    ids = np.array(identities)
    rank1 = np.mean(ids[distances.argmin(axis=1)] == ids)
    face = face_ellipse((150, 150)) > 0
    errors = [(r.astype(float) - i) ** 2 for r, i in zip(rebuilt, images)]
    psnr = np.mean([10 * np.log10(255 ** 2 / np.mean(e)) for e in errors])
    psnr_face = np.mean([10 * np.log10(255 ** 2 / np.mean(e[face])) for e in errors])
    print(f"default decoder on its training faces: rank-1 identity {rank1:.2f}, PSNR {psnr:.1f} dB, "
          f"inside the face ellipse {psnr_face:.1f} dB")
    assert rank1 >= 0.9
    assert psnr_face > 17  # the background is grey by design (docs/reconstruction.md): the face is what counts


def test_reconstruction_method_decomposes_the_margin(model, johns, johns_embeddings, default_decoder, tmp_path):
    images, _, _ = johns
    ex = fxplain.Explainer(model, method="reconstruction", decoder=default_decoder, variant="net")
    r = ex(images[0], images[1])
    assert r.method == "reconstruction" and r.params["decoder"].startswith("decoder:")
    digest = default_decoder.spec.weights_digest()[:16]
    assert r.params["decoder"] == f"decoder:{digest}" and r.extras["decoder_weights"] == digest
    # with decoder=None the params cannot name the weights; the extras do
    assert fxplain.Explainer(model, method="reconstruction")(images[0], images[1]).extras["decoder_weights"] == digest
    c = np.array(r.extras["contributions"])
    assert c.sum() == pytest.approx(r.score - r.threshold, abs=1e-5)
    signed = r.similarity - r.dissimilarity
    assert signed[0].sum() == pytest.approx(r.score - r.threshold, rel=1e-4)
    want = combine(margin_contributions(model, johns_embeddings[0], johns_embeddings[1]),
                   default_decoder.dimension_maps(johns_embeddings[0]))
    np.testing.assert_allclose(signed[0], want, atol=1e-6 * np.abs(want).max())
    path = default_decoder.save(tmp_path / "d.fxd")
    by_path = fxplain.Explainer(model, method="reconstruction", decoder=str(path), variant="net")(images[0], images[1])
    np.testing.assert_allclose(by_path.similarity, r.similarity, atol=1e-7)
    with pytest.raises(fxplain.InvalidInputError, match="another face model"):
        fxplain.Explainer(model, method="reconstruction", decoder=_small_decoder())(images[0], images[1])
    with pytest.raises(fxplain.InvalidInputError, match="decoder must be"):
        fxplain.Explainer(model, method="reconstruction", decoder=3)
    with pytest.raises(fxplain.InvalidInputError, match="delta"):
        fxplain.Explainer(model, method="reconstruction", decoder=default_decoder, delta=float("nan"))
    with pytest.raises(fxplain.ModelFormatError, match="trained for model"):
        fxplain.load_decoder(path, fxplain.wrap(lambda x: np.zeros((len(x), 128)), input_size=(150, 150),
                                                threshold=-0.36))


def test_counterfactual_variant_moves_the_dimensions_by_the_pairs_own_amounts(model, johns, johns_embeddings,
                                                                             default_decoder):
    images, _, _ = johns
    r = fxplain.Explainer(model, method="reconstruction", decoder=default_decoder)(images[0], images[20])
    assert r.params["variant"] == "counterfactual"  # the default
    c = np.array(r.extras["contributions"])
    assert c.sum() == pytest.approx(r.score - r.threshold, abs=1e-5)
    np.testing.assert_allclose(r.similarity.reshape(2, -1).sum(axis=1), c[c > 0].sum(), rtol=1e-5)
    np.testing.assert_allclose(r.dissimilarity.reshape(2, -1).sum(axis=1), -c[c < 0].sum(), rtol=1e-5)
    # image A's dissimilarity map by its definition: A's rebuilt face taking B's "against" dimensions
    f_a, f_b = johns_embeddings[0], johns_embeddings[20]
    moved = f_a.copy()
    moved[c < 0] = f_b[c < 0]
    change = np.abs(default_decoder.decode(moved)[0] - default_decoder.decode(f_a)[0]).sum(axis=0)
    np.testing.assert_allclose(r.dissimilarity[0], change / change.sum() * -c[c < 0].sum(), rtol=1e-4,
                               atol=1e-7 * r.dissimilarity[0].max())
    shared = f_a.copy()
    shared[c > 0] = default_decoder.embedding_mean[c > 0]
    change = np.abs(default_decoder.decode(shared)[0] - default_decoder.decode(f_a)[0]).sum(axis=0)
    np.testing.assert_allclose(r.similarity[0], change / change.sum() * c[c > 0].sum(), rtol=1e-4,
                               atol=1e-7 * r.similarity[0].max())


def held_out_quality(model, decoder, images, identities, train_idx, test_idx):
    """PSNR (whole chip, and inside the face ellipse) and rank-1 identification (among identity centroids of
    the training chips) of held-out faces."""
    ids = np.array(identities)
    emb = model.embed(images)
    rebuilt = decoder.reconstruct(emb[test_idx])
    again = model.embed(rebuilt)
    names = sorted(set(ids[train_idx]))
    centroids = np.stack([emb[train_idx][ids[train_idx] == n].mean(axis=0) for n in names])
    guess = np.array(names)[((again[:, None] - centroids[None]) ** 2).sum(axis=-1).argmin(axis=1)]
    rank1 = float(np.mean(guess == ids[test_idx]))
    face = face_ellipse(images.shape[1:3]) > 0
    errors = [(r.astype(float) - images[i]) ** 2 for r, i in zip(rebuilt, test_idx)]
    psnr = float(np.mean([10 * np.log10(255 ** 2 / np.mean(e)) for e in errors]))
    psnr_face = float(np.mean([10 * np.log10(255 ** 2 / np.mean(e[face])) for e in errors]))
    return psnr, psnr_face, rank1


def test_generalisation_to_held_out_chips(model, johns):
    """The default recipe on a held-out split: train on 8 of each johns identity's 11 chips and the example
    photos' faces (1000 steps), rebuild the other 15 chips and check their region maps against the model's
    occlusion maps (docs/reconstruction.md has the numbers)."""
    images, identities, _ = johns
    ids = np.array(identities)
    test_idx = np.concatenate([np.flatnonzero(ids == n)[8:] for n in sorted(set(identities))])
    train_idx = np.setdiff1d(np.arange(len(ids)), test_idx)
    assert len(train_idx) == 40 and len(test_idx) == 15
    chips = np.concatenate([images[train_idx], example_faces((150, 150))])
    decoder = train_decoder(model, chips, steps=1000, seed=0, show_progress=False)
    psnr, psnr_face, rank1 = held_out_quality(model, decoder, images, identities, train_idx, test_idx)
    rows = {r["method"]: r for r in correspondence_table(model, images[test_idx[::3]], decoder=decoder)}
    print(f"held-out (15 chips): PSNR {psnr:.1f} dB, inside the face ellipse {psnr_face:.1f} dB, rank-1 "
          f"{rank1:.2f} (chance 0.20); on 5 of them, face mass / correlation with the occlusion maps: "
          + ", ".join(f"{m} {r['face_mass']:.2f} / {r['occlusion_correlation']:.2f}" for m, r in rows.items()))
    assert rank1 >= 0.9
    assert psnr_face >= 16
    # the decoder's maps lie on the face at least as much as the model's own occlusion maps, and agree with them
    assert rows["decoder"]["face_mass"] >= rows["occlusion"]["face_mass"]
    assert rows["decoder"]["occlusion_correlation"] >= 0.4
    # planted differences in held-out faces (60 hybrids: 15 would leave one hit worth 0.07): the default
    # (counterfactual) variant points into the region about half the time (measured 0.50, mass 0.26)
    planted = planted_difference_pairs(images[test_idx], list(ids[test_idx]), per_region=20, seed=1)
    results = fxplain.Explainer(model, method="reconstruction", decoder=decoder).explain_pairs(
        [(p.hybrid, p.partner) for p in planted])
    hits = [metrics.pointing_hit(r.dissimilarity[0], p.box, tolerance=8) for r, p in zip(results, planted)]
    mass = [metrics.energy_in_region(r.dissimilarity[0], p.box) for r, p in zip(results, planted)]
    print(f"held-out planted differences ({len(planted)} hybrids): pointing {np.mean(hits):.2f}, mass in region "
          f"{np.mean(mass):.2f} (area 0.10)")
    assert np.mean(hits) >= 0.4
    assert np.mean(mass) >= 2 * 0.10


def test_decoder_training_steps_match_the_numpy_twin():
    """Same initial weights, same batches: fxplain's training loop and a float64 NumPy twin
    (reference gradients, reference Adam) give the same loss curve."""
    from fxplain import _core
    from fxplain.reconstruction.training import _Adam

    dec = _small_decoder(5)
    spec = dec.spec
    twin = {node: [layer.params["weight"].astype(np.float64), np.asarray(layer.params["bias"], np.float64)]
            for node, layer in enumerate(spec.layers, start=1) if layer.kind in ("conv", "dense")}
    moments = {node: [[np.zeros_like(a), np.zeros_like(a)] for a in arrays] for node, arrays in twin.items()}
    adam = _Adam(spec)
    rng = np.random.default_rng(0)
    ours, theirs = [], []
    for step in range(1, 7):
        emb = (rng.standard_normal((4, 1, 1, 8)) * 0.1).astype(np.float32)
        target = rng.uniform(-0.5, 0.5, (4, 3, 21, 21)).astype(np.float32)
        out = dec._net.train_forward(emb, True)
        loss, grad = _core.pixel_loss(out, target, "l2", 1.0)
        _, grads = dec._net.train_backward(grad)
        adam.step(dec._net, grads, 1e-2, step)
        ours.append(loss)
        # the twin: the same step in float64 on the reference network
        for node, (w, b) in twin.items():
            spec.layers[node - 1].params.update(weight=w, bias=b)
        out64 = _reference.forward(spec, emb)
        theirs.append(float(np.mean((out64 - target) ** 2)))
        grads64 = _reference.parameter_gradients(spec, emb, 2 * (out64 - target) / out64.size)
        for node, (dw, db) in grads64.items():
            for slot, g in enumerate((dw, db)):
                twin[node][slot], moments[node][slot][0], moments[node][slot][1] = _reference.adam_update(
                    twin[node][slot], g, moments[node][slot][0], moments[node][slot][1], 1e-2, 0.9, 0.999, 1e-8, step)
    print("fxplain", np.round(ours, 6), "\ntwin   ", np.round(theirs, 6))
    assert ours[-1] < ours[0]
    np.testing.assert_allclose(ours, theirs, rtol=1e-4)


def test_evaluate_runs_the_reconstruction_method_without_training_another_decoder(model, default_decoder):
    """The sanity check feeds the randomised model's features to the same decoder (no new training)."""
    from fxplain.reconstruction import default_decoder_path

    folder = default_decoder_path(model).parent
    before = sorted(folder.iterdir())
    report = fxplain.evaluate(model, "johns", methods=["reconstruction"], pairs=2, steps=3, planted_per_region=1,
                              sanity_pairs=1, show_progress=False)
    row = next(r for r in report.rows if r["method"] == "reconstruction")
    assert np.isfinite(row["sanity_spearman"]) and row["sanity_spearman"] < 0.99
    assert sorted(folder.iterdir()) == before
    # the same with the decoder given explicitly
    given = fxplain.evaluate(model, "johns", methods=["reconstruction"], pairs=2, steps=3, planted_per_region=1,
                             sanity_pairs=1, method_params={"reconstruction": {"decoder": default_decoder}},
                             show_progress=False)
    again = next(r for r in given.rows if r["method"] == "reconstruction")
    assert again["sanity_spearman"] == pytest.approx(row["sanity_spearman"])


def test_concurrent_first_calls_train_the_default_decoder_once(model, default_decoder, tmp_path, monkeypatch):
    """Threads asking for a missing default decoder at once: one trains and saves, the others load its file."""
    import threading
    import time

    from fxplain.reconstruction import default as default_module

    monkeypatch.setenv("FXPLAIN_CACHE_DIR", str(tmp_path))  # no cached decoder here
    calls = []

    def training_stand_in(*args, **kwargs):  # the real recipe takes minutes; what is tested is the locking
        calls.append(args)
        time.sleep(0.5)
        return default_decoder

    monkeypatch.setattr(default_module, "train_decoder", training_stand_in)
    got, errors = [], []

    def work():
        try:
            got.append(fxplain.default_decoder(model, show_progress=False))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(calls) == 1 and len(got) == 4
    assert {d.spec.weights_digest() for d in got} == {default_decoder.spec.weights_digest()}


def test_a_cached_version_1_default_decoder_is_upgraded_once(model, tmp_path, monkeypatch):
    """fxplain 0.1 cached its default decoder in version 1 (no checksum): the next load rewrites it as v2."""
    import shutil
    import warnings
    from pathlib import Path

    from fxplain.models.formats.fxspec import is_version_1
    from fxplain.reconstruction import default as default_module

    cached = tmp_path / "cached.fxd"
    shutil.copy(Path(__file__).parents[1] / "data" / "decoder_format_v1.fxd", cached)
    before = load_spec(cached, legacy_warning=False)[0].weights_digest()
    monkeypatch.setattr(default_module, "default_decoder_path", lambda m: cached)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # our own cache: upgraded without a warning
        with pytest.raises(fxplain.ModelFormatError, match="outputs 8x8 chips"):
            fxplain.default_decoder(model)  # the fixture is not dlib's decoder, but it was upgraded first
    assert not is_version_1(cached) and load_spec(cached)[0].weights_digest() == before
