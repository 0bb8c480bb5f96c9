"""Faithfulness metrics on synthetic cases with known answers."""

from __future__ import annotations

import json

import numpy as np
import pytest

import fxplain
from fxplain.evaluation import baselines, metrics, planted, sanity

BOX = (10, 10, 30, 30)


def _region_model():
    """A toy model whose embedding is the mean colour inside BOX: only that region matters."""
    top, left, bottom, right = BOX
    return fxplain.wrap(lambda x: x[:, top:bottom, left:right].reshape(len(x), -1, 3).mean(axis=1) / 255.0,
                        input_size=(40, 40), threshold=-1.0, metric="squared_euclidean", dtype="float32",
                        name="region-mean")


@pytest.fixture(scope="module")
def toy():
    rng = np.random.default_rng(0)
    image = rng.uniform(100, 255, (40, 40, 3)).astype(np.float32)
    model = _region_model()
    return model, image, model.embed(image)[0]


def test_removal_masks():
    saliency = np.arange(12, dtype=float).reshape(3, 4)
    deletion = metrics.removal_masks(saliency, 4, "deletion")
    insertion = metrics.removal_masks(saliency, 4, "insertion")
    assert deletion.shape == (5, 3, 4)
    assert deletion[0].all() and not deletion[-1].any()
    assert not insertion[0].any() and insertion[-1].all()
    np.testing.assert_array_equal(deletion + insertion, 1)
    assert deletion[1].reshape(-1)[-3:].tolist() == [0, 0, 0]  # the most salient pixels go first
    with pytest.raises(fxplain.InvalidInputError, match="mode"):
        metrics.removal_masks(saliency, 4, "both")


def test_deletion_ranks_perfect_random_and_inverted_maps(toy):
    model, image, partner = toy
    perfect = planted.region_mask((40, 40), BOX).astype(float)
    inverted = 1.0 - perfect
    random = baselines.random_map((40, 40), seed=1)
    curves = {}
    for name, saliency in (("perfect", perfect), ("inverted", inverted), ("random", random)):
        curves[name] = metrics.perturbation_curve(model, image, partner, saliency, steps=20, fill="zero")
        assert curves[name][0] == pytest.approx(0.0, abs=1e-9)  # intact image = the partner
    auc = {name: metrics.normalized_auc(curve) for name, curve in curves.items()}
    assert auc["perfect"] < auc["random"] < auc["inverted"]
    # the region is 25 % of the image: the perfect map has removed all of it after 5 of 20 steps,
    # the inverted map touches none of it during the first 15
    np.testing.assert_allclose(curves["perfect"][5:], curves["perfect"][-1], atol=1e-9)
    np.testing.assert_allclose(curves["inverted"][:16], 0.0, atol=1e-9)


def test_insertion_ranks_perfect_above_inverted(toy):
    model, image, partner = toy
    perfect = planted.region_mask((40, 40), BOX).astype(float)
    up = metrics.perturbation_curve(model, image, partner, perfect, steps=10, mode="insertion", fill="zero")
    down = metrics.perturbation_curve(model, image, partner, 1 - perfect, steps=10, mode="insertion", fill="zero")
    assert metrics.normalized_auc(up) > metrics.normalized_auc(down)
    assert up[-1] == pytest.approx(0.0, abs=1e-9)


def test_region_auc_and_spearman_known_answers():
    perfect = planted.region_mask((40, 40), BOX).astype(float)
    assert metrics.region_auc(perfect, BOX) == 1.0
    assert metrics.region_auc(1 - perfect, BOX) == 0.0
    assert metrics.region_auc(np.ones((40, 40)), BOX) == 0.5
    x = np.random.default_rng(0).random((5, 5))
    assert metrics.spearman(x, x) == pytest.approx(1.0)
    assert metrics.spearman(x, -x) == pytest.approx(-1.0)
    assert metrics.spearman(x, np.ones((5, 5))) == 0.0
    assert metrics.normalized_auc([1, 1, 1]) == 1.0 and metrics.normalized_auc([1, 0]) == 0.5


def test_baseline_maps():
    g = baselines.center_gaussian_map((9, 9))
    assert g.argmax() == 40 and g.min() > 0
    np.testing.assert_array_equal(baselines.random_map((4, 4), 3), baselines.random_map((4, 4), 3))


def test_randomized_model(model, johns):
    same = sanity.randomized_model(model, 0)
    np.testing.assert_allclose(same.embed(johns[0][:2]), model.embed(johns[0][:2]), atol=1e-6)
    top = sanity.randomized_model(model, 1)
    assert not np.allclose(top.embed(johns[0][:2]), model.embed(johns[0][:2]), atol=1e-3)
    assert model.spec.layers[-1].params["weight"] is not top.spec.layers[-1].params["weight"]
    with pytest.raises(fxplain.InvalidInputError, match="layers"):
        sanity.randomized_model(model, 99)


def test_evaluate_on_an_identity_folder_and_resume(model, johns, tmp_path):
    from PIL import Image

    images, identities, _ = johns
    root = tmp_path / "faces"
    for k in (0, 1, 2, 11, 12, 13):
        folder = root / identities[k]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[k]).save(folder / f"{k}.png")
    cache = tmp_path / "cache"
    kwargs = {"methods": ["occlusion"], "pairs": 4, "steps": 5, "planted_per_region": 0, "sanity_pairs": 0,
              "method_params": {"occlusion": {"patch_sizes": (75,)}}, "cache_dir": cache}
    report = fxplain.evaluate(model, root, **kwargs)
    assert [row["method"] for row in report.rows] == ["occlusion", "random", "center"]
    stored = fxplain.open_results(cache / "occlusion.zarr")   # the method's run, with per-pair scores
    assert len(stored) == 4 and stored.missing == 0
    genuine = stored.table[stored.table["label"] == "same"]
    assert np.isclose(np.mean([s for s in genuine["deletion_auc"]]), np.mean(
        [np.mean([np.trapezoid(c) / (len(c) - 1) for c in s["deletion"]]) for s in stored.scores()
         if s["kind"] == "similarity"]))
    again = fxplain.evaluate(model, root, **kwargs)  # from the complete store: nothing recomputed
    assert again.rows[0]["deletion_similarity_auc"] == report.rows[0]["deletion_similarity_auc"]
    assert again.rows[1]["deletion_similarity_auc"] == report.rows[1]["deletion_similarity_auc"]
    with pytest.raises(fxplain.StoreError, match="patch_sizes"):   # other settings in the same store
        fxplain.evaluate(model, root, **{**kwargs, "method_params": {"occlusion": {"patch_sizes": (50,)}}})
    out = report.save(tmp_path / "report")
    assert (out / "report.md").read_text().startswith("# fxplain evaluation")
    assert (out / "curves.png").read_bytes().startswith(b"\x89PNG")
    assert "deletion_similarity_auc" in (out / "results.csv").read_text()
    assert "| deletion_similarity_auc ↓ |" in (out / "report.md").read_text()
    assert json.loads((out / "better.json").read_text())["insertion_similarity_auc"] == "higher"
    with pytest.raises(fxplain.InvalidInputError, match="cannot draw"):
        fxplain.evaluate(model, root, methods=["occlusion"], pairs=200)
    with pytest.raises(fxplain.InvalidInputError, match="not found"):
        fxplain.evaluate(model, tmp_path / "nothing")
