"""NumPy twins of the C saliency kernels (csrc/masks.c, csrc/saliency.c).

Bit-for-bit reproductions where the C code is exact (the random streams,
the patch masks, occlusion) and float64 textbook versions elsewhere. The
tests run every kernel against its twin; the twins also document the exact
formulas.
"""

from __future__ import annotations

import numpy as np

_MASK64 = (1 << 64) - 1


class SplitMix64:
    """The core's random stream (csrc/rng.h) in pure Python."""

    def __init__(self, seed: int, index: int):
        self.state = (seed ^ ((index * 0xD1342543DE82EF95) & _MASK64)) & _MASK64
        self.next()

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & _MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        return z ^ (z >> 31)

    def uniform(self) -> float:
        return (self.next() >> 11) * (1.0 / 9007199254740992.0)

    def below(self, n: int) -> int:
        return self.next() % n


def _upsample_cells(cells: np.ndarray, h: int, w: int, grid: int, shift_y: int, shift_x: int) -> np.ndarray:
    """Bilinear upsampling of a (grid+1, grid+1) cell grid to (h, w), shifted by whole pixels."""
    cell_h, cell_w = -(-h // grid), -(-w // grid)
    gy = np.clip((np.arange(h) + shift_y + 0.5) / cell_h - 0.5, 0, grid)
    gx = np.clip((np.arange(w) + shift_x + 0.5) / cell_w - 0.5, 0, grid)
    y0 = np.minimum(gy.astype(int), grid - 1)
    x0 = np.minimum(gx.astype(int), grid - 1)
    fy = (gy - y0)[:, None]
    fx = (gx - x0)[None, :]
    c00 = cells[y0[:, None], x0[None, :]]
    c01 = cells[y0[:, None], x0[None, :] + 1]
    c10 = cells[y0[:, None] + 1, x0[None, :]]
    c11 = cells[y0[:, None] + 1, x0[None, :] + 1]
    top = c00 + fx * (c01 - c00)
    bottom = c10 + fx * (c11 - c10)
    return top + fy * (bottom - top)


def masks_rise(seed: int, first: int, count: int, h: int, w: int, grid: int, p_keep: float) -> np.ndarray:
    """RISE masks: (grid+1)^2 kept cells, bilinear upsampling with a random sub-cell shift."""
    g = grid + 1
    cell_h, cell_w = -(-h // grid), -(-w // grid)
    out = np.empty((count, h, w), np.float32)
    for i in range(count):
        rng = SplitMix64(seed, first + i)
        cells = np.array([1.0 if rng.uniform() < p_keep else 0.0 for _ in range(g * g)], np.float32).reshape(g, g)
        shift_y, shift_x = rng.below(cell_h), rng.below(cell_w)
        out[i] = _upsample_cells(cells, h, w, grid, shift_y, shift_x)
    return out


_ORTHOGONAL_SALT = 0x4F5254484F474F4E


def _is_prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, int(n ** 0.5) + 1))


def orthogonal_block_size(grid: int) -> int:
    """Masks per orthogonal block: q + 1, q the smallest prime ≡ 3 (mod 4) with q ≥ (grid+1)²."""
    q = max(3, (grid + 1) ** 2)
    while not (q % 4 == 3 and _is_prime(q)):
        q += 1
    return q + 1


def paley_columns(q: int) -> np.ndarray:
    """The q balanced, orthogonal ±1 columns (q+1, q) of the row-normalised Paley Hadamard matrix of order q+1."""
    chi = -np.ones(q, int)
    chi[(np.arange(1, q) ** 2) % q] = 1
    chi[0] = 0
    r = np.arange(q + 1)[:, None]
    c = np.arange(1, q + 1)[None, :]
    columns = -chi[(c - r) % q]
    columns[r[:, 0] == 0] = 1
    columns[(r == c)] = -1
    return columns


