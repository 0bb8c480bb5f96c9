"""Gradients through the C core: backward of every layer against the NumPy twin,
the twin against finite differences, the dlib model, dimension maps and the
margin decomposition."""

from __future__ import annotations

import numpy as np
import pytest

import fxplain
from fxplain.methods import decomposition
from fxplain.runtime import reference as _reference
from fxplain.runtime.core_net import build_core_net
from fxplain.runtime.spec import NetworkSpec


def _spec(rng, c=3, h=9, w=10) -> NetworkSpec:
    return NetworkSpec((c, h, w), rng.uniform(0, 255, c).astype(np.float32),
                       rng.uniform(0.5, 2, c).astype(np.float32) / 128)


def _conv(rng, spec, src, out_c, k, stride=1, pad=0):
    in_c = spec.shapes()[src][0]
    weight = (rng.standard_normal((out_c, in_c, k, k)) / np.sqrt(in_c * k * k)).astype(np.float32)
    return spec.add("conv", src, weight=weight, bias=rng.standard_normal(out_c).astype(np.float32),
                    stride=(stride, stride), padding=(pad, pad))


def _networks():
    """Small networks that exercise each layer's backward (and the folded/fused paths)."""
    def conv_relu(rng):
        s = _spec(rng)
        _conv(rng, s, 0, 8, 3, 2, 1)
        s.add("relu", s.output)
        return s

    def folded_affine_prelu_pools(rng):
        s = _spec(rng, h=12, w=12)
        x = _conv(rng, s, 0, 8, 3, 1, 1)
        x = s.add("scale_shift", x, scale=rng.uniform(0.5, 2, 8).astype(np.float32),
                  shift=rng.standard_normal(8).astype(np.float32))
        x = s.add("prelu", x, slope=rng.uniform(0, 0.5, 8).astype(np.float32))
        x = s.add("max_pool", x, kernel=(3, 3), stride=(2, 2), padding=(1, 1))
        x = s.add("avg_pool", x, kernel=(2, 2), stride=(1, 1), padding=(0, 0))
        s.add("scale_shift", x, scale=rng.uniform(-1, 1, 8).astype(np.float32), shift=np.zeros(8, np.float32))
        return s

    def residual_blocks(rng):
        s = _spec(rng, h=8, w=8)
        x = s.add("relu", _conv(rng, s, 0, 8, 3, 1, 1))
        y = _conv(rng, s, s.add("relu", _conv(rng, s, x, 8, 3, 1, 1)), 8, 3, 1, 1)
        x = s.add("relu", s.add("sum", (y, x)))                      # identity block
        branch = _conv(rng, s, x, 16, 3, 2, 0)                       # 8 -> 3
        short = s.add("avg_pool", x, kernel=(2, 2), stride=(2, 2), padding=(0, 0))  # 8 -> 4, 8 channels
        x = s.add("relu", s.add("sum", (branch, short)))             # dlib's padded sum
        x = s.add("global_avg_pool", x)
        s.add("dense", x, weight=rng.standard_normal((5, 16)).astype(np.float32), bias=None)
        return s

    def dense_on_spatial(rng):
        s = _spec(rng, h=5, w=6)
        x = _conv(rng, s, 0, 4, 3, 1, 1)
        s.add("dense", x, weight=rng.standard_normal((7, 4 * 5 * 6)).astype(np.float32),
              bias=rng.standard_normal(7).astype(np.float32))
        return s

    def decoder_upsampling(rng):
        """A decoder's layers: dense -> reshape -> nearest x2 -> conv -> relu -> bilinear to an odd size."""
        s = NetworkSpec((6, 1, 1), np.zeros(6, np.float32), np.full(6, 1 / 64, np.float32))
        x = s.add("dense", 0, weight=rng.standard_normal((4 * 3 * 3, 6)).astype(np.float32),
                  bias=rng.standard_normal(36).astype(np.float32))
        x = s.add("reshape", x, shape=(4, 3, 3))
        x = s.add("resize", x, size=(6, 6), mode="nearest")
        x = s.add("relu", _conv(rng, s, x, 9, 3, 1, 1))
        x = s.add("resize", x, size=(11, 13), mode="bilinear")   # 9 channels: the channels-last path
        s.add("resize", _conv(rng, s, x, 3, 3, 1, 1), size=(7, 5), mode="bilinear")  # 3: the planar path
        return s

    return {f.__name__: f for f in (conv_relu, folded_affine_prelu_pools, residual_blocks, dense_on_spatial,
                                    decoder_upsampling)}


NETWORKS = _networks()


