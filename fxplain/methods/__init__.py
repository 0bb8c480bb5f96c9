"""Explanation methods: each turns a pair of faces into similarity and dissimilarity maps.

One file per method (:mod:`~fxplain.methods.occlusion`,
:mod:`~fxplain.methods.corrrise`, :mod:`~fxplain.methods.gradient`; the
reconstruction method lives with its decoder in
:mod:`fxplain.reconstruction.method`), a shared base returning
:class:`Evidence`, the fills and score targets perturbations use, the margin
decomposition, integrated paths, and the NumPy twins of the saliency kernels
(:mod:`~fxplain.methods.reference`).
"""

from .base import METHODS, Evidence, Method, register_method
from .corrrise import CorrRISE
from .fills import Fill, fill_image
from .gradient import Gradient
from .occlusion import Occlusion
from .region_maps import RegionMapMethod
from .targets import ScoreTarget

__all__ = ["METHODS", "CorrRISE", "Evidence", "Fill", "Gradient", "Method", "Occlusion", "RegionMapMethod",
           "ScoreTarget", "fill_image", "register_method"]
