"""A gallery of known identities: its faces embedded once (cached on disk), searched by a probe's embedding.

>>> gallery = fxplain.Gallery(model, "people/")          # one sub-folder of images per identity
>>> gallery.identities                                    # ('Ann', 'Bob', ...)
>>> gallery.search(model.embed("probe.jpg")[0])[:3]       # the 3 identities the model finds closest

Images may be aligned chips of the model's input size or photos (their
largest face is detected and aligned, as everywhere in fxplain). Several
images per identity are combined at search time, as the caller chooses:
``combine="mean"`` scores the probe against the mean of the identity's
embeddings; ``combine="best"`` takes the identity's image that scores best
against the probe.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._util.errors import InvalidInputError
from .._util.files import require_regular_file
from .._util.images import decode_image
from .._util.progress import Progress
from .._util.validation import check_positive_int
from ..faces.inputs import to_pixel_batch
from ..models.protocols import require_embedding_model
from ..models.scoring import distance_from_score
from .cache import EmbeddingCache, default_gallery_cache

#: Image files a gallery folder is read for (as make_pairs reads identity folders).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
#: How a gallery identity with several images is scored against a probe.
COMBINE = ("mean", "best")
#: An image file is read whole to hash it: a gallery image larger than this is not a face photo.
_MAX_IMAGE_BYTES = 256 << 20


@dataclass(frozen=True)
class Candidate:
    """One gallery identity as a search ranks it against a probe.

    Attributes
    ----------
    rank : int
        1 for the identity the model finds closest.
    identity : str
        The identity's name (its folder's name).
    score : float
        The model's score of the probe against the identity (against its
        mean embedding for ``combine="mean"``, its best image for ``"best"``).
    match : bool or None
        ``score >= threshold`` (None for a model without a threshold).
    distance : float
        The model metric's distance for ``score`` (dlib: Euclidean).
    image : str or None
        The identity's representative image file: the one closest to the
        mean embedding (``"mean"``) or the best-scoring one (``"best"``);
        None when the gallery was given arrays.
    image_index : int
        Index of that image in :attr:`Gallery.images`.
    embedding : numpy.ndarray
        float64 ``(D,)``: what the probe was scored against.
    """

    rank: int
    identity: str
    score: float
    match: bool | None
    distance: float
    image: str | None
    image_index: int
    embedding: np.ndarray = field(repr=False, compare=False)

    def record(self) -> dict[str, Any]:
        """JSON-ready fields (without the embedding)."""
        return {"rank": self.rank, "identity": self.identity, "score": self.score, "match": self.match,
                "distance": self.distance, "image": self.image, "image_index": self.image_index}


class Gallery:
    """Known identities and their faces, embedded by one model.

    Parameters
    ----------
    model : FaceModel or CallableModel
        The model that embeds (and later searches) the gallery.
    source : path or list
        A folder with one sub-folder of images per identity (sub-folders
        without images and files outside them are ignored), or a list of
        ``(identity, image)`` items, the image a path, an array, a PIL image
        or a :class:`~fxplain.Face`.
    cache_dir : path, None or False
        Where embeddings of image *files* are cached, keyed by the model's
        hash and each file's SHA-256 (see :mod:`fxplain.identification.cache`);
        None: ``<fxplain cache>/galleries``; False: no cache. Images given as
        arrays are embedded every time.
    batch_size : int
        Images per pass through the model.
    show_progress : bool
        Show a progress bar while embedding.

    Notes
    -----
    A gallery holds (plain attributes; "Attributes" would give Sphinx a
    second target for names other pages use): ``identities``, a tuple of
    the identities in folder (sorted) or first-appearance order;
    ``labels``, the identity of each image; ``images``, each image as given
    (a path as ``str``); ``embeddings``, float32 ``(N, D)``, one row per
    image; ``embedded`` and ``cached``, how many images this construction
    embedded and how many it read from the cache; ``cache_rejected``, how
    many cache entries it found damaged (and rewrote).
    """

    def __init__(self, model, source: Any, *, cache_dir: str | os.PathLike | None | bool = None,
                 batch_size: int = 64, show_progress: bool = False):
        self.model = require_embedding_model(model, decisions=False)
        self.model_hash = model.model_hash
        batch_size = check_positive_int("batch_size", batch_size)
        items = _read_items(source)
        self.labels = tuple(label for label, _ in items)
        self.images = tuple(image for _, image in items)
        self.identities = tuple(dict.fromkeys(self.labels))
        cache = None
        if cache_dir is not False:
            cache = EmbeddingCache(default_gallery_cache() if cache_dir in (None, True) else cache_dir,
                                   model.model_hash, model.embedding_size)
        self.embeddings, self.embedded, self.cached = _embed(model, self.images, cache, batch_size, show_progress)
        self.cache_rejected = cache.rejected if cache is not None else 0
        self._members = {name: np.flatnonzero(np.asarray(self.labels) == name) for name in self.identities}

    def __len__(self) -> int:
        return len(self.images)

    def __repr__(self) -> str:
        return f"Gallery({len(self.identities)} identities, {len(self.images)} images, model {self.model.name!r})"

    def paths(self) -> tuple[str | None, ...]:
        """Each image's file path (None for images given as arrays)."""
        return tuple(image if isinstance(image, str) else None for image in self.images)

    def members(self, identity: str) -> np.ndarray:
        """Indices (into :attr:`images`) of an identity's images."""
        if identity not in self._members:
            raise InvalidInputError(f"identity {identity!r} is not in the gallery (it has "
                                    f"{len(self.identities)}: {', '.join(self.identities[:5])}"
                                    f"{', ...' if len(self.identities) > 5 else ''})")
        return self._members[identity]

    def search(self, probe_embedding: Any, *, combine: str = "mean", top_k: int | None = None) -> list[Candidate]:
        """Every identity (or the ``top_k`` first) ranked by the model's score against a probe embedding.

        ``combine="mean"``: the score against the mean (float64) of the
        identity's embeddings, the representative image the one closest to
        that mean; ``"best"``: the best score of the identity's images, and
        that image. Equal scores keep the gallery's order.
        """
        if combine not in COMBINE:
            raise InvalidInputError(f"combine must be 'mean' or 'best', got {combine!r}")
        probe = self.model.check_embeddings(probe_embedding, "probe_embedding")
        if probe.ndim != 1:
            raise InvalidInputError(f"search takes one (D,) probe embedding, got shape {probe.shape}")
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer))
                                  or not 1 <= top_k <= len(self.identities)):
            raise InvalidInputError(f"top_k must be an integer from 1 to the gallery's {len(self.identities)} "
                                    f"identities, got {top_k!r}")
        rows = []
        image_scores = np.atleast_1d(self.model.score(self.embeddings, probe)) if combine == "best" else None
        for name in self.identities:
            members = self._members[name]
            own = self.embeddings[members].astype(np.float64)
            if combine == "mean":
                reference = own.mean(axis=0)
                best = members[int(np.argmax(np.atleast_1d(self.model.score(own, reference))))]
                score = float(self.model.score(reference, probe))
            else:
                best = members[int(np.argmax(image_scores[members]))]
                reference = self.embeddings[best].astype(np.float64)
                score = float(image_scores[best])
            rows.append((score, name, int(best), reference))
        order = sorted(range(len(rows)), key=lambda k: -rows[k][0])  # stable: ties keep the gallery's order
        threshold = getattr(self.model, "threshold", None)
        ranked = []
        for rank, k in enumerate(order[:top_k] if top_k else order, start=1):
            score, name, best, reference = rows[k]
            ranked.append(Candidate(
                rank=rank, identity=name, score=score,
                match=None if threshold is None else bool(score >= threshold),
                distance=float(distance_from_score(self.model.metric, score)),
                image=self.images[best] if isinstance(self.images[best], str) else None,
                image_index=best, embedding=reference))
        return ranked


