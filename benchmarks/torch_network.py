"""Run a :class:`fxplain.runtime.spec.NetworkSpec` in PyTorch: the benchmarks' baseline.

The module is built from the same spec as fxplain's C core and NumPy reference,
so all three compute the same function and their speed can be compared. It is
plain eager PyTorch (``torch.nn.functional`` ops, float32, eval mode, no
``torch.compile``): what a user would get by porting the network by hand.

Only ``torch`` and ``numpy`` are needed here; the spec is duck-typed (anything
with ``input_shape``, ``input_mean``, ``input_scale``, ``layers``, ``output``
and ``shapes()``), so this file does not import fxplain.

Two ways to build a module:

* :func:`build_torch_module` -- inference: parameters are frozen buffers
  (used by the forward, explanation and gradient benchmarks);
* :func:`trainable_torch_module` -- training: conv and dense weights and
  biases are ``nn.Parameter`` objects, returned with a map node id -> (weight,
  bias) so that an optimiser can be set up and compared layer by layer with
  fxplain's (used by ``bench_decoder_training.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

#: Default memory format of :func:`build_torch_module`. channels_last is the
#: faster one here (2 AVX-512 cores, torch 2.13.0+cpu with oneDNN 3.12, 2
#: threads, eager; bench_forward.py): batch 1 ~195 vs ~135 img/s, batch 64
#: ~395 vs ~270 img/s. oneDNN's convolutions then read and write NHWC directly
#: instead of reordering every activation to and from NCHW, and the permuted
#: NHWC input needs no copy; so it is the default.
DEFAULT_CHANNELS_LAST = True


def _tensor(array: Any) -> torch.Tensor:
    """A float32 copy of a spec parameter (the spec keeps NumPy arrays)."""
    return torch.tensor(np.asarray(array, dtype=np.float32))


def _channel_vector(array: Any) -> torch.Tensor:
    """A per-channel parameter shaped (1, C, 1, 1) so that it broadcasts over NCHW."""
    return _tensor(array).reshape(1, -1, 1, 1)


class _Op(nn.Module):
    """One layer of the spec; ``forward`` takes the layer's input tensors.

    ``overwritable[k]`` is True when input ``k`` is read by no later layer, so
    the op may write its result into it. Set by :class:`TorchNetwork`.
    """

    overwritable: tuple[bool, ...] = ()

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


def _end_padding(padding: Any, padding_end: Any) -> tuple[int, int]:
    """fxplain's ``padding_end`` (bottom, right); absent or None means ``padding`` (top, left)."""
    return tuple(int(p) for p in (padding if padding_end is None else padding_end))


class _Conv(_Op):
    """Cross-correlation with optional bias, groups and dilation (``F.conv2d``).

    Asymmetric padding (fxplain's ``padding_end`` differing from ``padding``)
    has no ``F.conv2d`` argument: the input is zero-padded with ``F.pad`` first,
    as torch's own ONNX importers do.
    """

    def __init__(self, weight: Any, bias: Any, stride: tuple[int, int], padding: tuple[int, int],
                 padding_end: Any = None, dilation: Any = None, groups: Any = None):
        super().__init__()
        self.register_buffer("weight", _tensor(weight))
        self.register_buffer("bias", None if bias is None else _tensor(bias))
        self.stride = tuple(int(s) for s in stride)
        self.padding = tuple(int(p) for p in padding)
        self.padding_end = _end_padding(padding, padding_end)
        self.dilation = (1, 1) if dilation is None else tuple(int(d) for d in dilation)
        self.groups = 1 if groups is None else int(groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # F.conv2d picks the kernel: oneDNN for most layers, but at batch 1 its
        # im2col + MKL GEMM path for small inputs (< 20480 elements). Calling
        # torch.mkldnn_convolution directly was measured slower for those
        # layers (e.g. 256x4x4: 130 vs 220 us), so we leave the choice to torch.
        padding = self.padding
        if self.padding_end != self.padding:
            (top, left), (bottom, right) = self.padding, self.padding_end
            x = F.pad(x, (left, right, top, bottom))
            padding = (0, 0)
        return F.conv2d(x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)


class _ScaleShift(_Op):
    """Per-channel affine map ``x * scale[c] + shift[c]`` (dlib's ``affine_``, a frozen batch norm)."""

    def __init__(self, scale: Any, shift: Any):
        super().__init__()
        self.register_buffer("scale", _channel_vector(scale))
        self.register_buffer("shift", _channel_vector(shift))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # addcmul is one fused pass instead of a multiply and an add; writing
        # into a dead input avoids a fresh allocation (see TorchNetwork).
        if self.overwritable[0]:
            return torch.addcmul(self.shift, x, self.scale, out=x)
        return torch.addcmul(self.shift, x, self.scale)


class _ReLU(_Op):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x, inplace=self.overwritable[0])


