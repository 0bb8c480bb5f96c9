"""What a model file format is: :class:`ModelFormat`, and what its reader returns, :class:`LoadedNetwork`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...runtime.spec import NetworkSpec

#: The load options a user may give :func:`fxplain.load_model` (besides ``threshold`` and ``precision``,
#: which apply to every format); a format names those of them it takes in :attr:`ModelFormat.options`.
LOAD_OPTIONS = ("mean", "std", "channels", "input_size", "metric")


@dataclass
class LoadedNetwork:
    """What a format reader returns: the network and how its embeddings are compared.

    ``threshold`` is None (or NaN) when the file carries no decision threshold.
    """

    spec: NetworkSpec
    metric: str
    threshold: float | None
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelFormat:
    """A model file format, as the registry (:mod:`fxplain.models.formats`) knows it.

    Attributes
    ----------
    name : str
        The registry key (``"onnx"``).
    suffixes : tuple of str
        File suffixes it claims when no format's ``sniff`` recognises the bytes.
    sniff : callable
        ``sniff(head) -> bool`` on the file's first 64 bytes.
    read : callable
        ``read(data, name, options) -> LoadedNetwork``: ``data`` is the whole
        file, ``name`` names it in errors, ``options`` holds the load options
        the user gave (only those given, and only ones in :attr:`options`).
    options : tuple of str
        The load options (of :data:`LOAD_OPTIONS`) the format takes;
        :func:`fxplain.load_model` refuses any other, naming it and the format.
    title : str
        How messages name the format ("ONNX"); defaults to ``name``.
    names : tuple of str
        Model names (not paths) the format resolves, e.g. ``"dlib"``.
    load_named : callable, optional
        ``load_named(model_name, options) -> (path, LoadedNetwork)`` for
        :attr:`names`: locates the file, checks it, reads it.
    """

    name: str
    suffixes: tuple[str, ...]
    sniff: Callable[[bytes], bool]
    read: Callable[[bytes, str, dict[str, Any]], LoadedNetwork]
    options: tuple[str, ...] = ()
    title: str = ""
    names: tuple[str, ...] = ()
    load_named: Callable[[str, dict[str, Any]], tuple[Path, LoadedNetwork]] | None = None

    @property
    def label(self) -> str:
        """How messages name the format."""
        return self.title or self.name
