"""Every layer of the C core against its NumPy twin (fxplain.runtime.reference).

Each case builds a tiny network in a NetworkSpec, runs it on the oneDNN core
and on the float64 reference, and compares. Cases cover the fused paths
(scale/shift folded into a convolution, activation and residual sum as
post-ops) and the standalone ones (the same layers where fusion is not
possible), over shapes, strides and paddings.
"""

from __future__ import annotations

import numpy as np
import pytest

import fxplain
from fxplain import _core
from fxplain.runtime import reference as _reference
from fxplain.runtime.core_net import build_core_net
from fxplain.runtime.spec import NetworkSpec


def _spec(c: int, h: int, w: int, rng) -> NetworkSpec:
    mean = rng.uniform(0, 255, c).astype(np.float32)
    scale = rng.uniform(0.5, 2.0, c).astype(np.float32) / 128
    return NetworkSpec((c, h, w), mean, scale)


def _conv_params(rng, out_c: int, in_c: int, k: int, bias: bool = True) -> dict:
    weight = rng.standard_normal((out_c, in_c, k, k)).astype(np.float32) / np.sqrt(in_c * k * k)
    return {"weight": weight, "bias": rng.standard_normal(out_c).astype(np.float32) if bias else None}


def _check(spec: NetworkSpec, batch: int, rng, tol: float = 2e-5) -> None:
    c, h, w = spec.input_shape
    pixels = rng.uniform(0, 255, (batch, h, w, c)).astype(np.float32)
    before = pixels.copy()
    got = build_core_net(spec).forward(pixels)
    want = _reference.forward(spec, pixels)
    assert got.shape == want.shape
    assert got.dtype == np.float32
    np.testing.assert_array_equal(pixels, before)  # the core never writes its input
    scale = max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(got, want, rtol=0, atol=tol * scale)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize(
    "in_c,out_c,size,k,stride,pad",
    [(3, 8, 12, 3, 1, 1), (3, 32, 20, 7, 2, 0), (5, 17, 9, 3, 2, 0), (16, 16, 8, 1, 1, 0),
     (8, 24, 11, 5, 3, 2), (32, 64, 7, 3, 1, 1), (4, 4, 6, 6, 1, 0)],
)
def test_conv(batch, in_c, out_c, size, k, stride, pad):
    rng = np.random.default_rng(in_c * 100 + out_c + k)
    spec = _spec(in_c, size, size + 1, rng)
    spec.add("conv", 0, **_conv_params(rng, out_c, in_c, k), stride=(stride, stride), padding=(pad, pad))
    _check(spec, batch, rng)


def test_conv_without_bias_and_rectangular_window():
    rng = np.random.default_rng(1)
    spec = _spec(3, 10, 13, rng)
    weight = rng.standard_normal((6, 3, 3, 5)).astype(np.float32)
    spec.add("conv", 0, weight=weight, bias=None, stride=(1, 2), padding=(1, 2))
    _check(spec, 2, rng)


@pytest.mark.parametrize("fused", [True, False])
def test_scale_shift(fused):
    """Folded into the preceding convolution, or standalone after a pooling."""
    rng = np.random.default_rng(2)
    spec = _spec(3, 10, 10, rng)
    node = spec.add("conv", 0, **_conv_params(rng, 16, 3, 3), stride=(1, 1), padding=(1, 1))
    if not fused:
        node = spec.add("max_pool", node, kernel=(2, 2), stride=(2, 2), padding=(0, 0))
    spec.add("scale_shift", node, scale=rng.uniform(-2, 2, 16).astype(np.float32),
             shift=rng.standard_normal(16).astype(np.float32))
    _check(spec, 2, rng)


@pytest.mark.parametrize("kind", ["relu", "prelu"])
@pytest.mark.parametrize("fused", [True, False])
def test_activations(kind, fused):
    rng = np.random.default_rng(3)
    spec = _spec(3, 9, 9, rng)
    node = spec.add("conv", 0, **_conv_params(rng, 8, 3, 3), stride=(1, 1), padding=(1, 1))
    if not fused:
        node = spec.add("avg_pool", node, kernel=(3, 3), stride=(1, 1), padding=(1, 1))
    params = {"slope": rng.uniform(0, 0.5, 8).astype(np.float32)} if kind == "prelu" else {}
    spec.add(kind, node, **params)
    _check(spec, 3, rng)


