"""Saved explanations and image files read as untrusted data: fxplain's errors, no hangs, no wrong answers."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import fxplain
from fxplain._util import images as image_input


@pytest.fixture(scope="module")
def saved(model, johns, tmp_path_factory):
    r = fxplain.Explainer(model, method="occlusion", patch_sizes=(50,)).explain(johns[0][0], johns[0][1])
    path = tmp_path_factory.mktemp("saved") / "r.npz"
    r.save(path)
    return r, path.read_bytes()


def test_every_damaged_byte_gives_fxplains_error_or_the_same_result(saved, tmp_path):
    """The campaign's BadZipFile / EOFError / KeyError escapes: each flipped byte or truncation now either
    raises ModelFormatError or (a byte the reader never uses) loads the identical explanation."""
    r, data = saved
    rng = np.random.default_rng(0)
    positions = sorted(set(rng.integers(0, len(data), 150).tolist()) | set(range(64)) | {len(data) - 1})
    outcomes = {"refused": 0, "identical": 0}
    for k, position in enumerate(positions):
        damaged = bytearray(data)
        damaged[position] ^= 0xFF
        path = tmp_path / f"d{k}.npz"
        path.write_bytes(bytes(damaged))
        try:
            back = fxplain.PairExplanation.load(path)
        except fxplain.ModelFormatError:
            outcomes["refused"] += 1
            continue
        for name in ("similarity", "dissimilarity", "images"):
            np.testing.assert_array_equal(getattr(back, name), getattr(r, name))
        assert (back.score, back.threshold, back.match, back.method) == (r.score, r.threshold, r.match, r.method)
        outcomes["identical"] += 1
    for cut in (0, 10, len(data) // 2, len(data) - 1):
        path = tmp_path / f"cut{cut}.npz"
        path.write_bytes(data[:cut])
        with pytest.raises(fxplain.ModelFormatError):
            fxplain.PairExplanation.load(path)
    print(outcomes)
    assert outcomes["refused"] > 0


def _resave(r, path, **meta_changes):
    """Write r with the given metadata fields changed (and the checksum recomputed, as a forger would)."""
    r.save(path)
    with np.load(path) as data:
        arrays = {k: data[k] for k in ("similarity", "dissimilarity", "images")}
        meta = json.loads(str(data["meta"]))
    meta.update(meta_changes)
    np.savez(path, **arrays, meta=np.array(json.dumps(meta)))


@pytest.mark.parametrize("changes,fragment", [
    ({"score": "high"}, "field 'score'"),
    ({"match": 1}, "field 'match'"),
    ({"seed": -3}, "impossible value"),
    ({"extras": []}, "field 'extras'"),
    ({"match": False}, "contradicts"),
    ({"version": 7}, "version-1 to -3"),
    ({"checksum": "0" * 64}, "checksum"),
])
def test_forged_or_inconsistent_metadata_is_refused(saved, tmp_path, changes, fragment):
    path = tmp_path / "forged.npz"
    _resave(fxplain.PairExplanation.load(_write(tmp_path, saved[1])), path, **changes)
    with pytest.raises(fxplain.ModelFormatError, match=fragment):
        fxplain.PairExplanation.load(path)


def _write(tmp_path, data):
    path = tmp_path / "orig.npz"
    path.write_bytes(data)
    return path


def test_changed_maps_fail_the_checksum_and_version_1_files_still_load(saved, tmp_path):
    r, data = saved
    with np.load(_write(tmp_path, data)) as npz:
        arrays = {k: npz[k].copy() for k in ("similarity", "dissimilarity", "images")}
        meta = json.loads(str(npz["meta"]))
    arrays["dissimilarity"][0, 70, 70] += 1.0  # a planted "explanation"
    np.savez(tmp_path / "edited.npz", **arrays, meta=np.array(json.dumps(meta)))
    with pytest.raises(fxplain.ModelFormatError, match="checksum"):
        fxplain.PairExplanation.load(tmp_path / "edited.npz")
    meta["version"] = 1
    del meta["checksum"]
    np.savez(tmp_path / "v1.npz", **{k: getattr(r, k) for k in arrays}, meta=np.array(json.dumps(meta)))
    np.testing.assert_array_equal(fxplain.PairExplanation.load(tmp_path / "v1.npz").similarity, r.similarity)


def test_a_member_that_is_not_npy_data_is_refused(saved, tmp_path):
    """Found by the results fuzz target: np.load hands such a member over as raw bytes."""
    import io
    import zipfile

    _, data = saved
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(buffer, "w") as target:
        for info in source.infolist():
            target.writestr(info.filename, b"not npy" if info.filename == "images.npy" else source.read(info))
    with pytest.raises(fxplain.ModelFormatError, match="images is not a NumPy array"):
        fxplain.PairExplanation.from_bytes(buffer.getvalue(), "blob")
    assert fxplain.PairExplanation.from_bytes(data).score == saved[0].score  # the bytes-level reader


def test_fifos_and_directories_are_refused_without_hanging(tmp_path, model):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(fxplain.InvalidInputError, match="not a"):
        fxplain.PairExplanation.load(fifo)
    with pytest.raises(fxplain.InvalidInputError, match="image file path is not a file"):
        model.embed(fifo)
    with pytest.raises(fxplain.InvalidInputError, match="image file path is not a file"):
        model.embed(tmp_path)


def test_decompression_bombs_are_refused_before_decoding(tmp_path, model, monkeypatch):
    from PIL import Image

    path = tmp_path / "big.png"
    Image.new("RGB", (300, 200)).save(path)
    monkeypatch.setattr(image_input, "MAX_IMAGE_PIXELS", 300 * 200 - 1)
    with pytest.raises(fxplain.InvalidInputError, match="300x200 pixels, more than"):
        model.embed(path)


@pytest.mark.parametrize("content", [b"\x89PNG\r\n\x1a\n" + bytes(40), b"GIF89a" + bytes(20), b"BM" + bytes(60)])
def test_damaged_image_files_give_fxplains_error(tmp_path, model, content):
    path = tmp_path / "face.img"
    path.write_bytes(content)
    with pytest.raises(fxplain.InvalidInputError, match="cannot read image file"):
        model.embed(path)


def test_a_model_file_rewritten_in_place_is_parsed_again(tmp_path):
    """The parsed-file cache keys on content: same size and same mtime must not return the old object."""
    from fxplain._util.files import ParsedFileCache

    cache = ParsedFileCache("test file", lambda data, path: data.decode())
    path = tmp_path / "model.dat"
    path.write_bytes(b"first")
    stamp = path.stat().st_mtime_ns
    assert cache.load(path) == "first" and cache.load(path) is cache.load(path)
    path.write_bytes(b"other")
    os.utime(path, ns=(stamp, stamp))  # a rewrite within one timestamp tick
    assert cache.load(path) == "other"
    with pytest.raises(fxplain.ModelNotFoundError, match="not found"):
        cache.load(tmp_path / "missing.dat")
