"""Command line: ``fxplain info | faces | verify | explain | explain-pairs | show | identify | regions | report |
evaluate | calibrate | train-decoder | demo`` (also ``python -m fxplain``)."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import warnings

import numpy as np

#: The load options of ``fxplain.load_model`` the CLI offers on every command that loads a model.
_LOAD_OPTIONS = ("threshold", "mean", "std", "channels", "metric", "input_size")


@contextlib.contextmanager
def _plain_warnings(skip: str | None = None):
    """fxplain's warnings (a model file without threshold, too few impostor pairs) as plain lines on stderr.

    ``warnings.warn`` would print a line of fxplain's own source after the
    message; other libraries' warnings go on as usual. fxplain's warnings
    containing ``skip`` are dropped.
    """
    from ._util.errors import FxplainWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            seen = set()
            for w in caught:
                if issubclass(w.category, FxplainWarning):
                    if str(w.message) not in seen and not (skip and skip in str(w.message)):
                        print(f"fxplain: warning: {w.message}", file=sys.stderr)
                    seen.add(str(w.message))
                else:
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _load_options(args: argparse.Namespace) -> dict:
    """The load options given on the command line (only those given: a format refuses those it does not take)."""
    return {name: getattr(args, name) for name in _LOAD_OPTIONS if getattr(args, name, None) is not None}


def _load_model(args: argparse.Namespace, model=None, *, calibrating: bool = False):
    """``fxplain.load_model`` of ``--model`` (or ``model``) with the load options given on the command line."""
    import fxplain

    with _plain_warnings(skip="no decision threshold" if calibrating else None):
        return fxplain.load_model(args.model if model is None else model, **_load_options(args))


def _distance_rule(model) -> str:
    """The model's decision rule in words, or how to get one."""
    from .models.scoring import distance_from_score

    if model.threshold is None:
        return ("no decision threshold (scores and maps work; decisions need one: --threshold T, or "
                "`fxplain calibrate MODEL DATA -o model.fxn`)")
    distance = distance_from_score(model.metric, model.threshold)
    if model.metric == "squared_euclidean":
        return (f"same person iff Euclidean distance < {distance:.4g} "
                f"(score = -distance^2 >= {model.threshold:.4f})")
    return (f"same person iff cosine similarity >= {model.threshold:.4f} "
            f"(cosine distance 1 - cos <= {distance:.4f})")


def _cmd_info(args: argparse.Namespace) -> int:
    import fxplain

    info = fxplain.backend_info()
    print(f"fxplain {fxplain.__version__}")
    print(f"oneDNN {info['onednn_version']} ({info['onednn_hash'][:12]}), "
          f"CPU runtime {info['cpu_runtime']}, ISA {info['isa']}")
    model = _load_model(args)
    c, h, w = model.spec.input_shape
    channels = model.facts.get("channels", "RGB")
    print(f"model {model.name}: {model.source} ({model.facts.get('format', 'model')} file)")
    print(f"  input {h}x{w}x{c} {channels}, embedding {model.embedding_size}-d, metric {model.metric}, "
          f"{model.spec.flops_per_image() / 1e9:.2f} GFLOP per image")
    if "mean" in model.facts and "std" in model.facts:
        def numbers(values) -> str:
            return ", ".join(f"{float(v):g}" for v in values)

        print(f"  preprocessing: (pixel - mean) / std per channel ({channels}), mean {numbers(model.facts['mean'])}, "
              f"std {numbers(model.facts['std'])}")
    print(f"  decision: {_distance_rule(model)}")
    calibration = model.facts.get("calibration")
    if isinstance(calibration, dict):
        shown = {k: f"{v:.4g}" if isinstance(v, float) else v for k, v in calibration.items()}
        print("  threshold calibrated at FMR {} on {} ({} genuine, {} impostor pairs; achieved FMR {}, FNMR {}), "
              "{}, fxplain {}".format(*(shown.get(k, "?") for k in (
                  "fmr", "dataset", "genuine_pairs", "impostor_pairs", "achieved_fmr", "fnmr", "date",
                  "fxplain_version"))))
    print(f"  weights SHA-256 (fxplain model hash) {model.model_hash}")
    return 0


def _print_verification(label: str, result, seconds: float, metric: str = "squared_euclidean") -> None:
    verdict = "SAME person" if result.match else "DIFFERENT people"
    kind = "cosine distance" if metric == "cosine" else "distance"
    print(f"{label}: {kind} {result.distance:.4f}, score {result.score:.4f} "
          f"(threshold {result.threshold:.4f}) -> {verdict}  [{seconds * 1000:.0f} ms]")


