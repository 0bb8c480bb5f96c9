"""CorrRISE with n_masks="auto": it stops on the split-half stability of its maps, and a fixed run is unchanged."""

from __future__ import annotations

import numpy as np
import pytest

import fxplain
from fxplain import _core
from fxplain._util.stats import average_ranks
from fxplain.methods.corrrise import AUTO_MIN_MASKS

ORTHOGONAL_BLOCK = _core.orthogonal_block_size(7)


@pytest.fixture(scope="module")
def pair(johns):
    return johns[0][0], johns[0][30]


@pytest.mark.parametrize("sampling", ["orthogonal", "random"])
def test_auto_reports_its_masks_and_gives_the_fixed_runs_maps(model, pair, sampling):
    capped = fxplain.Explainer(model, n_masks="auto", tolerance=1e-6, max_masks=AUTO_MIN_MASKS, sampling=sampling
                               ).explain(*pair)
    assert capped.extras["n_masks_used"] == [AUTO_MIN_MASKS] * 2  # never stable enough: stops at the cap
    assert all(-1 <= s < 1 - 1e-6 for s in capped.extras["stability"])
    fixed = fxplain.Explainer(model, n_masks=AUTO_MIN_MASKS,
                              **({"sampling": "orthogonal"} if sampling == "orthogonal" else {})
                              ).explain(*pair)
    np.testing.assert_allclose(capped.similarity, fixed.similarity, atol=1e-9)
    np.testing.assert_allclose(capped.dissimilarity, fixed.dissimilarity, atol=1e-9)
    assert "n_masks_used" not in fixed.extras
    assert capped.params["n_masks"] == "auto" and capped.params["max_masks"] == AUTO_MIN_MASKS
    assert capped.params["sampling"] == sampling


def test_a_fixed_random_run_keeps_its_parameters(model, pair):
    fixed = fxplain.Explainer(model, n_masks=40).explain(*pair)
    # a fixed run's parameters and extras are what they were before the converged mode
    assert not {"tolerance", "max_masks", "sampling"} & set(fixed.params)
    explicit = fxplain.Explainer(model, n_masks=40, sampling="random").explain(*pair)
    np.testing.assert_array_equal(explicit.similarity, fixed.similarity)
    assert explicit.params == fixed.params


def test_auto_stops_as_soon_as_the_halves_agree_and_does_not_depend_on_the_batch_size(model, pair):
    # orthogonal blocks (the default): the first comparison is at the first even number of blocks
    # holding AUTO_MIN_MASKS masks
    blocks = -(-AUTO_MIN_MASKS // ORTHOGONAL_BLOCK)
    first_check = (blocks + blocks % 2) * ORTHOGONAL_BLOCK
    easy = fxplain.Explainer(model, n_masks="auto", tolerance=0.99, batch_size=64).explain(*pair)
    assert easy.extras["n_masks_used"] == [first_check] * 2 and min(easy.extras["stability"]) >= 0.01
    other = fxplain.Explainer(model, n_masks="auto", tolerance=0.99, batch_size=16).explain(*pair)
    assert other.extras == easy.extras
    np.testing.assert_array_equal(other.similarity, easy.similarity)
    # random sampling: blocks of AUTO_BLOCK, compared every second block from AUTO_MIN_MASKS on
    random = fxplain.Explainer(model, n_masks="auto", tolerance=0.99, sampling="random").explain(*pair)
    assert random.extras["n_masks_used"] == [AUTO_MIN_MASKS] * 2


def test_each_image_stops_on_its_own(model, pair):
    first = 4 * ORTHOGONAL_BLOCK  # the first comparison
    at_first = fxplain.Explainer(model, n_masks="auto", tolerance=1e-6, max_masks=first).explain(*pair)
    stability = at_first.extras["stability"]
    assert stability[0] != stability[1]
    # a target between the two images' stabilities: the more stable image stops, the other runs on to the cap
    target = (stability[0] + stability[1]) / 2
    run = fxplain.Explainer(model, n_masks="auto", tolerance=1 - target, max_masks=first + 2 * ORTHOGONAL_BLOCK
                            ).explain(*pair)
    early = int(np.argmax(stability))
    assert run.extras["n_masks_used"][early] == first
    assert run.extras["n_masks_used"][1 - early] == first + 2 * ORTHOGONAL_BLOCK
    assert run.extras["stability"][early] == stability[early]
    np.testing.assert_allclose(run.evidence[early], at_first.evidence[early], atol=1e-9)
    assert not np.allclose(run.evidence[1 - early], at_first.evidence[1 - early], atol=1e-6)


def _retest(model, pair, **params):
    maps = [fxplain.Explainer(model, seed=seed, **params).explain(*pair).evidence for seed in (0, 1)]
    return min(np.corrcoef(average_ranks(maps[0][side].ravel()), average_ranks(maps[1][side].ravel()))[0, 1]
               for side in (0, 1))


def test_orthogonal_masks_agree_across_seeds_better_than_as_many_random_ones(model, pair):
    # the variance reduction on the real model: 4 orthogonal blocks against as many random masks
    n = 4 * ORTHOGONAL_BLOCK
    orthogonal = _retest(model, pair, n_masks=n, sampling="orthogonal")
    random = _retest(model, pair, n_masks=n)
    assert orthogonal > random + 0.03, (orthogonal, random)


@pytest.mark.parametrize("params, message", [
    ({"n_masks": 500, "tolerance": 0.1}, "only to n_masks='auto'"),
    ({"n_masks": 500, "max_masks": 900}, "only to n_masks='auto'"),
    ({"n_masks": "many"}, "integer >= 2 or 'auto'"),
    ({"n_masks": "auto", "tolerance": 0}, "tolerance"),
    ({"n_masks": "auto", "tolerance": float("nan")}, "tolerance"),
    ({"n_masks": "auto", "max_masks": 50}, "max_masks"),
    ({"n_masks": "auto", "masks": "patches", "correlation": "spearman"}, "pearson"),
    ({"n_masks": "auto", "masks": "patches"}, "orthogonal"),
    ({"n_masks": "auto", "p_keep": 0.4}, "p_keep=0.5"),
    ({"n_masks": 300, "sampling": "sobol"}, "sampling must be"),
    ({"n_masks": 300, "sampling": ["random"]}, "sampling must be"),
])
def test_bad_converged_settings_are_refused(model, params, message):
    with pytest.raises(fxplain.InvalidInputError, match=message):
        fxplain.Explainer(model, method="corrrise", **params)
