"""The registry of model file formats behind load_model: dlib's .dat and fxplain's own network file."""

from __future__ import annotations

import numpy as np
import pytest

import fxplain
from fxplain.models.formats import FORMATS, format_for
from fxplain.models.formats.fxspec import FACE_MODEL_KIND, save_spec


def test_both_formats_are_registered_and_sniffed(model, tmp_path):
    assert {"dlib", "fxspec"} <= set(FORMATS)
    with open(model.source, "rb") as f:
        head = f.read(64)
    assert format_for(tmp_path / "renamed.bin", head).name == "dlib"  # by its bytes, whatever the name
    assert format_for(tmp_path / "x.fxn", b"FXPLNET\0" + bytes(8)).name == "fxspec"
    assert format_for(tmp_path / "x.txt", b"hello") is None
    assert model.facts["format"] == "dlib"


def test_a_face_model_saved_in_fxplains_format_loads_and_embeds_the_same(model, johns, tmp_path):
    path = tmp_path / "dlib.fxn"
    save_spec(path, model.spec, {"kind": FACE_MODEL_KIND, "metric": model.metric, "threshold": model.threshold,
                                 "facts": {"distance_threshold": 0.6}})
    again = fxplain.load_model(path)
    assert again.model_hash == model.model_hash and again.threshold == model.threshold
    assert again.facts["format"] == "fxspec"
    np.testing.assert_array_equal(again.embed(johns[0][:4]), model.embed(johns[0][:4]))


@pytest.mark.parametrize("metadata,fragment", [
    ({"kind": "fxplain-decoder"}, "not a face model"),
    ({"kind": FACE_MODEL_KIND, "metric": "manhattan", "threshold": 0.5}, "metric"),
    ({"kind": FACE_MODEL_KIND, "metric": "cosine", "threshold": "0.5"}, "finite threshold"),
    ({"kind": FACE_MODEL_KIND, "metric": "cosine", "threshold": True}, "finite threshold"),
])
def test_fxplain_network_files_that_are_not_face_models_are_refused(model, tmp_path, metadata, fragment):
    path = tmp_path / "m.fxn"
    save_spec(path, model.spec, metadata)
    with pytest.raises(fxplain.ModelFormatError, match=fragment):
        fxplain.load_model(path)


def test_unknown_files_name_the_formats(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"\0" * 64)
    with pytest.raises(fxplain.ModelFormatError, match="formats: dlib, fxspec"):
        fxplain.load_model(path)