def _cmd_faces(args: argparse.Namespace) -> int:
    import fxplain

    from .faces.inputs import load_photo

    photo, _ = load_photo(args.photo)
    faces = fxplain.detect_faces(photo, upsample=args.upsample)
    print(f"{args.photo}: {len(faces)} face(s) (dlib's CNN detector, {_upsample_text(args.upsample, faces)})")
    for k, face in enumerate(faces):
        print(f"  face {k}: box (left, top, right, bottom) {face.box}, confidence {face.confidence:.3f}")
    if args.output:
        from .plotting import plot_faces

        plot_faces(photo, faces).savefig(args.output, dpi=100)
        print(f"wrote {args.output}")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    import fxplain

    model = _load_model(args)
    fxplain.models.require_threshold(model)  # refuse before any work
    start = time.perf_counter()
    image_a, image_b = _chosen_faces(args, model)
    result = model.verify(image_a, image_b)
    _print_verification(f"{args.image_a} vs {args.image_b}", result, time.perf_counter() - start, model.metric)
    return 0


def _upsample_text(upsample, faces) -> str:
    """How faces were searched for, as `fxplain faces`, `verify` and `explain` report it."""
    if upsample != "auto":
        return f"upsample {upsample}"
    if faces and faces[0].upsample > 0:
        return f"upsample {faces[0].upsample}: none found at 0"
    return "upsample 0" + ("" if faces else ", then 1")


def _chosen_faces(args: argparse.Namespace, model) -> tuple:
    """Both inputs, a photo replaced by its chosen Face, each reported with its index in `fxplain faces` order."""
    from .faces.inputs import choose_face_index, is_photo, load_photo, pair_face_choices

    chosen = []
    for side, item, choice in zip("AB", (args.image_a, args.image_b), pair_face_choices(args.face)):
        photo, name = load_photo(item)
        if not is_photo(photo, model.input_size):
            chosen.append(photo)
            continue
        index, faces = choose_face_index(photo, name, choice)
        face = faces[index]
        print(f"{side}: {name}: face {index} of {len(faces)} ({_upsample_text('auto', faces)}), box {face.box}, "
              f"confidence {face.confidence:.3f}")
        chosen.append(face)
    return tuple(chosen)


def _upsample(text: str):
    """``--upsample``: ``auto`` or a number of upsamplings."""
    return text if text == "auto" else int(text)


def _face_choice(text: str):
    """``--face``: ``largest``, ``most_confident`` or an index, or two of them, comma-separated (one per side)."""
    items = [int(item) if item.strip().isdigit() else item.strip() for item in text.split(",")]
    return items[0] if len(items) == 1 else tuple(items)


def _n_masks(text: str):
    """``--n-masks``: a number of masks, or ``auto`` (stop when the maps are stable)."""
    return text if text == "auto" else int(text)


#: Method parameters the CLI offers (``--n-masks``, ``--variant``, ``--decoder``), named as in the Python API.
_METHOD_OPTIONS = ("n_masks", "variant", "decoder")


def _method_params(args: argparse.Namespace) -> dict:
    """The method parameters given on the command line (only those given: the method refuses the others).

    Passing them all to the Explainer makes an option that does not apply to
    the chosen method fail as the Python API fails ("unknown parameter").
    """
    return {name: getattr(args, name) for name in _METHOD_OPTIONS if getattr(args, name, None) is not None}


def _report(label: str, result, path) -> None:
    verdict = "SAME person" if result.match else "DIFFERENT people"
    print(f"  {label}: score {result.score:.4f} (threshold {result.threshold:.4f}) -> {verdict}; "
          f"explained in {result.seconds:.2f} s; figure {path}")


def _cmd_explain(args: argparse.Namespace) -> int:
    import fxplain

    model = _load_model(args)
    explainer = fxplain.Explainer(model, method=args.method, seed=args.seed, show_progress=not args.quiet,
                                  **_method_params(args))
    image_a, image_b = _chosen_faces(args, model)
    result = explainer.explain(image_a, image_b)
    result.plot(on=args.on).savefig(args.output, dpi=100)
    _report(f"{args.method} {args.image_a} vs {args.image_b}", result, args.output)
    if args.save:
        result.save(args.save)
        print(f"  saved the explanation to {args.save}")
    return 0


def _cmd_explain_pairs(args: argparse.Namespace) -> int:
    import os

    import fxplain

    if args.workers is not None and args.scheduler is not None:
        raise fxplain.InvalidInputError("give --workers or --scheduler, not both")
    model = _load_model(args)
    if os.path.isdir(args.pairs):
        pairs = fxplain.make_pairs(args.pairs, impostors=args.impostors, seed=args.seed)
    else:
        pairs = fxplain.read_pairs(args.pairs, root=args.data)
    options = dict(method=args.method, store=args.output, seed=args.seed, face=args.face, dtype=args.dtype,
                   chunk_size=args.chunk_size, show_progress=not args.quiet, **_method_params(args))
    if args.workers is None and args.scheduler is None:
        results = fxplain.explain_pairs(model, pairs, **options)
    else:
        with _dask_client(args) as client:
            results = fxplain.explain_pairs(model, pairs, client=client, **options)
    _print_summary(results)
    return 0


