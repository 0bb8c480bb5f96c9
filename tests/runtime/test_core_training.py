"""Training in the C core: parameter gradients (backward-weights primitives),
Adam, and replacing a layer's parameters; the building blocks of the
face-reconstruction decoder."""

from __future__ import annotations

import numpy as np
import pytest

import fxplain
from fxplain import _core
from fxplain.runtime import reference as _reference
from fxplain.runtime.core_net import build_core_net
from fxplain.runtime.spec import NetworkSpec


def _net(rng, bias=True) -> NetworkSpec:
    spec = NetworkSpec((3, 9, 9), np.full(3, 128, np.float32), np.full(3, 1 / 128, np.float32))
    x = spec.add("conv", 0, weight=(rng.standard_normal((8, 3, 3, 3)) / 5).astype(np.float32),
                 bias=rng.standard_normal(8).astype(np.float32) if bias else None, stride=(1, 1), padding=(1, 1))
    x = spec.add("relu", x)
    y = spec.add("conv", x, weight=(rng.standard_normal((12, 8, 3, 3)) / 8).astype(np.float32),
                 bias=rng.standard_normal(12).astype(np.float32), stride=(2, 2), padding=(0, 0))
    short = spec.add("avg_pool", x, kernel=(2, 2), stride=(2, 2), padding=(0, 0))
    x = spec.add("relu", spec.add("sum", (y, short)))
    x = spec.add("max_pool", x, kernel=(2, 2), stride=(2, 2), padding=(0, 0))
    spec.add("dense", x, weight=(rng.standard_normal((5, 12 * 2 * 2)) / 7).astype(np.float32),
             bias=rng.standard_normal(5).astype(np.float32) if bias else None)
    return spec


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batch", [1, 4])
def test_parameter_gradients_match_numpy_twin(bias, batch):
    rng = np.random.default_rng(batch)
    spec = _net(rng, bias)
    pixels = rng.uniform(0, 255, (batch, 9, 9, 3)).astype(np.float32)
    grad_out = rng.standard_normal((batch, 5, 1, 1)).astype(np.float32)
    _, grad_pixels, grads = build_core_net(spec).parameter_gradients(pixels, grad_out)
    want = _reference.parameter_gradients(spec, pixels, grad_out)
    assert sorted(grads) == sorted(want) == [1, 3, 8]
    for node, (dw, db) in grads.items():
        w_ref, b_ref = want[node]
        np.testing.assert_allclose(dw.reshape(w_ref.shape), w_ref, rtol=0, atol=1e-4 * np.abs(w_ref).max())
        if b_ref is None:
            assert db is None
        else:
            np.testing.assert_allclose(db, b_ref, rtol=0, atol=1e-4 * np.abs(b_ref).max())
    np.testing.assert_allclose(grad_pixels, _reference.input_gradient(spec, pixels, grad_out), atol=1e-6)


def test_twin_parameter_gradient_matches_finite_differences():
    rng = np.random.default_rng(3)
    spec = _net(rng)
    pixels = rng.uniform(0, 255, (2, 9, 9, 3))
    grad_out = rng.standard_normal((2, 5, 1, 1))
    dw = _reference.parameter_gradients(spec, pixels, grad_out)[3][0]
    weight = spec.layers[2].params["weight"].astype(np.float64)
    direction = rng.standard_normal(weight.shape)
    eps = 1e-5

    def objective(w):
        spec.layers[2].params["weight"] = w
        return float(np.sum(_reference.forward(spec, pixels) * grad_out))

    numeric = (objective(weight + eps * direction) - objective(weight - eps * direction)) / (2 * eps)
    assert numeric == pytest.approx(float(np.sum(dw * direction)), rel=1e-6)


def test_adam_matches_twin():
    rng = np.random.default_rng(0)
    param = rng.standard_normal(1000).astype(np.float32)
    m, v = np.zeros_like(param), np.zeros_like(param)
    p64, m64, v64 = param.astype(np.float64), np.zeros(1000), np.zeros(1000)
    for step in range(1, 6):
        grad = rng.standard_normal(1000).astype(np.float32)
        _core.adam_update(param, grad, m, v, 1e-2, 0.9, 0.999, 1e-8, step)
        p64, m64, v64 = _reference.adam_update(p64, grad.astype(np.float64), m64, v64, 1e-2, 0.9, 0.999, 1e-8, step)
    np.testing.assert_allclose(param, p64, rtol=0, atol=1e-5)
    with pytest.raises(fxplain.InvalidInputError, match="step"):
        _core.adam_update(param, grad, m, v, 1e-2, 0.9, 0.999, 1e-8, 0)
    with pytest.raises(fxplain.InvalidInputError, match="grad has size"):
        _core.adam_update(param, grad[:10], m, v, 1e-2, 0.9, 0.999, 1e-8, 1)


