#!/usr/bin/env python3
"""Run one fuzz target under atheris (libFuzzer for Python): ``python -m fuzz.run TARGET [libFuzzer args]``.

fxplain's Python modules are instrumented for coverage; its C core is not
(a sanitizer build covers it: scripts/sanitize.sh), so coverage guidance
follows the Python readers, which decide what reaches the core.

Examples::

    python -m fuzz.run fxd /tmp/new fuzz/corpus/fxd -runs=2000      # new inputs go to the first folder
    python -m fuzz.run fxd fuzz/corpus/fxd -runs=0                  # replay the corpus only
    python -m fuzz.run fxd crash-1234                               # reproduce one finding

libFuzzer exits with status 0 when the budget ends without a finding, and
non-zero (writing ``crash-<sha1>`` under ``-artifact_prefix``) when a target
raised. ``scripts/fuzz.sh`` runs every target for a long budget.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import atheris

if __package__ in (None, ""):  # run as a script: libFuzzer's -merge re-runs argv[0] itself
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# fxplain, and the pure-Python parsers its readers hand bytes to (zip members,
# .npy headers, image headers), so that coverage steers into their branches too
with atheris.instrument_imports(include=["fxplain", "zipfile", "numpy.lib", "PIL"]):
    import zipfile  # noqa: F401

    import numpy.lib.format  # noqa: F401
    import PIL.Image  # noqa: F401

    import fxplain  # noqa: F401 - instrumented before the targets import it

from fuzz.targets import TARGETS


def main() -> None:
    # libFuzzer re-runs argv[0] with its own arguments for -merge: the target's
    # name travels to those runs in the environment
    if len(sys.argv) >= 2 and sys.argv[1] in TARGETS:
        os.environ["FXPLAIN_FUZZ_TARGET"] = sys.argv[1]
        args = sys.argv[2:]
    else:
        args = sys.argv[1:]
    name = os.environ.get("FXPLAIN_FUZZ_TARGET")
    if name not in TARGETS:
        sys.exit(f"usage: python -m fuzz.run TARGET [libFuzzer args]; targets: {', '.join(TARGETS)}")
    atheris.Setup([sys.argv[0]] + args, TARGETS[name])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
