"""The C saliency kernels against their NumPy twins (fxplain.methods.reference)."""

from __future__ import annotations

import numpy as np
import pytest

import fxplain
from fxplain import _core
from fxplain._util.stats import pearson_from_sums
from fxplain.methods import reference as ref


@pytest.mark.parametrize("seed", [0, 7, 2**40 + 3])
@pytest.mark.parametrize("h,w,grid,p_keep", [(150, 150, 7, 0.5), (13, 17, 3, 0.3), (20, 20, 1, 0.9), (9, 9, 9, 0.5)])
def test_rise_masks_match_twin(seed, h, w, grid, p_keep):
    got = _core.masks_rise(seed, 3, 4, h, w, grid, p_keep)
    want = ref.masks_rise(seed, 3, 4, h, w, grid, p_keep)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    assert got.min() >= 0 and got.max() <= 1


@pytest.mark.parametrize("seed,first,count,h,w,grid", [(0, 0, 140, 150, 150, 7), (2**40 + 3, 60, 30, 13, 17, 3),
                                                     (5, 3, 20, 9, 9, 1)])
def test_orthogonal_rise_masks_match_twin(seed, first, count, h, w, grid):
    got = _core.masks_rise_orthogonal(seed, first, count, h, w, grid)
    np.testing.assert_allclose(got, ref.masks_rise_orthogonal(seed, first, count, h, w, grid), rtol=0, atol=1e-6)
    assert got.min() >= 0 and got.max() <= 1
    assert _core.orthogonal_block_size(grid) == ref.orthogonal_block_size(grid)


@pytest.mark.parametrize("grid", [1, 3, 7, 10])
def test_orthogonal_blocks_are_balanced_and_orthogonal(grid):
    rows = ref.orthogonal_block_size(grid)
    assert rows - 1 >= (grid + 1) ** 2 and (rows - 1) % 4 == 3
    cells, _, _ = ref.orthogonal_cells(3, 1, grid, 40, 40)
    signs = cells.reshape(rows, -1) * 2 - 1
    np.testing.assert_array_equal(signs.sum(0), 0)  # every cell kept in exactly half the block
    np.testing.assert_array_equal(signs.T @ signs, rows * np.eye(signs.shape[1]))
    # every pixel of the block's masks has mean exactly 1/2
    masks = _core.masks_rise_orthogonal(3, rows, rows, 40, 40, grid)
    np.testing.assert_allclose(masks.mean(0), 0.5, atol=1e-6)


def test_orthogonal_blocks_recover_a_linear_score_with_less_noise():
    # s = <mask, w>: within a block the estimate of cov(m_p, s) has no sampling noise from other cells,
    # so maps from different seeds differ far less than random masks' maps do
    h = w = 30
    weights = np.random.default_rng(0).normal(size=(h, w)).astype(np.float32)
    rows = _core.orthogonal_block_size(5)

    def spread(make):
        maps = []
        for seed in range(6):
            masks = make(seed)
            s = masks.reshape(len(masks), -1).astype(np.float64) @ weights.ravel()
            sums = [np.zeros((h, w)) for _ in range(3)]
            _core.correlation_accumulate(masks, np.ascontiguousarray(s), *sums)
            maps.append(pearson_from_sums(len(s), *sums, s))
        return np.var(np.stack(maps), axis=0).mean()

    orthogonal = spread(lambda seed: _core.masks_rise_orthogonal(seed, 0, 4 * rows, h, w, 5))
    random = spread(lambda seed: _core.masks_rise(seed, 0, 4 * rows, h, w, 5, 0.5))
    assert orthogonal < 0.25 * random, (orthogonal, random)


@pytest.mark.parametrize("seed,h,w,patch,holes", [(0, 150, 150, 30, 3), (5, 11, 13, 4, 1), (9, 8, 8, 8, 2)])
def test_patch_masks_match_twin_exactly(seed, h, w, patch, holes):
    np.testing.assert_array_equal(_core.masks_patches(seed, 2, 5, h, w, patch, holes),
                                  ref.masks_patches(seed, 2, 5, h, w, patch, holes))


def test_masks_do_not_depend_on_chunking():
    whole = _core.masks_rise(11, 0, 10, 30, 30, 5, 0.5)
    parts = np.concatenate([_core.masks_rise(11, 0, 3, 30, 30, 5, 0.5), _core.masks_rise(11, 3, 7, 30, 30, 5, 0.5)])
    np.testing.assert_array_equal(whole, parts)
    assert not np.array_equal(whole, _core.masks_rise(12, 0, 10, 30, 30, 5, 0.5))


def test_rise_masks_keep_about_p():
    masks = _core.masks_rise(0, 0, 400, 40, 40, 4, 0.3)
    assert abs(masks.mean() - 0.3) < 0.03


