"""The decoder's dimension-consistency loss: its gradient, and that it runs in training."""

from __future__ import annotations

import numpy as np

import fxplain
from fxplain.reconstruction.training import DecoderTraining, _dimension_moves, _identity_gradient
from fxplain.runtime import NetworkSpec


def _linear_model() -> fxplain.FaceModel:
    """A linear 8x8 'face model' (5-d): the losses are quadratic, so central differences are exact."""
    rng = np.random.default_rng(0)
    spec = NetworkSpec((3, 8, 8), np.full(3, 128.0, np.float32), np.full(3, 1 / 64, np.float32))
    spec.add("dense", 0, weight=rng.standard_normal((5, 3 * 8 * 8)).astype(np.float32) * 0.1,
             bias=np.zeros(5, np.float32))
    return fxplain.FaceModel(spec, name="linear", metric="cosine", threshold=0.5)


def test_identity_and_dimension_loss_gradient_matches_finite_differences():
    model = _linear_model()
    rng = np.random.default_rng(1)
    config = DecoderTraining(identity_weight=0.3, dimension_weight=0.7, dimension_pairs=2, batch_size=3)
    emb = rng.standard_normal((3, 5)).astype(np.float32)
    moves = _dimension_moves(config, 4, np.full(5, 0.5, np.float32))
    assert moves.shape == (2, 5) and np.all(np.count_nonzero(moves, axis=1) == 1)
    assert np.allclose(np.abs(moves).sum(axis=1), 0.5)
    emb = np.concatenate([emb, emb[:2] + moves])
    out = rng.uniform(-0.4, 0.4, (5, 3, 8, 8)).astype(np.float32)
    loss, grad = _identity_gradient(model, out, emb, config, moves)
    assert grad.shape == out.shape and loss > 0
    for index in [(0, 0, 1, 2), (1, 2, 7, 7), (3, 1, 4, 0), (4, 0, 0, 5), (2, 2, 3, 3)]:
        step = np.zeros_like(out)
        step[index] = 0.05
        up = _identity_gradient(model, out + step, emb, config, moves)[0]
        down = _identity_gradient(model, out - step, emb, config, moves)[0]
        np.testing.assert_allclose(grad[index], (up - down) / 0.1, rtol=2e-3, atol=1e-6)


def test_training_with_the_dimension_loss_runs_and_resumes(model, johns, tmp_path):
    images = johns[0][::11][:4]
    options = {"seed": 1, "batch_size": 8, "pool_size": 16, "refresh_every": 5, "widths": (16, 16, 8, 8),
               "dimension_weight": 0.1, "dimension_pairs": 4, "background": "random", "show_progress": False}
    full = fxplain.train_decoder(model, images, steps=6, **options)
    assert all(np.isfinite(full.info["history"]["identity"]))
    checkpoint = tmp_path / "run.npz"
    fxplain.train_decoder(model, images, steps=3, checkpoint=checkpoint, checkpoint_every=3, **options)
    resumed = fxplain.train_decoder(model, images, steps=6, checkpoint=checkpoint, **options)
    assert resumed.info["history"] == full.info["history"]