def _dask_client(args: argparse.Namespace):
    """A Dask client: a LocalCluster of ``--workers`` processes (one thread each), or ``--scheduler``'s cluster."""
    from contextlib import ExitStack, contextmanager

    from ._util.errors import InvalidInputError

    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise InvalidInputError("--workers and --scheduler need Dask: pip install 'fxplain[dask]'") from None

    @contextmanager
    def client():
        with ExitStack() as stack:
            if args.scheduler is not None:
                yield stack.enter_context(Client(args.scheduler))
            else:
                if args.workers < 1:
                    raise InvalidInputError(f"--workers must be at least 1, got {args.workers}")
                cluster = stack.enter_context(LocalCluster(n_workers=args.workers, threads_per_worker=1,
                                                           processes=True, dashboard_address=":0"))
                yield stack.enter_context(Client(cluster))
    return client()


def _print_summary(results) -> None:
    summary = results.summary()
    identity = results.identity
    print(f"{results.run.url}: {identity['method']} on {identity['model_name']} (seed {identity['seed']}), "
          f"{summary['done']} of {summary['pairs']} pairs done, {summary['failed']} failed")
    print(f"  decisions: {summary['matches']} match, {summary['non_matches']} non-match")
    if "false_matches" in summary:
        print(f"  against the labels: {summary['true_matches']} true matches, {summary['false_matches']} false "
              f"matches, {summary['false_non_matches']} false non-matches, {summary['true_non_matches']} true "
              "non-matches")
    if "seconds_per_pair" in summary:
        print(f"  time per pair: {summary['seconds_per_pair']:.2f} s (one process's wall time)")
    if summary["done"] < summary["pairs"]:
        print("  incomplete: rerun the same explain-pairs command to resume")


def _cmd_show(args: argparse.Namespace) -> int:
    import fxplain

    results = fxplain.open_results(args.store)
    _print_summary(results)
    if args.rows:
        table = results.table[["pair_id", "a", "b", "label", "score", "decision", "seconds", "error"]]
        print(table.head(args.rows).to_string(index=False))
    return 0


def _cmd_identify(args: argparse.Namespace) -> int:
    import fxplain
    from fxplain import datasets

    model = _load_model(args)
    fxplain.models.require_threshold(model)  # refuse before the gallery is embedded
    source = datasets.johns_dir() if args.gallery == "johns" else args.gallery
    gallery = fxplain.Gallery(model, source, show_progress=not args.quiet)
    result = fxplain.explain_identification(
        model, args.probe, gallery, top_k=args.top_k, method=args.method, combine=args.combine,
        mate=args.mate, face=args.face, seed=args.seed, show_progress=not args.quiet, **_method_params(args))
    print(f"{args.probe}: the {len(result.ranking)} closest of {len(gallery.identities)} identities "
          f"({len(gallery)} images, {gallery.cached} embeddings from the cache) by {model.name}, combine "
          f"{args.combine}; explained by {result.method} in {result.seconds:.1f} s")
    print(result.table())
    c = result.contrast
    print(f"contrast: {c.first.identity} over {c.second.identity} ({c.reason}), "
          f"score difference {c.score:.4f}")
    if args.output:
        result.save(args.output)
        print(f"saved the explanation to {args.output}")
    if args.plot:
        result.plot().savefig(args.plot, dpi=100)
        print(f"figure {args.plot}")
    return 0


