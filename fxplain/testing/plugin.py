"""fxplain's pytest plugin: the model, the data and a few pairs as fixtures for a team's own explanation tests.

Installed with fxplain (entry point ``pytest11``: ``fxplain``), so any
pytest run in the environment loads it (importing fxplain: about half a
second at start-up; models and faces are loaded only by the fixtures that
a test asks for). Options (each with an ini equivalent:
``fxplain_model``, ``fxplain_data``, ``fxplain_pairs``, ``fxplain_report``;
the command line wins, ini paths are relative to the ini file):

* ``--fxplain-model SPEC``: ``"dlib"`` (default) or a model file
  :func:`fxplain.load_model` reads (``.fxn``, dlib ``.dat``, ...);
* ``--fxplain-data PATH``: a folder with one sub-folder of images per
  identity, or a pairs file (LFW ``pairs.txt``, CSV ``a,b,same``); default
  the johns faces;
* ``--fxplain-pairs N``: how many pairs ``fxplain_pairs`` holds (default 6,
  half genuine, half impostor, seed 0);
* ``--fxplain-report DIR``: write every assertion's numbers there
  (:mod:`fxplain.testing.recording`).

Fixtures (session scope): ``fxplain_model``, ``fxplain_dataset`` (the
dataset's path), ``fxplain_pairs`` (a tuple of :class:`~fxplain.Pair`) and
``fxplain_report_dir`` (a Path or None). See docs/testing.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from .._util.errors import FxplainError
from ..models import load_model
from ..models.formats import named_format
from . import recording
from .pairs import choose_pairs, dataset_path

DEFAULT_PAIRS = 6
_HELP = {
    "model": "model under test: 'dlib' (default) or a model file fxplain.load_model reads (.fxn, .dat, ...)",
    "data": "faces: a folder with one sub-folder of images per identity, or a pairs file (LFW pairs.txt, "
            "CSV a,b,same); default: the johns faces",
    "pairs": f"number of labelled pairs in the fxplain_pairs fixture, half genuine (default {DEFAULT_PAIRS})",
    "report": "write the numbers of every fxplain assertion (JSON, and evaluation reports) into this folder",
}


@dataclass(frozen=True)
class Settings:
    """The plugin's settings after the command line and the ini file: what the fixtures use."""

    model: str
    data: Path | None
    pairs: int
    report: Path | None
    explicit: bool  # any fxplain option or ini value given (the header line shows them only then)


_SETTINGS = pytest.StashKey[Settings]()
_PAIRS = pytest.StashKey[tuple]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """The ``--fxplain-*`` options and their ini equivalents."""
    group = parser.getgroup("fxplain", "fxplain: checks of a face-recognition model's explanations")
    group.addoption("--fxplain-model", dest="fxplain_model", metavar="SPEC", default=None, help=_HELP["model"])
    group.addoption("--fxplain-data", dest="fxplain_data", metavar="PATH", default=None, help=_HELP["data"])
    group.addoption("--fxplain-pairs", dest="fxplain_pairs", metavar="N", default=None, help=_HELP["pairs"])
    group.addoption("--fxplain-report", dest="fxplain_report", metavar="DIR", default=None, help=_HELP["report"])
    for name, text in _HELP.items():
        parser.addini(f"fxplain_{name}", text, default="")


def pytest_configure(config: pytest.Config) -> None:
    """Read and check the settings: a bad one is a usage error before any test runs."""
    settings = _settings(config)
    config.stash[_SETTINGS] = settings
    if settings.data is not None:
        # an explicit dataset is checked now (listing files only, no model): a missing image in a pairs file
        # or too few identities in a folder stops the run with its message instead of failing every test
        try:
            config.stash[_PAIRS] = choose_pairs(settings.data, settings.pairs)
        except FxplainError as exc:
            raise pytest.UsageError(f"--fxplain-data {settings.data}: {exc}") from None
    if settings.report is not None:
        recording.set_directory(settings.report)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop recording: an in-process pytest run (pytester) must not leave its folder to the next one."""
    if config.stash.get(_SETTINGS, None) is not None and config.stash[_SETTINGS].report is not None:
        recording.set_directory(None)


def pytest_report_header(config: pytest.Config) -> list[str]:
    """One header line with the settings, when any was given."""
    settings = config.stash.get(_SETTINGS, None)
    if settings is None or not settings.explicit:
        return []
    return [f"fxplain: model {settings.model}, data {settings.data or 'johns'}, {settings.pairs} pairs"
            + (f", report {settings.report}" if settings.report else "")]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Name the test whose assertions are recorded next."""
    if item.config.stash[_SETTINGS].report is not None:
        recording.set_test(item.nodeid)


