"""The plugin's small test set: a few labelled pairs drawn from a dataset folder or a pairs file.

A team's CI cannot explain thousands of pairs on every push, so the plugin
draws a handful — half genuine, half impostor, with a fixed seed so every
run checks the same pairs — from whatever ``--fxplain-data`` names.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._util.errors import InvalidInputError
from .._util.validation import check_positive_int, check_seed
from ..datasets import johns_dir
from ..protocols.pairs import IMAGE_SUFFIXES, Pair, make_pairs, read_pairs


def dataset_path(data: str | os.PathLike | None) -> Path:
    """The dataset the plugin works on: ``data`` (a folder or a pairs file), or the johns faces for None.

    Raises InvalidInputError when ``data`` names nothing that exists
    (the johns faces are fetched if needed: DataUnavailableError when that fails).
    """
    if data is None or str(data) == "johns":
        return johns_dir()
    path = Path(data).expanduser()
    if not path.exists():
        raise InvalidInputError(f"dataset not found: {path} (a folder of identity sub-folders or a pairs file)")
    return path


def choose_pairs(data: str | os.PathLike | None, n: int, seed: int = 0) -> tuple[Pair, ...]:
    """``n`` labelled pairs of the dataset: ``n // 2`` genuine and the rest impostor, drawn with ``seed``.

    ``data`` is a folder with one sub-folder of images per identity (as
    :func:`fxplain.make_pairs` reads), a pairs file (LFW ``pairs.txt`` or a
    CSV with a ``same`` column, as :func:`fxplain.read_pairs` reads), or None
    for the johns faces. The same dataset, ``n`` and ``seed`` give the same
    pairs, genuine ones first.
    """
    n = check_positive_int("pairs", n)
    seed = check_seed(seed)
    if n < 2:
        raise InvalidInputError(f"need at least 2 pairs (one genuine, one impostor), got {n}")
    path = dataset_path(data)
    n_genuine, n_impostor = n // 2, n - n // 2
    if path.is_dir():
        # make_pairs lists every genuine pair, but draws only the impostors asked for
        candidates = make_pairs(path, impostors=_impostors_available(path, n_impostor), seed=seed)
    else:
        candidates = read_pairs(path)
    genuine = [p for p in candidates if p.same is True]
    impostor = [p for p in candidates if p.same is False]
    if len(genuine) < n_genuine or len(impostor) < n_impostor:
        unlabelled = sum(p.same is None for p in candidates)
        raise InvalidInputError(f"{path}: cannot draw {n_genuine} genuine and {n_impostor} impostor pairs: it gives "
                                f"{len(genuine)} genuine, {len(impostor)} impostor"
                                + (f" and {unlabelled} unlabelled pairs" if unlabelled else " pairs"))
    rng = np.random.default_rng(seed)
    chosen = [genuine[k] for k in sorted(rng.choice(len(genuine), n_genuine, replace=False))]
    chosen += [impostor[k] for k in sorted(rng.choice(len(impostor), n_impostor, replace=False))]
    return tuple(chosen)


def _impostors_available(folder: Path, wanted: int) -> int:
    """``wanted``, or fewer when the folder has too few identities for that many impostor pairs."""
    sizes = [sum(1 for f in person.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
             for person in folder.iterdir() if person.is_dir()]
    possible = (sum(sizes) ** 2 - sum(s * s for s in sizes)) // 2
    return min(wanted, possible)
