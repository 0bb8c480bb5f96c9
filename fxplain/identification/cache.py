"""The on-disk cache of gallery embeddings: one small file per (model, image file content).

A gallery of thousands of faces is embedded once: each image file's
embedding is kept under ``<cache>/<model hash>/<SHA-256 of the file>.npy``.
The key is the file's *content*, so a file changed in place is embedded
again, and a file copied or renamed is not. The cache is fxplain's own, but
it lives on a disk others can write to, so an entry is used only if it is a
regular file of the right size holding a finite float32 vector of the
model's embedding length (no pickle); anything else is ignored and rewritten.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import numpy as np

from .._util.files import require_regular_file
from ..datasets import cache_dir as fxplain_cache_dir

#: A .npy header is 128 bytes; a float32 embedding of D values adds 4·D. Anything far larger is not an entry.
_MAX_ENTRY_BYTES = 1 << 20
_DIGEST = re.compile(r"[0-9a-f]{64}")


def default_gallery_cache() -> Path:
    """``<fxplain cache>/galleries`` (``FXPLAIN_CACHE_DIR`` moves it, as it moves the decoders)."""
    return fxplain_cache_dir() / "galleries"


class EmbeddingCache:
    """Embeddings of one model, by the SHA-256 of the image file they were computed from.

    Parameters
    ----------
    directory : path
        The cache's root (one sub-folder per model hash is made in it).
    model_hash : str
        The model's :attr:`~fxplain.FaceModel.model_hash`.
    embedding_size : int
        The model's embedding length D; an entry of another length is damaged.
    """

    def __init__(self, directory: str | os.PathLike, model_hash: str, embedding_size: int):
        self.folder = Path(directory).expanduser() / _safe_name(model_hash)
        self.embedding_size = int(embedding_size)
        #: Entries found but unusable (damaged, truncated, wrong shape) since this object was made.
        self.rejected = 0

    def path(self, digest: str) -> Path:
        """The entry file of an image file's SHA-256 (hex)."""
        if not _DIGEST.fullmatch(digest):
            raise ValueError(f"not a SHA-256 hex digest: {digest!r}")
        return self.folder / f"{digest}.npy"

    def get(self, digest: str) -> np.ndarray | None:
        """The cached float32 ``(D,)`` embedding, or None if there is none or it is damaged."""
        path = self.path(digest)
        if not path.exists():
            return None
        try:
            info = require_regular_file(path, "gallery cache entry")
            if info.st_size > _MAX_ENTRY_BYTES:
                raise ValueError("too large")
            value = np.load(path, allow_pickle=False)
        except Exception:  # noqa: BLE001 - any damage (truncated, not .npy, a FIFO) means: embed again
            self.rejected += 1
            return None
        if (not isinstance(value, np.ndarray) or value.dtype != np.float32
                or value.shape != (self.embedding_size,) or not np.all(np.isfinite(value))):
            self.rejected += 1
            return None
        return value

    def put(self, digest: str, embedding: np.ndarray) -> None:
        """Store an embedding (atomically: a reader never sees half a file; concurrent writers both succeed)."""
        path = self.path(digest)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npy", dir=self.folder)
            try:
                with os.fdopen(fd, "wb") as f:
                    np.save(f, np.ascontiguousarray(embedding, np.float32), allow_pickle=False)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError:
            # a read-only or full disk costs the next run the embedding, not this run its result
            pass


def _safe_name(model_hash: str) -> str:
    """The model hash as a folder name (hex digits and a few safe characters only)."""
    name = re.sub(r"[^0-9A-Za-z_.-]", "_", str(model_hash))[:128]
    return name or "model"
