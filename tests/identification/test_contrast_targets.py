"""Every method explains a contrast c(x) = s(x, g1) − s(x, g2): targets, gradients and decompositions add up."""

from __future__ import annotations

import numpy as np
import pytest

import fxplain
from fxplain import InvalidInputError
from fxplain._util.progress import Progress
from fxplain.methods.base import METHODS
from fxplain.methods.decomposition import contrast_contributions
from fxplain.methods.targets import ScoreTarget
from fxplain.models.scoring import Contrast, score_and_embedding_gradient


@pytest.fixture(scope="module")
def case(johns, johns_embeddings):
    """A probe chip of John_Salley; g1 the mean of his other chips, g2 the mean of John_Simm's."""
    images, identities, _ = johns
    labels = np.asarray(identities)
    probe = 0
    first = johns_embeddings[(labels == labels[probe]) & (np.arange(len(labels)) != probe)].astype(np.float64)
    second = johns_embeddings[labels == "John_Simm"].astype(np.float64)
    return images[probe].astype(np.float32), johns_embeddings[probe], Contrast(first.mean(0), second.mean(0))


def _contrast_evidence(model, method, params, case, seed=0):
    pixels, embedding, contrast = case
    m = METHODS[method](**params)
    with Progress(1, "", False) as progress:
        return m.explain_contrast(model, pixels[None], embedding, contrast, seed, 32, progress)


def test_contrast_checks_its_embeddings():
    with pytest.raises(InvalidInputError):
        Contrast(np.zeros(4), np.zeros(5))
    with pytest.raises(InvalidInputError):
        Contrast(np.zeros((2, 4)), np.zeros((2, 4)))
    with pytest.raises(InvalidInputError):
        Contrast(np.zeros(4), np.array([0, np.nan, 0, 0]))
    source = np.ones(4)
    c = Contrast(source, np.zeros(4))
    source[0] = 5  # the contrast keeps its own copy
    assert c.first[0] == 1 and not c.first.flags.writeable


def test_score_target_of_a_contrast_is_the_difference_of_scores(model, johns, case):
    images = johns[0][10:14].astype(np.float32)
    _, _, contrast = case
    both = ScoreTarget(model, contrast, 0.25).scores(images, 4)
    first = ScoreTarget(model, contrast.first.astype(np.float32)).scores(images, 4)
    second = ScoreTarget(model, contrast.second.astype(np.float32)).scores(images, 4)
    np.testing.assert_allclose(both, first - second - 0.25, rtol=0, atol=1e-6)
    emb = model.embed(images)
    np.testing.assert_allclose(both + 0.25, contrast.score(model.metric, emb), rtol=0, atol=1e-5)


def test_occlusion_contrast_map_is_the_difference_of_the_two_score_maps(model, case):
    """Occlusion is linear in its target: the contrast's map is the map against g1 minus the map against g2."""
    pixels, embedding, contrast = case
    occlusion = METHODS["occlusion"](patch_sizes=(40,))
    with Progress(1, "", False) as progress:
        maps = [occlusion.evidence(model, pixels, g.astype(np.float32), model.score(embedding, g), 0, 32, progress)
                for g in (contrast.first, contrast.second)]
    evidence = _contrast_evidence(model, "occlusion", {"patch_sizes": (40,)}, case)
    assert evidence.similarity.shape == (1, 150, 150)
    np.testing.assert_allclose(evidence.similarity[0] - evidence.dissimilarity[0], maps[0] - maps[1], atol=1e-6)


def test_corrrise_contrast_is_seeded(model, case):
    one = _contrast_evidence(model, "corrrise", {"n_masks": 32}, case, seed=3)
    two = _contrast_evidence(model, "corrrise", {"n_masks": 32}, case, seed=3)
    np.testing.assert_array_equal(one.similarity, two.similarity)
    assert one.similarity.shape == (1, 150, 150) and one.similarity.max() <= 1


