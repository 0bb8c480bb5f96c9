"""What an explanation of a 1:N search holds, shows and saves: :class:`IdentificationExplanation`."""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._util.errors import InvalidInputError, ModelFormatError, ModelNotFoundError
from .._util.files import read_untrusted_file
from ..results import PairExplanation, _jsonable
from .gallery import COMBINE, Candidate

_FORMAT = "fxplain.IdentificationExplanation"
_VERSION = 1
_MAX_FILE_BYTES = 1 << 30
#: Why the contrast compares the two identities it compares.
REASONS = ("runner-up", "mate")
_FIXED_ARRAYS = ("probe", "contrast_similarity", "contrast_dissimilarity", "contrast_images")


@dataclass
class ContrastMaps:
    """Why the probe is closer to one gallery identity than to another, as maps on the probe.

    The contrast is ``c(x) = s(x, first) − s(x, second)`` for the probe
    image x (``first``, ``second`` the identities' embeddings the search
    used). Units are the method's, with the contrast in place of the pair
    score.

    Its fields: ``first`` and ``second`` (:class:`Candidate`), the rank-1
    identity and the runner-up (``reason="runner-up"``) or the true mate
    the caller named (``reason="mate"``, when it is not rank 1); ``score``,
    ``c`` of the intact probe, ``first.score − second.score`` (≥ 0);
    ``similarity`` and ``dissimilarity``, float32 ``(H, W)`` non-negative
    maps of the probe's pixels supporting ``first`` over ``second`` and
    ``second`` over ``first``; ``images``, float32 ``(2, H, W, 3)``, the
    representative chips of ``first`` and ``second`` (for plots; saved as
    uint8); ``extras``, the method's measurements (``contributions`` for the
    decomposing methods, path gaps, decoder weights).
    """

    first: Candidate
    second: Candidate
    reason: str
    score: float
    similarity: np.ndarray
    dissimilarity: np.ndarray
    images: np.ndarray
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def evidence(self) -> np.ndarray:
        """Signed map ``similarity − dissimilarity`` (positive supports ``first``)."""
        return self.similarity - self.dissimilarity


