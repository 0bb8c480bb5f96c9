"""The real dlib model on the oneDNN core against dlib's own C++ output."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import fxplain
from fxplain import datasets
from fxplain.runtime import reference as _reference


def test_embeddings_match_dlib_oracle(johns_embeddings, oracle):
    diff = np.abs(johns_embeddings.astype(np.float64) - oracle)
    assert johns_embeddings.shape == (55, 128) and johns_embeddings.dtype == np.float32
    assert diff.max() <= 1e-4, f"max abs difference to dlib {diff.max():.2e}"


def test_every_pair_gets_dlibs_decision(model, johns_embeddings, oracle):
    pairs, same = datasets.johns_pairs()
    i, j = np.array(pairs).T
    dlib_match = np.linalg.norm(oracle[i] - oracle[j], axis=1) < 0.6
    ours = model.score(johns_embeddings[i], johns_embeddings[j]) >= model.threshold
    assert len(pairs) == 1485 and same.sum() == 275
    np.testing.assert_array_equal(ours, dlib_match)
    np.testing.assert_array_equal(ours, same)  # and dlib separates johns perfectly


def test_score_is_negative_squared_distance_and_threshold_is_dlibs(model, johns_embeddings):
    a, b = johns_embeddings[0], johns_embeddings[20]
    d = np.linalg.norm(a.astype(np.float64) - b)
    assert model.score(a, b) == pytest.approx(-(d ** 2))
    assert model.threshold == pytest.approx(-0.36)
    assert model.metric == "squared_euclidean"
    # the boundary follows dlib's strict rule: distance exactly 0.6 is not a match
    e = np.zeros(128)
    f = np.zeros(128)
    f[0] = 0.6
    assert model.score(e, f) < model.threshold


def test_batch_size_does_not_change_embeddings(model, johns, johns_embeddings):
    images = johns[0][:9]
    for batch_size in (1, 4, 9):
        np.testing.assert_allclose(model.embed(images, batch_size=batch_size), johns_embeddings[:9],
                                   rtol=0, atol=2e-6)


def test_accepts_paths_pil_images_and_lists(model, johns, johns_embeddings):
    images, _, paths = johns
    single = model.embed(paths[3])
    assert single.shape == (1, 128)
    np.testing.assert_allclose(single[0], johns_embeddings[3], atol=2e-6)
    mixed = model.embed([str(paths[0]), Image.open(paths[1]), images[2]])
    np.testing.assert_allclose(mixed, johns_embeddings[:3], atol=2e-6)
    np.testing.assert_allclose(model.embed(images[4].astype(np.float64)), johns_embeddings[4:5], atol=2e-6)


def test_resize_is_an_explicit_opt_in(model, johns):
    big = np.asarray(Image.fromarray(johns[0][0]).resize((300, 300), Image.BILINEAR))
    with pytest.raises(fxplain.InvalidInputError, match="150x150"):
        model.embed(big.astype(np.float32))  # float pixels of another size: never taken for a photo
    emb = model.embed(big, resize=True)
    assert emb.shape == (1, 128)
    # a 2x up- then down-sampled chip is still the same person
    chip = model.embed(johns[0][0])[0]
    assert model.score(emb[0], chip) >= model.threshold
    # without resize, a uint8 image of another size is a photo: its face is detected and aligned
    assert model.score(model.embed(big)[0], chip) >= model.threshold


def test_verify_reports_score_threshold_decision(model, johns):
    paths = johns[2]
    result = model.verify(paths[0], paths[1])
    assert result.match and result.distance < 0.6 and result.score >= result.threshold
    assert not model.verify(paths[0], paths[-1]).match


def test_reader_matches_reference_forward_on_one_image(model, johns, oracle):
    """The NumPy twin of the whole network agrees with dlib too (float64)."""
    ref = _reference.forward(model.spec, johns[0][:1])[:, :, 0, 0]
    assert np.abs(ref - oracle[:1]).max() < 1e-5


def test_model_facts(model):
    assert model.input_size == (150, 150)
    assert model.embedding_size == 128
    assert len(model.model_hash) == 64
    assert 0.5e9 < model.spec.flops_per_image() < 0.6e9
    info = fxplain.backend_info()
    assert info["onednn_version"].startswith("3.")


def test_bf16_precision_is_close_and_keeps_every_decision(johns, oracle):
    try:
        model = fxplain.load_model("dlib", precision="bf16")
    except fxplain.CoreError as exc:
        # no bf16 convolution kernel on this CPU (oneDNN 3.2 on AVX2): refused when asked, clearly, and a
        # model left in fp32 is exact
        assert "not available on this CPU" in str(exc) and "stays in fp32" in str(exc)
        model = fxplain.load_model("dlib")
        with pytest.raises(fxplain.CoreError, match="not available on this CPU"):
            model.set_precision("bf16")
        assert model.precision == "fp32"
        assert np.abs(model.embed(johns[0][:2]) - oracle[:2]).max() < 1e-4
        return
    emb = model.embed(johns[0], batch_size=64)
    assert np.abs(emb - oracle).max() < 0.01
    pairs, _ = datasets.johns_pairs()
    i, j = np.array(pairs).T
    dlib_match = np.linalg.norm(oracle[i] - oracle[j], axis=1) < 0.6
    np.testing.assert_array_equal(model.score(emb[i], emb[j]) >= model.threshold, dlib_match)
    model.set_precision("fp32")
    assert np.abs(model.embed(johns[0][:2]) - oracle[:2]).max() < 1e-4
    with pytest.raises(fxplain.InvalidInputError, match="precision"):
        model.set_precision("fp16")
