"""CorrRISE with n_masks="auto": it stops on the split-half stability of its maps, and a fixed run is unchanged."""

from __future__ import annotations

import numpy as np
import pytest

import fxplain
from fxplain.methods.corrrise import AUTO_BLOCK, AUTO_MIN_MASKS


@pytest.fixture(scope="module")
def pair(johns):
    return johns[0][0], johns[0][30]


def test_auto_reports_its_masks_and_gives_the_fixed_runs_maps(model, pair):
    capped = fxplain.Explainer(model, n_masks="auto", tolerance=1e-6, max_masks=300).explain(*pair)
    assert capped.extras["n_masks_used"] == 300  # never stable enough: stops at the cap
    assert -1 <= capped.extras["stability"] < 1 - 1e-6
    fixed = fxplain.Explainer(model, n_masks=300).explain(*pair)
    np.testing.assert_allclose(capped.similarity, fixed.similarity, atol=1e-9)
    np.testing.assert_allclose(capped.dissimilarity, fixed.dissimilarity, atol=1e-9)
    # a fixed run's parameters and extras are what they were before the converged mode
    assert "tolerance" not in fixed.params and "max_masks" not in fixed.params
    assert "n_masks_used" not in fixed.extras
    assert capped.params["n_masks"] == "auto" and capped.params["max_masks"] == 300


def test_auto_stops_as_soon_as_the_halves_agree_and_does_not_depend_on_the_batch_size(model, pair):
    easy = fxplain.Explainer(model, n_masks="auto", tolerance=0.99, batch_size=64).explain(*pair)
    assert easy.extras["n_masks_used"] == AUTO_MIN_MASKS and easy.extras["stability"] >= 0.01
    other = fxplain.Explainer(model, n_masks="auto", tolerance=0.99, batch_size=16).explain(*pair)
    assert other.extras == easy.extras
    np.testing.assert_array_equal(other.similarity, easy.similarity)
    # the halves are compared every second block: a cap two blocks on is where it stops
    more = fxplain.Explainer(model, n_masks="auto", tolerance=1e-6, max_masks=AUTO_MIN_MASKS + 2 * AUTO_BLOCK
                             ).explain(*pair)
    assert more.extras["n_masks_used"] == AUTO_MIN_MASKS + 2 * AUTO_BLOCK


@pytest.mark.parametrize("params, message", [
    ({"n_masks": 500, "tolerance": 0.1}, "only to n_masks='auto'"),
    ({"n_masks": 500, "max_masks": 900}, "only to n_masks='auto'"),
    ({"n_masks": "many"}, "integer >= 2 or 'auto'"),
    ({"n_masks": "auto", "tolerance": 0}, "tolerance"),
    ({"n_masks": "auto", "tolerance": float("nan")}, "tolerance"),
    ({"n_masks": "auto", "max_masks": 50}, "max_masks"),
    ({"n_masks": "auto", "masks": "patches", "correlation": "spearman"}, "pearson"),
])
def test_bad_converged_settings_are_refused(model, params, message):
    with pytest.raises(fxplain.InvalidInputError, match=message):
        fxplain.Explainer(model, method="corrrise", **params)
