"""NumPy twins of the face kernels (``csrc/shape_predictor.c``, ``csrc/chip.c``, ``csrc/pyramid.c``): the tests' oracle.

Written for reading, not speed; same arithmetic as the C (float32 where dlib
uses float, float64 where it uses double) so the two agree to the bit.
"""

from __future__ import annotations

import itertools

import numpy as np

#: dlib's 5-point alignment template (``get_face_chip_details``), in the unit square.
TEMPLATE_5 = np.array([[0.8595674595992, 0.2134981538014], [0.6460604764104, 0.2289674387677],
                       [0.1205750620789, 0.2137274526848], [0.3340850613712, 0.2290642403242],
                       [0.4901123135679, 0.6277975316475]])


def similarity(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares rotation+scale+translation ``dst ~ m @ src + t`` (Umeyama, no reflection), float64.

    dlib's ``find_similarity_transform``; plain sums in point order, as the C code does them.
    """
    src = [(float(x), float(y)) for x, y in np.asarray(src, np.float64)]
    dst = [(float(x), float(y)) for x, y in np.asarray(dst, np.float64)]
    n = len(src)
    mfx = sum(p[0] for p in src) / n
    mfy = sum(p[1] for p in src) / n
    mtx = sum(p[0] for p in dst) / n
    mty = sum(p[1] for p in dst) / n
    sigma = c00 = c01 = c10 = c11 = 0.0
    for (fx, fy), (tx, ty) in zip(src, dst):
        fx, fy, tx, ty = fx - mfx, fy - mfy, tx - mtx, ty - mty
        sigma += fx * fx + fy * fy
        c00 += tx * fx
        c01 += tx * fy
        c10 += ty * fx
        c11 += ty * fy
    sigma, c00, c01, c10, c11 = sigma / n, c00 / n, c01 / n, c10 / n, c11 / n
    a, b = (1.0, 0.0) if sigma == 0 else ((c00 + c11) / sigma, (c10 - c01) / sigma)
    m = np.array([[a, -b], [b, a]])
    return m, np.array([mtx - (a * mfx - b * mfy), mty - (b * mfx + a * mfy)])


def shape_predict(initial_shape, split_index, split_thresh, leaf_values, anchor, deltas, image, box) -> np.ndarray:
    """dlib's ``shape_predictor(img, rect)``: float64 (P, 2) landmarks, not rounded."""
    image = np.asarray(image)
    gray = image.astype(np.int64).sum(axis=2) // 3 if image.ndim == 3 else image.astype(np.int64)
    gray = gray.astype(np.float32)
    height, width = gray.shape
    left, top, right, bottom = (float(v) for v in box)
    origin = np.array([left, top])
    extent = np.array([right - left, bottom - top])
    shape = initial_shape.astype(np.float32).copy()
    levels, trees, splits = split_thresh.shape
    depth = (splits + 1).bit_length() - 1
    for level in range(levels):
        m, _ = similarity(initial_shape, shape)
        m = m.astype(np.float32)
        d = deltas[level]
        # float32, in dlib's order: (m @ delta) + anchor point
        pts = np.stack([m[0, 0] * d[:, 0] + m[0, 1] * d[:, 1], m[1, 0] * d[:, 0] + m[1, 1] * d[:, 1]], axis=1)
        pts = pts + shape[anchor[level]]
        pix = np.floor(origin + extent * pts.astype(np.float64) + 0.5)
        inside = (pix[:, 0] >= 0) & (pix[:, 1] >= 0) & (pix[:, 0] < width) & (pix[:, 1] < height)
        values = np.zeros(len(pts), np.float32)
        values[inside] = gray[pix[inside, 1].astype(np.int64), pix[inside, 0].astype(np.int64)]
        node = np.zeros(trees, np.int64)
        rows = np.arange(trees)
        for _ in range(depth):  # every tree at once, one split level at a time
            pair = split_index[level, rows, node]
            go_left = values[pair[:, 0]] - values[pair[:, 1]] > split_thresh[level, rows, node]
            node = np.where(go_left, 2 * node + 1, 2 * node + 2)
        leaves = leaf_values[level, rows, node - splits]  # (trees, P, 2)
        # dlib adds the trees' leaves one after another, in float32
        shape = np.cumsum(np.concatenate([shape[None], leaves]), axis=0, dtype=np.float32)[-1]
    return origin + extent * shape.astype(np.float64)


def face_chip_details(landmarks, size: int, padding: float) -> tuple[tuple[float, ...], int, int]:
    """dlib's ``get_face_chip_details``: ((left, top, right, bottom, angle), rows, cols)."""
    template = (padding + TEMPLATE_5) / (2 * padding + 1) * size
    m, t = similarity(template, landmarks)
    angle = float(np.arctan2(m[1, 0], m[0, 0]))
    scale = float(np.sqrt(m[0, 0] ** 2 + m[1, 0] ** 2))
    half = size / 2.0
    cx = m[0, 0] * half + m[0, 1] * half + t[0]
    cy = m[1, 0] * half + m[1, 1] * half + t[1]
    w = h = size * scale - 1
    return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, angle), size, size


