"""Command line: ``fxplain info | faces | verify | explain | evaluate | train-decoder | demo`` (also ``python -m fxplain``)."""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def _cmd_info(args: argparse.Namespace) -> int:
    import fxplain

    info = fxplain.backend_info()
    print(f"fxplain {fxplain.__version__}")
    print(f"oneDNN {info['onednn_version']} ({info['onednn_hash'][:12]}), "
          f"CPU runtime {info['cpu_runtime']}, ISA {info['isa']}")
    model = fxplain.load_model(args.model)
    c, h, w = model.spec.input_shape
    print(f"model {model.name}: {model.source}")
    print(f"  input {h}x{w}x{c} RGB, embedding {model.embedding_size}-d, "
          f"{model.spec.flops_per_image() / 1e9:.2f} GFLOP per image")
    if model.metric == "squared_euclidean":
        print(f"  decision: same person iff Euclidean distance < {model.facts['distance_threshold']:g} "
              f"(score = -distance^2 >= {model.threshold:.4f})")
    else:
        print(f"  decision: same person iff cosine similarity >= {model.threshold:.4f}")
    print(f"  weights SHA-256 (fxplain model hash) {model.model_hash}")
    return 0


def _print_verification(label: str, result, seconds: float) -> None:
    verdict = "SAME person" if result.match else "DIFFERENT people"
    print(f"{label}: distance {result.distance:.4f}, score {result.score:.4f} "
          f"(threshold {result.threshold:.4f}) -> {verdict}  [{seconds * 1000:.0f} ms]")


def _cmd_faces(args: argparse.Namespace) -> int:
    import fxplain

    from ._util.images import load_photo

    photo, _ = load_photo(args.photo)
    faces = fxplain.detect_faces(photo, upsample=args.upsample)
    print(f"{args.photo}: {len(faces)} face(s) (dlib's CNN detector, upsample {args.upsample})")
    for k, face in enumerate(faces):
        print(f"  face {k}: box (left, top, right, bottom) {face.box}, confidence {face.confidence:.3f}")
    if args.output:
        from .plotting import plot_faces

        plot_faces(photo, faces).savefig(args.output, dpi=100)
        print(f"wrote {args.output}")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    import fxplain

    model = fxplain.load_model(args.model)
    start = time.perf_counter()
    result = model.verify(args.image_a, args.image_b, face=args.face)
    _print_verification(f"{args.image_a} vs {args.image_b}", result, time.perf_counter() - start)
    return 0


