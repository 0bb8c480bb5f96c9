"""Make ``libdnnl.so.3`` loadable before the C extension is imported.

The extension's rpath finds the library when fxplain and the
``onednn-cpu-gomp`` wheel share an installation prefix (the usual case). In
editable installs, or when the two live in different prefixes, the dynamic
loader would not find it; loading it here by absolute path first makes the
loader reuse it when the extension asks for ``libdnnl.so.3``.
"""

from __future__ import annotations

import ctypes
import os
from importlib import metadata
from pathlib import Path


def onednn_library_path() -> Path | None:
    """Path of the ``libdnnl.so.3`` fxplain uses, or None if it cannot be located."""
    root = os.environ.get("FXPLAIN_DNNL_ROOT")
    if root:
        for lib in ("lib", "lib64"):
            candidate = Path(root) / lib / "libdnnl.so.3"
            if candidate.exists():
                return candidate
        return None
    try:
        files = metadata.distribution("onednn-cpu-gomp").files or []
    except metadata.PackageNotFoundError:
        return None
    for entry in files:
        if Path(str(entry)).name == "libdnnl.so.3":
            path = Path(entry.locate())
            return path if path.exists() else None
    return None


def preload() -> None:
    """Load oneDNN globally if it can be found; otherwise leave it to the rpath."""
    path = onednn_library_path()
    if path is not None:
        ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
