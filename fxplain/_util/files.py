"""Reading files fxplain did not write: regular files only, of a plausible size, with fxplain's errors."""

from __future__ import annotations

import os
import stat
from pathlib import Path

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
