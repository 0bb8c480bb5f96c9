"""Reading files fxplain did not write: regular files only, of a plausible size, with fxplain's errors."""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import ModelFormatError, ModelNotFoundError

#: Far above any face model or decoder (dlib's ResNet is 22 MB).
MAX_FILE_BYTES = 2 << 30


def require_regular_file(path: Path, what: str, error: type[Exception] = ModelNotFoundError) -> os.stat_result:
    """``path``'s stat if it is a regular file; else ``error`` naming ``what`` (missing, FIFO, directory...).

    A FIFO or device would block a read or never end, so only regular files
    are opened.
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        raise error(f"{what} not found: {path}") from None
    except OSError as exc:
        raise error(f"cannot access {what} {path}: {exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise error(f"{what} path is not a file: {path} (only regular files are read)")
    return info


def read_untrusted_file(path: Path, what: str, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of ``path``, refusing what is not a regular file of at most ``limit`` bytes.

    ``what`` names the file in errors ("model file", "network file").
    Raises ModelNotFoundError (missing, not a file) or ModelFormatError
    (too large, unreadable).
    """
    info = require_regular_file(path, what)
    if info.st_size > limit:
        raise ModelFormatError(f"{path}: {info.st_size} bytes is larger than any supported {what}")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ModelFormatError(f"cannot read {path}: {exc}") from None


class ParsedFileCache:
    """Objects parsed from files, kept by the SHA-256 of the file's bytes.

    For model files that take a second to parse (dlib's landmark predictor,
    its face detector): loading the same content again costs a read and a
    digest (~10 ms), and a file rewritten in place is parsed again — a cache
    keyed on path, size and modification time would return the old object
    when the rewrite falls within one timestamp tick. Thread-safe; keeps the
    ``size`` most recent entries.
    """

    def __init__(self, what: str, parse: Callable[[bytes, Path], Any], size: int = 4):
        self.what, self.parse, self.size = what, parse, size
        self._entries: dict[str, Any] = {}
        self._lock = threading.Lock()

    def load(self, path: Path) -> Any:
        """The parsed object of ``path`` (read with :func:`read_untrusted_file`)."""
        data = read_untrusted_file(path, self.what)
        digest = hashlib.sha256(data).hexdigest()
        with self._lock:
            if digest in self._entries:
                return self._entries[digest]
        parsed = self.parse(data, path)  # outside the lock: two first loads may both parse
        with self._lock:
            if len(self._entries) >= self.size:
                self._entries.pop(next(iter(self._entries)))
            return self._entries.setdefault(digest, parsed)
