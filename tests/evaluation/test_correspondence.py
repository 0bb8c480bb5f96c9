"""The correspondence check: do per-dimension region maps lie on the face and agree with the model's occlusion maps?"""

from __future__ import annotations

import numpy as np
import pytest

import fxplain
from fxplain.evaluation.correspondence import correspondence_table, face_mass, rank_correlations
from fxplain.models.regions import FACE_ELLIPSE_AREA, face_ellipse


def test_face_ellipse_covers_the_stated_share_and_feathers_outwards():
    for size in ((150, 150), (112, 112), (96, 80)):
        mask = face_ellipse(size)
        assert set(np.unique(mask)) == {0.0, 1.0}
        assert mask.mean() == pytest.approx(FACE_ELLIPSE_AREA, abs=0.01)
        soft = face_ellipse(size, feather=6.0)
        assert np.all(soft[mask > 0] == 1.0) and soft.mean() > mask.mean() and soft.min() == 0.0
    dlib = face_ellipse((150, 150))
    assert dlib[78, 75] == 1 and dlib[2, 2] == 0 and dlib[78, 10] == 0  # centred on the face, not the borders


def test_face_mass_and_rank_correlations_on_known_maps():
    face = face_ellipse((30, 30))
    inside, uniform = face / face.sum(), np.full((30, 30), 1 / 900)
    np.testing.assert_allclose(face_mass(np.stack([inside, uniform, 1 - face]), face), [1.0, face.mean(), 0.0])
    ramp = np.arange(900.0).reshape(30, 30)
    got = rank_correlations(np.stack([ramp, -ramp, np.ones((30, 30))]), np.stack([ramp ** 3, ramp, ramp]))
    np.testing.assert_allclose(got, [1.0, -1.0, 0.0])
    with pytest.raises(fxplain.InvalidInputError, match="differ in shape"):
        rank_correlations(np.ones((2, 3, 3)), np.ones((3, 3, 3)))


def test_the_models_gradient_maps_correspond_to_its_occlusion_maps(model, johns):
    """Measured (docs/reconstruction.md): gradient maps put ~0.70 of their mass on the face (uniform: 0.45),
    occlusion maps ~0.66, and the two correlate ~0.58 over the pixels."""
    images = johns[0][[0, 11]]
    rows = {r["method"]: r for r in correspondence_table(model, images, methods=("gradient", "occlusion"))}
    assert rows["occlusion"]["occlusion_correlation"] == 1.0 and rows["gradient"]["faces"] == 2
    for method in ("gradient", "occlusion"):
        assert rows[method]["face_mass"] > rows[method]["uniform_face_mass"] + 0.1
    assert rows["gradient"]["occlusion_correlation"] > 0.4
    with pytest.raises(fxplain.InvalidInputError, match="region-map method"):
        correspondence_table(model, images, methods=("saliency",))
    with pytest.raises(fxplain.InvalidInputError, match="fxplain's core"):
        correspondence_table(fxplain.wrap(lambda x: np.zeros((len(x), 4)), input_size=(150, 150), threshold=0.5),
                             images, methods=("occlusion",))
    with pytest.raises(fxplain.InvalidInputError):
        correspondence_table(model, np.full((1, 150, 150, 3), np.nan, np.float32), methods=("occlusion",))
    from fxplain.reconstruction import Decoder, decoder_spec

    other = Decoder(decoder_spec(128, (150, 150), widths=(4, 4), start=75), model_hash="another model")
    with pytest.raises(fxplain.InvalidInputError, match="another face model"):
        correspondence_table(model, images, decoder=other, methods=("decoder",))


def test_evaluate_reports_the_correspondence_table(model, tmp_path):
    report = fxplain.evaluate(model, "johns", methods=["occlusion"], pairs=2, steps=3, planted_per_region=0,
                              sanity_pairs=0, correspondence_faces=1)
    table = report.tables["correspondence"]
    assert [r["method"] for r in table] == ["gradient", "occlusion"] and table[0]["faces"] == 1
    assert "## correspondence" in report.to_markdown()
    report.save(tmp_path)
    assert (tmp_path / "correspondence.csv").read_text().startswith("method,face_mass,")
    assert "correspondence" not in fxplain.evaluate(model, "johns", methods=["occlusion"], pairs=2, steps=3,
                                                    planted_per_region=0, sanity_pairs=0).tables
    with pytest.raises(fxplain.InvalidInputError, match="correspondence_faces"):
        fxplain.evaluate(model, "johns", methods=["occlusion"], pairs=2, steps=3, planted_per_region=0,
                         sanity_pairs=0, correspondence_faces=-1)
