"""Evaluating explanation methods on a dataset of faces: which method is more faithful?

>>> report = fxplain.evaluate(model, "johns", methods=["occlusion", "corrrise", "gradient"], pairs=20)
>>> report.table          # pandas DataFrame if pandas is installed, else a list of rows
>>> report.save("report/")

Metrics (see docs/evaluation.md):

* deletion / insertion for verification: the most salient pixels of one image
  are removed (or inserted into the fill image) in steps and the pair is
  re-scored against the intact partner. Similarity maps are judged on genuine
  pairs, dissimilarity maps on impostor pairs. Curves are the normalised margin
  ``m_t / m_0`` with ``m = s − τ`` (1 for the intact pair, 0 at the decision
  boundary) and the verification accuracy at the threshold; areas under them
  are reported (deletion: lower is better; insertion: higher is better).
* planted differences: pointing game, energy in the region, region ROC-AUC of
  the hybrid's dissimilarity map.
* sanity: Spearman correlation between the maps of the model and of a copy
  whose last layers are randomised (must drop well below 1).
* correspondence (a table of its own, ``report.tables["correspondence"]``):
  do per-dimension region maps (decoder, gradient, occlusion) lie on the face
  and agree with the model's occlusion maps?
* baselines ``"random"`` and ``"center"`` (a centred Gaussian) go through the
  same metrics.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .._util.errors import InvalidInputError
from .._util.progress import Progress
from .._util.validation import check_positive_int
from ..datasets import load_johns
from ..explainer import Explainer
from ..faces.inputs import align_batch, to_pixel_batch
from ..models.face_model import FaceModel
from ..models.scoring import require_threshold
from ..protocols import Pair, explain_pairs
from ..results import _jsonable
from ..runtime.layers import LAYERS
from . import metrics
from .baselines import center_gaussian_map
from .correspondence import correspondence_table
from .pair_scores import DeletionInsertion, pair_curves
from .planted import planted_difference_pairs
from .report import BASELINES, EvaluationReport
from .sanity import randomized_model

_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def load_dataset(dataset, size: tuple[int, int]) -> tuple[np.ndarray, list[str]]:
    """Images and identity labels from ``"johns"``, a folder, or ``(images, identities)``.

    A folder holds one sub-folder per identity with face images: aligned
    chips of the model's input size, or photos (and chips of another
    model's size, such as johns' 150x150 dlib chips for a 112x112 model),
    whose largest face is detected and aligned as the model's chip.
    """
    if isinstance(dataset, str) and dataset == "johns":
        images, identities, _ = load_johns()
        if images.shape[1:3] != tuple(size):
            images = align_batch(images, size)
        return images, identities
    if isinstance(dataset, tuple) and len(dataset) == 2:
        images, identities = dataset
        images = np.asarray(images)
        images = align_batch(images, size) if images.ndim == 4 and images.shape[1:3] != tuple(size) \
            else to_pixel_batch(images, size).astype(np.uint8)
        if len(identities) != len(images):
            raise InvalidInputError("need one identity label per image")
        return images, [str(i) for i in identities]
    if isinstance(dataset, (str, os.PathLike)):
        root = Path(dataset)
        if not root.is_dir():
            raise InvalidInputError(f"dataset folder not found: {root}")
        files, identities = [], []
        for person in sorted(p for p in root.iterdir() if p.is_dir()):
            for f in sorted(person.iterdir()):
                if f.suffix.lower() in _IMAGE_SUFFIXES:
                    files.append(f)
                    identities.append(person.name)
        if not files:
            raise InvalidInputError(f"{root} holds no images in identity sub-folders")
        return np.clip(np.rint(to_pixel_batch(files, size)), 0, 255).astype(np.uint8), identities
    raise InvalidInputError("dataset must be 'johns', a folder path, or (images, identities)")


def sample_pairs(identities: list[str], n_pairs: int, seed: int = 0) -> list[tuple[int, int, bool]]:
    """``n_pairs`` pairs (i, j, genuine), half genuine and half impostor, drawn without repetition."""
    ids = np.asarray(identities)
    all_pairs = [(i, j) for i in range(len(ids)) for j in range(i + 1, len(ids))]
    genuine = [p for p in all_pairs if ids[p[0]] == ids[p[1]]]
    impostor = [p for p in all_pairs if ids[p[0]] != ids[p[1]]]
    n_gen = n_pairs // 2
    if n_pairs < 2 or n_gen > len(genuine) or n_pairs - n_gen > len(impostor):
        raise InvalidInputError(f"cannot draw {n_pairs} pairs: {len(genuine)} genuine and {len(impostor)} impostor "
                                "pairs are available (need at least one of each)")
    rng = np.random.default_rng(seed)
    chosen = [genuine[k] + (True,) for k in rng.choice(len(genuine), n_gen, replace=False)]
    chosen += [impostor[k] + (False,) for k in rng.choice(len(impostor), n_pairs - n_gen, replace=False)]
    return [(int(i), int(j), bool(g)) for i, j, g in chosen]


def evaluate(model, dataset="johns", methods=("occlusion", "corrrise", "gradient"), *, pairs: int = 20,
             seed: int = 0, steps: int = 20, fill: str = "mean", planted_per_region: int = 3,
             sanity_pairs: int = 1, method_params: dict[str, dict] | None = None,
             store: str | os.PathLike | None = None, client: Any = None,
             cache_dir: str | os.PathLike | None = None, correspondence_faces: int | None = None,
             show_progress: bool = False) -> EvaluationReport:
    """Measure how faithful explanation methods are on a dataset of aligned faces.

    Parameters
    ----------
    model : FaceModel or CallableModel
    dataset : "johns", folder path, or (images, identities)
        A folder has one sub-folder of aligned chips per identity.
    methods : sequence of str
        Explanation methods; the baselines ``"random"`` and ``"center"`` are
        always added.
    pairs : int
        Number of pairs (half genuine, half impostor) for deletion/insertion.
    seed : int
        Seeds the pair sampling, the methods and the planted hybrids.
    steps : int
        Deletion/insertion steps.
    fill : str
        What deleted (and not yet inserted) pixels become: ``"mean"``, ``"blur"``,
        ``"zero"``, ``"gray"`` or a colour, as the methods' ``fill``.
    planted_per_region : int
        Planted-difference hybrids per facial region (0 skips the test; the
        regions are those of 150x150 dlib chips).
    sanity_pairs : int
        Pairs for the model-randomisation test (0 skips it; needs a model on
        fxplain's core).
    method_params : dict, optional
        Parameters per method, e.g. ``{"corrrise": {"n_masks": 1000}}``.
    store : path, optional
        A folder that keeps the whole evaluation: the chips and hybrids as
        PNG files, one result store per method (:func:`fxplain.explain_pairs`
        with the per-pair deletion/insertion scores in its table, and one
        for the planted hybrids) and the baselines' and sanity scores. A
        rerun with the same settings resumes from it and, once complete,
        recomputes nothing; other settings in the same folder are refused.
        Without it, a temporary folder.
    client : dask.distributed.Client, optional
        Explain and score the pairs on a Dask cluster (as :func:`fxplain.explain_pairs`).
    cache_dir : path, optional
        Older name of ``store``.
    correspondence_faces : int, optional
        Faces (one per identity first) for the ``"correspondence"`` table of
        :attr:`EvaluationReport.tables`: for the per-dimension region maps of
        the reconstruction decoder (when ``"reconstruction"`` is among the
        methods, with its ``decoder`` parameter), the model's gradients and
        its occlusion sweep, the share of their mass on the face and their
        rank correlation with the occlusion maps
        (:mod:`fxplain.evaluation.correspondence`). None (default): 3 faces
        when ``"reconstruction"`` is evaluated, else none; 0 skips it. Needs
        a model on fxplain's core.
    show_progress : bool
        Print which method and stage is running.

    Returns
    -------
    EvaluationReport
        Its table's columns say which direction is better
        (:data:`fxplain.evaluation.report.BETTER`).
    """
    require_threshold(model)  # margins and accuracies need one: refuse before any work
    if store is not None and cache_dir is not None and Path(store) != Path(cache_dir):
        raise InvalidInputError("give store= or its older name cache_dir=, not both")
    store = store if store is not None else cache_dir
    method_params = dict(method_params or {})
    names = list(dict.fromkeys(list(methods) + list(BASELINES)))
    for name in names:  # refuse an unknown method or parameter before any work
        if name not in BASELINES:
            Explainer(model, method=name, seed=seed, **method_params.get(name, {}))
    scorer = DeletionInsertion(steps=check_positive_int("steps", steps), fill=fill)
    scorer.describe()
    images, identities = load_dataset(dataset, model.input_size)
    chosen = sample_pairs(identities, pairs, seed)
    planted = (planted_difference_pairs(images, identities, per_region=planted_per_region, seed=seed)
               if planted_per_region > 0 and images.shape[1:3] == (150, 150) else [])
    with tempfile.TemporaryDirectory(prefix="fxplain-evaluate-") as scratch:
        root = Path(store) if store is not None else Path(scratch)
        root.mkdir(parents=True, exist_ok=True)
        files = _EvaluationFiles(root, images)
        pair_list = [Pair(files.chip(i), files.chip(j), genuine) for i, j, genuine in chosen]
        planted_list = [Pair(files.planted(k, p.hybrid, "hybrid"), files.planted(k, p.partner, "partner"), True)
                        for k, p in enumerate(planted)]
        settings = {"dataset": str(dataset) if not isinstance(dataset, tuple) else "arrays", "pairs": pairs,
                    "seed": seed, "steps": steps, "fill": fill, "planted_per_region": planted_per_region,
                    "sanity_pairs": sanity_pairs, "method_params": _jsonable(method_params),
                    "model_hash": model.model_hash}
        rows, curves = [], {}
        with Progress(len(names), "evaluate", show_progress) as progress:
            for name in names:
                run = {"model": model, "seed": seed, "client": client, "show_progress": show_progress,
                       **method_params.get(name, {})}
                if name in BASELINES:
                    row, curves[name] = files.cached(f"baseline-{name}", settings, lambda name=name: _baseline(
                        model, name, images, chosen, planted, scorer, seed))
                else:
                    row, curves[name] = _evaluated_method(root, name, run, pair_list, planted_list, planted, scorer)
                    if sanity_pairs and isinstance(model, FaceModel):
                        row["sanity_spearman"] = files.cached(f"sanity-{name}", settings, lambda name=name: _sanity(
                            model, name, method_params.get(name, {}), seed, images, chosen[:sanity_pairs]))
                rows.append({"method": name, **row})
                progress.update(1)
        tables = {}
        n_faces = correspondence_faces if correspondence_faces is not None else (3 if "reconstruction" in names
                                                                                  else 0)
        if n_faces and isinstance(model, FaceModel):
            tables["correspondence"] = _correspondence(model, images, identities, n_faces, names, method_params)
    keys = list(dict.fromkeys(k for row in rows for k in row))
    rows = [{k: row.get(k, float("nan")) for k in keys} for row in rows]  # baselines have no sanity score
    settings["correspondence_faces"] = n_faces
    settings["store"] = None if store is None else str(store)
    return EvaluationReport(rows, curves, settings, tables)


class _EvaluationFiles:
    """The files of an evaluation's folder: chips and hybrids as PNG, and JSON caches of in-process parts."""

    def __init__(self, root: Path, images: np.ndarray):
        self.root = root
        self.images = images

    def chip(self, index: int) -> str:
        return self._png(self.root / "chips" / f"{index:05d}.png", self.images[index])

    def planted(self, k: int, image: np.ndarray, role: str) -> str:
        return self._png(self.root / "planted" / f"{k:04d}_{role}.png", image)

    @staticmethod
    def _png(path: Path, image: np.ndarray) -> str:
        """Write a chip losslessly; an existing file is rewritten only when its pixels differ (and a stored run
        of the old pixels is then refused: its images changed)."""
        from PIL import Image

        image = np.ascontiguousarray(image, np.uint8)
        if path.is_file():
            try:
                with Image.open(path) as old:
                    if np.array_equal(np.asarray(old.convert("RGB")), image):
                        return str(path)
            except OSError:
                pass
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.png")
        Image.fromarray(image).save(tmp)
        os.replace(tmp, path)
        return str(path)

    def cached(self, name: str, settings: dict, compute):
        """``compute()`` once per settings: its JSON result is kept in ``<name>.json``."""
        path = self.root / f"{name}.json"
        key = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()
        if path.is_file():
            try:
                saved = json.loads(path.read_text())
                if saved.get("settings_sha256") == key:
                    return _from_json(saved["value"])
            except (ValueError, KeyError, OSError, AttributeError):
                pass  # damaged: recompute
        value = compute()
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps({"settings_sha256": key, "value": _jsonable(value)}))
        os.replace(tmp, path)
        return value


