"""Build of fxplain's C extension, ``fxplain._core``, against oneDNN.

oneDNN is found, in order, from:

1. ``FXPLAIN_DNNL_ROOT``: a prefix holding ``include/oneapi/dnnl/dnnl.h`` and
   ``lib/libdnnl.so*`` (for example a Debian or self-built oneDNN v3);
2. the PyPI wheels ``onednn-devel-cpu-gomp`` (headers) and ``onednn-cpu-gomp``
   (library) installed in the build environment (the default; both are build
   requirements in pyproject.toml).

The extension finds ``libdnnl.so.3`` at run time through an rpath relative
to its own location (``<prefix>/lib`` beside ``site-packages``) and, failing
that, through ``fxplain/_util/onednn.py``, which loads the library from the
installed runtime wheel before importing the extension.

``FXPLAIN_EXTRA_CFLAGS`` and ``FXPLAIN_EXTRA_LDFLAGS`` (shell-quoted lists)
are appended after the compile and link flags below, so they override them
(gcc takes the last ``-O``); ``CFLAGS``/``LDFLAGS`` would come first and lose to
the ``-O2`` here. scripts/sanitize.sh builds the ASan/UBSan test build with them.
"""

from __future__ import annotations

import glob
import os
import shlex
from importlib import metadata
from pathlib import Path

import numpy
from setuptools import Extension, setup

HERE = Path(__file__).parent


def _wheel_file(dist_name: str, suffix: str) -> Path:
    try:
        files = metadata.distribution(dist_name).files or []
    except metadata.PackageNotFoundError:
        raise SystemExit(
            f"fxplain build: the '{dist_name}' wheel is not installed in the build environment; "
            "install it (pip install onednn-cpu-gomp==2023.2.0 onednn-devel-cpu-gomp==2023.2.0) "
            "or set FXPLAIN_DNNL_ROOT to a oneDNN v3 prefix"
        ) from None
    for entry in files:
        if ("/" + str(entry).replace("\\", "/")).endswith(suffix):
            return Path(entry.locate()).resolve()
    raise SystemExit(f"fxplain build: '{dist_name}' has no file ending in {suffix}")


def find_onednn() -> tuple[str, str, list[str]]:
    """Return (include dir, library dir, extra rpaths) of the oneDNN to build against."""
    root = os.environ.get("FXPLAIN_DNNL_ROOT")
    if root:
        include = Path(root) / "include"
        libs = [d for d in (Path(root) / "lib", Path(root) / "lib64") if glob.glob(str(d / "libdnnl.so*"))]
        if not (include / "oneapi" / "dnnl" / "dnnl.h").exists() or not libs:
            raise SystemExit(f"fxplain build: FXPLAIN_DNNL_ROOT={root} has no include/oneapi/dnnl/dnnl.h "
                             "and lib/libdnnl.so")
        return str(include), str(libs[0]), [str(libs[0])]
    header = _wheel_file("onednn-devel-cpu-gomp", "include/oneapi/dnnl/dnnl.h")
    library = _wheel_file("onednn-cpu-gomp", "/libdnnl.so.3")
    return str(header.parents[2]), str(library.parent), []


include_dir, library_dir, rpaths = find_onednn()
core_sources = sorted(str(p.relative_to(HERE)) for p in (HERE / "csrc").glob("*.c"))

core = Extension(
    "fxplain._core",
    sources=core_sources + ["csrc/py/module.c", "csrc/py/saliency_glue.c", "csrc/py/training_glue.c",
                            "csrc/py/faces_glue.c"],
    include_dirs=[include_dir, numpy.get_include(), "csrc"],
    library_dirs=[library_dir],
    libraries=["dnnl", "m"],
    # <prefix>/lib/python3.X/site-packages/fxplain/_core.so -> <prefix>/lib
    runtime_library_dirs=["$ORIGIN/../../.."] + rpaths,
    # OpenMP (GNU, the runtime the oneDNN wheel uses too) parallelises the saliency kernels
    extra_compile_args=["-std=c11", "-O2", "-Wall", "-Wextra", "-D_GNU_SOURCE", "-pthread", "-fopenmp"]
    + shlex.split(os.environ.get("FXPLAIN_EXTRA_CFLAGS", "")),
    extra_link_args=["-pthread", "-fopenmp"] + shlex.split(os.environ.get("FXPLAIN_EXTRA_LDFLAGS", "")),
    define_macros=[("NPY_TARGET_VERSION", "NPY_1_22_API_VERSION")],
)

setup(ext_modules=[core])
