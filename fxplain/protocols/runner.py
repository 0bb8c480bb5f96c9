"""Running an explanation method over a whole pairs list into a result store, in-process or on Dask.

>>> rs = fxplain.explain_pairs(model, fxplain.read_pairs("pairs.txt"), method="corrrise", store="run.zarr")
>>> rs = fxplain.explain_pairs(model, pairs, method="corrrise", store="run.zarr", client=Client(cluster))

The unit of work is a chunk of pairs (``chunk_size``, default 8): it is what
one task computes and writes, and what a rerun skips once committed
(:mod:`fxplain.protocols.store`). Each pair is explained exactly as
:meth:`fxplain.Explainer.explain` would, with the run's seed: its maps depend
on nothing but the pair, the model, the method's parameters and the seed, so
any chunking, order or number of workers gives the same bytes.

On Dask, each task names its chunk and the store; the model travels once: the
driver writes it into the store (``model.fxn``) and each worker process loads
it on its first task and keeps it. A task runs the core with as many threads
as its worker has (its OpenMP setting), so workers do not oversubscribe the
machine. A worker that dies has its chunk redone elsewhere (Dask reschedules
it; the chunk's half-written maps are overwritten and committed once).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from .. import _core
from .._util.errors import FxplainError, InvalidInputError, StoreError
from .._util.files import read_untrusted_file
from .._util.progress import Progress, stage_printer
from .._util.validation import check_positive_int
from .._util.version import __version__
from ..explainer import Explainer
from ..faces.inputs import pair_face_choices
from ..models.face_model import FaceModel
from ..models.scoring import require_threshold
from ..results import _jsonable
from .pairs import Pair, as_pairs
from .store import FORMAT, MAP_DTYPES, VERSION, RunStore, describe_differences, maps_digest

#: The model (and decoder) files a distributed run keeps in its store for the workers.
MODEL_FILE = "model.fxn"
DECODER_FILE = "decoder.fxd"
#: Largest image file a run hashes and reads (far above any photo).
MAX_IMAGE_FILE_BYTES = 256 << 20


def explain_pairs(model, pairs: Any, *, method: str = "corrrise", store: str | os.PathLike, seed: int = 0,
                  face: Any = "largest", channels: str = "RGB", normalize: str | None = None,
                  batch_size: int = 64, dtype: str = "float32", chunk_size: int = 8, client: Any = None,
                  show_progress: bool = True, scorer: Any = None, **method_params: Any):
    """Explain every pair of a protocol into a resumable result store.

    Parameters
    ----------
    model : FaceModel or CallableModel
        The model whose decisions are explained (a model on fxplain's core
        for ``client=``: the workers load it from the store).
    pairs
        From :func:`fxplain.read_pairs` or :func:`fxplain.make_pairs`, a
        pairs file's path, or ``(a, b[, same])`` tuples of image files
        (photos or aligned chips).
    method, seed, normalize, batch_size, **method_params
        As for :class:`fxplain.Explainer` (every pair uses the same seed).
    store
        A new folder (``run.zarr``) or an fsspec URL every worker can reach.
        If it holds a run already, that run is resumed: pairs already
        committed are skipped and half-written ones redone. A store of a
        different run (method, parameters, seed, model, pairs, dtype, chunk
        size or changed image files) is refused with what differs.
    face, channels
        Which face of a photo and the channel order, as for
        :meth:`fxplain.Explainer.explain`.
    dtype : {"float32", "float16"}
        How maps are stored (float16 halves the store; maps read back as float32).
    chunk_size : int
        Pairs per task and per Zarr chunk.
    client : dask.distributed.Client, optional
        Run the chunks on its cluster (``pip install fxplain[dask]``).
        Without it the run is in-process, one chunk in memory at a time.
    show_progress : bool
        A progress bar over pairs, with stage names and time left.
    scorer : callable, optional
        Per-pair scores computed where the pair is explained and kept in its
        row (column ``scores``, JSON; scalar scores also become columns of
        :attr:`ResultSet.table`): ``scorer(model, explanation, same) -> dict``
        with a ``describe() -> dict`` that enters the run's identity. A
        module-level class (it travels to Dask workers by pickle);
        :func:`fxplain.evaluate` passes its deletion/insertion scorer.

    Returns
    -------
    ResultSet
        :func:`fxplain.open_results` of the store.

    A pair whose photo has no face (or another input error) does not stop
    the run: its row records the error (column ``error``) and ``rs[i]``
    raises it.
    """
    from .resultset import open_results

    explainer = Explainer(model, method, seed=seed, batch_size=batch_size, normalize=normalize, **method_params)
    require_threshold(model)
    pairs = as_pairs(pairs)
    pair_face_choices(face)  # refuse a bad choice before any work
    if channels not in ("RGB", "BGR"):
        raise InvalidInputError(f"channels must be 'RGB' or 'BGR', got {channels!r}")
    if dtype not in MAP_DTYPES:
        raise InvalidInputError(f"dtype must be one of {MAP_DTYPES}, got {dtype!r}")
    chunk_size = check_positive_int("chunk_size", chunk_size)
    if client is not None and not isinstance(model, FaceModel):
        raise InvalidInputError("a run on Dask sends the model to its workers as a model file: it needs a model on "
                                "fxplain's core (fxplain.load_model); run a wrapped Python model without client=")
    say = stage_printer(show_progress, "explain_pairs")
    say(f"stage 1/3: hashing the image files of {len(pairs)} pairs")
    manifest = run_manifest(explainer, pairs, face=face, channels=channels, dtype=dtype, chunk_size=chunk_size,
                            scorer=scorer)
    run = RunStore(store)
    if run.exists():
        differences = describe_differences(run.manifest(), manifest)
        if differences:
            raise StoreError(f"{store} holds another run; not resuming it. What differs:\n  "
                             + "\n  ".join(differences) + "\nChoose another store path, or delete this one.")
    else:
        run.create(manifest)
    todo = sorted(set(range(run.n_chunks)) - run.done_chunks())
    remaining = sum(len(run.chunk_range(k)) for k in todo)
    say(f"stage 2/3: explaining {remaining} of {len(pairs)} pairs ({explainer.method.name}, "
        f"{len(todo)} chunks of up to {chunk_size}" + (", on Dask" if client is not None else ", in-process") + ")")
    config = {"face": face, "channels": channels, "scorer": scorer}
    with Progress(remaining, f"{explainer.method.name} pairs", show_progress) as progress:
        if client is None:
            for chunk in todo:
                run_chunk(run, chunk, explainer, config, on_pair=lambda: progress.update(1))
        else:
            _run_on_dask(client, run, todo, model, explainer, method_params, config, progress)
    say("stage 3/3: writing the table")
    run.consolidate()
    return open_results(store)


def run_manifest(explainer: Explainer, pairs: tuple[Pair, ...], *, face: Any, channels: str, dtype: str,
                 chunk_size: int, scorer: Any = None) -> dict:
    """What identifies a run: everything its maps depend on, and the pairs with their files' SHA-256."""
    model = explainer.model
    digests: dict[str, str] = {}
    listed = []
    for k, pair in enumerate(pairs):
        entry = {"a": pair.a, "b": pair.b, "same": pair.same}
        for side in "ab":
            path = getattr(pair, side)
            if path not in digests:
                digests[path] = file_digest(path, f"pair {k}")
            entry[f"sha256_{side}"] = digests[path]
        listed.append(entry)
    identity = {
        "method": explainer.method.name, "params": _jsonable(explainer.method.params), "seed": explainer.seed,
        "normalize": explainer.normalize, "batch_size": explainer.batch_size, "face": _jsonable(face),
        "channels": channels, "model_sha256": model.model_hash, "model_name": getattr(model, "name", "model"),
        "threshold": float(require_threshold(model)), "input_size": list(model.input_size), "dtype": dtype,
        "chunk_size": chunk_size, "fxplain_version": __version__,
        "scorer": None if scorer is None else _jsonable(scorer.describe()),
    }
    return {"format": FORMAT, "version": VERSION, "identity": identity, "pairs": listed}