def _image(rng, h=12, w=9):
    return rng.uniform(0, 255, (h, w, 3)).astype(np.float32)


def test_apply_masks_and_occlude_match_twins():
    rng = np.random.default_rng(0)
    image, fill = _image(rng), _image(rng)
    masks = rng.uniform(0, 1, (5, 12, 9)).astype(np.float32)
    np.testing.assert_allclose(_core.apply_masks(image, fill, masks), ref.apply_masks(image, fill, masks),
                               rtol=0, atol=1e-4)
    rects = np.array([[0, 0, 12, 9], [3, 2, 5, 8], [11, 8, 12, 9]], np.int32)
    np.testing.assert_array_equal(_core.occlude(image, fill, rects), ref.occlude(image, fill, rects))


@pytest.mark.parametrize("kind", ["neg_squared_euclidean", "cosine"])
def test_embedding_scores_match_twin(kind):
    rng = np.random.default_rng(1)
    emb = rng.standard_normal((7, 128)).astype(np.float32)
    target = rng.standard_normal(128).astype(np.float32)
    np.testing.assert_allclose(_core.embedding_scores(kind, emb, target), ref.embedding_scores(kind, emb, target),
                               rtol=1e-12, atol=1e-12)


def test_streaming_correlation_equals_pearson():
    rng = np.random.default_rng(2)
    masks = rng.uniform(0, 1, (50, 6, 5)).astype(np.float32)
    scores = rng.standard_normal(50)
    sums = [np.zeros((6, 5)) for _ in range(3)]
    for start in (0, 20, 35):  # in chunks, as the explainer streams them
        stop = {0: 20, 20: 35, 35: 50}[start]
        _core.correlation_accumulate(masks[start:stop], scores[start:stop], *sums)
    n = len(scores)
    sum_m, sum_mm, sum_ms = sums
    corr = (n * sum_ms - sum_m * scores.sum()) / np.sqrt((n * sum_mm - sum_m ** 2) * (n * (scores ** 2).sum()
                                                                                     - scores.sum() ** 2))
    np.testing.assert_allclose(corr, ref.pearson_map(masks, scores), rtol=0, atol=1e-10)


def test_rect_accumulate_matches_twin():
    rects = np.array([[0, 0, 4, 4], [2, 2, 6, 5], [5, 0, 6, 5]], np.int32)
    values = np.array([1.0, -2.0, 0.5])
    total, hits = np.zeros((6, 5)), np.zeros((6, 5))
    _core.rect_accumulate(rects, values, total, hits)
    want_total, want_hits = ref.rect_mean_map(6, 5, rects, values)
    np.testing.assert_array_equal(total, want_total)
    np.testing.assert_array_equal(hits, want_hits)


def test_kernels_reject_bad_arguments():
    image = np.zeros((8, 8, 3), np.float32)
    with pytest.raises(fxplain.InvalidInputError, match="grid"):
        _core.masks_rise(0, 0, 2, 8, 8, 0, 0.5)
    with pytest.raises(fxplain.InvalidInputError, match="p_keep"):
        _core.masks_rise(0, 0, 2, 8, 8, 2, 1.5)
    with pytest.raises(fxplain.InvalidInputError, match="patch"):
        _core.masks_patches(0, 0, 2, 8, 8, 9, 1)
    with pytest.raises(fxplain.InvalidInputError, match="count"):
        _core.masks_rise(0, 0, -1, 8, 8, 2, 0.5)
    with pytest.raises(fxplain.InvalidInputError, match="outside"):
        _core.occlude(image, image, np.array([[0, 0, 9, 8]], np.int32))
    with pytest.raises(fxplain.InvalidInputError, match="outside"):
        _core.rect_accumulate(np.array([[4, 4, 2, 6]], np.int32), np.ones(1), np.zeros((8, 8)), np.zeros((8, 8)))
    with pytest.raises(fxplain.InvalidInputError, match="fill has size"):
        _core.apply_masks(image, np.zeros((8, 7, 3), np.float32), np.zeros((1, 8, 8), np.float32))
    with pytest.raises(fxplain.InvalidInputError, match="masks has size"):
        _core.apply_masks(image, image, np.zeros((1, 8, 9), np.float32))
    with pytest.raises(fxplain.InvalidInputError, match="int32"):
        _core.occlude(image, image, np.zeros((1, 4), np.int64))
    with pytest.raises(fxplain.InvalidInputError, match="writeable"):
        sums = np.zeros((8, 8))
        sums.flags.writeable = False
        _core.correlation_accumulate(np.zeros((1, 8, 8), np.float32), np.zeros(1), sums, np.zeros((8, 8)),
                                     np.zeros((8, 8)))
    with pytest.raises(fxplain.InvalidInputError, match="score kind"):
        _core.embedding_scores("l1", np.zeros((1, 4), np.float32), np.zeros(4, np.float32))
