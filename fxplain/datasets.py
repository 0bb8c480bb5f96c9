"""The ``johns`` face chips: 55 aligned 150x150 faces of 5 people.

The chips (5 identities x 11 images) ship with dlib's example programs in
Debian bookworm's binary package ``libdlib19.1`` (19.24+dfsg-1), under
``usr/share/doc/libdlib19.1/examples/johns/<Name>/*.jpg``. They are not
copied into fxplain; this module finds them, and if needed downloads the
package with ``apt-get download`` and unpacks its ``examples/`` folder (which
also holds ``faces/``: group photos, landmark XML files, a dog photo) into
fxplain's cache.

Sources are tried in this order, and one counts only if all 55 files are
present with the SHA-256 sums listed in ``fxplain/data/johns_sha256.txt``:

1. the folder named by the environment variable ``FXPLAIN_JOHNS_DIR``;
2. ``/usr/share/doc/libdlib19.1/examples/johns`` (package installed);
3. ``<cache>/libdlib19.1/examples/johns``, where ``<cache>`` is
   ``FXPLAIN_CACHE_DIR`` or ``~/.cache/fxplain``.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ._util.errors import DataUnavailableError

PACKAGE = "libdlib19.1"
"""Debian binary package that ships the chips."""

N_FILES = 55
IMAGE_SHAPE = (150, 150, 3)

_SYSTEM_DIR = Path("/usr/share/doc") / PACKAGE / "examples" / "johns"
_CHECKSUMS = Path(__file__).resolve().parent / "data" / "johns_sha256.txt"
_ENV_DIR = "FXPLAIN_JOHNS_DIR"
_ENV_CACHE = "FXPLAIN_CACHE_DIR"

#: Verification results, keyed by resolved folder: each folder is hashed once per process.
_VERIFIED: dict[Path, bool] = {}
#: Where apt keeps its package lists; empty on a fresh container until ``apt-get update`` ran.
_APT_LISTS = Path("/var/lib/apt/lists")

_HINT = (
    f"Alternatively install the chips yourself and set {_ENV_DIR} to the folder "
    "holding johns/<Name>/*.jpg."
)


@functools.cache
def _expected() -> tuple[tuple[str, str], ...]:
    """Pairs (relative path ``<Name>/<file>.jpg``, SHA-256), in canonical (sorted) order."""
    rows = (line.split() for line in _CHECKSUMS.read_text().splitlines() if line.strip())
    return tuple(sorted((rel, digest) for digest, rel in rows))


def _verify(folder: Path) -> bool:
    """Return True if ``folder`` holds all 55 chips with the expected checksums."""
    key = folder.resolve()
    if key not in _VERIFIED:
        _VERIFIED[key] = all(
            (folder / rel).is_file()
            and hashlib.sha256((folder / rel).read_bytes()).hexdigest() == digest
            for rel, digest in _expected())
    return _VERIFIED[key]


def cache_dir() -> Path:
    """fxplain's cache folder: ``FXPLAIN_CACHE_DIR``, else ``~/.cache/fxplain`` (faces, default decoders)."""
    return Path(os.environ.get(_ENV_CACHE) or Path.home() / ".cache" / "fxplain").expanduser()


def _cache_johns() -> Path:
    return cache_dir() / PACKAGE / "examples" / "johns"


def _run(args: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    """Run a command quietly; turn a missing program or a timeout into DataUnavailableError."""
    try:
        return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                              check=False)
    except FileNotFoundError as exc:
        raise DataUnavailableError(
            f"`{args[0]}` was not found: fetching the johns chips needs Debian's apt-get and "
            f"dpkg-deb (package {PACKAGE}). {_HINT}") from exc
    except subprocess.TimeoutExpired as exc:
        raise DataUnavailableError(
            f"`{' '.join(args)}` timed out after {timeout:.0f} s; check the network and "
            f"retry. {_HINT}") from exc


def _apt_lists_missing() -> bool:
    """Whether apt has no package lists (a fresh container before any ``apt-get update``)."""
    try:
        return not any(_APT_LISTS.glob("*_Packages*"))
    except OSError:
        return True


