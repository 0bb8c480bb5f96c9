"""dlib's 5-point landmark predictor: against dlib's own output, against its NumPy twin, and against bad input.

The oracle, ``tests/data/photos_dlib_reference.json`` (a copy of
``oracles/photos_dlib_reference.json``; see ``oracles/README.md`` and
``oracles/photo_oracle.cpp``), is dlib 19.24's C++ pipeline on the photos of
dlib's ``examples/faces/`` (Debian ``libdlib19.1``): per face the detector box
``rect_ltrb``, the landmarks ``landmarks_5`` (integer pixels) and the descriptor
of the aligned chip. Photos are decoded here with Pillow, dlib decoded them
with libjpeg; the landmarks agree exactly all the same.
"""

from __future__ import annotations

import math
import re
import resource
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import fxplain
from fxplain import _core
from fxplain.faces import reference
from fxplain.faces.shape_predictor import _BulkReader, read_shape_predictor

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def predictor() -> fxplain.faces.ShapePredictor:
    return fxplain.faces.load_shape_predictor()


def test_landmarks_match_dlib_exactly(predictor, faces):
    """Rounded as dlib rounds (half up), every landmark of all 77 faces equals dlib's."""
    deviations = []
    for photo, face in faces:
        landmarks = predictor.predict(photo, face["rect_ltrb"])
        assert landmarks.shape == (5, 2) and landmarks.dtype == np.float64
        deviations.append(np.abs(np.floor(landmarks + 0.5) - np.array(face["landmarks_5"])).max())
    assert max(deviations) == 0, f"{sum(d > 0 for d in deviations)} faces differ, by up to {max(deviations)} px"


def _twin(predictor, image, box):
    a = predictor._arrays
    return reference.shape_predict(a.initial_shape, a.split_index, a.split_thresh, a.leaf_values, a.anchor,
                                   a.deltas, image, box)


def test_c_kernel_matches_numpy_twin(predictor, faces):
    for photo, face in faces[::7]:
        assert np.array_equal(predictor.predict(photo, face["rect_ltrb"]), _twin(predictor, photo, face["rect_ltrb"]))