def _cmd_regions(args: argparse.Namespace) -> int:
    import fxplain

    results = fxplain.open_results(args.store)
    if args.annotate:
        results = results.annotate(args.annotate, on=args.on)
    table = results.region_table(args.by or None, side=args.side, n_boot=args.n_boot)
    shown = table[table["kind"] == args.kind] if args.kind != "both" else table
    with np.errstate(invalid="ignore"):
        print(shown.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if args.output:
        table.to_csv(args.output, index=False)
        print(f"region table written to {args.output}")
    if args.plot:
        kinds = ("similarity", "dissimilarity") if args.kind == "both" else (args.kind,)
        for kind in kinds:
            path = args.plot if len(kinds) == 1 else args.plot.replace(".png", f"-{kind}.png")
            results.plot_regions(args.by or None, kind=kind, side=args.side, n_boot=args.n_boot).savefig(path, dpi=100)
            print(f"region chart written to {path}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    import fxplain

    index = fxplain.open_results(args.store).report(args.output, max_pairs=args.max_pairs)
    print(f"wrote {index}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    import fxplain
    from fxplain import datasets

    model = _load_model(args)
    fxplain.models.require_threshold(model)  # the demo states decisions: refuse before any work
    info = fxplain.backend_info()
    print(f"fxplain {fxplain.__version__} | oneDNN {info['onednn_version']} ({info['isa']}) | model {model!r}")
    paths = datasets.johns_files()
    ids = datasets.johns_identities()
    a = 0
    genuine = next(i for i in range(1, len(paths)) if ids[i] == ids[a])
    impostor = next(i for i in range(1, len(paths)) if ids[i] != ids[a])
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    # explanations first: the default decoder may need minutes of training on a first run
    _demo_photos(model, out, args)
    for method in ("occlusion", "corrrise", "gradient"):
        params = {"corrrise": {"n_masks": args.n_masks}}.get(method, {})
        _demo_pairs(fxplain.Explainer(model, method=method, seed=args.seed, **params), paths, ids,
                    (a, genuine, impostor), out)
    images, ids, _ = datasets.load_johns()
    start = time.perf_counter()
    emb = model.embed(images, batch_size=64)
    seconds = time.perf_counter() - start
    pairs, same = datasets.johns_pairs()
    i, j = np.array(pairs).T
    decided = model.score(emb[i], emb[j]) >= fxplain.models.require_threshold(model)
    print(f"all {len(pairs)} johns pairs: {np.mean(decided == same) * 100:.1f} % decided correctly "
          f"({same.sum()} genuine, {(~same).sum()} impostor); 55 faces embedded in {seconds:.2f} s")
    if fxplain.reconstruction.default_decoder_path(model).exists():
        print("the reconstruction method uses the default decoder: cached")
    else:
        print("the reconstruction method needs the default decoder: training it once on johns and the example "
              "photos' faces (`fxplain train-decoder johns+photos` is the same recipe); the figures above are "
              "already written. Stages and the time left follow:")
    decoder = fxplain.default_decoder(model)
    _demo_pairs(fxplain.Explainer(model, method="reconstruction", seed=args.seed, decoder=decoder), paths,
                datasets.johns_identities(), (a, genuine, impostor), out)
    _demo_reconstruction(model, decoder, images, ids, emb, (a, genuine, impostor), out)
    return 0


def _demo_pairs(explainer, paths, ids, chosen, out) -> None:
    """The demo's genuine and impostor johns pairs explained by one method, a figure each."""
    a, genuine, impostor = chosen
    print(f"{explainer.method.name} {explainer.method.params}")
    for label, b in (("genuine", genuine), ("impostor", impostor)):
        result = explainer.explain(paths[a], paths[b])
        figure = out / f"{explainer.method.name}_{label}.png"
        result.plot().savefig(figure, dpi=100)
        _report(f"{label} pair {ids[a]}/{paths[a].name} vs {ids[b]}/{paths[b].name}", result, figure)


def _demo_photos(model, out, args) -> None:
    """Faces found in dlib's bald_guys.jpg collage (4 people, 24 photos), and its most alike pair explained."""
    import fxplain
    from fxplain import datasets, plotting

    photo_path = datasets.examples_dir() / "faces" / "bald_guys.jpg"
    start = time.perf_counter()
    faces = fxplain.detect_faces(photo_path)
    seconds = time.perf_counter() - start
    figure = out / "photo_faces.png"
    plotting.plot_faces(faces[0].photo, faces).savefig(figure, dpi=100)
    print(f"photo {photo_path.name}: {len(faces)} faces detected, landmarked and aligned on the core in "
          f"{seconds:.1f} s; figure {figure}")
    emb = model.embed(faces)
    distances = np.sqrt(((emb[:, None] - emb[None]) ** 2).sum(-1)) + np.eye(len(faces)) * 9
    a, b = np.unravel_index(np.argmin(distances), distances.shape)
    far = int(np.argmax(np.where(distances < 9, distances, 0)[a]))
    explainer = fxplain.Explainer(model, method="corrrise", n_masks=args.n_masks, seed=args.seed)
    for label, other in (("most alike", b), ("least alike", far)):
        result = explainer.explain(faces[a], faces[other])
        figure = out / f"photo_{label.replace(' ', '_')}.png"
        result.plot().savefig(figure, dpi=100)
        _report(f"{label} faces in the collage, {a} vs {other}", result, figure)


def _demo_reconstruction(model, decoder, images, ids, emb, chosen, out) -> None:
    """Reconstructions and the for/against dimension grid of the demo's pairs."""
    from fxplain import plotting
    from fxplain.methods.decomposition import margin_contributions

    a, genuine, impostor = chosen
    picks = [a, genuine, impostor]
    rebuilt = decoder.reconstruct(emb[picks])
    again = model.embed(rebuilt)
    same = [float(np.sum((x - y) ** 2)) ** 0.5 for x, y in zip(again, emb[picks])]
    plotting.plot_reconstructions(images[picks], rebuilt, labels=[ids[i] for i in picks]).savefig(
        out / "reconstructions.png", dpi=100)
    print(f"decoder {decoder!r}: faces rebuilt from their features at embedding distance "
          + ", ".join(f"{d:.2f}" for d in same) + f" from the originals; figure {out / 'reconstructions.png'}")
    for label, b in (("genuine", genuine), ("impostor", impostor)):
        c = margin_contributions(model, emb[a], emb[b])
        figure = out / f"dimensions_{label}.png"
        plotting.plot_dimension_grid(images[a], decoder.dimension_maps(emb[a]), c).savefig(figure, dpi=100)
        print(f"  {label} pair: {np.sum(c > 0)} dimensions argue for, {np.sum(c < 0)} against; "
              f"strongest for/against with their regions: {figure}")
    # the atlas over two faces of each identity: which region each dimension encodes, dataset-wide
    spread = [i for name in sorted(set(ids)) for i in [j for j, n in enumerate(ids) if n == name][:2]]
    atlas = decoder.region_atlas(emb[spread])
    atlas.plot().savefig(out / "region_atlas.png", dpi=100)
    print(f"  region atlas over {atlas.faces} faces, dimensions per distinctive region: "
          + ", ".join(f"{name} {n}" for name, n in atlas.counts(distinctive=True).items() if name != "background")
          + f"; mean share on the face {atlas.face_mass().mean():.2f} (uniform 0.45): {out / 'region_atlas.png'}")


def _cmd_train_decoder(args: argparse.Namespace) -> int:
    import fxplain

    model = _load_model(args)
    options = {"batch_size": args.batch_size, "learning_rate": args.learning_rate,
               "identity_weight": args.identity_weight, "pixel_loss": args.pixel_loss,
               "background": args.background}
    start = time.perf_counter()
    decoder = fxplain.train_decoder(model, args.images, steps=args.steps, seed=args.seed,
                                    checkpoint=args.checkpoint, show_progress=not args.quiet, **options)
    path = decoder.save(args.output)
    history = decoder.info["history"]
    tail = slice(-min(50, len(history["pixel"])), None)
    print(f"trained {decoder!r} on {decoder.info['trained_on']} in {time.perf_counter() - start:.0f} s; "
          f"last-50-step losses: pixel {np.mean(history['pixel'][tail]):.4f}, "
          f"identity {np.mean(history['identity'][tail]):.4f}; saved to {path}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    import fxplain

    model = _load_model(args)
    fxplain.models.require_threshold(model)  # margins need one: refuse before any work
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    params = {}
    if args.n_masks is not None:
        if "corrrise" not in methods:
            raise fxplain.InvalidInputError("--n-masks sets CorrRISE's masks, but corrrise is not among --methods")
        params["corrrise"] = {"n_masks": args.n_masks}
    start = time.perf_counter()
    if args.workers is not None and args.scheduler is not None:
        raise fxplain.InvalidInputError("give --workers or --scheduler, not both")
    options = {"methods": methods, "pairs": args.pairs, "seed": args.seed, "steps": args.steps, "fill": args.fill,
                   "planted_per_region": args.planted, "sanity_pairs": args.sanity, "method_params": params,
                   "correspondence_faces": args.correspondence, "store": args.store or f"{args.output}/store",
                   "show_progress": True}
    if args.workers is None and args.scheduler is None:
        report = fxplain.evaluate(model, args.dataset, **options)
    else:
        with _dask_client(args) as client:
            report = fxplain.evaluate(model, args.dataset, client=client, **options)
    out = report.save(args.output)
    print(report.to_markdown())
    print(f"report written to {out} ({time.perf_counter() - start:.0f} s)")
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from pathlib import Path

    import fxplain

    from .models.scoring import distance_from_score

    model = _load_model(args, args.model_file, calibrating=True)
    start = time.perf_counter()
    with _plain_warnings():
        cal = fxplain.calibrate_threshold(model, args.data, fmr=args.fmr)
    seconds = time.perf_counter() - start
    model.threshold = cal.threshold
    model.facts["threshold_source"] = "calibrated"
    print(f"calibrated {model.name} on {args.data} in {seconds:.1f} s: threshold {cal.threshold:.6f}; "
          f"{_distance_rule(model)}")
    print(f"  FMR asked {cal.fmr:g}, achieved {cal.achieved_fmr:.4g}; FNMR {cal.fnmr:.4g}")
    for label, scores in (("genuine", cal.genuine), ("impostor", cal.impostor)):
        print(f"  {label} pairs {len(scores)}: score mean {scores.mean():.4f}, min {scores.min():.4f}, "
              f"max {scores.max():.4f} (distance mean {np.mean(distance_from_score(model.metric, scores)):.4f})")
    output = Path(args.output) if args.output else Path(Path(str(args.model_file)).stem + ".fxn")
    path = model.save(output, calibration=cal, dataset=str(args.data))
    print(f"wrote {path}: network, preprocessing, metric, threshold and calibration record; "
          f"use it as --model {path}")
    return 0


def _per_channel(text: str):
    """``--mean``/``--std``: one number, or three comma-separated (in the model's channel order)."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or three comma-separated numbers, got {text!r}") \
            from None
    if len(values) not in (1, 3):
        raise argparse.ArgumentTypeError(f"expected a number or three comma-separated numbers, got {text!r}")
    return values[0] if len(values) == 1 else tuple(values)


def _input_size(text: str):
    """``--input-size``: ``HxW`` (or one number for a square input)."""
    try:
        values = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HxW, e.g. 112x112, got {text!r}") from None
    if len(values) == 1:
        values = values * 2
    if len(values) != 2:
        raise argparse.ArgumentTypeError(f"expected HxW, e.g. 112x112, got {text!r}")
    return values


def _model_options(threshold: bool = True) -> argparse.ArgumentParser:
    """The load options of ``fxplain.load_model``, as a parent parser (only those given reach load_model)."""
    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group("model options (passed to fxplain.load_model; the preprocessing and metric "
                                       "are for files that do not say them, e.g. ONNX)")
    if threshold:
        group.add_argument("--threshold", type=float, default=argparse.SUPPRESS,
                           help="decision threshold on the score scale (cosine similarity, or -distance^2), "
                                "instead of the file's")
    group.add_argument("--mean", type=_per_channel, default=argparse.SUPPRESS,
                       help="input mean: one number or three comma-separated, in the model's channel order "
                            "(ONNX default 127.5)")
    group.add_argument("--std", type=_per_channel, default=argparse.SUPPRESS,
                       help="input std: one number or three comma-separated (ONNX default 127.5)")
    group.add_argument("--channels", choices=("RGB", "BGR"), default=argparse.SUPPRESS,
                       help="channel order the model reads (ONNX default RGB)")
    group.add_argument("--metric", choices=("cosine", "squared_euclidean"), default=argparse.SUPPRESS,
                       help="how embeddings are compared (ONNX default cosine)")
    group.add_argument("--input-size", type=_input_size, default=argparse.SUPPRESS,
                       help="HxW, for a graph whose input size is dynamic")
    return options


def _method_help() -> str:
    from .methods.base import METHODS

    return "; ".join(f"{name}: {', '.join(f'{k}={v!r}' for k, v in cls.defaults.items())}"
                     for name, cls in METHODS.items())


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``fxplain`` command.

    Method and variant choices come from the method registry
    (:data:`fxplain.methods.METHODS`); ``--model`` is accepted before or
    after the sub-command.
    """
    from . import __version__
    from .methods.base import METHODS
    from .reconstruction.augment import BACKGROUNDS
    from .reconstruction.training import DecoderTraining

    parser = argparse.ArgumentParser(prog="fxplain", description="Explain face-recognition decisions.")
    parser.add_argument("--version", action="version", version=f"fxplain {__version__}")
    parser.add_argument("--model", default="dlib", help="'dlib' (default) or a model file path")
    # the same option on every sub-command; SUPPRESS keeps a value given before the sub-command
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--model", default=argparse.SUPPRESS, help="'dlib' (default) or a model file path")
    sub = parser.add_subparsers(dest="command", required=True)

    model_options = _model_options()

    def command(name: str, func, *, loads_model: bool = True, **kwargs) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common] + ([model_options] if loads_model else []), **kwargs)
        p.set_defaults(func=func)
        return p

    command("info", _cmd_info, help="versions, oneDNN ISA, and the model's facts")
    faces = command("faces", _cmd_faces, loads_model=False, help="find the faces in a photo (box, confidence), draw them")
    faces.add_argument("photo")
    faces.add_argument("--upsample", type=_upsample, default="auto",
                       help="upsample the photo this many times first (small faces), as dlib; 'auto' (what "
                            "verify and explain use, so --face indices refer to this list): 0, then 1 if no face")
    faces.add_argument("-o", "--output", help="figure to write: the photo with boxes and landmarks (PNG)")
    n_masks_help = (f"CorrRISE masks per image (default {METHODS['corrrise'].defaults['n_masks']}, "
                    "from the method registry), or 'auto': stop when the maps are stable")
    face_help = ("which face of a photo: largest (default), most_confident, or its index in 'fxplain faces' "
                 "order; A,B for one per side")
    verify = command("verify", _cmd_verify, help="compare two faces: aligned chips, or photos (largest face)")
    verify.add_argument("image_a")
    verify.add_argument("image_b")
    verify.add_argument("--face", type=_face_choice, default="largest", help=face_help)
    explain = command("explain", _cmd_explain, help="explain the decision on two faces (chips or photos), write a figure",
                      epilog="method parameters and defaults: " + _method_help())
    explain.add_argument("image_a")
    explain.add_argument("image_b")
    explain.add_argument("--face", type=_face_choice, default="largest", help=face_help)
    explain.add_argument("--method", default="corrrise", choices=sorted(METHODS),
                         help="explanation method (default: %(default)s; each method's parameters and their "
                              "defaults are listed below)")
    variants = sorted({v for cls in METHODS.values() for v in cls.variants})
    explain.add_argument("--variant", choices=variants,
                         help="for methods with variants (" + ", ".join(
                             f"{name}: {'/'.join(cls.variants)}" for name, cls in METHODS.items() if cls.variants)
                         + "; the first is the default; see docs/explanations.md)")
    explain.add_argument("--decoder", help="decoder file for --method reconstruction (default: the default decoder)")
    explain.add_argument("--n-masks", type=_n_masks, help=n_masks_help)
    explain.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    explain.add_argument("-o", "--output", default="explanation.png",
                         help="figure to write (PNG; default: %(default)s)")
    explain.add_argument("--on", default="chip", choices=("chip", "photo"),
                         help="draw the maps on the aligned chips (default) or back on the photos")
    explain.add_argument("--save", help="also save the explanation (.npz) here")
    explain.add_argument("--quiet", action="store_true", help="no progress bar")
    evaluate = command("evaluate", _cmd_evaluate, help="measure the faithfulness of explanation methods on a dataset")
    evaluate.add_argument("dataset", help="'johns', or a folder with one sub-folder of images per identity: "
                                          "aligned chips of the model's input size, or photos (their largest face "
                                          "is detected and aligned); images outside the sub-folders are ignored")
    evaluate.add_argument("--methods", default="occlusion,corrrise,gradient",
                          help="comma-separated methods among " + ", ".join(sorted(METHODS))
                               + " (baselines 'random' and 'center' are always added; default: %(default)s)")
    evaluate.add_argument("--pairs", type=int, default=20,
                          help="pairs for deletion/insertion, half genuine (default: %(default)s)")
    evaluate.add_argument("--n-masks", type=_n_masks, help=n_masks_help)
    evaluate.add_argument("--steps", type=int, default=20, help="deletion/insertion steps (default: %(default)s)")
    evaluate.add_argument("--fill", default="mean",
                          help="what deleted pixels become: mean, blur, zero, gray (default: %(default)s)")
    evaluate.add_argument("--planted", type=int, default=5,
                          help="planted-difference hybrids per region (default: %(default)s)")
    evaluate.add_argument("--sanity", type=int, default=2,
                          help="pairs for the randomisation test (default: %(default)s)")
    evaluate.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    evaluate.add_argument("--correspondence", type=int, default=None,
                          help="faces for the correspondence table of per-dimension maps (default: 3 with "
                               "--methods including reconstruction, else 0)")
    evaluate.add_argument("-o", "--output", default="report",
                          help="folder for report.md, results.csv, curves.png (default: %(default)s)")
    evaluate.add_argument("--store", "--cache", dest="store",
                          help="folder keeping the evaluation's result stores (default OUTPUT/store); a rerun "
                               "resumes from it, and recomputes nothing once complete")
    evaluate.add_argument("--workers", type=int, help="explain and score on a local Dask cluster of this many "
                                                      "worker processes")
    evaluate.add_argument("--scheduler", help="explain and score on the Dask cluster of this scheduler address")
    pairs = command("explain-pairs", _cmd_explain_pairs,
                    help="explain every pair of a protocol (LFW pairs.txt, a CSV a,b[,same], or an identity "
                         "folder) into a resumable result store",
                    epilog="method parameters and defaults: " + _method_help())
    pairs.add_argument("pairs", help="LFW's pairs.txt, a CSV file (a,b[,same]), or a folder with one sub-folder "
                                     "per identity (all genuine pairs plus --impostors impostor pairs)")
    pairs.add_argument("--data", help="folder the pairs file's image paths are relative to (default: the pairs "
                                      "file's folder)")
    pairs.add_argument("--impostors", type=int, default=0,
                       help="impostor pairs drawn from an identity folder (default: %(default)s)")
    pairs.add_argument("--method", default="corrrise", choices=sorted(METHODS), help="default: %(default)s")
    pairs.add_argument("--variant", choices=variants, help="the method's variant (see explain --help)")
    pairs.add_argument("--decoder", help="decoder file for --method reconstruction")
    pairs.add_argument("--n-masks", type=_n_masks, help=n_masks_help)
    pairs.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    pairs.add_argument("--face", type=_face_choice, default="largest", help=face_help)
    pairs.add_argument("-o", "--output", required=True,
                       help="result store (a new folder such as run.zarr); an existing store of the same run "
                            "is resumed")
    pairs.add_argument("--dtype", default="float32", choices=("float32", "float16"),
                       help="how maps are stored (default: %(default)s)")
    pairs.add_argument("--chunk-size", type=int, default=8, help="pairs per task and per Zarr chunk "
                                                                 "(default: %(default)s)")
    pairs.add_argument("--workers", type=int, help="run on a local Dask cluster of this many worker processes")
    pairs.add_argument("--scheduler", help="run on the Dask cluster of this scheduler address (tcp://host:8786); "
                                           "the store must be a path every worker sees")
    pairs.add_argument("--quiet", action="store_true", help="no progress bar")
    show = command("show", _cmd_show, loads_model=False, help="summarise a result store: counts, decisions "
                                                              "against labels, time per pair")
    show.add_argument("store", help="a result store written by explain-pairs")
    show.add_argument("--rows", type=int, default=0, help="also print the first ROWS rows of the table")
    identify = command("identify", _cmd_identify,
                       help="search a gallery of identities for a probe face; explain the ranking (pair maps "
                            "of the top identities, contrastive maps of rank 1 against rank 2 or the mate)",
                       epilog="method parameters and defaults: " + _method_help())
    identify.add_argument("probe", help="the probe face: an aligned chip or a photo")
    identify.add_argument("--gallery", required=True,
                          help="a folder with one sub-folder of images (chips or photos) per identity, or "
                               "'johns'; its embeddings are cached in ~/.cache/fxplain/galleries")
    identify.add_argument("--top-k", type=int, default=5,
                          help="identities to rank and explain (default: %(default)s)")
    identify.add_argument("--combine", choices=("mean", "best"), default="mean",
                          help="an identity's images: their mean embedding, or the best-scoring one "
                               "(default: %(default)s)")
    identify.add_argument("--mate", help="the probe's true identity: if it is not rank 1, the contrast "
                                         "explains why rank 1 beats it")
    identify.add_argument("--method", default="corrrise", choices=sorted(METHODS),
                          help="default: %(default)s")
    identify.add_argument("--variant", choices=variants, help="the method's variant (see explain --help)")
    identify.add_argument("--decoder", help="decoder file for --method reconstruction")
    identify.add_argument("--n-masks", type=_n_masks, help=n_masks_help)
    identify.add_argument("--face", type=_face_choice, default="largest",
                          help="which face of a probe photo: largest (default), most_confident or an index")
    identify.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    identify.add_argument("-o", "--output", help="save the explanation here (.fxi)")
    identify.add_argument("--plot", help="figure to write (PNG)")
    identify.add_argument("--quiet", action="store_true", help="no progress bar")
    regions = command("regions", _cmd_regions, loads_model=False,
                      help="facial-region table of a result store: mean share of similarity and dissimilarity "
                           "per region, grouped by outcome or your own columns, with bootstrap intervals")
    regions.add_argument("store", help="a result store written by explain-pairs")
    regions.add_argument("--by", nargs="+", help="group by these columns (default: outcome, i.e. true/false "
                                                 "match/non-match); add your own with --annotate")
    regions.add_argument("--annotate", help="CSV with a column naming image files (--on) and columns of your own "
                                            "(group, capture condition ...), matched to each side's file")
    regions.add_argument("--on", default="file", help="the CSV column naming files (default: %(default)s)")
    regions.add_argument("--kind", choices=("similarity", "dissimilarity", "both"), default="both",
                         help="which maps' shares to print (default: %(default)s)")
    regions.add_argument("--side", choices=("both", "A", "B"), default="both",
                         help="average both faces of a pair, or take one side (default: %(default)s)")
    regions.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (default: %(default)s)")
    regions.add_argument("-o", "--output", help="also write the table as CSV")
    regions.add_argument("--plot", help="also draw the bar chart and the shares over the mean face (PNG)")
    report = command("report", _cmd_report, loads_model=False,
                     help="write an HTML report of a result store: settings, decisions against labels (FMR, "
                          "FNMR), false matches and non-matches, regions, time per pair, failed pairs")
    report.add_argument("store", help="a result store written by explain-pairs")
    report.add_argument("-o", "--output", required=True,
                        help="folder for index.html and its figures: new, empty, or a previous report (replaced)")
    report.add_argument("--max-pairs", type=int, default=12,
                        help="pairs drawn in each grid of false matches / non-matches (default: %(default)s)")
    train = command("train-decoder", _cmd_train_decoder,
                    help="train a face-reconstruction decoder on a folder of photos and/or aligned chips")
    train.add_argument("images", help="'johns', 'photos' (every face in the example photos), 'johns+photos', or "
                                      "a folder of aligned chips and/or photos (sub-folders per identity are fine)")
    train.add_argument("-o", "--output", default="decoder.fxd",
                       help="decoder file to write (default: %(default)s)")
    train.add_argument("--steps", type=int, default=1500, help="training steps (default: %(default)s)")
    train.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    train.add_argument("--batch-size", type=int, default=16, help="faces per step (default: %(default)s)")
    train.add_argument("--learning-rate", type=float, default=1e-3,
                       help="Adam's learning rate (default: %(default)s)")
    train.add_argument("--identity-weight", type=float, default=0.1,
                       help="weight of the identity loss, 0: off (default: %(default)s)")
    train.add_argument("--pixel-loss", default="l1", choices=("l1", "l2"), help="default: %(default)s")
    train.add_argument("--background", default=DecoderTraining.background, choices=BACKGROUNDS,
                       help="what training does outside the face ellipse (see docs/reconstruction.md; "
                            "default: %(default)s)")
    train.add_argument("--checkpoint", help="resumable checkpoint (.npz); an interrupted run resumes from it")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    calibrate = sub.add_parser(
        "calibrate", parents=[_model_options(threshold=False)],
        help="set a model's decision threshold at a false-match rate on faces of known identity; save it with "
             "its preprocessing as a face-model file (.fxn) for --model")
    calibrate.set_defaults(func=_cmd_calibrate)
    calibrate.add_argument("model_file", metavar="MODEL", help="'dlib' or a model file (ONNX, .dat, .fxn)")
    calibrate.add_argument("data", metavar="DATA", help="'johns' or a folder with one sub-folder of faces per identity")
    calibrate.add_argument("--fmr", type=float, default=1e-3,
                           help="false-match rate: the share of impostor pairs allowed to match (default 1e-3)")
    calibrate.add_argument("-o", "--output", help="face-model file to write (default: MODEL's name with .fxn)")
    demo = command("demo", _cmd_demo, help="explain a genuine and an impostor johns pair with each method, "
                                           "and show the decoder's reconstructions")
    demo.add_argument("-o", "--output", default="fxplain_demo",
                      help="folder for the figures (default: %(default)s)")
    demo.add_argument("--n-masks", type=int, default=500,
                      help="CorrRISE masks per image (default: %(default)s)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fxplain`` console script."""
    from ._util.errors import FxplainError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except FxplainError as exc:
        print(f"fxplain: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
