"""IdentificationExplanation: saved and loaded without pickle (untrusted files refused), plotted, and the CLI."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import fxplain
from fxplain import IdentificationExplanation, InvalidInputError, ModelFormatError

CHEAP = {"method": "occlusion", "patch_sizes": (50,), "stride": 1.0}


@pytest.fixture(scope="module")
def explained(model, johns, held_out, gallery):
    probe = str(johns[2][held_out[1]])
    return fxplain.explain_identification(model, probe, gallery, top_k=2, mate="John_Shimkus", **CHEAP)


def test_save_and_load_round_trip(explained, tmp_path):
    path = tmp_path / "r.fxi"
    explained.save(path)
    loaded = IdentificationExplanation.load(path)
    for name in ("threshold", "combine", "method", "params", "seed", "model_hash", "model_name", "mate", "mate_rank",
                 "mate_score", "gallery_identities", "gallery_images", "probe_source", "extras"):
        assert getattr(loaded, name) == getattr(explained, name), name
    assert loaded.ranking == explained.ranking  # rank, identity, score, match, distance, image
    np.testing.assert_array_equal(loaded.probe, np.rint(explained.probe))
    for kind in ("similarity", "dissimilarity"):
        np.testing.assert_array_equal(getattr(loaded.contrast, kind), getattr(explained.contrast, kind))
        for a, b in zip(loaded.pairs, explained.pairs):
            np.testing.assert_array_equal(getattr(a, kind), getattr(b, kind))
    assert loaded.contrast.first == explained.contrast.first and loaded.contrast.second == explained.contrast.second
    assert (loaded.contrast.reason, loaded.contrast.score) == (explained.contrast.reason, explained.contrast.score)
    assert loaded.contrast.extras == explained.contrast.extras
    assert [p.score for p in loaded.pairs] == [p.score for p in explained.pairs]
    assert repr(loaded) == repr(explained) and loaded.table() == explained.table()


def _rewrite(path, target, change):
    """Copy the saved archive at ``path`` to ``target`` with member ``name`` replaced by ``change(bytes)``."""
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(target, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            dst.writestr(info.filename, change(info.filename, data))


def _meta_member(edit):
    def change(name, data):
        if name != "meta.npy":
            return data
        meta = json.loads(str(np.load(io.BytesIO(data))))
        edit(meta)
        buffer = io.BytesIO()
        np.save(buffer, np.array(json.dumps(meta)))
        return buffer.getvalue()
    return change


def test_untrusted_files_are_refused(explained, tmp_path):
    path = tmp_path / "r.fxi"
    explained.save(path)
    with pytest.raises(InvalidInputError, match="not found"):
        IdentificationExplanation.load(tmp_path / "gone.fxi")
    fifo = tmp_path / "pipe.fxi"
    os.mkfifo(fifo)
    with pytest.raises(InvalidInputError):
        IdentificationExplanation.load(fifo)
    with pytest.raises(InvalidInputError):
        IdentificationExplanation.load(tmp_path)
    (tmp_path / "garbage.fxi").write_bytes(b"PK\x03\x04 garbage")
    with pytest.raises(ModelFormatError):
        IdentificationExplanation.load(tmp_path / "garbage.fxi")
    with pytest.raises(ModelFormatError):  # a pair explanation is not an identification
        explained.pairs[0].save(tmp_path / "pair.npz")
        IdentificationExplanation.load(tmp_path / "pair.npz")

    def flip_map(name, data):
        if name != "contrast_similarity.npy":
            return data
        array = np.load(io.BytesIO(data))
        array[0, 0] += 1.0
        buffer = io.BytesIO()
        np.save(buffer, array)
        return buffer.getvalue()

    edits = {
        "checksum": flip_map,
        "match": _meta_member(lambda m: m["ranking"][0].update(match=not m["ranking"][0]["match"])),
        "order": _meta_member(lambda m: m["ranking"].reverse()),
        "version": _meta_member(lambda m: m.update(version=99)),
        "combine": _meta_member(lambda m: m.update(combine="median")),
        "reason": _meta_member(lambda m: m["contrast"].update(reason="because")),
        "score type": _meta_member(lambda m: m["ranking"][1].update(score="high")),
        "extra pair": lambda name, data: data,
    }
    for label, change in edits.items():
        target = tmp_path / f"bad-{label}.fxi"
        _rewrite(path, target, change)
        if label == "extra pair":  # a member the file should not hold
            with zipfile.ZipFile(target, "a") as archive:
                archive.writestr("pair_7.npy", b"")
        with pytest.raises(ModelFormatError):
            IdentificationExplanation.load(target)
    pickled = tmp_path / "pickled.fxi"
    _rewrite(path, pickled, lambda name, data: _pickled(data) if name == "pair_0.npy" else data)
    with pytest.raises(ModelFormatError):
        IdentificationExplanation.load(pickled)


def _pickled(_data):
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    return buffer.getvalue()


def test_plot_and_notebook_png(explained):
    from matplotlib.figure import Figure

    fig = explained.plot()
    assert isinstance(fig, Figure) and len(fig.axes) >= 9  # 3 x (1 + top_k) panels and colour bars
    assert explained._repr_png_().startswith(b"\x89PNG")


def test_cli_identify_prints_the_ranking_and_saves(johns, tmp_path):
    _, identities, paths = johns
    root = tmp_path / "gallery"
    for name in ("John_Salley", "John_Schneider", "John_Simm"):
        (root / name).mkdir(parents=True)
        for k in [k for k, i in enumerate(identities) if i == name][1:3]:
            shutil.copy(paths[k], root / name / paths[k].name)
    probe = paths[identities.index("John_Schneider")]
    env = {**os.environ, "FXPLAIN_CACHE_DIR": str(tmp_path / "cache")}  # not the user's gallery cache
    command = [sys.executable, "-m", "fxplain", "identify", str(probe), "--gallery", str(root), "--top-k", "2",
               "--n-masks", "8", "--mate", "John_Simm", "-o", str(tmp_path / "r.fxi"), "--plot",
               str(tmp_path / "r.png"), "--quiet"]
    out = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False, env=env)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert any(line.strip().startswith("1. John_Schneider: score") and "-> match" in line for line in lines)
    assert any(line.strip().startswith("2. ") for line in lines)
    assert "contrast: John_Schneider over John_Simm (mate)" in out.stdout  # the named mate is not rank 1
    loaded = IdentificationExplanation.load(tmp_path / "r.fxi")
    assert loaded.top.identity == "John_Schneider" and loaded.method == "corrrise" and loaded.mate == "John_Simm"
    assert (tmp_path / "r.png").read_bytes().startswith(b"\x89PNG")
    assert len(list((tmp_path / "cache" / "galleries").rglob("*.npy"))) == 6
    again = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False, env=env)
    assert again.returncode == 0 and "6 embeddings from the cache" in again.stdout
    bad = subprocess.run(command[:6] + [str(tmp_path / "nowhere"), "--quiet"], capture_output=True, text=True,
                         timeout=300, check=False, env=env)
    assert bad.returncode == 2 and "not found" in bad.stderr and "Traceback" not in bad.stderr
