"""Reading files fxplain did not write: regular files only, of a plausible size, with fxplain's errors."""

from __future__ import annotations

import stat
from pathlib import Path

from .errors import ModelFormatError, ModelNotFoundError

#: Far above any face model or decoder (dlib's ResNet is 22 MB).
MAX_FILE_BYTES = 2 << 30


def read_untrusted_file(path: Path, what: str, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of ``path``, refusing what is not a regular file of at most ``limit`` bytes.

    A FIFO or a device would block or never end, so only regular files are
    read. ``what`` names the file in errors ("model file", "network file").
    Raises ModelNotFoundError (missing, not a file) or ModelFormatError
    (too large, unreadable).
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ModelNotFoundError(f"{what} not found: {path}") from None
    except OSError as exc:
        raise ModelNotFoundError(f"cannot access {what} {path}: {exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise ModelNotFoundError(f"{what} path is not a file: {path}")
    if info.st_size > limit:
        raise ModelFormatError(f"{path}: {info.st_size} bytes is larger than any supported {what}")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ModelFormatError(f"cannot read {path}: {exc}") from None
