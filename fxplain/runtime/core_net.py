"""Build the C core's network object from a :class:`~fxplain.runtime.spec.NetworkSpec`."""

from __future__ import annotations

import numpy as np

from .. import _core
from .layers import LAYERS
from .spec import NetworkSpec


def build_core_net(spec: NetworkSpec) -> _core.Net:
    """Create, fill and finalize a ``_core.Net`` running ``spec``.

    Each layer is added by its kind's builder (:data:`fxplain.runtime.layers.LAYERS`).
    Node ids of the spec and of the core coincide because layers are added
    in order; the assertion below guards that contract.
    """
    net = _core.Net(*spec.input_shape)
    net.set_input_normalization(np.ascontiguousarray(spec.input_mean, np.float32),
                                np.ascontiguousarray(spec.input_scale, np.float32))
    for index, layer in enumerate(spec.layers):
        node = LAYERS[layer.kind].build(net, layer.inputs, layer.params)
        assert node == index + 1, "core node ids must follow the spec's layer order"
    net.finalize(spec.output)
    return net
