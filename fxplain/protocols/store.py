"""The result store of a protocol run: maps in Zarr, one row per pair in Parquet, the run's identity in JSON.

Layout of ``run.zarr/`` (a folder, or an fsspec URL every worker can reach)::

    fxplain-run.json        what was run: method, parameters, seed, model, the pairs and their files' SHA-256
    zarr.json, similarity/, dissimilarity/, images/
                            Zarr v3 arrays (N, 2, H, W) float32/float16 and (N, 2, H, W, 3) uint8,
                            chunked by ``chunk_size`` pairs along N
    rows/chunk-000012.parquet
                            the rows of chunk 12, written after its maps: the chunk's commit
    table.parquet           every row, in pair order, written when the run is complete

One task owns one chunk of pairs, and so whole Zarr chunks (Zarr gives no
safety to concurrent writers of one chunk). A chunk is done only when its
rows file exists: it is written to a temporary name and renamed after the
maps, so a chunk whose writer died half-way has no rows file and is redone.
Each row carries the SHA-256 of its pair's stored maps and images, so a
damaged chunk is found when it is read.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import numpy as np

from .._util.errors import FxplainError, StoreError

MANIFEST = "fxplain-run.json"
TABLE = "table.parquet"
ROWS = "rows"
FORMAT = "fxplain.Run"
VERSION = 1
MAP_DTYPES = ("float32", "float16")
#: Largest manifest read back (6,000 LFW pairs take ~2 MB).
MAX_MANIFEST_BYTES = 256 << 20
#: Largest map side a store may declare (face chips are 112-160 pixels).
MAX_SIDE = 1024

#: The table's columns and their Arrow types (strings hold JSON where a value is structured).
COLUMNS = {
    "pair_id": "int64", "a": "string", "b": "string", "sha256_a": "string", "sha256_b": "string",
    "same": "bool", "label": "string", "face_a": "string", "face_b": "string",
    "box_a": "list<int64>", "box_b": "list<int64>", "score": "float64", "threshold": "float64",
    "match": "bool", "decision": "string", "method": "string", "params": "string", "seed": "int64",
    "normalize": "string", "model_sha256": "string", "model_name": "string", "fxplain_version": "string",
    "seconds": "float64", "extras": "string", "maps_sha256": "string", "error": "string", "scores": "string",
}


def _arrow_schema():
    import pyarrow as pa

    types = {"int64": pa.int64(), "string": pa.string(), "bool": pa.bool_(), "float64": pa.float64(),
             "list<int64>": pa.list_(pa.int64())}
    return pa.schema([(name, types[kind]) for name, kind in COLUMNS.items()])


def maps_digest(similarity: np.ndarray, dissimilarity: np.ndarray, images: np.ndarray) -> str:
    """SHA-256 of one pair's stored arrays (as stored: their dtype's little-endian bytes)."""
    digest = hashlib.sha256()
    for array in (similarity, dissimilarity, images):
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes())
    return digest.hexdigest()


class RunStore:
    """A run's store at ``url`` (a local folder or an fsspec URL).

    The driver creates it (:meth:`create`) or checks that it belongs to the
    run asked for (:meth:`manifest`); each task writes its chunk
    (:meth:`write_chunk`); readers ask which chunks are done and read rows
    and maps.
    """

    def __init__(self, url: Any):
        import fsspec

        self.url = str(url)
        try:
            self.fs, self.root = fsspec.core.url_to_fs(self.url)
        except (ValueError, ImportError) as exc:
            raise StoreError(f"cannot reach the store {self.url}: {exc}") from None
        self.root = self.root.rstrip("/")
        # zarr opens local folders itself (its fsspec route does not create them); other URLs go through fsspec
        local = "file" in (self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,))
        self._zarr = self.root if local else self.url
        self._manifest: dict | None = None

    def __repr__(self) -> str:
        return f"RunStore({self.url!r})"

    # ---- paths ---------------------------------------------------------------

    def _path(self, *parts: str) -> str:
        return "/".join((self.root, *parts))

    def exists(self) -> bool:
        """Whether a run was started here (its manifest exists)."""
        return self.fs.exists(self._path(MANIFEST))

    def _rows_path(self, chunk: int) -> str:
        return self._path(ROWS, f"chunk-{chunk:06d}.parquet")

    # ---- the run's identity --------------------------------------------------

    def create(self, manifest: dict) -> None:
        """Start a run: the Zarr arrays (empty) and the manifest, written last."""
        import zarr

        if self.fs.exists(self.root) and self.fs.ls(self.root):
            raise StoreError(f"{self.url} exists and is not an fxplain run (no {MANIFEST}); choose a new path")
        n, (h, w) = len(manifest["pairs"]), manifest["identity"]["input_size"]
        chunk, dtype = manifest["identity"]["chunk_size"], manifest["identity"]["dtype"]
        group = zarr.open_group(self._zarr, mode="w")
        for name in ("similarity", "dissimilarity"):
            group.create_array(name, shape=(n, 2, h, w), chunks=(chunk, 2, h, w), dtype=dtype, fill_value=0)
        group.create_array("images", shape=(n, 2, h, w, 3), chunks=(chunk, 2, h, w, 3), dtype="uint8",
                           fill_value=0)
        self.fs.makedirs(self._path(ROWS), exist_ok=True)
        self._atomic_write(self._path(MANIFEST), json.dumps(manifest, allow_nan=False).encode())
        self._manifest = manifest

    def manifest(self) -> dict:
        """The run's manifest, checked (StoreError when damaged or not fxplain's)."""
        if self._manifest is None:
            path = self._path(MANIFEST)
            try:
                if self.fs.size(path) > MAX_MANIFEST_BYTES:
                    raise StoreError(f"{self.url}: {MANIFEST} is larger than any run's manifest")
                raw = self.fs.cat_file(path)
            except FxplainError:
                raise
            except FileNotFoundError:
                raise StoreError(f"{self.url} is not an fxplain result store (no {MANIFEST})") from None
            except OSError as exc:
                raise StoreError(f"cannot read {self.url}/{MANIFEST}: {exc}") from None
            try:
                manifest = json.loads(raw.decode(), parse_constant=_refuse_constant)
            except (UnicodeDecodeError, ValueError, RecursionError) as exc:
                raise StoreError(f"{self.url}/{MANIFEST} is damaged: {type(exc).__name__}: {exc}") from None
            _check_manifest(manifest, self.url)
            self._manifest = manifest
        return self._manifest

    @property
    def n_pairs(self) -> int:
        return len(self.manifest()["pairs"])

    @property
    def chunk_size(self) -> int:
        return int(self.manifest()["identity"]["chunk_size"])

    @property
    def n_chunks(self) -> int:
        return -(-self.n_pairs // self.chunk_size)

    def chunk_range(self, chunk: int) -> range:
        start = chunk * self.chunk_size
        return range(start, min(start + self.chunk_size, self.n_pairs))

    # ---- chunks ----------------------------------------------------------------

    def done_chunks(self) -> set[int]:
        """Chunks whose rows are committed."""
        try:
            names = self.fs.ls(self._path(ROWS), detail=False)
        except FileNotFoundError:
            return set()
        done = set()
        for name in names:
            base = str(name).rsplit("/", 1)[-1]
            if base.startswith("chunk-") and base.endswith(".parquet") and base[6:-8].isdigit():
                chunk = int(base[6:-8])
                if chunk < self.n_chunks:
                    done.add(chunk)
        return done

    def write_chunk(self, chunk: int, similarity: np.ndarray, dissimilarity: np.ndarray, images: np.ndarray,
                    rows: list[dict]) -> None:
        """Write a chunk's maps, then commit its rows (the task that owns the chunk is its only writer)."""
        import pyarrow as pa
        import pyarrow.parquet as pq
        import zarr

        span = self.chunk_range(chunk)
        if len(rows) != len(span) or len(similarity) != len(span):
            raise StoreError(f"chunk {chunk} holds {len(span)} pairs; got {len(rows)} rows")
        group = zarr.open_group(self._zarr, mode="r+")
        group["similarity"][span.start:span.stop] = similarity
        group["dissimilarity"][span.start:span.stop] = dissimilarity
        group["images"][span.start:span.stop] = images
        table = pa.Table.from_pylist(rows, schema=_arrow_schema())
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        self._atomic_write(self._rows_path(chunk), sink.getvalue().to_pybytes())

    def discard_chunk(self, chunk: int) -> None:
        """Forget a committed chunk (its maps are rewritten by the next run)."""
        if self.fs.exists(self._rows_path(chunk)):
            self.fs.rm(self._rows_path(chunk))

    def read_rows(self, chunks: set[int] | None = None):
        """The committed rows (a pyarrow Table in pair order): from ``table.parquet`` when complete."""
        import pyarrow as pa

        done = self.done_chunks() if chunks is None else chunks
        if chunks is None and len(done) == self.n_chunks and self.fs.exists(self._path(TABLE)):
            table = self._read_parquet(self._path(TABLE))
        elif not done:
            table = _arrow_schema().empty_table()
        else:
            table = pa.concat_tables([self._read_parquet(self._rows_path(k)) for k in sorted(done)])
        self._check_rows(table)
        return table

    def consolidate(self) -> None:
        """Write ``table.parquet`` (every row in pair order) once every chunk is done."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = self.read_rows(self.done_chunks())
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        self._atomic_write(self._path(TABLE), sink.getvalue().to_pybytes())

    def read_maps(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One pair's similarity, dissimilarity (as stored) and images (uint8)."""
        import zarr

        try:
            group = zarr.open_group(self._zarr, mode="r")
            arrays = [group[name] for name in ("similarity", "dissimilarity", "images")]
            n, (h, w) = self.n_pairs, self.manifest()["identity"]["input_size"]
            dtype = np.dtype(self.manifest()["identity"]["dtype"])
            expected = [((n, 2, h, w), dtype), ((n, 2, h, w), dtype), ((n, 2, h, w, 3), np.dtype(np.uint8))]
            for array, (shape, kind) in zip(arrays, expected):
                if tuple(array.shape) != shape or array.dtype != kind:
                    raise StoreError(f"{self.url}: array {array.name} is {array.shape} {array.dtype}, "
                                     f"the manifest says {shape} {kind}")
            return tuple(np.asarray(array[index]) for array in arrays)
        except FxplainError:
            raise
        except Exception as exc:  # noqa: BLE001 - zarr and its codecs raise many types on damaged stores
            raise StoreError(f"{self.url}: cannot read the maps of pair {index}: {type(exc).__name__}: "
                             f"{str(exc)[:200]}") from None

    # ---- internals -------------------------------------------------------------

    def _atomic_write(self, path: str, data: bytes) -> None:
        """Write under a temporary name, then rename: readers see the whole file or none."""
        tmp = f"{path}.tmp-{uuid.uuid4().hex}"
        with self.fs.open(tmp, "wb") as f:
            f.write(data)
        self.fs.mv(tmp, path)

    def _read_parquet(self, path: str):
        import pyarrow.parquet as pq

        try:
            with self.fs.open(path, "rb") as f:
                table = pq.read_table(f)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises many types on damaged files
            raise StoreError(f"{self.url}: {path.rsplit('/', 1)[-1]} is damaged: {type(exc).__name__}: "
                             f"{str(exc)[:200]}") from None
        if table.schema.names != list(COLUMNS):
            raise StoreError(f"{self.url}: {path.rsplit('/', 1)[-1]} does not hold a run's rows "
                             f"(columns {table.schema.names[:8]}...)")
        try:
            return table.cast(_arrow_schema())
        except Exception as exc:  # noqa: BLE001
            raise StoreError(f"{self.url}: {path.rsplit('/', 1)[-1]} has columns of the wrong types: {exc}") from None

    def _check_rows(self, table) -> None:
        ids = table.column("pair_id").to_pylist()
        n = self.n_pairs
        if any(i is None or not 0 <= i < n for i in ids) or len(set(ids)) != len(ids):
            raise StoreError(f"{self.url}: the rows' pair ids are not distinct pairs of this run")
        pairs = self.manifest()["pairs"]
        for i, a, b in zip(ids, table.column("a").to_pylist(), table.column("b").to_pylist()):
            if (a, b) != (pairs[i]["a"], pairs[i]["b"]):
                raise StoreError(f"{self.url}: row of pair {i} names other files than the manifest")


