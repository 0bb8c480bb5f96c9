"""NumPy kernels of every layer: the textbook definitions the C core is tested against.

Written for clarity, not speed, in :mod:`fxplain.runtime.spec`'s conventions
(NCHW, cross-correlation, floor rounding, zero-padded sums), in float64 so
that the reference is more accurate than the float32 code it checks. Which
kernel serves which layer kind is said once, in :mod:`fxplain.runtime.layers`.
"""

from __future__ import annotations

import numpy as np


def normalize_input(pixels: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """NHWC pixels -> NCHW network input ``(pixel - mean[c]) * scale[c]``."""
    x = (np.asarray(pixels, np.float64) - mean) * scale
    return x.transpose(0, 3, 1, 2)


def _pads(padding, padding_end) -> tuple[int, int, int, int]:
    """(top, left, bottom, right): ``padding_end`` defaults to ``padding`` (symmetric)."""
    end = padding if padding_end is None else padding_end
    return int(padding[0]), int(padding[1]), int(end[0]), int(end[1])


def _windows(x: np.ndarray, kernel, stride, padding, fill: float, padding_end=None,
             dilation=(1, 1)) -> np.ndarray:
    """Sliding windows of an NCHW array: (N, C, OH, OW, KH, KW), taps ``dilation`` apart."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    pt, pl, pb, pr = _pads(padding, padding_end)
    eh, ew = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    padded = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=fill)
    view = np.lib.stride_tricks.sliding_window_view(padded, (eh, ew), axis=(2, 3))[..., ::dh, ::dw]
    oh = (x.shape[2] + pt + pb - eh) // sh + 1
    ow = (x.shape[3] + pl + pr - ew) // sw + 1
    return view[:, :, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw]


def conv2d(x, weight, bias, stride, padding, padding_end=None, dilation=(1, 1), groups=1):
    """Grouped, dilated cross-correlation.

    ``y[n,o] = sum_{i,u,v} w[o,i,u,v] x[n, g*I/G + i, s*h + d*u - p, s*w + d*v - p] + b[o]`` where
    output ``o`` belongs to group ``g = o // (O/G)`` and reads that group's ``I/G`` input channels.
    """
    weight = np.asarray(weight, np.float64)
    o, i, kh, kw = weight.shape
    win = _windows(x, (kh, kw), stride, padding, 0.0, padding_end, dilation)
    n, c, oh, ow = win.shape[:4]
    win = win.reshape(n, groups, c // groups, oh, ow, kh, kw)
    y = np.einsum("ngchwuv,gocuv->ngohw", win, weight.reshape(groups, o // groups, i, kh, kw), optimize=True)
    y = y.reshape(n, o, oh, ow)
    if bias is not None:
        y = y + np.asarray(bias, np.float64)[None, :, None, None]
    return y


def max_pool(x, kernel, stride, padding, padding_end=None):
    """Maximum over each window; padded cells never win."""
    return _windows(x, kernel, stride, padding, -np.inf, padding_end).max(axis=(4, 5))


def avg_pool(x, kernel, stride, padding, padding_end=None):
    """Mean over each window, counting only cells inside the input."""
    total = _windows(x, kernel, stride, padding, 0.0, padding_end).sum(axis=(4, 5))
    ones = np.ones((1, 1) + x.shape[2:])
    count = _windows(ones, kernel, stride, padding, 0.0, padding_end).sum(axis=(4, 5))
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


def sigmoid(x):
    """``1 / (1 + exp(-x))``, without overflow for large ``|x|``."""
    return np.exp(-np.logaddexp(0.0, -x))


def leaky_relu(x, alpha):
    """``x`` where positive, ``alpha * x`` elsewhere."""
    return np.where(x > 0, x, x * float(alpha))


def mul(a, b):
    """``a * b``: equal shapes, or one of them (N, C, 1, 1) broadcast over the other's rows and columns."""
    return a * b


def mul_backward(a, b, dy):
    """Gradients of :func:`mul`: ``dy * b`` and ``dy * a``, each summed back to its input's shape."""
    def reduce(grad, shape):
        axes = tuple(k for k in (2, 3) if shape[k] == 1 and grad.shape[k] != 1)
        return grad.sum(axis=axes, keepdims=True) if axes else grad
    return [reduce(dy * b, a.shape), reduce(dy * a, b.shape)]


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


# ---- backward: vector-Jacobian products -----------------------------------


def conv2d_backward(dy, weight, stride, padding, input_shape, padding_end=None, dilation=(1, 1), groups=1):
    """Gradient of a (grouped, dilated) cross-correlation with respect to its input."""
    n, c, h, w = input_shape
    (sh, sw), (dh, dw) = stride, dilation
    pt, pl, pb, pr = _pads(padding, padding_end)
    o, i, kh, kw = weight.shape
    oh, ow = dy.shape[2:]
    dx = np.zeros((n, groups, i, h + pt + pb + sh + dh * kh, w + pl + pr + sw + dw * kw))
    wt = np.asarray(weight, np.float64).reshape(groups, o // groups, i, kh, kw)
    dyg = dy.reshape(n, groups, o // groups, oh, ow)
    for u in range(kh):
        for v in range(kw):
            dx[..., u * dh:u * dh + sh * oh:sh, v * dw:v * dw + sw * ow:sw] += np.einsum(
                "ngohw,goc->ngchw", dyg, wt[..., u, v])
    return dx.reshape(n, c, dx.shape[3], dx.shape[4])[:, :, pt:pt + h, pl:pl + w]


def pool_backward(x, dy, kind, kernel, stride, padding, padding_end=None):
    """Gradient of a max or average pool (``kind`` "max" / "avg") with respect to its input."""
    (kh, kw), (sh, sw) = kernel, stride
    pt, pl, pb, pr = _pads(padding, padding_end)
    n, c, h, w = x.shape
    oh, ow = dy.shape[2:]
    dx = np.zeros((n, c, h + pt + pb + kh, w + pl + pr + kw))
    if kind == "max":
        padded = np.pad(x, ((0, 0), (0, 0), (pt, pb + kh), (pl, pr + kw)), constant_values=-np.inf)
        for i in range(oh):
            for j in range(ow):
                window = padded[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw].reshape(n, c, -1)
                arg = window.argmax(axis=2)
                u, v = np.unravel_index(arg, (kh, kw))
                nn, cc = np.meshgrid(np.arange(n), np.arange(c), indexing="ij")
                np.add.at(dx, (nn, cc, i * sh + u, j * sw + v), dy[:, :, i, j])
    else:
        inside = np.zeros((h + pt + pb + kh, w + pl + pr + kw))
        inside[pt:pt + h, pl:pl + w] = 1
        for i in range(oh):
            for j in range(ow):
                cells = inside[i * sh:i * sh + kh, j * sw:j * sw + kw]
                dx[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw] += dy[:, :, i:i + 1, j:j + 1] * cells / cells.sum()
    return dx[:, :, pt:pt + h, pl:pl + w]


def conv2d_weight_gradient(x, dy, kernel, stride, padding, padding_end=None, dilation=(1, 1), groups=1):
    """Gradients of a (grouped, dilated) cross-correlation's weights ``(O, I/G, kh, kw)`` and bias ``(O,)``."""
    win = _windows(x, kernel, stride, padding, 0.0, padding_end, dilation)
    n, c, oh, ow, kh, kw = win.shape
    o = dy.shape[1]
    win = win.reshape(n, groups, c // groups, oh, ow, kh, kw)
    dyg = dy.reshape(n, groups, o // groups, oh, ow)
    dw = np.einsum("ngohw,ngchwuv->gocuv", dyg, win, optimize=True).reshape(o, c // groups, kh, kw)
    return dw, dy.sum(axis=(0, 2, 3))


def dense_weight_gradient(x, dy):
    """Gradients of a dense layer's weights ``(O, C*H*W)`` and bias ``(O,)``."""
    return dy[:, :, 0, 0].T @ x.reshape(x.shape[0], -1), dy[:, :, 0, 0].sum(axis=0)


def resize_backward(x_shape, dy, mode):
    """Gradient of :func:`resize` with respect to its input (the transposed matrices)."""
    ah = resize_matrix(x_shape[2], dy.shape[2], mode)
    aw = resize_matrix(x_shape[3], dy.shape[3], mode)
    return np.einsum("oh,ncop,pw->nchw", ah, dy, aw, optimize=True)


def adam_update(param, grad, m, v, lr, beta1, beta2, eps, step):
    """One Adam step (Kingma & Ba, 2015), in place on float64 copies; returns (param, m, v)."""
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad * grad
    m_hat = m / (1 - beta1 ** step)
    v_hat = v / (1 - beta2 ** step)
    return param - lr * m_hat / (np.sqrt(v_hat) + eps), m, v
