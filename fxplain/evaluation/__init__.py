"""Evaluation: how faithful are explanations? Metrics, planted differences, sanity checks, ``evaluate``.

:func:`evaluate` runs every method (and the baselines) over a dataset and
returns an :class:`EvaluationReport`; the pieces are public too:
:mod:`~fxplain.evaluation.metrics` (region scores, deletion/insertion),
:mod:`~fxplain.evaluation.planted` (planted-difference hybrids),
:mod:`~fxplain.evaluation.correspondence` (per-dimension region maps against
the model's occlusion maps),
:mod:`~fxplain.evaluation.sanity` (model randomisation) and
:mod:`~fxplain.evaluation.baselines`.
"""

from . import baselines, correspondence, metrics, planted, sanity
from .calibration import ThresholdCalibration, calibrate_threshold
from .evaluate import evaluate, load_dataset, sample_pairs
from .report import BASELINES, EvaluationReport

__all__ = ["BASELINES", "EvaluationReport", "ThresholdCalibration", "baselines", "calibrate_threshold", "correspondence", "evaluate", "load_dataset", "metrics", "planted",
           "sample_pairs", "sanity"]
