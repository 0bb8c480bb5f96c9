"""What decoders train on: every face of ordinary photos, and a background that cannot carry the feature."""

from __future__ import annotations

import numpy as np
import pytest

import fxplain
from fxplain import datasets
from fxplain.faces.collection import example_photos, faces_in_photos
from fxplain.models.regions import face_ellipse
from fxplain.reconstruction.augment import BACKGROUND_FEATHER, NEUTRAL_GREY, separate_background
from fxplain.reconstruction.training import training_images


def test_every_face_of_a_photo_becomes_a_training_chip(johns):
    bald_guys = datasets.examples_dir() / "faces" / "bald_guys.jpg"
    chips = faces_in_photos(bald_guys, (150, 150))
    found = fxplain.detect_faces(bald_guys, upsample=1)
    assert chips.shape == (24, 150, 150, 3) and chips.dtype == np.uint8
    np.testing.assert_array_equal(chips[0], found[0].aligned_chip((150, 150)))
    # a folder may mix photos (all faces) and chips (taken as they are)
    mixed = training_images([bald_guys, johns[0][0], johns[0][1].astype(np.float32)], (150, 150))
    assert len(mixed) == 26
    np.testing.assert_array_equal(mixed[:24], chips)
    np.testing.assert_array_equal(mixed[24], johns[0][0])
    # a detected Face stands for its own chip, as everywhere images are taken
    np.testing.assert_array_equal(training_images([found[3]], (150, 150))[0], found[3].aligned_chip((150, 150)))
    dogs = datasets.examples_dir() / "faces" / "dogs.jpg"
    with pytest.raises(fxplain.InvalidInputError, match="no face"):
        faces_in_photos(dogs, (150, 150))
    with pytest.raises(fxplain.InvalidInputError, match="training images must be"):
        training_images(42, (150, 150))


def test_the_reachable_photos_add_their_faces_to_johns():
    photos = example_photos()
    assert len(photos) >= 11  # dlib's ten photos with faces and Grace Hopper
    both = training_images("johns+photos", (150, 150))
    assert len(both) >= 55 + 60
    np.testing.assert_array_equal(both[:55], datasets.load_johns()[0])


def test_separate_background_keeps_the_face_and_replaces_the_rest():
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (4, 150, 150, 3)).astype(np.float32)
    inputs, targets = separate_background(images, "keep", rng)
    assert inputs is images and targets is images
    alpha = face_ellipse((150, 150), feather=BACKGROUND_FEATHER)
    face, outside = alpha == 1, alpha == 0
    inputs, targets = separate_background(images, "neutral", rng)
    assert inputs is targets
    np.testing.assert_array_equal(targets[:, face], images[:, face])
    assert np.all(targets[:, outside] == np.float32(NEUTRAL_GREY))
    inputs, targets = separate_background(images, "random", rng)
    np.testing.assert_array_equal(inputs[:, face], images[:, face])
    assert np.all(targets[:, outside] == np.float32(NEUTRAL_GREY))
    for i in range(4):  # each face in front of another chip's background
        donors = [j for j in range(4) if np.array_equal(inputs[i][outside], images[j][outside])]
        assert len(donors) == 1 and donors[0] != i
    with pytest.raises(fxplain.InvalidInputError, match="background"):
        fxplain.train_decoder(fxplain.load_model("dlib"), images.astype(np.uint8), steps=1, background="blur")
