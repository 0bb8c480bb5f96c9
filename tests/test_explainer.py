"""The Explainer: methods against plain NumPy implementations, results, bad input."""

from __future__ import annotations

import _thread
import json
import subprocess
import sys
import threading

import numpy as np
import pytest

import fxplain
from fxplain.methods import Occlusion
from fxplain.methods import reference as ref


@pytest.fixture(scope="module")
def pair(johns):
    images = johns[0]
    return images[0], images[1]


def _numpy_corrrise(model, image, partner, masks, fill_value):
    """CorrRISE written directly from its definition, on given masks."""
    image = image.astype(np.float64)
    fill = np.broadcast_to(fill_value, image.shape)
    masked = fill + masks[..., None] * (image - fill)
    scores = -np.sum((model.embed(masked.astype(np.float32)).astype(np.float64) - partner) ** 2, axis=1)
    return ref.pearson_map(masks, scores)


def test_corrrise_equals_numpy_implementation_on_the_same_masks(model, pair):
    a, b = pair
    ex = fxplain.Explainer(model, method="corrrise", seed=3, n_masks=40, batch_size=16)
    result = ex.explain(a, b)
    masks = ref.masks_rise(3, 0, 40, 150, 150, 7, 0.5)
    emb = model.embed([a, b]).astype(np.float64)
    for side, (image, partner) in enumerate(((a, emb[1]), (b, emb[0]))):
        want = _numpy_corrrise(model, image, partner, masks, image.reshape(-1, 3).mean(axis=0))
        np.testing.assert_allclose(result.evidence[side], want, rtol=0, atol=1e-4)


def test_spearman_on_binary_masks_equals_rank_correlation(model, pair):
    a, b = pair
    ex = fxplain.Explainer(model, method="corrrise", seed=1, n_masks=30, masks="patches", patch=40, holes=2,
                           correlation="spearman", fill="zero")
    result = ex.explain(a, b)
    masks = ref.masks_patches(1, 0, 30, 150, 150, 40, 2)
    partner = model.embed(b)[0].astype(np.float64)
    masked = (masks[..., None] * a.astype(np.float64)).astype(np.float32)
    scores = -np.sum((model.embed(masked).astype(np.float64) - partner) ** 2, axis=1)
    ranks = np.argsort(np.argsort(scores)) + 1.0  # no ties among continuous scores
    np.testing.assert_allclose(result.evidence[0], ref.pearson_map(masks, ranks), rtol=0, atol=1e-4)


def test_occlusion_equals_numpy_implementation(model, pair):
    a, b = pair
    ex = fxplain.Explainer(model, method="occlusion", patch_sizes=(50, 75), stride=1.0, fill=(10, 20, 30))
    result = ex.explain(a, b)
    emb = model.embed([a, b]).astype(np.float64)
    base = -np.sum((emb[0] - emb[1]) ** 2)
    fill = np.broadcast_to(np.array([10, 20, 30], np.float32), a.shape)
    maps = []
    for rects in Occlusion(patch_sizes=(50, 75), stride=1.0).rects((150, 150)):
        occluded = ref.occlude(a.astype(np.float32), fill, rects)
        scores = -np.sum((model.embed(occluded).astype(np.float64) - emb[1]) ** 2, axis=1)
        total, hits = ref.rect_mean_map(150, 150, rects, scores - base)
        maps.append(-total / hits)
    np.testing.assert_allclose(result.evidence[0], np.mean(maps, axis=0), rtol=0, atol=1e-5)


def test_same_seed_same_maps_and_chunking_does_not_matter(model, pair):
    r1 = fxplain.Explainer(model, seed=5, n_masks=48, batch_size=48).explain(*pair)
    r2 = fxplain.Explainer(model, seed=5, n_masks=48, batch_size=7).explain(*pair)
    r3 = fxplain.Explainer(model, seed=6, n_masks=48).explain(*pair)
    np.testing.assert_allclose(r1.similarity, r2.similarity, atol=1e-5)
    np.testing.assert_allclose(r1.dissimilarity, r2.dissimilarity, atol=1e-5)
    assert not np.allclose(r1.evidence, r3.evidence, atol=1e-3)


