"""The ranking is the model's own: each held-out johns chip finds its identity first, with the model's scores."""

from __future__ import annotations

import numpy as np
import pytest

import fxplain
from fxplain.models.scoring import distance_from_score

#: Cheap occlusion (nine 50-px patches per image): these tests check the ranking and the plumbing, not the maps.
CHEAP = {"method": "occlusion", "patch_sizes": (50,), "stride": 1.0}


def _expected_scores(model, probe_embedding, embeddings, labels, combine):
    """Each identity's score from embeddings recomputed by model.embed, and model.score."""
    scores = {}
    for name in dict.fromkeys(labels):
        emb = embeddings[[k for k, label in enumerate(labels) if label == name]]
        if combine == "mean":
            scores[name] = model.score(emb.astype(np.float64).mean(axis=0), probe_embedding)
        else:
            scores[name] = float(np.max(model.score(emb, probe_embedding)))
    return scores


@pytest.mark.parametrize("combine", ["mean", "best"])
def test_the_ranking_is_the_models_own_scores_and_rank_1_is_the_mate(model, johns, johns_embeddings, held_out,
                                                                      gallery, combine):
    _, identities, paths = johns
    kept = [k for k in range(len(paths)) if k not in held_out]
    # the gallery's embeddings are the model's (read from the files; johns_embeddings from the pixel arrays)
    np.testing.assert_allclose(gallery.embeddings, johns_embeddings[kept], rtol=0, atol=2e-6)
    assert gallery.identities == tuple(dict.fromkeys(identities))
    assert gallery.labels == tuple(identities[k] for k in kept)
    for k in held_out:
        probe = model.embed(paths[k])[0]
        ranking = gallery.search(probe, combine=combine)
        expected = _expected_scores(model, probe, johns_embeddings[kept], gallery.labels, combine)
        assert [c.identity for c in ranking] == sorted(expected, key=lambda name: -expected[name])
        assert ranking[0].identity == identities[k]
        for rank, c in enumerate(ranking, start=1):
            members = gallery.members(c.identity)
            own = gallery.embeddings[members]
            # exactly the model's score of the gallery's embeddings ...
            exact = (model.score(own.astype(np.float64).mean(axis=0), probe) if combine == "mean"
                     else float(np.max(model.score(own, probe))))
            assert c.score == exact and c.rank == rank
            # ... and of embeddings recomputed from the files (batch sizes differ by float32 rounding)
            assert c.score == pytest.approx(expected[c.identity], abs=1e-5)
            assert c.match == (c.score >= model.threshold)
            assert c.distance == pytest.approx(distance_from_score(model.metric, c.score))
            assert c.image == gallery.images[c.image_index] and c.image_index in members
            if combine == "best":
                assert model.score(gallery.embeddings[c.image_index], probe) == c.score
            else:  # the representative image is the identity's image closest to its mean
                closest = members[np.argmax(model.score(own, own.astype(np.float64).mean(axis=0)))]
                assert c.image_index == closest
        assert [c.identity for c in gallery.search(probe, combine=combine, top_k=2)] == \
            [c.identity for c in ranking[:2]]