def test_set_parameters_refreshes_the_cached_plans():
    """New parameters reach every cached plan (inference and training) without rebuilding it."""
    rng = np.random.default_rng(5)
    spec = _net(rng)
    net = build_core_net(spec)
    pixels = rng.uniform(0, 255, (3, 9, 9, 3)).astype(np.float32)
    grad_out = rng.standard_normal((3, 5, 1, 1)).astype(np.float32)
    net.forward(pixels)  # builds (and caches) an inference plan
    net.parameter_gradients(pixels, grad_out)  # and a training plan
    steps = net.step_count(3)
    for node, layer in ((8, 7), (1, 0)):
        params = spec.layers[layer].params
        new_w = rng.standard_normal(params["weight"].size).astype(np.float32)
        new_b = rng.standard_normal(params["bias"].size).astype(np.float32)
        net.set_parameters(node, new_w, new_b)
        params["weight"] = new_w.reshape(params["weight"].shape)
        params["bias"] = new_b
    assert net.step_count(3) == steps
    np.testing.assert_allclose(net.forward(pixels), _reference.forward(spec, pixels), atol=1e-4)
    _, _, grads = net.parameter_gradients(pixels, grad_out)
    want = _reference.parameter_gradients(spec, pixels, grad_out)
    np.testing.assert_allclose(grads[3][0].reshape(want[3][0].shape), want[3][0], atol=1e-4 * np.abs(want[3][0]).max())
    assert net.parameter_sizes(8) == (240, 5) and net.parameter_sizes(2) == (0, 0)
    with pytest.raises(fxplain.InvalidInputError, match="no trainable weights"):
        net.set_parameters(2, new_w, None)
    with pytest.raises(fxplain.InvalidInputError, match="weight has size"):
        net.set_parameters(8, new_w[:10], new_b)


def test_forward_and_backward_in_two_calls():
    """train_forward + train_backward equal the one-call gradients; a run in between invalidates them."""
    rng = np.random.default_rng(6)
    spec = _net(rng)
    net = build_core_net(spec)
    pixels = rng.uniform(0, 255, (4, 9, 9, 3)).astype(np.float32)
    grad_out = rng.standard_normal((4, 5, 1, 1)).astype(np.float32)
    out_ref, gp_ref, grads_ref = net.parameter_gradients(pixels, grad_out)
    out = net.train_forward(pixels, True)
    np.testing.assert_array_equal(out, out_ref)
    grad_pixels, grads = net.train_backward(grad_out)
    np.testing.assert_array_equal(grad_pixels, gp_ref)
    for node in grads_ref:
        np.testing.assert_array_equal(grads[node][0], grads_ref[node][0])
    # input gradients only: no parameter gradients come back
    net.train_forward(pixels, False)
    grad_pixels, grads = net.train_backward(grad_out)
    np.testing.assert_allclose(grad_pixels, gp_ref, atol=1e-6)
    assert all(not np.any(dw) for dw, _ in grads.values())
    with pytest.raises(fxplain.InvalidInputError, match="no forward pass"):
        net.train_backward(grad_out)  # each forward pass serves one backward pass
    net.train_forward(pixels, True)
    net.forward(pixels)  # overwrites nothing of the training plan, but is another run
    with pytest.raises(fxplain.InvalidInputError, match="no forward pass"):
        net.train_backward(grad_out)
    net.train_forward(pixels, True)
    with pytest.raises(fxplain.InvalidInputError, match="had 4 images, the gradient has 2"):
        net.train_backward(grad_out[:2])


@pytest.mark.parametrize("kind", ["l1", "l2"])
def test_pixel_loss_matches_numpy(kind):
    rng = np.random.default_rng(1)
    out = rng.standard_normal((3, 3, 8, 8)).astype(np.float32)
    target = rng.standard_normal((3, 3, 8, 8)).astype(np.float32)
    target[0, 0, 0, 0] = out[0, 0, 0, 0]  # L1's gradient is 0 at 0
    loss, grad = _core.pixel_loss(out, target, kind, 2.5)
    d = out.astype(np.float64) - target
    if kind == "l1":
        want_loss, want_grad = 2.5 * np.abs(d).mean(), 2.5 * np.sign(d) / d.size
    else:
        want_loss, want_grad = 2.5 * (d ** 2).mean(), 2.5 * 2 * d / d.size
    assert loss == pytest.approx(want_loss, rel=1e-6)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-6, atol=1e-12)
    with pytest.raises(fxplain.InvalidInputError, match="target has size"):
        _core.pixel_loss(out, target[:1], kind, 1.0)
    with pytest.raises(fxplain.InvalidInputError, match="'l1' or 'l2'"):
        _core.pixel_loss(out, target, "huber", 1.0)
    out[1, 1, 1, 1] = np.nan
    with pytest.raises(fxplain.InvalidInputError, match="not finite"):
        _core.pixel_loss(out, target, kind, 1.0)


def test_training_loop_in_the_core_fits_a_target():
    """Gradient descent with the core's gradients and Adam lowers an L2 loss."""
    rng = np.random.default_rng(7)
    teacher, student = _net(rng), _net(rng)
    pixels = rng.uniform(0, 255, (16, 9, 9, 3)).astype(np.float32)
    target = build_core_net(teacher).forward(pixels)
    net = build_core_net(student)
    params = {j: [student.layers[j - 1].params["weight"].ravel().copy(), student.layers[j - 1].params["bias"].copy()]
              for j in (1, 3, 8)}
    moments = {j: [[np.zeros_like(a), np.zeros_like(a)] for a in arrays] for j, arrays in params.items()}
    losses = []
    for step in range(1, 61):
        out = net.forward(pixels)
        residual = out - target
        losses.append(float(np.mean(residual ** 2)))
        _, _, grads = net.parameter_gradients(pixels, (2 * residual / residual.size).astype(np.float32))
        for j, (dw, db) in grads.items():
            for array, grad, (m, v) in zip(params[j], (dw, db), moments[j]):
                _core.adam_update(array, grad, m, v, 3e-3, 0.9, 0.999, 1e-8, step)
            net.set_parameters(j, params[j][0], params[j][1])
    assert losses[-1] < 0.2 * losses[0]
