"""Shared fixtures: the real dlib model, the johns faces and dlib's oracle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import fxplain
from fxplain import datasets

DATA = Path(__file__).resolve().parent / "data"


def pytest_addoption(parser):
    parser.addoption("--large-eval", action="store_true", help="also run the large evaluation on johns")


def pytest_configure(config):
    config.addinivalue_line("markers", "large_eval: the larger evaluation run (needs --large-eval)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--large-eval"):
        return
    skip = pytest.mark.skip(reason="large evaluation: run with --large-eval")
    for item in items:
        if "large_eval" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def model() -> fxplain.FaceModel:
    """dlib's ResNet on the oneDNN core (installed by the test set-up; never skipped)."""
    return fxplain.load_model("dlib")


@pytest.fixture(scope="session")
def johns():
    """(images uint8 (55, 150, 150, 3), identities, paths) in the oracle's order."""
    return datasets.load_johns()


@pytest.fixture(scope="session")
def oracle() -> np.ndarray:
    """dlib's own C++ embeddings of the 55 johns chips (float64, (55, 128))."""
    names = (DATA / "johns_files.txt").read_text().split()
    reference = np.load(DATA / "johns_dlib_reference.npy")
    assert len(names) == reference.shape[0] == 55
    return reference


@pytest.fixture(scope="session")
def johns_embeddings(model, johns) -> np.ndarray:
    return model.embed(johns[0], batch_size=64)


@pytest.fixture(scope="session")
def default_decoder(model) -> fxplain.Decoder:
    """The dlib model's default decoder: trained on johns once (a few minutes), then cached."""
    return fxplain.default_decoder(model, show_progress=False)
