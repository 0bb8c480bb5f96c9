#!/usr/bin/env bash
# Sanitizer test build of the C core: fxplain._core compiled with
# AddressSanitizer and UndefinedBehaviorSanitizer, then the tests that drive
# the C kernels hard run against it, and csrc/examples/tiny_net.c (the core
# from plain C) is built and run with the same sanitizers.
#
# Why: the core does its own index arithmetic over caller buffers (saliency
# masks, occlusion, preprocessing, resize matrices, plan buffers), which a
# NumPy comparison only catches when a stray read or write changes a result.
# ASan turns out-of-bounds and use-after-free into hard failures, UBSan does
# the same for overflow, bad shifts, misalignment and friends.
#
#   bash scripts/sanitize.sh                  # build + all the core tests
#   bash scripts/sanitize.sh -k resize -x     # extra arguments go to pytest
#
# Everything lands in build/sanitize/ (lib/ and tmp/ from build_ext, pkg/ a
# copy of the fxplain package holding the sanitized .so); the editable
# install's fxplain/_core*.so is left alone. Needs the test set-up
# (bash scripts/setup.sh test) and gcc with libasan/libubsan. Any sanitizer
# report stops the run with a nonzero status (docs/runtime.md, "Sanitizer build").
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=$ROOT/.venv/bin/python
OUT=$ROOT/build/sanitize
SAN_FLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -g -O1"

# --- 1. build fxplain._core with the sanitizers ------------------------------
# setup.py appends FXPLAIN_EXTRA_* after its own flags, so -O1 beats its -O2.
# -fno-wrapv undoes the -fwrapv that Python's own CFLAGS put first on every
# extension's command line: with it, signed overflow is defined and UBSan
# does not check it. --force: build_ext does not track headers, and this tree
# must never mix flags.
echo "== building fxplain._core with $SAN_FLAGS -fno-wrapv"
mkdir -p "$OUT"
if ! FXPLAIN_EXTRA_CFLAGS="$SAN_FLAGS -fno-wrapv" FXPLAIN_EXTRA_LDFLAGS="-fsanitize=address,undefined" \
        "$PY" setup.py build_ext --force --parallel 2 \
        --build-lib "$OUT/lib" --build-temp "$OUT/tmp" >"$OUT/build.log" 2>&1; then
    cat "$OUT/build.log"
    exit 1
fi
grep "warning:" "$OUT/build.log" || true  # -O1 may warn where -O2 did not
so=$(ls "$OUT"/lib/fxplain/_core*.so)

# A copy of the package with the sanitized extension in place of the editable one.
rm -rf "$OUT/pkg"
mkdir -p "$OUT/pkg"
cp -r fxplain "$OUT/pkg/"
find "$OUT/pkg" -name __pycache__ -prune -exec rm -rf {} +
rm -f "$OUT"/pkg/fxplain/_core*.so
cp "$so" "$OUT/pkg/fxplain/"

# --- 2. the pure-C example, sanitized --------------------------------------
# The same sources and flags as tests/runtime/test_c_example.py, plus the
# sanitizers. A plain executable links the run-times itself (no LD_PRELOAD),
# and leak checking is on here: there is no interpreter to keep objects alive.
echo "== tiny_net.c with the sanitizers"
# one argument a line: the oneDNN library directory, then gcc's arguments
mapfile -t args < <("$PY" - <<'EOF'
import sys
sys.path.insert(0, "tests/runtime")
import test_c_example as t
include, libdir = t.find_onednn()
print(libdir)
print("\n".join(["-I", str(t.CSRC), "-I", str(include), *map(str, t._core_sources()), str(t.EXAMPLE),
                 "-L", str(libdir), *t.CFLAGS, *t.LDFLAGS]))
EOF
)
[ "${#args[@]}" -gt 4 ] || { echo "sanitize.sh: could not locate oneDNN" >&2; exit 1; }
read -ra san <<<"$SAN_FLAGS"
gcc "${args[@]:1}" "${san[@]}" -o "$OUT/tiny_net"
LD_LIBRARY_PATH="${args[0]}" ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 "$OUT/tiny_net"

# --- 3. the sanitizer run-time environment for Python ------------------
# Python, NumPy and oneDNN are not instrumented, so the ASan/UBSan run-times
# are preloaded into the interpreter. Leak checking is off: CPython keeps
# objects alive until exit by design. PYTHONMALLOC=malloc sends Python's
# small objects through ASan's malloc too, so the glue's reads of them are checked.
export LD_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export PYTHONMALLOC=malloc
export PYTHONPATH=$OUT/pkg
# -P: no script directory or cwd first on sys.path, so PYTHONPATH's copy wins
# over both the source tree and the editable install's finder.
"$PY" -P - "$OUT/pkg" <<'EOF'
import subprocess, sys
from pathlib import Path
import fxplain._core as core
want = Path(sys.argv[1]).resolve()
got = Path(core.__file__).resolve()
assert got.parent == want / "fxplain", f"fxplain._core comes from {got}, not the sanitized copy in {want}"
needed = subprocess.run(["readelf", "-d", str(got)], capture_output=True, text=True, check=True).stdout
assert "libasan" in needed and "libubsan" in needed, f"{got} is not linked against libasan/libubsan"
print(f"== fxplain._core is the sanitized build: {got}")
EOF

# --- 4. the core tests -----------------------------------------------------
# Deselected: the resident-memory leak tests (ASan's quarantine holds
# freed memory on purpose), the peak-memory subprocesses (the masks', the
# 6000x4000 photo's: ASan's shadow memory is not the core's) and the plots (no C),
# and test_c_example's unsanitized build of tiny_net (step 2 builds it
# sanitized). -p no:cacheprovider keeps this run out of .pytest_cache.
echo "== pytest on the sanitized core"
"$PY" -P -m pytest -p no:cacheprovider -q \
    tests/runtime \
    tests/methods/test_saliency_kernels.py \
    tests/methods/test_gradients.py \
    tests/models/test_dlib_model.py \
    tests/models/test_model_input.py \
    tests/test_threads_and_memory.py \
    tests/test_explainer.py \
    tests/faces \
    tests/models/test_fxspec_hostile.py \
    --deselect tests/runtime/test_c_example.py::test_tiny_net_builds_and_runs_without_python \
    --deselect tests/faces/test_face_chip.py::test_repeated_calls_do_not_leak \
    --deselect tests/faces/test_landmarks.py::test_repeated_calls_do_not_leak \
    --deselect tests/test_threads_and_memory.py::test_repeated_calls_do_not_leak \
    --deselect tests/test_threads_and_memory.py::test_building_and_dropping_models_does_not_leak \
    --deselect tests/test_explainer.py::test_peak_memory_does_not_grow_with_the_number_of_masks \
    --deselect tests/faces/test_detector.py::test_a_6000x4000_photo_is_detected_in_bounded_memory \
    --deselect tests/test_explainer.py::test_plot_and_notebook_display \
    --deselect tests/test_explainer.py::test_plot_shows_dlibs_distance_rule_units_and_draws_into_given_axes \
    "$@"

echo "== sanitizer build: all clean"
