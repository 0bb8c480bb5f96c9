"""Black-box models: any Python callable ``images -> embeddings``."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np

from .._util.errors import InvalidInputError
from .._util.validation import check_positive_int
from ..faces.inputs import to_pixel_batch
from .face_model import FaceModel
from .scoring import check_metric


class CallableModel:
    """A face-recognition model given as a Python function (for black-box methods).

    Created by :func:`wrap`; offers the parts of :class:`~fxplain.FaceModel`
    that perturbation methods use: ``embed``, ``score``, ``threshold``,
    ``input_size``, ``model_hash``.
    """

    def __init__(self, fn: Callable[[np.ndarray], Any], *, input_size: tuple[int, int], threshold: float,
                 metric: str = "cosine", name: str | None = None, dtype: str = "uint8"):
        if not callable(fn):
            raise InvalidInputError(f"fn must be callable, got {type(fn).__name__}")
        check_metric(metric)
        if dtype not in ("uint8", "float32"):
            raise InvalidInputError(f"dtype must be 'uint8' or 'float32', got {dtype!r}")
        if (not isinstance(input_size, (tuple, list)) or len(input_size) != 2
                or not all(isinstance(s, (int, np.integer)) and s > 0 for s in input_size)):
            raise InvalidInputError(f"input_size must be (height, width), got {input_size!r}")
        self.fn = fn
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.threshold = float(threshold)
        self.metric = metric
        self.dtype = dtype
        self.name = name or getattr(fn, "__name__", type(fn).__name__)
        probe = self.embed_pixels(_probe_image(self.input_size))
        self.embedding_size = probe.shape[1]
        # a functional fingerprint: the name and the embedding of a fixed probe image
        self.model_hash = hashlib.sha256(self.name.encode() + probe.tobytes()).hexdigest()

    score = FaceModel.score
    check_embeddings = FaceModel.check_embeddings
    verify = FaceModel.verify

    def __repr__(self) -> str:
        return f"CallableModel(name={self.name!r}, input_size={self.input_size}, metric={self.metric!r})"

    def embed(self, images: Any, *, batch_size: int = 32, resize: bool = False, face: Any = "largest",
              channels: str = "RGB") -> np.ndarray:
        """Embeddings of images (same inputs, ``face=`` and ``channels=`` as :meth:`fxplain.FaceModel.embed`)."""
        batch_size = check_positive_int("batch_size", batch_size)
        return self.embed_pixels(to_pixel_batch(images, self.input_size, resize=resize, face=face, channels=channels),
                                 batch_size=batch_size)

    def embed_pixels(self, pixels: np.ndarray, *, batch_size: int = 32) -> np.ndarray:
        """Call the function on chunks of float32 (N, H, W, 3) pixels; check what it returns."""
        out = []
        for start in range(0, len(pixels), batch_size):
            chunk = pixels[start:start + batch_size]
            if self.dtype == "uint8":
                chunk = np.clip(np.rint(chunk), 0, 255).astype(np.uint8)
            try:
                raw = self.fn(chunk)
            except Exception as exc:  # the user's function: say what it was given
                raise InvalidInputError(
                    f"the wrapped function {self.name!r} raised {type(exc).__name__}: "
                    f"{(str(exc).splitlines() or [''])[0][:200]} when called on a "
                    f"{chunk.dtype} NumPy array of shape {chunk.shape} (N, H, W, 3 RGB, 0-255); wrap() passes "
                    "that and expects (N, D) embeddings back. For a torch.nn.Module use fxplain.from_torch "
                    "(white-box, on the C core), or wrap a function that converts the batch for it") from exc
            emb = _as_array(raw)
            if emb.ndim != 2 or emb.shape[0] != len(chunk):
                raise InvalidInputError(f"the wrapped function returned shape {emb.shape} for {len(chunk)} "
                                        "images; expected (N, D)")
            if not np.all(np.isfinite(emb)):
                raise InvalidInputError("the wrapped function returned NaN or infinite embeddings")
            out.append(emb)
        return np.ascontiguousarray(np.concatenate(out))


def _as_array(raw: Any) -> np.ndarray:
    """What the function returned as float32: torch tensors (on any device, requiring grad or not) included."""
    if hasattr(raw, "detach") and hasattr(raw, "cpu"):
        raw = raw.detach().cpu().numpy()
    try:
        return np.asarray(raw, dtype=np.float32)
    except (TypeError, ValueError):
        raise InvalidInputError(f"the wrapped function returned {type(raw).__name__}, not an (N, D) array of "
                                "embeddings") from None


def _probe_image(size: tuple[int, int]) -> np.ndarray:
    y, x = np.mgrid[0:size[0], 0:size[1]]
    probe = np.stack([x * 255.0 / max(size[1] - 1, 1), y * 255.0 / max(size[0] - 1, 1),
                      np.full(size, 128.0)], axis=-1)
    return probe[None].astype(np.float32)


def wrap(fn: Callable[[np.ndarray], Any], *, input_size: tuple[int, int], threshold: float,
         metric: str = "cosine", name: str | None = None, dtype: str = "uint8") -> CallableModel:
    """Make any ``images -> embeddings`` function explainable by the black-box methods.

    Parameters
    ----------
    fn : callable
        Takes an ``(N, H, W, 3)`` RGB batch (uint8, or float32 0-255 with
        ``dtype="float32"``) and returns ``(N, D)`` embeddings (a NumPy
        array, a torch tensor — on any device, requiring grad or not — or
        anything ``np.asarray`` accepts). For a ``torch.nn.Module``,
        :func:`fxplain.from_torch` runs it on the core with every method.
    input_size : (int, int)
        ``(H, W)`` the function expects.
    threshold : float
        Decision threshold on the score scale (cosine similarity, or minus the
        squared Euclidean distance).
    metric : {"cosine", "squared_euclidean"}
    name : str, optional
        Shown in results; defaults to the function's name.
    dtype : {"uint8", "float32"}
        What the function receives. Perturbed images are rounded for uint8.
    """
    if type(fn).__module__.startswith("torch") or any(c.__module__.startswith("torch.nn") for c in type(fn).__mro__):
        raise InvalidInputError(
            f"wrap() takes a function of (N, H, W, 3) NumPy pixels, got a {type(fn).__name__} module: use "
            "fxplain.from_torch(module, input_size=..., mean=..., std=...) to run it on the core with every "
            "method, or wrap a function that turns the pixel batch into the tensor it expects")
    return CallableModel(fn, input_size=input_size, threshold=threshold, metric=metric, name=name, dtype=dtype)