@pytest.mark.parametrize("name", sorted(NETWORKS))
@pytest.mark.parametrize("batch", [1, 3])
def test_backward_matches_numpy_twin(name, batch):
    rng = np.random.default_rng(len(name) + batch)
    spec = NETWORKS[name](rng)
    c, h, w = spec.input_shape
    pixels = rng.uniform(0, 255, (batch, h, w, c)).astype(np.float32)
    out_shape = spec.shapes()[spec.output]
    grad_out = rng.standard_normal((batch,) + out_shape).astype(np.float32)
    out, grad = build_core_net(spec).input_gradient(pixels, grad_out)
    np.testing.assert_allclose(out, _reference.forward(spec, pixels), atol=1e-4)
    want = _reference.input_gradient(spec, pixels, grad_out)
    assert grad.shape == pixels.shape
    np.testing.assert_allclose(grad, want, rtol=0, atol=1e-4 * np.abs(want).max())


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_numpy_twin_matches_finite_differences(name):
    rng = np.random.default_rng(7)
    spec = NETWORKS[name](rng)
    c, h, w = spec.input_shape
    pixels = rng.uniform(0, 255, (1, h, w, c))
    grad_out = rng.standard_normal((1,) + spec.shapes()[spec.output])
    grad = _reference.input_gradient(spec, pixels, grad_out)
    direction = rng.standard_normal(pixels.shape)
    eps = 1e-4

    def objective(x):
        return float(np.sum(_reference.forward(spec, x) * grad_out))

    numeric = (objective(pixels + eps * direction) - objective(pixels - eps * direction)) / (2 * eps)
    assert numeric == pytest.approx(float(np.sum(grad * direction)), rel=1e-5, abs=1e-8)


def test_dlib_input_gradient_matches_twin(model, johns):
    images = johns[0][:3]
    grad_out = np.random.default_rng(0).standard_normal((3, 128)).astype(np.float32)
    grad = model.input_gradient(images, grad_out, batch_size=2)
    want = _reference.input_gradient(model.spec, images, grad_out[:, :, None, None])
    assert grad.shape == (3, 150, 150, 3) and grad.dtype == np.float32
    assert np.abs(grad - want).max() <= 1e-4 * np.abs(want).max()


def test_dimension_maps(model, johns):
    image = johns[0][5]
    maps = model.dimension_maps(image)
    assert maps.shape == (128, 150, 150) and maps.min() >= 0
    np.testing.assert_allclose(maps.sum(axis=(1, 2)), 1.0, rtol=1e-4)
    for k in (0, 77):  # equals a single-dimension backward pass
        unit = np.zeros(128, np.float32)
        unit[k] = 1
        single = np.abs(model.input_gradient(image, unit)[0]).sum(axis=-1)
        np.testing.assert_allclose(maps[k], single / single.sum(), atol=1e-6)


def test_one_forward_shared_by_many_backward_passes(model, johns):
    image = johns[0][3:4].astype(np.float32)
    grad_out = np.random.default_rng(1).standard_normal((5, 128, 1, 1)).astype(np.float32)
    out, shared = model._net.input_gradient_shared(image, grad_out)
    _, batched = model._net.input_gradient(np.repeat(image, 5, axis=0), grad_out)
    np.testing.assert_allclose(out[:, :, 0, 0], model.embed(image), atol=1e-6)
    np.testing.assert_allclose(shared, batched, rtol=0, atol=1e-6 * np.abs(batched).max())
    with pytest.raises(fxplain.InvalidInputError, match="axis 0"):
        model._net.input_gradient_shared(np.repeat(image, 2, axis=0), grad_out)


def test_margin_decomposition_sums_to_score_minus_threshold(model, johns_embeddings):
    for i, j in ((0, 1), (0, 40), (7, 8)):
        a, b = johns_embeddings[i], johns_embeddings[j]
        c = decomposition.margin_contributions(model, a, b)
        assert c.shape == (128,)
        assert c.sum() == pytest.approx(model.score(a, b) - model.threshold, abs=1e-12)
    cosine = fxplain.wrap(lambda x: model.embed(x), input_size=(150, 150), threshold=0.8, metric="cosine")
    a, b = johns_embeddings[0], johns_embeddings[40]
    c = decomposition.margin_contributions(cosine, a, b)
    assert c.sum() == pytest.approx(cosine.score(a, b) - 0.8, abs=1e-12)


