"""The result store in-process: what it holds, resuming, refusing another run, reading it back, damage."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

import fxplain
from fxplain import datasets

PARAMS = {"method": "corrrise", "n_masks": 16, "seed": 2}


@pytest.fixture(scope="module")
def pairs():
    """6 johns pairs (3 genuine, 3 impostor) of files, and a photo pair."""
    made = fxplain.make_pairs(datasets.johns_dir(), impostors=40, seed=0)
    genuine = [p for p in made if p.same][:3]
    impostors = [p for p in made if p.same is False][:3]
    return tuple(genuine + impostors)


@pytest.fixture(scope="module")
def serial(model, pairs, tmp_path_factory):
    store = tmp_path_factory.mktemp("serial") / "run.zarr"
    return fxplain.explain_pairs(model, pairs, store=store, chunk_size=4, show_progress=False, **PARAMS)


def test_store_holds_what_the_explainer_gives(model, pairs, serial):
    assert len(serial) == len(pairs) and serial.missing == 0
    table = serial.table
    assert isinstance(table, pd.DataFrame)
    assert list(table["pair_id"]) == list(range(len(pairs)))
    expected_columns = {"a", "b", "sha256_a", "sha256_b", "label", "box_a", "score", "threshold", "decision",
                        "method", "params", "seed", "model_sha256", "fxplain_version", "seconds", "error"}
    assert expected_columns <= set(table.columns)
    assert list(table["label"]) == ["same"] * 3 + ["different"] * 3
    assert set(table["model_sha256"]) == {model.model_hash}
    assert json.loads(table["params"][0])["n_masks"] == 16
    explainer = fxplain.Explainer(model, "corrrise", n_masks=16, seed=2)
    for k in (0, 4):
        direct = explainer.explain(pairs[k].a, pairs[k].b)
        stored = serial[k]
        np.testing.assert_array_equal(stored.similarity, direct.similarity)
        np.testing.assert_array_equal(stored.dissimilarity, direct.dissimilarity)
        np.testing.assert_array_equal(stored.images, direct.images)  # chips from JPEG files: whole numbers
        assert stored.score == direct.score and stored.match == direct.match
        assert stored.sources[0]["path"] == pairs[k].a
        assert stored.sources[0]["sha256"] == direct.sources[0]["sha256"] == table["sha256_a"][k]


def test_selections_and_grid(serial):
    table = serial.table
    matches = serial.where(decision="match")
    assert len(matches) == int((table["decision"] == "match").sum())
    fm = serial.false_matches()
    assert all(r.match for r in fm) and set(fm.table["label"]) <= {"different"}
    fnm = serial.false_non_matches()
    assert len(fm) + len(fnm) == int(((table["label"] == "same") != (table["decision"] == "match")).sum())
    assert len(serial.where(lambda t: t["score"] > t["threshold"])) == len(matches)
    with pytest.raises(fxplain.InvalidInputError, match="no column"):
        serial.where(colour="red")
    fig = serial.plot_grid(4, kind="evidence")
    assert len(fig.axes) >= 8
    summary = serial.summary()
    assert summary["done"] == 6 and summary["true_matches"] + summary["false_non_matches"] == 3


def test_resume_skips_done_chunks_and_redoes_half_written_ones(model, pairs, serial, tmp_path):
    store = tmp_path / "run.zarr"
    shutil.copytree(serial.run.root, store)
    # chunk 1 (pairs 4, 5) half-written: its maps scribbled over, its rows never committed
    (store / "rows" / "chunk-000001.parquet").unlink()
    (store / "table.parquet").unlink()
    import zarr
    zarr.open_group(str(store), mode="r+")["similarity"][4:6] = 7.0
    assert len(fxplain.open_results(store)) == 4 and fxplain.open_results(store).missing == 2
    chunk0 = (store / "rows" / "chunk-000000.parquet").stat().st_mtime_ns
    resumed = fxplain.explain_pairs(model, pairs, store=store, chunk_size=4, show_progress=False, **PARAMS)
    assert (store / "rows" / "chunk-000000.parquet").stat().st_mtime_ns == chunk0  # not recomputed
    assert len(resumed) == 6
    for k in range(6):
        np.testing.assert_array_equal(resumed[k].similarity, serial[k].similarity)
    pd.testing.assert_frame_equal(resumed.table.drop(columns="seconds")[4:], serial.table.drop(columns="seconds")[4:])


def test_another_run_in_the_same_store_is_refused(model, pairs, serial, tmp_path):
    store = serial.run.root
    with pytest.raises(fxplain.StoreError, match=r"n_masks"):
        fxplain.explain_pairs(model, pairs, store=store, chunk_size=4, show_progress=False,
                              **{**PARAMS, "n_masks": 32})
    with pytest.raises(fxplain.StoreError, match=r"seed: stored 2, asked 3"):
        fxplain.explain_pairs(model, pairs, store=store, chunk_size=4, show_progress=False, **{**PARAMS, "seed": 3})
    with pytest.raises(fxplain.StoreError, match=r"pairs: stored 6, asked 5"):
        fxplain.explain_pairs(model, pairs[:5], store=store, chunk_size=4, show_progress=False, **PARAMS)
    other = fxplain.load_model("dlib", threshold=-0.3)
    with pytest.raises(fxplain.StoreError, match=r"threshold"):
        fxplain.explain_pairs(other, pairs, store=store, chunk_size=4, show_progress=False, **PARAMS)
    # an image file changed since the run started
    copied = tmp_path / "faces"
    shutil.copytree(datasets.johns_dir(), copied)
    moved = tuple(fxplain.Pair(p.a.replace(str(datasets.johns_dir()), str(copied)),
                               p.b.replace(str(datasets.johns_dir()), str(copied)), p.same) for p in pairs[:2])
    run = tmp_path / "moved.zarr"
    fxplain.explain_pairs(model, moved, store=run, show_progress=False, **PARAMS)
    with open(moved[1].b, "ab") as f:
        f.write(b"\0")
    with pytest.raises(fxplain.StoreError, match=r"image file changed since the run started: .*jpg"):
        fxplain.explain_pairs(model, moved, store=run, show_progress=False, **PARAMS)
    # a folder that is something else is not taken over
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(fxplain.StoreError, match="not an fxplain run"):
        fxplain.explain_pairs(model, pairs[:1], store=tmp_path / "busy", show_progress=False, **PARAMS)


def test_same_maps_whatever_the_chunking_and_float16_on_request(model, pairs, serial, tmp_path):
    other = fxplain.explain_pairs(model, pairs[::-1], store=tmp_path / "c1.zarr", chunk_size=1, show_progress=False,
                                  **PARAMS)
    for k in range(6):
        mine, theirs = other[5 - k], serial[k]
        np.testing.assert_array_equal(mine.similarity, theirs.similarity)
        np.testing.assert_array_equal(mine.dissimilarity, theirs.dissimilarity)
    half = fxplain.explain_pairs(model, pairs[:2], store=tmp_path / "f16.zarr", dtype="float16", show_progress=False,
                                 **PARAMS)
    import zarr
    assert zarr.open_group(str(tmp_path / "f16.zarr"), mode="r")["similarity"].dtype == np.float16
    r = half[1]
    assert r.similarity.dtype == np.float32
    np.testing.assert_allclose(r.similarity, serial[1].similarity, rtol=1e-3, atol=1e-3 * serial[1].similarity.max())


def test_a_photo_without_a_face_is_recorded_not_fatal(model, pairs, tmp_path):
    blank = tmp_path / "blank.png"
    from PIL import Image
    Image.fromarray(np.full((300, 400, 3), 128, np.uint8)).save(blank)
    rs = fxplain.explain_pairs(model, [(pairs[0].a, str(blank)), (pairs[0].a, pairs[0].b, True)],
                               store=tmp_path / "r.zarr", show_progress=False, **PARAMS)
    assert len(rs) == 2 and len(rs.failed()) == 1
    assert "face" in rs.table["error"][0]
    with pytest.raises(fxplain.InvalidInputError, match="was not explained"):
        rs[0]
    assert rs[1].score == rs.table["score"][1]


def test_damaged_store_gives_fxplain_errors(serial, tmp_path):
    store = tmp_path / "run.zarr"
    shutil.copytree(serial.run.root, store)
    import zarr
    zarr.open_group(str(store), mode="r+")["dissimilarity"][2, 0, 10, 10] = 123.0
    with pytest.raises(fxplain.StoreError, match="SHA-256"):
        fxplain.open_results(store)[2]
    (store / "table.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(fxplain.StoreError, match="table.parquet is damaged"):
        fxplain.open_results(store)
    (store / "fxplain-run.json").write_text('{"format": "fxplain.Run", "version": 1, "identity": {}, "pairs": []}')
    with pytest.raises(fxplain.StoreError, match="damaged or not fxplain's"):
        fxplain.open_results(store)
    with pytest.raises(fxplain.StoreError, match="not an fxplain result store"):
        fxplain.open_results(tmp_path / "nothing")


def test_pair_explanation_files_keep_sources_and_uint8_images(serial, tmp_path):
    r = serial[0]
    path = tmp_path / "r.npz"
    r.save(path)
    with np.load(path) as data:
        assert data["images"].dtype == np.uint8
    back = fxplain.PairExplanation.load(path)
    assert back.sources == r.sources
    np.testing.assert_array_equal(back.images, r.images)
    np.testing.assert_array_equal(back.similarity, r.similarity)


def test_stores_at_fsspec_urls(model, pairs, serial, tmp_path):
    """A store given as a URL: file:// (a shared file system) and memory:// (fsspec's in-memory file system)."""
    for url in (f"file://{tmp_path}/url.zarr", "memory://fxplain-test/run.zarr"):
        rs = fxplain.explain_pairs(model, pairs[:2], store=url, chunk_size=4, show_progress=False, **PARAMS)
        assert len(rs) == 2
        np.testing.assert_array_equal(fxplain.open_results(url)[1].similarity, serial[1].similarity)


