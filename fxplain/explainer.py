"""The Explainer: one object, any method, the same result type.

>>> ex = fxplain.Explainer(model, method="corrrise", seed=0, n_masks=1000)
>>> r = ex.explain("a.jpg", "b.jpg")     # or ex("a.jpg", "b.jpg")
>>> r.similarity.shape                   # (2, H, W): evidence for the match in A and B
>>> r.plot()
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ._util.errors import InvalidInputError
from ._util.files import read_untrusted_file
from ._util.progress import Progress
from ._util.validation import check_positive_int, check_seed
from .faces.inputs import pair_face_choices, to_pixel_batch_and_faces
from .methods.base import METHODS, Evidence, Method
from .models.protocols import require_embedding_model
from .models.scoring import require_threshold, score_kind
from .results import PairExplanation, _jsonable

_NORMALIZE = (None, "pair", "image")


def _sources(*images: Any) -> tuple | None:
    """Each side's file (path and SHA-256) when it was given as a path, for the result's record."""
    records = []
    for image in images:
        if isinstance(image, (str, os.PathLike)) and Path(image).is_file():
            data = read_untrusted_file(Path(image), "image file")
            records.append({"path": str(image), "sha256": hashlib.sha256(data).hexdigest()})
        else:
            records.append(None)
    return tuple(records) if any(r is not None for r in records) else None


class Explainer:
    """Explain a face-recognition model's decisions on pairs of faces.

    Parameters
    ----------
    model : FaceModel or CallableModel
        From :func:`fxplain.load_model` or :func:`fxplain.wrap`.
    method : str
        ``"corrrise"`` (default), ``"occlusion"``, ``"gradient"`` (integrated
        gradients of the pair score by default; per-dimension gradient maps
        combined by the margin decomposition with ``variant="net"`` or
        ``"split"``) or ``"reconstruction"`` (the decoder's per-dimension region
        maps through that combiner; ``decoder=`` a Decoder or file, default
        :func:`fxplain.default_decoder`). The last two need a model on the C
        core. :meth:`methods` lists every registered method.
    seed : int
        Seed of the method's random numbers: the same seed gives the same maps.
    batch_size : int
        Perturbed images per pass through the model (bounds memory).
    show_progress : bool
        Show a progress bar (tqdm if installed).
    normalize : {None, "pair", "image"}
        None (default) keeps raw maps, comparable across pairs; ``"pair"``
        divides both images' maps by the largest value of the pair; ``"image"``
        divides each image's maps by its own largest value.
    **method_params
        The method's parameters, e.g. ``n_masks`` for CorrRISE or
        ``variant`` for gradient and reconstruction. Every method's
        parameters and their defaults live in the method registry
        (:data:`fxplain.methods.base.METHODS`, each class's ``defaults``):
        :meth:`Explainer.methods` returns them and ``fxplain explain --help``
        prints them; ``docs/explanations.md`` says what they do. A parameter
        the method does not have raises InvalidInputError.
    """

    def __init__(self, model, method: str = "corrrise", *, seed: int = 0, batch_size: int = 64,
                 show_progress: bool = False, normalize: str | None = None, **method_params: Any):
        if method not in METHODS:
            raise InvalidInputError(f"unknown method {method!r}; available: {sorted(METHODS)}")
        require_embedding_model(model)
        seed = check_seed(seed)
        batch_size = check_positive_int("batch_size", batch_size)
        if normalize not in _NORMALIZE:
            raise InvalidInputError(f"normalize must be one of {_NORMALIZE}, got {normalize!r}")
        self.model = model
        self.method: Method = METHODS[method](**method_params)
        self.seed = seed
        self.batch_size = batch_size
        self.show_progress = bool(show_progress)
        self.normalize = normalize

    @staticmethod
    def methods() -> dict[str, dict[str, Any]]:
        """Available methods and their default parameters."""
        return {name: dict(cls.defaults) for name, cls in METHODS.items()}

    def __repr__(self) -> str:
        return f"Explainer(method={self.method.name!r}, params={self.method.params}, seed={self.seed})"

    def __call__(self, image_a: Any, image_b: Any) -> PairExplanation:
        return self.explain(image_a, image_b)

    def explain(self, image_a: Any, image_b: Any, *, face: Any = "largest", channels: str = "RGB") -> PairExplanation:
        """Explain the model's decision on one pair.

        Parameters
        ----------
        image_a, image_b
            Aligned face chips of the model's input size, photos (their
            largest face is detected and aligned) or :class:`~fxplain.Face`
            objects: arrays, PIL images or file paths (as
            :meth:`FaceModel.embed` accepts). The faces of photos are kept in
            the result (``r.faces``, ``r.extras["faces"]``) for
            ``r.plot(on="photo")``.
        face : str, int or pair
            Which face of a photo: ``"largest"`` (default),
            ``"most_confident"`` or an index into
            :func:`fxplain.detect_faces`' order; one choice for both sides or
            ``(choice_a, choice_b)``.
        channels : {"RGB", "BGR"}
            Channel order of array inputs (files and PIL images are read as
            RGB); grayscale arrays are taken as such.

        Returns
        -------
        PairExplanation
        """
        pixels, faces = self._pair_pixels(image_a, image_b, face, channels)
        embeddings = self.model.embed_pixels(pixels, batch_size=2)
        with Progress(2 * self.method.work_units(self.model.input_size), f"{self.method.name}",
                      self.show_progress) as progress:
            result = self._explain(pixels, embeddings, progress, faces)
        result.sources = _sources(image_a, image_b)
        return result

    def explain_pairs(self, pairs: Iterable[tuple[Any, Any]], *, face: Any = "largest",
                      channels: str = "RGB") -> list[PairExplanation]:
        """Explain many pairs; the intact images are embedded together in batches.

        ``pairs`` is an iterable of ``(image_a, image_b)``. A progress bar (if
        enabled) counts perturbed images over all pairs.
        """
        pairs = list(pairs)
        if not pairs:
            raise InvalidInputError("pairs must hold at least one (image_a, image_b) pair")
        resolved = [self._pair_pixels(a, b, face, channels) for a, b in pairs]
        pixel_pairs = [pixels for pixels, _ in resolved]
        embeddings = self.model.embed_pixels(np.concatenate(pixel_pairs), batch_size=self.batch_size)
        total = 2 * len(pairs) * self.method.work_units(self.model.input_size)
        results = []
        with Progress(total, f"{self.method.name} x {len(pairs)} pairs", self.show_progress) as progress:
            for k, pixels in enumerate(pixel_pairs):
                results.append(self._explain(pixels, embeddings[2 * k:2 * k + 2], progress, resolved[k][1]))
                results[-1].sources = _sources(*pairs[k])
        return results

    # ---- internals --------------------------------------------------------

    def _pair_pixels(self, image_a: Any, image_b: Any, face: Any = "largest",
                     channels: str = "RGB") -> tuple[np.ndarray, tuple]:
        """The pair's chips as one pixel batch, and the Face each side stands for (None for a chip)."""
        size = self.model.input_size
        choice_a, choice_b = pair_face_choices(face)
        a, (face_a, *_) = to_pixel_batch_and_faces(image_a, size, face=choice_a, channels=channels)
        b, (face_b, *_) = to_pixel_batch_and_faces(image_b, size, face=choice_b, channels=channels)
        if len(a) != 1 or len(b) != 1:
            raise InvalidInputError(f"explain takes one image per side, got {len(a)} and {len(b)}; "
                                    "use explain_pairs for many pairs")
        return np.ascontiguousarray(np.concatenate([a, b])), (face_a, face_b)

    def _explain(self, pixels: np.ndarray, embeddings: np.ndarray, progress, faces=(None, None)) -> PairExplanation:
        start = time.perf_counter()
        threshold = require_threshold(self.model)
        score = float(self.model.score(embeddings[0], embeddings[1]))
        evidence: Evidence = self.method.explain_pair(self.model, pixels, embeddings, score, self.seed,
                                                      self.batch_size, progress)
        similarity, dissimilarity = self._normalized(evidence.similarity, evidence.dissimilarity)
        return PairExplanation(
            similarity=similarity.astype(np.float32),
            dissimilarity=dissimilarity.astype(np.float32),
            score=score, threshold=threshold, match=bool(score >= threshold),
            method=self.method.name, params=_jsonable(self.method.params), seed=self.seed,
            model_hash=self.model.model_hash, model_name=getattr(self.model, "name", "model"),
            images=pixels.copy(), seconds=time.perf_counter() - start, normalize=self.normalize,
            extras={"score_kind": score_kind(self.model), "units": self.method.units, **evidence.extras,
                    **({"faces": [f.record(self.model) if f is not None else None for f in faces]}
                       if any(f is not None for f in faces) else {})},
            faces=faces if any(f is not None for f in faces) else None,
        )

    def _normalized(self, similarity: np.ndarray, dissimilarity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Apply the requested normalisation to both (2, H, W) maps."""
        if self.normalize is None:
            return similarity, dissimilarity
        both = np.maximum(similarity, dissimilarity)
        if self.normalize == "pair":
            peak = np.full((2, 1, 1), both.max())
        else:
            peak = both.reshape(2, -1).max(axis=1)[:, None, None]
        peak = np.where(peak > 0, peak, 1.0)
        return similarity / peak, dissimilarity / peak
