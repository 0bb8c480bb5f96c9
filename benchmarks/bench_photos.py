"""The whole photo pipeline: fxplain versus dlib's own C++ on dlib's example photos.

Per photo, both sides run dlib's pipeline: the CNN face detector
(``mmod_human_face_detector.dat``, the photo upsampled ``--upsample`` times with
``pyramid_up``, boxes mapped back with ``rect_down``), the 5-point landmarks
(``shape_predictor_5_face_landmarks.dat``), the 150x150 chip
(``get_face_chip_details(shape, 150, 0.25)`` + ``extract_image_chip``) and the
128-d descriptor (``dlib_face_recognition_resnet_model_v1.dat``). fxplain runs
``fxplain.detect_faces(pixels, upsample=n)`` then ``model.embed(faces)``; dlib
runs ``dlib_photo_pipeline.cpp`` (next to this file, the pipeline of
``/work/shared/oracles/photo_oracle.cpp``), built once with ``g++ -O2 -shared
-fPIC`` against Debian's ``libdlib-dev`` 19.24 into ``build/bench_photos/`` (rebuilt
when the .cpp is newer) and called through ctypes, in the same process. Both
sides read the same three ``.dat`` files (fxplain's locators: the installed
``face_recognition_models``, or the ``FXPLAIN_*`` variables).

Photo sets: ``bald_guys.jpg`` (1986x1545, 24 faces) and the nine PASCAL photos
(``20*.jpg``, small faces, 47 in all at upsample 1) of dlib's ``examples/faces``
(``fxplain.datasets.examples_dir()``).

Usage::

    python benchmarks/bench_photos.py [--upsample 1] [--repeats 3] [--dlib-repeats 1] [--quick]
                                      [--threads 2] [--photo-set all|bald_guys|PASCAL] [--no-memory]

Run time: on the reference machine one dlib run of both sets at upsample 1 takes
~8 min (bald_guys alone ~5 min), so dlib gets ``--dlib-repeats 1`` by default
(a run of minutes varies little) and fxplain ``--repeats 3``; the memory
children add one more run of each side, so the default run takes ~16 min.
``--upsample 0`` (~4x less detector work), ``--photo-set PASCAL`` or
``--no-memory`` make it shorter.

What is timed
    Photos are decoded once with PIL into uint8 RGB (H, W, 3) arrays before any
    timing, and both sides get those pixels, so JPEG decoding is timed on
    neither side (dlib's side copies them into a ``matrix<rgb_pixel>``, which is
    timed). Each repeat runs every photo of a set on one side, then on the
    other (``_common.measure``: repeats alternate between the sides, so drift
    hits both alike; once the side with fewer repeats is done the other runs
    its extra repeats alone); the median repeat is reported. There is no separate
    warm-up on either side (fxplain's first call pays for oneDNN primitive
    creation, dlib's for its allocations), so with ``--quick`` (1 repeat) those
    costs are in the numbers. Model loading (reading and parsing the three model
    files; for fxplain ``load_model("dlib")`` plus the first ``detect_faces``,
    which loads the detector and the shape predictor) is timed once, apart.
    A photo fxplain refuses (``InvalidInputError``, e.g. too large for the
    detector) is reported and left out of both sides' times for its set.

Memory
    Peak RSS of each side is measured in a child process per side and photo set
    (``bench_photos.py --side fxplain|dlib --measure-memory``): Python, NumPy,
    PIL, the decoded photos, one side's models and one run of the set. It is
    read from ``VmHWM`` in ``/proc/self/status``, not from ``ru_maxrss``: a child
    started by ``subprocess`` (vfork + exec) inherits the parent's peak RSS in
    ``ru_maxrss``, and the parent holds both sides' models.

Threads
    fxplain's oneDNN uses OpenMP: ``OMP_NUM_THREADS=--threads`` is set before
    fxplain is imported (as ``_common.start_benchmark`` does). dlib's CPU
    convolutions are im2col + ``cblas_sgemm`` (Debian builds dlib with
    ``DLIB_USE_BLAS``; ``ldd libdlib.so.19.1`` shows ``libblas.so.3``, no
    OpenMP, no OpenBLAS), and on this machine ``libblas.so.3`` is the netlib
    *reference* BLAS (Debian ``libblas3`` 3.11, ``/usr/lib/x86_64-linux-gnu/blas/``,
    the only alternative installed): single-threaded, with no thread setting
    at all; dlib's DNN code itself does not spread one image over threads. So
    dlib runs on one core whatever ``--threads`` says. The script still sets
    ``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS`` and calls
    ``openblas_set_num_threads`` when the BLAS dlib resolves has it (it would
    after ``apt-get install libopenblas0-pthread``, which takes over the
    ``libblas.so.3`` alternative), prints which library provides dlib's
    ``cblas_sgemm`` (``dladdr``), and prints the cores each side kept busy (CPU
    seconds / wall seconds) so the threading is checked, not assumed. Pass
    ``--threads 1`` for a core-for-core comparison.

Measured on the reference machine:
    2 cores (Xeon, AVX-512/AMX), 23 GB; fxplain 0.1.0 on oneDNN 3.2.0, dlib 19.24 with
    netlib BLAS 3.11. ``python benchmarks/bench_photos.py`` (upsample 1, threads 2,
    repeats fxplain 3 / dlib 1; 17 min in all)::

        model loading: fxplain 1.24 s, dlib 0.10 s
        photo set  photos  faces fx/dlib  fxplain s  dlib s  dlib/fx  cores fx/dlib  fxplain MB  dlib MB  dlib/fx
        bald_guys       1      25/25          8.05   314.84    39.1x    0.91/0.96          604    11692    19.4x
        PASCAL          9      41/41          8.04   187.15    23.3x    0.86/0.85          457      885     1.9x

    Every photo: same faces, boxes and landmarks identical (0 px), max |descriptor
    difference| 3.0e-07 .. 4.2e-07. ``--upsample 0 --photo-set PASCAL --quick``: 10/10
    faces, fxplain 0.45 s, dlib 38.4 s (86x), cores 1.79/1.00, 255 / 304 MB.
    The fxplain side was measured while detector.py was being changed (banded detection).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import measure

HERE = Path(__file__).resolve().parent
CPP_SOURCE = HERE / "dlib_photo_pipeline.cpp"
BUILD_DIR = HERE.parent / "build" / "bench_photos"
LIBRARY = BUILD_DIR / "libdlib_photo_pipeline.so"
SIDES = ("fxplain", "dlib")
PHOTO_SETS = ("bald_guys", "PASCAL")
#: Room for faces per photo on dlib's side (bald_guys has 24); more is an error, not a silent cut.
MAX_FACES = 512
DESCRIPTOR_SIZE = 128


@dataclass
class PhotoResult:
    """One side's output for one photo: what it found and how long it took (wall and CPU seconds)."""

    name: str
    seconds: float
    cpu_seconds: float
    boxes: np.ndarray  # int64 (n, 4): left, top, right, bottom (dlib's inclusive rectangle)
    landmarks: np.ndarray  # float64 (n, 5, 2): x, y
    descriptors: np.ndarray  # float32 (n, 128)
    refused: str | None = None

    @property
    def faces(self) -> int:
        return len(self.boxes)


