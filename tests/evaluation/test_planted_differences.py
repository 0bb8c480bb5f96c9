"""Faithfulness: a planted difference must show up in the dissimilarity map.

Hybrids of johns chips (eyes, nose or mouth copied from another identity)
are compared with a genuine partner of the base identity; the hybrid's
dissimilarity map should point into the replaced region.
"""

from __future__ import annotations

import numpy as np
import pytest

import fxplain
from fxplain.evaluation import metrics
from fxplain.evaluation.planted import planted_difference_pairs, region_mask

METHODS = {"corrrise": {"n_masks": 500}, "occlusion": {}}


@pytest.fixture(scope="module")
def planted(johns):
    images, identities, _ = johns
    return planted_difference_pairs(images, identities, per_region=5, seed=0)


def _planted_scores(explainer, planted, label):
    """Pointing-game hits (8 px tolerance), energy in region and region area of the hybrids' maps."""
    results = explainer.explain_pairs([(p.hybrid, p.partner) for p in planted])
    hits = np.array([metrics.pointing_hit(r.dissimilarity[0], p.box, tolerance=8) for r, p in zip(results, planted)])
    energy = np.array([metrics.energy_in_region(r.dissimilarity[0], p.box) for r, p in zip(results, planted)])
    area = np.array([region_mask((150, 150), p.box).mean() for p in planted])
    print(f"{label}: pointing-game hit rate {hits.mean():.2f} over {len(planted)} hybrids; "
          f"dissimilarity energy in region {energy.mean():.2f} (region area {area.mean():.2f})")
    return hits, energy, area


@pytest.mark.parametrize("method", sorted(METHODS))
def test_dissimilarity_concentrates_in_the_planted_region(model, planted, method):
    ex = fxplain.Explainer(model, method=method, seed=0, **METHODS[method])
    hits, energy, area = _planted_scores(ex, planted, method)
    assert hits.mean() >= 0.6
    assert energy.mean() >= 2.5 * area.mean()


def test_planted_pairs_are_well_formed(johns, planted):
    images, identities, _ = johns
    assert len(planted) == 15 and {p.region for p in planted} == {"eyes", "nose", "mouth"}
    for p in planted:
        top, left, bottom, right = p.box
        assert identities[p.base] == identities[p.partner_index] != identities[p.donor]
        assert p.base != p.partner_index
        np.testing.assert_array_equal(p.hybrid[top:bottom, left:right], images[p.donor][top:bottom, left:right])
        outside = ~region_mask((150, 150), p.box)
        np.testing.assert_array_equal(p.hybrid[outside], images[p.base][outside])


def test_metric_helpers_on_known_maps():
    box = (10, 10, 20, 20)
    perfect = region_mask((50, 50), box).astype(float)
    assert metrics.pointing_hit(perfect, box) and metrics.energy_in_region(perfect, box) == 1.0
    inverted = 1.0 - perfect
    assert not metrics.pointing_hit(inverted, box) and metrics.energy_in_region(inverted, box) == 0.0
    assert metrics.energy_in_region(np.zeros((50, 50)), box) == 0.0
    shifted = np.zeros((50, 50))
    shifted[22, 22] = 1
    assert not metrics.pointing_hit(shifted, box) and metrics.pointing_hit(shifted, box, tolerance=3)


def test_integrated_gradient_maps_on_planted_differences(model, planted):
    """The gradient method's integrated variant, held to the perturbation methods' bar.

    Measured: pointing 0.73, mass in region 0.34 (area 0.10), on seeds 0, 1
    and 2 alike. Without the SmoothGrad noise the maximum lands on the nose
    tip for most eyes and mouth hybrids (0.60).
    """
    ex = fxplain.Explainer(model, method="gradient", variant="integrated", seed=0)
    hits, energy, area = _planted_scores(ex, planted, "gradient (integrated)")
    assert hits.mean() >= 0.6
    assert energy.mean() >= 2.5 * area.mean()


@pytest.mark.parametrize("variant", ["net", "split"])
def test_per_dimension_gradient_maps_on_planted_differences(model, planted, variant):
    """The raw per-dimension maps are measured here, not held to the perturbation methods' bar.

    Raw gradients of dlib's ResNet are noisy: on these hybrids the net map
    (S = sum_k c_k R_k) points into the region in few cases and the split
    (xSSAB-style) map in about half; both numbers are reported in
    docs/explanations.md. What must hold: the split map's dissimilarity mass
    concentrates in the planted region clearly above the region's share of
    the image.
    """
    ex = fxplain.Explainer(model, method="gradient", variant=variant)
    hits, energy, area = _planted_scores(ex, planted, f"gradient ({variant})")
    if variant == "split":
        assert energy.mean() >= 1.3 * area.mean()
        assert hits.mean() >= 0.3


_SMOOTH = pytest.mark.xfail(strict=True, reason="per-dimension maps through the combiner are smooth: measured "
                             "pointing 0.13 (net) / 0.47 (split), mass in region 0.05 / 0.21 (area 0.10) on these 15 "
                             "hybrids; see docs/reconstruction.md. strict: passing means update "
                             "the docs")


# the counterfactual variant with the leaky-ReLU default decoder: pointing 0.60, mass 0.25 (area 0.10) on these 15
@pytest.mark.parametrize("variant", ["counterfactual", pytest.param("net", marks=_SMOOTH),
                                     pytest.param("split", marks=_SMOOTH)])
def test_reconstruction_maps_on_planted_differences(model, planted, default_decoder, variant):
    """The decoder's maps, held to the perturbation methods' bar (the module's own target, pointing >= 0.5 on
    held-out faces, is checked in tests/reconstruction/test_reconstruction.py)."""
    ex = fxplain.Explainer(model, method="reconstruction", decoder=default_decoder, variant=variant)
    hits, energy, area = _planted_scores(ex, planted, f"reconstruction ({variant})")
    assert hits.mean() >= 0.6
    assert energy.mean() >= 2.5 * area.mean()
