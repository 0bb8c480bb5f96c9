"""fxplain's face-model file (``.fxn``): a network with its preprocessing, metric, threshold and calibration.

One file keeps everything a face model needs to be used, as its own user
calibrated it (``fxplain calibrate MODEL DATA -o mine.fxn``, or
:meth:`FaceModel.save <fxplain.FaceModel.save>`): ``load_model("mine.fxn")``
gives a model that embeds bit for bit as the one saved, decides at the saved
threshold, and says where that threshold came from. Layout::

    bytes 0-7     magic b"FXPLFXN\\0"
    bytes 8-11    format version, uint32 little-endian (1)
    bytes 12-15   header length H, uint32 little-endian (at most 1 MiB)
    16 .. 16+H    header: UTF-8 JSON object (below)
    16+H .. end   the network: fxplain's network file (:mod:`.fxspec`, version 2,
                  a safetensors container with its own checksum), exactly
                  ``header["network"]["bytes"]`` long

The header::

    {"format": "fxplain-face-model", "version": 1, "name": "arcface.onnx",
     "metric": "cosine", "threshold": 0.31 | null,
     "preprocessing": {"input_size": [112, 112], "mean": [127.5, 127.5, 127.5],
                       "std": [127.5, 127.5, 127.5], "channels": "RGB"},
     "network": {"encoding": "fxspec", "bytes": 1234567, "sha256": "<hex of the network bytes>"},
     "source": {"format": "onnx", "file": "arcface.onnx", "sha256": "<hex of the original file>" | null},
     "calibration": {"fmr": 0.001, "achieved_fmr": ..., "fnmr": ..., "threshold": ...,
                     "genuine_pairs": 55, "impostor_pairs": 1430, "dataset": "johns",
                     "date": "2026-12-03T10:30:00+00:00", "fxplain_version": "0.1.0", ...} | null,
     "facts": {...}, "saved": {"date": "...", "fxplain_version": "..."}}

``mean`` and ``std`` are in the model's channel order (``channels``), as
:func:`fxplain.load_model` takes them for ONNX files; the network stores the
same normalisation (in RGB order), and the reader checks the two agree.

The file is untrusted: the reader checks the magic, the version, the header
length against the file, every header field's type and range (no NaN or
infinity, bounded strings and records), the network's length and SHA-256,
then parses the network with the network file's own hardened reader, and
checks its input shape and normalisation against the header. Any problem
raises :class:`~fxplain.ModelFormatError`; nothing is unpickled or executed.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

from ..._util.errors import InvalidInputError, ModelFormatError
from .base import LoadedNetwork, ModelFormat
from .fxspec import parse_spec, spec_bytes
from .fxspec_header import refuse_constant
from .fxspec_v1 import MAGIC as V1_MAGIC

__all__ = ["FXN_FORMAT", "MAGIC", "VERSION", "calibration_record", "read_face_model", "save_face_model"]

MAGIC = b"FXPLFXN\0"
#: The version :func:`save_face_model` writes and the reader reads.
VERSION = 1
FORMAT_NAME = "fxplain-face-model"
#: Largest header accepted (the header is a few kilobytes).
MAX_HEADER_BYTES = 1 << 20
#: Largest string in a header field, and most entries of a record (facts, calibration).
MAX_STRING = 4096
MAX_ENTRIES = 128
_HEADER_KEYS = {"format", "version", "name", "metric", "threshold", "preprocessing", "network", "source",
                "calibration", "facts", "saved"}
_PREFIX = struct.Struct("<8sII")


# ---- writing ------------------------------------------------------------------------

def _fxplain_version() -> str:
    try:
        from importlib.metadata import version

        return version("fxplain")
    except Exception:  # noqa: BLE001 - not installed as a distribution (a source tree on sys.path)
        return "unknown"


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat()


def _json_scalar(value: Any) -> Any:
    """``value`` as a JSON scalar or flat list of scalars; ``...`` (Ellipsis) if it is not one (then it is not kept)."""
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        value = value.item()
    if value is None or isinstance(value, (bool, int, str)):
        return value if not isinstance(value, str) or len(value) <= MAX_STRING else ...
    if isinstance(value, float):
        return value if math.isfinite(value) else ...
    if isinstance(value, (list, tuple, np.ndarray)) and len(value) <= MAX_ENTRIES:
        items = [_json_scalar(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
        return items if all(v is not ... and not isinstance(v, list) for v in items) else ...
    return ...


def _record(values: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``values`` that a face-model file can keep (JSON scalars and flat lists, bounded)."""
    out = {}
    for key, value in values.items():
        converted = _json_scalar(value)
        if isinstance(key, str) and len(key) <= 128 and converted is not ...:
            out[key] = converted
        if len(out) >= MAX_ENTRIES:
            break
    return out


