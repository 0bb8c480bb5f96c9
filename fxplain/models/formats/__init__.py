"""The registry of model file formats that :func:`fxplain.load_model` reads.

A format is a :class:`ModelFormat`: a name, the file suffixes it claims, a
``sniff`` test on the file's first bytes, the load options it takes (ONNX:
``mean``, ``std``, ``channels``, ``input_size``, ``metric``), model names it
resolves itself (dlib's ``"dlib"``), and a reader turning the file's bytes and
the user's options into a :class:`LoadedNetwork` (a spec with its metric and
threshold). Readers treat files as untrusted data (bounds checks, no pickle).
A new format is one module here plus one :func:`register_format` call;
:func:`fxplain.load_model` has no per-format code.
"""

from __future__ import annotations

from pathlib import Path

from .base import LOAD_OPTIONS, LoadedNetwork, ModelFormat
from .dlib import DLIB_FORMAT
from .face_model_file import FXN_FORMAT
from .fxspec import FXSPEC_FORMAT
from .onnx_format import ONNX_FORMAT

__all__ = ["FORMATS", "LOAD_OPTIONS", "LoadedNetwork", "ModelFormat", "format_for", "named_format",
           "register_format"]

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


def named_format(name: str) -> ModelFormat | None:
    """The format that resolves the model name ``name`` (``"dlib"``), else None."""
    return next((fmt for fmt in FORMATS.values() if name in fmt.names and fmt.load_named is not None), None)


register_format(DLIB_FORMAT)
register_format(FXSPEC_FORMAT)
register_format(ONNX_FORMAT)
register_format(FXN_FORMAT)
