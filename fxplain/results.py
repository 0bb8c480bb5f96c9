"""Result objects: what an explanation of a pair holds, shows and saves."""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._util.errors import InvalidInputError, ModelFormatError, ModelNotFoundError
from ._util.files import read_untrusted_file

_FORMAT = "fxplain.PairExplanation"
# 2: the arrays carry a checksum in the metadata; 3: images stored as uint8 and the source files recorded
# (versions 1 and 2 still load)
_VERSION = 3


@dataclass
class PairExplanation:
    """Why a face-recognition model matched (or did not match) two faces.

    Attributes
    ----------
    similarity, dissimilarity : numpy.ndarray
        float32 ``(2, H, W)``, non-negative; index 0 is image A, 1 is image B.
        Evidence for the match (similarity) and against it (dissimilarity), at
        the input resolution, in the method's own units (score change for
        occlusion, correlation for CorrRISE). Not normalised unless the
        explainer was asked to (``normalize=``), so maps of different pairs
        explained by the same method are comparable.
    score, threshold : float
        The model's similarity score of the intact pair and its decision
        threshold (same scale; higher = more alike).
    match : bool
        ``score >= threshold``.
    method : str
        Name of the explanation method.
    params : dict
        The method's parameters, defaults included.
    seed : int
        Seed of the method's random numbers.
    model_hash, model_name : str
        Identity of the model (SHA-256 of its architecture and weights).
    images : numpy.ndarray
        float32 ``(2, H, W, 3)`` pixels (0-255) of the two images, for plots
        (saved rounded to uint8).
    seconds : float
        Wall time of the explanation.
    sources : tuple of dict, optional
        For each side, the file it was read from: ``{"path", "sha256"}``
        (None for a side given as an array); kept by :meth:`save`.
    """

    similarity: np.ndarray
    dissimilarity: np.ndarray
    score: float
    threshold: float
    match: bool
    method: str
    params: dict[str, Any]
    seed: int
    model_hash: str
    model_name: str
    images: np.ndarray
    seconds: float = 0.0
    normalize: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    sources: tuple | None = None
    #: The :class:`~fxplain.Face` each side was cut from when photos were explained (with their photos;
    #: the photos are not saved — ``extras["faces"]`` keeps boxes, landmarks, chip-to-photo transforms and
    #: each photo's SHA-256, and ``load(path, photos=...)`` re-attaches the photos).
    faces: tuple | None = field(default=None, repr=False, compare=False)

    @property
    def evidence(self) -> np.ndarray:
        """Signed map ``similarity - dissimilarity`` (positive supports the match)."""
        return self.similarity - self.dissimilarity

    @property
    def contributions(self) -> np.ndarray | None:
        """Per-dimension margin contributions ``c_k`` (methods that decompose the margin), else None."""
        values = self.extras.get("contributions")
        return None if values is None else np.asarray(values)

    @property
    def margin(self) -> float:
        """``score - threshold``: how far the pair is from the decision boundary."""
        return self.score - self.threshold

    def __repr__(self) -> str:
        verdict = "match" if self.match else "non-match"
        return (f"PairExplanation(method={self.method!r}, score={self.score:.4f}, threshold={self.threshold:.4f}"
                f" -> {verdict}, maps {self.similarity.shape[1]}x{self.similarity.shape[2]})")

    # ---- facial regions -------------------------------------------------

    def region_labels(self, side: str = "A") -> np.ndarray:
        """Each pixel's facial region on one side: int8 ``(H, W)`` indices into
        :data:`fxplain.faces.regions.REGION_NAMES`.

        From that face's own landmarks when it came from a photo (``faces`` or
        ``extras["faces"]``), else from the alignment template's mean face
        (see :mod:`fxplain.faces.regions`).
        """
        from .faces.regions import face_landmarks68, region_labels

        if side not in ("A", "B"):
            raise InvalidInputError(f"side must be 'A' or 'B', got {side!r}")
        index = "AB".index(side)
        size = self.similarity.shape[1:]
        if self.faces is not None and self.faces[index] is not None:
            face = self.faces[index]
        else:
            records = self.extras.get("faces")
            face = records[index] if isinstance(records, list) and len(records) == 2 else None
        return region_labels(size, face_landmarks68(face, size))

    def region_shares(self):
        """Share of each map's mass per facial region, per side: a pandas DataFrame.

        Rows ``(side, kind)`` for side "A"/"B" and kind "similarity" /
        "dissimilarity"; one column per region of
        :data:`fxplain.faces.regions.REGION_NAMES` (eyes, brows, nose, mouth,
        cheeks, forehead, chin_jaw, rest_of_face, outside). Each row sums to 1;
        a map with no mass at all (e.g. no similarity anywhere) has NaN shares.
        """
        import pandas as pd

        from .faces.regions import REGION_NAMES, region_shares

        rows, index = [], []
        for side in "AB":
            labels = self.region_labels(side)
            for kind in ("similarity", "dissimilarity"):
                rows.append(region_shares(getattr(self, kind)["AB".index(side)], labels))
                index.append((side, kind))
        return pd.DataFrame(np.array(rows), index=pd.MultiIndex.from_tuples(index, names=["side", "kind"]),
                            columns=list(REGION_NAMES))

    # ---- display --------------------------------------------------------

    @property
    def distance(self) -> float | None:
        """Euclidean distance of the embeddings for squared-Euclidean models (dlib), else None."""
        if self.extras.get("score_kind") != "neg_squared_euclidean":
            return None
        return float(np.sqrt(max(-self.score, 0.0)))

    @property
    def distance_threshold(self) -> float | None:
        """The distance rule users know (dlib: same person iff distance < 0.6), else None."""
        if self.extras.get("score_kind") != "neg_squared_euclidean":
            return None
        return float(np.sqrt(max(-self.threshold, 0.0)))

    def plot(self, ax=None, *, side: str = "A", kind: str = "dissimilarity", alpha: float = 0.6,
             figsize: tuple[float, float] | None = None, on: str = "chip", context: float | None = 4.0):
        """Draw the explanation; see :func:`fxplain.plotting.plot_pair`.

        ``on="photo"`` draws each side's maps warped back onto the photo its
        face came from, with the face's box (:func:`fxplain.plotting.plot_on_photos`;
        only for photos explained in this session — saved results keep the
        boxes and transforms, not the photos), in a window ``context`` times
        the face's chip footprint around it (``None``: the whole photo).

        Without ``ax``, a new figure: both faces with their similarity and
        dissimilarity overlays, one colour scale shared by all four maps so
        their strengths compare directly. With ``ax`` a 2x3 array of axes,
        the same grid drawn into them; with ``ax`` one
        :class:`matplotlib.axes.Axes`, one panel (``side`` "A" or "B",
        ``kind`` "similarity", "dissimilarity" or "image") for paper figures.
        Returns the :class:`matplotlib.figure.Figure` drawn on.
        """
        from .plotting import plot_on_photos, plot_pair

        if on == "photo":
            return plot_on_photos(self, alpha=alpha, figsize=figsize, context=context)
        if on != "chip":
            raise InvalidInputError(f"on must be 'chip' or 'photo', got {on!r}")
        return plot_pair(self, ax=ax, side=side, kind=kind, alpha=alpha, figsize=figsize or (9.0, 6.4))

    def _repr_png_(self) -> bytes:
        from matplotlib.figure import Figure  # noqa: F401 - fail early if matplotlib is missing

        fig = self.plot()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
        return buffer.getvalue()

    # ---- persistence ----------------------------------------------------

    def save(self, path: str | os.PathLike) -> None:
        """Write the explanation to a ``.npz`` file: maps as float32, images as uint8, metadata as JSON. No pickle.

        The metadata carry the source files of both sides (path and SHA-256,
        when known) and a SHA-256 checksum of the arrays, which :meth:`load`
        verifies (format version 3).
        """
        arrays = {"similarity": np.ascontiguousarray(self.similarity, np.float32),
                  "dissimilarity": np.ascontiguousarray(self.dissimilarity, np.float32),
                  "images": np.clip(np.rint(self.images), 0, 255).astype(np.uint8)}
        meta = {
            "format": _FORMAT, "version": _VERSION, "score": self.score, "threshold": self.threshold,
            "match": bool(self.match), "method": self.method, "params": _jsonable(self.params),
            "seed": self.seed, "model_hash": self.model_hash, "model_name": self.model_name,
            "seconds": self.seconds, "normalize": self.normalize, "extras": _jsonable(self.extras),
            "sources": _jsonable(self.sources), "checksum": _checksum(arrays),
        }
        try:  # load refuses NaN and Infinity, so save never writes them
            text = json.dumps(meta, allow_nan=False)
        except ValueError as exc:
            raise InvalidInputError(f"cannot save the explanation: its metadata must be finite ({exc})") from None
        with open(path, "wb") as f:
            np.savez(f, **arrays, meta=np.array(text))

    @classmethod
    def load(cls, path: str | os.PathLike, *, photos: Any = None) -> PairExplanation:
        """Read an explanation written by :meth:`save` (format versions 1 and 2).

        The file is untrusted: it must be a regular file holding exactly the
        saved arrays and metadata, every field of the expected type, the maps
        finite and non-negative, and (version 2) the arrays must match their
        checksum. Anything else raises :class:`~fxplain.ModelFormatError`.

        ``photos`` re-attaches the photos of an explanation of photos, so that
        ``plot(on="photo")`` works again: ``(photo_a, photo_b)`` (paths,
        arrays or PIL images; ``None`` for a side that was a chip), or
        ``True`` for the paths the faces were read from. Each photo must be
        the one explained (same size, and the same pixels where the file
        records their SHA-256), else InvalidInputError.
        """
        path = Path(path)
        if not path.exists():
            raise InvalidInputError(f"explanation file not found: {path}")
        try:
            raw = read_untrusted_file(path, "explanation file", limit=_MAX_FILE_BYTES)
        except ModelNotFoundError as exc:  # a FIFO, a directory: not a file to read
            raise InvalidInputError(str(exc)) from None
        return cls.from_bytes(raw, path, photos=photos)

    @classmethod
    def from_bytes(cls, raw: bytes, name: str | os.PathLike = "<bytes>", *, photos: Any = None) -> PairExplanation:
        """Read an explanation from the bytes of a file :meth:`save` wrote (a database blob, an upload).

        The same checks and ``photos=`` as :meth:`load`; ``name`` names the source in errors.
        """
        path = Path(name)
        if not isinstance(raw, (bytes, bytearray, memoryview)):
            raise InvalidInputError(f"from_bytes expects bytes, got {type(raw).__name__}")
        if len(raw) > _MAX_FILE_BYTES:
            raise ModelFormatError(f"{path}: {len(raw)} bytes is larger than any saved explanation")
        raw = bytes(raw)
        try:
            with zipfile.ZipFile(io.BytesIO(raw)) as archive:
                members = {info.filename: info.file_size for info in archive.infolist()}
            if set(members) != {f"{name}.npy" for name in _ARRAYS + ("meta",)}:
                raise ModelFormatError(f"{path} is not a saved fxplain explanation: it holds {sorted(members)}")
            if sum(members.values()) > _MAX_FILE_BYTES:  # compressed members could expand without bound
                raise ModelFormatError(f"{path} expands to {sum(members.values())} bytes, more than an explanation")
            with np.load(io.BytesIO(raw), allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]), parse_constant=_refuse_constant)
                arrays = {name: data[name] for name in _ARRAYS}
        except ModelFormatError:
            raise
        except Exception as exc:  # noqa: BLE001 - zipfile, numpy and json raise many types on damaged bytes
            raise ModelFormatError(f"{path} is not a saved fxplain explanation: {type(exc).__name__}: {exc}") from None
        _check_meta(meta, path)
        _check_arrays(arrays, path, meta["version"])
        if meta["version"] >= 2 and meta.get("checksum") != _checksum(arrays):
            raise ModelFormatError(f"{path}: the maps or images do not match the file's checksum (damaged file)")
        result = cls(similarity=arrays["similarity"], dissimilarity=arrays["dissimilarity"], images=arrays["images"],
                     score=float(meta["score"]), threshold=float(meta["threshold"]), match=meta["match"],
                     method=meta["method"], params=meta["params"], seed=meta["seed"], model_hash=meta["model_hash"],
                     model_name=meta["model_name"], seconds=float(meta["seconds"]), normalize=meta["normalize"],
                     extras=meta["extras"], sources=_checked_sources(meta.get("sources"), path))
        result.images = result.images.astype(np.float32)
        if photos is not None:
            result.faces = _reattached_faces(result.extras, photos, path)
        return result