@pytest.fixture(scope="session")
def fxplain_model(pytestconfig: pytest.Config):
    """The model under test (``--fxplain-model``, default dlib's ResNet), loaded once per session."""
    spec = pytestconfig.stash[_SETTINGS].model
    try:
        return load_model(spec)
    except FxplainError as exc:
        pytest.fail(f"--fxplain-model {spec}: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def fxplain_dataset(pytestconfig: pytest.Config) -> Path:
    """The dataset's path (``--fxplain-data``; default the johns faces' folder, fetched if needed)."""
    try:
        return dataset_path(pytestconfig.stash[_SETTINGS].data)
    except FxplainError as exc:
        pytest.fail(f"fxplain dataset: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def fxplain_pairs(pytestconfig: pytest.Config) -> tuple:
    """``--fxplain-pairs`` labelled pairs of the dataset (tuple of :class:`~fxplain.Pair`), genuine ones first."""
    if _PAIRS not in pytestconfig.stash:
        settings = pytestconfig.stash[_SETTINGS]
        try:
            pytestconfig.stash[_PAIRS] = choose_pairs(settings.data, settings.pairs)
        except FxplainError as exc:
            pytest.fail(f"fxplain pairs: {exc}", pytrace=False)
    return pytestconfig.stash[_PAIRS]


@pytest.fixture(scope="session")
def fxplain_report_dir(pytestconfig: pytest.Config) -> Path | None:
    """The ``--fxplain-report`` folder (created), or None when the numbers are not written."""
    report = pytestconfig.stash[_SETTINGS].report
    if report is not None:
        report.mkdir(parents=True, exist_ok=True)
    return report


def _settings(config: pytest.Config) -> Settings:
    """Command-line values, else ini values (paths relative to the ini file), else the defaults."""
    given = {}
    for name in _HELP:
        value = config.getoption(f"fxplain_{name}")
        if value is not None:
            given[name] = (value, config.invocation_params.dir, f"--fxplain-{name}")
        elif config.getini(f"fxplain_{name}"):
            base = config.inipath.parent if config.inipath else config.rootpath
            given[name] = (config.getini(f"fxplain_{name}"), base, f"ini fxplain_{name}")
    model = given.get("model", ("dlib", None, ""))[0]
    if "model" in given and not _is_model_name(model):
        path = given["model"][1] / Path(model).expanduser()
        if not path.is_file():
            raise pytest.UsageError(f"{given['model'][2]} {model}: no such model file (give 'dlib' or the path "
                                    "of a model file fxplain.load_model reads)")
        model = str(path)
    data = None
    if "data" in given and given["data"][0] != "johns":
        data = given["data"][1] / Path(given["data"][0]).expanduser()
        if not data.exists():
            raise pytest.UsageError(f"{given['data'][2]} {given['data'][0]}: no such folder or pairs file (give a "
                                    "folder with one sub-folder of images per identity, or a pairs file)")
    pairs = DEFAULT_PAIRS
    if "pairs" in given:
        text, _, where = given["pairs"]
        try:
            pairs = int(text)
        except ValueError:
            raise pytest.UsageError(f"{where} {text!r}: not a whole number") from None
        if pairs < 2:
            raise pytest.UsageError(f"{where} {pairs}: needs at least 2 (one genuine, one impostor pair)")
    report = given["report"][1] / Path(given["report"][0]).expanduser() if "report" in given else None
    return Settings(model=model, data=data, pairs=pairs, report=report, explicit=bool(given))


def _is_model_name(spec: str) -> bool:
    """Whether ``spec`` names a model fxplain finds by name (``"dlib"``), not a file."""
    return named_format(spec) is not None
