"""Build the C core's network object from a :class:`~fxplain._graph.NetworkSpec`."""

from __future__ import annotations

import numpy as np

from . import _core
from ._graph import NetworkSpec


def _f32(array) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=np.float32)


def build_core_net(spec: NetworkSpec) -> _core.Net:
    """Create, fill and finalize a ``_core.Net`` running ``spec``.

    Node ids of the spec and of the core coincide because layers are added
    in order; the assertion below guards that contract.
    """
    net = _core.Net(*spec.input_shape)
    net.set_input_normalization(_f32(spec.input_mean), _f32(spec.input_scale))
    for index, layer in enumerate(spec.layers):
        p = layer.params
        src = layer.inputs[0]
        if layer.kind == "conv":
            bias = None if p.get("bias") is None else _f32(p["bias"])
            node = net.add_conv(src, _f32(p["weight"]), bias, tuple(p["stride"]), tuple(p["padding"]))
        elif layer.kind == "scale_shift":
            node = net.add_scale_shift(src, _f32(p["scale"]), _f32(p["shift"]))
        elif layer.kind == "relu":
            node = net.add_relu(src)
        elif layer.kind == "prelu":
            node = net.add_prelu(src, _f32(p["slope"]))
        elif layer.kind in ("max_pool", "avg_pool"):
            node = net.add_pool(src, layer.kind[:3], tuple(p["kernel"]), tuple(p["stride"]),
                                tuple(p["padding"]))
        elif layer.kind == "global_avg_pool":
            node = net.add_global_avg_pool(src)
        elif layer.kind == "sum":
            node = net.add_sum(src, layer.inputs[1])
        elif layer.kind == "dense":
            bias = None if p.get("bias") is None else _f32(p["bias"])
            node = net.add_dense(src, _f32(p["weight"]), bias)
        elif layer.kind == "reshape":
            node = net.add_reshape(src, tuple(int(v) for v in p["shape"]))
        elif layer.kind == "resize":
            node = net.add_resize(src, tuple(int(v) for v in p["size"]), p["mode"])
        else:  # NetworkSpec.add already rejects unknown kinds
            raise AssertionError(layer.kind)
        assert node == index + 1, "core node ids must follow the spec's layer order"
    net.finalize(spec.output)
    return net