class _PReLU(_Op):
    """``x`` where positive, ``slope[c] * x`` elsewhere."""

    def __init__(self, slope: Any):
        super().__init__()
        self.register_buffer("slope", _tensor(slope))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.prelu(x, self.slope)


class _Pool(_Op):
    """Max or average pooling with floor rounding; average excludes padded cells.

    With asymmetric padding (``padding_end``) the input is padded explicitly:
    with -inf for max pooling; for average pooling the sums of the zero-padded
    input are divided by the counts of real cells (a pooled padded mask).
    """

    def __init__(self, kind: str, kernel: tuple[int, int], stride: tuple[int, int],
                 padding: tuple[int, int], padding_end: Any = None):
        super().__init__()
        self.kind = kind
        self.kernel = tuple(int(k) for k in kernel)
        self.stride = tuple(int(s) for s in stride)
        self.padding = tuple(int(p) for p in padding)
        self.padding_end = _end_padding(padding, padding_end)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding_end != self.padding:
            (top, left), (bottom, right) = self.padding, self.padding_end
            pads = (left, right, top, bottom)
            if self.kind == "max_pool":
                return F.max_pool2d(F.pad(x, pads, value=float("-inf")), self.kernel, self.stride)
            total = F.avg_pool2d(F.pad(x, pads), self.kernel, self.stride, divisor_override=1)
            ones = F.pad(torch.ones_like(x[:1, :1]), pads)
            return total / F.avg_pool2d(ones, self.kernel, self.stride, divisor_override=1)
        if self.kind == "max_pool":
            # Implicit padding is -inf in max_pool2d, so padded cells never win.
            return F.max_pool2d(x, self.kernel, self.stride, self.padding, ceil_mode=False)
        return F.avg_pool2d(x, self.kernel, self.stride, self.padding, ceil_mode=False,
                            count_include_pad=False)


class _GlobalAvgPool(_Op):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3), keepdim=True)