@pytest.mark.parametrize("kind", ["max_pool", "avg_pool"])
@pytest.mark.parametrize("k,stride,pad,size", [(3, 2, 0, 15), (2, 2, 0, 9), (3, 1, 1, 8), (5, 3, 2, 11),
                                               (3, 2, 1, 10)])
def test_pooling(kind, k, stride, pad, size):
    rng = np.random.default_rng(k * 10 + stride)
    spec = _spec(3, size, size, rng)
    node = spec.add("conv", 0, **_conv_params(rng, 16, 3, 1), stride=(1, 1), padding=(0, 0))
    spec.add(kind, node, kernel=(k, k), stride=(stride, stride), padding=(pad, pad))
    _check(spec, 2, rng)


def test_global_avg_pool():
    rng = np.random.default_rng(4)
    spec = _spec(3, 7, 9, rng)
    node = spec.add("conv", 0, **_conv_params(rng, 24, 3, 3), stride=(1, 1), padding=(0, 0))
    spec.add("global_avg_pool", node)
    _check(spec, 4, rng)


def test_residual_sum_fused_into_convolution():
    """conv -> scale/shift -> (+ block input) -> relu runs as one primitive."""
    rng = np.random.default_rng(5)
    spec = _spec(3, 12, 12, rng)
    x = spec.add("relu", spec.add("conv", 0, **_conv_params(rng, 16, 3, 3), stride=(1, 1), padding=(1, 1)))
    y = spec.add("conv", x, **_conv_params(rng, 16, 16, 3), stride=(1, 1), padding=(1, 1))
    y = spec.add("scale_shift", y, scale=rng.uniform(0.5, 1.5, 16).astype(np.float32),
                 shift=rng.standard_normal(16).astype(np.float32))
    spec.add("relu", spec.add("sum", (y, x)))
    _check(spec, 2, rng)
    # conv+relu, conv+affine+sum+relu, output reorder: three primitives
    assert build_core_net(spec).step_count(2) == 3


def test_sum_of_two_pooled_tensors_standalone():
    rng = np.random.default_rng(6)
    spec = _spec(3, 8, 8, rng)
    x = spec.add("conv", 0, **_conv_params(rng, 8, 3, 3), stride=(1, 1), padding=(1, 1))
    a = spec.add("max_pool", x, kernel=(2, 2), stride=(2, 2), padding=(0, 0))
    b = spec.add("avg_pool", x, kernel=(2, 2), stride=(2, 2), padding=(0, 0))
    spec.add("sum", (a, b))
    _check(spec, 2, rng)


@pytest.mark.parametrize("branch_stride,short_c", [(2, 8), (2, 16)])
def test_zero_padded_sum(branch_stride, short_c):
    """dlib's down-sampling block: shapes differ in channels and (8 -> 3 vs 4) rows/columns."""
    rng = np.random.default_rng(7)
    spec = _spec(3, 8, 8, rng)
    x = spec.add("conv", 0, **_conv_params(rng, short_c, 3, 1), stride=(1, 1), padding=(0, 0))
    branch = spec.add("conv", x, **_conv_params(rng, 16, short_c, 3), stride=(branch_stride,) * 2,
                      padding=(0, 0))
    shortcut = spec.add("avg_pool", x, kernel=(2, 2), stride=(2, 2), padding=(0, 0))
    assert spec.shapes()[branch] == (16, 3, 3) and spec.shapes()[shortcut] == (short_c, 4, 4)
    spec.add("relu", spec.add("sum", (branch, shortcut)))
    _check(spec, 3, rng)


@pytest.mark.parametrize("bias", [True, False])
def test_dense_on_spatial_input_flattens_chw(bias):
    rng = np.random.default_rng(8)
    spec = _spec(3, 5, 6, rng)
    x = spec.add("conv", 0, **_conv_params(rng, 4, 3, 3), stride=(1, 1), padding=(1, 1))
    weight = rng.standard_normal((10, 4 * 5 * 6)).astype(np.float32) / 10
    spec.add("dense", x, weight=weight, bias=rng.standard_normal(10).astype(np.float32) if bias else None)
    _check(spec, 3, rng)


