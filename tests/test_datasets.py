"""Tests for fxplain.datasets (the johns face chips from Debian's libdlib19.1)."""

from __future__ import annotations

import collections
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from fxplain import datasets
from fxplain._util.errors import DataUnavailableError

DATA = Path(__file__).resolve().parent / "data"
CHECKSUMS = Path(datasets.__file__).resolve().parent / "data" / "johns_sha256.txt"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch):
    """Start every test with no FXPLAIN_JOHNS_DIR and an empty verification cache."""
    monkeypatch.delenv("FXPLAIN_JOHNS_DIR", raising=False)
    datasets._VERIFIED.clear()
    yield
    datasets._VERIFIED.clear()


@pytest.fixture(scope="module")
def real_dir() -> Path:
    """A verified johns folder (system copy or cache; fetched if needed)."""
    return datasets.johns_dir(fetch=True)


def test_files_in_canonical_order(real_dir):
    files = datasets.johns_files()
    assert len(files) == 55
    rel = [p.relative_to(real_dir).as_posix() for p in files]
    assert rel == DATA.joinpath("johns_files.txt").read_text().split()
    assert rel == sorted(rel)
    assert all(p.is_file() for p in files)


def test_identities_five_by_eleven(real_dir):
    ids = datasets.johns_identities()
    counts = collections.Counter(ids)
    assert len(counts) == 5 and set(counts.values()) == {11}
    assert ids == [p.parent.name for p in datasets.johns_files()]


def test_checksums_verified(real_dir):
    expected = {rel: digest for digest, rel in
                (line.split() for line in CHECKSUMS.read_text().splitlines())}
    for path in datasets.johns_files():
        rel = path.relative_to(real_dir).as_posix()
        assert hashlib.sha256(path.read_bytes()).hexdigest() == expected[rel]
    assert datasets._verify(real_dir)


def test_load_johns(real_dir):
    images, ids, paths = datasets.load_johns()
    assert images.shape == (55, 150, 150, 3) and images.dtype == np.uint8
    assert ids == datasets.johns_identities() and paths == datasets.johns_files()
    assert images.std() > 10  # real pictures, not blank arrays


def test_pairs(real_dir):
    pairs, same = datasets.johns_pairs()
    assert len(pairs) == 1485 and same.shape == (1485,) and same.dtype == bool
    assert int(same.sum()) == 275
    assert all(i < j for i, j in pairs) and len(set(pairs)) == 1485
    ids = datasets.johns_identities()
    assert all(s == (ids[i] == ids[j]) for (i, j), s in zip(pairs, same))


def test_examples_dir_has_faces(real_dir):
    examples = datasets.examples_dir()
    assert examples / "johns" == real_dir
    assert (examples / "faces" / "dogs.jpg").is_file()
    assert (examples / "faces" / "training_with_face_landmarks.xml").is_file()


def test_env_dir_used_when_valid(real_dir, tmp_path, monkeypatch):
    copy = tmp_path / "johns"
    shutil.copytree(real_dir, copy)
    monkeypatch.setenv("FXPLAIN_JOHNS_DIR", str(copy))
    assert datasets.johns_dir(fetch=False) == copy


def test_empty_env_dir_falls_through(real_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("FXPLAIN_JOHNS_DIR", str(tmp_path))
    found = datasets.johns_dir(fetch=False)
    assert found != tmp_path and found == real_dir
    assert datasets._VERIFIED[tmp_path.resolve()] is False


def test_corrupted_copy_rejected(real_dir, tmp_path, monkeypatch):
    copy = tmp_path / "johns"
    shutil.copytree(real_dir, copy)
    victim = copy / DATA.joinpath("johns_files.txt").read_text().split()[17]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    monkeypatch.setenv("FXPLAIN_JOHNS_DIR", str(copy))

    assert datasets.johns_dir(fetch=False) == real_dir  # falls through

    # With no other source, fetch=False must raise instead of returning the bad copy.
    datasets._VERIFIED.clear()
    monkeypatch.setattr(datasets, "_SYSTEM_DIR", tmp_path / "system" / "johns")
    monkeypatch.setenv("FXPLAIN_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(DataUnavailableError, match="fetch_johns"):
        datasets.johns_dir(fetch=False)
    with pytest.raises(DataUnavailableError):
        datasets.johns_files(fetch=False)


def test_fetch_replaces_corrupt_cache(real_dir, tmp_path, monkeypatch, capfd):
    """Real download into an empty cache that holds a corrupt partial copy."""
    cache = tmp_path / "cache"
    bad = cache / "libdlib19.1" / "examples" / "johns" / "John_Simm"
    bad.mkdir(parents=True)
    (bad / "junk.jpg").write_bytes(b"not a jpeg")
    monkeypatch.setenv("FXPLAIN_CACHE_DIR", str(cache))
    monkeypatch.setattr(datasets, "_SYSTEM_DIR", tmp_path / "system" / "johns")

    johns = datasets.fetch_johns()
    assert capfd.readouterr() == ("", "")
    assert johns == cache / "libdlib19.1" / "examples" / "johns"
    assert not (bad / "junk.jpg").exists()
    assert sorted(p.name for p in cache.iterdir()) == ["libdlib19.1"]  # no temp leftovers
    assert (cache / "libdlib19.1" / "examples" / "faces" / "dogs.jpg").is_file()
    datasets._VERIFIED.clear()
    assert datasets.johns_dir(fetch=False) == johns
    assert datasets.examples_dir(fetch=False) == johns.parent


@pytest.fixture
def fake_apt(tmp_path, monkeypatch):
    """Put an `apt-get` on PATH whose downloads fail until `apt-get update` ran (empty lists)."""
    real = shutil.which("apt-get")
    bin_dir, log = tmp_path / "bin", tmp_path / "apt.log"
    bin_dir.mkdir()
    script = bin_dir / "apt-get"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> "{log}"\n'
        f'if [ "$1" = update ]; then touch "{tmp_path}/updated"; exit 0; fi\n'
        f'if [ ! -e "{tmp_path}/updated" ]; then\n'
        '  echo "E: Unable to locate package $2" >&2; exit 100; fi\n'
        f'exec "{real}" "$@"\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{Path(real).parent}:/usr/bin:/bin")
    monkeypatch.setenv("FXPLAIN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(datasets, "_SYSTEM_DIR", tmp_path / "system" / "johns")
    return log


def test_empty_apt_lists_non_root_raises(fake_apt, monkeypatch):
    monkeypatch.setattr(datasets.os, "geteuid", lambda: 1000)
    with pytest.raises(DataUnavailableError, match="apt-get update"):
        datasets.johns_dir(fetch=True)
    assert fake_apt.read_text().split("\n")[:-1] == ["download libdlib19.1"]
    cache = Path(datasets.cache_dir())
    assert list(cache.iterdir()) == []  # the temp dir was cleaned up


def test_empty_apt_lists_root_raises_without_updating(fake_apt, monkeypatch, tmp_path):
    """Library code never runs `apt-get update`, even as root: it names the command (scripts/setup.sh runs it)."""
    monkeypatch.setattr(datasets.os, "geteuid", lambda: 0)
    lists = tmp_path / "lists"
    lists.mkdir()
    monkeypatch.setattr(datasets, "_APT_LISTS", lists)  # no *_Packages files: a fresh container
    with pytest.raises(DataUnavailableError, match=r"package lists are missing.*sudo apt-get update"):
        datasets.johns_dir(fetch=True)
    assert fake_apt.read_text().split("\n")[:-1] == ["download libdlib19.1"]
    assert list(Path(datasets.cache_dir()).iterdir()) == []
