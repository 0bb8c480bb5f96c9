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
from ..results import PairExplanation
from ..runtime.layers import LAYERS
from . import metrics
from .baselines import center_gaussian_map
from .correspondence import correspondence_table
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


class _MapSource:
    """Maps of one method (or baseline) for pairs, cached on disk when asked."""

    def __init__(self, model, name: str, params: dict, seed: int, cache_dir: Path | None):
        self.name = name
        self.model = model
        self.seed = seed
        self.cache_dir = cache_dir
        self.explainer = None if name in BASELINES else Explainer(model, method=name, seed=seed, **params)

    def maps(self, image_a: np.ndarray, image_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(similarity, dissimilarity), each (2, H, W)."""
        shape = image_a.shape[:2]
        if self.name == "random":
            rng = np.random.default_rng(self.seed + int(image_a.sum() + 3 * image_b.sum()) % 1_000_003)
            return rng.random((2,) + shape), rng.random((2,) + shape)
        if self.name == "center":
            g = center_gaussian_map(shape)
            return np.stack([g, g]), np.stack([g, g])
        result = self._cached(image_a, image_b)
        return result.similarity, result.dissimilarity

    def _cached(self, image_a, image_b) -> PairExplanation:
        if self.cache_dir is None:
            return self.explainer.explain(image_a, image_b)
        key = hashlib.sha256(json.dumps([self.name, self.explainer.method.params, self.seed,
                                         self.model.model_hash], default=str).encode()
                             + image_a.tobytes() + image_b.tobytes()).hexdigest()[:32]
        path = self.cache_dir / f"{self.name}-{key}.npz"
        if path.exists():
            return PairExplanation.load(path)
        result = self.explainer.explain(image_a, image_b)
        tmp = path.with_suffix(".tmp")
        result.save(tmp)
        os.replace(tmp, path)  # atomic: an interrupted run never leaves a half-written entry
        return result


def _margin_curves(model, image, partner_emb, saliency, steps, fill, base_margin):
    out = {}
    for mode in ("deletion", "insertion"):
        scores = metrics.perturbation_curve(model, image, partner_emb, saliency, steps=steps, mode=mode, fill=fill)
        # m_t / m_0: starts at 1 for genuine and impostor pairs alike
        out[mode] = (scores - require_threshold(model)) / (base_margin if abs(base_margin) > 1e-12 else 1e-12)
    return out


def evaluate(model, dataset="johns", methods=("occlusion", "corrrise", "gradient"), *, pairs: int = 20,
             seed: int = 0, steps: int = 20, fill: str = "mean", planted_per_region: int = 3,
             sanity_pairs: int = 1, method_params: dict[str, dict] | None = None,
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
    cache_dir : path, optional
        Explanations are stored here and reused, so an interrupted run resumes.
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
    """
    require_threshold(model)  # margins and accuracies need one: refuse before any work
    method_params = dict(method_params or {})
    names = list(dict.fromkeys(list(methods) + list(BASELINES)))
    images, identities = load_dataset(dataset, model.input_size)
    chosen = sample_pairs(identities, pairs, seed)
    cache = Path(cache_dir) if cache_dir is not None else None
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
    emb = model.embed_pixels(np.ascontiguousarray(images, np.float32), batch_size=64)
    planted = (planted_difference_pairs(images, identities, per_region=planted_per_region, seed=seed)
               if planted_per_region > 0 and images.shape[1:3] == (150, 150) else [])
    rows, curves = [], {}
    with Progress(len(names), "evaluate", show_progress) as progress:
        for name in names:
            source = _MapSource(model, name, method_params.get(name, {}), seed, cache)
            row, curves[name] = _evaluate_method(model, source, images, emb, chosen, planted, steps, fill,
                                                 sanity_pairs if name not in BASELINES else 0, seed)
            rows.append({"method": name, **row})
            progress.update(1)
    tables = {}
    n_faces = correspondence_faces if correspondence_faces is not None else (3 if "reconstruction" in names else 0)
    if n_faces and isinstance(model, FaceModel):
        tables["correspondence"] = _correspondence(model, images, identities, n_faces, names, method_params)
    keys = list(dict.fromkeys(k for row in rows for k in row))
    rows = [{k: row.get(k, float("nan")) for k in keys} for row in rows]  # baselines have no sanity score
    settings = {"dataset": str(dataset) if not isinstance(dataset, tuple) else "arrays", "pairs": pairs,
                "seed": seed, "steps": steps, "fill": fill, "planted_per_region": planted_per_region,
                "sanity_pairs": sanity_pairs, "method_params": method_params, "model_hash": model.model_hash,
                "correspondence_faces": n_faces}
    return EvaluationReport(rows, curves, settings, tables)


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


def _ranking(source, similarity, dissimilarity, genuine):
    """The map that orders pixels for deletion/insertion.

    Methods are ranked by their signed evidence, so that pixels without any
    similarity are ordered by how dissimilar they are rather than by position;
    a baseline's single map ranks itself.
    """
    if source.name in BASELINES:
        return similarity if genuine else dissimilarity
    return similarity - dissimilarity if genuine else dissimilarity - similarity


def _evaluate_method(model, source, images, emb, chosen, planted, steps, fill, sanity_pairs, seed):
    collected: dict[str, list] = {}
    for i, j, genuine in chosen:
        similarity, dissimilarity = source.maps(images[i], images[j])
        base_margin = model.score(emb[i], emb[j]) - require_threshold(model)
        maps = _ranking(source, similarity, dissimilarity, genuine)
        kind = "similarity" if genuine else "dissimilarity"
        for side, (x, partner) in enumerate(((i, j), (j, i))):
            curves = _margin_curves(model, images[x], emb[partner], maps[side], steps, fill, base_margin)
            for mode, curve in curves.items():
                collected.setdefault(f"{mode}_{kind}", []).append(curve)
                # verification accuracy at the threshold against the pair's label
                matched = curve * base_margin >= 0
                collected.setdefault(f"{mode}_{kind}_accuracy", []).append(matched == genuine)
    row: dict[str, Any] = {}
    mean_curves = {}
    for key, values in collected.items():
        curve = np.mean(np.asarray(values, np.float64), axis=0)
        mean_curves[key] = curve
        row[f"{key}_auc"] = metrics.normalized_auc(curve)
    if planted:
        hits, energy, auc = [], [], []
        for p in planted:
            similarity, dissimilarity = source.maps(p.hybrid, p.partner)
            hits.append(metrics.pointing_hit(dissimilarity[0], p.box, tolerance=8))
            energy.append(metrics.energy_in_region(dissimilarity[0], p.box))
            auc.append(metrics.region_auc(_ranking(source, similarity, dissimilarity, False)[0], p.box))
        row.update(planted_pointing=float(np.mean(hits)), planted_energy=float(np.mean(energy)),
                   planted_auc=float(np.mean(auc)))
    if sanity_pairs and isinstance(model, FaceModel):
        randomized = randomized_model(model, sum(LAYERS[layer.kind].trainable for layer in model.spec.layers),
                                      seed=seed)
        # the method decides how it explains the randomised copy (the reconstruction
        # method keeps the trained model's decoder); the source only needs defaults
        other = _MapSource(randomized, source.name, {}, source.seed, None)
        other.explainer.method = source.explainer.method.for_randomised_model(model)
        rhos = []
        for i, j, _ in chosen[:sanity_pairs]:
            before = np.concatenate(source.maps(images[i], images[j]))
            after = np.concatenate(other.maps(images[i], images[j]))
            rhos.append(metrics.spearman(before[0] - before[2], after[0] - after[2]))
        row["sanity_spearman"] = float(np.mean(rhos))
    return row, mean_curves