def test_grayscale_image_is_the_rgb_intensity(predictor, faces):
    """dlib's intensity of an RGB pixel is (r + g + b) // 3: a gray image of those values gives the same landmarks."""
    photo, face = faces[0]
    gray = (photo.astype(np.int64).sum(axis=2) // 3).astype(np.uint8)
    assert np.array_equal(predictor.predict(gray, face["rect_ltrb"]), predictor.predict(photo, face["rect_ltrb"]))
    assert np.array_equal(predictor.predict(gray, face["rect_ltrb"]), _twin(predictor, gray, face["rect_ltrb"]))


def test_box_past_the_border_and_inputs_unchanged(predictor, faces):
    """A box reaching past the image reads zeros there (as dlib); the inputs are not modified."""
    photo, face = faces[0]
    left, top, right, bottom = face["rect_ltrb"]
    box = (left - 400, top - 60, right, bottom)
    before = photo.copy()
    got = predictor.predict(photo, box)
    assert np.array_equal(got, _twin(predictor, photo, box))
    assert np.array_equal(photo, before)


@pytest.mark.parametrize("image, box, fragment", [
    (np.zeros((50, 60, 3), np.float32), (0, 0, 10, 10), "dtype uint8"),
    (np.zeros((50, 60, 4), np.uint8), (0, 0, 10, 10), "shape"),
    (np.zeros((0, 60, 3), np.uint8), (0, 0, 10, 10), "empty"),
    ([[1, 2], [3, 4]], (0, 0, 1, 1), "numpy array"),
    (np.zeros((50, 60, 3), np.uint8), (100, 0, 120, 10), "outside"),
    (np.zeros((50, 60, 3), np.uint8), (-30, -30, -5, -5), "outside"),
    (np.zeros((50, 60, 3), np.uint8), (10, 10, 10, 20), "right > left"),
    (np.zeros((50, 60, 3), np.uint8), (0, 0, 10), "4 finite integers"),
    (np.zeros((50, 60, 3), np.uint8), (0, 0, 10.5, 10), "4 finite integers"),
    (np.zeros((50, 60, 3), np.uint8), (0, 0, float("nan"), 10), "4 finite integers"),
    (np.zeros((50, 60, 3), np.uint8), "box", "box must be"),
])
def test_bad_arguments(predictor, image, box, fragment):
    with pytest.raises(fxplain.InvalidInputError, match=fragment):
        predictor.predict(image, box)


def test_core_checks_indices_itself(predictor):
    """The C kernel does not trust the arrays it is given: an index out of range is an error, not a read."""
    a = predictor._arrays
    bad = a.split_index.copy()
    bad[3, 7, 2, 1] = a.anchor.shape[1]
    image = np.zeros((40, 40), np.uint8)
    box = np.array([0, 0, 39, 39], np.int32)
    with pytest.raises(fxplain.InvalidInputError, match="split feature index"):
        _core.shape_predict(a.initial_shape, bad, a.split_thresh, a.leaf_values, a.anchor, a.deltas, image, box)
    anchor = a.anchor.copy()
    anchor[0, 0] = 5
    with pytest.raises(fxplain.InvalidInputError, match="anchor index"):
        _core.shape_predict(a.initial_shape, a.split_index, a.split_thresh, a.leaf_values, anchor, a.deltas,
                            image, box)
    with pytest.raises(fxplain.InvalidInputError, match="leaf_values"):
        _core.shape_predict(a.initial_shape, a.split_index, a.split_thresh, a.leaf_values[:, :3], a.anchor,
                            a.deltas, image, box)


# ---- hostile files ---------------------------------------------------------------------------------------

def _int(value: int) -> bytes:
    """dlib's integer encoding: a control byte (sign bit, byte count) and little-endian magnitude bytes."""
    magnitude = abs(value)
    raw = magnitude.to_bytes((magnitude.bit_length() + 7) // 8, "little")
    return bytes([len(raw) | (0x80 if value < 0 else 0)]) + raw


def _float(value: float) -> bytes:
    mantissa, exponent = math.frexp(value)
    return _int(int(mantissa * (1 << 24))) + _int(exponent - 24)


def _column(values) -> bytes:
    return _int(-len(values)) + _int(-1) + b"".join(_float(v) for v in values)


def _tiny_predictor(levels=2, trees=3, depth=2, features=4, *, split_index=None, anchor=None) -> bytes:
    """A small, valid shape_predictor file in dlib's serialisation (5 parts), with optional bad fields."""
    rng = np.random.default_rng(0)
    initial = [0.78, 0.35, 0.62, 0.35, 0.23, 0.35, 0.38, 0.35, 0.5, 0.66]
    splits = (1 << depth) - 1
    out = [_int(1), _column(initial), _int(levels)]
    for level in range(levels):
        out.append(_int(trees))
        for t in range(trees):
            out.append(_int(splits))
            for s in range(splits):
                i1, i2 = rng.integers(0, features, 2)
                if split_index is not None and (level, t, s) == split_index[0]:
                    i1 = split_index[1]
                out += [_int(int(i1)), _int(int(i2)), _float(float(rng.normal(0, 20)))]
            out.append(_int(splits + 1))
            out += [_column(rng.normal(0, 0.01, 10).tolist()) for _ in range(splits + 1)]
    out.append(_int(levels))
    for level in range(levels):
        idx = rng.integers(0, 5, features).tolist()
        if anchor is not None and level == 0:
            idx[0] = anchor
        out += [_int(features)] + [_int(int(i)) for i in idx]
    out.append(_int(levels))
    for _ in range(levels):
        out += [_int(features)] + [_float(float(v)) for v in rng.normal(0, 0.1, 2 * features)]
    return b"".join(out)


def test_tiny_predictor_round_trips(tmp_path):
    """The hand-written file parses and runs, in C as in NumPy (so the hostile variants below test the checks)."""
    path = tmp_path / "tiny.dat"
    path.write_bytes(_tiny_predictor())
    sp = fxplain.faces.load_shape_predictor(path)
    assert sp.num_parts == 5 and sp._arrays.split_index.shape == (2, 3, 3, 2)
    photo = np.random.default_rng(1).integers(0, 256, (80, 90, 3), dtype=np.uint8)
    box = (10, 12, 70, 72)
    assert np.array_equal(sp.predict(photo, box), _twin(sp, photo, box))


def _hostile(data: bytes):
    """(name, bytes) variants of a valid file that must all be refused."""
    r = _BulkReader(data, "x")
    r.integer()
    r.column("initial_shape", -1)
    levels_at = r.pos
    r.integer()
    trees_at = r.pos
    return [
        ("truncated", data[:len(data) // 2]),
        ("truncated_by_one", data[:-1]),
        ("empty", b""),
        ("wrong_version", _int(2) + data[2:]),
        ("levels_flipped", data[:levels_at] + _int(1 << 40) + data[trees_at:]),
        ("trailing_bytes", data + b"\x00"),
        ("bad_control_byte", data[:trees_at] + b"\x7f" + data[trees_at + 1:]),
    ]


@pytest.mark.parametrize("variant", range(7))
def test_hostile_tiny_files(tmp_path, variant):
    name, data = _hostile(_tiny_predictor())[variant]
    path = tmp_path / f"{name}.dat"
    path.write_bytes(data)
    with pytest.raises(fxplain.ModelFormatError, match=re.escape(str(path))):
        fxplain.faces.load_shape_predictor(path)


@pytest.mark.parametrize("kwargs, fragment", [
    ({"split_index": ((1, 2, 1), 4)}, r"forests\[1\]: split pixel index out of range \[0, 4\)"),
    ({"anchor": 5}, r"anchor_idx\[0\]: landmark index out of range \[0, 5\)"),
])
def test_out_of_range_indices(tmp_path, kwargs, fragment):
    path = tmp_path / "bad.dat"
    path.write_bytes(_tiny_predictor(**kwargs))
    with pytest.raises(fxplain.ModelFormatError, match=fragment):
        fxplain.faces.load_shape_predictor(path)


def test_incomplete_tree_and_nan(tmp_path):
    good = _tiny_predictor(depth=2)
    # a tree of 2 splits is not complete (2^depth - 1)
    r = _BulkReader(good, "x")
    r.integer()
    r.column("initial_shape", -1)
    r.integer()
    r.integer()
    splits_at = r.pos
    bad = good[:splits_at] + _int(2) + good[splits_at + 2:]
    with pytest.raises(fxplain.ModelFormatError, match=r"forests\[0\]\[0\]\.splits"):
        read_shape_predictor(bad, "incomplete.dat")
    # NaN in dlib's float encoding: exponent 32002
    nan = good.replace(_float(0.78), _int(1) + _int(32002), 1)
    with pytest.raises(fxplain.ModelFormatError, match="incomplete.dat: initial_shape: NaN"):
        read_shape_predictor(nan, "incomplete.dat")


def test_real_file_truncated_and_corrupted(predictor, tmp_path):
    """The real model, cut short or with its tree count changed, is refused with the file's name."""
    data = Path(predictor.source).read_bytes()
    cut = tmp_path / "cut.dat"
    cut.write_bytes(data[:len(data) // 3])
    with pytest.raises(fxplain.ModelFormatError, match=r"cut\.dat: .*file ends early"):
        fxplain.faces.load_shape_predictor(cut)
    r = _BulkReader(data, "x")
    r.integer()
    r.column("initial_shape", -1)
    r.integer()
    at = r.pos
    assert r.integer() == 500
    changed = tmp_path / "changed.dat"
    changed.write_bytes(data[:at] + _int(499) + data[r.pos:])
    with pytest.raises(fxplain.ModelFormatError, match=r"changed\.dat: "):
        fxplain.faces.load_shape_predictor(changed)


def test_missing_file(tmp_path):
    with pytest.raises(fxplain.ModelNotFoundError):
        fxplain.faces.load_shape_predictor(tmp_path / "nope.dat")


def test_threads_give_the_serial_result(predictor, faces):
    jobs = faces[:20]
    serial = [predictor.predict(photo, face["rect_ltrb"]) for photo, face in jobs]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(lambda job: predictor.predict(job[0], job[1]["rect_ltrb"]), jobs))
    assert all(np.array_equal(a, b) for a, b in zip(serial, threaded))


def test_repeated_calls_do_not_leak(predictor, faces):
    photo, face = faces[0]
    for _ in range(20):
        predictor.predict(photo, face["rect_ltrb"])
    before = _rss_mib()
    for _ in range(2000):
        predictor.predict(photo, face["rect_ltrb"])
    assert _rss_mib() - before < 10


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20
