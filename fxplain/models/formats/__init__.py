"""The registry of model file formats that :func:`fxplain.load_model` reads.

A format is a :class:`ModelFormat`: a name, the file suffixes it claims, a
``sniff`` test on the file's first bytes, and a reader turning the file's
bytes into a :class:`LoadedNetwork` (a spec with its metric and threshold).
Readers treat files as untrusted data (bounds checks, no pickle). A new
format is one module here plus one :func:`register_format` call.
"""

from __future__ import annotations

from pathlib import Path

from .base import LoadedNetwork, ModelFormat
from .dlib import DLIB_FORMAT
from .fxspec import FXSPEC_FORMAT
from .onnx_format import ONNX_FORMAT

__all__ = ["FORMATS", "LoadedNetwork", "ModelFormat", "format_for", "register_format"]

FORMATS: dict[str, ModelFormat] = {}


def register_format(fmt: ModelFormat) -> ModelFormat:
    """Add a format to the registry (a later registration of the same name replaces it)."""
    FORMATS[fmt.name] = fmt
    return fmt


def format_for(path: Path, head: bytes) -> ModelFormat | None:
    """The format whose magic bytes match ``head``, else the one claiming the suffix, else None."""
    for fmt in FORMATS.values():
        if fmt.sniff(head):
            return fmt
    suffix = path.suffix.lower()
    return next((fmt for fmt in FORMATS.values() if suffix in fmt.suffixes), None)


register_format(DLIB_FORMAT)
register_format(FXSPEC_FORMAT)
register_format(ONNX_FORMAT)
