"""dlib's face alignment (get_face_chip_details + extract_image_chip): descriptors of our chips vs dlib's.

Oracle: ``tests/data/photos_dlib_reference.json`` (see ``test_landmarks.py`` and
``oracles/README.md``): for each face dlib found in ``examples/faces/``, its
integer landmarks and the descriptor dlib computed on its own 150x150 chip
(printed with 6 significant digits, so agreement is bounded by ~1e-6).
``tests/data/photos_dlib_chips_sha256.txt`` holds the digests of dlib's chips themselves, made by
``tests/data/photo_chips_oracle.cpp`` (dlib 19.24 from Debian's libdlib-dev): the chips must be
bit-identical. (Pillow and dlib's libjpeg decode these photos to identical pixels.)
"""

from __future__ import annotations

import hashlib
import resource
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import fxplain
from fxplain.faces import reference

DATA = Path(__file__).resolve().parents[1] / "data"


def test_chips_are_dlibs_bit_for_bit(faces):
    rows = [line.split() for line in (DATA / "photos_dlib_chips_sha256.txt").read_text().splitlines()
            if line and not line.startswith("#")]
    assert len(rows) == len(faces)
    for (digest, name, _, _), (photo, face) in zip(rows, faces):
        chip, _ = fxplain.faces.face_chip(photo, face["landmarks_5"])
        assert hashlib.sha256(chip.tobytes()).hexdigest() == digest, name


def test_descriptors_of_our_chips_match_dlibs(model, faces):
    """Chips cut from dlib's landmarks give dlib's descriptors (max abs difference ~1e-6, the oracle's print precision)."""
    chips = np.stack([fxplain.faces.face_chip(photo, face["landmarks_5"])[0] for photo, face in faces])
    assert chips.shape == (77, 150, 150, 3) and chips.dtype == np.uint8
    got = model.embed(chips)
    want = np.array([face["descriptor"] for _, face in faces])
    assert np.abs(got - want).max() <= 1e-5


def test_c_kernel_matches_numpy_twin(faces):
    """Every chip, including the three faces big enough for dlib's image pyramid, bit for bit."""
    pyramid = 0
    for photo, face in faces:
        landmarks = np.array(face["landmarks_5"], np.float64)
        details = fxplain.faces.face_chip_details(landmarks)
        want_details = reference.face_chip_details(landmarks, 150, 0.25)
        assert np.allclose(details[0], want_details[0], rtol=0, atol=1e-9) and details[1:] == want_details[1:]
        chip, transform = fxplain.faces.face_chip(photo, landmarks)
        want_chip, want_transform = reference.extract_image_chip(photo, details)
        assert np.array_equal(chip, want_chip)
        assert np.allclose(transform, want_transform, rtol=0, atol=1e-9)
        left, _, right, _ = details[0][:4]
        pyramid += (right - left + 1) / 2 > 150
    assert pyramid == 3


@pytest.mark.parametrize("zoom", [3, 5])
def test_deep_pyramid_matches_twin(faces, zoom):
    """A photo enlarged 3x and 5x needs 2 and 3 pyramid levels; C and NumPy still agree exactly."""
    photo, face = next((p, f) for p, f in faces if f["rect_ltrb"][2] - f["rect_ltrb"][0] > 150)
    big = np.ascontiguousarray(np.repeat(np.repeat(photo[::2, ::2], zoom, axis=0), zoom, axis=1))
    landmarks = np.array(face["landmarks_5"], np.float64) / 2 * zoom
    chip, _ = fxplain.faces.face_chip(big, landmarks)
    want, _ = reference.extract_image_chip(big, fxplain.faces.face_chip_details(landmarks))
    assert np.array_equal(chip, want)


def test_transform_is_where_chip_pixels_come_from(faces):
    """Sampling the photo bilinearly at ``transform @ (c, r, 1)`` gives the chip (a face without the pyramid).

    The transform is dlib's sampling, not the template fit itself: dlib spreads the chip's corner pixels over a
    rectangle ``size * scale - 1`` wide, so it is within a few percent of the least-squares similarity.
    """
    photo, face = faces[5]
    landmarks = np.array(face["landmarks_5"], np.float64)
    chip, transform = fxplain.faces.face_chip(photo, landmarks, size=150, padding=0.25)
    resampled = reference._bilinear(photo, transform, 150, 150)
    assert np.abs(resampled.astype(int) - chip).max() <= 1
    assert np.mean(resampled == chip) > 0.999
    template = (0.25 + reference.TEMPLATE_5) / 1.5 * 150
    mapped = template @ transform[:, :2].T + transform[:, 2]
    assert np.abs(mapped - landmarks).max() < 5  # a 5-point similarity fit: a few pixels of residual


def test_other_sizes_gray_and_border(faces):
    photo, face = faces[0]
    landmarks = np.array(face["landmarks_5"], np.float64)
    for size, padding in [(112, 0.0), (200, 0.5), (2, 0.25)]:
        chip, _ = fxplain.faces.face_chip(photo, landmarks, size, padding)
        want, _ = reference.extract_image_chip(photo, reference.face_chip_details(landmarks, size, padding))
        assert chip.shape == (size, size, 3) and np.array_equal(chip, want)
    gray = photo[:, :, 1].copy()
    chip, _ = fxplain.faces.face_chip(gray, landmarks)
    assert np.array_equal(chip, fxplain.faces.face_chip(np.repeat(gray[:, :, None], 3, axis=2), landmarks)[0])
    # a face hanging off the photo: black where the chip leaves it, as dlib's black background
    shifted = landmarks - landmarks.min(axis=0) - 20
    chip, _ = fxplain.faces.face_chip(photo, shifted)
    assert np.array_equal(chip, reference.extract_image_chip(photo, reference.face_chip_details(shifted, 150, 0.25))[0])
    assert not chip[:10, :10].any()