def _area(rect) -> float:
    left, top, right, bottom = rect
    return 0.0 if top > bottom or left > right else (right - left + 1) * (bottom - top + 1)


def _rect_down(rect):
    left, top, right, bottom = rect
    return (left / 2.0 - 1.25, top / 2.0 - 0.75, right / 2.0 - 1.25, bottom / 2.0 - 0.75)


def _rotated_corners(rect, angle):
    """tl, tr, bl, br corners of ``rect`` turned by ``angle`` about its centre."""
    left, top, right, bottom = rect
    c = np.array([(left + right) / 2.0, (top + bottom) / 2.0])
    cs, sn = np.cos(angle), np.sin(angle)
    out = []
    for x, y in ((left, top), (right, top), (left, bottom), (right, bottom)):
        dx, dy = x - c[0], y - c[1]
        out.append(np.array([cs * dx - sn * dy + c[0], sn * dx + cs * dy + c[1]]))
    return out


def _corner_map(rect, angle, rows, cols) -> np.ndarray:
    tl, tr, bl, _ = _rotated_corners(rect, angle)
    return np.array([[(tr[0] - tl[0]) / (cols - 1), (bl[0] - tl[0]) / (rows - 1), tl[0]],
                     [(tr[1] - tl[1]) / (cols - 1), (bl[1] - tl[1]) / (rows - 1), tl[1]]])


