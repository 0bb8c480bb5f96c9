"""fxplain's pytest plugin, driven as a team would use it: a user's test file run by pytest in a fresh folder.

The two full runs (dlib on johns, and a randomised copy of dlib's model
saved as a face-model file) each load a model and explain 4 pairs with
100-mask CorrRISE: about a minute each on two cores. The option checks run
in-process and load no model.
"""

from __future__ import annotations

import json
import re
import textwrap
import tomllib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import fxplain
from fxplain.datasets import johns_dir
from fxplain.evaluation.sanity import randomized_model
from fxplain.runtime.layers import LAYERS

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]

#: A user's test file: what docs/testing.md shows, with 100 CorrRISE masks to keep this test's runs short.
USER_TESTS = textwrap.dedent('''
    from fxplain.testing import (assert_beats_baselines, assert_region_shares, assert_sanity_check,
                                 assert_stable_under_seed, explain)

    QUICK = {"n_masks": 100}


    def test_corrrise_beats_the_baselines(fxplain_model, fxplain_pairs):
        assert_beats_baselines(fxplain_model, fxplain_pairs, "corrrise", metric="both",
                               baselines=("random", "centre"), **QUICK)


    def test_corrrise_is_stable_under_its_seed(fxplain_model, fxplain_pairs):
        assert_stable_under_seed(fxplain_model, fxplain_pairs[0], "corrrise", min_rank_correlation=0.4, **QUICK)


    def test_corrrise_follows_the_model(fxplain_model, fxplain_pairs):
        assert_sanity_check(fxplain_model, fxplain_pairs[:2], "corrrise", max_rank_correlation=0.8, **QUICK)


    def test_dissimilarity_lies_mostly_on_the_face(fxplain_model, fxplain_pairs):
        maps = explain(fxplain_model, fxplain_pairs, "corrrise", **QUICK)
        assert_region_shares(maps, {"outside": (0, 0.5)}, kind="dissimilarity")
''')

#: The strict warnings of this repository's own configuration, as a careful team's suite would have them.
STRICT_INI = "[pytest]\nfilterwarnings =\n    error\n"


#: Load the plugin by its module, whether or not its entry point is installed: the entry point's name is
#: blocked first (with both, pytest would register the module twice). test_help_lists_the_options runs
#: without these, through the installed entry point, as a user's pytest does.
PLUGIN = ["-p", "no:fxplain", "-p", "fxplain.testing.plugin"]


def _user_suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeini(STRICT_INI)
    pytester.makepyfile(test_face_model=USER_TESTS)
    # pytester gives the run a home folder of its own: point it at the johns faces this machine has, or it
    # would download them into that folder's cache
    monkeypatch.setenv("FXPLAIN_JOHNS_DIR", str(johns_dir()))


@pytest.fixture(scope="module")
def randomised_model_file(model, tmp_path_factory) -> Path:
    """dlib's model with every convolution and dense layer redrawn, as a face-model file --fxplain-model loads.

    Seed 7: the sanity check redraws with seed 0, and redrawing with the same
    seed would give nearly the same weights again (the same Gaussian draws
    times nearly the same standard deviation).
    """
    layers = sum(LAYERS[layer.kind].trainable for layer in model.spec.layers)
    path = tmp_path_factory.mktemp("random-model") / "random.fxn"
    fxplain.save_face_model(randomized_model(model, layers, seed=7), path)
    return path


def test_the_entry_point_names_the_plugin_module():
    entry_points = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["pytest11"]
    assert entry_points == {"fxplain": "fxplain.testing.plugin"}


