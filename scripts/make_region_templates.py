"""Regenerate ``fxplain/data/face_templates.json``: where a face's 68 landmarks lie in each aligned chip.

For every face of :func:`fxplain.faces.collection.example_photos` (dlib's
example photos and matplotlib's Grace Hopper), dlib's 68 landmarks are
mapped from the photo into the face's aligned chip for each alignment
template (dlib's 150x150 chips, insightface's 112x112 ones) and averaged:
the template's mean face, which the facial regions of chips without
landmarks of their own are drawn from (:mod:`fxplain.faces.regions`). The
file also records which of the 68 points each of dlib's 5 alignment points
lies nearest, so a face's own 5 points can bend the template to its shape.

    .venv/bin/python scripts/make_region_templates.py
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from fxplain import LicenceWarning
from fxplain.faces import detect_faces
from fxplain.faces.collection import COLLECT_MIN_CONFIDENCE, COLLECT_MIN_SIDE, example_photos

OUT = Path(__file__).resolve().parents[1] / "fxplain" / "data" / "face_templates.json"
SIZES = {"dlib150": (150, 150), "arcface112": (112, 112)}


class _Size:
    def __init__(self, size):
        self.input_size = size


def _to_chip(points: np.ndarray, chip_to_photo: np.ndarray) -> np.ndarray:
    full = np.vstack([chip_to_photo, [0.0, 0.0, 1.0]])
    photo_to_chip = np.linalg.inv(full)[:2]
    return points @ photo_to_chip[:, :2].T + photo_to_chip[:, 2]


def main() -> None:
    warnings.simplefilter("ignore", LicenceWarning)
    shapes = {name: [] for name in SIZES}
    nearest = []
    for photo in example_photos():
        for face in detect_faces(photo, upsample=1, min_confidence=COLLECT_MIN_CONFIDENCE):
            left, top, right, bottom = face.box
            if min(right - left, bottom - top) + 1 < COLLECT_MIN_SIDE:
                continue
            points68 = face.landmarks68
            nearest.append([int(np.argmin(np.linalg.norm(points68 - p, axis=1))) for p in face.landmarks])
            for name, size in SIZES.items():
                _, to_photo = face.chip_and_transform(_Size(size))
                shapes[name].append(_to_chip(points68, to_photo))
    votes = np.array(nearest)
    five = [int(np.bincount(votes[:, k]).argmax()) for k in range(5)]
    out = {"faces": len(nearest), "five_point_nearest68": five,
           "source": "mean of dlib's 68 landmarks over the example photos' faces (scripts/make_region_templates.py)"}
    for name, size in SIZES.items():
        mean = np.mean(shapes[name], axis=0)
        spread = float(np.mean(np.linalg.norm(np.array(shapes[name]) - mean, axis=2)))
        out[name] = {"size": list(size), "landmarks68": np.round(mean, 2).tolist(), "mean_spread_px": round(spread, 2)}
        print(f"{name}: {len(shapes[name])} faces, mean landmark spread {spread:.2f} px")
    print("5-point -> nearest of 68:", five)
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
