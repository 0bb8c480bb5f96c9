"""What a model file format is: :class:`ModelFormat`, and what its reader returns, :class:`LoadedNetwork`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...runtime.spec import NetworkSpec


@dataclass
class LoadedNetwork:
    """What a format reader returns: the network and how its embeddings are compared."""

    spec: NetworkSpec
    metric: str
    threshold: float
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelFormat:
    """A model file format: name, suffixes, a magic-bytes test and a reader ``(data, name) -> LoadedNetwork``."""

    name: str
    suffixes: tuple[str, ...]
    sniff: Callable[[bytes], bool]
    read: Callable[[bytes, str], LoadedNetwork]
