"""fxplain.testing's helpers called directly: the pairs they draw, their checks and messages, bad arguments.

Explanations here are deliberately coarse (CorrRISE with 20 masks, occlusion
with one 50-pixel patch) on one or two johns pairs: the helpers' logic is
under test, not the methods' quality (that is tests/testing/test_plugin.py's
user suite and tests/evaluation/).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import fxplain
from fxplain import InvalidInputError, Pair
from fxplain.faces.regions import REGION_NAMES
from fxplain.testing import (
    assert_beats_baselines,
    assert_region_shares,
    assert_sanity_check,
    assert_stable_under_seed,
    choose_pairs,
    explain,
    recording,
)

COARSE = {"n_masks": 20}


@pytest.fixture(scope="module")
def pairs() -> tuple[Pair, ...]:
    return choose_pairs(None, 2)


@pytest.fixture
def report_dir(tmp_path):
    recording.set_directory(tmp_path)
    recording.set_test("tests/x.py::test_y[a b]")
    yield tmp_path
    recording.set_directory(None)


def test_pairs_are_balanced_seeded_and_genuine_first():
    six = choose_pairs(None, 6)
    assert six == choose_pairs(None, 6)
    assert [p.same for p in six] == [True] * 3 + [False] * 3
    assert all((Path(p.a).parent == Path(p.b).parent) == p.same for p in six)
    assert choose_pairs(None, 6, seed=1) != six
    assert len(choose_pairs(None, 5)) == 5 and sum(p.same for p in choose_pairs(None, 5)) == 2


@pytest.mark.parametrize("data, n, message", [
    (None, 1, "need at least 2 pairs"),
    ("/nowhere/faces", 4, "dataset not found: /nowhere/faces"),
])
def test_pairs_refuse_bad_requests(data, n, message):
    with pytest.raises(InvalidInputError, match=message):
        choose_pairs(data, n)


def test_a_folder_with_one_identity_gives_no_impostors(tmp_path):
    person = tmp_path / "only" / "person"
    person.mkdir(parents=True)
    for k in range(3):
        (person / f"{k}.png").write_bytes(b"")  # pairs are drawn from file names only
    with pytest.raises(InvalidInputError, match="cannot draw 1 genuine and 1 impostor pairs: it gives 3 genuine, "
                                                "0 impostor pairs"):
        choose_pairs(tmp_path / "only", 2)


def test_explanations_are_kept_for_the_session(model, pairs):
    first = explain(model, pairs[:1], **COARSE)
    assert explain(model, pairs[:1], **COARSE)[0] is first[0]
    assert explain(model, pairs[:1], seed=1, **COARSE)[0] is not first[0]
    assert first[0].params["n_masks"] == 20
    assert explain(model, pairs[:1], n_masks=21)[0].params["n_masks"] == 21


def test_deterministic_maps_are_stable_and_noisy_ones_are_not(model, pairs):
    rows = assert_stable_under_seed(model, pairs[0], "occlusion", min_rank_correlation=0.99, patch_sizes=(50,))
    assert [r["rho"] for r in rows] == [pytest.approx(1.0)]
    with pytest.raises(AssertionError) as failure:
        assert_stable_under_seed(model, pairs[0], "corrrise", seeds=(0, 1, 2), min_rank_correlation=0.99, **COARSE)
    message = str(failure.value)
    assert message.startswith("corrrise maps are not stable under the seed: mean Spearman rank correlation 0.")
    assert "< 0.990 required (seeds 0, 1, 2; 1 pair; per pair and seed pair: " in message
    assert message.count(", ") >= 4 and "n_masks=20" in message  # three seed pairs quoted


def test_beating_the_baselines_by_an_impossible_margin_fails_with_the_numbers(model, pairs, report_dir):
    with pytest.raises(AssertionError) as failure:
        assert_beats_baselines(model, pairs, "corrrise", metric="deletion", margin=5.0, **COARSE)
    message = str(failure.value)
    saved = json.loads((report_dir / "tests_x.py__test_y_a_b_" / "assert_beats_baselines.json").read_text())
    assert not saved["passed"] and saved["message"] == message
    assert [c["baseline"] for c in saved["checks"]] == ["random", "center"]
    assert message.splitlines()[0] == ("corrrise does not beat the baselines on 2 pairs (1 genuine, 1 impostor) of "
                                       "model 'dlib':")
    for check in saved["checks"]:
        assert check["bar"] == pytest.approx(check["baseline_value"] - 5.0)
        assert f"{check['baseline']} {check['baseline_value']:.3f} -> needs < {check['bar']:.3f}: FAILED" in message
    assert f"deletion AUC (lower is better): corrrise {saved['checks'][0]['method_value']:.3f};" in message
    assert "insertion" not in message.splitlines()[1]
    rows = {row["method"]: row for row in saved["rows"]}
    assert rows["corrrise"]["deletion_auc"] == pytest.approx(saved["checks"][0]["method_value"])
    assert rows["corrrise"]["pairs"] == 2
    # the overall area is the mean of the per-kind areas when there are as many genuine as impostor pairs
    assert rows["random"]["deletion_auc"] == pytest.approx(
        (rows["random"]["deletion_similarity_auc"] + rows["random"]["deletion_dissimilarity_auc"]) / 2)
    assert (report_dir / "tests_x.py__test_y_a_b_" / "assert_beats_baselines" / "report.md").is_file()


def test_region_shares_are_checked_on_the_mean_or_on_each_map(model, pairs, report_dir):
    maps = explain(model, pairs, **COARSE)
    shares = np.concatenate([r.region_shares().xs("dissimilarity", level="kind")["outside"].to_numpy() for r in maps])
    shares = shares[np.isfinite(shares)]
    mean = float(shares.mean())
    table = assert_region_shares(maps, {"outside": (0, mean + 0.01)})
    assert set(table.index.get_level_values("kind")) == {"dissimilarity"} and list(table.columns) == list(REGION_NAMES)
    with pytest.raises(AssertionError) as failure:
        assert_region_shares(maps, {"outside": (0, mean - 0.01)})
    assert f"  outside: mean share {mean:.3f}, bounds [0, {mean - 0.01:g}]: FAILED (per map: " in str(failure.value)
    assert "the region covers 0.308 of the chip" in str(failure.value)  # dlib chips: 31 % lies off the face
    middle = float(np.median(shares))
    with pytest.raises(AssertionError, match=rf"outside: \d of {len(shares)} maps outside \[0, {middle:g}\]: FAILED"):
        assert_region_shares(maps, {"outside": (0, middle)}, each=True)
    both = assert_region_shares(maps, {"outside": (0, 1), "eyes": (0, 1)}, kind="both")
    assert set(both.index.get_level_values("kind")) == {"similarity", "dissimilarity"}
    assert sorted(p.name for p in (report_dir / "tests_x.py__test_y_a_b_").iterdir()) == [
        "assert_region_shares-2.json", "assert_region_shares-3.json", "assert_region_shares-4.json",
        "assert_region_shares.json"]


@pytest.mark.parametrize("call, message", [
    (lambda m, p: assert_beats_baselines(m, p, metric="accuracy"), "metric must be one of"),
    (lambda m, p: assert_beats_baselines(m, p, margin=-0.1), "margin must be a non-negative number"),
    (lambda m, p: assert_beats_baselines(m, p, baselines=("gaussian",)), "baselines must be some of"),
    (lambda m, p: assert_beats_baselines(m, [Pair(p[0].a, p[0].b)]), "need labelled pairs"),
    (lambda m, p: assert_beats_baselines(m, p, steps=0), "steps"),
    (lambda m, p: assert_beats_baselines(m, p, method="sharpness"), "unknown method"),
    (lambda m, p: assert_stable_under_seed(m, p, seeds=(3, 3)), "at least two different seeds"),
    (lambda m, p: assert_stable_under_seed(m, p, min_rank_correlation=2), r"min_rank_correlation must be .* \[-1, 1\]"),
    (lambda m, p: assert_sanity_check(m, p, max_rank_correlation=float("nan")), "max_rank_correlation must be"),
    (lambda m, p: assert_sanity_check(fxplain.wrap(lambda x: np.ones((len(x), 4)), input_size=(150, 150),
                                                   threshold=0.5), p), "needs a model on fxplain's core"),
    (lambda m, p: assert_region_shares([], {"outside": (0, 1)}), "non-empty list"),
    (lambda m, p: assert_region_shares(explain(m, p[:1], **COARSE), {"ears": (0, 1)}), "unknown region 'ears'"),
    (lambda m, p: assert_region_shares(explain(m, p[:1], **COARSE), {"eyes": (0.5, 0.2)}), "low <= high"),
    (lambda m, p: assert_region_shares(explain(m, p[:1], **COARSE), kind="evidence"), "kind must be one of"),
])
def test_bad_arguments_raise_invalid_input(model, pairs, call, message):
    with pytest.raises(InvalidInputError, match=message):
        call(model, pairs)
