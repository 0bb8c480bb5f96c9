"""Fixtures of the identification tests: a johns gallery with one chip per identity held out as a probe."""

from __future__ import annotations

import pytest

import fxplain


@pytest.fixture(scope="session")
def held_out(johns) -> list[int]:
    """The first chip of each johns identity: the probes, kept out of the gallery."""
    identities = johns[1]
    return [identities.index(name) for name in dict.fromkeys(identities)]


@pytest.fixture(scope="session")
def gallery_items(johns, held_out) -> list[tuple[str, str]]:
    """(identity, path) of the other 50 chips."""
    _, identities, paths = johns
    return [(identities[k], str(paths[k])) for k in range(len(paths)) if k not in held_out]


@pytest.fixture(scope="session")
def gallery_cache(tmp_path_factory):
    """A gallery cache of this test session (the user's own cache is never touched)."""
    return tmp_path_factory.mktemp("gallery-cache")


@pytest.fixture(scope="session")
def gallery(model, gallery_items, gallery_cache) -> fxplain.Gallery:
    return fxplain.Gallery(model, gallery_items, cache_dir=gallery_cache)