def test_a_user_suite_passes_on_dlib_and_johns(pytester, monkeypatch, tmp_path):
    _user_suite(pytester, monkeypatch)
    report = tmp_path / "report"
    result = pytester.runpytest_subprocess(*PLUGIN, "--fxplain-pairs=4", f"--fxplain-report={report}")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines([f"fxplain: model dlib, data johns, 4 pairs, report {report}"])
    recorded = {p.parent.name + "/" + p.name: json.loads(p.read_text()) for p in report.glob("*/*.json")}
    assert sorted(recorded) == [
        "test_face_model.py__test_corrrise_beats_the_baselines/assert_beats_baselines.json",
        "test_face_model.py__test_corrrise_follows_the_model/assert_sanity_check.json",
        "test_face_model.py__test_corrrise_is_stable_under_its_seed/assert_stable_under_seed.json",
        "test_face_model.py__test_dissimilarity_lies_mostly_on_the_face/assert_region_shares.json",
    ]
    assert all(r["passed"] for r in recorded.values())
    baselines = recorded["test_face_model.py__test_corrrise_beats_the_baselines/assert_beats_baselines.json"]
    assert [row["method"] for row in baselines["rows"]] == ["corrrise", "random", "center"]
    assert len(baselines["checks"]) == 4 and len(baselines["settings"]["pairs"]) == 4
    saved = report / "test_face_model.py__test_corrrise_beats_the_baselines" / "assert_beats_baselines"
    assert {"report.md", "results.csv", "better.json", "curves.png", "settings.json"} <= {p.name for p in
                                                                                          saved.iterdir()}


def test_a_user_suite_fails_on_a_randomised_model_with_the_numbers(pytester, monkeypatch, tmp_path,
                                                                   randomised_model_file):
    _user_suite(pytester, monkeypatch)
    report = tmp_path / "report"
    # option=value: pytest takes a separate argument naming an existing file for a test path when it looks
    # for the root folder, and the test ids (the report's folder names) would then start above the tests
    result = pytester.runpytest_subprocess(*PLUGIN, "--fxplain-pairs=4", f"--fxplain-report={report}",
                                           f"--fxplain-model={randomised_model_file}")
    result.assert_outcomes(passed=2, failed=2)
    number = r"-?\d+\.\d{3}"
    result.stdout.re_match_lines([
        (r"E +AssertionError: corrrise does not beat the baselines on 4 pairs \(2 genuine, 2 impostor\) of model "
         r"'random.fxn':"),
        (rf"E +deletion AUC \(lower is better\): corrrise {number}; random {number} -> needs < {number}: "
         rf"(ok|FAILED); center {number} -> needs < {number}: (ok|FAILED)"),
        (rf"E +insertion AUC \(higher is better\): corrrise {number}; random {number} -> needs > {number}: "
         rf"(ok|FAILED); center {number} -> needs > {number}: (ok|FAILED)"),
    ], consecutive=True)
    result.stdout.re_match_lines([
        (rf"E +AssertionError: corrrise fails the model-randomisation sanity check: with all 30 convolution/dense "
         rf"layers of model 'random.fxn' redrawn \(seed 0\), the maps' mean Spearman correlation with the model's "
         rf"is {number} > 0.800 allowed \(2 pairs: {number}, {number}; n_masks=100\): the maps do not depend on the "
         r"model's weights"),
    ])
    # the failure points at the user's line, not into fxplain
    result.stdout.fnmatch_lines(["test_face_model.py:*: AssertionError"])
    assert "fxplain/testing/assertions.py" not in result.stdout.str()
    # the message's numbers are the ones recorded
    folder = report / "test_face_model.py__test_corrrise_follows_the_model"
    sanity = json.loads((folder / "assert_sanity_check.json").read_text())
    assert not sanity["passed"] and sanity["mean_rho"] > 0.8
    assert f"is {sanity['mean_rho']:.3f} > 0.800 allowed" in result.stdout.str()
    baselines = json.loads((report / "test_face_model.py__test_corrrise_beats_the_baselines"
                            / "assert_beats_baselines.json").read_text())
    failed = [c for c in baselines["checks"] if not c["passed"]]
    assert failed and not baselines["passed"]
    for check in failed:  # each failed comparison is in the message with its numbers
        assert re.search(rf"{check['baseline']} {check['baseline_value']:.3f} -> needs [<>] {check['bar']:.3f}: "
                         "FAILED", result.stdout.str())


