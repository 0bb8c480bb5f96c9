"""Pairs lists: which faces a protocol compares, read from LFW's ``pairs.txt``, a CSV or a folder.

>>> pairs = fxplain.read_pairs("pairs.txt", root="lfw/")        # LFW's protocol file
>>> pairs = fxplain.read_pairs("audit.csv")                      # a,b[,same]
>>> pairs = fxplain.make_pairs("faces/", impostors=200, seed=0)  # one sub-folder per identity

A pairs list is a tuple of :class:`Pair`: two image files (photos or aligned
chips; the photo pipeline aligns photos when the pair is explained) and the
label when the protocol knows it. Every file is checked when the list is
read, so a protocol that names a missing file fails before any work starts,
with the pairs file and line number in the message.
"""

from __future__ import annotations

import csv
import io
import itertools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._util.errors import FxplainError, InvalidInputError
from .._util.files import read_untrusted_file
from .._util.validation import check_seed

#: Image files make_pairs takes from an identity folder.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
#: A pairs file is text: far below this (LFW's pairs.txt is 100 kB).
MAX_PAIRS_FILE_BYTES = 64 << 20
_TRUE = {"1", "true", "yes", "same", "genuine", "match", "y", "t"}
_FALSE = {"0", "false", "no", "different", "impostor", "non-match", "nonmatch", "n", "f", "-1"}


@dataclass(frozen=True)
class Pair:
    """Two face images of a protocol.

    Attributes
    ----------
    a, b : str
        Paths of the two image files (photos or aligned chips).
    same : bool or None
        True for a genuine pair (same person), False for an impostor pair,
        None when the protocol does not say.
    """

    a: str
    b: str
    same: bool | None = None

    @property
    def label(self) -> str | None:
        """``"same"``, ``"different"`` or None."""
        return None if self.same is None else ("same" if self.same else "different")


def read_pairs(path: str | os.PathLike, *, root: str | os.PathLike | None = None) -> tuple[Pair, ...]:
    """Read a pairs list: LFW's ``pairs.txt`` or a CSV file.

    Parameters
    ----------
    path
        LFW's ``pairs.txt`` (``pairsDevTest.txt`` ...): a header line (the
        number of pairs, or of folds and pairs per fold), then lines
        ``name i j`` (same person) and ``name1 i name2 j`` (different
        people), naming the files ``name/name_000i.jpg``. Or a CSV file
        (``.csv``): columns ``a,b`` and optionally ``same`` (1/0, true/false,
        same/different); a header line naming them is optional.
    root
        Folder the image paths are relative to. Default: LFW's files are in
        the folder of ``pairs.txt``; CSV paths are relative to the CSV file.

    Returns
    -------
    tuple of Pair
        In file order. Every file must exist.

    Raises
    ------
    InvalidInputError
        A malformed line or a missing image, naming the file and line number.
    """
    path = Path(path)
    if not path.exists():
        raise InvalidInputError(f"pairs file not found: {path}")
    text = _read_text(path)
    base = Path(root) if root is not None else path.parent
    if root is not None and not base.is_dir():
        raise InvalidInputError(f"image root of {path} is not a folder: {base}")
    if path.suffix.lower() == ".csv":
        pairs = _read_csv(text, path, base)
    else:
        pairs = _read_lfw(text, path, base)
    if not pairs:
        raise InvalidInputError(f"{path} lists no pairs")
    return tuple(pairs)


