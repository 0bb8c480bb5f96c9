"""Photos in: detect_faces, Face objects, and every entry point that takes images taking photos.

Against dlib's own pipeline (tests/data/photos_dlib_reference.json): the
faces detect_faces finds, their landmarks, and the descriptors of photos
passed straight to model.embed.
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fxplain
from fxplain import datasets


@pytest.fixture(scope="module")
def folder():
    return datasets.examples_dir() / "faces"


def test_detect_faces_is_dlibs_pipeline(folder, photo_oracle):
    for name in ("bald_guys.jpg", "Tom_Cruise_avp_2014_4.jpg", "2008_001009.jpg"):
        faces = fxplain.detect_faces(folder / name)
        want = photo_oracle[name]["upsample_0"]
        assert [f.box for f in faces] == [tuple(w["rect_ltrb"]) for w in want]
        assert all(isinstance(f, fxplain.Face) and f.source.endswith(name) for f in faces)
        for face, w in zip(faces, want):
            np.testing.assert_array_equal(face.landmarks, w["landmarks_5"])
            assert abs(face.confidence - w["confidence"]) < 1e-4
        confidences = [f.confidence for f in faces]
        assert confidences == sorted(confidences, reverse=True)
    assert fxplain.detect_faces(folder / "dogs.jpg") == []


def test_a_photo_is_embedded_as_its_largest_face(model, folder, photo_oracle):
    """model.embed(path) = dlib's descriptor of the photo's largest face; a Face embeds as its own chip."""
    name = "2008_001009.jpg"
    want = photo_oracle[name]["upsample_0"]
    faces = fxplain.detect_faces(folder / name)
    largest = max(range(len(faces)), key=lambda k: faces[k].area)
    np.testing.assert_allclose(model.embed(folder / name)[0], want[largest]["descriptor"], atol=1e-5)
    both = model.embed([faces[0], faces[-1].chip(model)])
    np.testing.assert_allclose(both, [want[0]["descriptor"], want[-1]["descriptor"]], atol=1e-5)
    chip, transform = faces[0].chip_and_transform(model)
    assert chip.shape == (150, 150, 3) and chip.dtype == np.uint8 and transform.shape == (2, 3)


def test_verify_and_explain_take_photos(model, folder):
    a, b = folder / "Tom_Cruise_avp_2014_4.jpg", folder / "2008_001009.jpg"
    assert model.verify(a, a).match and not model.verify(a, b).match
    r = fxplain.Explainer(model, method="occlusion", patch_sizes=(50,)).explain(a, b)
    assert r.images.shape == (2, 150, 150, 3) and not r.match
    np.testing.assert_array_equal(r.images[0], fxplain.detect_faces(a)[0].chip(model))


def test_photos_without_a_face_are_refused_naming_the_file(model, folder):
    with pytest.raises(fxplain.InvalidInputError, match=r"dogs\.jpg: no face found in the 900x916 photo"):
        model.embed(folder / "dogs.jpg")
    with pytest.raises(fxplain.InvalidInputError, match="expected a photo, got a Face"):
        fxplain.detect_faces(fxplain.detect_faces(folder / "Tom_Cruise_avp_2014_4.jpg")[0])
    with pytest.raises(fxplain.InvalidInputError, match="uint8"):
        fxplain.detect_faces(np.zeros((50, 50, 3), np.float32))


def test_detect_faces_from_threads_is_serial(folder):
    names = ["Tom_Cruise_avp_2014_4.jpg", "2008_001009.jpg", "2008_002470.jpg"] * 2
    serial = [[(f.box, f.confidence) for f in fxplain.detect_faces(folder / n)] for n in names]
    with ThreadPoolExecutor(3) as pool:
        threaded = list(pool.map(lambda n: [(f.box, f.confidence) for f in fxplain.detect_faces(folder / n)], names))
    assert threaded == serial


def test_cli_faces_lists_and_draws(folder, tmp_path):
    out = tmp_path / "faces.png"
    done = subprocess.run([sys.executable, "-m", "fxplain", "faces", str(folder / "bald_guys.jpg"), "-o", str(out)],
                          capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "24 face(s)" in done.stdout and "face 23: box" in done.stdout
    assert out.stat().st_size > 10_000
    done = subprocess.run([sys.executable, "-m", "fxplain", "verify", str(folder / "Tom_Cruise_avp_2014_4.jpg"),
                           str(folder / "2008_001009.jpg")], capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0 and "DIFFERENT people" in done.stdout, done.stderr
    figure = tmp_path / "on_photo.png"
    done = subprocess.run([sys.executable, "-m", "fxplain", "explain", str(folder / "Tom_Cruise_avp_2014_4.jpg"),
                           str(folder / "2008_001009.jpg"), "--method", "occlusion", "--on", "photo", "--quiet",
                           "-o", str(figure)], capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0 and "DIFFERENT people" in done.stdout, done.stderr
    assert figure.read_bytes().startswith(b"\x89PNG")


def test_explanations_of_photos_keep_their_faces_and_draw_on_the_photos(model, folder, tmp_path):
    from matplotlib.figure import Figure

    from fxplain.plotting import warp_to_photo

    collage = fxplain.detect_faces(folder / "bald_guys.jpg")
    r = fxplain.Explainer(model, method="occlusion", patch_sizes=(50,)).explain(
        folder / "Tom_Cruise_avp_2014_4.jpg", collage[3])
    tom = fxplain.detect_faces(folder / "Tom_Cruise_avp_2014_4.jpg")[0]
    assert r.faces[0].box == tom.box and r.faces[1] is collage[3]
    record = r.extras["faces"][1]
    assert record["box"] == list(collage[3].box) and record["photo_size"] == list(collage[3].photo.shape[:2])
    assert isinstance(r.plot(on="photo", context=None), Figure)
    # by default a window around each face: 4 chip footprints around the collage's face, all of Tom's portrait
    axes = r.plot(on="photo").axes
    footprint = 150 * np.hypot(*np.asarray(r.extras["faces"][1]["chip_to_photo"])[:, 0])
    width = np.diff(axes[2].get_xlim())[0]
    assert width == pytest.approx(4 * footprint, rel=0.15)
    assert axes[0].get_xlim() == pytest.approx((-0.5, tom.photo.shape[1] - 0.5))
    # the warp puts a chip pixel where the transform says it came from
    transform = np.asarray(record["chip_to_photo"])
    spot = np.zeros((150, 150))
    spot[40, 100] = 1.0
    warped = warp_to_photo(spot, transform, collage[3].photo.shape[:2])
    y, x = np.unravel_index(np.nanargmax(warped), warped.shape)
    assert np.hypot(*(np.array([x, y]) - transform @ [100, 40, 1])) < 1.5
    left, top, right, bottom = collage[3].box
    assert np.isnan(warped[0, -1]) and not np.isnan(warped[(top + bottom) // 2, (left + right) // 2])
    # saved: the boxes and transforms stay, the photos do not
    r.save(tmp_path / "r.npz")
    back = fxplain.PairExplanation.load(tmp_path / "r.npz")
    assert back.extras["faces"] == r.extras["faces"] and back.faces is None
    with pytest.raises(fxplain.InvalidInputError, match="no photos to draw on"):
        back.plot(on="photo")
    with pytest.raises(fxplain.InvalidInputError, match="'chip' or 'photo'"):
        r.plot(on="map")
    chips = fxplain.Explainer(model, method="occlusion", patch_sizes=(50,)).explain(tom.chip(), collage[3].chip())
    assert chips.faces is None and "faces" not in chips.extras


def test_face_chooses_which_face_of_a_photo(model, folder, photo_oracle):
    """face= picks by index (detect_faces order), the most confident or the largest, on every entry point."""
    path = folder / "2008_001322.jpg"  # three faces
    want = [np.asarray(w["descriptor"], np.float32) for w in photo_oracle[path.name]["upsample_0"]]
    faces = fxplain.detect_faces(path)
    largest = max(range(len(faces)), key=lambda k: faces[k].area)
    assert len(faces) == 3
    for k in range(3):
        np.testing.assert_allclose(model.embed(path, face=k)[0], want[k], atol=1e-5)
    np.testing.assert_allclose(model.embed([path, path], face="most_confident"), [want[0], want[0]], atol=1e-5)
    np.testing.assert_allclose(model.embed(path)[0], want[largest], atol=1e-5)
    v = model.verify(path, path, face=(0, 2))
    assert v.score == pytest.approx(model.score(want[0], want[2]), abs=1e-5)
    r = fxplain.Explainer(model, method="occlusion", patch_sizes=(50,)).explain(path, path, face=(2, 1))
    assert [f.box for f in r.faces] == [faces[2].box, faces[1].box]
    chip = faces[0].chip(model)
    np.testing.assert_array_equal(model.embed(chip, face=2), model.embed(chip))  # a chip is a chip
    with pytest.raises(fxplain.InvalidInputError, match=r"face=3 asked for, but the photo has 3 faces"):
        model.embed(path, face=3)
    for bad in ("smallest", -1, True, 1.5, None, (0, 1, 2)):
        with pytest.raises(fxplain.InvalidInputError, match="face"):
            model.verify(chip, chip, face=bad)


def test_cli_face_option(folder):
    path = str(folder / "2008_001322.jpg")
    done = subprocess.run([sys.executable, "-m", "fxplain", "verify", path, path, "--face", "0,2"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "DIFFERENT" in done.stdout
    done = subprocess.run([sys.executable, "-m", "fxplain", "verify", path, path, "--face", "7"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode != 0 and "face=7" in done.stderr


def _clusters(embeddings: np.ndarray, threshold: float) -> list[frozenset]:
    """Groups linked by distances below ``threshold`` (single linkage, as dlib's example links faces)."""
    distance = np.linalg.norm(embeddings[:, None].astype(np.float64) - embeddings[None], axis=-1)
    label = list(range(len(embeddings)))
    changed = True
    while changed:
        changed = False
        for i, j in zip(*np.nonzero(distance < threshold)):
            low = min(label[i], label[j])
            if label[i] != low or label[j] != low:
                label[i] = label[j] = low
                changed = True
    return sorted({frozenset(k for k in range(len(label)) if label[k] == g) for g in label}, key=min)


def test_the_collage_clusters_into_dlibs_four_people(model, folder, photo_oracle):
    """bald_guys' 24 faces, linked at dlib's 0.6: the 4 people of 6 faces that dlib's own descriptors give."""
    faces = fxplain.detect_faces(folder / "bald_guys.jpg")
    assert model.facts["distance_threshold"] == pytest.approx(0.6)
    got = _clusters(model.embed(faces), 0.6)
    want = _clusters(np.array([w["descriptor"] for w in photo_oracle["bald_guys.jpg"]["upsample_0"]]), 0.6)
    assert got == want
    assert sorted(len(c) for c in got) == [6, 6, 6, 6]