def _refuse_constant(name: str) -> Any:
    raise StoreError(f"JSON constant {name} is not allowed in a run's manifest")


def _check_manifest(manifest: Any, url: str) -> None:
    """Refuse a manifest that is not one this module wrote (types and bounds of what readers use)."""
    def bad(what: str) -> StoreError:
        return StoreError(f"{url}/{MANIFEST} is damaged or not fxplain's: {what}")

    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise bad("not an fxplain run manifest")
    if manifest.get("version") != VERSION:
        raise bad(f"version {manifest.get('version')!r}, this fxplain reads version {VERSION}")
    identity, pairs = manifest.get("identity"), manifest.get("pairs")
    if not isinstance(identity, dict) or not isinstance(pairs, list) or not pairs:
        raise bad("no identity or no pairs")
    size = identity.get("input_size")
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(s, int) and 1 <= s <= MAX_SIDE
                                                               for s in size)):
        raise bad(f"input_size {size!r}")
    chunk = identity.get("chunk_size")
    if not isinstance(chunk, int) or isinstance(chunk, bool) or not 1 <= chunk <= 1 << 20:
        raise bad(f"chunk_size {chunk!r}")
    if identity.get("dtype") not in MAP_DTYPES:
        raise bad(f"dtype {identity.get('dtype')!r}")
    for k, pair in enumerate(pairs):
        if not isinstance(pair, dict) or not all(isinstance(pair.get(key), str) for key in
                                                 ("a", "b", "sha256_a", "sha256_b")) \
                or pair.get("same") not in (True, False, None):
            raise bad(f"pair {k}")


