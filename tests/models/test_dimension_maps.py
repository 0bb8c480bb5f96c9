"""model.dimension_maps(image, method="occlusion"): every dimension's occlusion map from one sweep of patches."""

from __future__ import annotations

import numpy as np
import pytest

import fxplain
from fxplain.models.dimension_occlusion import patch_rects
from fxplain.runtime import NetworkSpec


@pytest.fixture(scope="module")
def tiny():
    """A small random network on 32x32 chips: conv -> relu -> conv(stride 2) -> relu -> dense (6-d)."""
    rng = np.random.default_rng(0)
    spec = NetworkSpec((3, 32, 32), np.full(3, 128.0, np.float32), np.full(3, 1 / 64, np.float32))
    x = spec.add("conv", 0, weight=rng.standard_normal((4, 3, 3, 3)).astype(np.float32) * 0.3,
                 bias=np.zeros(4, np.float32), stride=(1, 1), padding=(1, 1))
    x = spec.add("relu", x)
    x = spec.add("conv", x, weight=rng.standard_normal((4, 4, 3, 3)).astype(np.float32) * 0.3,
                 bias=np.zeros(4, np.float32), stride=(2, 2), padding=(1, 1))
    x = spec.add("relu", x)
    spec.add("dense", x, weight=rng.standard_normal((6, 4 * 16 * 16)).astype(np.float32) * 0.05, bias=None)
    return fxplain.FaceModel(spec, name="tiny", metric="cosine", threshold=0.5)


def _brute_force(model, image, patch, stride):
    """The definition, pixel by pixel: mean |Δf_k| over the patches covering each pixel, normalised per k."""
    h, w = image.shape[:2]
    fill = image.reshape(-1, 3).mean(axis=0)
    base = model.embed(image[None])[0].astype(np.float64)
    total = np.zeros((model.embedding_size, h, w))
    hits = np.zeros((h, w))
    for top, left, bottom, right in patch_rects((h, w), patch, stride):
        occluded = image.copy()
        occluded[top:bottom, left:right] = fill
        change = np.abs(model.embed(occluded[None])[0] - base)
        total[:, top:bottom, left:right] += change[:, None, None]
        hits[top:bottom, left:right] += 1
    maps = total / hits
    return maps / maps.reshape(len(maps), -1).sum(axis=1)[:, None, None]


def test_occlusion_maps_are_the_definition(tiny):
    image = np.random.default_rng(1).uniform(0, 255, (32, 32, 3)).astype(np.float32)
    for patch, stride in ((8, 4), (5, 3)):
        got = tiny.dimension_maps(image, method="occlusion", patch=patch, stride=stride, batch_size=7)
        np.testing.assert_allclose(got, _brute_force(tiny, image, patch, stride), rtol=1e-4, atol=1e-7)
    assert sorted({tuple(r[2:] - r[:2]) for r in patch_rects((32, 32), 5, 3)}) == [(5, 5)]


def test_dlib_occlusion_maps_agree_with_its_gradient_maps(model, johns):
    """Two views of one model's per-dimension sensitivity: rank correlation 0.61 on average here (measured)."""
    image = johns[0][0]
    occlusion = model.dimension_maps(image, method="occlusion")
    gradient = model.dimension_maps(image)
    assert occlusion.shape == gradient.shape == (128, 150, 150) and occlusion.min() >= 0
    np.testing.assert_allclose(occlusion.reshape(128, -1).sum(axis=1), 1.0, rtol=1e-4)

    def ranks(a):
        return np.argsort(np.argsort(a.ravel()))

    correlation = [np.corrcoef(ranks(occlusion[k]), ranks(gradient[k]))[0, 1] for k in range(0, 128, 4)]
    assert np.mean(correlation) > 0.4


def test_bad_arguments(tiny):
    image = np.zeros((32, 32, 3), np.uint8)
    for kwargs in ({"method": "lime"}, {"method": "occlusion", "patch": 0}, {"method": "occlusion", "patch": 40},
                   {"method": "occlusion", "stride": -1}, {"patch": 8}):
        with pytest.raises(fxplain.InvalidInputError):
            tiny.dimension_maps(image, **kwargs)