def _from_json(value):
    """A cached (row, curves) or number back from JSON: the curves as arrays again."""
    if isinstance(value, list) and len(value) == 2 and isinstance(value[1], dict):
        return value[0], {k: np.asarray(v, np.float64) for k, v in value[1].items()}
    return value


def _evaluated_method(root: Path, name: str, run: dict, pair_list, planted_list, planted, scorer):
    """A method's row and mean curves from its stored run (explained and scored pair by pair, resumably)."""
    results = explain_pairs(pairs=pair_list, method=name, store=root / f"{name}.zarr", scorer=scorer, **run)
    if len(results.failed()):
        raise InvalidInputError(f"{name}: {len(results.failed())} evaluation pairs could not be explained: "
                                f"{results.failed().table['error'].iloc[0]}")
    collected: dict[str, list] = {}
    for scores in results.scores():
        kind = scores["kind"]
        for mode in ("deletion", "insertion"):
            collected.setdefault(f"{mode}_{kind}", []).extend(scores[mode])
            collected.setdefault(f"{mode}_{kind}_accuracy", []).extend(scores[f"{mode}_accuracy"])
    row, curves = _summarised(collected)
    if planted_list:
        stored = explain_pairs(pairs=planted_list, method=name, store=root / f"{name}-planted.zarr",
                               **run)
        row.update(_planted_scores([(r.similarity, r.dissimilarity) for r in stored], planted, ranked=True))
    return row, curves