# --------------------------------------------------------------------------- inputs


def set_thread_environment(threads: int) -> None:
    """Size every thread pool either side could use; must run before fxplain or dlib is loaded."""
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)


def photo_sets(faces_dir: Path, which: str) -> dict[str, list[Path]]:
    """The photo files of each selected set, in a fixed order."""
    sets = {"bald_guys": [faces_dir / "bald_guys.jpg"], "PASCAL": sorted(faces_dir.glob("20*.jpg"))}
    for name, files in sets.items():
        if not files or not all(f.is_file() for f in files):
            raise SystemExit(f"photo set {name}: no photos in {faces_dir}")
    return sets if which == "all" else {which: sets[which]}


def decode(path: Path) -> np.ndarray:
    """The photo as C-contiguous uint8 RGB (H, W, 3): decoded once, outside every timing."""
    with Image.open(path) as image:
        return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))


def resolve_inputs() -> tuple[Path, list[str]]:
    """dlib's ``examples/faces`` folder and the three model files, as fxplain finds them."""
    import fxplain.datasets
    from fxplain.faces import face_detector_path, shape_predictor_path
    from fxplain.models.formats.dlib import dlib_model_path

    faces_dir = fxplain.datasets.examples_dir() / "faces"
    return faces_dir, [str(face_detector_path()), str(shape_predictor_path()), str(dlib_model_path())]


