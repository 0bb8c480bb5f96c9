"""The layer kinds and parameters face-recognition models exported to ONNX need, against their NumPy twins.

Grouped (depthwise), dilated and asymmetrically padded convolutions
(MobileFaceNet, IResNet), sigmoid and the broadcasting product of a
squeeze-excitation gate, leaky ReLU, channel concatenation, and pooling with
extra end padding (``ceil_mode`` exports). Every case checks the core's
forward pass and its input gradient (oneDNN's backward primitives) against
the float64 reference (fxplain.runtime.reference); bad parameters must be
refused with ModelFormatError when the spec is validated, never crash the core.
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


def _weight(rng, out_c: int, in_per_group: int, kh: int, kw: int | None = None) -> np.ndarray:
    kw = kh if kw is None else kw
    return (rng.standard_normal((out_c, in_per_group, kh, kw)) / np.sqrt(in_per_group * kh * kw)).astype(np.float32)


def _conv(spec, node, rng, out_c, k, groups=1, stride=(1, 1), padding=(0, 0), bias=True, **extra) -> int:
    in_c = spec.shapes()[node][0]
    params = {"weight": _weight(rng, out_c, in_c // groups, k),
              "bias": rng.standard_normal(out_c).astype(np.float32) if bias else None,
              "stride": stride, "padding": padding}
    if groups != 1:
        params["groups"] = groups
    params.update(extra)
    return spec.add("conv", node, **params)


def _check_shared(spec: NetworkSpec, rng, count: int = 3, tol: float = 2e-5) -> None:
    """input_gradient_shared (one forward pass replicated into a batch-``count`` backward) == NumPy."""
    c, h, w = spec.input_shape
    pixels = rng.uniform(0, 255, (1, h, w, c)).astype(np.float32)
    grad_out = rng.standard_normal((count,) + tuple(spec.shapes()[spec.output])).astype(np.float32)
    _, grad = build_core_net(spec).input_gradient_shared(pixels, grad_out)
    want = _reference.input_gradient(spec, np.repeat(pixels, count, axis=0), grad_out)
    np.testing.assert_allclose(grad, want, rtol=0, atol=tol * float(np.abs(want).max()))


def _check(spec: NetworkSpec, batch: int, rng, tol: float = 2e-5) -> None:
    """Core forward == NumPy forward and core input gradient == NumPy input gradient."""
    c, h, w = spec.input_shape
    pixels = rng.uniform(0, 255, (batch, h, w, c)).astype(np.float32)
    net = build_core_net(spec)
    got = net.forward(pixels)
    want = _reference.forward(spec, pixels)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=tol * max(1.0, float(np.abs(want).max())))
    grad_out = rng.standard_normal(want.shape).astype(np.float32)
    out, grad = net.input_gradient(pixels, grad_out)
    np.testing.assert_allclose(out, got, rtol=0, atol=tol * max(1.0, float(np.abs(want).max())))
    grad_want = _reference.input_gradient(spec, pixels, grad_out)
    np.testing.assert_allclose(grad, grad_want, rtol=0, atol=tol * max(1e-6, float(np.abs(grad_want).max())))


# ---- conv: groups, dilation, asymmetric padding ---------------------------------

@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize(
    "in_c,out_c,groups,size,k,stride,padding,padding_end,dilation",
    [
        (8, 8, 8, 12, 3, (2, 2), (1, 1), (0, 0), (1, 1)),    # depthwise, stride 2, TF-style "same" padding
        (16, 16, 16, 11, 3, (2, 2), (0, 0), (1, 1), (1, 1)),  # depthwise, only end padding
        (8, 8, 8, 9, 3, (1, 1), (1, 1), (1, 1), (1, 1)),     # depthwise, stride 1
        (6, 12, 2, 10, 3, (1, 1), (1, 1), (1, 1), (1, 1)),   # two groups
        (6, 4, 2, 9, 3, (2, 1), (1, 0), (0, 2), (1, 1)),     # two groups, mixed strides and paddings
        (4, 6, 1, 13, 3, (1, 1), (2, 2), (2, 2), (2, 2)),    # dilation 2, "same" output
        (4, 6, 1, 14, 3, (2, 2), (1, 2), (2, 1), (2, 3)),    # dilation, stride, asymmetric everything
        (8, 16, 4, 10, 3, (1, 1), (2, 2), (2, 2), (2, 2)),   # groups and dilation together
        (3, 5, 1, 9, 4, (2, 2), (1, 1), (2, 2), (1, 1)),     # even kernel, end padding one more
    ],
)
def test_extended_conv_forward_and_input_gradient(batch, in_c, out_c, groups, size, k, stride, padding,
                                                  padding_end, dilation):
    rng = np.random.default_rng(in_c * 31 + out_c * 7 + groups + k + sum(padding_end))
    spec = _spec(3, size, size + 1, rng)
    x = _conv(spec, 0, rng, in_c, 1)  # lift the 3 input channels to in_c
    _conv(spec, x, rng, out_c, k, groups=groups, stride=stride, padding=padding, padding_end=padding_end,
          dilation=dilation)
    _check(spec, batch, rng)


def test_extended_conv_shape_rule():
    rng = np.random.default_rng(0)
    spec = _spec(8, 11, 11, rng)
    node = _conv(spec, 0, rng, 8, 3, groups=8, stride=(2, 2), padding=(0, 0), padding_end=(1, 1))
    assert spec.shapes()[node] == (8, 5, 5)  # (11 + 0 + 1 - 3) // 2 + 1
    node = _conv(spec, 0, rng, 4, 3, padding=(2, 2), dilation=(2, 2))
    assert spec.shapes()[node] == (4, 11, 11)  # (11 + 4 - 5) + 1


def test_depthwise_mobilefacenet_block_fuses_and_trains():
    """conv1x1 -> bn -> prelu -> depthwise 3x3 s2 -> bn -> prelu -> conv1x1 -> bn (MobileFaceNet's bottleneck).

    The inference plan fuses each scale/shift into its (grouped) convolution and each prelu
    into a post-op; the training plan computes grouped weight gradients like the twin's.
    """
    rng = np.random.default_rng(1)
    spec = _spec(3, 12, 12, rng)

    def bn(node, c):
        return spec.add("scale_shift", node, scale=rng.uniform(0.5, 1.5, c).astype(np.float32),
                        shift=rng.standard_normal(c).astype(np.float32))

    x = spec.add("prelu", bn(_conv(spec, 0, rng, 16, 1, bias=False), 16), slope=np.full(16, 0.25, np.float32))
    x = _conv(spec, x, rng, 16, 3, groups=16, stride=(2, 2), padding=(1, 1), bias=False)
    x = spec.add("prelu", bn(x, 16), slope=rng.uniform(0, 0.5, 16).astype(np.float32))
    bn(_conv(spec, x, rng, 8, 1, bias=False), 8)
    _check(spec, 2, rng)
    assert build_core_net(spec).step_count(1) == 4  # three convolutions and the output reorder

    pixels = rng.uniform(0, 255, (2, 12, 12, 3)).astype(np.float32)
    grad_out = rng.standard_normal((2, 8, 6, 6)).astype(np.float32)
    _, grad_pixels, grads = build_core_net(spec).parameter_gradients(pixels, grad_out)
    # the twin differentiates the unfolded spec; the core the folded weights: compare on a spec
    # whose scale/shifts are identities, where the two coincide
    plain = _spec(3, 12, 12, rng)
    x = _conv(plain, 0, rng, 16, 1)
    x = _conv(plain, x, rng, 16, 3, groups=16, stride=(2, 2), padding=(1, 1), padding_end=(0, 0))
    _conv(plain, x, rng, 8, 3, groups=4, padding=(1, 1), dilation=(1, 2), padding_end=(1, 2))
    grad_out = rng.standard_normal((2,) + plain.shapes()[-1]).astype(np.float32)
    _, grad_pixels, grads = build_core_net(plain).parameter_gradients(pixels, grad_out)
    want = _reference.parameter_gradients(plain, pixels, grad_out)
    assert sorted(grads) == sorted(want) == [1, 2, 3]
    for node, (dw, db) in grads.items():
        w_ref, b_ref = want[node]
        assert dw.size == w_ref.size
        np.testing.assert_allclose(dw.reshape(w_ref.shape), w_ref, rtol=0, atol=1e-4 * np.abs(w_ref).max())
        np.testing.assert_allclose(db, b_ref, rtol=0, atol=1e-4 * np.abs(b_ref).max())
    np.testing.assert_allclose(grad_pixels, _reference.input_gradient(plain, pixels, grad_out), rtol=0,
                               atol=2e-5 * np.abs(grad_pixels).max())


def test_grouped_conv_parameters_can_be_replaced():
    rng = np.random.default_rng(2)
    spec = _spec(4, 6, 6, rng)
    _conv(spec, 0, rng, 8, 3, groups=4, padding=(1, 1))
    net = build_core_net(spec)
    assert net.parameter_sizes(1) == (8 * 1 * 3 * 3, 8)
    pixels = rng.uniform(0, 255, (1, 6, 6, 4)).astype(np.float32)
    new_weight = _weight(rng, 8, 1, 3)
    net.set_parameters(1, new_weight.ravel(), np.zeros(8, np.float32))
    spec.layers[0].params.update(weight=new_weight, bias=np.zeros(8, np.float32))
    np.testing.assert_allclose(net.forward(pixels), _reference.forward(spec, pixels), rtol=0, atol=1e-4)


def test_old_conv_specs_stay_valid():
    """Specs (and files) without the new parameters mean groups 1, dilation 1, symmetric padding."""
    rng = np.random.default_rng(3)
    spec = _spec(3, 9, 9, rng)
    spec.add("conv", 0, weight=_weight(rng, 4, 3, 3), bias=None, stride=(2, 2), padding=(1, 1))
    explicit = NetworkSpec(spec.input_shape, spec.input_mean, spec.input_scale)
    explicit.add("conv", 0, weight=spec.layers[0].params["weight"], bias=None, stride=(2, 2), padding=(1, 1),
                 padding_end=(1, 1), dilation=(1, 1), groups=1)
    pixels = rng.uniform(0, 255, (1, 9, 9, 3)).astype(np.float32)
    np.testing.assert_array_equal(build_core_net(spec).forward(pixels), build_core_net(explicit).forward(pixels))
    assert spec.shapes() == explicit.shapes()


@pytest.mark.parametrize("params,match", [
    ({"groups": 3}, "groups 3 must divide"),              # 4 input channels
    ({"groups": 0}, "groups 0 must divide"),
    ({"groups": -2}, "groups -2 must divide"),
    ({"groups": 2, "out": 3}, "groups 2 must divide"),   # 3 outputs
    ({"groups": 2, "per_group": 4}, "expects 8 input channels"),
    ({"padding_end": (-1, 0)}, "invalid window"),
    ({"padding_end": (3, 0)}, "must be smaller than the kernel"),
    ({"dilation": (0, 1)}, "invalid window"),
    ({"dilation": (1 << 20, 1)}, "invalid window"),
    ({"dilation": (5, 5)}, "does not fit"),               # a 11-wide window on 6 rows
    ({"groups": True}, "must be an integer"),
    ({"groups": 2.0}, "must be an integer"),
    ({"dilation": (2,)}, "must be 2 integers"),
    ({"padding_end": "1"}, "must be 2 integers"),
])
def test_bad_conv_parameters_are_refused_when_read(params, match):
    rng = np.random.default_rng(4)
    spec = _spec(4, 6, 6, rng)
    out = params.pop("out", 4)
    groups = params.get("groups", 1)
    per_group = params.pop("per_group", 4 // groups if isinstance(groups, int) and groups > 0 and 4 % groups == 0
                           else 1)
    spec.add("conv", 0, weight=_weight(rng, out, per_group, 3), bias=None, stride=(1, 1), padding=(1, 1), **params)
    with pytest.raises(fxplain.ModelFormatError, match=match):
        spec.shapes()


def test_core_refuses_bad_conv_arguments():
    """The binding and the core check every number themselves (hostile callers skip the spec)."""
    net = _core.Net(4, 6, 6)
    w = np.zeros((4, 2, 3, 3), np.float32)
    with pytest.raises(fxplain.InvalidInputError, match="groups 3"):
        net.add_conv(0, w, None, (1, 1), (1, 1), groups=3)
    with pytest.raises(fxplain.InvalidInputError, match="groups 0"):
        net.add_conv(0, w, None, (1, 1), (1, 1), groups=0)
    with pytest.raises(fxplain.InvalidInputError, match="axis 1"):
        net.add_conv(0, w, None, (1, 1), (1, 1), groups=1)
    with pytest.raises(fxplain.InvalidInputError, match="groups 2 must be >= 1 and divide its 4 input and 3"):
        net.add_conv(0, np.zeros((3, 2, 3, 3), np.float32), None, (1, 1), (1, 1), groups=2)
    with pytest.raises(fxplain.InvalidInputError, match="padding"):
        net.add_conv(0, w, None, (1, 1), (1, 1), padding_end=(-1, 0), groups=2)
    with pytest.raises(fxplain.InvalidInputError, match="dilation"):
        net.add_conv(0, w, None, (1, 1), (1, 1), dilation=(0, 1), groups=2)
    with pytest.raises(fxplain.InvalidInputError, match="spans"):
        net.add_conv(0, w, None, (1, 1), (1, 1), dilation=(40000, 1), groups=2)
    with pytest.raises(fxplain.InvalidInputError, match="does not fit"):
        net.add_conv(0, w, None, (1, 1), (1, 1), dilation=(4, 1), groups=2)
    with pytest.raises(fxplain.InvalidInputError, match="2 integers"):
        net.add_conv(0, w, None, (1, 1), (1, 1), padding_end=(1, 2, 3), groups=2)
    with pytest.raises(fxplain.InvalidInputError, match="int32"):
        net.add_conv(0, w, None, (1, 1), (1, 1), dilation=(1 << 40, 1), groups=2)
    with pytest.raises(fxplain.InvalidInputError, match="2 integers"):
        net.add_conv(0, w, None, (1, 1), (1, 1), dilation=(True, 1), groups=2)
    assert net.node_shape(net.add_conv(0, w, None, (2, 2), (1, 1), padding_end=(0, 0), dilation=(1, 1),
                                       groups=2)) == (4, 3, 3)


# ---- sigmoid, leaky relu ------------------------------------------------------

@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("kind,params", [("sigmoid", {}), ("leaky_relu", {"alpha": 0.1}),
                                         ("leaky_relu", {"alpha": -0.5}), ("leaky_relu", {"alpha": 0})])
def test_activations(kind, params, fused):
    """As a post-op of a convolution (inference), and standalone after a pooling."""
    rng = np.random.default_rng(5)
    spec = _spec(3, 9, 9, rng)
    node = _conv(spec, 0, rng, 8, 3, padding=(1, 1))
    if not fused:
        node = spec.add("avg_pool", node, kernel=(3, 3), stride=(1, 1), padding=(1, 1))
    spec.add(kind, node, **params)
    _check(spec, 3, rng)
    if fused:
        assert build_core_net(spec).step_count(1) == 2


def test_sigmoid_saturates_without_nan():
    rng = np.random.default_rng(6)
    spec = NetworkSpec((2, 3, 3), np.zeros(2, np.float32), np.full(2, 1.0, np.float32))
    spec.add("sigmoid", 0)
    pixels = np.array([-200.0, 200.0], np.float32)[None, None, None, :].repeat(3, 1).repeat(3, 2)
    out = build_core_net(spec).forward(pixels)
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    _check(spec, 2, rng)


@pytest.mark.parametrize("alpha", [float("nan"), float("inf"), 1e39, True, "0.1", None])
def test_leaky_relu_alpha_must_be_a_finite_number(alpha):
    spec = _spec(3, 4, 4, np.random.default_rng(0))
    spec.add("leaky_relu", 0, alpha=alpha)
    with pytest.raises(fxplain.ModelFormatError, match="alpha"):
        spec.shapes()
    if isinstance(alpha, float):
        with pytest.raises(fxplain.InvalidInputError, match="alpha"):
            _core.Net(3, 4, 4).add_leaky_relu(0, alpha)


# ---- mul ----------------------------------------------------------------------

@pytest.mark.parametrize("order", ["full_first", "gate_first", "equal", "same_node"])
def test_mul(order):
    rng = np.random.default_rng(7)
    spec = _spec(3, 7, 8, rng)
    x = _conv(spec, 0, rng, 6, 3, padding=(1, 1))
    gate = _conv(spec, spec.add("global_avg_pool", x), rng, 6, 1)
    other = {"equal": _conv(spec, 0, rng, 6, 3, padding=(1, 1)), "same_node": x}.get(order, gate)
    inputs = (other, x) if order == "gate_first" else (x, other)
    node = spec.add("mul", inputs)
    assert spec.shapes()[node] == (6, 7, 8)
    _check(spec, 2, rng)


def test_mul_with_a_dense_gate():
    """A gate from a dense layer (an output of shape (N, C) in the core) scales a spatial node."""
    rng = np.random.default_rng(8)
    spec = _spec(3, 5, 5, rng)
    x = _conv(spec, 0, rng, 4, 3, padding=(1, 1))
    pooled = spec.add("global_avg_pool", x)
    gate = spec.add("sigmoid", spec.add("dense", pooled, weight=rng.standard_normal((4, 4)).astype(np.float32),
                                        bias=None))
    spec.add("mul", (gate, x))
    _check(spec, 3, rng)
    _check_shared(spec, rng)
    two_dense = _spec(3, 5, 5, rng)
    a = two_dense.add("dense", 0, weight=rng.standard_normal((6, 75)).astype(np.float32), bias=None)
    b = two_dense.add("dense", 0, weight=rng.standard_normal((6, 75)).astype(np.float32), bias=None)
    two_dense.add("mul", (a, b))
    _check(two_dense, 2, rng)


def test_squeeze_excitation_block():
    """x * sigmoid(conv1x1(relu(conv1x1(global_avg_pool(x))))), then a residual sum, end to end."""
    rng = np.random.default_rng(9)
    spec = _spec(3, 8, 8, rng)
    x = spec.add("prelu", _conv(spec, 0, rng, 16, 3, padding=(1, 1)), slope=np.full(16, 0.2, np.float32))
    y = _conv(spec, x, rng, 16, 3, padding=(1, 1))
    squeeze = spec.add("relu", _conv(spec, spec.add("global_avg_pool", y), rng, 4, 1))
    gate = spec.add("sigmoid", _conv(spec, squeeze, rng, 16, 1))
    spec.add("sum", (spec.add("mul", (y, gate)), x))
    _check(spec, 2, rng)
    _check(spec, 1, rng)
    _check_shared(spec, rng)


@pytest.mark.parametrize("shapes", [((4, 5, 5), (4, 5, 4)), ((4, 5, 5), (2, 1, 1)), ((4, 5, 5), (4, 1, 5)),
                                    ((4, 1, 1), (2, 1, 1))])
def test_mul_of_incompatible_shapes_is_refused(shapes):
    rng = np.random.default_rng(10)
    spec = _spec(3, 5, 5, rng)
    a, b = (spec.add("reshape", spec.add("dense", 0, weight=np.ones((int(np.prod(s)), 75), np.float32), bias=None),
                     shape=s) for s in shapes)
    spec.add("mul", (a, b))
    with pytest.raises(fxplain.ModelFormatError, match="mul"):
        spec.shapes()
    net = _core.Net(3, 5, 5)
    nodes = [net.add_reshape(net.add_dense(0, np.ones((int(np.prod(s)), 75), np.float32), None), s) for s in shapes]
    with pytest.raises(fxplain.InvalidInputError, match="mul"):
        net.add_mul(*nodes)


# ---- concat -------------------------------------------------------------------

@pytest.mark.parametrize("channels", [(3, 5), (8, 8), (16, 4)])
def test_concat(channels):
    rng = np.random.default_rng(sum(channels))
    spec = _spec(3, 6, 7, rng)
    a = _conv(spec, 0, rng, channels[0], 3, padding=(1, 1))
    b = spec.add("max_pool", _conv(spec, 0, rng, channels[1], 1), kernel=(3, 3), stride=(1, 1), padding=(1, 1))
    node = spec.add("concat", (a, b))
    assert spec.shapes()[node] == (sum(channels), 6, 7)
    _conv(spec, node, rng, 4, 3)
    _check(spec, 2, rng)


def test_concat_of_a_node_with_itself_and_of_dense_outputs():
    rng = np.random.default_rng(11)
    spec = _spec(3, 4, 4, rng)
    x = _conv(spec, 0, rng, 5, 3, padding=(1, 1))
    spec.add("relu", spec.add("concat", (x, x)))
    _check(spec, 2, rng)
    dense = _spec(3, 4, 4, rng)
    a = dense.add("dense", 0, weight=rng.standard_normal((6, 48)).astype(np.float32), bias=None)
    pooled = dense.add("global_avg_pool", _conv(dense, 0, rng, 3, 3))
    dense.add("concat", (a, pooled))  # a dense (N, 6) output beside a spatial 3x1x1 one
    _check(dense, 2, rng)
    _check_shared(dense, rng)


def test_concat_of_different_rows_is_refused():
    rng = np.random.default_rng(12)
    spec = _spec(3, 6, 6, rng)
    a = _conv(spec, 0, rng, 4, 3)
    spec.add("concat", (a, 0))
    with pytest.raises(fxplain.ModelFormatError, match="concat"):
        spec.shapes()
    net = _core.Net(3, 6, 6)
    with pytest.raises(fxplain.InvalidInputError, match="concat"):
        net.add_concat(net.add_conv(0, np.zeros((4, 3, 3, 3), np.float32), None, (1, 1), (0, 0)), 0)


# ---- pooling with end padding ----------------------------------------------------

@pytest.mark.parametrize("kind", ["max_pool", "avg_pool"])
@pytest.mark.parametrize("k,stride,padding,padding_end,size", [
    (3, 2, (0, 0), (1, 1), 10),   # ceil_mode=True of a 3x3/2 pool on 10 rows
    (2, 2, (0, 0), (1, 0), 7),
    (3, 2, (1, 1), (2, 2), 8),    # ceil_mode with padding 1
    (3, 1, (0, 2), (2, 0), 6),
])
def test_pooling_with_end_padding(kind, k, stride, padding, padding_end, size):
    rng = np.random.default_rng(k * 10 + stride + sum(padding_end))
    spec = _spec(3, size, size + 1, rng)
    node = _conv(spec, 0, rng, 8, 1)
    spec.add(kind, node, kernel=(k, k), stride=(stride, stride), padding=padding, padding_end=padding_end)
    _check(spec, 2, rng)


def test_pooling_end_padding_is_checked():
    rng = np.random.default_rng(13)
    for end, match in (((-1, 0), "invalid window"), ((2, 2), "smaller than the kernel"), ((0,), "2 integers")):
        spec = _spec(3, 6, 6, rng)
        spec.add("max_pool", 0, kernel=(2, 2), stride=(2, 2), padding=(0, 0), padding_end=end)
        with pytest.raises(fxplain.ModelFormatError, match=match):
            spec.shapes()
    net = _core.Net(3, 6, 6)
    with pytest.raises(fxplain.InvalidInputError, match="padding"):
        net.add_pool(0, "avg", (2, 2), (2, 2), (0, 0), (2, 0))
    assert net.node_shape(net.add_pool(0, "avg", (3, 3), (2, 2), (0, 0), (1, 1))) == (3, 3, 3)


# ---- the benchmarks' PyTorch twin knows every new kind ------------------------------

@pytest.mark.parametrize("channels_last", [False, True])
def test_torch_twin_of_the_new_kinds(channels_last):
    torch = pytest.importorskip("torch")
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from torch_network import build_torch_module

    rng = np.random.default_rng(14)
    spec = _spec(3, 11, 12, rng)
    x = spec.add("leaky_relu", _conv(spec, 0, rng, 8, 3, stride=(2, 2), padding=(0, 0), padding_end=(1, 1)),
                 alpha=0.1)
    y = _conv(spec, x, rng, 8, 3, groups=8, padding=(2, 1), padding_end=(2, 1), dilation=(2, 1))
    gate = spec.add("sigmoid", _conv(spec, spec.add("global_avg_pool", y), rng, 8, 1))
    y = spec.add("mul", (gate, y))
    y = spec.add("max_pool", spec.add("concat", (x, y)), kernel=(3, 3), stride=(2, 2), padding=(0, 0),
                 padding_end=(1, 1))
    spec.add("avg_pool", y, kernel=(2, 2), stride=(2, 2), padding=(1, 0), padding_end=(0, 1))
    pixels = rng.uniform(0, 255, (2, 11, 12, 3)).astype(np.float32)
    module = build_torch_module(spec, channels_last=channels_last)
    with torch.inference_mode():
        got = module(torch.from_numpy(pixels)).numpy()
    want = _reference.forward(spec, pixels)
    np.testing.assert_allclose(got.reshape(want.shape), want, rtol=0, atol=1e-4 * np.abs(want).max())
    _check(spec, 2, rng)  # and the core, on the whole mixture


def test_new_kinds_run_in_bf16():
    """The bf16 arithmetic mode builds the same primitives with bfloat16 activations (about 3 digits)."""
    rng = np.random.default_rng(15)
    spec = _spec(3, 10, 10, rng)
    x = spec.add("leaky_relu", _conv(spec, 0, rng, 16, 3, padding=(0, 0), padding_end=(1, 1)), alpha=0.2)
    y = _conv(spec, x, rng, 16, 3, groups=16, stride=(2, 2), padding=(1, 1), padding_end=(0, 0))
    gate = spec.add("sigmoid", _conv(spec, spec.add("global_avg_pool", y), rng, 16, 1))
    spec.add("concat", (spec.add("mul", (y, gate)), y))
    net = build_core_net(spec)
    net.set_math_mode("bf16")
    pixels = rng.uniform(0, 255, (2, 10, 10, 3)).astype(np.float32)
    want = _reference.forward(spec, pixels)
    try:
        got = net.forward(pixels)
    except fxplain.CoreError as exc:
        # no bf16 convolution kernel on this CPU (oneDNN 3.2 on an AVX2-only CPU): a clean oneDNN
        # "unimplemented", and the net still runs in fp32 (FaceModel.set_precision refuses bf16 up front)
        assert "unimplemented" in str(exc)
        net.set_math_mode("fp32")
        np.testing.assert_allclose(net.forward(pixels), want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
        return
    np.testing.assert_allclose(got, want, rtol=0, atol=3e-2 * np.abs(want).max())
    grad_out = rng.standard_normal(want.shape).astype(np.float32)
    _, grad = net.input_gradient(pixels, grad_out)
    grad_want = _reference.input_gradient(spec, pixels, grad_out)
    np.testing.assert_allclose(grad, grad_want, rtol=0, atol=5e-2 * np.abs(grad_want).max())


def test_new_parameters_survive_fxplain_files(tmp_path):
    """save_spec / load_spec keep padding_end, dilation, groups and alpha (plain JSON numbers)."""
    from fxplain.models.formats.fxspec import load_spec, save_spec

    rng = np.random.default_rng(16)
    spec = _spec(3, 9, 9, rng)
    x = spec.add("leaky_relu", _conv(spec, 0, rng, 6, 3, padding=(0, 1), padding_end=(1, 0), dilation=(1, 2)),
                 alpha=-0.25)
    y = _conv(spec, x, rng, 6, 3, groups=3, padding=(1, 1))
    y = spec.add("max_pool", spec.add("concat", (x, spec.add("sigmoid", y))), kernel=(2, 2), stride=(2, 2),
                 padding=(0, 0), padding_end=(1, 1))
    spec.add("mul", (y, spec.add("global_avg_pool", y)))
    save_spec(tmp_path / "net.fxd", spec, {"kind": "test"})
    loaded, _ = load_spec(tmp_path / "net.fxd")
    assert loaded.architecture() == spec.architecture()
    assert loaded.weights_digest() == spec.weights_digest()
    pixels = rng.uniform(0, 255, (1, 9, 9, 3)).astype(np.float32)
    np.testing.assert_array_equal(build_core_net(loaded).forward(pixels), build_core_net(spec).forward(pixels))
