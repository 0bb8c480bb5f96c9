#!/usr/bin/env bash
# Long fuzzing campaign over every reader of untrusted files (fuzz/targets.py),
# coverage-guided by atheris. CI runs a short fixed budget (tests/test_fuzz.py);
# this runs each target for SECONDS (default 600) and merges the inputs that
# found new coverage into the kept corpus, fuzz/corpus/<target>/ (commit them).
#
#   bash scripts/fuzz.sh               # every target, 10 minutes each
#   bash scripts/fuzz.sh 3600 fxd      # one target, an hour
#
# A finding stops that target and leaves build/fuzz/<target>/crash-*;
# reproduce with: .venv/bin/python -m fuzz.run <target> build/fuzz/<target>/crash-...
set -euo pipefail
cd "$(dirname "$0")/.."
# libFuzzer's -merge re-runs fuzz/run.py as a program: its "python3" must be the project's
export PATH="$PWD/.venv/bin:$PATH"
seconds="${1:-600}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(.venv/bin/python -c "from fuzz.targets import TARGETS; print('\n'.join(TARGETS))")
fi
status=0
for target in "${targets[@]}"; do
    work="build/fuzz/$target"
    rm -rf "$work/new" && mkdir -p "$work/new"
    echo "== $target: ${seconds}s"
    if ! .venv/bin/python -m fuzz.run "$target" "$work/new" "fuzz/corpus/$target" \
            -max_total_time="$seconds" -timeout=60 -rss_limit_mb=4096 -artifact_prefix="$work/" \
            -print_final_stats=1 2>&1 | tee "$work/log.txt" | grep -E "^#[0-9]+ +(DONE|pulse)|stat::|Done|ERROR"; then
        :
    fi
    if grep -q "ERROR: libFuzzer" "$work/log.txt"; then
        echo "!! $target: finding, see $work/log.txt and $work/crash-*"
        status=1
        continue
    fi
    # keep only what adds coverage: merge the new inputs into the kept corpus
    .venv/bin/python -m fuzz.run "$target" -merge=1 "fuzz/corpus/$target" "$work/new" 2>&1 | grep -E "MERGE-OUTER: [0-9]+ new files" || true
done
exit $status