def orthogonal_cells(seed: int, block: int, grid: int, h: int, w: int) -> tuple[np.ndarray, int, int]:
    """One orthogonal block's kept cells (q+1, grid+1, grid+1) in {0, 1} and its shift (csrc/masks.c)."""
    g = grid + 1
    q = orthogonal_block_size(grid) - 1
    rng = SplitMix64(seed ^ _ORTHOGONAL_SALT, block)
    column = list(range(1, q + 1))
    for c in range(q - 1, 0, -1):
        j = rng.below(c + 1)
        column[c], column[j] = column[j], column[c]
    sign = np.array([1 if rng.below(2) else -1 for _ in range(g * g)])
    shift_y, shift_x = rng.below(-(-h // grid)), rng.below(-(-w // grid))
    entries = paley_columns(q)[:, np.array(column[:g * g]) - 1] * sign
    return (entries > 0).astype(np.float32).reshape(q + 1, g, g), shift_y, shift_x


def masks_rise_orthogonal(seed: int, first: int, count: int, h: int, w: int, grid: int) -> np.ndarray:
    """Orthogonal RISE masks: mask i is row i mod (q+1) of block i // (q+1) (see :func:`orthogonal_cells`)."""
    rows = orthogonal_block_size(grid)
    out = np.empty((count, h, w), np.float32)
    blocks: dict[int, tuple[np.ndarray, int, int]] = {}
    for i in range(count):
        block, row = divmod(first + i, rows)
        if block not in blocks:
            blocks[block] = orthogonal_cells(seed, block, grid, h, w)
        cells, shift_y, shift_x = blocks[block]
        out[i] = _upsample_cells(cells[row], h, w, grid, shift_y, shift_x)
    return out


def masks_patches(seed: int, first: int, count: int, h: int, w: int, patch: int, holes: int) -> np.ndarray:
    """Binary masks: ones except ``holes`` random squares of side ``patch``."""
    out = np.ones((count, h, w), np.float32)
    for i in range(count):
        rng = SplitMix64(seed, first + i)
        for _ in range(holes):
            top = rng.below(h - patch + 1)
            left = rng.below(w - patch + 1)
            out[i, top:top + patch, left:left + patch] = 0.0
    return out


def apply_masks(image: np.ndarray, fill: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """``fill + m * (image - fill)`` for each mask, per pixel and channel."""
    return fill[None] + masks[..., None] * (image - fill)[None]


def occlude(image: np.ndarray, fill: np.ndarray, rects: np.ndarray) -> np.ndarray:
    """Copies of ``image`` with each rectangle (top, left, bottom, right) replaced by ``fill``."""
    out = np.repeat(image[None], len(rects), axis=0)
    for i, (top, left, bottom, right) in enumerate(rects):
        out[i, top:bottom, left:right] = fill[top:bottom, left:right]
    return out


def embedding_scores(kind: str, emb: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Similarity of each embedding to ``ref``: −squared distance, or cosine."""
    e = emb.astype(np.float64)
    r = ref.astype(np.float64)
    if kind == "neg_squared_euclidean":
        return -np.sum((e - r) ** 2, axis=1)
    return e @ r / np.maximum(np.linalg.norm(e, axis=1) * np.linalg.norm(r), 1e-12)


def pearson_map(masks: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Per-pixel Pearson correlation between mask values and scores over the masks."""
    m = masks.reshape(len(masks), -1).astype(np.float64)
    s = scores.astype(np.float64)
    mc = m - m.mean(axis=0)
    sc = s - s.mean()
    denom = np.sqrt((mc ** 2).sum(axis=0) * (sc ** 2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.where(denom > 0, (mc * sc[:, None]).sum(axis=0) / denom, 0.0)
    return corr.reshape(masks.shape[1:])


def rect_mean_map(h: int, w: int, rects: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel: sum of the values of the rectangles covering it, and how many cover it."""
    total = np.zeros((h, w))
    hits = np.zeros((h, w))
    for (top, left, bottom, right), v in zip(rects, values):
        total[top:bottom, left:right] += v
        hits[top:bottom, left:right] += 1
    return total, hits
