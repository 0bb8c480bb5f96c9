"""Dataset-level region maps: the atlas of which region each feature dimension encodes."""

from __future__ import annotations

import numpy as np
import pytest

import fxplain
from fxplain.models.regions import face_regions
from fxplain.reconstruction import ATLAS_REGIONS, Decoder, RegionAtlas, decoder_spec
from fxplain.reconstruction.atlas import region_labels


def test_region_labels_partition_the_chip():
    labels = region_labels((150, 150))
    assert set(np.unique(labels)) == set(range(len(ATLAS_REGIONS)))
    _, left, bottom, right = face_regions((150, 150))["mouth"]
    assert np.all(labels[bottom - 2, left + 2:right - 2] == ATLAS_REGIONS.index("mouth"))
    assert labels[0, 0] == ATLAS_REGIONS.index("background")


def test_atlas_names_the_region_each_dimension_concentrates_in():
    labels = region_labels((40, 40))
    maps = np.ones((3, 40, 40))
    maps[0] = labels == ATLAS_REGIONS.index("mouth")
    maps[1] = labels == ATLAS_REGIONS.index("background")
    maps[2][labels == ATLAS_REGIONS.index("eyes")] = 5.0  # most mass per pixel on the eyes
    atlas = RegionAtlas.from_maps([maps, maps * 2.0])  # scale does not matter: maps are normalised
    assert atlas.faces == 2 and atlas.regions == ["mouth", "background", "eyes"]
    np.testing.assert_allclose(atlas.maps.reshape(3, -1).sum(axis=1), 1.0, rtol=1e-6)
    mouth_share = np.mean(labels == ATLAS_REGIONS.index("mouth"))
    assert atlas.enrichment[0, ATLAS_REGIONS.index("mouth")] == pytest.approx(1 / mouth_share)
    assert atlas.counts() == {"eyes": 1, "nose": 0, "mouth": 1, "rest of face": 0, "background": 1}
    # compared with the other dimensions: 0 is the mouth one, 2 the eyes one (1 has no facial mass to compare)
    assert atlas.distinctive[0] == "mouth" and atlas.distinctive[2] == "eyes"
    assert sum(atlas.counts(distinctive=True).values()) == 3 and atlas.counts(distinctive=True)["background"] == 0
    assert atlas.face_mass()[1] == 0.0
    fig = atlas.plot(columns=2)
    assert len([ax for ax in fig.axes if ax.images]) == 3
    for bad in ([], [np.full((3, 40, 40), np.nan)], [-maps], [maps, maps[:2]]):
        with pytest.raises(fxplain.InvalidInputError):
            RegionAtlas.from_maps(bad)
    with pytest.raises(fxplain.InvalidInputError, match="indices"):
        atlas.plot([3])


def test_decoder_atlas_averages_its_dimension_maps():
    rng = np.random.default_rng(0)
    spec = decoder_spec(6, (24, 24), widths=(6, 5, 4), start=3, embedding_std=rng.uniform(0.05, 0.2, 6), seed=1)
    decoder = Decoder(spec, model_hash="test")
    emb = rng.standard_normal((3, 6)).astype(np.float32) * 0.1
    atlas = decoder.region_atlas(emb)
    want = np.mean([decoder.dimension_maps(e) for e in emb], axis=0)
    np.testing.assert_allclose(atlas.maps, want, atol=1e-6)
    np.testing.assert_allclose(decoder.average_region_maps(emb), want, atol=1e-6)
    assert atlas.backdrop.shape == (24, 24, 3) and atlas.source == "decoder" and len(atlas.regions) == 6
