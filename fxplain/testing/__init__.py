"""Explanation checks for a team's own test suite: a pytest plugin and assertion helpers.

>>> from fxplain.testing import assert_beats_baselines
>>> def test_corrrise_beats_the_baselines(fxplain_model, fxplain_pairs):
...     assert_beats_baselines(fxplain_model, fxplain_pairs, method="corrrise")

* :mod:`~fxplain.testing.plugin`: the pytest plugin (options ``--fxplain-model``,
  ``--fxplain-data``, ``--fxplain-pairs``, ``--fxplain-report``; fixtures
  ``fxplain_model``, ``fxplain_dataset``, ``fxplain_pairs``,
  ``fxplain_report_dir``), installed with fxplain as a ``pytest11`` entry point;
* :mod:`~fxplain.testing.assertions`: the assertions, whose failure messages
  quote the numbers;
* :mod:`~fxplain.testing.faithfulness`: the numbers, from fxplain's evaluation
  pieces, and :func:`explain` (explanations kept for the session);
* :mod:`~fxplain.testing.pairs`: the few labelled pairs a test uses;
* :mod:`~fxplain.testing.recording`: the numbers written to the report folder.

This package does not import pytest (only the plugin module does).
See docs/testing.md.
"""

from .assertions import (
    assert_beats_baselines,
    assert_region_shares,
    assert_sanity_check,
    assert_stable_under_seed,
)
from .faithfulness import QUICK_PARAMS, explain
from .pairs import choose_pairs

__all__ = ["QUICK_PARAMS", "assert_beats_baselines", "assert_region_shares", "assert_sanity_check",
           "assert_stable_under_seed", "choose_pairs", "explain"]