def _read_items(source: Any) -> list[tuple[str, Any]]:
    """``(identity, image)`` items of a folder or a list, checked (paths become ``str``)."""
    if isinstance(source, (str, os.PathLike)):
        return _folder_items(Path(source))
    if not isinstance(source, (list, tuple)):
        raise InvalidInputError(f"a gallery is a folder of identity sub-folders or a list of (identity, image) "
                                f"items, got {type(source).__name__}")
    items = []
    for k, item in enumerate(source):
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            raise InvalidInputError(f"gallery item {k} must be an (identity, image) pair, got {item!r:.80}")
        identity, image = item
        if not isinstance(identity, str) or not identity:
            raise InvalidInputError(f"gallery item {k}: the identity must be a non-empty string, got {identity!r}")
        items.append((identity, str(image) if isinstance(image, os.PathLike) else image))
    if not items:
        raise InvalidInputError("the gallery is empty: give at least one (identity, image) item")
    return items


def _folder_items(root: Path) -> list[tuple[str, str]]:
    if not root.is_dir():
        raise InvalidInputError(f"gallery folder not found: {root}")
    items = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        # is_file: a FIFO or socket named like an image is not read (it would block)
        items += [(folder.name, str(p)) for p in sorted(folder.iterdir())
                  if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    if not items:
        raise InvalidInputError(f"the gallery {root} has no identity sub-folders with images "
                                f"({', '.join(IMAGE_SUFFIXES)})")
    return items


def _embed(model, images: tuple, cache: EmbeddingCache | None, batch_size: int,
           show_progress: bool) -> tuple[np.ndarray, int, int]:
    """Embeddings ``(N, D)`` of the gallery's images, from the cache where it has them; counts embedded, cached."""
    out = np.empty((len(images), model.embedding_size), np.float32)
    pending: list[tuple[int, np.ndarray, str | None]] = []  # (index, decoded image, file digest)
    embedded = cached = 0

    def flush() -> None:
        nonlocal embedded
        if not pending:
            return
        pixels = np.concatenate([_chip(model, image, images[index], index) for index, image, _ in pending])
        emb = model.embed_pixels(pixels, batch_size=batch_size)
        for (index, _, digest), row in zip(pending, emb):
            out[index] = row
            if digest is not None and cache is not None:
                cache.put(digest, row)
        embedded += len(pending)
        progress.update(len(pending))
        pending.clear()

    with Progress(len(images), "embedding the gallery", show_progress) as progress:
        for index, image in enumerate(images):
            digest = None
            if isinstance(image, str):
                data = _read_image_bytes(Path(image))
                digest = hashlib.sha256(data).hexdigest()
                hit = cache.get(digest) if cache is not None else None
                if hit is not None:
                    out[index] = hit
                    cached += 1
                    progress.update(1)
                    continue
                # decoded from the bytes just hashed, so the cache entry is the embedding of that content
                image = decode_image(io.BytesIO(data), image)
            pending.append((index, image, digest))
            if len(pending) >= batch_size:
                flush()
        flush()
    return out, embedded, cached


def _read_image_bytes(path: Path) -> bytes:
    require_regular_file(path, "gallery image", InvalidInputError)  # missing, a FIFO, a folder: refused
    try:
        size = path.stat().st_size
        if size > _MAX_IMAGE_BYTES:
            raise InvalidInputError(f"gallery image {path} is {size} bytes, larger than any face image fxplain reads")
        return path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"cannot read gallery image {path}: {exc}") from None


def _chip(model, image: Any, source: Any, index: int) -> np.ndarray:
    """One gallery image as the model's ``(1, H, W, 3)`` chip; errors name the image."""
    try:
        pixels = to_pixel_batch(image, model.input_size)
    except InvalidInputError as exc:
        name = source if isinstance(source, str) else f"gallery item {index}"
        raise InvalidInputError(f"{name}: {exc}") from None
    if len(pixels) != 1:
        raise InvalidInputError(f"gallery item {index} holds {len(pixels)} images; give one image per item")
    return pixels