# --------------------------------------------------------------------------- dlib's side


def build_library() -> Path:
    """Compile the dlib pipeline into ``build/bench_photos/`` unless the library is newer than its source."""
    if LIBRARY.is_file() and LIBRARY.stat().st_mtime >= CPP_SOURCE.stat().st_mtime:
        return LIBRARY
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "dlib-1"], check=True,
                           capture_output=True, text=True).stdout.split()
    partial = LIBRARY.with_suffix(f".{os.getpid()}.tmp")
    print(f"building {LIBRARY.relative_to(HERE.parent)} (about 20 s) ...", file=sys.stderr, flush=True)
    subprocess.run(["g++", "-O2", "-std=c++14", "-shared", "-fPIC", str(CPP_SOURCE), *flags, "-o", str(partial)],
                   check=True)
    os.replace(partial, LIBRARY)  # atomic: a concurrent reader never loads half a library
    return LIBRARY


class _DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]


def symbol_provider(library: ctypes.CDLL, symbol: str) -> str:
    """The file that defines ``symbol`` as ``library`` resolves it (``dladdr``): which BLAS dlib really calls."""
    libc = ctypes.CDLL(None)
    libc.dladdr.argtypes = [ctypes.c_void_p, ctypes.POINTER(_DlInfo)]
    info = _DlInfo()
    address = ctypes.cast(getattr(library, symbol), ctypes.c_void_p)
    if not libc.dladdr(address, ctypes.byref(info)) or not info.dli_fname:
        return "unknown"
    return os.path.realpath(info.dli_fname.decode())


class DlibPipeline:
    """dlib's C++ pipeline (``dlib_photo_pipeline.cpp``) through ctypes."""

    name = "dlib"

    def __init__(self, model_files: list[str], threads: int):
        self.lib = ctypes.CDLL(str(build_library()))
        self._declare()
        self.blas = symbol_provider(self.lib, "cblas_sgemm")
        self.blas_threads = self._set_blas_threads(threads)
        error = ctypes.create_string_buffer(1024)
        self.handle = self.lib.dlib_pipeline_load(*(f.encode() for f in model_files), error, len(error))
        if not self.handle:
            raise RuntimeError(f"dlib could not load the models: {error.value.decode()}")
        # Output buffers are allocated once so that each run only copies its faces out.
        self._boxes = np.empty((MAX_FACES, 4), np.int64)
        self._confidences = np.empty(MAX_FACES, np.float32)
        self._landmarks = np.empty((MAX_FACES, 5, 2), np.int64)
        self._descriptors = np.empty((MAX_FACES, DESCRIPTOR_SIZE), np.float32)

    def _declare(self) -> None:
        """C signatures of the library's API (C ``long`` is 64-bit here, as np.int64)."""
        def array(dtype):
            return np.ctypeslib.ndpointer(dtype=dtype, flags="C_CONTIGUOUS")

        self.lib.dlib_pipeline_load.restype = ctypes.c_void_p
        self.lib.dlib_pipeline_load.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_char_p, ctypes.c_int]
        self.lib.dlib_pipeline_free.argtypes = [ctypes.c_void_p]
        self.lib.dlib_pipeline_run.restype = ctypes.c_int
        self.lib.dlib_pipeline_run.argtypes = [
            ctypes.c_void_p, array(np.uint8), ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int,
            array(np.int64), array(np.float32), array(np.int64), array(np.float32), ctypes.c_char_p, ctypes.c_int]

    def _set_blas_threads(self, threads: int) -> str:
        """Apply ``threads`` to dlib's BLAS if it has a setter; say what was possible."""
        try:
            setter = self.lib.openblas_set_num_threads
        except AttributeError:
            return "no thread setting (single-threaded BLAS)"
        setter.argtypes = [ctypes.c_int]
        setter(threads)
        return f"openblas_set_num_threads({threads})"

    def run(self, pixels: np.ndarray, upsample: int, name: str) -> PhotoResult:
        """The pipeline on one photo; raises if dlib fails or finds more than MAX_FACES faces."""
        error = ctypes.create_string_buffer(1024)
        start, cpu = time.perf_counter(), time.process_time()
        n = self.lib.dlib_pipeline_run(self.handle, pixels, pixels.shape[0], pixels.shape[1], upsample, MAX_FACES,
                                       self._boxes, self._confidences, self._landmarks, self._descriptors,
                                       error, len(error))
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
        if n < 0:
            raise RuntimeError(f"dlib failed on {name}: {error.value.decode()}")
        if n > MAX_FACES:
            raise RuntimeError(f"dlib found {n} faces in {name}, more than MAX_FACES={MAX_FACES}")
        return PhotoResult(name, seconds, cpu_seconds, self._boxes[:n].copy(),
                           self._landmarks[:n].astype(np.float64), self._descriptors[:n].copy())

    def close(self) -> None:
        """Free the C++ networks."""
        if self.handle:
            self.lib.dlib_pipeline_free(self.handle)
            self.handle = None