#: Identity fields that name things without changing results (not compared when a run is resumed).
_LABELS = ("model_name",)


def describe_differences(stored: dict, asked: dict) -> list[str]:
    """What differs between a store's manifest and the run asked for, in words."""
    # the model's name is a label (a file's name): the same weights under another name are the same run
    out = _dict_differences({k: v for k, v in stored["identity"].items() if k not in _LABELS},
                            {k: v for k, v in asked["identity"].items() if k not in _LABELS}, "")
    p, q = stored["pairs"], asked["pairs"]
    if len(p) != len(q):
        out.append(f"pairs: stored {len(p)}, asked {len(q)}")
    else:
        changed = [k for k, (x, y) in enumerate(zip(p, q)) if (x["a"], x["b"], x["same"]) != (y["a"], y["b"], y["same"])]
        if changed:
            out.append(f"pairs list: {len(changed)} pairs differ (first: pair {changed[0]})")
        for k, (x, y) in enumerate(zip(p, q)):
            for side in "ab":
                if x[side] == y[side] and x[f"sha256_{side}"] != y[f"sha256_{side}"]:
                    out.append(f"image file changed since the run started: {x[side]} (pair {k})")
    return list(dict.fromkeys(out))  # in order, each once


def _dict_differences(a: dict, b: dict, prefix: str) -> list[str]:
    out = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            out += _dict_differences(x, y, f"{prefix}{key}.")
        elif x != y:
            out.append(f"{prefix}{key}: stored {_short(x)}, asked {_short(y)}")
    return out


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= 80 else text[:77] + "..."