@dataclass
class IdentificationExplanation:
    """Why a face-recognition model ranked a gallery's identities as it did for a probe.

    Attributes
    ----------
    probe : numpy.ndarray
        float32 ``(H, W, 3)``: the probe's chip (saved as uint8).
    ranking : list of Candidate
        The ``top_k`` identities the model finds closest, best first: rank,
        identity, the model's score, decision against its threshold,
        distance and representative image.
    pairs : list of PairExplanation
        The probe (image A) against each ranked identity's representative
        image (image B), explained by the same method, parameters and seed.
    contrast : ContrastMaps
        Why the probe is closer to rank 1 than to rank 2 — or, with a
        ``mate`` that is not rank 1, than to the mate.
    threshold : float
        The model's decision threshold.
    combine : str
        How an identity's images were combined (``"mean"`` or ``"best"``).
    method, params, seed
        The method, its parameters (defaults included) and its seed.
    model_hash, model_name : str
        The model.
    gallery_identities, gallery_images : int
        The gallery's size.
    mate : str or None
        The true identity, when the caller named it.
    mate_rank : int or None
        Its rank among all identities.
    mate_score : float or None
        The model's score of the probe against it.
    seconds : float
        Wall time of the whole explanation (search, pairs, contrast).
    probe_source : dict or None
        The probe's file (``{"path", "sha256"}``) when it was given as a path.
    extras : dict
        ``score_kind`` and ``units`` of the maps.
    """

    probe: np.ndarray
    ranking: list[Candidate]
    pairs: list[PairExplanation]
    contrast: ContrastMaps
    threshold: float
    combine: str
    method: str
    params: dict[str, Any]
    seed: int
    model_hash: str
    model_name: str
    gallery_identities: int
    gallery_images: int
    mate: str | None = None
    mate_rank: int | None = None
    mate_score: float | None = None
    seconds: float = 0.0
    probe_source: dict | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def top(self) -> Candidate:
        """The rank-1 candidate."""
        return self.ranking[0]

    def __repr__(self) -> str:
        shown = ", ".join(f"{c.identity} {c.score:.4f}" for c in self.ranking[:3])
        more = ", ..." if len(self.ranking) > 3 else ""
        return (f"IdentificationExplanation(method={self.method!r}, combine={self.combine!r}, top {len(self.ranking)}"
                f" of {self.gallery_identities}: {shown}{more}; contrast {self.contrast.first.identity} vs "
                f"{self.contrast.second.identity} ({self.contrast.reason}))")

    def table(self) -> str:
        """The ranking as text lines: rank, identity, score, distance, decision, image."""
        lines = []
        for c in self.ranking:
            verdict = "match" if c.match else "no match"
            mark = "  <- mate" if c.identity == self.mate else ""
            lines.append(f"{c.rank:3d}. {c.identity}: score {c.score:.4f}, distance {c.distance:.4f} -> {verdict}"
                         f"  ({c.image or 'array'}){mark}")
        if self.mate is not None and self.mate_rank is not None and self.mate_rank > len(self.ranking):
            lines.append(f"  mate {self.mate}: rank {self.mate_rank}, score {self.mate_score:.4f}")
        return "\n".join(lines)

    # ---- display --------------------------------------------------------

    def plot(self, *, alpha: float = 0.6, figsize: tuple[float, float] | None = None):
        """The probe, the ranked gallery images and their pair maps, and the contrastive maps.

        See :func:`fxplain.identification.plot.plot_identification`; returns
        a :class:`matplotlib.figure.Figure`.
        """
        from .plot import plot_identification

        return plot_identification(self, alpha=alpha, figsize=figsize)

    def _repr_png_(self) -> bytes:
        fig = self.plot()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=72, bbox_inches="tight")
        return buffer.getvalue()

    # ---- persistence ----------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """Write the explanation to a file (``.fxi``): maps float32, images uint8, metadata JSON. No pickle.

        Each pair explanation is kept as the bytes of its own saved file
        (:meth:`PairExplanation.save`), checked again by :meth:`load`; a
        SHA-256 of all arrays sits in the metadata.
        """
        arrays = {"probe": _uint8(self.probe),
                  "contrast_similarity": np.ascontiguousarray(self.contrast.similarity, np.float32),
                  "contrast_dissimilarity": np.ascontiguousarray(self.contrast.dissimilarity, np.float32),
                  "contrast_images": _uint8(self.contrast.images)}
        with tempfile.TemporaryDirectory(prefix="fxplain-") as tmp:
            for k, pair in enumerate(self.pairs):
                pair.save(Path(tmp) / f"pair_{k}.npz")
                arrays[f"pair_{k}"] = np.frombuffer((Path(tmp) / f"pair_{k}.npz").read_bytes(), np.uint8)
        meta = {
            "format": _FORMAT, "version": _VERSION, "threshold": self.threshold, "combine": self.combine,
            "method": self.method, "params": _jsonable(self.params), "seed": self.seed,
            "model_hash": self.model_hash, "model_name": self.model_name,
            "gallery_identities": self.gallery_identities, "gallery_images": self.gallery_images,
            "mate": self.mate, "mate_rank": self.mate_rank, "mate_score": self.mate_score, "seconds": self.seconds,
            "probe_source": _jsonable(self.probe_source), "extras": _jsonable(self.extras),
            "ranking": [c.record() for c in self.ranking],
            "contrast": {"first": self.contrast.first.record(), "second": self.contrast.second.record(),
                         "reason": self.contrast.reason, "score": self.contrast.score,
                         "extras": _jsonable(self.contrast.extras)},
            "checksum": _checksum(arrays),
        }
        try:  # load refuses NaN and Infinity, so save never writes them
            text = json.dumps(meta, allow_nan=False)
        except ValueError as exc:
            raise InvalidInputError(f"cannot save the explanation: its metadata must be finite ({exc})") from None
        with open(path, "wb") as f:
            np.savez(f, **arrays, meta=np.array(text))

    @classmethod
    def load(cls, path: str | os.PathLike) -> IdentificationExplanation:
        """Read a file :meth:`save` wrote.

        The file is untrusted: it must be a regular file of at most 1 GiB
        holding exactly the saved arrays and metadata, every field of the
        expected type and consistent (ranks in order, decisions matching the
        threshold), the maps finite and non-negative, the arrays matching
        their checksum, and every pair a valid saved
        :class:`~fxplain.PairExplanation` of the same model. Anything else
        raises :class:`~fxplain.ModelFormatError`; a missing path, a
        directory or a FIFO raises :class:`~fxplain.InvalidInputError`.
        """
        path = Path(path)
        if not path.exists():
            raise InvalidInputError(f"identification file not found: {path}")
        try:
            raw = read_untrusted_file(path, "identification file", limit=_MAX_FILE_BYTES)
        except ModelNotFoundError as exc:  # a FIFO, a directory: not a file to read
            raise InvalidInputError(str(exc)) from None
        return cls.from_bytes(raw, path)

    @classmethod
    def from_bytes(cls, raw: bytes, name: str | os.PathLike = "<bytes>") -> IdentificationExplanation:
        """Read an explanation from the bytes of a saved file (same checks as :meth:`load`)."""
        path = Path(name)
        if not isinstance(raw, (bytes, bytearray, memoryview)):
            raise InvalidInputError(f"from_bytes expects bytes, got {type(raw).__name__}")
        if len(raw) > _MAX_FILE_BYTES:
            raise ModelFormatError(f"{path}: {len(raw)} bytes is larger than any saved identification")
        raw = bytes(raw)
        try:
            with zipfile.ZipFile(io.BytesIO(raw)) as archive:
                members = {info.filename: info.file_size for info in archive.infolist()}
            if sum(members.values()) > _MAX_FILE_BYTES:  # compressed members could expand without bound
                raise ModelFormatError(f"{path} expands to {sum(members.values())} bytes, more than an explanation")
            names = {m[:-4] for m in members if m.endswith(".npy")}
            pair_names = sorted((n for n in names if re.fullmatch(r"pair_[0-9]{1,4}", n)), key=lambda n: int(n[5:]))
            expected = set(_FIXED_ARRAYS) | {"meta"} | {f"pair_{k}" for k in range(len(pair_names))}
            if set(members) != {f"{n}.npy" for n in expected}:
                raise ModelFormatError(f"{path} is not a saved fxplain identification: it holds {sorted(members)}")
            with np.load(io.BytesIO(raw), allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]), parse_constant=_refuse_constant)
                arrays = {n: data[n] for n in expected - {"meta"}}
        except ModelFormatError:
            raise
        except Exception as exc:  # noqa: BLE001 - zipfile, numpy and json raise many types on damaged bytes
            raise ModelFormatError(f"{path} is not a saved fxplain identification: {type(exc).__name__}: "
                                   f"{exc}") from None
        _check_meta(meta, path, len(pair_names))
        _check_arrays(arrays, path)
        if meta["checksum"] != _checksum(arrays):
            raise ModelFormatError(f"{path}: the maps or images do not match the file's checksum (damaged file)")
        pairs = []
        for k in range(len(pair_names)):
            pair = PairExplanation.from_bytes(arrays[f"pair_{k}"].tobytes(), f"{path}:pair_{k}")
            if pair.model_hash != meta["model_hash"] or pair.images.shape[1:] != arrays["probe"].shape:
                raise ModelFormatError(f"{path}: pair {k} is of another model or image size than the file")
            pairs.append(pair)
        contrast = meta["contrast"]
        return cls(
            probe=arrays["probe"].astype(np.float32), ranking=[_candidate(r) for r in meta["ranking"]], pairs=pairs,
            contrast=ContrastMaps(first=_candidate(contrast["first"]), second=_candidate(contrast["second"]),
                                  reason=contrast["reason"], score=float(contrast["score"]),
                                  similarity=arrays["contrast_similarity"],
                                  dissimilarity=arrays["contrast_dissimilarity"],
                                  images=arrays["contrast_images"].astype(np.float32), extras=contrast["extras"]),
            threshold=float(meta["threshold"]), combine=meta["combine"], method=meta["method"],
            params=meta["params"], seed=meta["seed"], model_hash=meta["model_hash"],
            model_name=meta["model_name"], gallery_identities=meta["gallery_identities"],
            gallery_images=meta["gallery_images"], mate=meta["mate"], mate_rank=meta["mate_rank"],
            mate_score=None if meta["mate_score"] is None else float(meta["mate_score"]),
            seconds=float(meta["seconds"]), probe_source=meta["probe_source"], extras=meta["extras"])


def _uint8(images: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(images), 0, 255).astype(np.uint8)


def _candidate(record: dict) -> Candidate:
    return Candidate(rank=record["rank"], identity=record["identity"], score=float(record["score"]),
                     match=record["match"], distance=float(record["distance"]), image=record["image"],
                     image_index=record["image_index"], embedding=None)


def _refuse_constant(name: str) -> Any:
    raise ModelFormatError(f"JSON constant {name} is not allowed in a saved identification")


def _checksum(arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = arrays[name]
        array = np.ascontiguousarray(array, "|u1" if array.dtype == np.uint8 else "<f4")
        digest.update(f"{name}{array.shape}{array.dtype.str}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: Any, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


#: Field of the metadata -> a test of its value (checked by load).
_META_CHECKS = {
    "version": lambda v: v == _VERSION, "threshold": _is_number, "combine": lambda v: v in COMBINE,
    "method": lambda v: isinstance(v, str), "params": lambda v: isinstance(v, dict),
    "seed": lambda v: _is_int(v, 0), "model_hash": lambda v: isinstance(v, str),
    "model_name": lambda v: isinstance(v, str), "gallery_identities": lambda v: _is_int(v, 2),
    "gallery_images": lambda v: _is_int(v, 2), "mate": lambda v: v is None or isinstance(v, str),
    "mate_rank": lambda v: v is None or _is_int(v, 1), "mate_score": lambda v: v is None or _is_number(v),
    "seconds": _is_number, "extras": lambda v: isinstance(v, dict), "checksum": lambda v: isinstance(v, str),
    "probe_source": lambda v: v is None or (isinstance(v, dict) and isinstance(v.get("path"), str)),
    "ranking": lambda v: isinstance(v, list), "contrast": lambda v: isinstance(v, dict),
}


def _check_candidate(record: Any, threshold: float, where: str, path: Path) -> None:
    ok = (isinstance(record, dict) and _is_int(record.get("rank"), 1) and isinstance(record.get("identity"), str)
          and _is_number(record.get("score")) and isinstance(record.get("match"), bool)
          and _is_number(record.get("distance")) and (record.get("image") is None or isinstance(record["image"], str))
          and _is_int(record.get("image_index"), 0))
    if not ok:
        raise ModelFormatError(f"{path}: {where} is not a candidate record (rank, identity, score, match, ...)")
    if record["match"] != (record["score"] >= threshold):
        raise ModelFormatError(f"{path}: {where}: 'match' contradicts score {record['score']} and threshold "
                               f"{threshold}")


def _check_meta(meta: Any, path: Path, pairs: int) -> None:
    if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
        raise ModelFormatError(f"{path} is not a saved fxplain identification")
    for key, check in _META_CHECKS.items():
        if key not in meta or not check(meta[key]):
            raise ModelFormatError(f"{path}: field {key!r} is missing or holds an impossible value")
    ranking, threshold = meta["ranking"], meta["threshold"]
    if not 1 <= len(ranking) <= meta["gallery_identities"] or len(ranking) != pairs:
        raise ModelFormatError(f"{path}: {len(ranking)} ranked identities and {pairs} pair explanations")
    for k, record in enumerate(ranking):
        _check_candidate(record, threshold, f"ranking entry {k}", path)
        if record["rank"] != k + 1 or (k and record["score"] > ranking[k - 1]["score"]):
            raise ModelFormatError(f"{path}: the ranking is not in rank order")
    contrast = meta["contrast"]
    for side in ("first", "second"):
        _check_candidate(contrast.get(side), threshold, f"contrast {side}", path)
    if (contrast.get("reason") not in REASONS or not _is_number(contrast.get("score"))
            or not isinstance(contrast.get("extras"), dict) or contrast["first"]["rank"] != 1):
        raise ModelFormatError(f"{path}: the contrast record is damaged")


def _check_arrays(arrays: dict[str, np.ndarray], path: Path) -> None:
    for name, array in arrays.items():
        if not isinstance(array, np.ndarray):  # np.load gives a member that is not .npy data as raw bytes
            raise ModelFormatError(f"{path}: {name} is not a NumPy array (got {type(array).__name__})")
        expected = np.float32 if name.startswith("contrast_") and name != "contrast_images" else np.uint8
        if array.dtype != expected:
            raise ModelFormatError(f"{path}: {name} must be {np.dtype(expected)}, got {array.dtype}")
        if name.startswith("pair_") and array.ndim != 1:
            raise ModelFormatError(f"{path}: {name} must hold the bytes of a saved pair explanation")
    probe = arrays["probe"]
    if probe.ndim != 3 or probe.shape[2] != 3 or arrays["contrast_images"].shape != (2,) + probe.shape:
        raise ModelFormatError(f"{path}: the probe must be (H, W, 3) and the contrast images (2, H, W, 3)")
    for name in ("contrast_similarity", "contrast_dissimilarity"):
        values = arrays[name]
        if values.shape != probe.shape[:2] or not np.all(np.isfinite(values)) or np.any(values < 0):
            raise ModelFormatError(f"{path}: {name} must be a finite non-negative (H, W) map of the probe")