def test_help_lists_the_options(pytester):
    """Through the installed entry point, as a user's pytest finds the plugin (pip install -e . installs it)."""
    result = pytester.runpytest_subprocess("--help")
    assert "--fxplain-model" in result.stdout.str(), "the pytest11 entry point is not installed: pip install -e ."
    result.stdout.fnmatch_lines(["*fxplain: checks of a face-recognition model's explanations*",
                                 "*--fxplain-model=SPEC*", "*--fxplain-data=PATH*", "*--fxplain-pairs=N*",
                                 "*--fxplain-report=DIR*"])
    result.stdout.fnmatch_lines(["*fxplain_model (string)*", "*fxplain_data (string)*",
                                 "*fxplain_pairs (string)*", "*fxplain_report (string)*"])


@pytest.mark.parametrize("args, message", [
    (["--fxplain-data", "nowhere"], "ERROR: --fxplain-data nowhere: no such folder or pairs file*"),
    (["--fxplain-model", "missing.fxn"], "ERROR: --fxplain-model missing.fxn: no such model file*"),
    (["--fxplain-pairs", "1"], "ERROR: --fxplain-pairs 1: needs at least 2*"),
    (["--fxplain-pairs", "six"], "ERROR: --fxplain-pairs 'six': not a whole number*"),
])
def test_bad_options_are_usage_errors(pytester, args, message):
    pytester.makepyfile("def test_never_runs():\n    raise AssertionError('ran')\n")
    result = pytester.runpytest(*PLUGIN, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def _identity_folder(root: Path, identities: int, images: int) -> Path:
    """A folder of identity sub-folders holding small PNG files (pairs are drawn from file names only)."""
    for i in range(identities):
        (root / f"person{i}").mkdir(parents=True)
        for k in range(images):
            Image.fromarray(np.full((8, 8, 3), 10 * i + k, np.uint8)).save(root / f"person{i}" / f"{k}.png")
    return root


def test_pairs_come_from_the_ini_dataset_folder(pytester):
    faces = _identity_folder(pytester.path / "faces", identities=3, images=2)
    pytester.makeini("[pytest]\nfxplain_data = faces\nfxplain_pairs = 4\n")
    pytester.makepyfile(textwrap.dedent(f'''
        from pathlib import Path

        def test_pairs(fxplain_dataset, fxplain_pairs, fxplain_report_dir):
            assert fxplain_dataset == Path({str(faces)!r})
            assert [p.same for p in fxplain_pairs] == [True, True, False, False]
            for p in fxplain_pairs:
                same_person = Path(p.a).parent == Path(p.b).parent
                assert same_person == p.same and Path(p.a).parent.parent == fxplain_dataset
            assert fxplain_report_dir is None
    '''))
    result = pytester.runpytest(*PLUGIN)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"fxplain: model dlib, data {faces}, 4 pairs"])


def test_a_pairs_file_without_enough_labels_is_a_usage_error(pytester):
    faces = _identity_folder(pytester.path / "faces", identities=2, images=2)
    pairs = pytester.path / "pairs.csv"
    pairs.write_text(f"a,b,same\n{faces}/person0/0.png,{faces}/person0/1.png,1\n"
                     f"{faces}/person0/0.png,{faces}/person1/1.png,\n")
    pytester.makepyfile("def test_never_runs():\n    raise AssertionError('ran')\n")
    result = pytester.runpytest(*PLUGIN, "--fxplain-data", str(pairs))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([(f"ERROR: --fxplain-data {pairs}: {pairs}: cannot draw 3 genuine and 3 impostor "
                                  "pairs: it gives 1 genuine, 0 impostor and 1 unlabelled pairs")])