def _download_deb(workdir: Path) -> Path:
    """Download the package's .deb into ``workdir`` and return its path.

    ``apt-get download`` needs no root, but it needs apt's package lists.
    fxplain never changes the system to get them: when they are missing it
    says which command to run (``scripts/setup.sh`` runs it when it is root).
    """
    proc = _run(["apt-get", "download", PACKAGE], workdir, timeout=600)
    debs = sorted(workdir.glob("*.deb"))
    if proc.returncode == 0 and debs:
        return debs[0]
    detail = " / ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:]) or "no .deb produced"
    if _apt_lists_missing() or "unable to locate package" in detail.lower():
        raise DataUnavailableError(
            f"`apt-get download {PACKAGE}` found no package ({detail}): apt's package lists are "
            f"missing or out of date. Run `sudo apt-get update` (or `apt-get update` as root; "
            f"`bash scripts/setup.sh` does it when run as root and the lists are empty), then "
            f"retry; fxplain does not run it itself. {_HINT}")
    raise DataUnavailableError(
        f"`apt-get download {PACKAGE}` failed ({detail}). Check the network and that Debian "
        f"bookworm's main archive is in the apt sources (if the package lists are old, run "
        f"`sudo apt-get update`), then retry. {_HINT}")


def _fetch_into_cache() -> Path:
    """Download and unpack the package's ``examples/`` into the cache, atomically."""
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / PACKAGE
    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=cache) as tmp:
        tmp = Path(tmp)
        deb = _download_deb(tmp)
        proc = _run(["dpkg-deb", "-x", str(deb), str(tmp / "root")], tmp, timeout=300)
        doc = tmp / "root" / "usr" / "share" / "doc" / PACKAGE
        if proc.returncode != 0 or not (doc / "examples" / "johns").is_dir():
            raise DataUnavailableError(
                f"Could not unpack {deb.name} ({proc.stderr.strip() or 'no examples/johns in it'}). "
                f"{_HINT}")
        staged = tmp / PACKAGE
        staged.mkdir()
        (doc / "examples").rename(staged / "examples")
        for name in ("copyright", "changelog.Debian.gz"):  # keep the licence next to the data
            if (doc / name).is_file():
                shutil.copy2(doc / name, staged / name)
        if not _verify(staged / "examples" / "johns"):
            raise DataUnavailableError(
                f"The johns chips in the downloaded {deb.name} do not match the checksums in "
                f"{_CHECKSUMS}; the package version may differ from 19.24+dfsg-1. {_HINT}")
        if target.exists():  # an old or corrupt copy: move it aside, it is deleted with tmp
            target.rename(tmp / "old")
        try:
            staged.rename(target)
        except OSError:  # another process installed a copy meanwhile
            _VERIFIED.pop(_cache_johns().resolve(), None)
            if not _verify(_cache_johns()):
                raise
    johns = _cache_johns()
    _VERIFIED[johns.resolve()] = True
    return johns


def _candidates() -> list[Path]:
    """Johns folders to try, in order: $FXPLAIN_JOHNS_DIR, the system folder, the cache."""
    env = os.environ.get(_ENV_DIR)
    return ([Path(env).expanduser()] if env else []) + [_SYSTEM_DIR, _cache_johns()]


def _find(candidates: list[Path], fetch: bool) -> Path:
    for folder in candidates:
        if _verify(folder):
            return folder
    if not fetch:
        tried = ", ".join(str(c) for c in _candidates())
        raise DataUnavailableError(
            f"The johns chips were not found (tried {tried}). Call "
            f"fxplain.datasets.fetch_johns() or pass fetch=True to download package {PACKAGE} "
            f"into {cache_dir()}. {_HINT}")
    return _fetch_into_cache()


