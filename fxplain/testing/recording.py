"""Where the assertions' numbers go: one JSON file per assertion call, under the test that made it.

The pytest plugin points this at ``--fxplain-report DIR`` and names the
running test; each assertion helper then writes what it computed — passed
or failed — to ``DIR/<test>/<helper>.json`` (``<helper>-2.json`` for a
second call in the same test), and :func:`~fxplain.testing.assert_beats_baselines`
its :class:`~fxplain.EvaluationReport` beside it (``<helper>/``, as
:meth:`~fxplain.EvaluationReport.save` writes it). Without a directory
nothing is written. A test session is one process (pytest-xdist workers
each have their own), so a module-level state suffices.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from ..results import _jsonable

_state: dict[str, Any] = {"directory": None, "test": "outside-tests", "calls": {}}


def set_directory(directory: str | os.PathLike | None) -> None:
    """Write the assertions' numbers under ``directory`` from now on (None: write nothing)."""
    _state["directory"] = None if directory is None else Path(directory)
    _state["calls"] = {}


def set_test(name: str) -> None:
    """Name the running test (pytest's node id): its assertions' files go into a folder of that name."""
    _state["test"] = name


def record(helper: str, numbers: dict[str, Any], report: Any = None) -> Path | None:
    """Write ``numbers`` (and ``report``, an EvaluationReport) for one call of ``helper``; the JSON file's path.

    Returns None when no directory is set.
    """
    directory = _state["directory"]
    if directory is None:
        return None
    folder = directory / _safe(_state["test"])
    key = (str(folder), helper)
    _state["calls"][key] = _state["calls"].get(key, 0) + 1
    stem = helper if _state["calls"][key] == 1 else f"{helper}-{_state['calls'][key]}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.json"
    path.write_text(json.dumps({"test": _state["test"], "helper": helper, **_jsonable(numbers)}, indent=2))
    if report is not None:
        report.save(folder / stem)
    return path


def _safe(name: str) -> str:
    """A node id as one folder name: ``tests/test_x.py::test_y[a-b]`` -> ``tests_test_x.py__test_y_a-b_``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:200] or "test"
