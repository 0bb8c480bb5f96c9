"""The gallery's embedding cache: reused, re-embedded when a file changes, never trusted when damaged."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

import fxplain
from fxplain.identification.cache import EmbeddingCache


@pytest.fixture()
def small_gallery(johns, tmp_path):
    """A folder gallery of two identities with two chips each."""
    _, identities, paths = johns
    root = tmp_path / "gallery"
    for name in ("John_Savage", "John_Shimkus"):
        (root / name).mkdir(parents=True)
        for k in [k for k, i in enumerate(identities) if i == name][:2]:
            shutil.copy(paths[k], root / name / paths[k].name)
    return root


def _entries(cache_dir, model):
    return sorted((cache_dir / model.model_hash).glob("*.npy"))


def test_a_second_gallery_reads_the_cache(model, small_gallery, tmp_path):
    cache_dir = tmp_path / "cache"
    first = fxplain.Gallery(model, small_gallery, cache_dir=cache_dir)
    assert (first.embedded, first.cached) == (4, 0) and len(_entries(cache_dir, model)) == 4
    mtimes = {p: p.stat().st_mtime_ns for p in _entries(cache_dir, model)}
    second = fxplain.Gallery(model, small_gallery, cache_dir=cache_dir)
    assert (second.embedded, second.cached) == (0, 4)
    assert {p: p.stat().st_mtime_ns for p in _entries(cache_dir, model)} == mtimes  # nothing rewritten
    np.testing.assert_array_equal(second.embeddings, first.embeddings)
    # no cache: embedded again, the same embeddings
    uncached = fxplain.Gallery(model, small_gallery, cache_dir=False)
    assert (uncached.embedded, uncached.cached) == (4, 0)
    np.testing.assert_array_equal(uncached.embeddings, first.embeddings)


def test_a_changed_file_is_embedded_again(model, johns, small_gallery, tmp_path):
    _, identities, paths = johns
    cache_dir = tmp_path / "cache"
    before = fxplain.Gallery(model, small_gallery, cache_dir=cache_dir)
    changed = min((small_gallery / "John_Savage").iterdir())
    other = paths[identities.index("John_Simm")]
    changed.write_bytes(other.read_bytes())  # same name, new content
    after = fxplain.Gallery(model, small_gallery, cache_dir=cache_dir)
    assert (after.embedded, after.cached) == (1, 3)
    index = after.images.index(str(changed))
    np.testing.assert_array_equal(after.embeddings[index], model.embed(str(changed))[0])
    assert not np.array_equal(after.embeddings[index], before.embeddings[index])


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong_shape", "float64", "nan", "pickle", "fifo"])
def test_a_damaged_cache_entry_is_ignored_and_rewritten(model, small_gallery, tmp_path, damage):
    cache_dir = tmp_path / "cache"
    good = fxplain.Gallery(model, small_gallery, cache_dir=cache_dir)
    entry = _entries(cache_dir, model)[0]
    entry.unlink()
    if damage == "garbage":
        entry.write_bytes(b"not an array at all")
    elif damage == "truncated":
        np.save(entry, np.ones(128, np.float32))
        entry.write_bytes(entry.read_bytes()[:-40])
    elif damage == "wrong_shape":
        np.save(entry, np.ones(64, np.float32))
    elif damage == "float64":
        np.save(entry, np.ones(128, np.float64))
    elif damage == "nan":
        np.save(entry, np.full(128, np.nan, np.float32))
    elif damage == "pickle":
        np.save(entry, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    else:
        os.mkfifo(entry)  # reading it would block: refused without opening
    again = fxplain.Gallery(model, small_gallery, cache_dir=cache_dir)
    assert (again.embedded, again.cached, again.cache_rejected) == (1, 3, 1)
    np.testing.assert_array_equal(again.embeddings, good.embeddings)
    rewritten = np.load(entry, allow_pickle=False)  # a valid entry again
    assert rewritten.dtype == np.float32 and rewritten.shape == (128,)
    assert any(np.array_equal(rewritten, row) for row in good.embeddings)
    third = fxplain.Gallery(model, small_gallery, cache_dir=cache_dir)
    assert (third.embedded, third.cached) == (0, 4)


def test_cache_entries_are_keyed_by_model_and_content(model, tmp_path):
    cache = EmbeddingCache(tmp_path, model.model_hash, 128)
    digest = "ab" * 32
    assert cache.get(digest) is None
    cache.put(digest, np.arange(128, dtype=np.float32))
    np.testing.assert_array_equal(cache.get(digest), np.arange(128, dtype=np.float32))
    assert EmbeddingCache(tmp_path, "another model", 128).get(digest) is None
    assert EmbeddingCache(tmp_path, model.model_hash, 512).get(digest) is None  # another length: not trusted
    with pytest.raises(ValueError):
        cache.path("../../etc/passwd")
    # an unwritable cache costs the next run the embedding, not this run its result
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("x")
    EmbeddingCache(blocked, model.model_hash, 128).put(digest, np.zeros(128, np.float32))