def _summarised(collected: dict[str, list]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    row: dict[str, Any] = {}
    mean_curves = {}
    for key, values in collected.items():
        curve = np.mean(np.asarray(values, np.float64), axis=0)
        mean_curves[key] = curve
        row[f"{key}_auc"] = metrics.normalized_auc(curve)
    return row, mean_curves


def _planted_scores(maps, planted, ranked: bool) -> dict[str, float]:
    hits, energy, auc = [], [], []
    for (similarity, dissimilarity), p in zip(maps, planted):
        hits.append(metrics.pointing_hit(dissimilarity[0], p.box, tolerance=8))
        energy.append(metrics.energy_in_region(dissimilarity[0], p.box))
        order = dissimilarity - similarity if ranked else dissimilarity
        auc.append(metrics.region_auc(order[0], p.box))
    return {"planted_pointing": float(np.mean(hits)), "planted_energy": float(np.mean(energy)),
            "planted_auc": float(np.mean(auc))}


def _baseline_maps(name: str, image_a: np.ndarray, image_b: np.ndarray, seed: int):
    """(similarity, dissimilarity) of a baseline: random values, or a centred Gaussian, for both sides."""
    shape = image_a.shape[:2]
    if name == "random":
        rng = np.random.default_rng(seed + int(image_a.sum() + 3 * image_b.sum()) % 1_000_003)
        return rng.random((2,) + shape), rng.random((2,) + shape)
    g = center_gaussian_map(shape)
    return np.stack([g, g]), np.stack([g, g])


def _baseline(model, name: str, images, chosen, planted, scorer, seed: int):
    """A baseline's row and curves, in-process (its maps cost nothing; its curves, the model's passes)."""
    collected: dict[str, list] = {}
    for i, j, genuine in chosen:
        similarity, dissimilarity = _baseline_maps(name, images[i], images[j], seed)
        pixels = np.stack([images[i], images[j]]).astype(np.float32)
        scores = pair_curves(model, pixels, similarity if genuine else dissimilarity, genuine, scorer.steps,
                             scorer.fill)
        for mode in ("deletion", "insertion"):
            collected.setdefault(f"{mode}_{scores['kind']}", []).extend(scores[mode])
            collected.setdefault(f"{mode}_{scores['kind']}_accuracy", []).extend(scores[f"{mode}_accuracy"])
    row, curves = _summarised(collected)
    if planted:
        row.update(_planted_scores([_baseline_maps(name, p.hybrid, p.partner, seed) for p in planted], planted,
                                   ranked=False))
    return row, curves


def _sanity(model, name: str, params: dict, seed: int, images, chosen) -> float:
    """Spearman correlation of the method's evidence maps on the model and on a copy with randomised last layers."""
    randomized = randomized_model(model, sum(LAYERS[layer.kind].trainable for layer in model.spec.layers),
                                  seed=seed)
    explainer = Explainer(model, method=name, seed=seed, **params)
    # the method decides how it explains the randomised copy (the reconstruction method keeps the trained
    # model's decoder); the copy's explainer only needs defaults
    other = Explainer(randomized, method=name, seed=seed)
    other.method = explainer.method.for_randomised_model(model)
    rhos = []
    for i, j, _ in chosen:
        before = explainer.explain(images[i], images[j])
        after = other.explain(images[i], images[j])
        rhos.append(metrics.spearman(before.evidence[0], after.evidence[0]))
    return float(np.mean(rhos))


def _correspondence(model, images, identities, n_faces, names, method_params) -> list[dict[str, Any]]:
    """The correspondence table on ``n_faces`` faces, taken one per identity in turn."""
    check_positive_int("correspondence_faces", n_faces)
    seen: dict[str, int] = {}
    rank = []  # how many faces of the same identity come before each face
    for name in identities:
        rank.append(seen.get(name, 0))
        seen[name] = rank[-1] + 1
    chosen = sorted(range(len(identities)), key=lambda i: (rank[i], i))[:n_faces]
    sources = ["gradient", "occlusion"]
    decoder = None
    if "reconstruction" in names:
        method = Explainer(model, method="reconstruction", **method_params.get("reconstruction", {})).method
        decoder = method.decoder_for(model)
        sources.insert(0, "decoder")
    return correspondence_table(model, images[chosen], decoder=decoder, methods=sources)