@pytest.mark.parametrize("metric", ["squared_euclidean", "cosine"])
def test_contrast_gradient_and_contributions(metric, case):
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(3, 8))
    contrast = Contrast(rng.normal(size=8), rng.normal(size=8))
    c, grad = score_and_embedding_gradient(metric, emb, contrast)
    (s1, g1), (s2, g2) = (score_and_embedding_gradient(metric, emb, g) for g in (contrast.first, contrast.second))
    np.testing.assert_allclose(c, s1 - s2)
    np.testing.assert_allclose(grad, g1 - g2)
    model = fxplain.wrap(lambda x: x.reshape(len(x), -1)[:, :8].astype(np.float32), input_size=(16, 16),
                         threshold=0.3, metric=metric)
    for e in emb:
        parts = contrast_contributions(model, e, contrast)
        assert parts.sum() == pytest.approx(float(contrast.score(metric, e)), abs=1e-12)
    if metric == "squared_euclidean":  # the formula: dimensions closer to g1 than to g2 favour g1
        np.testing.assert_allclose(contrast_contributions(model, emb[0], contrast),
                                   (emb[0] - contrast.second) ** 2 - (emb[0] - contrast.first) ** 2)


def test_model_score_gradient_of_a_contrast(model, johns, case):
    _, _, contrast = case
    images = johns[0][20:22]
    c, grad = model.score_gradient(images, contrast)
    (s1, g1), (s2, g2) = (model.score_gradient(images, g) for g in (contrast.first, contrast.second))
    np.testing.assert_allclose(c, s1 - s2, atol=1e-9)
    np.testing.assert_allclose(grad, g1 - g2, atol=1e-6 * np.abs(g1).max())


@pytest.mark.parametrize("variant", ["net", "split"])
def test_gradient_region_map_variants_split_the_contrast(model, case, variant):
    _, embedding, contrast = case
    evidence = _contrast_evidence(model, "gradient", {"variant": variant}, case)
    parts = np.asarray(evidence.extras["contributions"])
    total = float(contrast.score(model.metric, embedding.astype(np.float64)))
    assert parts.sum() == pytest.approx(total, abs=1e-9)
    signed = evidence.similarity.sum() - evidence.dissimilarity.sum()
    assert signed == pytest.approx(total, rel=1e-4)  # each region map sums to 1
    if variant == "split":
        assert evidence.similarity.sum() == pytest.approx(parts[parts > 0].sum(), rel=1e-4)


def test_integrated_gradient_contrast_adds_up_to_the_change_from_the_fill(model, case):
    pixels, embedding, contrast = case
    evidence = _contrast_evidence(model, "gradient", {"steps": 32, "samples": 1, "noise": 0.0}, case)
    path_sum = float(evidence.similarity.sum() - evidence.dissimilarity.sum())
    fill = np.broadcast_to(pixels.mean(axis=(0, 1)), pixels.shape).astype(np.float32)
    change = float(contrast.score(model.metric, embedding.astype(np.float64))
                   - contrast.score(model.metric, model.embed(fill)[0].astype(np.float64)))
    gap = evidence.extras["fill_path_gap"][0]
    assert gap == pytest.approx(change - path_sum, abs=1e-6)
    assert abs(gap) < 0.15 * abs(change)


def test_reconstruction_counterfactual_contrast_keeps_the_contribution_totals(model, case, default_decoder):
    evidence = _contrast_evidence(model, "reconstruction", {"decoder": default_decoder}, case)
    parts = np.asarray(evidence.extras["contributions"])
    assert evidence.similarity.shape == evidence.dissimilarity.shape == (1, 150, 150)
    assert evidence.similarity.sum() == pytest.approx(parts[parts > 0].sum(), rel=1e-6)
    assert evidence.dissimilarity.sum() == pytest.approx(-parts[parts < 0].sum(), rel=1e-6)
    assert evidence.extras["decoder_weights"] == default_decoder.spec.weights_digest()[:16]
    split = _contrast_evidence(model, "reconstruction", {"decoder": default_decoder, "variant": "split"}, case)
    assert split.similarity.sum() == pytest.approx(parts[parts > 0].sum(), rel=1e-4)