def file_digest(path: str, where: str) -> str:
    """SHA-256 of an image file's bytes (InvalidInputError naming ``where`` if it cannot be read)."""
    try:
        data = read_untrusted_file(Path(path), "image file", limit=MAX_IMAGE_FILE_BYTES)
    except FxplainError as exc:
        raise InvalidInputError(f"{where}: {exc}") from None
    return hashlib.sha256(data).hexdigest()


def run_chunk(run: RunStore, chunk: int, explainer: Explainer, config: dict, on_pair=None) -> int:
    """Explain one chunk's pairs and commit them; returns the number of pairs."""
    manifest = run.manifest()
    identity = manifest["identity"]
    h, w = identity["input_size"]
    dtype = np.dtype(identity["dtype"])
    span = run.chunk_range(chunk)
    similarity = np.zeros((len(span), 2, h, w), dtype)
    dissimilarity = np.zeros_like(similarity)
    images = np.zeros((len(span), 2, h, w, 3), np.uint8)
    rows = []
    for j, index in enumerate(span):
        pair = manifest["pairs"][index]
        for side in "ab":  # the file explained must be the one the run was started on
            if file_digest(pair[side], f"pair {index}") != pair[f"sha256_{side}"]:
                raise StoreError(f"{pair[side]} changed since the run started (pair {index}); start a new run")
        start = time.perf_counter()
        try:
            result = explainer.explain(pair["a"], pair["b"], face=config["face"], channels=config["channels"])
        except InvalidInputError as exc:  # no face in a photo, an unreadable image: the pair's row says so
            rows.append(_row(index, pair, identity, None, maps_digest(similarity[j], dissimilarity[j], images[j]),
                             time.perf_counter() - start, error=str(exc)))
        else:
            scores = config["scorer"](explainer.model, result, pair["same"]) if config.get("scorer") else None
            similarity[j] = result.similarity.astype(dtype)
            dissimilarity[j] = result.dissimilarity.astype(dtype)
            images[j] = np.clip(np.rint(result.images), 0, 255).astype(np.uint8)
            rows.append(_row(index, pair, identity, result, maps_digest(similarity[j], dissimilarity[j], images[j]),
                             time.perf_counter() - start, scores=scores))
        if on_pair is not None:
            on_pair()
    run.write_chunk(chunk, similarity, dissimilarity, images, rows)
    return len(span)