def test_combiner_and_gradient_method(model, johns):
    images = johns[0]
    r = fxplain.Explainer(model, method="gradient", variant="net").explain(images[0], images[30])
    assert not r.match and r.similarity.shape == (2, 150, 150)
    assert r.contributions.shape == (128,)
    assert r.contributions.sum() == pytest.approx(r.margin, abs=1e-9)
    # the combined map distributes the margin over the pixels
    np.testing.assert_allclose(r.evidence.sum(axis=(1, 2)), r.margin, rtol=1e-4)
    maps = np.ones((3, 2, 2)) / 4
    np.testing.assert_allclose(decomposition.combine([1.0, -2.0, 0.5], maps), np.full((2, 2), -0.125))
    with pytest.raises(fxplain.InvalidInputError, match="non-negative"):
        decomposition.combine([1.0], -np.ones((1, 2, 2)))
    with pytest.raises(fxplain.InvalidInputError, match="need contributions"):
        decomposition.combine([1.0, 2.0], np.ones((3, 2, 2)))


def test_split_variant_keeps_for_and_against_apart(model, johns):
    images = johns[0]
    net = fxplain.Explainer(model, method="gradient", variant="net").explain(images[0], images[1])
    split = fxplain.Explainer(model, method="gradient", variant="split").explain(images[0], images[1])
    np.testing.assert_allclose(split.evidence, net.evidence, atol=1e-7)  # same signed map ...
    assert np.any((split.similarity > 0) & (split.dissimilarity > 0))   # ... but both sides kept
    with pytest.raises(fxplain.InvalidInputError, match="variant"):
        fxplain.Explainer(model, method="gradient", variant="both")


def test_gradient_bad_input(model, johns):
    image = johns[0][0]
    with pytest.raises(fxplain.InvalidInputError, match="grad_output must have shape"):
        model.input_gradient(image, np.ones(127))
    with pytest.raises(fxplain.InvalidInputError, match="NaN"):
        model.input_gradient(image, np.full(128, np.nan))
    with pytest.raises(fxplain.InvalidInputError, match="one image"):
        model.dimension_maps(johns[0][:2])
    wrapped = fxplain.wrap(lambda x: model.embed(x), input_size=(150, 150), threshold=-0.36,
                           metric="squared_euclidean")
    with pytest.raises(fxplain.InvalidInputError, match="needs a model running on fxplain's core"):
        fxplain.Explainer(wrapped, method="gradient").explain(image, johns[0][1])


# ---- variant "integrated": integrated gradients of the pair score from the partner and the fill -----


def _embedding_gradient_by_finite_differences(metric, emb, ref, h=1e-6):
    from fxplain.models import score_and_embedding_gradient

    grad = np.empty_like(emb)
    for k in range(emb.shape[1]):
        step = np.zeros_like(emb)
        step[:, k] = h
        grad[:, k] = (score_and_embedding_gradient(metric, emb + step, ref)[0]
                      - score_and_embedding_gradient(metric, emb - step, ref)[0]) / (2 * h)
    return grad


@pytest.mark.parametrize("metric", ["squared_euclidean", "cosine"])
def test_score_gradient_chains_the_embedding_derivative_through_the_core(model, johns, johns_embeddings, metric):
    from fxplain.models import FaceModel, score_and_embedding_gradient

    face_model = model if metric == "squared_euclidean" else FaceModel(model.spec, name="dlib-cosine",
                                                                       metric="cosine", threshold=0.8)
    images, ref = johns[0][:3], johns_embeddings[20].astype(np.float64)
    emb = johns_embeddings[:3].astype(np.float64)
    scores, grads = face_model.score_gradient(images, ref, batch_size=2)
    np.testing.assert_allclose(scores, face_model.score(johns_embeddings[:3], ref), rtol=1e-5)
    # the embedding-space derivative against central differences
    _, d_emb = score_and_embedding_gradient(metric, emb, ref)
    np.testing.assert_allclose(d_emb, _embedding_gradient_by_finite_differences(metric, emb, ref), atol=1e-6)
    # ... and the pixel gradient against the other route: input_gradient with that derivative
    expected = face_model.input_gradient(images, d_emb)
    np.testing.assert_allclose(grads, expected, atol=1e-5 * np.abs(expected).max())
    with pytest.raises(fxplain.InvalidInputError, match="reference must be one embedding"):
        face_model.score_gradient(images, johns_embeddings[:2])


def _integrated(model, pair, **params):
    return fxplain.Explainer(model, method="gradient", variant="integrated", **params).explain(*pair)