def test_inputs_unchanged(faces):
    photo, face = faces[0]
    landmarks = np.array(face["landmarks_5"], np.float64)
    before = photo.copy(), landmarks.copy()
    fxplain.faces.face_chip(photo, landmarks)
    assert np.array_equal(photo, before[0]) and np.array_equal(landmarks, before[1])


GOOD = np.array([[80.0, 40], [70, 41], [40, 40], [50, 41], [60, 60]])


@pytest.mark.parametrize("image, landmarks, kwargs, fragment", [
    (np.zeros((100, 100, 3), np.float64), GOOD, {}, "dtype uint8"),
    (np.zeros((100, 100, 4), np.uint8), GOOD, {}, "shape"),
    ("photo.jpg", GOOD, {}, "numpy array"),
    (np.zeros((100, 100, 3), np.uint8), np.where(np.eye(5, 2, dtype=bool), np.nan, GOOD), {}, "NaN"),
    (np.zeros((100, 100, 3), np.uint8), GOOD[:4], {}, r"shape \(5, 2\)"),
    (np.zeros((100, 100, 3), np.uint8), "eyes", {}, "landmarks"),
    (np.zeros((100, 100, 3), np.uint8), np.ones((5, 2)), {}, "same point"),
    (np.zeros((100, 100, 3), np.uint8), GOOD * 1e9, {}, "implausibly far"),
    (np.zeros((100, 100, 3), np.uint8), GOOD, {"size": 1}, "size"),
    (np.zeros((100, 100, 3), np.uint8), GOOD, {"size": 150.0}, "size"),
    (np.zeros((100, 100, 3), np.uint8), GOOD, {"padding": -0.1}, "padding"),
    (np.zeros((100, 100, 3), np.uint8), GOOD, {"padding": float("inf")}, "padding"),
])
def test_bad_arguments(image, landmarks, kwargs, fragment):
    with pytest.raises(fxplain.InvalidInputError, match=fragment):
        fxplain.faces.face_chip(image, landmarks, **kwargs)


def test_threads_give_the_serial_result(faces):
    jobs = faces[:20]
    serial = [fxplain.faces.face_chip(photo, face["landmarks_5"])[0] for photo, face in jobs]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(lambda job: fxplain.faces.face_chip(job[0], job[1]["landmarks_5"])[0], jobs))
    assert all(np.array_equal(a, b) for a, b in zip(serial, threaded))


def test_repeated_calls_do_not_leak(faces):
    """Also through the image pyramid (a large face), whose levels the core allocates and frees."""
    photo, face = next((p, f) for p, f in faces if f["rect_ltrb"][2] - f["rect_ltrb"][0] > 150)
    for _ in range(20):
        fxplain.faces.face_chip(photo, face["landmarks_5"])
    before = _rss_mib()
    for _ in range(1000):
        fxplain.faces.face_chip(photo, face["landmarks_5"])
    assert _rss_mib() - before < 10


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


class _Model112:
    input_size = (112, 112)


def test_similarity_transform_is_umeyamas():
    from fxplain.faces.alignment import similarity_transform

    rng = np.random.default_rng(4)
    source = rng.uniform(0, 100, (5, 2))
    angle, scale, shift = 0.3, 2.5, np.array([10.0, -4.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    target = scale * source @ rotation.T + shift
    np.testing.assert_allclose(similarity_transform(source, target), np.hstack([scale * rotation, shift[:, None]]),
                               atol=1e-10)
    with pytest.raises(fxplain.InvalidInputError):
        similarity_transform(np.zeros((5, 2)), target)


def test_arcface_chips_put_the_template_on_the_face(faces):
    """A 112x112 model gets ArcFace's alignment: the least-squares similarity of its template to the 68-point face."""
    from fxplain.faces.alignment import ARCFACE_TEMPLATE, arcface_points, similarity_transform

    eye_errors = []
    for photo, found in faces[::12]:
        face = fxplain.Face(tuple(found["rect_ltrb"]), found["confidence"], np.asarray(found["landmarks_5"], float),
                            photo)
        chip, transform = face.chip_and_transform(_Model112())
        assert chip.shape == (112, 112, 3) and chip.dtype == np.uint8
        points = arcface_points(face.landmarks68)
        np.testing.assert_allclose(transform, similarity_transform(ARCFACE_TEMPLATE, points), atol=1e-9)
        back = np.linalg.solve(np.vstack([transform, [0, 0, 1]]), np.c_[points, np.ones(5)].T)[:2].T
        eye_errors.extend(np.hypot(*(back[:2] - ARCFACE_TEMPLATE[:2]).T))
        # the C kernel samples that transform as its NumPy twin does
        k, angle = np.hypot(transform[0, 0], transform[1, 0]), np.arctan2(transform[1, 0], transform[0, 0])
        centre = transform @ [55.5, 55.5, 1.0]
        details = ((centre[0] - 55.5 * k, centre[1] - 55.5 * k, centre[0] + 55.5 * k, centre[1] + 55.5 * k, angle),
                   112, 112)
        want, want_transform = reference.extract_image_chip(face.photo, details)
        np.testing.assert_array_equal(chip, want)
        np.testing.assert_allclose(transform, want_transform, atol=1e-9)
    assert np.mean(eye_errors) < 3.0  # on average the eyes land within 3 chip pixels (of 112) of the template's
    with pytest.raises(fxplain.InvalidInputError, match="68"):
        arcface_points(np.zeros((5, 2)))