def _row(index: int, pair: dict, identity: dict, result, digest: str, seconds: float, error: str | None = None,
         scores: dict | None = None):
    faces = (result.extras.get("faces") if result is not None else None) or [None, None]
    boxes = [list(map(int, f["box"])) if isinstance(f, dict) else None for f in faces]
    choices = pair_face_choices(identity["face"])
    row = {
        "pair_id": index, "a": pair["a"], "b": pair["b"], "sha256_a": pair["sha256_a"], "sha256_b": pair["sha256_b"],
        "same": pair["same"], "label": None if pair["same"] is None else ("same" if pair["same"] else "different"),
        "face_a": json.dumps(_jsonable(choices[0])), "face_b": json.dumps(_jsonable(choices[1])),
        "box_a": boxes[0], "box_b": boxes[1], "method": identity["method"],
        "params": json.dumps(identity["params"], sort_keys=True), "seed": identity["seed"],
        "normalize": identity["normalize"], "model_sha256": identity["model_sha256"],
        "model_name": identity["model_name"], "fxplain_version": identity["fxplain_version"],
        "seconds": round(float(seconds), 4), "maps_sha256": digest, "error": error,
        "score": None, "threshold": identity["threshold"], "match": None, "decision": None, "extras": None,
        "scores": None if scores is None else json.dumps(_jsonable(scores), allow_nan=False),
    }
    if result is not None:
        extras = {k: v for k, v in result.extras.items() if k != "faces"}
        row.update(score=float(result.score), threshold=float(result.threshold), match=bool(result.match),
                   decision="match" if result.match else "non-match",
                   extras=json.dumps(_jsonable({**extras, "faces": result.extras.get("faces")}), allow_nan=False))
    return row