_ARRAYS = ("similarity", "dissimilarity", "images")
_MAX_FILE_BYTES = 1 << 30
#: Field of the metadata -> the types it may have (checked by load).
_META_TYPES: dict[str, tuple[type, ...]] = {
    "format": (str,), "version": (int,), "score": (int, float), "threshold": (int, float), "match": (bool,),
    "method": (str,), "params": (dict,), "seed": (int,), "model_hash": (str,), "model_name": (str,),
    "seconds": (int, float), "normalize": (str, type(None)), "extras": (dict,),
}


def _reattached_faces(extras: dict, photos: Any, path: Path) -> tuple:
    """The Faces of a loaded explanation rebuilt on the given photos (see :meth:`PairExplanation.load`)."""
    from .faces.face import Face, photo_digest
    from .faces.inputs import load_photo

    records = extras.get("faces")
    if not isinstance(records, list) or len(records) != 2:
        raise InvalidInputError(f"{path}: this explanation was made on chips, not photos: there are no faces to "
                                "re-attach photos to")
    if photos is True:
        photos = tuple(r["source"] if isinstance(r, dict) else None for r in records)
        if any(isinstance(r, dict) and not Path(str(r["source"])).is_file() for r in records):
            raise InvalidInputError(f"{path}: photos=True re-reads the photos from the paths they were read from "
                                    f"({[r['source'] for r in records if isinstance(r, dict)]}); one is not a file "
                                    "any more: pass (photo_a, photo_b)")
    if not isinstance(photos, (tuple, list)) or len(photos) != 2:
        raise InvalidInputError(f"photos must be (photo_a, photo_b) or True, got {type(photos).__name__}")
    faces = []
    for side, record, photo in zip("AB", records, photos):
        if photo is None or record is None:
            if photo is not None:
                raise InvalidInputError(f"{path}: side {side} was explained as a chip; it has no photo to re-attach")
            faces.append(None)
            continue
        try:
            box = tuple(int(v) for v in record["box"])
            landmarks = np.asarray(record["landmarks"], np.float64)
            size = tuple(int(v) for v in record["photo_size"])
            confidence = float(record["confidence"])
        except (KeyError, TypeError, ValueError):
            raise ModelFormatError(f"{path}: the face record of side {side} is damaged") from None
        pixels, name = load_photo(photo)
        if pixels.shape[:2] != size:
            raise InvalidInputError(f"{path}: side {side} was explained on a {size[1]}x{size[0]} photo, "
                                    f"{name} is {pixels.shape[1]}x{pixels.shape[0]}")
        if "photo_sha256" in record and record["photo_sha256"] != photo_digest(pixels):
            raise InvalidInputError(f"{path}: {name} is not the photo side {side} was explained on "
                                    "(its pixels differ)")
        faces.append(Face(box=box, confidence=confidence, landmarks=landmarks, photo=pixels,
                          source=str(record.get("source", name)), upsample=int(record.get("upsample", 0))))
    return tuple(faces)