class _PaddedSum(_Op):
    """``a + b``, zero-padding both at the end of C, H and W to the larger shape (dlib's ``add_prev``)."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if a.shape == b.shape:  # the common case: no padding
            if self.overwritable[0]:
                return a.add_(b)
            if self.overwritable[1]:
                return b.add_(a)
            return a + b
        target = [max(p, q) for p, q in zip(a.shape[1:], b.shape[1:])]
        return _pad_to(a, target) + _pad_to(b, target)


def _pad_to(x: torch.Tensor, target: list[int]) -> torch.Tensor:
    """Zero-pad an NCHW tensor at the end of C, H and W up to ``target`` = [C, H, W]."""
    c, h, w = x.shape[1:]
    if [c, h, w] == target:
        return x
    # F.pad lists (before, after) pairs from the last axis backwards: W, H, C.
    return F.pad(x, (0, target[2] - w, 0, target[1] - h, 0, target[0] - c))


class _Dense(_Op):
    """Fully connected on the C,H,W-flattened input; output (N, O, 1, 1) like every node."""

    def __init__(self, weight: Any, bias: Any):
        super().__init__()
        self.register_buffer("weight", _tensor(weight))
        self.register_buffer("bias", None if bias is None else _tensor(bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # flatten follows the logical NCHW order whatever the memory format.
        y = F.linear(x.flatten(1), self.weight, self.bias)
        return y[:, :, None, None]


class _Reshape(_Op):
    """The input's values in C, H, W order viewed as (N, C', H', W') (fxplain's ``reshape``)."""

    def __init__(self, shape: tuple[int, int, int]):
        super().__init__()
        self.shape = tuple(int(s) for s in shape)
        # Set by torch_channels_last: the result is then handed on in NHWC memory
        # like every other activation (a view of a dense output is plain NCHW).
        self.channels_last = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # reshape follows the logical NCHW order whatever x's memory format
        # (it copies only when x is not NCHW-contiguous).
        y = x.reshape((x.shape[0],) + self.shape)
        return y.contiguous(memory_format=torch.channels_last) if self.channels_last else y


class _Resize(_Op):
    """Resampling to ``size`` (H, W) with half-pixel centres (fxplain's ``resize``).

    fxplain: output o samples the input at ``(o + 0.5) * in / out - 0.5``,
    clamped to the input for bilinear; nearest takes the cell that point
    falls in. That is ``F.interpolate`` with ``mode="bilinear",
    align_corners=False`` (no antialias) and ``mode="nearest-exact"``
    (plain ``"nearest"`` is torch's legacy ``floor(o * in / out)``).
    """

    def __init__(self, size: tuple[int, int], mode: str):
        super().__init__()
        if mode not in ("bilinear", "nearest"):
            raise ValueError(f"resize mode must be 'bilinear' or 'nearest', got {mode!r}")
        self.size = tuple(int(s) for s in size)
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "bilinear":
            return F.interpolate(x, size=self.size, mode="bilinear", align_corners=False, antialias=False)
        return F.interpolate(x, size=self.size, mode="nearest-exact")


class _Sigmoid(_Op):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x)


class _LeakyReLU(_Op):
    """``x`` where positive, ``alpha * x`` elsewhere."""

    def __init__(self, alpha: float):
        super().__init__()
        self.alpha = float(alpha)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x, self.alpha, inplace=self.overwritable[0])


class _Mul(_Op):
    """``a * b``: equal shapes, or a (N, C, 1, 1) gate broadcast over the other (squeeze-excitation)."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a * b


class _Concat(_Op):
    """The two inputs stacked along channels."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.cat((a, b), dim=1)


_BUILDERS: dict[str, Callable[[dict], _Op]] = {
    "conv": lambda p: _Conv(p["weight"], p.get("bias"), p["stride"], p["padding"], p.get("padding_end"),
                            p.get("dilation"), p.get("groups")),
    "scale_shift": lambda p: _ScaleShift(p["scale"], p["shift"]),
    "relu": lambda p: _ReLU(),
    "prelu": lambda p: _PReLU(p["slope"]),
    "max_pool": lambda p: _Pool("max_pool", p["kernel"], p["stride"], p["padding"], p.get("padding_end")),
    "avg_pool": lambda p: _Pool("avg_pool", p["kernel"], p["stride"], p["padding"], p.get("padding_end")),
    "global_avg_pool": lambda p: _GlobalAvgPool(),
    "sum": lambda p: _PaddedSum(),
    "dense": lambda p: _Dense(p["weight"], p.get("bias")),
    "reshape": lambda p: _Reshape(p["shape"]),
    "resize": lambda p: _Resize(p["size"], p["mode"]),
    "sigmoid": lambda p: _Sigmoid(),
    "mul": lambda p: _Mul(),
    "leaky_relu": lambda p: _LeakyReLU(p["alpha"]),
    "concat": lambda p: _Concat(),
}


