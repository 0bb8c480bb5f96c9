"""fxplain's fuzz targets: one function per reader of untrusted files, each ``target(data: bytes) -> None``.

Every target feeds the bytes through a public entry point, the way a user's
file reaches it (written to a temporary regular file, then ``load_model``,
``load_decoder``, ``PairExplanation.load`` or ``model.embed``). A target
returns normally when fxplain accepts the input or refuses it with its own
exception (:class:`fxplain.FxplainError`); anything else escapes, and the
fuzzer reports it as a finding:

* another library's exception, or a crash or hang of the C core;
* a silent wrong answer the target can tell: a dlib model that loads with
  different weights and without :class:`fxplain.UnverifiedWeightsWarning`,
  a decoder or model whose output is not finite.

:mod:`fuzz.run` runs a target under atheris (coverage-guided); the tests
(``tests/test_fuzz.py``) replay the kept corpus through each target and run
a short fuzzing budget; ``scripts/fuzz.sh`` runs long campaigns.
"""

from __future__ import annotations

import functools
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

import fxplain
from fxplain.models.formats.dlib import dlib_model_path

_SCRATCH = Path(tempfile.mkdtemp(prefix="fxplain-fuzz-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
_CHIP = np.random.default_rng(0).integers(0, 256, (150, 150, 3), dtype=np.uint8)


def _as_file(data: bytes, suffix: str) -> Path:
    path = _SCRATCH / f"input{suffix}"
    path.write_bytes(data)
    return path


@functools.lru_cache(maxsize=1)
def _published_dlib() -> tuple[bytes, np.ndarray]:
    """dlib's published model file and its embedding of the fixed chip (computed once per process)."""
    return dlib_model_path().read_bytes(), fxplain.load_model("dlib").embed(_CHIP)


def _load_dlib(path: Path) -> None:
    _, reference = _published_dlib()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = fxplain.load_model(path)
    warned = any(issubclass(w.category, fxplain.UnverifiedWeightsWarning) for w in caught)
    embedding = model.embed(_CHIP)  # raises CoreError itself when it is not finite
    if not warned and not np.array_equal(embedding, reference):
        raise AssertionError("a dlib model loaded without a warning and computes a different embedding")


def dlib_dat(data: bytes) -> None:
    """Any bytes as a ``.dat`` model file (seeds: prefixes of dlib's file, which parse until they end)."""
    try:
        _load_dlib(_as_file(data, ".dat"))
    except fxplain.FxplainError:
        pass


def dlib_patches(data: bytes) -> None:
    """dlib's published model with up to 8 byte patches: the input is 5-byte records (4-byte offset, value).

    The whole file parses, so patches reach every field the reader and the
    architecture check look at, and the weights; a patched model that loads
    must either warn that its weights are unverified or compute the same.
    """
    published, _ = _published_dlib()
    try:
        _load_dlib(_as_file(_patched(published, data), ".dat"))
    except fxplain.FxplainError:
        pass


def fxd(data: bytes) -> None:
    """Any bytes as fxplain's network file: as a decoder, then as a face model (``.fxd`` / ``.fxn``)."""
    path = _as_file(data, ".fxd")
    try:
        decoder = fxplain.load_decoder(path)
        decoder.decode(np.zeros(decoder.embedding_size, np.float32))  # raises CoreError if not finite
    except fxplain.FxplainError:
        pass
    try:
        model = fxplain.load_model(path)
        side = model.input_size
        if side[0] * side[1] <= 256 * 256:
            model.embed(np.zeros(tuple(side) + (3,), np.uint8))
    except fxplain.FxplainError:
        pass


def fxn(data: bytes) -> None:
    """Any bytes as a face-model file (``.fxn``), then an embedding of a small chip, which must be finite."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", fxplain.FxplainWarning)  # a file without threshold: expected
            model = fxplain.load_model(_as_file(data, ".fxn"))
        side = model.input_size
        if side[0] * side[1] <= 256 * 256:
            model.embed(np.zeros(tuple(side) + (3,), np.uint8))  # raises CoreError itself when not finite
    except fxplain.FxplainError:
        pass


def shape_predictor(data: bytes) -> None:
    """Any bytes as dlib's landmark predictor file, then a prediction on a fixed chip and box."""
    from fxplain.faces import load_shape_predictor

    try:
        landmarks = load_shape_predictor(_as_file(data, ".dat")).predict(_CHIP, (20, 20, 129, 129))
    except fxplain.FxplainError:
        return
    if not np.all(np.isfinite(landmarks)):
        raise AssertionError(f"a predictor loaded and predicted non-finite landmarks {landmarks}")


def face_detector(data: bytes) -> None:
    """Any bytes as dlib's CNN face detector file, then a detection on a small photo."""
    from fxplain.faces import load_face_detector

    try:
        found = load_face_detector(_as_file(data, ".dat")).detect(_CHIP[:80, :100])
    except fxplain.FxplainError:
        return
    if not all(np.isfinite(confidence) for _, confidence in found):
        raise AssertionError(f"a detector loaded and found faces with non-finite confidence {found}")


def _patched(original: bytes, data: bytes) -> bytes:
    """``original`` with up to 8 byte patches from 5-byte records (4-byte offset, value); offsets with the top bit set
    aim at the first 64 KiB (headers, small layers), the others anywhere."""
    patched = bytearray(original)
    for start in range(0, min(len(data), 40) - 4, 5):
        offset = int.from_bytes(data[start:start + 4], "little")
        offset = offset % min(1 << 16, len(patched)) if offset & 0x80000000 else offset % len(patched)
        patched[offset] = data[start + 4]
    return bytes(patched)


@functools.lru_cache(maxsize=1)
def _published_detector() -> bytes:
    from fxplain.faces.detector import face_detector_path

    return face_detector_path().read_bytes()


def face_detector_patches(data: bytes) -> None:
    """dlib's published face detector with up to 8 byte patches (as ``dlib_patches``), then a detection on a photo.

    The whole file parses, so patches reach the options, the architecture
    check and the weights; a patched detector that loads must give finite
    confidences and boxes of integers.
    """
    from fxplain.faces import load_face_detector

    try:
        found = load_face_detector(_as_file(_patched(_published_detector(), data), ".dat")).detect(_CHIP)
    except fxplain.FxplainError:
        return
    if not all(np.isfinite(confidence) and all(isinstance(v, int) for v in box) for box, confidence in found):
        raise AssertionError(f"a patched detector loaded and found {found}")


def results(data: bytes) -> None:
    """Any bytes as a saved explanation (``PairExplanation.load``)."""
    try:
        fxplain.PairExplanation.load(_as_file(data, ".npz"))
    except fxplain.FxplainError:
        pass


def image(data: bytes) -> None:
    """Any bytes as an image file given to ``model.embed`` (Pillow decodes it, fxplain guards it)."""
    from fxplain.faces.inputs import to_pixel_batch

    try:
        to_pixel_batch(_as_file(data, ".img"), (150, 150), resize=True)
    except fxplain.FxplainError:
        pass


def onnx_model(data: bytes) -> None:
    """Any bytes as an ONNX file (``load_model("x.onnx")``), then an embedding of a small chip, which must be finite."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", fxplain.FxplainWarning)  # no threshold in the file: expected
            model = fxplain.load_model(_as_file(data, ".onnx"), input_size=(16, 16))
        model.embed(_CHIP[:16, :16])  # raises CoreError itself when it is not finite
    except fxplain.FxplainError:
        pass


@functools.lru_cache(maxsize=1)
def store_template() -> dict[str, bytes]:
    """The files of a real two-pair result store (a tiny 8x8 face model, occlusion), by relative path."""
    import shutil

    from fuzz.make_corpus import _tiny_face_spec

    folder = _SCRATCH / "template"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    rng = np.random.default_rng(1)
    chips = []
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(folder / name)
        chips.append(str(folder / name))
    model = fxplain.FaceModel(_tiny_face_spec(), name="tiny", metric="cosine", threshold=0.5)
    root = folder / "run.zarr"
    fxplain.explain_pairs(model, [(chips[0], chips[1], True), (chips[1], chips[0], False)], method="occlusion",
                          patch_sizes=(4,), store=root, chunk_size=1, show_progress=False)
    files = {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
    shutil.rmtree(root)
    return files


def store(data: bytes) -> None:
    """A result store with one file replaced by the input (first byte: which file), read back whole."""
    if not data:
        return
    files = store_template()
    names = sorted(files)
    chosen = names[data[0] % len(names)]
    root = _SCRATCH / "store.zarr"
    import shutil

    shutil.rmtree(root, ignore_errors=True)
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data[1:] if name == chosen else content)
    try:
        results = fxplain.open_results(root)
        if len(results.table) != results.summary()["done"]:
            raise AssertionError("a store's table and summary disagree")
        for explanation in results:
            if not (np.all(np.isfinite(explanation.similarity)) and np.all(explanation.dissimilarity >= 0)):
                raise AssertionError("a stored pair read back with maps that are not finite and non-negative")
    except fxplain.FxplainError:
        pass


#: name -> target, in the order the tests run them.
TARGETS = {"dlib_dat": dlib_dat, "dlib_patches": dlib_patches, "fxd": fxd, "shape_predictor": shape_predictor,
           "face_detector": face_detector, "face_detector_patches": face_detector_patches, "results": results,
           "image": image, "onnx": onnx_model, "fxn": fxn, "store": store}
