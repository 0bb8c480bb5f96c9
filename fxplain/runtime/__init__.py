"""The network runtime: specs of feed-forward networks, the table of layer kinds, the C core's nets.

Layers above build models from a :class:`NetworkSpec` and run them with
:func:`build_core_net`; :mod:`fxplain.runtime.reference` is the NumPy twin
that tests check the core against.
"""

from .core_net import build_core_net
from .layers import LAYER_KINDS, LAYERS, LayerKind
from .spec import Layer, NetworkSpec

__all__ = ["LAYERS", "LAYER_KINDS", "Layer", "LayerKind", "NetworkSpec", "build_core_net"]
