"""precision= of occlusion and CorrRISE: validation, FP32 unchanged, int8 maps close to FP32 (johns, dlib)."""

from __future__ import annotations

import numpy as np
import pytest

import fxplain
from fxplain.evaluation.metrics import spearman


@pytest.mark.parametrize("method", ["occlusion", "corrrise"])
def test_precision_is_validated_and_fp32_leaves_parameters_as_they_were(model, method):
    for bad in ("fp16", "INT8", 8, None):
        with pytest.raises(fxplain.InvalidInputError, match="precision must be one of 'fp32', 'bf16', 'int8'"):
            fxplain.Explainer(model, method=method, precision=bad)
    assert "precision" not in fxplain.Explainer(model, method=method).method.params
    assert "precision" not in fxplain.Explainer(model, method=method, precision="fp32").method.params
    assert fxplain.Explainer(model, method=method, precision="int8").method.params["precision"] == "int8"


def test_low_precision_needs_a_core_model_and_calibration(model, johns):
    black_box = fxplain.wrap(lambda x: model.embed(x), input_size=(150, 150), threshold=-0.36,
                             metric="squared_euclidean")
    ex = fxplain.Explainer(black_box, method="occlusion", patch_sizes=50, precision="int8")
    with pytest.raises(fxplain.InvalidInputError, match="black box"):
        ex.explain(johns[0][0], johns[0][1])
    with pytest.raises(fxplain.InvalidInputError, match="calibration"):
        model.low_precision("int8")
    with pytest.raises(fxplain.InvalidInputError, match="calibration must be float32"):
        model.low_precision("int8", np.zeros((2, 150, 150, 3), np.uint8))
    with pytest.raises(fxplain.InvalidInputError, match="precision must be"):
        model.low_precision("fp8")


def test_bf16_is_refused_clearly_where_onednn_has_no_kernel(model, johns):
    try:
        view = model.low_precision("bf16")
    except fxplain.CoreError as exc:  # oneDNN 3.2 on an AVX2-only CPU: no bf16 convolution at all
        assert "not available on this CPU" in str(exc) and "int8" in str(exc)
        return
    chips = np.asarray(johns[0][:4], np.float32)
    got, want = view.embed_pixels(chips), model.embed_pixels(chips)
    assert np.abs(got - want).max() < 0.02


@pytest.mark.parametrize("method,params", [("occlusion", {"patch_sizes": 50}),
                                           ("corrrise", {"n_masks": 64})])
def test_int8_maps_rank_correlate_with_fp32(model, johns, method, params):
    """One genuine johns pair: int8 perturbation passes give maps of rank correlation > 0.98 with FP32."""
    a, b = johns[0][0], johns[0][1]
    fp32 = fxplain.Explainer(model, method=method, seed=3, **params).explain(a, b)
    int8 = fxplain.Explainer(model, method=method, seed=3, precision="int8", **params).explain(a, b)
    assert int8.score == fp32.score and int8.match == fp32.match  # the intact pair is FP32
    for side in (0, 1):
        rho = spearman(fp32.similarity[side] - fp32.dissimilarity[side],
                       int8.similarity[side] - int8.dissimilarity[side])
        assert rho > 0.98, (side, rho)


def test_int8_views_of_different_pairs_interleave_like_serial_runs(model, johns):
    """Each view recalibrates the shared int8 net when another view calibrated in between."""
    chips = np.asarray(johns[0][:6], np.float32)
    first, second = model.low_precision("int8", chips[:2]), model.low_precision("int8", chips[2:4] * 0.5)
    batch = np.ascontiguousarray(chips[4:])
    alone = first.embed_pixels(batch)
    second.embed_pixels(batch)
    np.testing.assert_array_equal(first.embed_pixels(batch), alone)
