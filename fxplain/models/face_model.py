"""A face-recognition network running on the C core: embeddings, scores, gradients.

>>> model = fxplain.load_model("dlib")
>>> emb = model.embed(["a.jpg", "b.jpg"])      # (2, 128) float32
>>> s = model.score(emb[0], emb[1])             # higher = more alike
>>> s >= model.threshold                         # the model's decision
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._util.errors import CoreError, InvalidInputError
from .._util.validation import check_positive_int
from ..faces.inputs import pair_face_choices, to_pixel_batch
from ..runtime.core_net import build_core_net
from ..runtime.spec import NetworkSpec
from .dimension_occlusion import occlusion_dimension_maps
from .scoring import (
    Contrast,
    check_embeddings,
    check_metric,
    distance_from_score,
    require_threshold,
    score_and_embedding_gradient,
    score_embeddings,
)


@dataclass(frozen=True)
class Verification:
    """Outcome of comparing two faces: score, threshold, decision and distance.

    ``distance`` is the model metric's own distance
    (:func:`fxplain.models.scoring.distance_from_score`): the Euclidean
    distance of the embeddings for ``squared_euclidean`` models (dlib's 0.6
    rule), the cosine distance ``1 - score`` for ``cosine`` models.
    """

    score: float
    threshold: float
    match: bool
    distance: float


class FaceModel:
    """A face-recognition network running on fxplain's oneDNN core.

    Build one with :func:`load_model`. The model maps aligned face chips of
    :attr:`input_size` to embeddings and scores pairs of embeddings.

    One model may be shared by several threads: each call into the core
    (including a forward pass and the backward pass that consumes it, see
    :meth:`forward_backward`) is one transaction under the model's lock, so
    every method gives the serial result. oneDNN already spreads one call
    over all cores.

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
    model_hash : str
        SHA-256 of the architecture and weights; stored with every result.
    """

    def __init__(self, spec: NetworkSpec, *, name: str, metric: str, threshold: float | None,
                 source: str | None = None, facts: dict | None = None, precision: str = "fp32"):
        check_metric(metric)
        self.spec = spec
        self.name = name
        self.metric = metric
        self._threshold: float | None = None
        if threshold is not None and not math.isnan(float(threshold)):
            self.threshold = threshold
        self.source = source
        self.facts = dict(facts or {})
        shapes = spec.shapes()
        self.input_size = (spec.input_shape[1], spec.input_shape[2])
        out_c, out_h, out_w = shapes[spec.output]
        self.embedding_size = out_c * out_h * out_w
        self.model_hash = spec.weights_digest()
        self._net = build_core_net(spec)
        # Every use of the core net is one transaction under this lock. The C net
        # serialises single calls itself, but a training forward pass and the
        # backward pass that consumes it are two calls: another thread's call in
        # between would overwrite the activations (see forward_backward).
        self._lock = threading.Lock()
        self.precision = "fp32"
        self.set_precision(precision)

    @property
    def threshold(self) -> float | None:
        """Decision threshold on the score scale: a pair matches iff ``score >= threshold``; None when unset.

        A model loaded without one (an ONNX file carries none) has
        ``threshold`` None: scores, embeddings and maps work, and every
        decision (:meth:`verify`, an explanation's ``match``, margins) raises
        :class:`~fxplain.InvalidInputError` saying how to get one
        (:func:`fxplain.calibrate_threshold`) until it is set:
        ``model.threshold = t`` (``model.threshold = None`` unsets it).
        """
        return self._threshold

    @threshold.setter
    def threshold(self, value: float | None) -> None:
        if value is None:
            self._threshold = None
            return
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise InvalidInputError(f"threshold must be a number or None, got {value!r}") from None
        if not math.isfinite(value):
            raise InvalidInputError(f"threshold must be finite, got {value!r}")
        self._threshold = value

    @property
    def has_threshold(self) -> bool:
        """Whether :attr:`threshold` is set."""
        return self._threshold is not None

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
        with self._lock:
            previous = getattr(self, "precision", "fp32")
            self._net.set_math_mode(precision)
            if precision != "fp32":
                # oneDNN accepts the mode but may have no kernel for it on this CPU (bf16 convolutions
                # on an AVX2-only CPU with oneDNN 3.2): find out now, not in the user's first embed
                c, h, w = self.spec.input_shape
                try:
                    self._net.forward(np.full((1, h, w, c), 128.0, np.float32))
                except CoreError as exc:
                    self._net.set_math_mode(previous)
                    raise CoreError(f"precision {precision!r} is not available on this CPU with the oneDNN in use "
                                    f"({exc}); the model stays in {previous}") from None
            self.precision = precision

    def low_precision(self, precision: str, calibration: np.ndarray | None = None) -> Any:
        """This model with perturbed batches embedded in ``precision`` (see :mod:`fxplain.models.low_precision`).

        Parameters
        ----------
        precision : {"fp32", "bf16", "int8"}
            ``"fp32"`` returns the model itself.
        calibration : numpy.ndarray
            float32 ``(N, H, W, 3)`` pixels (for explanations: the intact
            pair) whose FP32 activations set the int8 activation scales;
            required for ``"int8"``.

        Returns
        -------
        FaceModel or LowPrecisionView
            An object with this model's attributes whose ``embed_pixels``
            runs in ``precision``; its intact scores are still the caller's to
            compute in FP32.

        Raises
        ------
        InvalidInputError
            For an unknown precision or missing / malformed calibration pixels.
        CoreError
            ``"bf16"`` on a CPU where oneDNN has no bf16 convolution.
        """
        from .low_precision import LowPrecisionNet, LowPrecisionView, check_precision

        check_precision(precision)
        if precision == "fp32":
            return self
        if precision == "int8":
            c, h, w = self.spec.input_shape
            if calibration is None:
                raise InvalidInputError("precision='int8' needs calibration pixels (the intact images)")
            calibration = np.asarray(calibration)
            if calibration.dtype != np.float32 or calibration.ndim != 4 or calibration.shape[1:] != (h, w, c) \
                    or calibration.shape[0] < 1:
                raise InvalidInputError(f"calibration must be float32 (N, {h}, {w}, {c}) pixels with N >= 1, got "
                                        f"{calibration.dtype} {calibration.shape}")
            if not np.all(np.isfinite(calibration)):
                raise InvalidInputError("calibration pixels must be finite")
            calibration = np.ascontiguousarray(calibration)
        else:
            calibration = None
        with self._lock:
            nets = self.__dict__.setdefault("_low_precision_nets", {})
            if precision not in nets:
                nets[precision] = LowPrecisionNet(self, precision)
            lowp = nets[precision]
        return LowPrecisionView(self, lowp, calibration)

    def __repr__(self) -> str:
        return (f"FaceModel(name={self.name!r}, input_size={self.input_size}, "
                f"embedding_size={self.embedding_size}, metric={self.metric!r}, "
                f"threshold={f'{self._threshold:.4f}' if self.has_threshold else None})")

    def embed(self, images: Any, *, batch_size: int = 32, resize: bool = False, face: Any = "largest",
              channels: str = "RGB") -> np.ndarray:
        """Embeddings of face images.

        Parameters
        ----------
        images
            A uint8 (or 0-255 float) RGB array ``(H, W, 3)`` or ``(N, H, W, 3)``,
            a PIL image, a file path, a :class:`~fxplain.Face`, or a list of
            these: aligned chips of :attr:`input_size`, or photos (uint8, one
            by one), whose face is detected and aligned as the model's chip.
        batch_size : int
            Images per call into the core; memory grows with it.
        resize : bool
            Resize images of another size instead of raising (bilinear; for
            crops already aligned like the model's chips, never for photos).
        face : str or int
            Which face of each photo: ``"largest"`` (default),
            ``"most_confident"``, or an index into
            :func:`fxplain.detect_faces`' order (most confident first).
        channels : {"RGB", "BGR"}
            Channel order of array inputs (OpenCV's is BGR); files and PIL
            images are always read as RGB, grayscale arrays ``(H, W)`` /
            ``(H, W, 1)`` are replicated to RGB.

        Returns
        -------
        numpy.ndarray
            float32 ``(N, D)``.

        Raises
        ------
        InvalidInputError
            For images of the wrong type, shape, dtype or size, NaN values, an
            empty batch, or a photo without the chosen face.
        """
        batch_size = check_positive_int("batch_size", batch_size)
        pixels = to_pixel_batch(images, self.input_size, resize=resize, face=face, channels=channels)
        return self.embed_pixels(pixels, batch_size=batch_size)

    def embed_pixels(self, pixels: np.ndarray, *, batch_size: int = 32) -> np.ndarray:
        """Embeddings of an already validated float32 ``(N, H, W, 3)`` C-contiguous pixel batch."""
        out = np.empty((pixels.shape[0], self.embedding_size), np.float32)
        for start in range(0, pixels.shape[0], batch_size):
            chunk = pixels[start:start + batch_size]
            with self._lock:
                out[start:start + chunk.shape[0]] = self._net.forward(chunk).reshape(chunk.shape[0], -1)
        return self._finite(out, "embeddings")

    def _finite(self, values: np.ndarray, what: str) -> np.ndarray:
        """``values`` if every one is finite: a non-finite result is never returned as an answer."""
        if not np.all(np.isfinite(values)):
            raise CoreError(f"{self.name} produced non-finite {what}: its weights hold values that "
                            "overflow float32 (a corrupted model file?) or the input pixels are far off "
                            "the 0-255 scale")
        return values

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
        batch_size = check_positive_int("batch_size", batch_size)
        pixels = to_pixel_batch(images, self.input_size)
        grad = np.asarray(grad_output, dtype=np.float64)
        if grad.ndim == 1:
            grad = np.broadcast_to(grad, (len(pixels), grad.shape[0]))
        if grad.shape != (len(pixels), self.embedding_size):
            raise InvalidInputError(f"grad_output must have shape ({len(pixels)}, {self.embedding_size}) or "
                                    f"({self.embedding_size},), got {np.shape(grad_output)}")
        if not np.all(np.isfinite(grad)):
            raise InvalidInputError("grad_output contains NaN or infinite values")
        return self.input_gradient_pixels(pixels, np.ascontiguousarray(grad, np.float32), batch_size=batch_size)

    def input_gradient_pixels(self, pixels: np.ndarray, grad: np.ndarray, *, batch_size: int = 32) -> np.ndarray:
        """:meth:`input_gradient` on validated float32 pixels ``(N, H, W, 3)`` and gradients ``(N, D)``."""
        out_shape = self._net.output_shape()
        result = np.empty(pixels.shape, np.float32)
        for start in range(0, len(pixels), batch_size):
            chunk = pixels[start:start + batch_size]
            g = np.ascontiguousarray(grad[start:start + len(chunk)]).reshape((len(chunk),) + out_shape)
            with self._lock:
                result[start:start + len(chunk)] = self._net.input_gradient(chunk, g)[1]
        return self._finite(result, "gradients")

    def dimension_maps(self, image: Any, *, method: str = "gradient", patch: int | None = None,
                       stride: int | None = None, batch_size: int = 32) -> np.ndarray:
        """Which pixels drive each embedding dimension: one map ``R_k`` per dimension k.

        ``method="gradient"`` (default): ``R_k = |∂f_k/∂x|`` summed over
        colour; all D gradients come from batched backward passes through the
        C core (one unit vector each) that share a single forward pass.

        ``method="occlusion"``: the model's own sensitivity without gradients.
        One sweep of square patches (``patch`` pixels, default a sixth of the
        chip's side, every ``stride`` pixels, default a third of the patch)
        filled with the image's mean colour gives the change
        ``|f_k(occluded) - f_k(x)|`` of every dimension for every patch, so all
        D maps cost one sweep; each pixel gets the mean change of the patches
        covering it. This is the reference the decoder's region maps are
        checked against.

        Each map is normalised to sum to 1 over the pixels, so maps of
        different dimensions (and methods) compare.

        Returns
        -------
        numpy.ndarray
            float32 ``(D, H, W)``, non-negative.
        """
        if method not in ("gradient", "occlusion"):
            raise InvalidInputError(f"method must be 'gradient' or 'occlusion', got {method!r}")
        if method == "gradient" and (patch is not None or stride is not None):
            raise InvalidInputError("patch and stride are parameters of method='occlusion'")
        pixels = to_pixel_batch(image, self.input_size)
        if len(pixels) != 1:
            raise InvalidInputError(f"dimension_maps takes one image, got {len(pixels)}")
        if method == "occlusion":
            return occlusion_dimension_maps(self, pixels, patch=patch, stride=stride, batch_size=batch_size)
        d = self.embedding_size
        out_shape = self._net.output_shape()
        eye = np.eye(d, dtype=np.float32)
        maps = np.empty((d,) + pixels.shape[1:3])
        for start in range(0, d, batch_size):
            # one forward pass, shared by this chunk's backward passes (see csrc/net_shared.c)
            units = np.ascontiguousarray(eye[start:start + batch_size]).reshape((-1,) + out_shape)
            with self._lock:
                grad = self._net.input_gradient_shared(pixels, units)[1]
            maps[start:start + len(units)] = np.abs(grad).sum(axis=-1, dtype=np.float64)
        self._finite(maps, "gradients")
        totals = maps.reshape(d, -1).sum(axis=1)
        return (maps / np.where(totals > 0, totals, 1.0)[:, None, None]).astype(np.float32)

    def score(self, emb_a: np.ndarray, emb_b: np.ndarray) -> np.ndarray | float:
        """Similarity of embeddings (higher = more alike), on the scale of :attr:`threshold`.

        For ``squared_euclidean`` models (dlib) the score is ``−‖a − b‖²``; for
        ``cosine`` models it is the cosine similarity. Accepts single vectors
        ``(D,)`` (returns a float) or batches ``(N, D)`` (returns ``(N,)``).
        """
        a = self.check_embeddings(emb_a, "emb_a")
        b = self.check_embeddings(emb_b, "emb_b")
        return score_embeddings(self.metric, a, b)

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
        reference : array_like or Contrast
            ``(D,)`` embedding to score against, or a
            :class:`~fxplain.models.scoring.Contrast` ``(g1, g2)``: then the
            score difference ``s(x, g1) − s(x, g2)`` and its gradient.

        Returns
        -------
        (numpy.ndarray, numpy.ndarray)
            float64 scores ``(N,)`` and float32 gradients ``(N, H, W, 3)``.
        """
        batch_size = check_positive_int("batch_size", batch_size)
        if isinstance(reference, Contrast):
            if reference.first.shape != (self.embedding_size,):
                raise InvalidInputError(f"the contrast's embeddings must be ({self.embedding_size},), got "
                                        f"{reference.first.shape}")
            ref = reference
        else:
            ref = self.check_embeddings(reference, "reference")
            if ref.ndim != 1:
                raise InvalidInputError(f"reference must be one embedding ({self.embedding_size},), "
                                        f"got {ref.shape}")
            ref = ref.astype(np.float64)
        return self.score_gradient_pixels(to_pixel_batch(images, self.input_size), ref, batch_size=batch_size)

    def score_gradient_pixels(self, pixels: np.ndarray, reference: np.ndarray, *,
                              batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`score_gradient` on validated float32 pixels and a float64 ``(D,)`` reference or a Contrast."""
        scores = np.empty(len(pixels))
        grads = np.empty(pixels.shape, np.float32)
        for start in range(0, len(pixels), batch_size):
            chunk = pixels[start:start + batch_size]

            def score_derivative(emb: np.ndarray, at: int = start) -> np.ndarray:
                s, d_emb = score_and_embedding_gradient(self.metric, emb.astype(np.float64), reference)
                scores[at:at + len(emb)] = s
                return d_emb

            grads[start:start + len(chunk)] = self.forward_backward(chunk, score_derivative)[1]
        return scores, grads

    def forward_backward(self, pixels: np.ndarray, output_gradient: Callable[[np.ndarray], np.ndarray]
                         ) -> tuple[np.ndarray, np.ndarray]:
        """One forward and one backward pass through the core, as one transaction.

        Computes the embeddings ``E`` of validated float32 ``(N, H, W, 3)``
        ``pixels``, calls ``output_gradient(E)`` for the gradient ``G`` of a
        loss with respect to them (``(N, D)``), and returns ``(E, ∂(Σ E·G)/∂pixels)``
        (float32 ``(N, D)`` and ``(N, H, W, 3)``). The model's lock is held
        from the forward pass to the end of the backward pass, so calls from
        other threads cannot come between them; losses that need the output
        first (a score, an identity loss) go through here.
        """
        with self._lock:
            emb = self._finite(self._net.train_forward(pixels, False).reshape(len(pixels), -1), "embeddings")
            grad = np.ascontiguousarray(output_gradient(emb), np.float32)
            if grad.shape != emb.shape:
                raise InvalidInputError(f"output_gradient returned shape {grad.shape}, expected {emb.shape}")
            grad_pixels = self._net.train_backward(grad.reshape((len(pixels),) + self._net.output_shape()))[0]
        return emb, self._finite(grad_pixels, "gradients")

    def verify(self, image_a: Any, image_b: Any, *, face: Any = "largest", channels: str = "RGB") -> Verification:
        """Compare two faces: score, threshold, decision and embedding distance.

        ``image_a``/``image_b`` are what :meth:`embed` takes for one image;
        ``face`` chooses the face of a photo as there, for both sides or as a
        ``(choice_a, choice_b)`` pair, ``channels`` gives the channel order
        of array inputs as there.
        """
        threshold = require_threshold(self)  # a model without one refuses before any work
        face_a, face_b = pair_face_choices(face)
        pixels = np.concatenate([to_pixel_batch(image_a, self.input_size, face=face_a, channels=channels),
                                 to_pixel_batch(image_b, self.input_size, face=face_b, channels=channels)])
        if len(pixels) != 2:
            raise InvalidInputError(f"verify takes one image per side, got {len(pixels)} images")
        emb = self.embed_pixels(pixels)  # both sides in one forward pass
        score = self.score(emb[0], emb[1])
        return Verification(score=score, threshold=threshold, match=score >= threshold,
                            distance=distance_from_score(self.metric, score))

    def save(self, path: Any, *, calibration: Any = None, dataset: str | None = None) -> Any:
        """Write this model to a face-model file (``.fxn``) that :func:`fxplain.load_model` reads back.

        The file keeps the network (exactly: a model loaded from it embeds
        bit for bit as this one), its preprocessing (input size, mean, std,
        channel order), metric, threshold (or none) and, if given, the
        calibration record of the threshold: a
        :class:`~fxplain.ThresholdCalibration` (or a dict), with ``dataset``
        naming the faces it was set on. See
        :mod:`fxplain.models.formats.face_model_file`.

        Returns
        -------
        pathlib.Path
            The file written.
        """
        from .formats.face_model_file import save_face_model

        return save_face_model(self, path, calibration=calibration, dataset=dataset)

    def check_embeddings(self, emb: Any, name: str) -> np.ndarray:
        """``emb`` validated as ``(D,)`` or ``(N, D)`` finite floats (raises InvalidInputError)."""
        return check_embeddings(emb, self.embedding_size, name)
