"""Every reader of untrusted files, fuzzed for a short fixed budget (coverage-guided, atheris).

Each target (fuzz/targets.py) first replays its kept corpus (fuzz/corpus/,
the seeds and what long runs found), then mutates for a fixed number of runs
with a fixed seed. A finding (another library's exception, a silent wrong
answer the target can tell, a crash or a hang) fails the test with the
target's output; reproduce it with ``python -m fuzz.run TARGET FILE``.
Long campaigns: ``scripts/fuzz.sh``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: runs per target: a few seconds each, the dlib model patches (a 22 MB parse per run) about 20 s
RUNS = {"dlib_dat": 3000, "dlib_patches": 60, "fxd": 3000, "shape_predictor": 3000, "face_detector": 3000,
        "face_detector_patches": 150, "results": 3000, "image": 3000, "onnx": 2000, "fxn": 3000, "store": 1000}


@pytest.mark.parametrize("target", sorted(RUNS))
def test_fuzz_target_finds_nothing_in_its_budget(target, tmp_path):
    corpus = ROOT / "fuzz" / "corpus" / target
    assert any(corpus.iterdir()), f"the kept corpus of {target} is empty"
    command = [sys.executable, "-m", "fuzz.run", target, str(tmp_path / "new"), str(corpus),
               f"-runs={RUNS[target]}", "-seed=1", "-timeout=60", "-rss_limit_mb=4096",
               f"-artifact_prefix={tmp_path}/"]
    (tmp_path / "new").mkdir()
    # Through a shell that forks it: a child exec'd straight from pytest starts with pytest's peak RSS as its own
    # ru_maxrss (Linux keeps the hiwater mark across fork and exec), which libFuzzer's -rss_limit_mb then reads as
    # the fuzzed code's; the shell's child starts afresh.
    wrapped = ["/bin/sh", "-c", '"$@"; status=$?; exit $status', "sh", *command]
    done = subprocess.run(wrapped, check=False, cwd=ROOT, capture_output=True, text=True, timeout=900)
    log = done.stdout + done.stderr
    assert done.returncode == 0, f"fuzz target {target} found a problem:\n{log[-6000:]}"
    runs = re.search(r"Done (\d+) runs", log)
    assert runs and int(runs.group(1)) >= RUNS[target], log[-3000:]