def _last_uses(inputs: list[tuple[int, ...]], output: int) -> list[list[int]]:
    """For each layer, the nodes that no later layer reads (so they can be dropped after it).

    Dropping dead activations early keeps the working set small, and a layer
    may overwrite an input that dies with it (see :class:`TorchNetwork`).
    """
    last: dict[int, int] = {}
    for index, srcs in enumerate(inputs):
        for src in srcs:
            last[src] = index
    release: list[list[int]] = [[] for _ in inputs]
    for node, index in last.items():
        if node != output:
            release[index].append(node)
    return release


class TorchNetwork(nn.Module):
    """A :class:`NetworkSpec` as an eager PyTorch module.

    ``forward`` takes float32 pixels (0-255) shaped (N, H, W, C), normalises
    them with the spec's ``input_mean`` / ``input_scale``, runs the layers in
    order and returns the output node: shaped (N, D) if it is 1x1 spatially
    (e.g. a network ending in ``dense``), else (N, C, H, W).

    Element-wise layers (scale_shift, relu, same-shape sum) write into an
    input that no later layer reads, as ``nn.ReLU(inplace=True)`` does in
    torchvision's ResNets: a fresh multi-megabyte output is page-faulted in
    on every call, which made relu and scale_shift ~10x slower than in place.
    Measured at batch 64 this makes the forward pass ~15 % faster with
    channels_last (~8 % NCHW); batch 1 is unchanged. Without it the baseline
    would be slower than a careful eager user gets.
    """

    def __init__(self, spec: Any):
        super().__init__()
        spec.shapes()  # validates the graph before anything is built
        missing = sorted({layer.kind for layer in spec.layers} - set(_BUILDERS))
        if missing:
            raise NotImplementedError(f"benchmarks/torch_network.py has no PyTorch builder for layer kind(s) "
                                      f"{missing}: add them to _BUILDERS beside fxplain/runtime/layers.py")
        self.ops = nn.ModuleList(_BUILDERS[layer.kind](layer.params) for layer in spec.layers)
        self.inputs = [tuple(int(i) for i in layer.inputs) for layer in spec.layers]
        self.output = int(spec.output) % (len(spec.layers) + 1)  # allow output=-1
        self.release = _last_uses(self.inputs, self.output)
        for index, op in enumerate(self.ops):
            op.overwritable = self._overwritable(index)
        # (pixel - mean) * scale == pixel * scale + (-mean * scale): one fused pass.
        mean = np.asarray(spec.input_mean, np.float64)
        scale = np.asarray(spec.input_scale, np.float64)
        self.register_buffer("input_scale", _tensor(scale))
        self.register_buffer("input_shift", _tensor(-mean * scale))
        self.channels_last = False

    def _overwritable(self, index: int) -> tuple[bool, ...]:
        """Which inputs of layer ``index`` die with it (and are not read twice by it)."""
        srcs = self.inputs[index]
        return tuple(src in self.release[index] and srcs.count(src) == 1 for src in srcs)

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        """NHWC pixels -> NCHW network input ``(pixel - mean[c]) * scale[c]``."""
        x = torch.addcmul(self.input_shift, pixels, self.input_scale)  # broadcasts over trailing C
        x = x.permute(0, 3, 1, 2)
        # The permuted NHWC buffer already *is* a channels_last NCHW tensor; only
        # the plain-NCHW path needs a copy.
        return x if self.channels_last else x.contiguous()

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        nodes: dict[int, torch.Tensor] = {0: self.normalize(pixels)}
        for index, op in enumerate(self.ops):
            nodes[index + 1] = op(*(nodes[i] for i in self.inputs[index]))
            for dead in self.release[index]:
                del nodes[dead]
        out = nodes[self.output]
        return out.flatten(1) if out.shape[2:] == (1, 1) else out


def torch_channels_last(module: TorchNetwork) -> TorchNetwork:
    """Switch a :class:`TorchNetwork` to channels_last (NHWC) activations, in place.

    Convolution weights are stored channels_last too, so that oneDNN needs no
    weight reorder per call. Returns the module for chaining.
    """
    module.channels_last = True
    for op in module.ops:
        if isinstance(op, _Conv):
            if isinstance(op.weight, nn.Parameter):  # a trainable module: keep it a parameter
                op.weight.data = op.weight.data.contiguous(memory_format=torch.channels_last)
            else:
                op.weight = op.weight.contiguous(memory_format=torch.channels_last)
        elif isinstance(op, _Reshape):
            op.channels_last = True
    return module


