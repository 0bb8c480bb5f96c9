"""Contrastive maps point at a face part pasted from the rival identity (planted contrasts on johns).

A chip of identity P gets its eyes, nose or mouth from a chip of Q; searched
in a gallery of P's and Q's other chips, the probe's pixels that make it
look like Q rather than P should be the pasted ones. Nine cases (three per
region, seed 0, each moving the contrast by at least 0.1), cheap settings;
the bounds are well below the rates measured here (in the comments) and
above chance (the region's area within the 8-px tolerance: 0.18). The full
table, with the pair maps and several seeds, comes from
``scripts/identification_pointing.py`` (docs/identification.md).
"""

from __future__ import annotations

import numpy as np
import pytest

from fxplain.evaluation.planted_contrast import planted_contrast_cases, score_planted_contrast

#: method -> (parameters, bound on the pointing rate over the nine cases); measured here, and (in brackets)
#: on the script's 60 cases per method (three seeds, docs/identification.md), whose rate the bound stays under
CONFIGS = {
    "occlusion": ({"patch_sizes": (30,)}, 0.55),              # 0.89 (0.92)
    "corrrise": ({"n_masks": 192}, 0.44),                     # 0.67, 0.78 with seed 1 (0.92 at 250 masks)
    "gradient": ({"steps": 8, "samples": 2}, 0.33),           # 0.89 (0.52: these nine are easy for it)
    "reconstruction": ({}, 0.44),                             # 0.89 (0.68)
}
CHANCE = 0.18


@pytest.fixture(scope="module")
def cases(model, johns, johns_embeddings):
    images, identities, _ = johns
    found = planted_contrast_cases(model, images, identities, seed=0, min_shift=0.1, embeddings=johns_embeddings)
    by_region: dict[str, list] = {}
    for case in found:
        by_region.setdefault(case.region, []).append(case)
    return [cases[len(cases) * k // 3] for cases in by_region.values() for k in range(3)]


@pytest.fixture(scope="module")
def items(johns):
    _, identities, paths = johns
    return [(name, str(path)) for name, path in zip(identities, paths)]


def _params(method, request):
    params = dict(CONFIGS[method][0])
    if method == "reconstruction":
        params["decoder"] = request.getfixturevalue("default_decoder")  # trained once, cached
    return params


def test_the_cases_are_planted_contrasts(johns, cases):
    images = johns[0]
    assert len(cases) == 9 and sorted({c.region for c in cases}) == ["eyes", "mouth", "nose"]
    for c in cases:
        top, left, bottom, right = c.box
        np.testing.assert_array_equal(c.hybrid[top:bottom, left:right], images[c.donor][top:bottom, left:right])
        assert c.shift >= 0.1 and c.base not in c.gallery and c.donor not in c.gallery


@pytest.mark.parametrize("method", sorted(CONFIGS))
def test_contrastive_maps_point_at_the_pasted_region(model, cases, items, gallery_cache, method, request):
    params = _params(method, request)
    rows = [score_planted_contrast(model, case, items, method, pair=False, cache_dir=gallery_cache, **params)
            for case in cases]
    rate = np.mean([r["contrast_hit"] for r in rows])
    mass = np.mean([r["contrast_mass"] for r in rows])
    print(f"{method}: contrastive map points into the pasted region in {rate:.2f} of {len(rows)} cases "
          f"(mass {mass:.2f})")
    assert rate >= CONFIGS[method][1] > CHANCE


def test_explain_identification_gives_the_same_contrast_and_the_pair_maps(model, cases, items, gallery_cache,
                                                                          request):
    """Through the public path (reconstruction, the cheap method): the same contrastive maps, and the pair maps."""
    params = _params("reconstruction", request)
    full = [score_planted_contrast(model, case, items, "reconstruction", cache_dir=gallery_cache, **params)
            for case in cases]
    direct = [score_planted_contrast(model, case, items, "reconstruction", pair=False, cache_dir=gallery_cache,
                                     **params) for case in cases]
    assert [r["contrast_hit"] for r in full] == [r["contrast_hit"] for r in direct]
    np.testing.assert_allclose([r["contrast_mass"] for r in full], [r["contrast_mass"] for r in direct], atol=1e-6)
    pair_rate = np.mean([r["pair_hit"] for r in full])
    print(f"reconstruction: pair dissimilarity map points into the pasted region in {pair_rate:.2f} of {len(full)}")
    assert pair_rate >= 0.44  # measured 0.78 (0.68 on the script's 60 cases)