# --------------------------------------------------------------------------- fxplain's side


class FxplainPipeline:
    """``fxplain.detect_faces`` then ``model.embed``; photos it refuses are reported, not raised."""

    name = "fxplain"

    def __init__(self):
        import fxplain

        self.fxplain = fxplain
        self.model = fxplain.load_model("dlib")
        # detect_faces loads (and caches) the detector and shape predictor on its first call: make that
        # call here, on a blank image, so loading is timed with the model and not in the first photo.
        fxplain.detect_faces(np.zeros((64, 64, 3), np.uint8))

    def run(self, pixels: np.ndarray, upsample: int, name: str) -> PhotoResult:
        """The pipeline on one photo (a refusal comes back in ``refused``, with no faces)."""
        start, cpu = time.perf_counter(), time.process_time()
        refused = None
        try:
            faces = self.fxplain.detect_faces(pixels, upsample=upsample)
            descriptors = self.model.embed(faces) if faces else np.empty((0, DESCRIPTOR_SIZE), np.float32)
        except self.fxplain.InvalidInputError as error:
            faces, descriptors, refused = [], np.empty((0, DESCRIPTOR_SIZE), np.float32), str(error)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
        boxes = np.array([face.box for face in faces], np.int64).reshape(-1, 4)
        landmarks = np.array([face.landmarks for face in faces], np.float64).reshape(-1, 5, 2)
        return PhotoResult(name, seconds, cpu_seconds, boxes, landmarks, descriptors, refused)

    def close(self) -> None:
        """Nothing to free explicitly (the core's objects go with the Python ones)."""


def load_side(side: str, model_files: list[str], threads: int):
    """Load one side's models; returns the pipeline and the seconds loading took."""
    start = time.perf_counter()
    pipeline = FxplainPipeline() if side == "fxplain" else DlibPipeline(model_files, threads)
    return pipeline, time.perf_counter() - start


def run_set(pipeline, photos: dict[str, np.ndarray], upsample: int) -> list[PhotoResult]:
    """One side on every photo of a set, in order."""
    return [pipeline.run(pixels, upsample, name) for name, pixels in photos.items()]


# --------------------------------------------------------------------------- comparing


def nearest(box: np.ndarray, boxes: np.ndarray) -> int:
    """Index of the box in ``boxes`` closest to ``box`` (largest coordinate difference)."""
    return int(np.argmin(np.abs(boxes - box).max(axis=1)))