def calibration_record(calibration: Any, dataset: str | None = None) -> dict[str, Any]:
    """The record a face-model file keeps of a threshold's calibration.

    ``calibration`` is a :class:`~fxplain.ThresholdCalibration` (what
    :func:`fxplain.calibrate_threshold` returns: threshold, fmr, achieved
    FMR, FNMR and the genuine and impostor scores) or a dict of such values;
    ``dataset`` names the faces it was set on. The record holds the
    threshold, the FMR asked for and achieved, the FNMR, the numbers of
    genuine and impostor pairs, their mean scores, the dataset, the date and
    the fxplain version.
    """
    if isinstance(calibration, dict):
        record = dict(calibration)
    else:
        try:
            genuine = np.asarray(calibration.genuine, np.float64)
            impostor = np.asarray(calibration.impostor, np.float64)
            record = {"threshold": float(calibration.threshold), "fmr": float(calibration.fmr),
                      "achieved_fmr": float(calibration.achieved_fmr), "fnmr": float(calibration.fnmr),
                      "metric": calibration.metric,
                      "genuine_pairs": int(genuine.size), "impostor_pairs": int(impostor.size),
                      "genuine_score_mean": float(genuine.mean()) if genuine.size else None,
                      "impostor_score_mean": float(impostor.mean()) if impostor.size else None,
                      "impostor_score_max": float(impostor.max()) if impostor.size else None}
        except (AttributeError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"calibration must be a ThresholdCalibration (fxplain.calibrate_threshold) "
                                    f"or a dict, got {type(calibration).__name__} ({exc})") from None
    if dataset is not None:
        record["dataset"] = str(dataset)
    record.setdefault("date", _now())
    record.setdefault("fxplain_version", _fxplain_version())
    return _record(record)


def _preprocessing(model: Any) -> dict[str, Any]:
    """Input size, mean, std (model channel order) and channel order of a model, from its spec (and facts)."""
    spec = model.spec
    channels = model.facts.get("channels", "RGB") if isinstance(getattr(model, "facts", None), dict) else "RGB"
    channels = channels if channels in ("RGB", "BGR") else "RGB"
    mean_rgb = np.asarray(spec.input_mean, np.float64)
    std_rgb = 1.0 / np.asarray(spec.input_scale, np.float64)
    order = slice(None, None, -1) if channels == "BGR" else slice(None)
    mean, std = mean_rgb[order], std_rgb[order]
    stated = [model.facts.get(k) for k in ("mean", "std")] if isinstance(getattr(model, "facts", None), dict) \
        else [None, None]
    try:  # the values the user gave (127.5 rather than 127.49999), when they are what the spec holds
        if all(np.shape(v) == (3,) for v in stated) and _agrees(spec, list(map(float, stated[0])),
                                                                   list(map(float, stated[1])), channels):
            mean, std = np.asarray(stated[0], np.float64), np.asarray(stated[1], np.float64)
    except (TypeError, ValueError):
        pass
    return {"input_size": [int(spec.input_shape[1]), int(spec.input_shape[2])],
            "mean": [float(v) for v in mean], "std": [float(v) for v in std], "channels": channels}


def _agrees(spec: Any, mean: list[float], std: list[float], channels: str) -> bool:
    """Whether the spec's input normalisation is ``(pixel - mean) / std`` in the model's channel order."""
    order = slice(None, None, -1) if channels == "BGR" else slice(None)
    mean_rgb = np.asarray(mean, np.float64)[order]
    std_rgb = np.asarray(std, np.float64)[order]
    if np.any(std_rgb == 0):
        return False
    return bool(np.allclose(np.asarray(spec.input_mean, np.float64), mean_rgb, rtol=1e-6, atol=1e-6)
                and np.allclose(np.asarray(spec.input_scale, np.float64), 1.0 / std_rgb, rtol=1e-5, atol=0))


def _source(all_facts: dict, facts: dict, model: Any) -> dict[str, Any]:
    """Where the model came from: the original file's format, path and SHA-256 (kept through re-saves)."""
    source = all_facts.get("source")
    if isinstance(source, dict) and set(source) == {"format", "file", "sha256"} and all(
            v is None or (isinstance(v, str) and len(v) <= MAX_STRING) for v in source.values()):
        return dict(source)
    fmt, digest = facts.get("format"), facts.get("sha256")
    return {"format": fmt if isinstance(fmt, str) else None,
            "file": str(getattr(model, "source", None) or model.name)[:MAX_STRING],
            "sha256": digest if isinstance(digest, str) else None}


