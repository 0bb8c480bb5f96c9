"""NumPy twin of the C core's network runtime: the test oracle for every layer.

Written for clarity, not speed: each function is the textbook definition of a
layer in :mod:`fxplain._graph`'s conventions (NCHW, cross-correlation, floor
rounding, zero-padded sums). Computation is in float64 so that the reference
is more accurate than the float32 code it checks.
"""

from __future__ import annotations

import numpy as np

from ._graph import NetworkSpec


def normalize_input(pixels: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """NHWC pixels -> NCHW network input ``(pixel - mean[c]) * scale[c]``."""
    x = (np.asarray(pixels, np.float64) - mean) * scale
    return x.transpose(0, 3, 1, 2)


def _windows(x: np.ndarray, kernel, stride, padding, fill: float) -> np.ndarray:
    """Sliding windows of an NCHW array: (N, C, OH, OW, KH, KW)."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    view = np.lib.stride_tricks.sliding_window_view(padded, (kh, kw), axis=(2, 3))
    oh = (x.shape[2] + 2 * ph - kh) // sh + 1
    ow = (x.shape[3] + 2 * pw - kw) // sw + 1
    return view[:, :, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw]


def conv2d(x, weight, bias, stride, padding):
    """Cross-correlation: ``y[n,o] = sum_{i,u,v} w[o,i,u,v] x[n,i,s*h+u-p,s*w+v-p] + b[o]``."""
    win = _windows(x, weight.shape[2:], stride, padding, 0.0)
    y = np.einsum("nchwuv,ocuv->nohw", win, np.asarray(weight, np.float64), optimize=True)
    if bias is not None:
        y = y + np.asarray(bias, np.float64)[None, :, None, None]
    return y


def max_pool(x, kernel, stride, padding):
    """Maximum over each window; padded cells never win."""
    return _windows(x, kernel, stride, padding, -np.inf).max(axis=(4, 5))


def avg_pool(x, kernel, stride, padding):
    """Mean over each window, counting only cells inside the input."""
    total = _windows(x, kernel, stride, padding, 0.0).sum(axis=(4, 5))
    ones = np.ones((1, 1) + x.shape[2:])
    count = _windows(ones, kernel, stride, padding, 0.0).sum(axis=(4, 5))
    return total / count


def global_avg_pool(x):
    """Mean over rows and columns, keeping (N, C, 1, 1)."""
    return x.mean(axis=(2, 3), keepdims=True)


def scale_shift(x, scale, shift):
    """Per-channel affine map ``x * scale[c] + shift[c]``."""
    return x * np.asarray(scale, np.float64)[None, :, None, None] + np.asarray(shift, np.float64)[None, :, None, None]


def relu(x):
    """``max(x, 0)``."""
    return np.maximum(x, 0.0)


def prelu(x, slope):
    """``x`` where positive, ``slope[c] * x`` elsewhere."""
    return np.where(x > 0, x, x * np.asarray(slope, np.float64)[None, :, None, None])


def padded_sum(a, b):
    """``a + b`` after zero-padding both, at the end of each axis, to the larger shape."""
    shape = tuple(max(p, q) for p, q in zip(a.shape, b.shape))
    out = np.zeros(shape)
    out[tuple(slice(0, s) for s in a.shape)] += a
    out[tuple(slice(0, s) for s in b.shape)] += b
    return out


def dense(x, weight, bias):
    """Fully connected on the C,H,W-flattened input; output (N, O, 1, 1)."""
    y = x.reshape(x.shape[0], -1) @ np.asarray(weight, np.float64).T
    if bias is not None:
        y = y + np.asarray(bias, np.float64)
    return y[:, :, None, None]


def resize_matrix(size_in: int, size_out: int, mode: str) -> np.ndarray:
    """The (size_out, size_in) matrix resampling one axis.

    Half-pixel centres: output ``o`` samples the input at ``(o + 0.5) * in / out - 0.5``;
    bilinear clamps that coordinate to the input, nearest takes the cell it falls in.
    """
    a = np.zeros((size_out, size_in))
    ratio = size_in / size_out
    for o in range(size_out):
        if mode == "nearest":
            a[o, min(int(np.floor((o + 0.5) * ratio)), size_in - 1)] = 1.0
        else:
            s = min(max((o + 0.5) * ratio - 0.5, 0.0), size_in - 1.0)
            i0 = int(np.floor(s))
            i1 = min(i0 + 1, size_in - 1)
            a[o, i0] += 1.0 - (s - i0)
            a[o, i1] += s - i0
    return a


def resize(x, size, mode):
    """Resample an NCHW array to ``size`` (h, w) rows and columns: ``A_h x A_w^T``."""
    ah = resize_matrix(x.shape[2], size[0], mode)
    aw = resize_matrix(x.shape[3], size[1], mode)
    return np.einsum("oh,nchw,pw->ncop", ah, x, aw, optimize=True)


def run_layer(kind: str, inputs: list[np.ndarray], params: dict) -> np.ndarray:
    """Apply one layer of a :class:`~fxplain._graph.NetworkSpec` to its inputs."""
    x = inputs[0]
    if kind == "conv":
        return conv2d(x, params["weight"], params.get("bias"), params["stride"], params["padding"])
    if kind == "max_pool":
        return max_pool(x, params["kernel"], params["stride"], params["padding"])
    if kind == "avg_pool":
        return avg_pool(x, params["kernel"], params["stride"], params["padding"])
    if kind == "global_avg_pool":
        return global_avg_pool(x)
    if kind == "scale_shift":
        return scale_shift(x, params["scale"], params["shift"])
    if kind == "relu":
        return relu(x)
    if kind == "prelu":
        return prelu(x, params["slope"])
    if kind == "sum":
        return padded_sum(x, inputs[1])
    if kind == "dense":
        return dense(x, params["weight"], params.get("bias"))
    if kind == "reshape":
        return x.reshape((x.shape[0],) + tuple(params["shape"]))
    if kind == "resize":
        return resize(x, params["size"], params["mode"])
    raise ValueError(f"unknown layer kind {kind!r}")


def forward(spec: NetworkSpec, pixels: np.ndarray) -> np.ndarray:
    """Run a whole network on NHWC pixels; returns the output node as (N, C, H, W) float64."""
    nodes = [normalize_input(pixels, spec.input_mean, spec.input_scale)]
    for layer in spec.layers:
        nodes.append(run_layer(layer.kind, [nodes[i] for i in layer.inputs], layer.params))
    return nodes[spec.output]


# ---- backward: vector-Jacobian products of every layer ---------------------


def _conv2d_backward(dy, weight, stride, padding, input_shape):
    """Gradient of a cross-correlation with respect to its input."""
    n, c, h, w = input_shape
    (sh, sw), (ph, pw) = stride, padding
    _, _, kh, kw = weight.shape
    oh, ow = dy.shape[2:]
    dx = np.zeros((n, c, h + 2 * ph + sh, w + 2 * pw + sw))
    wt = np.asarray(weight, np.float64)
    for u in range(kh):
        for v in range(kw):
            dx[:, :, u:u + sh * oh:sh, v:v + sw * ow:sw] += np.einsum("nohw,oc->nchw", dy, wt[:, :, u, v])
    return dx[:, :, ph:ph + h, pw:pw + w]


def _pool_backward(x, dy, kind, kernel, stride, padding):
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    n, c, h, w = x.shape
    oh, ow = dy.shape[2:]
    dx = np.zeros((n, c, h + 2 * ph + kh, w + 2 * pw + kw))
    if kind == "max":
        padded = np.pad(x, ((0, 0), (0, 0), (ph, ph + kh), (pw, pw + kw)), constant_values=-np.inf)
        for i in range(oh):
            for j in range(ow):
                window = padded[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw].reshape(n, c, -1)
                arg = window.argmax(axis=2)
                u, v = np.unravel_index(arg, (kh, kw))
                nn, cc = np.meshgrid(np.arange(n), np.arange(c), indexing="ij")
                np.add.at(dx, (nn, cc, i * sh + u, j * sw + v), dy[:, :, i, j])
    else:
        inside = np.zeros((h + 2 * ph + kh, w + 2 * pw + kw))
        inside[ph:ph + h, pw:pw + w] = 1
        for i in range(oh):
            for j in range(ow):
                cells = inside[i * sh:i * sh + kh, j * sw:j * sw + kw]
                dx[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw] += dy[:, :, i:i + 1, j:j + 1] * cells / cells.sum()
    return dx[:, :, ph:ph + h, pw:pw + w]


def layer_backward(kind: str, inputs: list[np.ndarray], output: np.ndarray, dy: np.ndarray,
                   params: dict) -> list[np.ndarray]:
    """Gradients with respect to each input of one layer, given the output's gradient."""
    x = inputs[0]
    if kind == "conv":
        return [_conv2d_backward(dy, params["weight"], params["stride"], params["padding"], x.shape)]
    if kind in ("max_pool", "avg_pool"):
        return [_pool_backward(x, dy, kind[:3], params["kernel"], params["stride"], params["padding"])]
    if kind == "global_avg_pool":
        return [np.broadcast_to(dy, x.shape) / (x.shape[2] * x.shape[3])]
    if kind == "scale_shift":
        return [dy * np.asarray(params["scale"], np.float64)[None, :, None, None]]
    if kind == "relu":
        return [dy * (output > 0)]
    if kind == "prelu":
        return [np.where(x > 0, dy, dy * np.asarray(params["slope"], np.float64)[None, :, None, None])]
    if kind == "sum":
        return [dy[tuple(slice(0, s) for s in t.shape)] for t in inputs]
    if kind == "dense":
        return [(dy[:, :, 0, 0] @ np.asarray(params["weight"], np.float64)).reshape(x.shape)]
    if kind == "reshape":
        return [dy.reshape(x.shape)]
    if kind == "resize":
        ah = resize_matrix(x.shape[2], dy.shape[2], params["mode"])
        aw = resize_matrix(x.shape[3], dy.shape[3], params["mode"])
        return [np.einsum("oh,ncop,pw->nchw", ah, dy, aw, optimize=True)]
    raise ValueError(f"unknown layer kind {kind!r}")


def _backward(spec: NetworkSpec, pixels: np.ndarray, grad_output: np.ndarray):
    """Forward pass keeping every node, then the gradient of every node: (nodes, grads)."""
    nodes = [normalize_input(pixels, spec.input_mean, spec.input_scale)]
    for layer in spec.layers:
        nodes.append(run_layer(layer.kind, [nodes[i] for i in layer.inputs], layer.params))
    grads: list = [None] * len(nodes)
    grads[spec.output] = np.asarray(grad_output, np.float64).reshape(nodes[spec.output].shape)
    for index in range(len(spec.layers), 0, -1):
        if grads[index] is None:
            continue
        layer = spec.layers[index - 1]
        parts = layer_backward(layer.kind, [nodes[i] for i in layer.inputs], nodes[index], grads[index], layer.params)
        for src, part in zip(layer.inputs, parts):
            grads[src] = part if grads[src] is None else grads[src] + part
    return nodes, grads


def input_gradient(spec: NetworkSpec, pixels: np.ndarray, grad_output: np.ndarray) -> np.ndarray:
    """Gradient of ``sum(forward(pixels) * grad_output)`` with respect to the NHWC pixels (float64)."""
    _, grads = _backward(spec, pixels, grad_output)
    return grads[0].transpose(0, 2, 3, 1) * np.asarray(spec.input_scale, np.float64)


def parameter_gradients(spec: NetworkSpec, pixels: np.ndarray, grad_output: np.ndarray) -> dict:
    """Gradients of ``sum(forward(pixels) * grad_output)`` for every conv/dense layer: {node: (dW, db)}."""
    nodes, grads = _backward(spec, pixels, grad_output)
    out = {}
    for index, layer in enumerate(spec.layers, start=1):
        dy = grads[index]
        if layer.kind not in ("conv", "dense") or dy is None:
            continue
        x = nodes[layer.inputs[0]]
        p = layer.params
        if layer.kind == "conv":
            win = _windows(x, p["weight"].shape[2:], p["stride"], p["padding"], 0.0)
            dw = np.einsum("nohw,nchwuv->ocuv", dy, win, optimize=True)
            db = dy.sum(axis=(0, 2, 3))
        else:
            dw = dy[:, :, 0, 0].T @ x.reshape(x.shape[0], -1)
            db = dy[:, :, 0, 0].sum(axis=0)
        out[index] = (dw, db if p.get("bias") is not None else None)
    return out


def adam_update(param, grad, m, v, lr, beta1, beta2, eps, step):
    """One Adam step (Kingma & Ba, 2015), in place on float64 copies; returns (param, m, v)."""
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad * grad
    m_hat = m / (1 - beta1 ** step)
    v_hat = v / (1 - beta2 ** step)
    return param - lr * m_hat / (np.sqrt(v_hat) + eps), m, v