def test_result_fields(model, pair):
    r = fxplain.Explainer(model, method="corrrise", n_masks=32)(*pair)
    emb = model.embed(list(pair))
    assert r.similarity.shape == r.dissimilarity.shape == (2, 150, 150)
    assert r.similarity.dtype == np.float32 and r.similarity.min() >= 0 and r.dissimilarity.min() >= 0
    assert not np.any((r.similarity > 0) & (r.dissimilarity > 0))
    assert r.score == pytest.approx(model.score(emb[0], emb[1]))
    assert r.threshold == model.threshold and r.match == (r.score >= r.threshold)
    assert r.method == "corrrise" and r.params["n_masks"] == 32 and r.seed == 0
    assert r.model_hash == model.model_hash and r.model_name == "dlib"
    assert r.margin == pytest.approx(r.score - r.threshold)
    assert "corrrise" in repr(r) and "match" in repr(r)


@pytest.mark.parametrize("normalize", ["pair", "image"])
def test_normalize_is_opt_in(model, pair, normalize):
    raw = fxplain.Explainer(model, n_masks=24).explain(*pair)
    scaled = fxplain.Explainer(model, n_masks=24, normalize=normalize).explain(*pair)
    if normalize == "pair":
        assert max(scaled.similarity.max(), scaled.dissimilarity.max()) == pytest.approx(1.0)
        np.testing.assert_allclose(scaled.evidence * np.abs(raw.evidence).max(), raw.evidence, atol=1e-5)
    else:
        for side in (0, 1):
            assert np.abs(scaled.evidence[side]).max() == pytest.approx(1.0)
    assert raw.normalize is None and np.abs(raw.evidence).max() < 1.0


def test_save_load_round_trip(model, pair, tmp_path):
    r = fxplain.Explainer(model, method="occlusion", patch_sizes=(50,)).explain(*pair)
    path = tmp_path / "r.npz"
    r.save(path)
    back = fxplain.PairExplanation.load(path)
    for name in ("similarity", "dissimilarity", "images"):
        np.testing.assert_array_equal(getattr(back, name), getattr(r, name))
    for name in ("score", "threshold", "match", "method", "params", "seed", "model_hash", "model_name"):
        assert getattr(back, name) == getattr(r, name), name
    with np.load(path, allow_pickle=False) as data:  # metadata is plain JSON, no pickle
        assert json.loads(str(data["meta"]))["method"] == "occlusion"


