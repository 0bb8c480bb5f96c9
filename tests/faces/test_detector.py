"""dlib's CNN face detector: against dlib's own detections, the C pyramid against its NumPy twin, bad files and input.

The oracle (``tests/data/photos_dlib_reference.json``, see ``oracles/README.md``)
holds dlib 19.24's detections (``rect_ltrb``, ``confidence``, printed with 6
significant digits) on the photos of dlib's ``examples/faces/``, on the photo
itself (``upsample_0``) and upsampled once (``upsample_1``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import fxplain
from fxplain import _core, datasets
from fxplain.faces import reference
from fxplain.faces.detector import face_detector_path

#: The oracle's confidences have 6 significant digits; fxplain's differ from dlib's by at most 6e-6.
CONFIDENCE_TOLERANCE = 2e-5
#: Photos checked at upsample 1 (all of dlib's faces there are found only when upsampled).
UPSAMPLED = ["2007_007763.jpg", "2008_002079.jpg", "2008_004176.jpg"]


@pytest.fixture(scope="module")
def detector() -> fxplain.faces.FaceDetector:
    return fxplain.faces.load_face_detector()


@pytest.fixture(scope="module")
def photos(photo_oracle) -> dict[str, np.ndarray]:
    folder = datasets.examples_dir() / "faces"
    return {name: np.asarray(Image.open(folder / name).convert("RGB")) for name in sorted(photo_oracle)}


def _compare(got, want) -> float:
    """Boxes must be dlib's, in dlib's order; returns the largest confidence difference."""
    assert [list(box) for box, _ in got] == [face["rect_ltrb"] for face in want]
    diffs = [abs(conf - face["confidence"]) for (_, conf), face in zip(got, want)]
    return max(diffs, default=0.0)


def test_detections_match_dlib_at_upsample_0(detector, photos, photo_oracle):
    """All 12 photos, 35 faces: every box exactly dlib's, confidences within the oracle's precision."""
    worst, count = 0.0, 0
    for name, photo in photos.items():
        got = detector.detect(photo)
        want = photo_oracle[name]["upsample_0"]
        worst = max(worst, _compare(got, want))
        count += len(want)
        assert all(isinstance(v, int) for box, _ in got for v in box)
        assert all(isinstance(conf, float) and conf > 0 for _, conf in got)
    assert count == 35
    assert worst < CONFIDENCE_TOLERANCE


@pytest.mark.parametrize("name", UPSAMPLED)
def test_detections_match_dlib_at_upsample_1(detector, photos, photo_oracle, name):
    """The small faces of the PASCAL photos, found on the photo upsampled by pyramid_up, boxes mapped back."""
    want = photo_oracle[name]["upsample_1"]
    assert len(want) >= 4
    assert _compare(detector.detect(photos[name], upsample=1), want) < CONFIDENCE_TOLERANCE


def test_dogs_give_no_face(detector, photos):
    assert detector.detect(photos["dogs.jpg"]) == []


def test_min_confidence_is_dlibs_adjust_threshold(detector, photos):
    photo = photos["2008_001322.jpg"]
    everything = detector.detect(photo)
    assert detector.detect(photo, min_confidence=everything[-1][1]) == everything[:-1]
    assert len(detector.detect(photo, min_confidence=-0.5)) >= len(everything)


def test_detect_from_threads(detector, photos):
    """Two sizes at once (the kept network changes under the lock): the same results as one at a time."""
    names = ["2008_001009.jpg", "2008_001322.jpg", "2009_004587.jpg"] * 2
    serial = [detector.detect(photos[n]) for n in names]
    with ThreadPoolExecutor(3) as pool:
        assert list(pool.map(lambda n: detector.detect(photos[n]), names)) == serial


@pytest.mark.parametrize("size", [(375, 500), (31, 17), (100, 7), (8, 8), (1, 1), (2, 3), (1545, 1986)])
def test_pyramid_layout_matches_twin(size):
    rects, rows, cols = _core.tiled_pyramid_layout(*size, 10, 11)
    want_rects, want_rows, want_cols = reference.tiled_pyramid_layout(*size)
    assert (rows, cols) == (want_rows, want_cols)
    np.testing.assert_array_equal(rects, want_rects)
    assert list(rects[0]) == [11, 11, 11 + size[1] - 1, 11 + size[0] - 1]


def test_tiled_pyramid_matches_twin_bitwise(detector, photos):
    rng = np.random.default_rng(7)
    images = [photos["2008_001322.jpg"], rng.integers(0, 256, (45, 61, 3), dtype=np.uint8)]
    for image in images:
        tiled, rects = detector.tiled_pyramid(image)
        want = reference.tiled_pyramid(image, detector.options.mean, rects, *tiled.shape[:2])
        np.testing.assert_array_equal(tiled, want)
        left, top, right, bottom = rects[0]
        expected = (image.astype(np.float32) - detector.options.mean) / np.float32(256)
        np.testing.assert_array_equal(tiled[top:bottom + 1, left:right + 1], expected)
        assert tiled[0].max() == tiled[0].min() == 0  # the outer padding


def test_tiled_pyramid_any_layout_stays_in_bounds():
    """Levels the caller lays out (here upscaling, which dlib's layout never does) are resampled in bounds."""
    image = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    mean = np.zeros(3, np.float32)
    for rects, rows, cols in [([[0, 0, 1, 1], [0, 2, 4999, 2]], 3, 5000), ([[0, 0, 1, 1], [2, 0, 2, 2999]], 3000, 3)]:
        rects = np.array(rects, np.int32)
        got = _core.tiled_pyramid(image, mean, rects, rows, cols)
        np.testing.assert_array_equal(got, reference.tiled_pyramid(image, mean, rects, rows, cols))
    with pytest.raises(fxplain.InvalidInputError):
        _core.tiled_pyramid(image, mean, np.array([[0, 0, 1, 1], [0, 2, 5, 2]], np.int32), 3, 5)


def test_pyramid_up_matches_twin_bitwise(photos):
    rng = np.random.default_rng(3)
    for image in [photos["2008_002079.jpg"], rng.integers(0, 256, (5, 9, 3), dtype=np.uint8),
                  np.zeros((1, 1, 3), np.uint8)]:
        up = _core.pyramid_up(image)
        assert up.shape == (2 * image.shape[0] + 1, 2 * image.shape[1] + 2, 3)
        np.testing.assert_array_equal(up, reference.pyramid_up(image))


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_damaged_files_raise_model_format_error(tmp_path):
    data = face_detector_path().read_bytes()
    first_con = data.index(b"con_4")
    cases = {
        "empty.dat": b"",
        "header.dat": data[:40],
        "mid_tensor.dat": data[:first_con + 100],
        "last_byte.dat": data[:-1],
        "extra_byte.dat": data + b"\x00",
        "options_version.dat": data[:14] + b"\x01\x09" + data[16:],  # mmod_options version 9
        "count.dat": data[:first_con + 8] + b"\xc1" + data[first_con + 9:],  # first tensor: 1217 values
        "loss.dat": data.replace(b"loss_mmod_", b"loss_mmxd_", 1),
    }
    assert data[14:16] == b"\x01\x01" and data[first_con + 7:first_con + 10] == b"\x02\xc0\x04"  # 1, 1216
    for name, bad in cases.items():
        path = _write(tmp_path, name, bad)
        with pytest.raises(fxplain.ModelFormatError, match=str(path)):
            fxplain.faces.load_face_detector(path)
    with pytest.raises(fxplain.ModelNotFoundError):
        fxplain.faces.load_face_detector(tmp_path / "missing.dat")


def test_bad_arguments_raise_invalid_input(detector):
    photo = np.zeros((60, 80, 3), np.uint8)
    huge = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (10_000, 10_000, 3))
    bad_images = [photo.tolist(), photo.astype(np.float32), photo[:, :, 0], np.zeros((60, 80, 4), np.uint8),
                  np.zeros((0, 80, 3), np.uint8), np.zeros((3, 3, 3), np.uint8), huge]
    for image in bad_images:
        with pytest.raises(fxplain.InvalidInputError):
            detector.detect(image)
    for upsample in (-1, fxplain.faces.detector.MAX_UPSAMPLE + 1, 1.5, True, "1"):
        with pytest.raises(fxplain.InvalidInputError):
            detector.detect(photo, upsample=upsample)
    with pytest.raises(fxplain.InvalidInputError):
        detector.detect(np.broadcast_to(photo[:1, :1], (2000, 2000, 3)), upsample=3)
    for threshold in ("high", float("nan"), None):
        with pytest.raises(fxplain.InvalidInputError):
            detector.detect(photo, min_confidence=threshold)
    assert detector.detect(photo) == []