def save_face_model(model: Any, path: str | os.PathLike, *, calibration: Any = None,
                    dataset: str | None = None) -> Path:
    """Write ``model`` (a :class:`~fxplain.FaceModel`) to a face-model file; see the module docstring.

    ``calibration``: a :class:`~fxplain.ThresholdCalibration` or a dict (see
    :func:`calibration_record`), kept with the threshold; ``dataset`` names
    the faces it was set on. The model's threshold (None if unset) is the
    file's. Written atomically (a temporary file, then a rename).
    """
    for attr in ("spec", "metric", "name"):
        if not hasattr(model, attr):
            raise InvalidInputError(f"save_face_model takes a FaceModel (load_model, from_torch), got "
                                    f"{type(model).__name__}")
    path = Path(path)
    all_facts = getattr(model, "facts", None)
    all_facts = all_facts if isinstance(all_facts, dict) else {}
    facts = _record(all_facts)
    if calibration is None and isinstance(all_facts.get("calibration"), dict):
        calibration = all_facts["calibration"]  # a model loaded from a face-model file keeps its record
    network = spec_bytes(model.spec, {"kind": "fxplain-face-model-network"}, path)
    threshold = getattr(model, "threshold", None)
    header = {
        "format": FORMAT_NAME, "version": VERSION, "name": str(model.name)[:MAX_STRING], "metric": model.metric,
        "threshold": None if threshold is None else float(threshold),
        "preprocessing": _preprocessing(model),
        "network": {"encoding": "fxspec", "bytes": len(network), "sha256": hashlib.sha256(network).hexdigest()},
        "source": _source(all_facts, facts, model),
        "calibration": None if calibration is None else calibration_record(calibration, dataset),
        "facts": facts,
        "saved": {"date": _now(), "fxplain_version": _fxplain_version()},
    }
    try:
        text = json.dumps(header, allow_nan=False, sort_keys=True).encode()
    except ValueError as exc:
        raise InvalidInputError(f"cannot save {path}: the model's numbers must be finite ({exc})") from None
    if len(text) > MAX_HEADER_BYTES:
        raise InvalidInputError(f"cannot save {path}: its header would be {len(text)} bytes (at most "
                                f"{MAX_HEADER_BYTES})")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(_PREFIX.pack(MAGIC, VERSION, len(text)) + text + network)
    os.replace(tmp, path)
    return path


# ---- reading ------------------------------------------------------------------------

def _fail(name: str, what: str) -> ModelFormatError:
    return ModelFormatError(f"{name}: {what} (a damaged or foreign face-model file)")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_record(value: Any, field: str, name: str) -> dict[str, Any]:
    """A flat JSON object of bounded scalars and short lists of scalars."""
    if not isinstance(value, dict) or len(value) > MAX_ENTRIES:
        raise _fail(name, f"{field} must be an object of at most {MAX_ENTRIES} entries")
    for key, item in value.items():
        items = item if isinstance(item, list) else [item]
        if len(key) > 128 or len(items) > MAX_ENTRIES or not all(
                v is None or isinstance(v, bool) or _number(v) or (isinstance(v, str) and len(v) <= MAX_STRING)
                for v in items):
            raise _fail(name, f"{field} entry {key[:40]!r} is not a short scalar or list of scalars")
    return value


