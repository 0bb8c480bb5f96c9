"""The int8 mode of the core (csrc/net_int8.c): weight quantisation and int8 convolutions against NumPy twins."""

from __future__ import annotations

import numpy as np
import pytest

import fxplain
from fxplain import _core
from fxplain.runtime.core_net import build_core_net
from fxplain.runtime.spec import NetworkSpec


def _quantize_twin(w: np.ndarray, levels: int) -> tuple[np.ndarray, np.ndarray]:
    m = np.abs(w).max(axis=1)
    scales = np.where(m > 0, m / np.float32(levels), np.float32(1)).astype(np.float32)
    q = np.clip(np.rint(w / scales[:, None]), -levels, levels).astype(np.int8)
    return q, scales


@pytest.mark.parametrize("rows,per_row,levels", [(1, 1, 127), (8, 27, 127), (32, 288, 63), (5, 9, 1)])
def test_quantize_per_channel_matches_numpy(rows, per_row, levels):
    rng = np.random.default_rng(rows * per_row + levels)
    w = (rng.standard_normal((rows, per_row)) * rng.uniform(0.01, 3, (rows, 1))).astype(np.float32)
    w[0, :] = 0 if rows > 1 else w[0, :]  # an all-zero row keeps scale 1 and zeros
    before = w.copy()
    q, scales = _core.quantize_per_channel(w, levels)
    want_q, want_scales = _quantize_twin(w, levels)
    np.testing.assert_array_equal(w, before)
    np.testing.assert_array_equal(scales, want_scales)
    assert q.dtype == np.int8 and np.abs(q.astype(int)).max() <= levels
    # float division in C and NumPy may round a value sitting on .5 either way
    assert np.abs(q.astype(int) - want_q.astype(int)).max() <= 1
    assert np.mean(q == want_q) > 0.999
    # dequantised weights are within half a step of the originals
    assert np.all(np.abs(q * scales[:, None] - w) <= 0.5 * scales[:, None] * (1 + 1e-5))


def test_quantize_per_channel_rejects_bad_input():
    w = np.ones((2, 3), np.float32)
    for levels in (0, 128):
        with pytest.raises(fxplain.InvalidInputError, match="levels"):
            _core.quantize_per_channel(w, levels)
    bad = w.copy()
    bad[1, 2] = np.nan
    with pytest.raises(fxplain.InvalidInputError, match="non-finite weight in row 1"):
        _core.quantize_per_channel(bad, 127)
    with pytest.raises(fxplain.InvalidInputError, match="dtype"):
        _core.quantize_per_channel(w.astype(np.float64), 127)
    with pytest.raises(fxplain.InvalidInputError, match="dimensions"):
        _core.quantize_per_channel(w.ravel(), 127)


def _one_conv_net(mean: float, rng) -> tuple[NetworkSpec, np.ndarray, np.ndarray]:
    c, o = 16, 8
    spec = NetworkSpec((c, 9, 10), np.full(c, mean, np.float32), np.full(c, 1 / 64, np.float32))
    weight = (rng.standard_normal((o, c, 3, 3)) / 12).astype(np.float32)
    bias = rng.standard_normal(o).astype(np.float32)
    spec.add("conv", 0, weight=weight, bias=bias, stride=(1, 1), padding=(1, 1))
    spec.add("relu", 1)
    return spec, weight, bias


def _int8_twin(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, signed: bool, levels: int,
               halved: bool) -> np.ndarray:
    """NCHW output of the int8 convolution: quantised input and weights, exact integer sums, dequantised.

    ``halved``: oneDNN's s8-input kernels without VNNI shift the input to u8 and use round(q / 2) * 2
    as the weights (so the 16-bit pair sums cannot saturate).
    """
    s = np.abs(x).max() / (127 if signed else 255)
    xq = np.clip(np.rint(x / np.float32(s)), -128 if signed else 0, 127 if signed else 255)
    q, ws = _quantize_twin(weight.reshape(len(weight), -1), levels)
    q = q.reshape(weight.shape).astype(np.float64)
    if halved:
        q = np.rint(q * 0.5) * 2
    n, h, w, _ = x.shape
    padded = np.pad(xq, ((0, 0), (1, 1), (1, 1), (0, 0)))
    acc = np.zeros((n, len(weight), h, w))
    for i in range(3):
        for j in range(3):
            acc += np.einsum("nhwc,oc->nohw", padded[:, i:i + h, j:j + w, :], q[:, :, i, j])
    return np.maximum(acc * (s * ws.astype(np.float64))[None, :, None, None] + bias[None, :, None, None], 0)


@pytest.mark.parametrize("mean", [0.0, 128.0])  # inputs >= 0 (u8) or of both signs (s8)
def test_int8_convolution_matches_numpy_twin(mean):
    rng = np.random.default_rng(int(mean) + 5)
    spec, weight, bias = _one_conv_net(mean, rng)
    pixels = rng.uniform(0, 255, (3, 9, 10, 16)).astype(np.float32)
    net = build_core_net(spec)
    fp32 = net.forward(pixels)
    net.set_math_mode("int8")
    with pytest.raises(fxplain.InvalidInputError, match="calibrate"):
        net.forward(pixels)
    net.calibrate_int8(pixels)
    got = net.forward(pixels)
    x = (pixels.astype(np.float64) - mean) / 64
    signed = mean > 0
    # without VNNI the u8 x s8 kernels add product pairs in 16 bits: u8-input weights use 63 levels there
    isa = _core.backend_info()["isa"]
    vnni = "vnni" in isa or "amx" in isa or "bf16" in isa
    levels = 127 if signed or vnni else 63
    want = _int8_twin(x, weight, bias, signed, levels, signed and not vnni)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-4 * np.abs(want).max())
    # and the quantisation error itself is small against FP32
    assert np.abs(got - fp32).max() < 0.03 * np.abs(fp32).max()


def test_int8_calibration_rejects_bad_input():
    spec, _, _ = _one_conv_net(0.0, np.random.default_rng(0))
    net = build_core_net(spec)
    net.set_math_mode("int8")
    with pytest.raises(fxplain.InvalidInputError, match="pixels"):
        net.calibrate_int8(np.zeros((1, 9, 10, 3), np.float32))
    with pytest.raises(fxplain.InvalidInputError, match="at least one image"):
        net.calibrate_int8(np.zeros((0, 9, 10, 16), np.float32))
    with pytest.raises(fxplain.InvalidInputError, match="math mode"):
        net.set_math_mode("int4")


def test_int8_dlib_embeddings_are_close_to_fp32(model, johns):
    """Calibrated on two chips, the int8 network embeds 16 other johns chips with cosine > 0.99 to FP32."""
    chips = np.asarray(johns[0][:18], np.float32)
    view = model.low_precision("int8", chips[:2])
    got = view.embed_pixels(np.ascontiguousarray(chips[2:]), batch_size=8)
    want = model.embed_pixels(np.ascontiguousarray(chips[2:]))
    cosine = np.sum(got * want, 1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)
    assert cosine.min() > 0.99
    # the view is the model for everything but embed_pixels
    assert view.metric == model.metric and view.threshold == model.threshold
    assert model.low_precision("fp32") is model