def compare_photo(fx: PhotoResult, dl: PhotoResult) -> dict:
    """How far fxplain's faces are from dlib's: each dlib face is paired with fxplain's nearest box.

    Pairing by box rather than by position in the list keeps the check honest when two
    detections with (nearly) equal confidence come out in a different order.
    """
    row = {"photo": fx.name, "faces_fxplain": fx.faces, "faces_dlib": dl.faces, "refused": fx.refused,
           "box_px": None, "landmark_px": None, "descriptor": None}
    if fx.faces and dl.faces:
        pairs = [(nearest(box, fx.boxes), k) for k, box in enumerate(dl.boxes)]
        row["box_px"] = max(int(np.abs(fx.boxes[i] - dl.boxes[k]).max()) for i, k in pairs)
        row["landmark_px"] = max(float(np.abs(fx.landmarks[i] - dl.landmarks[k]).max()) for i, k in pairs)
        row["descriptor"] = max(float(np.abs(fx.descriptors[i] - dl.descriptors[k]).max()) for i, k in pairs)
    return row


def set_seconds(history: list[list[PhotoResult]], skip: set[str]) -> tuple[float | None, float]:
    """Median over repeats of a set's summed wall seconds (photos in ``skip`` left out), and cores busy."""
    totals = [sum(r.seconds for r in repeat if r.name not in skip) for repeat in history]
    cpu = sum(r.cpu_seconds for repeat in history for r in repeat if r.name not in skip)
    wall = sum(totals)
    return (statistics.median(totals) if wall > 0 else None), (cpu / wall if wall > 0 else float("nan"))


def set_runner(pipeline, photos: dict[str, np.ndarray], upsample: int) -> Callable[[], list[PhotoResult]]:
    """A call that runs ``pipeline`` on the set (what ``measure`` times)."""
    return lambda: run_set(pipeline, photos, upsample)


def recording(run: Callable[[], list[PhotoResult]], history: list) -> Callable[[], list[PhotoResult]]:
    """``run``, keeping every repeat's per-photo results (``measure`` keeps only the last)."""
    def recorded():
        results = run()
        history.append(results)
        return results
    return recorded


# --------------------------------------------------------------------------- memory children


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM) in MB; unlike ru_maxrss, not inherited over vfork + exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource  # not Linux: fall back (may include the parent's peak)

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_main(args: argparse.Namespace) -> None:
    """Memory child: one side, one run of each selected set; prints a JSON line with its peak RSS."""
    set_thread_environment(args.threads)
    sets = photo_sets(Path(args.faces_dir), args.photo_set)
    photos = {name: {p.name: decode(p) for p in files} for name, files in sets.items()}
    baseline = peak_rss_mb()
    pipeline, load_seconds = load_side(args.side, args.model_files, args.threads)
    results = {name: run_set(pipeline, set_photos, args.upsample) for name, set_photos in photos.items()}
    report = {"side": args.side, "peak_mb": peak_rss_mb(), "baseline_mb": baseline, "load_s": load_seconds,
              "faces": {name: sum(r.faces for r in rs) for name, rs in results.items()},
              "refused": {name: [r.name for r in rs if r.refused] for name, rs in results.items()}}
    print(json.dumps(report))


def measure_memory(side: str, photo_set: str, args: argparse.Namespace, faces_dir: Path,
                   model_files: list[str]) -> dict:
    """Run a memory child for one side and photo set; its JSON report, or ``{"error": ...}``."""
    command = [sys.executable, str(Path(__file__).resolve()), "--side", side, "--measure-memory",
               "--photo-set", photo_set, "--upsample", str(args.upsample), "--threads", str(args.threads),
               "--faces-dir", str(faces_dir), "--model-files", *model_files]
    print(f"memory child: {side} on {photo_set} ...", file=sys.stderr, flush=True)
    proc = subprocess.run(command, check=False, capture_output=True, text=True)  # failure is reported
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- report


def fmt(value: float | None, spec: str, missing: str = "n/a") -> str:
    return missing if value is None else format(value, spec)