def make_pairs(identity_folder: str | os.PathLike, *, impostors: int = 0, seed: int = 0) -> tuple[Pair, ...]:
    """All genuine pairs of an identity folder plus ``impostors`` seeded impostor pairs.

    ``identity_folder`` holds one sub-folder per identity with its images
    (photos or chips). Genuine pairs: every two images of an identity, in
    sorted order. Impostor pairs: ``impostors`` distinct pairs of images of
    two different identities, drawn with ``seed`` (the same folder and seed
    give the same list).
    """
    root = Path(identity_folder)
    if not root.is_dir():
        raise InvalidInputError(f"identity folder not found: {root}")
    if isinstance(impostors, bool) or not isinstance(impostors, (int, np.integer)) or impostors < 0:
        raise InvalidInputError(f"impostors must be a non-negative integer, got {impostors!r}")
    seed = check_seed(seed)
    identities = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        images = sorted(str(p) for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if images:
            identities[folder.name] = images
    if not identities:
        raise InvalidInputError(f"{root} has no identity sub-folders with images ({', '.join(IMAGE_SUFFIXES)})")
    pairs = [Pair(a, b, True) for images in identities.values() for a, b in itertools.combinations(images, 2)]
    labelled = [(name, image) for name, images in identities.items() for image in images]
    possible = sum(len(x) * len(y) for x, y in itertools.combinations(identities.values(), 2))
    if impostors > possible:
        raise InvalidInputError(f"{root} allows {possible} impostor pairs, {impostors} asked for")
    rng = np.random.default_rng(seed)
    chosen: set[tuple[int, int]] = set()
    while len(chosen) < impostors:
        i, j = (int(v) for v in rng.integers(0, len(labelled), 2))
        if labelled[i][0] != labelled[j][0] and (i, j) not in chosen and (j, i) not in chosen:
            chosen.add((i, j))
            pairs.append(Pair(labelled[i][1], labelled[j][1], False))
    if not pairs:
        raise InvalidInputError(f"{root} gives no pairs: every identity has one image and impostors=0")
    return tuple(pairs)


def as_pairs(pairs) -> tuple[Pair, ...]:
    """``pairs`` as Pairs: a pairs list, or ``(a, b)`` / ``(a, b, same)`` tuples of file paths."""
    if isinstance(pairs, (str, os.PathLike)):
        return read_pairs(pairs)
    try:
        items = list(pairs)
    except TypeError:
        raise InvalidInputError(f"pairs must be a pairs list or an iterable of (a, b[, same]), "
                                f"got {type(pairs).__name__}") from None
    out = []
    for k, item in enumerate(items):
        if isinstance(item, Pair):
            out.append(item)
            continue
        if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
            raise InvalidInputError(f"pair {k} must be (a, b) or (a, b, same), got {item!r:.80}")
        a, b, same = (*item, None) if len(item) == 2 else item
        for side in (a, b):
            if not isinstance(side, (str, os.PathLike)):
                raise InvalidInputError(f"pair {k}: a stored run reads image files; got {type(side).__name__} "
                                        "(save arrays as image files first, or use Explainer.explain_pairs)")
        if same is not None and not isinstance(same, (bool, np.bool_)):
            raise InvalidInputError(f"pair {k}: same must be True, False or None, got {same!r}")
        out.append(Pair(str(a), str(b), None if same is None else bool(same)))
    if not out:
        raise InvalidInputError("pairs must hold at least one pair")
    return tuple(out)


# ---- readers -----------------------------------------------------------------


def _read_text(path: Path) -> str:
    try:
        raw = read_untrusted_file(path, "pairs file", limit=MAX_PAIRS_FILE_BYTES)
    except FxplainError as exc:  # not a regular file, too large, unreadable
        raise InvalidInputError(str(exc)) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"{path} is not UTF-8 text (byte {exc.start})") from None


def _image(base: Path, name: str, where: str) -> str:
    image = Path(name) if Path(name).is_absolute() else base / name
    if not image.is_file():
        raise InvalidInputError(f"{where}: image not found: {image}")
    return str(image)


def _lfw_file(base: Path, name: str, number: str, where: str) -> str:
    if not number.isdigit() or int(number) < 1:
        raise InvalidInputError(f"{where}: image number must be a positive integer, got {number!r}")
    return _image(base, f"{name}/{name}_{int(number):04d}.jpg", where)


def _read_lfw(text: str, path: Path, base: Path) -> list[Pair]:
    lines = text.splitlines()
    pairs = []
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        where = f"{path}, line {number}"
        if not fields:
            continue
        if number == 1 and all(f.isdigit() for f in fields) and len(fields) <= 2:
            continue  # the header: pair count, or folds and pairs per fold
        if len(fields) == 3:
            pairs.append(Pair(_lfw_file(base, fields[0], fields[1], where),
                              _lfw_file(base, fields[0], fields[2], where), True))
        elif len(fields) == 4:
            pairs.append(Pair(_lfw_file(base, fields[0], fields[1], where),
                              _lfw_file(base, fields[2], fields[3], where), False))
        else:
            raise InvalidInputError(f"{where}: expected 'name i j' or 'name1 i name2 j' (LFW pairs), "
                                    f"got {len(fields)} fields: {line.strip()[:80]!r}")
    return pairs


def _read_csv(text: str, path: Path, base: Path) -> list[Pair]:
    rows = list(csv.reader(io.StringIO(text)))
    pairs = []
    for number, row in enumerate(rows, start=1):
        where = f"{path}, line {number}"
        row = [cell.strip() for cell in row]
        if not row or all(not cell for cell in row):
            continue
        if number == 1 and [c.lower() for c in row[:2]] == ["a", "b"]:
            continue  # the header
        if len(row) not in (2, 3) or not row[0] or not row[1]:
            raise InvalidInputError(f"{where}: expected 'a,b' or 'a,b,same', got {','.join(row)[:80]!r}")
        same = None
        if len(row) == 3 and row[2] != "":
            value = row[2].lower()
            if value not in _TRUE | _FALSE:
                raise InvalidInputError(f"{where}: 'same' must be 1/0, true/false or same/different, "
                                        f"got {row[2]!r}")
            same = value in _TRUE
        pairs.append(Pair(_image(base, row[0], where), _image(base, row[1], where), same))
    return pairs