def test_explain_identification_ranks_explains_and_contrasts(model, johns, held_out, gallery):
    images, identities, paths = johns
    probe_path = paths[held_out[2]]
    r = fxplain.explain_identification(model, probe_path, gallery, top_k=3, **CHEAP)
    probe = model.embed(probe_path)[0]
    search = gallery.search(probe)
    assert [(c.identity, c.score, c.image) for c in r.ranking] == [(c.identity, c.score, c.image) for c in search[:3]]
    assert r.top.identity == identities[held_out[2]] and r.top.match
    assert len(r.pairs) == 3 and r.gallery_identities == 5 and r.gallery_images == 50
    assert r.probe_source["path"] == str(probe_path)
    for c, pair in zip(r.ranking, r.pairs):
        # the pair is the probe against the identity's representative image, by the same method and seed
        assert pair.method == "occlusion" and pair.params == r.params and pair.seed == r.seed
        np.testing.assert_array_equal(pair.images[1], images[[str(path) for path in paths].index(c.image)])
        np.testing.assert_array_equal(pair.images[0], images[held_out[2]])
        assert pair.sources[0]["path"] == str(probe_path) and pair.sources[1]["path"] == c.image
    contrast = r.contrast
    assert (contrast.first.identity, contrast.second.identity, contrast.reason) == \
        (search[0].identity, search[1].identity, "runner-up")
    assert contrast.score == pytest.approx(search[0].score - search[1].score, abs=1e-12)
    for values in (contrast.similarity, contrast.dissimilarity):
        assert values.shape == (150, 150) and values.dtype == np.float32
        assert np.all(np.isfinite(values)) and values.min() >= 0
    assert contrast.similarity.max() > 0

    # a named mate that is not rank 1: the contrast says why rank 1 beats it
    wrong = search[3].identity
    m = fxplain.explain_identification(model, probe_path, gallery, top_k=2, mate=wrong, **CHEAP)
    assert (m.contrast.first.identity, m.contrast.second.identity, m.contrast.reason) == \
        (search[0].identity, wrong, "mate")
    assert m.mate_rank == 4 and m.mate_score == search[3].score and "mate " + wrong in m.table()
    # the true mate at rank 1: rank 1 against rank 2, as without a mate
    right = fxplain.explain_identification(model, probe_path, gallery, top_k=1, mate=identities[held_out[2]],
                                           **CHEAP)
    assert right.contrast.reason == "runner-up" and right.mate_rank == 1
    np.testing.assert_array_equal(right.contrast.similarity, contrast.similarity)


def test_a_folder_gallery_of_photos_and_chips(model, johns, tmp_path):
    """Gallery images may be photos: their largest face is detected and aligned, as everywhere in fxplain."""
    import shutil

    from fxplain import datasets

    _, identities, paths = johns
    photo = datasets.examples_dir() / "faces" / "Tom_Cruise_avp_2014_4.jpg"
    root = tmp_path / "gallery"
    for name in ("John_Salley", "John_Simm"):
        (root / name).mkdir(parents=True)
        for k in [k for k, i in enumerate(identities) if i == name][1:3]:
            shutil.copy(paths[k], root / name / paths[k].name)
    (root / "stranger").mkdir()
    shutil.copy(photo, root / "stranger" / photo.name)
    g = fxplain.Gallery(model, root, cache_dir=tmp_path / "cache")
    assert g.identities == ("John_Salley", "John_Simm", "stranger") and len(g) == 5
    np.testing.assert_array_equal(g.embeddings[-1], model.embed(str(root / "stranger" / photo.name))[0])
    ranking = g.search(model.embed(paths[identities.index("John_Simm")])[0])
    assert ranking[0].identity == "John_Simm"


def test_a_wrapped_black_box_model_identifies_too(model, johns, held_out, gallery_items, tmp_path):
    """fxplain.wrap(dlib's embedding function): the same ranking, and black-box contrastive maps."""
    black_box = fxplain.wrap(lambda x: model.embed(x, batch_size=64), input_size=(150, 150),
                             threshold=model.threshold, metric="squared_euclidean", dtype="float32")
    probe = str(johns[2][held_out[4]])
    items = [item for item in gallery_items if item[0] in ("John_Simm", "John_Salley", "John_Savage")]
    r = fxplain.explain_identification(black_box, probe, items, top_k=2, cache_dir=tmp_path, **CHEAP)
    expected = fxplain.Gallery(model, items, cache_dir=False).search(model.embed(probe)[0])[:2]
    assert [c.identity for c in r.ranking] == [c.identity for c in expected]
    assert r.top.identity == "John_Simm"
    np.testing.assert_allclose([c.score for c in r.ranking], [c.score for c in expected], atol=1e-5)
    assert r.contrast.similarity.max() > 0 and r.model_hash == black_box.model_hash
    with pytest.raises(fxplain.InvalidInputError, match="core"):  # white-box methods need the core
        fxplain.explain_identification(black_box, probe, items, top_k=2, cache_dir=tmp_path, method="gradient",
                                       variant="net")
