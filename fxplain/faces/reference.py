"""NumPy twins of the face kernels (``csrc/shape_predictor.c``, ``csrc/chip.c``): the tests' oracle.

Written for reading, not speed; same arithmetic as the C (float32 where dlib
uses float, float64 where it uses double) so the two agree to the bit.
"""

from __future__ import annotations

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