@pytest.mark.parametrize("size", [(1545, 1986), (3091, 3974), (120, 5000), (5000, 90), (95, 95)])
def test_bands_tile_the_output_with_their_receptive_field(detector, size):
    """Equal bands on multiples of the stride whose kept rows tile the output, each margin rows from a cut."""
    _, rows, cols = _core.tiled_pyramid_layout(*size, 10, 11)
    bands = detector.bands(rows, cols)
    total = (rows - 29) // 8 + 1  # three 5x5 convolutions of stride 2 read 29 rows per output row
    margin = 10  # padding 2 + 2 + 2 + 4 of the stride-1 convolutions
    assert len({stop - start for start, stop, _, _ in bands}) == 1
    kept = []
    for start, stop, keep_start, keep_stop in bands:
        assert start % 8 == 0 and 0 <= start and stop <= rows
        first, length = start // 8, (stop - start - 29) // 8 + 1
        assert first * 8 + (length - 1) * 8 + 29 == stop
        assert keep_start >= margin or first == 0
        assert length - keep_stop >= margin or first + length == total
        kept.extend(range(first + keep_start, first + keep_stop))
    assert kept == list(range(total))


def test_tiled_rows_assemble_the_tiled_pyramid(detector, photos):
    image = photos["2008_001322.jpg"]
    tiled, rects = detector.tiled_pyramid(image)
    levels = _core.pyramid_levels(image, detector.options.mean, rects)
    for start, stop in [(0, 1), (0, tiled.shape[0]), (17, 400), (tiled.shape[0] - 3, tiled.shape[0] + 5)]:
        band = _core.tiled_pyramid_rows(image, detector.options.mean, rects, levels, tiled.shape[1], start, stop)
        np.testing.assert_array_equal(band[:tiled.shape[0] - start], tiled[start:stop])
        assert not band[tiled.shape[0] - start:].any()
    with pytest.raises(fxplain.InvalidInputError):
        _core.tiled_pyramid_rows(image, detector.options.mean, rects, levels[:-1], tiled.shape[1], 0, 5)
    with pytest.raises(fxplain.InvalidInputError):
        _core.tiled_pyramid_rows(image, detector.options.mean, rects, levels, tiled.shape[1], 5, 5)