def _check_string(value: Any, field: str, name: str, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or len(value) > MAX_STRING:
        raise _fail(name, f"{field} must be a string of at most {MAX_STRING} characters")
    return value


def _header(data: bytes, name: str) -> tuple[dict[str, Any], bytes]:
    """The checked header and the network bytes of a face-model file."""
    if len(data) < _PREFIX.size:
        raise _fail(name, f"{len(data)} bytes, too short for the {_PREFIX.size}-byte prefix")
    magic, version, length = _PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise _fail(name, f"magic {magic!r}, expected {MAGIC!r}")
    if version != VERSION:
        raise ModelFormatError(f"{name}: face-model file version {version}; this fxplain reads version {VERSION} "
                               "(a newer fxplain wrote it?)")
    if length > MAX_HEADER_BYTES or _PREFIX.size + length > len(data):
        raise _fail(name, f"header of {length} bytes in a file of {len(data)} (at most {MAX_HEADER_BYTES})")
    try:
        header = json.loads(data[_PREFIX.size:_PREFIX.size + length].decode("utf-8"), parse_constant=refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _fail(name, f"the header is not valid JSON ({type(exc).__name__}: {str(exc)[:200]})") from None
    if not isinstance(header, dict) or set(header) != _HEADER_KEYS:
        got = sorted(header)[:20] if isinstance(header, dict) else type(header).__name__
        raise _fail(name, f"the header must have exactly the fields {sorted(_HEADER_KEYS)}, got {got}")
    if header["format"] != FORMAT_NAME or header["version"] != VERSION or isinstance(header["version"], bool):
        raise _fail(name, f"format {header['format']!r} version {header['version']!r}, expected "
                          f"{FORMAT_NAME!r} version {VERSION}")
    network = header["network"]
    if not (isinstance(network, dict) and set(network) == {"encoding", "bytes", "sha256"}
            and network["encoding"] == "fxspec" and isinstance(network["bytes"], int)
            and not isinstance(network["bytes"], bool) and isinstance(network["sha256"], str)):
        raise _fail(name, "the header's 'network' must be {'encoding': 'fxspec', 'bytes': int, 'sha256': hex}")
    payload = data[_PREFIX.size + length:]
    if network["bytes"] != len(payload):
        raise _fail(name, f"the network is {len(payload)} bytes, the header says {network['bytes']} "
                          "(truncated or extended)")
    digest = hashlib.sha256(payload).hexdigest()
    if digest != network["sha256"]:
        raise _fail(name, f"the network's SHA-256 is {digest[:16]}…, the header says {str(network['sha256'])[:16]}…")
    return header, payload


def _check_fields(header: dict[str, Any], name: str) -> None:
    if header["metric"] not in ("squared_euclidean", "cosine"):
        raise _fail(name, f"metric {header['metric']!r}, expected 'squared_euclidean' or 'cosine'")
    if header["threshold"] is not None and not _number(header["threshold"]):
        raise _fail(name, f"threshold {header['threshold']!r} must be a finite number or null")
    _check_string(header["name"], "name", name)
    pre = header["preprocessing"]
    if not isinstance(pre, dict) or set(pre) != {"input_size", "mean", "std", "channels"}:
        raise _fail(name, "'preprocessing' must have exactly input_size, mean, std and channels")
    size = pre["input_size"]
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and not isinstance(v, bool)
                                                              and 1 <= v <= 4096 for v in size)):
        raise _fail(name, f"input_size {size!r} must be [H, W], each 1 to 4096")
    for key in ("mean", "std"):
        if not (isinstance(pre[key], list) and len(pre[key]) == 3 and all(_number(v) for v in pre[key])):
            raise _fail(name, f"{key} {pre[key]!r} must be 3 finite numbers")
    if any(v == 0 for v in pre["std"]):
        raise _fail(name, "std must be non-zero")
    if pre["channels"] not in ("RGB", "BGR"):
        raise _fail(name, f"channels {pre['channels']!r}, expected 'RGB' or 'BGR'")
    source = header["source"]
    if not isinstance(source, dict) or set(source) != {"format", "file", "sha256"}:
        raise _fail(name, "'source' must have exactly format, file and sha256")
    for key in ("format", "file", "sha256"):
        _check_string(source[key], f"source {key}", name, optional=True)
    if header["calibration"] is not None:
        _check_record(header["calibration"], "'calibration'", name)
    _check_record(header["facts"], "'facts'", name)
    _check_record(header["saved"], "'saved'", name)


def read_face_model(data: bytes, name: str = "<face model>",
                    options: dict[str, Any] | None = None) -> LoadedNetwork:
    """Parse a face-model file (its bytes; ``name`` names it in errors) into a :class:`LoadedNetwork`.

    The facts of the loaded model hold the file's ``preprocessing``,
    ``calibration`` record, ``source`` and ``saved`` records, besides the
    facts of the model it was saved from.

    Raises
    ------
    ModelFormatError
        If the file is truncated, damaged, of another version, or its parts disagree.
    """
    header, payload = _header(data, name)
    _check_fields(header, name)
    if payload[:8] == V1_MAGIC:  # the writer writes version 2, whose checksum covers every weight
        raise _fail(name, "its network is a version-1 network file (no checksum)")
    spec, _ = parse_spec(payload, f"{name} (its network)")
    pre = header["preprocessing"]
    if tuple(spec.input_shape) != (3, pre["input_size"][0], pre["input_size"][1]):
        raise _fail(name, f"the network takes {tuple(spec.input_shape)}, the header says input_size "
                          f"{pre['input_size']}")
    if not _agrees(spec, pre["mean"], pre["std"], pre["channels"]):
        raise _fail(name, "the network's input normalisation disagrees with the header's mean and std")
    facts = dict(header["facts"])
    facts.update({"saved_name": header["name"], "preprocessing": pre, "calibration": header["calibration"], "source": header["source"],
                  "saved": header["saved"], "channels": pre["channels"], "mean": pre["mean"], "std": pre["std"],
                  "threshold_source": "calibrated" if header["calibration"] is not None and header["threshold"]
                  is not None else ("file" if header["threshold"] is not None else "none")})
    facts.pop("format", None)
    facts.pop("sha256", None)  # the original file's: kept in facts["source"]; the loader adds this file's
    return LoadedNetwork(spec, metric=header["metric"], threshold=header["threshold"], facts=facts)


#: fxplain's face-model file: network + preprocessing + metric + threshold + calibration record.
FXN_FORMAT = ModelFormat("fxn", (".fxn",), lambda head: head[:8] == MAGIC, read_face_model,
                         title="face-model (.fxn)")