def _face_choice(text: str):
    """``--face``: ``largest``, ``most_confident`` or an index, or two of them, comma-separated (one per side)."""
    items = [int(item) if item.strip().isdigit() else item.strip() for item in text.split(",")]
    return items[0] if len(items) == 1 else tuple(items)


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

    model = fxplain.load_model(args.model)
    explainer = fxplain.Explainer(model, method=args.method, seed=args.seed, show_progress=not args.quiet,
                                  **_method_params(args))
    result = explainer.explain(args.image_a, args.image_b, face=args.face)
    result.plot(on=args.on).savefig(args.output, dpi=100)
    _report(f"{args.method} {args.image_a} vs {args.image_b}", result, args.output)
    if args.save:
        result.save(args.save)
        print(f"  saved the explanation to {args.save}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    import fxplain
    from fxplain import datasets

    model = fxplain.load_model(args.model)
    info = fxplain.backend_info()
    print(f"fxplain {fxplain.__version__} | oneDNN {info['onednn_version']} ({info['isa']}) | model {model!r}")
    paths = datasets.johns_files()
    ids = datasets.johns_identities()
    a = 0
    genuine = next(i for i in range(1, len(paths)) if ids[i] == ids[a])
    impostor = next(i for i in range(1, len(paths)) if ids[i] != ids[a])
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    print("the reconstruction method uses the default decoder: "
          + ("cached" if fxplain.reconstruction.default_decoder_path(model).exists() else
             "training it once on johns and the example photos' faces (a few minutes; "
             "`fxplain train-decoder johns+photos` is the same recipe)"))
    decoder = fxplain.default_decoder(model)
    _demo_photos(model, out, args)
    for method in ("occlusion", "corrrise", "gradient", "reconstruction"):
        params = {"corrrise": {"n_masks": args.n_masks}, "reconstruction": {"decoder": decoder}}.get(method, {})
        explainer = fxplain.Explainer(model, method=method, seed=args.seed, **params)
        print(f"{method} {explainer.method.params}")
        for label, b in (("genuine", genuine), ("impostor", impostor)):
            result = explainer.explain(paths[a], paths[b])
            figure = out / f"{method}_{label}.png"
            result.plot().savefig(figure, dpi=100)
            _report(f"{label} pair {ids[a]}/{paths[a].name} vs {ids[b]}/{paths[b].name}", result, figure)
    images, ids, _ = datasets.load_johns()
    start = time.perf_counter()
    emb = model.embed(images, batch_size=64)
    seconds = time.perf_counter() - start
    _demo_reconstruction(model, decoder, images, ids, emb, (a, genuine, impostor), out)
    pairs, same = datasets.johns_pairs()
    i, j = np.array(pairs).T
    decided = model.score(emb[i], emb[j]) >= model.threshold
    print(f"all {len(pairs)} johns pairs: {np.mean(decided == same) * 100:.1f} % decided correctly "
          f"({same.sum()} genuine, {(~same).sum()} impostor); 55 faces embedded in {seconds:.2f} s")
    return 0


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

    model = fxplain.load_model(args.model)
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

    model = fxplain.load_model(args.model)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    params = {}
    if args.n_masks is not None:
        if "corrrise" not in methods:
            raise fxplain.InvalidInputError("--n-masks sets CorrRISE's masks, but corrrise is not among --methods")
        params["corrrise"] = {"n_masks": args.n_masks}
    start = time.perf_counter()
    report = fxplain.evaluate(model, args.dataset, methods=methods, pairs=args.pairs, seed=args.seed,
                              steps=args.steps, fill=args.fill, planted_per_region=args.planted,
                              sanity_pairs=args.sanity, method_params=params,
                              correspondence_faces=args.correspondence,
                              cache_dir=args.cache or (f"{args.output}/cache"), show_progress=True)
    out = report.save(args.output)
    print(report.to_markdown())
    print(f"report written to {out} ({time.perf_counter() - start:.0f} s)")
    return 0


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

    def command(name: str, func, **kwargs) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], **kwargs)
        p.set_defaults(func=func)
        return p

    command("info", _cmd_info, help="versions, oneDNN ISA, and the model's facts")
    faces = command("faces", _cmd_faces, help="find the faces in a photo (box, confidence), draw them")
    faces.add_argument("photo")
    faces.add_argument("--upsample", type=int, default=0, help="upsample the photo first (small faces), as dlib")
    faces.add_argument("-o", "--output", help="figure to write: the photo with boxes and landmarks (PNG)")
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
    explain.add_argument("--method", default="corrrise", choices=sorted(METHODS))
    variants = sorted({v for cls in METHODS.values() for v in cls.variants})
    explain.add_argument("--variant", choices=variants,
                         help="for methods with variants (" + ", ".join(
                             f"{name}: {'/'.join(cls.variants)}" for name, cls in METHODS.items() if cls.variants)
                         + "; the first is the default; see docs/explanations.md)")
    explain.add_argument("--decoder", help="decoder file for --method reconstruction (default: the default decoder)")
    explain.add_argument("--n-masks", type=int, help="CorrRISE masks per image (default 500)")
    explain.add_argument("--seed", type=int, default=0)
    explain.add_argument("-o", "--output", default="explanation.png", help="figure to write (PNG)")
    explain.add_argument("--on", default="chip", choices=("chip", "photo"),
                         help="draw the maps on the aligned chips (default) or back on the photos")
    explain.add_argument("--save", help="also save the explanation (.npz) here")
    explain.add_argument("--quiet", action="store_true", help="no progress bar")
    evaluate = command("evaluate", _cmd_evaluate, help="measure the faithfulness of explanation methods on a dataset")
    evaluate.add_argument("dataset", help="'johns' or a folder with one sub-folder of aligned chips per identity")
    evaluate.add_argument("--methods", default="occlusion,corrrise,gradient",
                          help="comma-separated methods among " + ", ".join(sorted(METHODS))
                               + " (baselines 'random' and 'center' are always added)")
    evaluate.add_argument("--pairs", type=int, default=20, help="pairs for deletion/insertion (half genuine)")
    evaluate.add_argument("--n-masks", type=int, help="CorrRISE masks per image (default 500)")
    evaluate.add_argument("--steps", type=int, default=20, help="deletion/insertion steps")
    evaluate.add_argument("--fill", default="mean", help="what deleted pixels become: mean, blur, zero, gray")
    evaluate.add_argument("--planted", type=int, default=5, help="planted-difference hybrids per region")
    evaluate.add_argument("--sanity", type=int, default=2, help="pairs for the randomisation test")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--correspondence", type=int, default=None,
                          help="faces for the correspondence table of per-dimension maps (default: 3 with "
                               "--methods including reconstruction, else 0)")
    evaluate.add_argument("-o", "--output", default="report", help="folder for report.md, results.csv, curves.png")
    evaluate.add_argument("--cache", help="explanation cache (default OUTPUT/cache); a rerun resumes from it")
    train = command("train-decoder", _cmd_train_decoder,
                    help="train a face-reconstruction decoder on a folder of aligned chips")
    train.add_argument("images", help="'johns', 'photos' (every face in the example photos), 'johns+photos', or "
                                      "a folder of aligned chips and/or photos (sub-folders per identity are fine)")
    train.add_argument("-o", "--output", default="decoder.fxd", help="decoder file to write (default decoder.fxd)")
    train.add_argument("--steps", type=int, default=1500)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--batch-size", type=int, default=16)
    train.add_argument("--learning-rate", type=float, default=1e-3)
    train.add_argument("--identity-weight", type=float, default=0.1, help="weight of the identity loss (0: off)")
    train.add_argument("--pixel-loss", default="l1", choices=("l1", "l2"))
    train.add_argument("--background", default=DecoderTraining.background, choices=BACKGROUNDS,
                       help="what training does outside the face ellipse (see docs/reconstruction.md)")
    train.add_argument("--checkpoint", help="resumable checkpoint (.npz); an interrupted run resumes from it")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    demo = command("demo", _cmd_demo, help="explain a genuine and an impostor johns pair with each method, "
                                           "and show the decoder's reconstructions")
    demo.add_argument("-o", "--output", default="fxplain_demo", help="folder for the figures")
    demo.add_argument("--n-masks", type=int, default=500, help="CorrRISE masks per image (default 500)")
    demo.add_argument("--seed", type=int, default=0)
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
