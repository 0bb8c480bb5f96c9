"""Bad input to galleries and identification raises fxplain's errors, never a crash or a hang."""

from __future__ import annotations

import os

import numpy as np
import pytest

import fxplain
from fxplain import InvalidInputError

CHEAP = {"method": "occlusion", "patch_sizes": (75,), "stride": 1.0}


def test_empty_or_missing_galleries(model, tmp_path):
    with pytest.raises(InvalidInputError, match="not found"):
        fxplain.Gallery(model, tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInputError, match="no identity sub-folders"):
        fxplain.Gallery(model, tmp_path / "empty")
    (tmp_path / "empty" / "someone").mkdir()  # an identity folder without images
    (tmp_path / "empty" / "notes.jpg").write_bytes(b"")  # files outside identity folders are ignored
    with pytest.raises(InvalidInputError, match="no identity sub-folders"):
        fxplain.Gallery(model, tmp_path / "empty")
    with pytest.raises(InvalidInputError, match="empty"):
        fxplain.Gallery(model, [])
    for bad in ({"a": "b"}, 42, [("a",)], [(3, "x.jpg")], [("", "x.jpg")]):
        with pytest.raises(InvalidInputError):
            fxplain.Gallery(model, bad)


def test_missing_unreadable_and_fifo_gallery_files(model, johns, tmp_path):
    paths = johns[2]
    with pytest.raises(InvalidInputError, match="not found"):
        fxplain.Gallery(model, [("a", str(paths[0])), ("b", str(tmp_path / "gone.jpg"))], cache_dir=False)
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    with pytest.raises(InvalidInputError, match="not a file"):
        fxplain.Gallery(model, [("a", str(paths[0])), ("b", str(fifo))], cache_dir=False)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(InvalidInputError, match="broken.jpg"):
        fxplain.Gallery(model, [("a", str(paths[0])), ("b", str(broken))], cache_dir=False)
    # in a folder gallery a FIFO named like an image is skipped, never opened
    root = tmp_path / "gallery"
    (root / "a").mkdir(parents=True)
    (root / "a" / "face.jpg").write_bytes(paths[0].read_bytes())
    os.mkfifo(root / "a" / "pipe.jpg")
    assert len(fxplain.Gallery(model, root, cache_dir=False)) == 1
    with pytest.raises(InvalidInputError, match="150x150"):
        fxplain.Gallery(model, [("a", np.zeros((10, 10, 3), np.float32))], cache_dir=False)


def test_bad_arguments_to_explain_identification(model, johns, held_out, gallery, tmp_path):
    paths = johns[2]
    probe = str(paths[held_out[0]])
    for top_k in (0, -1, 6, True, 2.5, "3"):
        with pytest.raises(InvalidInputError, match="top_k"):
            fxplain.explain_identification(model, probe, gallery, top_k=top_k, **CHEAP)
    with pytest.raises(InvalidInputError, match="top_k"):
        gallery.search(model.embed(probe)[0], top_k=0)
    with pytest.raises(InvalidInputError, match="one image"):
        fxplain.explain_identification(model, np.zeros((2, 150, 150, 3), np.uint8), gallery, top_k=2, **CHEAP)
    nan_probe = np.full((150, 150, 3), np.nan, np.float32)
    with pytest.raises(InvalidInputError, match="NaN"):
        fxplain.explain_identification(model, nan_probe, gallery, top_k=2, **CHEAP)
    with pytest.raises(InvalidInputError, match="finite"):
        gallery.search(np.full(128, np.nan))
    with pytest.raises(InvalidInputError, match="shape"):
        gallery.search(np.zeros(64))
    with pytest.raises(InvalidInputError, match="not found"):
        fxplain.explain_identification(model, str(tmp_path / "gone.jpg"), gallery, top_k=2, **CHEAP)
    fifo = tmp_path / "probe.jpg"
    os.mkfifo(fifo)
    with pytest.raises(InvalidInputError, match="not a file"):
        fxplain.explain_identification(model, str(fifo), gallery, top_k=2, **CHEAP)
    with pytest.raises(InvalidInputError, match="not in the gallery"):
        fxplain.explain_identification(model, probe, gallery, top_k=2, mate="Nobody", **CHEAP)
    with pytest.raises(InvalidInputError, match="combine"):
        fxplain.explain_identification(model, probe, gallery, top_k=2, combine="median", **CHEAP)
    with pytest.raises(InvalidInputError, match="combine"):
        gallery.search(model.embed(probe)[0], combine="median")
    with pytest.raises(InvalidInputError, match="unknown parameter"):
        fxplain.explain_identification(model, probe, gallery, top_k=2, method="occlusion", n_masks=5)
    with pytest.raises(InvalidInputError, match="unknown method"):
        fxplain.explain_identification(model, probe, gallery, top_k=2, method="magic")
    one = fxplain.Gallery(model, [("only", str(paths[1]))], cache_dir=False)
    with pytest.raises(InvalidInputError, match="at least two identities"):
        fxplain.explain_identification(model, probe, one, top_k=1, **CHEAP)
    other_model = fxplain.wrap(lambda x: x.reshape(len(x), -1)[:, :16].astype(np.float32), input_size=(150, 150),
                               threshold=-1.0, metric="squared_euclidean")
    foreign = fxplain.Gallery(other_model, [("a", str(paths[1])), ("b", str(paths[20]))], cache_dir=False)
    with pytest.raises(InvalidInputError, match="another model"):
        fxplain.explain_identification(model, probe, foreign, top_k=1, **CHEAP)