def test_banded_scores_are_those_of_the_whole_tiled_image(detector, photos, monkeypatch):
    """bald_guys in 2 to 18 bands: the score map bit-identical to one network run over the whole tiled image."""
    image = photos["bald_guys.jpg"]
    tiled, _ = detector.tiled_pyramid(image)
    whole = fxplain.runtime.core_net.build_core_net(detector.network_spec(*tiled.shape[:2])).forward(tiled[None])[0]
    for values in (1 << 24, 1 << 20):
        monkeypatch.setattr(fxplain.faces.detector, "BAND_VALUES", values)
        scores, _ = detector.score_map(image)
        np.testing.assert_array_equal(scores, whole)
    assert len(detector.bands(*tiled.shape[:2])) > 15


_LARGE_PHOTO = """
import collections, json
import numpy as np
from PIL import Image
import fxplain
from fxplain import datasets
tile = np.asarray(Image.open(datasets.examples_dir() / "faces" / "bald_guys.jpg").convert("RGB"))
photo = np.ascontiguousarray(np.tile(tile, (3, 4, 1))[:4000, :6000])
del tile
faces = fxplain.detect_faces(photo)
per_tile = collections.Counter(f"{(f.box[0] + f.box[2]) // 2 // 1986},{(f.box[1] + f.box[3]) // 2 // 1545}"
                               for f in faces)
# VmHWM, the peak of this process's own memory: ru_maxrss would start at pytest's peak (kept across fork and exec)
peak_kb = int(next(line for line in open("/proc/self/status") if line.startswith("VmHWM")).split()[1])
print(json.dumps({"peak_mb": peak_kb / 1024,
                  "per_tile": per_tile}))
"""


def test_a_6000x4000_photo_is_detected_in_bounded_memory():
    """12 copies of bald_guys in a 6000x4000 photo: each whole copy's faces found, peak memory under 1.2 GB.

    Run whole, the tiled pyramid and the network's activations took 0.75 GB
    for bald_guys alone (and would take ~6 GB here, as they do in dlib);
    banded, the pyramid's levels (0.65 GB) dominate.
    """
    done = subprocess.run([sys.executable, "-c", _LARGE_PHOTO], capture_output=True, text=True, timeout=600,
                          check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["peak_mb"] < 1200, report
    whole_copies = [f"{col},{row}" for col in range(3) for row in range(2)]
    assert all(report["per_tile"].get(key, 0) >= 24 for key in whole_copies), report
