"""The C core is Python-free: csrc/examples/tiny_net.c, built from csrc/*.c and
oneDNN alone (no Python include path), runs a tiny network and checks it
against a plain C loop reference."""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CSRC = ROOT / "csrc"
EXAMPLE = CSRC / "examples" / "tiny_net.c"
# the flags setup.py compiles and links the core with
CFLAGS = ["-std=c11", "-O2", "-Wall", "-Wextra", "-D_GNU_SOURCE", "-pthread", "-fopenmp"]
LDFLAGS = ["-ldnnl", "-lm", "-pthread", "-fopenmp"]


def _wheel_file(dist_name: str, suffix: str) -> Path:
    try:
        files = metadata.distribution(dist_name).files or []
    except metadata.PackageNotFoundError:
        pytest.fail(
            f"the '{dist_name}' wheel is not installed; it is part of the test extra "
            f"(pip install {dist_name}==2023.2.0, or pip install -e '.[test]')"
        )
    for entry in files:
        if ("/" + str(entry).replace("\\", "/")).endswith(suffix):
            return Path(entry.locate()).resolve()
    pytest.fail(f"the '{dist_name}' wheel has no file ending in {suffix}")


def find_onednn() -> tuple[Path, Path]:
    """(include dir, library dir) of oneDNN, found as setup.py's find_onednn finds them:
    FXPLAIN_DNNL_ROOT if set, else the PyPI wheels through importlib.metadata."""
    root = os.environ.get("FXPLAIN_DNNL_ROOT")
    if root:
        libs = [d for d in (Path(root) / "lib", Path(root) / "lib64") if list(d.glob("libdnnl.so*"))]
        assert (Path(root) / "include" / "oneapi" / "dnnl" / "dnnl.h").exists() and libs, (
            f"FXPLAIN_DNNL_ROOT={root} has no include/oneapi/dnnl/dnnl.h and lib/libdnnl.so"
        )
        return Path(root) / "include", libs[0]
    header = _wheel_file("onednn-devel-cpu-gomp", "include/oneapi/dnnl/dnnl.h")
    library = _wheel_file("onednn-cpu-gomp", "/libdnnl.so.3")
    return header.parents[2], library.parent


def _python_include_dirs() -> set[Path]:
    paths = sysconfig.get_paths()
    return {Path(paths[k]).resolve() for k in ("include", "platinclude") if k in paths}


def _core_sources() -> list[Path]:
    return sorted(CSRC.glob("*.c"))


def test_core_sources_do_not_include_python_h():
    sources = _core_sources() + sorted(CSRC.glob("*.h")) + sorted((CSRC / "examples").glob("*.c"))
    assert len(sources) > 10
    offenders = [str(p.relative_to(ROOT)) for p in sources if "Python.h" in p.read_text(encoding="utf-8")]
    assert offenders == []


def test_tiny_net_builds_and_runs_without_python(tmp_path):
    cc = shutil.which(os.environ.get("CC", "gcc"))
    if cc is None:
        pytest.skip("no C compiler (gcc) on PATH")
    include, libdir = find_onednn()
    exe = tmp_path / "tiny_net"
    cmd = [cc, *CFLAGS, "-I", str(CSRC), "-I", str(include), *map(str, _core_sources()), str(EXAMPLE),
           "-L", str(libdir), *LDFLAGS, "-o", str(exe)]

    # no Python include directory anywhere on the command line
    include_dirs = [Path(cmd[i + 1]).resolve() for i, arg in enumerate(cmd) if arg == "-I"]
    include_dirs += [Path(arg[2:]).resolve() for arg in cmd if arg.startswith("-I") and arg != "-I"]
    assert include_dirs == [CSRC.resolve(), include.resolve()]
    python_dirs = _python_include_dirs()
    for d in include_dirs:
        assert d not in python_dirs, f"{d} is a Python include directory"
        assert not (d / "Python.h").exists(), f"{d} holds Python.h"

    built = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert built.returncode == 0, f"compiling tiny_net failed:\n{' '.join(cmd)}\n{built.stderr}"
    assert "warning:" not in built.stderr, f"the core or the example is not -Wall -Wextra clean:\n{built.stderr}"

    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(libdir), env.get("LD_LIBRARY_PATH")]))
    ran = subprocess.run([str(exe)], check=False, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert ran.returncode == 0, f"tiny_net failed ({ran.returncode}):\n{ran.stdout}\n{ran.stderr}"
    assert "tiny_net: ok" in ran.stdout