def ratio(slow: float | None, fast: float | None) -> str:
    return "n/a" if not slow or not fast else f"{slow / fast:.1f}x"


def print_header(args: argparse.Namespace, dlib: DlibPipeline, loads: dict[str, float]) -> None:
    """Settings, which BLAS dlib calls, and the model loading times."""
    import fxplain

    info = fxplain.backend_info()
    print(f"upsample {args.upsample}, repeats fxplain {args.repeats} / dlib {args.dlib_repeats}, threads {args.threads} "
          f"(OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}); fxplain {fxplain.__version__} on oneDNN "
          f"{info.get('onednn_version', '?')} ({info.get('isa', '?')}); dlib 19.24 (Debian)")
    print(f"dlib's cblas_sgemm comes from {dlib.blas}: {dlib.blas_threads}")
    print(f"model loading: fxplain {loads['fxplain']:.2f} s, dlib {loads['dlib']:.2f} s "
          f"(dlib/fxplain {ratio(loads['dlib'], loads['fxplain'])})\n")


def print_correctness(rows: list[dict]) -> None:
    """Per photo: faces on each side and the largest differences between them."""
    print(f"{'photo':<28}{'faces fx/dlib':>14}{'max|box| px':>13}{'max|landm.| px':>16}{'max|desc|':>12}")
    for row in rows:
        note = f"   fxplain refused: {row['refused']}" if row["refused"] else ""
        same = "" if row["faces_fxplain"] == row["faces_dlib"] or row["refused"] else "  <- face counts differ"
        print(f"{row['photo']:<28}{row['faces_fxplain']:>7}/{row['faces_dlib']:<6}{fmt(row['box_px'], 'd'):>13}"
              f"{fmt(row['landmark_px'], '.0f'):>16}{fmt(row['descriptor'], '.1e'):>12}{same}{note}")
    print()


def print_table(summary: list[dict]) -> None:
    """Per photo set: median seconds per side, their ratio, faces, cores busy and peak memory."""
    print(f"{'photo set':<11}{'photos':>7}{'faces fx/dlib':>15}{'fxplain s':>11}{'dlib s':>9}{'dlib/fx':>9}"
          f"{'cores fx/dlib':>15}{'fxplain MB':>12}{'dlib MB':>9}{'dlib/fx':>9}")
    for s in summary:
        print(f"{s['set']:<11}{s['photos']:>7}{s['faces_fx']:>8}/{s['faces_dlib']:<6}{fmt(s['fx_s'], '.2f'):>11}"
              f"{fmt(s['dlib_s'], '.2f'):>9}{ratio(s['dlib_s'], s['fx_s']):>9}"
              f"{s['cores_fx']:>9.2f}/{s['cores_dlib']:<5.2f}{fmt(s['fx_mb'], '.0f', '-'):>12}"
              f"{fmt(s['dlib_mb'], '.0f', '-'):>9}{ratio(s['dlib_mb'], s['fx_mb']):>9}")
        for note in s["notes"]:
            print(f"    {note}")


def summarize(name: str, history: dict[str, list], memory: dict[str, dict]) -> tuple[dict, list[dict]]:
    """A set's table row (times over the photos fxplain did not refuse) and its correctness rows."""
    last_fx, last_dl = history["fxplain"][-1], history["dlib"][-1]
    refused = {r.name for r in last_fx if r.refused}
    fx_s, cores_fx = set_seconds(history["fxplain"], refused)
    dlib_s, cores_dlib = set_seconds(history["dlib"], refused)
    notes = [f"fxplain refused {', '.join(sorted(refused))}: left out of both sides' times" if refused else ""]
    for side, report in memory.items():
        if "error" in report:
            notes.append(f"{side} memory child failed: {report['error']}")
    row = {"set": name, "photos": len(last_fx), "faces_fx": sum(r.faces for r in last_fx),
           "faces_dlib": sum(r.faces for r in last_dl), "fx_s": fx_s, "dlib_s": dlib_s,
           "cores_fx": cores_fx, "cores_dlib": cores_dlib, "notes": [n for n in notes if n],
           "fx_mb": memory.get("fxplain", {}).get("peak_mb"), "dlib_mb": memory.get("dlib", {}).get("peak_mb")}
    return row, [compare_photo(fx, dl) for fx, dl in zip(last_fx, last_dl)]