# ---- Dask ------------------------------------------------------------------------


def _run_on_dask(client, run: RunStore, todo: list[int], model: FaceModel, explainer: Explainer,
                 method_params: dict, config: dict, progress: Progress) -> None:
    try:
        from distributed import as_completed
    except ImportError:
        raise InvalidInputError("client= needs Dask: pip install 'fxplain[dask]'") from None
    _ensure_file(run, MODEL_FILE, model.save)
    method_params = dict(method_params)
    if hasattr(explainer.method, "decoder_for"):
        # the reconstruction method: the decoder travels like the model (a worker must not train its own default)
        _ensure_file(run, DECODER_FILE, explainer.method.decoder_for(model).save)
        method_params["decoder"] = _FROM_STORE
    settings = {"method": explainer.method.name, "seed": explainer.seed, "batch_size": explainer.batch_size,
                "normalize": explainer.normalize, "method_params": method_params, **config}
    futures = [client.submit(_chunk_task, run.url, chunk, model.model_hash, settings, pure=False) for chunk in todo]
    try:
        for future in as_completed(futures):
            progress.update(future.result())
    finally:  # Ctrl-C or a failed chunk: stop the rest (committed chunks stay; a rerun resumes)
        client.cancel([f for f in futures if not f.done()])


def _ensure_file(run: RunStore, name: str, save) -> None:
    """Keep a file the workers need (the model, a decoder) in the store, once: ``save(path)`` writes it."""
    path = run._path(name)
    if run.fs.exists(path):
        return
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / name
        save(local)
        run._atomic_write(path, local.read_bytes())


#: A method parameter whose value is the file of that name in the store (the decoder).
_FROM_STORE = "fxplain:from-store"
_worker_objects: dict[tuple[str, str], Any] = {}
_worker_lock = threading.Lock()


def _from_store(run: RunStore, name: str, load, check=None):
    """An object of this worker process read from a file of the store on first use, and kept."""
    key = (run.url, name)
    with _worker_lock:
        if key not in _worker_objects:
            with tempfile.TemporaryDirectory() as tmp:
                local = Path(tmp) / name
                local.write_bytes(run.fs.cat_file(run._path(name)))
                value = load(local)
            if check is not None:
                check(value)
            _worker_objects[key] = value
        return _worker_objects[key]


def _local_copy(run: RunStore, name: str) -> str:
    """A local path of a file of the store: the file itself in a local store, else a copy kept by this process."""
    if run.root == run._zarr:  # a local folder
        return run._path(name)

    def keep(path: Path) -> str:
        kept = Path(tempfile.mkdtemp(prefix="fxplain-worker-")) / name
        kept.write_bytes(path.read_bytes())
        return str(kept)
    return _from_store(run, name, keep)


def _worker_model(run: RunStore, model_hash: str) -> FaceModel:
    """The run's model in this worker process, loaded from the store on first use and kept."""
    from ..models.loading import load_model

    def check(model) -> None:
        if model.model_hash != model_hash:
            raise StoreError(f"{run.url}/{MODEL_FILE} is not the run's model (its hash differs)")
    return _from_store(run, MODEL_FILE, load_model, check)


def _chunk_task(url: str, chunk: int, model_hash: str, settings: dict) -> int:
    """One Dask task: explain and commit one chunk, with the worker's thread count."""
    from distributed import get_worker

    try:
        threads = max(1, int(get_worker().state.nthreads))
    except (ValueError, AttributeError):
        threads = 1
    _core.set_num_threads(threads)
    run = RunStore(url)
    model = _worker_model(run, model_hash)
    params = dict(settings["method_params"])
    if params.get("decoder") == _FROM_STORE:  # the method reads its decoder file itself
        params["decoder"] = _local_copy(run, DECODER_FILE)
    explainer = Explainer(model, settings["method"], seed=settings["seed"], batch_size=settings["batch_size"],
                          normalize=settings["normalize"], **params)
    return run_chunk(run, chunk, explainer, {"face": settings["face"], "channels": settings["channels"],
                                             "scorer": settings["scorer"]})