def test_dense_chain_with_folded_scale_shift_and_prelu():
    rng = np.random.default_rng(9)
    spec = _spec(3, 4, 4, rng)
    x = spec.add("global_avg_pool", spec.add("conv", 0, **_conv_params(rng, 12, 3, 3), stride=(1, 1),
                                             padding=(1, 1)))
    x = spec.add("dense", x, weight=rng.standard_normal((7, 12)).astype(np.float32), bias=None)
    x = spec.add("scale_shift", x, scale=rng.uniform(0.5, 2, 7).astype(np.float32),
                 shift=rng.standard_normal(7).astype(np.float32))
    x = spec.add("prelu", x, slope=np.full(7, 0.25, np.float32))
    x = spec.add("dense", x, weight=rng.standard_normal((5, 7)).astype(np.float32),
                 bias=rng.standard_normal(5).astype(np.float32))
    spec.add("relu", spec.add("scale_shift", spec.add("sum", (x, x)), scale=np.ones(5, np.float32),
                              shift=np.full(5, -1.0, np.float32)))
    _check(spec, 3, rng)


@pytest.mark.parametrize("batch", [1, 2, 5])
def test_plan_cache_gives_same_results_across_batch_sizes(batch):
    """Plans are cached per batch size (LRU of 4); revisiting a size reuses or rebuilds one."""
    rng = np.random.default_rng(10)
    spec = _spec(3, 8, 8, rng)
    spec.add("conv", 0, **_conv_params(rng, 8, 3, 3), stride=(1, 1), padding=(1, 1))
    net = build_core_net(spec)
    pixels = rng.uniform(0, 255, (6, 8, 8, 3)).astype(np.float32)
    full = net.forward(pixels)
    for size in (batch, 3, 4, 6, batch):
        np.testing.assert_allclose(net.forward(pixels[:size]), full[:size], rtol=0, atol=1e-5)


@pytest.mark.parametrize("channels", [3, 16])  # the core's planar (few channels) and channels-last paths
@pytest.mark.parametrize("mode", ["nearest", "bilinear"])
@pytest.mark.parametrize("size", [(12, 16), (10, 9), (5, 4), (7, 7)])
def test_resize(mode, size, channels):
    """Up- and down-sampling by integer and fractional factors, both modes, half-pixel centres."""
    rng = np.random.default_rng(sum(size))
    spec = _spec(channels, 6, 8, rng)
    spec.add("resize", 0, size=size, mode=mode)
    _check(spec, 2, rng)


def test_reshape_after_dense_feeds_a_convolution():
    rng = np.random.default_rng(2)
    spec = _spec(5, 1, 1, rng)
    x = spec.add("dense", 0, weight=rng.standard_normal((8 * 4 * 4, 5)).astype(np.float32),
                 bias=rng.standard_normal(128).astype(np.float32))
    x = spec.add("reshape", x, shape=(8, 4, 4))
    x = spec.add("conv", x, stride=(1, 1), padding=(1, 1), **_conv_params(rng, 6, 8, 3))
    spec.add("resize", x, size=(8, 8), mode="nearest")
    _check(spec, 3, rng)


def test_reshape_and_resize_reject_bad_shapes():
    rng = np.random.default_rng(0)
    spec = _spec(5, 1, 1, rng)
    spec.add("dense", 0, weight=np.ones((12, 5), np.float32), bias=None)
    bad = NetworkSpec(spec.input_shape, spec.input_mean, spec.input_scale, list(spec.layers))
    bad.add("reshape", 1, shape=(5, 2, 2))
    with pytest.raises(fxplain.ModelFormatError, match="cannot view 12 values"):
        bad.shapes()
    with pytest.raises(fxplain.InvalidInputError, match="must keep the input's 12 values"):
        net = _core.Net(5, 1, 1)
        net.add_reshape(net.add_dense(0, np.ones((12, 5), np.float32), None), (5, 2, 2))
    net = _core.Net(3, 4, 4)
    with pytest.raises(fxplain.InvalidInputError, match="resize kind"):
        net.add_resize(0, (8, 8), "cubic")
    with pytest.raises(fxplain.InvalidInputError, match="positive"):
        net.add_resize(0, (0, 8), "nearest")
