"""The one inputs module: colours (grayscale, BGR), registered image sources, one face list, photos re-attached.

Every entry point turns images into chips through ``fxplain.faces.inputs``;
these tests check what that path does beyond the checks of
tests/models/test_model_input.py.
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

import fxplain
from fxplain import datasets
from fxplain.faces import inputs


@pytest.fixture(scope="module")
def folder():
    return datasets.examples_dir() / "faces"


@pytest.fixture(scope="module")
def chip():
    return np.asarray(Image.open(datasets.johns_files()[0]).convert("RGB"))


def test_grayscale_arrays_are_replicated_to_rgb(model, chip):
    gray = chip.mean(axis=2).astype(np.uint8)
    want = model.embed(np.repeat(gray[..., None], 3, axis=2))
    np.testing.assert_array_equal(model.embed(gray), want)
    np.testing.assert_array_equal(model.embed(gray[..., None]), want)
    np.testing.assert_array_equal(model.embed(np.stack([gray[..., None]] * 2)), np.concatenate([want, want]))
    np.testing.assert_array_equal(model.embed(Image.fromarray(gray)), want)  # a mode "L" PIL image
    assert not np.allclose(want, model.embed(chip))


def test_bgr_arrays_are_read_as_bgr(model, chip):
    bgr = np.ascontiguousarray(chip[..., ::-1])
    want = model.embed(chip)
    np.testing.assert_array_equal(model.embed(bgr, channels="BGR"), want)
    np.testing.assert_array_equal(model.embed(bgr[None], channels="BGR"), want)
    assert not np.allclose(model.embed(bgr), want)  # the default is RGB: nothing is guessed
    v = model.verify(bgr, chip, channels="BGR")
    assert v.score == pytest.approx(model.score(want[0], model.embed(chip[..., ::-1].copy())[0]), abs=1e-6)
    path = datasets.johns_files()[0]  # files are decoded as RGB whatever channels says
    np.testing.assert_array_equal(model.embed(path, channels="BGR"), want)
    for bad in ("rgb", "GRAY", None, 3):
        with pytest.raises(fxplain.InvalidInputError, match="channels must be 'RGB' or 'BGR'"):
            model.embed(chip, channels=bad)


class _Frame:
    """An image object of a library fxplain does not know (say, a video frame holding BGR pixels)."""

    def __init__(self, pixels):
        self.pixels = pixels


def test_a_registered_image_source_is_taken_everywhere(model, chip, folder):
    source = fxplain.faces.register_image_source(_Frame, lambda f: f.pixels, channels="BGR", name="frame")
    try:
        frame = _Frame(np.ascontiguousarray(chip[..., ::-1]))
        np.testing.assert_array_equal(model.embed(frame), model.embed(chip))
        np.testing.assert_array_equal(model.embed([frame, chip]), model.embed([chip, chip]))
        assert model.verify(frame, chip).score == pytest.approx(0.0, abs=1e-6)
        r = fxplain.Explainer(model, method="occlusion", patch_sizes=(50,)).explain(frame, chip)
        np.testing.assert_array_equal(r.images[0], chip)
        # a photo from a source is a photo: its face detected, and the Face names the source
        photo = np.asarray(Image.open(folder / "Tom_Cruise_avp_2014_4.jpg").convert("RGB"))
        pixels, faces = inputs.to_pixel_batch_and_faces(_Frame(photo[..., ::-1].copy()), model.input_size)
        assert faces[0].source == "<frame>"
        np.testing.assert_array_equal(pixels[0], fxplain.detect_faces(photo)[0].chip(model))
    finally:
        fxplain.faces.unregister_image_source(source)
    with pytest.raises(fxplain.InvalidInputError, match="register_image_source"):
        model.embed(_Frame(chip))


def test_a_failing_or_looping_source_raises_a_clear_error(model, chip):
    broken = fxplain.faces.register_image_source(_Frame, lambda f: f.missing, name="broken frame")
    try:
        with pytest.raises(fxplain.InvalidInputError, match="broken frame image source failed: AttributeError"):
            model.embed(_Frame(chip))
    finally:
        fxplain.faces.unregister_image_source(broken)
    looping = fxplain.faces.register_image_source(_Frame, lambda f: f, name="loop")
    try:
        with pytest.raises(fxplain.InvalidInputError, match="expected an array"):
            model.embed(_Frame(chip))
    finally:
        fxplain.faces.unregister_image_source(looping)
    for bad_kind in (3, "x"):
        with pytest.raises(fxplain.InvalidInputError, match="kind must be a type or a predicate"):
            fxplain.faces.register_image_source(bad_kind, lambda f: f)
    with pytest.raises(fxplain.InvalidInputError, match="channels"):
        fxplain.faces.register_image_source(_Frame, lambda f: f, channels="bgr")


def test_one_face_list_on_a_photo_whose_faces_need_upsampling(model, folder):
    """dlib's 2008_002079.jpg: no face at upsample 0, 4 at 1; every entry point sees the same 4, in one order."""
    path = folder / "2008_002079.jpg"
    assert fxplain.detect_faces(path, upsample=0) == []
    faces = fxplain.detect_faces(path)
    assert len(faces) == 4 and {f.upsample for f in faces} == {1}
    assert [f.box for f in faces] == [f.box for f in fxplain.detect_faces(path, upsample=1)]
    for k in (0, 3):
        np.testing.assert_array_equal(model.embed(path, face=k), model.embed(faces[k]))
    r = fxplain.Explainer(model, method="occlusion", patch_sizes=(50,)).explain(path, path, face=(1, 2))
    assert [f.box for f in r.faces] == [faces[1].box, faces[2].box]
    assert [rec["upsample"] for rec in r.extras["faces"]] == [1, 1]
    done = subprocess.run([sys.executable, "-m", "fxplain", "faces", str(path)], capture_output=True, text=True,
                          check=False, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "4 face(s)" in done.stdout and "upsample 1: none found at 0" in done.stdout
    assert f"face 2: box (left, top, right, bottom) {faces[2].box}" in done.stdout
    done = subprocess.run([sys.executable, "-m", "fxplain", "verify", str(path), str(path), "--face", "2,3"],
                          capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"A: {path}: face 2 of 4 (upsample 1: none found at 0), box {faces[2].box}" in done.stdout


def test_a_saved_explanation_of_photos_gets_its_photos_back(model, folder, tmp_path):
    tom, other = folder / "Tom_Cruise_avp_2014_4.jpg", folder / "2008_001009.jpg"
    r = fxplain.Explainer(model, method="occlusion", patch_sizes=(50,)).explain(tom, other)
    r.save(tmp_path / "r.npz")
    for photos in (True, (tom, other), (np.asarray(Image.open(tom).convert("RGB")), str(other))):
        back = fxplain.PairExplanation.load(tmp_path / "r.npz", photos=photos)
        assert [f.box for f in back.faces] == [f.box for f in r.faces]
        np.testing.assert_array_equal(back.faces[1].photo, r.faces[1].photo)
        np.testing.assert_array_equal(back.faces[0].landmarks, r.faces[0].landmarks)
    assert back.plot(on="photo") is not None
    with pytest.raises(fxplain.InvalidInputError, match="is not the photo side B was explained on"):
        fxplain.PairExplanation.load(tmp_path / "r.npz", photos=(tom, np.asarray(
            Image.open(other).convert("RGB"))[::-1].copy()))
    with pytest.raises(fxplain.InvalidInputError, match="was explained on a"):
        fxplain.PairExplanation.load(tmp_path / "r.npz", photos=(other, tom))
    with pytest.raises(fxplain.InvalidInputError, match=r"\(photo_a, photo_b\) or True"):
        fxplain.PairExplanation.load(tmp_path / "r.npz", photos=tom)
    chips = fxplain.Explainer(model, method="occlusion", patch_sizes=(50,)).explain(r.faces[0].chip(), r.images[1])
    chips.save(tmp_path / "chips.npz")
    with pytest.raises(fxplain.InvalidInputError, match="made on chips, not photos"):
        fxplain.PairExplanation.load(tmp_path / "chips.npz", photos=True)


def test_the_68_point_licence_is_warned_once(folder):
    """The first ArcFace-template chip warns about the 68-point model's terms, once per process."""
    code = ("import warnings, numpy as np, fxplain\n"
            "warnings.simplefilter('always')\n"
            f"faces = fxplain.detect_faces({str(folder / 'Tom_Cruise_avp_2014_4.jpg')!r})\n"
            "with warnings.catch_warnings(record=True) as seen:\n"
            "    warnings.simplefilter('always')\n"
            "    faces[0].chip_and_transform(type('M', (), {'input_size': (112, 112)})())\n"
            "    fxplain.detect_faces(faces[0].photo)[0].landmarks68\n"
            "print(sum(issubclass(w.category, fxplain.LicenceWarning) for w in seen), "
            "'300-W' in str(seen[0].message))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "True"]


def test_inputs_from_threads_give_the_serial_result(model, chip):
    gray = chip.mean(axis=2).astype(np.uint8)
    items = [gray, chip[..., ::-1].copy(), chip] * 3
    serial = [model.embed(x, channels="BGR" if i % 3 == 1 else "RGB") for i, x in enumerate(items)]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(lambda ix: model.embed(ix[1], channels="BGR" if ix[0] % 3 == 1 else "RGB"),
                                 enumerate(items)))
    for a, b in zip(serial, parallel):
        np.testing.assert_array_equal(a, b)