def test_region_tables_by_outcome_and_by_a_users_column(serial, tmp_path):
    shares = serial[0].region_shares()
    assert list(shares.index) == [(s, k) for s in "AB" for k in ("similarity", "dissimilarity")]
    finite = shares.dropna()
    np.testing.assert_allclose(finite.sum(axis=1), 1.0)
    table = serial.region_table(n_boot=200)
    assert list(table.columns) == ["outcome", "kind", "region", "share", "low", "high", "n"]
    assert set(table["outcome"]) <= {"true match", "false match", "true non-match", "false non-match"}
    for (_, kind), group in table.groupby(["outcome", "kind"]):
        assert len(group) == len(fxplain.faces.regions.REGION_NAMES)
        assert group["share"].sum() == pytest.approx(1.0, abs=1e-6)  # mean shares of a group sum to 1 too
        assert np.all((group["low"] <= group["share"] + 1e-12) & (group["share"] <= group["high"] + 1e-12))
    counts = serial.table["outcome"].value_counts()
    for outcome, n in counts.items():
        assert table[(table["outcome"] == outcome) & (table["kind"] == "similarity")]["n"].max() <= n
    # the mean over a group is the mean of the pairs' own shares
    first = serial.table["outcome"].iloc[0]
    members = [k for k in range(len(serial)) if serial.table["outcome"].iloc[k] == first]
    own = np.nanmean([serial[k].region_shares().xs("dissimilarity", level="kind").to_numpy() for k in members],
                     axis=1)
    row = table[(table["outcome"] == first) & (table["kind"] == "dissimilarity")]
    np.testing.assert_allclose(row["share"], np.nanmean(own, axis=0), atol=1e-9)
    # a user's column, from a CSV keyed by file (by a trailing part of the path)
    files = sorted(set(serial.table["a"]) | set(serial.table["b"]))
    csv = tmp_path / "groups.csv"
    csv.write_text("file,group\n" + "".join(f"{'/'.join(f.split('/')[-2:])},{'g' + str(k % 2)}\n"
                                           for k, f in enumerate(files)))
    annotated = serial.annotate(csv)
    assert {"group", "group_a", "group_b"} <= set(annotated.table.columns)
    assert set(annotated.table["group"]) <= {"g0", "g1", "mixed"}
    by_group = annotated.region_table(by="group", n_boot=50)
    assert set(by_group["group"]) == set(annotated.table["group"])
    fig = annotated.plot_regions(by="group")
    assert len(fig.axes) >= 2
    # a table built without intervals, and bad requests
    assert serial.region_table(n_boot=0)["low"].isna().all()
    with pytest.raises(fxplain.InvalidInputError, match="no column 'age'"):
        serial.region_table(by="age")
    with pytest.raises(fxplain.InvalidInputError, match="no 'file' column"):
        serial.annotate(pd.DataFrame({"path": files}))
    with pytest.raises(fxplain.InvalidInputError, match="no such annotation file"):
        serial.annotate(tmp_path / "missing.csv")
    with pytest.raises(fxplain.InvalidInputError, match="would overwrite"):
        serial.annotate(pd.DataFrame({"file": files, "score": 1}))
    with pytest.raises(fxplain.InvalidInputError, match="n_boot"):
        serial.region_table(n_boot=-1)