def differentiable(module: TorchNetwork) -> TorchNetwork:
    """Let autograd (and ``torch.func``) differentiate a :class:`TorchNetwork`, in place.

    The forward pass overwrites dead inputs (see :class:`TorchNetwork`). Autograd
    rejects only one of these overwrites: ``addcmul(..., out=x)`` of
    scale_shift, since ``out=`` ops are not differentiable. In-place ReLU and
    sums stay: autograd supports them, and its version counters would raise
    (not silently miscompute) if one clobbered a tensor saved for backward.
    Returns the module for chaining.
    """
    for op in module.ops:
        if isinstance(op, _ScaleShift):
            op.overwritable = tuple(False for _ in op.overwritable)
    return module


def build_torch_module(spec: Any, channels_last: bool = DEFAULT_CHANNELS_LAST) -> TorchNetwork:
    """Build an eval-mode float32 PyTorch module computing ``spec``.

    Parameters
    ----------
    spec : NetworkSpec
        The network; its parameters are copied into the module's buffers.
    channels_last : bool, optional
        Use NHWC activations (see :data:`DEFAULT_CHANNELS_LAST` for why it is the default).

    Returns
    -------
    TorchNetwork
        Takes float32 NHWC pixels (N, H, W, C); see :class:`TorchNetwork`.
    """
    module = TorchNetwork(spec).eval()
    module.requires_grad_(False)
    return torch_channels_last(module) if channels_last else module


def trainable_torch_module(spec: Any, channels_last: bool = DEFAULT_CHANNELS_LAST
                           ) -> tuple[TorchNetwork, dict[int, tuple[nn.Parameter, nn.Parameter | None]]]:
    """Build a float32 PyTorch module of ``spec`` whose conv and dense parameters train.

    The module is :class:`TorchNetwork` made :func:`differentiable`, with every
    conv and dense ``weight`` and ``bias`` turned from a buffer into an
    ``nn.Parameter`` (a copy of the spec's values, so the spec is never
    changed); everything else (input normalisation, scale_shift, prelu) stays
    a frozen buffer. Its ``parameters()`` are exactly the trainable ones, in
    node order, ready for a ``torch.optim`` optimiser.

    Parameters
    ----------
    spec : NetworkSpec
        The network and its initial parameters.
    channels_last : bool, optional
        NHWC activations and conv weights (see :data:`DEFAULT_CHANNELS_LAST`).
        The weights' *values* are the same either way; only their strides differ.

    Returns
    -------
    module : TorchNetwork
        Takes float32 NHWC input (N, H, W, C), in train mode.
    parameters : dict
        Node id (as in the spec: layer ``i`` is node ``i + 1``) -> ``(weight,
        bias)`` of every conv and dense layer; ``bias`` is None for a layer
        without one. Weights keep the spec's shapes ((O, I, kh, kw) or (O, C*H*W)).
    """
    module = differentiable(TorchNetwork(spec))
    module.requires_grad_(False)  # the buffers; parameters are created below
    parameters: dict[int, tuple[nn.Parameter, nn.Parameter | None]] = {}
    for index, op in enumerate(module.ops):
        if not isinstance(op, (_Conv, _Dense)):
            continue
        pair = []
        for name in ("weight", "bias"):
            value = getattr(op, name)
            delattr(op, name)  # drop the buffer (a buffer and a parameter cannot share a name)
            param = None if value is None else nn.Parameter(value.detach().clone())
            setattr(op, name, param)  # registers the parameter (or a plain None attribute)
            pair.append(param)
        parameters[index + 1] = (pair[0], pair[1])
    if channels_last:
        torch_channels_last(module)
    return module.train(), parameters