def pyramid_down(image: np.ndarray) -> np.ndarray:
    """dlib's ``pyramid_down<2>`` of a uint8 image: 5x5 binomial filter, every other pixel, integer arithmetic."""
    h, w = image.shape[:2]
    if h <= 8 or w <= 8:
        return np.zeros((0, 0) + image.shape[2:], np.uint8)
    x = image.astype(np.int64)
    tw, dh = (w - 3) // 2, (h - 3) // 2
    cols = 2 * np.arange(tw)
    rows = x[:, cols] + 4 * x[:, cols + 1] + 6 * x[:, cols + 2] + 4 * x[:, cols + 3] + x[:, cols + 4]
    r = 2 + 2 * np.arange(dh)
    down = rows[r - 2] + 4 * rows[r - 1] + 6 * rows[r] + 4 * rows[r + 1] + rows[r + 2]
    return (down // 256).astype(np.uint8)


def _bilinear(src: np.ndarray, tf: np.ndarray, rows: int, cols: int) -> np.ndarray:
    r, c = np.mgrid[0:rows, 0:cols].astype(np.float64)
    x = tf[0, 0] * c + tf[0, 1] * r + tf[0, 2]
    y = tf[1, 0] * c + tf[1, 1] * r + tf[1, 2]
    left, top = np.floor(x), np.floor(y)
    h, w = src.shape[:2]
    ok = (left >= 0) & (top >= 0) & (left + 1 < w) & (top + 1 < h)
    out = np.zeros((rows, cols, 3), np.uint8)
    li, ti = left[ok].astype(np.int64), top[ok].astype(np.int64)
    lr, tb = (x[ok] - left[ok])[:, None], (y[ok] - top[ok])[:, None]
    s = src.astype(np.float64)
    value = (1 - tb) * ((1 - lr) * s[ti, li] + lr * s[ti, li + 1]) + tb * ((1 - lr) * s[ti + 1, li] + lr * s[ti + 1, li + 1])
    out[ok] = value.astype(np.uint8)  # truncation, as dlib's vector_to_pixel
    return out


def extract_image_chip(image: np.ndarray, details) -> tuple[np.ndarray, np.ndarray]:
    """dlib's ``extract_image_chip`` (bilinear) for an RGB uint8 image: (chip, 2x3 chip->photo transform)."""
    (left, top, right, bottom, angle), rows, cols = details
    rect = (left, top, right, bottom)
    height, width = image.shape[:2]
    transform = _corner_map(rect, angle, rows, cols)
    if angle == 0 and rows == bottom - top + 1 and cols == right - left + 1:
        chip = np.zeros((rows, cols, 3), np.uint8)
        x0, y0 = int(np.floor(left + 0.5)), int(np.floor(top + 0.5))
        for r in range(rows):
            for c in range(cols):
                if 0 <= y0 + r < height and 0 <= x0 + c < width:
                    chip[r, c] = image[y0 + r, x0 + c]
        return chip, transform
    chip_area = float(rows * cols)
    grow = 2.0
    d = _rect_down(rect)
    while _area(d) > chip_area:
        d = _rect_down(d)
        grow = grow * 2 + 2
    corners = np.array(_rotated_corners(rect, angle))
    lo = np.maximum(corners.min(axis=0) - grow, 0)
    hi = np.minimum(corners.max(axis=0) + grow, [width - 1, height - 1])
    bl, bt = (int(v) for v in np.floor(lo + 0.5))
    br, bb = (int(v) for v in np.floor(hi + 0.5))
    if bl > br or bt > bb:
        return np.zeros((rows, cols, 3), np.uint8), transform
    src = image[bt:bb + 1, bl:br + 1]
    d = (left - bl, top - bt, right - bl, bottom - bt)
    while _area(_rect_down(d)) > chip_area:
        d = _rect_down(d)
        src = pyramid_down(src)
    return _bilinear(src, _corner_map(d, angle, rows, cols), rows, cols), transform


def tiled_pyramid_layout(height: int, width: int, padding: int = 10, outer_padding: int = 11):
    """dlib's ``compute_tiled_image_pyramid_details`` for ``pyramid_down<6>``: (int32 (levels, 4) ltrb, rows, cols)."""
    sizes = [(height, width)]
    nr, nc = height, width
    while True:
        nr, nc = int(np.floor(5.0 / 6.0 * nr)), int(np.floor(5.0 / 6.0 * nc))
        if nr * nc == 0 or nr < 5:
            break
        sizes.append((nr, nc))
    total = sum(h + padding for h, _ in sizes) - 2 * padding
    h0, w0 = sizes[0]
    used = prev_width = 0
    for h, w in sizes:
        if w <= w0 - prev_width - padding and (used - h0) * 2 >= total - h0:
            break
        used += h + padding
        prev_width = w
    used -= padding
    rects = []
    y = outer_padding
    i = 0
    while y < used + outer_padding and i < len(sizes):  # first column, downward
        h, w = sizes[i]
        rects.append((outer_padding, y, outer_padding + w - 1, y + h - 1))
        y += h + padding
        i += 1
    y -= padding
    while i < len(sizes):  # second column, upward from the bottom right
        h, w = sizes[i]
        right, bottom = outer_padding + w0 - 1, y - 1
        left, top = right - (w - 1), bottom - (h - 1)
        l0, t0, r0, b0 = rects[0]
        if not (left > r0 or right < l0 or top > b0 or bottom < t0):
            break
        rects.append((left, top, right, bottom))
        y -= h + padding
        i += 1
    return np.array(rects, np.int32).reshape(-1, 4), used + 2 * outer_padding, w0 + 2 * outer_padding


def _simd_columns(x_scale: float, dst_cols: int, src_cols: int):
    """dlib's SSE column walk of ``resize_image``: (left, lr_frac) float32 of the first columns, and their count."""
    x = -4 * x_scale
    steps = dst_cols // 4 + 2
    lanes = [np.cumsum(np.r_[np.float32(x + k * x_scale), np.full(steps, np.float32(4 * x_scale))],
                       dtype=np.float32)[1:] for k in range(4)]
    xs = np.stack(lanes, axis=1).reshape(-1)  # column c = 4 * step + lane
    left = xs.astype(np.int32)  # truncation
    stop = 0
    while stop + 4 <= dst_cols and left[stop + 3] + 1 < src_cols:
        stop += 4
    return left[:stop], (xs - left.astype(np.float32))[:stop], stop


def _rows(y_scale: float, dst_rows: int, src_rows: int):
    y = np.cumsum(np.r_[-y_scale, np.full(dst_rows, y_scale)])[1:]  # double, accumulated as dlib does
    top = np.minimum(np.floor(y).astype(np.int64), src_rows - 1)
    return top, np.minimum(top + 1, src_rows - 1), y - top


def _remainder_columns(x_scale: float, start: int, dst_cols: int, src_cols: int):
    x = np.cumsum(np.r_[-x_scale + start * x_scale, np.full(dst_cols - start, x_scale)])[1:]
    left = np.minimum(np.floor(x).astype(np.int64), src_cols - 1)
    return left, np.minimum(left + 1, src_cols - 1), x - left


def resize_plane(src: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """dlib's bilinear ``resize_image`` of a float32 plane (the SSE path of interpolation.h), float32 (rows, cols)."""
    snr, snc = src.shape
    x_scale = (snc - 1) / float(max(cols - 1, 1))
    y_scale = (snr - 1) / float(max(rows - 1, 1))
    top, bottom, tb = _rows(y_scale, rows, snr)
    left, lr, stop = _simd_columns(x_scale, cols, snc)
    out = np.zeros((rows, cols), np.float32)
    tbf, itbf = tb.astype(np.float32)[:, None], (1 - tb).astype(np.float32)[:, None]
    ilr = np.float32(1) - lr
    st, sb = src[top], src[bottom]
    v = (itbf * ilr) * st[:, left]
    v = v + (itbf * lr) * st[:, left + 1]
    v = v + (tbf * ilr) * sb[:, left]
    v = v + (tbf * lr) * sb[:, left + 1]
    out[:, :stop] = v
    if stop < cols:
        rl, rr, rf = _remainder_columns(x_scale, stop, cols, snc)
        f = rf.astype(np.float32)
        upper = (np.float32(1) - f) * st[:, rl] + f * st[:, rr]
        lower = (np.float32(1) - f) * sb[:, rl] + f * sb[:, rr]
        out[:, stop:] = ((1 - tb)[:, None] * upper.astype(np.float64) + tb[:, None] * lower.astype(np.float64))
    return out


def tiled_pyramid(image: np.ndarray, mean, rects: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """dlib's ``input_rgb_image_pyramid::to_tensor`` for one RGB uint8 image: float32 (rows, cols, 3)."""
    out = np.zeros((3, rows, cols), np.float32)
    left, top, right, bottom = (int(v) for v in rects[0])
    norm = (image.astype(np.float32) - np.asarray(mean, np.float32)) / np.float32(256)
    out[:, top:bottom + 1, left:right + 1] = norm.transpose(2, 0, 1)
    for prev, rect in itertools.pairwise(rects):
        pl, pt, pr, pb = (int(v) for v in prev)
        left, top, right, bottom = (int(v) for v in rect)
        for k in range(3):
            out[k, top:bottom + 1, left:right + 1] = resize_plane(out[k, pt:pb + 1, pl:pr + 1],
                                                                  bottom - top + 1, right - left + 1)
    return np.ascontiguousarray(out.transpose(1, 2, 0))


def pyramid_up(image: np.ndarray) -> np.ndarray:
    """dlib's ``pyramid_up`` of an RGB uint8 image: bilinear onto (2h+1, 2w+2), values truncated."""
    snr, snc = image.shape[:2]
    rows, cols = 2 * snr + 1, 2 * snc + 2
    x_scale, y_scale = (snc - 1) / float(cols - 1), (snr - 1) / float(rows - 1)
    top, bottom, tb = _rows(y_scale, rows, snr)
    left, lr, stop = _simd_columns(x_scale, cols, snc)
    tbf, itbf = tb.astype(np.float32)[:, None, None], (1 - tb).astype(np.float32)[:, None, None]
    lr3, ilr3 = lr[None, :, None], (np.float32(1) - lr)[None, :, None]
    src = image.astype(np.float32)
    st, sb = src[top], src[bottom]
    v = (itbf * ilr3) * st[:, left]
    v = v + (itbf * lr3) * st[:, left + 1]
    v = v + (tbf * ilr3) * sb[:, left]
    v = v + (tbf * lr3) * sb[:, left + 1]
    out = np.zeros((rows, cols, 3), np.uint8)
    out[:, :stop] = v.astype(np.int32).astype(np.uint8)
    if stop < cols:
        rl, rr, rf = _remainder_columns(x_scale, stop, cols, snc)
        s = image.astype(np.float64)
        f = rf[None, :, None]
        t = tb[:, None, None]
        value = (1 - t) * ((1 - f) * s[top][:, rl] + f * s[top][:, rr]) + t * ((1 - f) * s[bottom][:, rl]
                                                                              + f * s[bottom][:, rr])
        out[:, stop:] = value.astype(np.uint8)
    return out