def test_load_rejects_other_files(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(fxplain.ModelFormatError, match="not a saved fxplain explanation"):
        fxplain.PairExplanation.load(bad)
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(fxplain.ModelFormatError):
        fxplain.PairExplanation.load(tmp_path / "other.npz")
    with pytest.raises(fxplain.InvalidInputError, match="not found"):
        fxplain.PairExplanation.load(tmp_path / "missing.npz")


def test_plot_and_notebook_display(model, pair):
    from matplotlib.figure import Figure

    r = fxplain.Explainer(model, n_masks=16).explain(*pair)
    fig = r.plot()
    assert isinstance(fig, Figure)
    assert len([ax for ax in fig.axes if ax.images]) == 6
    assert "score" in fig._suptitle.get_text()
    assert r._repr_png_().startswith(b"\x89PNG")



def test_plot_shows_dlibs_distance_rule_units_and_draws_into_given_axes(model, pair):
    from matplotlib.figure import Figure

    r = fxplain.Explainer(model, n_masks=16).explain(*pair)
    assert r.distance == pytest.approx(float(np.sqrt(-r.score)))
    assert r.distance_threshold == pytest.approx(0.6)
    fig = r.plot()
    title = fig._suptitle.get_text()
    assert f"distance {r.distance:.3f}" in title and "0.60" in title
    labels = [ax.get_xlabel() for ax in fig.axes if not ax.images]
    assert labels and all(label == "correlation of mask and score" for label in labels), labels
    normalized = fxplain.Explainer(model, n_masks=16, normalize="pair").explain(*pair)
    assert any("largest value" in ax.get_xlabel() for ax in normalized.plot().axes)
    # one panel into the caller's axes (paper figures), or the whole grid into a 2x3 array
    paper = Figure(figsize=(6, 3))
    left, right = paper.subplots(1, 2)
    assert r.plot(ax=left, side="B", kind="similarity") is paper
    assert left.images and left.get_title() == "similarity B" and not right.images
    grid = Figure()
    axes = grid.subplots(2, 3)
    assert r.plot(ax=axes) is grid and all(ax.images for ax in axes.ravel())
    with pytest.raises(fxplain.InvalidInputError, match="side"):
        r.plot(ax=left, side="C")
    with pytest.raises(fxplain.InvalidInputError, match="2x3"):
        r.plot(ax=[left, right])


def test_methods_return_evidence_and_the_registry_lists_them(model, pair):
    from fxplain.methods import METHODS, Evidence

    assert set(METHODS) == {"occlusion", "corrrise", "gradient", "reconstruction"}
    assert fxplain.Explainer.methods()["gradient"]["variant"] == "integrated"
    ex = fxplain.Explainer(model, method="occlusion", patch_sizes=(50,), stride=1.0)
    pixels = np.stack([np.asarray(p, np.float32) for p in pair])
    from fxplain._util.progress import Progress

    with Progress(1, "", False) as progress:
        evidence = ex.method.explain_pair(model, pixels, model.embed(pixels), float(model.score(*model.embed(pixels))),
                                          0, 8, progress)
    assert isinstance(evidence, Evidence)
    assert evidence.similarity.shape == evidence.dissimilarity.shape == (2, 150, 150)
    assert (evidence.similarity >= 0).all() and (evidence.dissimilarity >= 0).all()
    assert not ((evidence.similarity > 0) & (evidence.dissimilarity > 0)).any()  # a signed map, split


def test_explain_pairs_matches_single_explanations(model, johns):
    images = johns[0]
    ex = fxplain.Explainer(model, n_masks=16, seed=2)
    many = ex.explain_pairs([(images[0], images[1]), (images[2], images[30])])
    np.testing.assert_allclose(many[1].evidence, ex.explain(images[2], images[30]).evidence, atol=1e-5)
    assert [r.match for r in many] == [True, False]


def test_wrapped_callable_gives_the_same_maps(model, pair):
    wrapped = fxplain.wrap(lambda x: model.embed(x), input_size=(150, 150), threshold=model.threshold,
                           metric="squared_euclidean", name="dlib via Python", dtype="float32")
    direct = fxplain.Explainer(model, n_masks=20).explain(*pair)
    black_box = fxplain.Explainer(wrapped, n_masks=20).explain(*pair)
    np.testing.assert_allclose(black_box.evidence, direct.evidence, atol=1e-5)
    assert black_box.model_name == "dlib via Python" and len(black_box.model_hash) == 64


def test_wrapped_cosine_model_runs_and_validates_its_output(johns):
    rng = np.random.default_rng(0)
    projection = rng.standard_normal((150 * 150 * 3 // 25, 16)).astype(np.float32)

    def tiny_model(x: np.ndarray) -> np.ndarray:  # a toy embedding: pooled pixels, projected
        pooled = x.reshape(len(x), 30, 5, 30, 5, 3).mean(axis=(2, 4)).reshape(len(x), -1)
        return pooled @ projection

    toy = fxplain.wrap(tiny_model, input_size=(150, 150), threshold=0.5)
    r = fxplain.Explainer(toy, method="occlusion", patch_sizes=(50,)).explain(johns[0][0], johns[0][1])
    assert r.similarity.shape == (2, 150, 150) and -1 <= r.score <= 1
    broken = fxplain.wrap(lambda x: np.ones((len(x), 4)), input_size=(150, 150), threshold=0.5)
    with pytest.raises(fxplain.InvalidInputError, match="wrapped function returned"):
        fxplain.wrap(lambda x: np.ones(3), input_size=(150, 150), threshold=0.5)
    assert broken.embed(johns[0][0]).shape == (1, 4)
    with pytest.raises(fxplain.InvalidInputError, match="input_size"):
        fxplain.wrap(tiny_model, input_size=150, threshold=0.5)


@pytest.mark.parametrize(
    "kwargs,fragment",
    [
        ({"method": "lime"}, "unknown method"),
        ({"n_mask": 10}, "unknown parameter"),
        ({"n_masks": 0}, "n_masks"),
        ({"n_masks": 1}, "n_masks"),
        ({"masks": "stripes"}, "masks must be"),
        ({"p_keep": 1.0}, "p_keep"),
        ({"correlation": "kendall"}, "correlation"),
        ({"correlation": "spearman"}, "binary masks"),
        ({"fill": "noise"}, "fill must be"),
        ({"seed": -1}, "seed"),
        ({"batch_size": 0}, "batch_size"),
        ({"normalize": "minmax"}, "normalize"),
        ({"method": "occlusion", "patch_sizes": ()}, "at least one"),
        ({"method": "occlusion", "stride": 0}, "stride"),
        ({"method": "occlusion", "patch_sizes": (200,)}, "larger than"),
    ],
)
def test_bad_explainer_arguments(model, pair, kwargs, fragment):
    with pytest.raises(fxplain.InvalidInputError, match=fragment):
        fxplain.Explainer(model, **kwargs).explain(*pair)


def test_bad_pairs(model, pair):
    ex = fxplain.Explainer(model, n_masks=8)
    with pytest.raises(fxplain.InvalidInputError, match="150x150"):
        ex.explain(pair[0], np.asarray(pair[1][:100], np.float32))  # float pixels of another size
    with pytest.raises(fxplain.InvalidInputError, match="one image per side"):
        ex.explain(np.stack(pair), pair[1])
    with pytest.raises(fxplain.InvalidInputError, match="at least one"):
        ex.explain_pairs([])
    with pytest.raises(fxplain.InvalidInputError, match="model must be"):
        fxplain.Explainer(object())


def test_non_face_arrays_of_the_right_shape_give_maps(model):
    noise = np.random.default_rng(0).integers(0, 256, (2, 150, 150, 3), dtype=np.uint8)
    r = fxplain.Explainer(model, n_masks=16).explain(noise[0], noise[1])
    assert np.all(np.isfinite(r.similarity)) and np.all(np.isfinite(r.dissimilarity))


def test_ctrl_c_interrupts_cleanly_and_the_model_still_works(model, pair):
    ex = fxplain.Explainer(model, n_masks=20000, batch_size=32)
    timer = threading.Timer(1.0, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            ex.explain(*pair)
    finally:
        timer.cancel()
    r = fxplain.Explainer(model, n_masks=16).explain(*pair)
    assert r.match


_PEAK_RSS = """
import sys
import numpy as np
import fxplain
from fxplain import datasets
images, _, _ = datasets.load_johns()
model = fxplain.load_model("dlib")
fxplain.Explainer(model, n_masks=int(sys.argv[1]), batch_size=64).explain(images[0], images[1])
# VmHWM, this process's own peak: ru_maxrss would start at pytest's peak (kept across fork and exec), and two
# children of a large pytest would then report the same number whatever they used
print(int(next(line for line in open("/proc/self/status") if line.startswith("VmHWM")).split()[1]) // 1024)
"""


def test_peak_memory_does_not_grow_with_the_number_of_masks():
    peak = {}
    for n in (500, 4000):
        out = subprocess.run([sys.executable, "-c", _PEAK_RSS, str(n)], capture_output=True, text=True, timeout=600,
                             check=False)
        assert out.returncode == 0, out.stderr
        peak[n] = int(out.stdout.split()[-1])
    print(f"peak RSS: {peak[500]} MiB at 500 masks, {peak[4000]} MiB at 4000 masks")
    assert peak[4000] < peak[500] + 40