def johns_dir(fetch: bool = True) -> Path:
    """Return the folder holding the johns chips as ``<Name>/*.jpg``.

    Parameters
    ----------
    fetch : bool, optional
        If no verified copy is found, download package ``libdlib19.1`` with
        ``apt-get download`` and unpack it into the cache (default True).

    Returns
    -------
    pathlib.Path
        The first of ``$FXPLAIN_JOHNS_DIR``, the system documentation folder and
        the cache that holds all 55 files with matching SHA-256 sums.

    Raises
    ------
    DataUnavailableError
        If no verified copy exists and ``fetch`` is False, or fetching failed.
    """
    return _find(_candidates(), fetch)


def examples_dir(fetch: bool = True) -> Path:
    """Return the ``examples/`` folder of package ``libdlib19.1``.

    It holds ``johns/`` and ``faces/`` (group photos, landmark XML files, a dog
    photo). The parent of ``$FXPLAIN_JOHNS_DIR`` is used only if it also has a
    ``faces/`` folder; otherwise the system folder or the cache is used.

    Parameters
    ----------
    fetch : bool, optional
        Download the package into the cache if needed (default True).

    Returns
    -------
    pathlib.Path
        Parent folder of a verified ``johns/`` folder.

    Raises
    ------
    DataUnavailableError
        If no copy exists and ``fetch`` is False, or fetching failed.
    """
    candidates = [c for c in _candidates() if (c.parent / "faces").is_dir()]
    return _find(candidates, fetch).parent


def fetch_johns() -> Path:
    """Make sure the cache holds a verified copy of the package's ``examples/``.

    Downloads and unpacks ``libdlib19.1`` into ``<cache>/libdlib19.1`` unless a
    verified copy is already there (a corrupt copy is replaced). Prints nothing.

    Returns
    -------
    pathlib.Path
        The cached ``johns`` folder.

    Raises
    ------
    DataUnavailableError
        If the download, unpacking or verification failed.
    """
    johns = _cache_johns()
    return johns if _verify(johns) else _fetch_into_cache()


def johns_files(fetch: bool = True) -> list[Path]:
    """Return the 55 chip files in canonical order (sorted ``<Name>/<file>.jpg``).

    Parameters
    ----------
    fetch : bool, optional
        Download the package into the cache if needed (default True).

    Returns
    -------
    list of pathlib.Path
    """
    folder = johns_dir(fetch)
    return [folder / rel for rel, _ in _expected()]


def johns_identities(fetch: bool = True) -> list[str]:
    """Return the identity (folder name, e.g. ``"John_Salley"``) of each file.

    Parameters
    ----------
    fetch : bool, optional
        Download the package into the cache if needed (default True).

    Returns
    -------
    list of str
        One name per file, in the order of :func:`johns_files`.
    """
    return [path.parent.name for path in johns_files(fetch)]


def load_johns(fetch: bool = True) -> tuple[np.ndarray, list[str], list[Path]]:
    """Load the 55 chips as RGB images.

    Parameters
    ----------
    fetch : bool, optional
        Download the package into the cache if needed (default True).

    Returns
    -------
    images : numpy.ndarray
        ``uint8`` array of shape ``(55, 150, 150, 3)``, decoded with Pillow.
    identities : list of str
        Identity of each image.
    paths : list of pathlib.Path
        File of each image.
    """
    from PIL import Image

    paths = johns_files(fetch)
    arrays = []
    for path in paths:
        with Image.open(path) as im:
            arrays.append(np.asarray(im.convert("RGB"), dtype=np.uint8))
    return np.stack(arrays), [path.parent.name for path in paths], paths


def johns_pairs(fetch: bool = True) -> tuple[list[tuple[int, int]], np.ndarray]:
    """Return all index pairs ``i < j`` of the chips and whether they match.

    Parameters
    ----------
    fetch : bool, optional
        Download the package into the cache if needed (default True).

    Returns
    -------
    pairs : list of tuple of int
        The 1,485 pairs ``(i, j)``, ``i < j``, in lexicographic order.
    same : numpy.ndarray
        ``bool`` array, True where both images show the same person (275 pairs).
    """
    ids = johns_identities(fetch)
    pairs = list(itertools.combinations(range(len(ids)), 2))
    same = np.array([ids[i] == ids[j] for i, j in pairs], dtype=bool)
    return pairs, same
