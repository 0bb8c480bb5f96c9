"""calibrate_threshold: the threshold at a false-match rate, on johns and on pairs lists."""

from __future__ import annotations

import numpy as np
import pytest

import fxplain
from fxplain.evaluation.calibration import threshold_at_fmr


def test_threshold_at_fmr_counts_impostors_exactly():
    impostor = np.array([0.9, 0.8, 0.8, 0.5, 0.1, 0.0, -0.2, -0.5, -0.7, -0.9])
    assert threshold_at_fmr(impostor, 0.1) == np.nextafter(0.8, np.inf)  # 1 of 10 may match: only 0.9 does
    assert np.mean(impostor >= threshold_at_fmr(impostor, 0.3)) == pytest.approx(0.3)
    assert np.mean(impostor >= threshold_at_fmr(impostor, 0.2)) <= 0.2  # the tie at 0.8 stays below
    assert threshold_at_fmr(impostor, 0.01) == np.nextafter(0.9, np.inf)


def test_dlib_on_johns(model):
    """dlib on johns: 275 genuine and 1210 impostor pairs, all separable (min impostor distance 0.666)."""
    cal = fxplain.calibrate_threshold(model, "johns", fmr=1e-3)
    assert (len(cal.genuine), len(cal.impostor)) == (275, 1210)
    assert cal.achieved_fmr <= 1e-3 and cal.achieved_fmr == pytest.approx(1 / 1210)
    assert cal.fnmr == 0.0
    assert cal.impostor.max() > cal.threshold > np.sort(cal.impostor)[-2]  # one impostor pair matches
    assert cal.threshold < cal.genuine.min()  # every genuine pair matches
    assert float(cal) == cal.threshold
    from matplotlib.figure import Figure

    assert isinstance(cal.plot(), Figure) and cal._repr_png_()[:4] == b"\x89PNG"


def test_pairs_list_and_bad_input(model, johns):
    images, identities = johns[0], johns[1]
    pairs = [(images[0], images[i], identities[i] == identities[0]) for i in range(1, 20)]
    with pytest.warns(fxplain.FxplainWarning, match="needs at least 100 impostor pairs"):
        cal = fxplain.calibrate_threshold(model, pairs, fmr=0.01)
    assert cal.achieved_fmr == 0.0 and len(cal.genuine) + len(cal.impostor) == 19
    for fmr in (0, 1, -0.1, "x", float("nan")):
        with pytest.raises(fxplain.InvalidInputError, match="fmr"):
            fxplain.calibrate_threshold(model, pairs, fmr=fmr)
    with pytest.raises(fxplain.InvalidInputError, match="genuine and impostor"):
        fxplain.calibrate_threshold(model, [p for p in pairs if not p[2]])