def test_integrated_variant_paths_are_complete(model, johns):
    """Without noise each path integral is its score change up to the quadrature error:
    s(A, B) − s(B, B) from the partner, s(A, B) − s(fill, B) from the fill image."""
    images = johns[0]
    for pair in ((images[0], images[1]), (images[0], images[30])):
        r = _integrated(model, pair, noise=0.0, samples=1, steps=64)
        fills = np.stack([np.broadcast_to(img.reshape(-1, 3).mean(axis=0), img.shape) for img in pair])
        emb = model.embed(np.stack(pair))
        fill_change = r.score - model.score(model.embed(fills), emb[::-1])
        # s(B, B) = 0 for dlib's score, so the partner path carries the whole score
        assert np.abs(r.extras["path_gap"]).max() <= 0.02 * abs(r.score)
        # the path from a uniform image is steep near its start: 6 % at 64 nodes (t = u², measured)
        assert np.all(np.abs(r.extras["fill_path_gap"]) <= 0.1 * np.abs(fill_change))
        assert r.contributions.sum() == pytest.approx(r.margin, abs=1e-9)
        assert np.all(r.similarity >= 0) and np.all(r.dissimilarity >= 0)
    smooth = _integrated(model, (images[0], images[30]))
    assert smooth.extras["path_gap"] != r.extras["path_gap"]


def test_integrated_variant_matches_a_midpoint_sum_of_input_gradients(model, johns):
    """An independent route: embed each path point, then model.input_gradient with dS/df."""
    a, b = johns[0][2].astype(np.float64), johns[0][5].astype(np.float64)
    steps = 4
    r = _integrated(model, (a, b), noise=0.0, samples=1, steps=steps)
    emb_b = model.embed(b)[0].astype(np.float64)

    def path_map(start, power):
        u = (np.arange(steps) + 0.5) / steps   # t = u^power, dt = power u^(power-1) du
        points = np.stack([start + t * (a - start) for t in u ** power])
        d_emb = -2.0 * (model.embed(points).astype(np.float64) - emb_b)
        grads = model.input_gradient(points, d_emb).astype(np.float64)
        mean_grad = np.tensordot(power * u ** (power - 1) / steps, grads, axes=1)
        return np.sum(mean_grad * (a - start), axis=-1)

    from_partner = path_map(b, 1)
    signed = from_partner + (r.margin - from_partner.sum()) / from_partner.size
    np.testing.assert_allclose(r.dissimilarity[0], np.maximum(-signed, 0), atol=1e-4 * np.abs(signed).max())
    from_fill = path_map(np.broadcast_to(a.reshape(-1, 3).mean(axis=0), a.shape).astype(np.float32), 2)
    np.testing.assert_allclose(r.similarity[0], np.maximum(from_fill, 0), atol=1e-4 * np.abs(from_fill).max())


def test_integrated_variant_is_seeded(model, johns):
    pair = (johns[0][0], johns[0][1])
    first = _integrated(model, pair, seed=3, steps=2, samples=2)
    np.testing.assert_array_equal(first.evidence, _integrated(model, pair, seed=3, steps=2, samples=2).evidence)
    assert not np.array_equal(first.evidence, _integrated(model, pair, seed=4, steps=2, samples=2).evidence)
    # without noise the seed plays no part; the batch size never does
    quiet = _integrated(model, pair, seed=3, steps=3, samples=1, noise=0.0)
    np.testing.assert_array_equal(quiet.evidence, _integrated(model, pair, seed=4, steps=3, samples=1, noise=0).evidence)
    batched = _integrated(model, pair, seed=3, steps=2, samples=2, batch_size=3)
    np.testing.assert_allclose(batched.evidence, first.evidence, atol=1e-6 * np.abs(first.evidence).max())


def test_integrated_variant_bad_parameters(model, johns, default_decoder):
    for bad in ({"steps": 0}, {"samples": -1}, {"steps": 2.5}, {"noise": float("nan")}, {"noise": -1.0},
                {"noise": True}, {"fill": "plaid"}):
        with pytest.raises(fxplain.InvalidInputError, match=next(iter(bad))):
            fxplain.Explainer(model, method="gradient", variant="integrated", **bad)
    with pytest.raises(fxplain.InvalidInputError, match="variant must be one of 'counterfactual', 'net', 'split'"):
        fxplain.Explainer(model, method="reconstruction", variant="integrated", decoder=default_decoder)
    wrapped = fxplain.wrap(lambda x: model.embed(x), input_size=(150, 150), threshold=-0.36,
                           metric="squared_euclidean")
    with pytest.raises(fxplain.InvalidInputError, match="needs a model running on fxplain's core"):
        _integrated(wrapped, (johns[0][0], johns[0][1]), steps=1, samples=1)
