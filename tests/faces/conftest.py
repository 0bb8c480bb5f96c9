"""Fixtures of the photo tests: dlib's example photos and the faces dlib's own pipeline found in them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fxplain import datasets

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="session")
def photo_oracle() -> dict:
    """``tests/data/photos_dlib_reference.json``: per photo and upsampling, dlib's faces (see its README)."""
    return json.loads((DATA / "photos_dlib_reference.json").read_text())


@pytest.fixture(scope="session")
def faces(photo_oracle) -> list[tuple[np.ndarray, dict]]:
    """(photo uint8 RGB, oracle face) for every face dlib found in examples/faces (77)."""
    folder = datasets.examples_dir() / "faces"
    out = []
    for name, runs in sorted(photo_oracle.items()):
        photo = np.asarray(Image.open(folder / name).convert("RGB"))
        for run in runs.values():
            out.extend((photo, face) for face in run)
    assert len(out) == 77
    return out
