"""Image files: decoded to RGB pixels, refusing what is not a regular image file of a sane size.

The rest of image input — arrays, PIL images, tensors, registered sources,
photos becoming chips — is :mod:`fxplain.faces.inputs`; this bottom layer only
reads bytes, so that every layer that reads an image file does so safely.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .errors import InvalidInputError
from .files import require_regular_file

#: Largest image read from a file (about 8k x 6k): larger ones are refused before decoding.
MAX_IMAGE_PIXELS = 50_000_000


def read_image_file(path: Path) -> np.ndarray:
    """The image at ``path`` as uint8 ``(H, W, 3)`` RGB; InvalidInputError if it is not a readable image file."""
    require_regular_file(path, "image file", InvalidInputError)
    return decode_image(path, str(path))


def decode_image(source: Any, name: str) -> np.ndarray:
    """Decode an image file (a path or a binary file object) to ``(H, W, 3)`` uint8; ``name`` names it in errors."""
    from PIL import Image

    try:
        with Image.open(source) as img:
            # open() reads only the header: refuse a decompression bomb before decoding it
            if img.width * img.height > MAX_IMAGE_PIXELS:
                raise InvalidInputError(f"image file {name} is {img.width}x{img.height} pixels, more than the "
                                        f"{MAX_IMAGE_PIXELS} fxplain reads")
            return np.asarray(img.convert("RGB"))
    except InvalidInputError:
        raise
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types on damaged files; all mean "unreadable"
        raise InvalidInputError(f"cannot read image file {name}: {type(exc).__name__}: {exc}") from None