def _refuse_constant(name: str) -> Any:
    raise ModelFormatError(f"JSON constant {name} is not allowed in a saved explanation")


def _checked_sources(sources: Any, path: Path) -> tuple | None:
    """The ``sources`` of a version-3 file: None, or two entries each None or {"path": str, "sha256": str}."""
    if sources is None:
        return None
    if not isinstance(sources, list) or len(sources) != 2 or not all(
            s is None or (isinstance(s, dict) and isinstance(s.get("path"), str)
                          and isinstance(s.get("sha256"), (str, type(None)))) for s in sources):
        raise ModelFormatError(f"{path}: field 'sources' must be two entries of path and SHA-256")
    return tuple(sources)


def _checksum(arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for name in _ARRAYS:
        array = arrays[name]
        array = np.ascontiguousarray(array, "|u1" if array.dtype == np.uint8 else "<f4")
        digest.update(f"{name}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _check_meta(meta: Any, path: Path) -> None:
    if not isinstance(meta, dict) or meta.get("format") != _FORMAT or meta.get("version") not in (1, 2, _VERSION):
        raise ModelFormatError(f"{path} is not a version-1 to -{_VERSION} fxplain explanation")
    for key, types in _META_TYPES.items():
        value = meta.get(key)
        if key not in meta or not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise ModelFormatError(f"{path}: field {key!r} must be {' or '.join(t.__name__ for t in types)}, "
                                   f"got {value!r}")
    if meta["normalize"] not in (None, "pair", "image") or meta["seed"] < 0:
        raise ModelFormatError(f"{path}: field 'normalize' or 'seed' holds an impossible value")
    if meta["match"] != (meta["score"] >= meta["threshold"]):
        raise ModelFormatError(f"{path}: 'match' contradicts score {meta['score']} and threshold {meta['threshold']}")


def _check_arrays(arrays: dict[str, np.ndarray], path: Path, version: int = _VERSION) -> None:
    maps = arrays["similarity"]
    for name in _ARRAYS:
        array = arrays[name]
        if not isinstance(array, np.ndarray):  # np.load gives a member that is not .npy data as raw bytes
            raise ModelFormatError(f"{path}: {name} is not a NumPy array (got {type(array).__name__})")
        expected = np.uint8 if name == "images" and version >= 3 else np.float32
        if array.dtype != expected:
            raise ModelFormatError(f"{path}: {name} must be {np.dtype(expected)}, got {array.dtype}")
        if not np.all(np.isfinite(array)):
            raise ModelFormatError(f"{path}: {name} holds NaN or infinite values")
    if maps.ndim != 3 or maps.shape[0] != 2 or arrays["dissimilarity"].shape != maps.shape \
            or arrays["images"].shape != maps.shape + (3,):
        raise ModelFormatError(f"{path}: maps must be (2, H, W) and images (2, H, W, 3); got "
                               f"{maps.shape}, {arrays['dissimilarity'].shape}, {arrays['images'].shape}")
    if np.any(maps < 0) or np.any(arrays["dissimilarity"] < 0):
        raise ModelFormatError(f"{path}: similarity and dissimilarity maps must be non-negative")


def _jsonable(value: Any) -> Any:
    """Tuples to lists, NumPy scalars to Python numbers, recursively."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
