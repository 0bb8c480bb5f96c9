"""The C core under AddressSanitizer and UndefinedBehaviorSanitizer: scripts/sanitize.sh passes.

The script builds fxplain._core with -fsanitize=address,undefined into
build/sanitize/ (the editable install is untouched), builds and runs the
pure-C example with the same sanitizers, then runs the tests that drive the
C kernels (runtime, saliency kernels, gradients, dlib model, bad input,
threads, explainer, faces, hostile network files) against the sanitized
build. Any sanitizer report aborts the run. A few minutes; it runs late in
the suite (this file sorts after the test folders), when the default decoder
two of those tests use is already cached.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_core_tests_pass_under_asan_and_ubsan():
    done = subprocess.run(["bash", str(ROOT / "scripts" / "sanitize.sh"), "-x"], cwd=ROOT, capture_output=True,
                          text=True, timeout=3600, check=False)
    log = done.stdout + done.stderr
    assert done.returncode == 0, f"the sanitizer run failed:\n{log[-8000:]}"
    assert "all clean" in log and " passed" in log, log[-4000:]
    assert "ERROR: AddressSanitizer" not in log and "runtime error:" not in log, log[-8000:]
