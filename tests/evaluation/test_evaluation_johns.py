"""A small evaluation of every method on johns, run in CI.

What it asserts is what holds on this data (see docs/evaluation.md): every
method beats the random baseline on deletion/insertion of similarity maps and
on planted differences, and the model-randomisation sanity check moves every
method's maps. The centred-Gaussian prior is reported, not asserted against:
on aligned chips it beats every method on similarity deletion (deleting the
middle of a face destroys any match) and on planted-difference ROC-AUC (the
planted regions are central).

``pytest --large-eval`` runs the larger evaluation behind docs/evaluation.md.
"""

from __future__ import annotations

import pytest

import fxplain

METHODS = ["occlusion", "corrrise", "gradient"]


def _run(model, pairs, n_masks, planted, sanity):
    report = fxplain.evaluate(model, "johns", methods=METHODS, pairs=pairs, planted_per_region=planted,
                              sanity_pairs=sanity, method_params={"corrrise": {"n_masks": n_masks}})
    print("\n" + report.to_markdown())
    return {row["method"]: row for row in report.rows}


def _check(rows):
    random = rows["random"]
    for method in METHODS:
        row = rows[method]
        assert row["deletion_similarity_auc"] < random["deletion_similarity_auc"], method
        assert row["insertion_similarity_auc"] > random["insertion_similarity_auc"], method
        assert row["deletion_similarity_accuracy_auc"] < random["deletion_similarity_accuracy_auc"], method
        assert row["planted_energy"] > random["planted_energy"], method
        assert row["sanity_spearman"] < 0.8, method


def test_small_evaluation_on_johns(model):
    _check(_run(model, pairs=8, n_masks=300, planted=2, sanity=1))


@pytest.mark.large_eval
def test_large_evaluation_on_johns(model):
    _check(_run(model, pairs=20, n_masks=500, planted=5, sanity=2))