def time_sides(runs: dict[str, Callable], repeats: dict[str, int]) -> None:
    """Alternate the sides for as many repeats as both get, then give the side with more its extra repeats."""
    shared = min(repeats.values())
    measure(runs, shared)
    for side, count in repeats.items():
        if count > shared:
            measure({side: runs[side]}, count - shared)


def main_benchmark(args: argparse.Namespace) -> None:
    """Both sides in this process: load, time each set alternately, compare, add the memory children."""
    set_thread_environment(args.threads)  # before fxplain (libgomp) and dlib's BLAS are loaded
    faces_dir, model_files = resolve_inputs()
    build_library()  # before the memory children, so that they do not race to build it
    sets = photo_sets(faces_dir, args.photo_set)
    # Memory first: the children then run while this process is still small and the machine quiet.
    memory = {name: {side: measure_memory(side, name, args, faces_dir, model_files) for side in SIDES}
              for name in sets} if args.memory else {name: {} for name in sets}
    pipelines, loads = {}, {}
    for side in SIDES:
        pipelines[side], loads[side] = load_side(side, model_files, args.threads)
    print_header(args, pipelines["dlib"], loads)
    summary, rows = [], []
    for name, files in sets.items():
        print(f"timing {name} ...", file=sys.stderr, flush=True)
        photos = {p.name: decode(p) for p in files}
        history = {side: [] for side in SIDES}
        runs = {side: recording(set_runner(pipelines[side], photos, args.upsample), history[side]) for side in SIDES}
        time_sides(runs, {"fxplain": args.repeats, "dlib": args.dlib_repeats})
        row, photo_rows = summarize(name, history, memory[name])
        summary.append(row)
        rows.extend(photo_rows)
    print_correctness(rows)
    print_table(summary)
    print("\nseconds: median over repeats of the set's summed per-photo wall time (decoded pixels in, "
          "descriptors out);\ncores: CPU seconds / wall seconds; MB: peak RSS (VmHWM) of a child process "
          "running one side on that set\n(Python + NumPy + PIL + decoded photos + that side's models).")
    for pipeline in pipelines.values():
        pipeline.close()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upsample", type=int, default=1, help="times the photos are upsampled (default: 1)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per side (default: 3)")
    parser.add_argument("--dlib-repeats", type=int, default=1,
                        help="timed repeats of the dlib side (default: 1; one run of both sets takes ~8 min)")
    parser.add_argument("--quick", action="store_true", help="one repeat per side (first-call costs included)")
    parser.add_argument("--threads", type=int, default=2, help="threads for both sides (default: 2)")
    parser.add_argument("--photo-set", choices=("all", *PHOTO_SETS), default="all",
                        help="which photos (default: all)")
    parser.add_argument("--no-memory", dest="memory", action="store_false",
                        help="skip the memory children (they add about one more dlib run)")
    child = parser.add_argument_group("memory child (run by the benchmark itself)")
    child.add_argument("--side", choices=SIDES, help="run only this side once and report its peak RSS")
    child.add_argument("--measure-memory", action="store_true", help="required with --side")
    child.add_argument("--faces-dir", help="dlib's examples/faces folder")
    child.add_argument("--model-files", nargs=3, metavar=("MMOD", "SP5", "RESNET"), help="the three .dat files")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats = args.dlib_repeats = 1
    if min(args.repeats, args.dlib_repeats) < 1 or args.threads < 1 or args.upsample < 0:
        parser.error("--repeats and --threads must be positive and --upsample not negative")
    if args.side and not (args.measure_memory and args.faces_dir and args.model_files):
        parser.error("--side needs --measure-memory, --faces-dir and --model-files")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.side:
        child_main(args)
    else:
        main_benchmark(args)


if __name__ == "__main__":
    main()
