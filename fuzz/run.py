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

import sys

import atheris

# fxplain, and the pure-Python parsers its readers hand bytes to (zip members,
# .npy headers, image headers), so that coverage steers into their branches too
with atheris.instrument_imports(include=["fxplain", "zipfile", "numpy.lib", "PIL"]):
    import zipfile  # noqa: F401

    import numpy.lib.format  # noqa: F401
    import PIL.Image  # noqa: F401

    import fxplain  # noqa: F401 - instrumented before the targets import it

from fuzz.targets import TARGETS


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: python -m fuzz.run TARGET [libFuzzer args]; targets: {', '.join(TARGETS)}")
    target = TARGETS[sys.argv[1]]
    atheris.Setup([sys.argv[0]] + sys.argv[2:], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
