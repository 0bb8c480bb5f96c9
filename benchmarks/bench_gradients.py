"""Gradient speed and correctness: fxplain's C-core backward pass versus PyTorch autograd.

Both sides differentiate the same :class:`~fxplain.runtime.spec.NetworkSpec` of dlib's
face network (``model.spec``; the torch side is
``torch_network.build_torch_module`` made differentiable by
``torch_network.differentiable``). Gradients are taken with respect to the
float32 pixels on the 0-255 scale, so both include the network's 1/256 input
scale.

Correctness (checked before timing; exit status 1 on failure):

* ``model.input_gradient`` of ``--check-chips`` johns chips with a random
  ``grad_output`` (``--seed``) against torch autograd, as max |diff| and
  relative error max|diff| / max|torch grad|.
* ``model.dimension_maps`` of chip ``--image`` against the same maps from the
  full (128, 150, 150, 3) Jacobian in torch: ``|J|`` summed over colour, each
  map normalised to sum 1.

Both are compared with torch in float32 (the timed peer) and in float64. The
pass/fail gate uses float64: float32 torch itself can differ from the exact
gradient by ~5e-3 relative on a chip (chip 1 with the defaults): a max-pool
window after the first ReLU holds a near-tie that float32 rounding in torch's
convolution resolves the other way, routing that window's gradient to another
pixel. fxplain agrees with float64 there, so a float32-vs-float32 gate would
fail on a discontinuity of the network, not on an error in either library.

Timing (repeats alternate between the variants so that drift hits all alike;
the median is reported):

* Region maps of one image, (D, H, W) with D = 128: fxplain
  ``dimension_maps`` (D copies of the image through batched forward+backward
  passes in the C core) against two ways a competent PyTorch user would get
  the Jacobian, each in every ``--torch-layouts`` memory format:

  - ``jacrev``: ``torch.func.jacrev`` (one forward, then ``vmap`` of ``vjp``
    over the D unit vectors: one backward batched over D);
  - ``batched B``: B copies of the image per forward pass and
    ``torch.autograd.grad(outputs, inputs, grad_outputs=eye)`` (D forwards,
    D backwards, as fxplain does).

  The fastest torch variant is the peer of the ratio. The torch side
  includes the |.|, colour sum and normalisation, as fxplain's does.
* ``input_gradient`` of ``--batch`` chips with a random ``grad_output``
  (images/s), against one torch forward+backward of the same batch.
* The integrated variant's map of one image against a partner
  (``fxplain.methods.integrated.integrated_score_map``: ``--path-steps`` x
  ``--path-samples`` noisy path points, 15 grey levels, each a forward and a
  backward pass of the score against the partner's embedding) against the same
  points pushed through torch autograd in batches of ``--batch``; the two maps
  are compared too (same points, drawn from the same seed).

Usage::

    python benchmarks/bench_gradients.py [--threads 2] [--repeats 3] [--batch 32]
                                         [--torch-layouts channels_last,nchw]

Measured on the reference machine (2 AVX-512 cores, torch 2.13.0+cpu, 2
threads, load ~1.5, 2026-11-27): region maps fxplain 0.61 s/image vs torch
jacrev (channels_last) 0.69 s, so torch/fxplain = 1.13 (0.97 in an earlier,
quieter run: read parity); input_gradient at batch 32: fxplain 182 img/s vs
torch 171 (channels_last), 142 (NCHW); integrated map (16 x 8 points):
fxplain 0.83 s vs torch 0.86 s, ratio 1.04 (0.86-0.95 in later runs at
load ~1.8), maps equal to 6e-4 relative.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Timing, measure, start_benchmark
from torch_network import TorchNetwork, build_torch_module, differentiable

LAYOUTS = ("channels_last", "nchw")


# ---- PyTorch -------------------------------------------------------------------


def torch_network(spec: Any, layout: str, dtype: torch.dtype = torch.float32) -> TorchNetwork:
    """A differentiable torch module of ``spec`` in the given memory format and dtype."""
    module = differentiable(build_torch_module(spec, channels_last=layout == "channels_last"))
    return module.to(dtype)


def torch_input_gradient(module: TorchNetwork, pixels: np.ndarray, grad_output: np.ndarray,
                         dtype: torch.dtype = torch.float32) -> np.ndarray:
    """Gradient of ``sum(module(pixels) * grad_output)`` w.r.t. the (N, H, W, 3) pixels, by autograd."""
    x = torch.from_numpy(pixels).to(dtype).requires_grad_(True)
    (grad,) = torch.autograd.grad(module(x), x, grad_outputs=torch.from_numpy(grad_output).to(dtype))
    return grad.numpy()


def normalised_maps(jacobian: torch.Tensor) -> torch.Tensor:
    """(D, H, W) maps from a (D, H, W, 3) Jacobian: |J| summed over colour, each map summing to 1."""
    maps = jacobian.abs().sum(dim=-1)
    totals = maps.sum(dim=(1, 2), keepdim=True)
    return maps / torch.where(totals > 0, totals, torch.ones_like(totals))


def jacobian_jacrev(module: TorchNetwork, image: np.ndarray,
                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(D, H, W, 3) Jacobian of one uint8 image by ``torch.func.jacrev``: one forward, vmapped vjp."""
    x = torch.from_numpy(image[None]).to(dtype)
    jac = torch.func.jacrev(module)(x)  # (1, D, 1, H, W, 3)
    return jac.reshape(jac.shape[1], *image.shape)


def jacobian_batched(module: TorchNetwork, image: np.ndarray, batch: int,
                     dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(D, H, W, 3) Jacobian of one uint8 image from ``batch`` copies per forward+backward pass.

    Copy k of a chunk gets cotangent e_k, so its input gradient is row k of
    the Jacobian (the copies must be separate leaves: gradients of views of one
    tensor would be summed).
    """
    x = torch.from_numpy(image[None]).to(dtype)
    with torch.no_grad():
        d = module(x).shape[1]
    eye = torch.eye(d, dtype=dtype)
    rows = []
    for start in range(0, d, batch):
        cotangents = eye[start:start + batch]
        copies = x.expand(len(cotangents), *image.shape).clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(module(copies), copies, grad_outputs=cotangents)
        rows.append(grad)
    return torch.cat(rows)


def torch_map_variants(spec: Any, layouts: list[str], batches: list[int]
                       ) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """Name -> function computing the (D, H, W) maps of a uint8 image, for every approach and layout."""
    variants: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
    for layout in layouts:
        module = torch_network(spec, layout)
        variants[f"torch jacrev ({layout})"] = (
            lambda image, m=module: normalised_maps(jacobian_jacrev(m, image)).numpy())
        for batch in batches:
            variants[f"torch batched {batch} ({layout})"] = (
                lambda image, m=module, b=batch: normalised_maps(jacobian_batched(m, image, b)).numpy())
    return variants


def torch_integrated_map(module: TorchNetwork, image: np.ndarray, reference: np.ndarray, ref_emb: np.ndarray,
                         points: np.ndarray, batch: int) -> np.ndarray:
    """(H, W) path map: mean over ``points`` of d(−‖f(x) − r‖²)/dx, times (A − B), summed over colour."""
    ref = torch.from_numpy(ref_emb.astype(np.float32))
    grad_sum = torch.zeros(image.shape, dtype=torch.float64)
    for start in range(0, len(points), batch):
        x = torch.from_numpy(points[start:start + batch]).requires_grad_(True)
        score = -((module(x) - ref) ** 2).sum()
        (grad,) = torch.autograd.grad(score, x)
        grad_sum += grad.sum(dim=0, dtype=torch.float64)
    diff = image.astype(np.float64) - reference
    return np.sum(grad_sum.numpy() / len(points) * diff, axis=-1)


# ---- correctness ---------------------------------------------------------------


def relative_error(value: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """(max |value - reference|, that divided by max |reference|), in float64."""
    diff = float(np.abs(value.astype(np.float64) - reference.astype(np.float64)).max())
    return diff, diff / float(np.abs(reference).max())


def check_input_gradient(model: Any, spec: Any, chips: np.ndarray, seed: int, layout: str,
                         tolerance: float) -> bool:
    """Compare ``model.input_gradient`` with torch autograd (float32 and float64); print per chip."""
    grad_output = np.random.default_rng(seed).standard_normal((len(chips), model.embedding_size))
    grad_output = grad_output.astype(np.float32)
    fx = model.input_gradient(chips, grad_output, batch_size=len(chips))
    t32 = torch_input_gradient(torch_network(spec, layout), chips, grad_output)
    # Layout is irrelevant in float64 (no oneDNN path); NCHW avoids a reorder.
    t64 = torch_input_gradient(torch_network(spec, "nchw", torch.float64), chips, grad_output, torch.float64)

    print(f"\ninput_gradient of {len(chips)} johns chips, grad_output ~ N(0, 1) (seed {seed}); "
          f"relative error = max|diff| / max|reference|")
    print(f"{'chip':>4} {'fx vs torch32':>13} {'fx vs torch64':>13} {'torch32 vs 64':>13}")
    for i in range(len(chips)):
        print(f"{i:>4} {relative_error(fx[i], t32[i])[1]:>13.2e} {relative_error(fx[i], t64[i])[1]:>13.2e} "
              f"{relative_error(t32[i], t64[i])[1]:>13.2e}")
    for name, reference in ((f"torch float32 ({layout})", t32), ("torch float64", t64)):
        diff, rel = relative_error(fx, reference)
        print(f"all  fxplain vs {name:<24} max|diff| {diff:.3g}  relative {rel:.3g}")
    _, rel64 = relative_error(fx, t64)
    return rel64 <= tolerance


def check_dimension_maps(fx_maps: np.ndarray, torch32_maps: np.ndarray, torch32_name: str, spec: Any,
                         image: np.ndarray, tolerance: float) -> bool:
    """Compare fxplain's maps with the timed torch peer's (float32) and with float64 torch maps."""
    maps64 = normalised_maps(jacobian_batched(torch_network(spec, "nchw", torch.float64), image, 32,
                                              torch.float64)).numpy()
    print(f"\ndimension_maps {fx_maps.shape}: relative error = max|diff| / max|torch map|")
    for name, reference in ((torch32_name, torch32_maps), ("torch float64 Jacobian", maps64)):
        diff, rel = relative_error(fx_maps, reference)
        print(f"  fxplain vs {name:<32} max|diff| {diff:.3g}  relative {rel:.3g}")
    _, rel64 = relative_error(fx_maps, maps64)
    return rel64 <= tolerance


# ---- command line --------------------------------------------------------------


def parse_layouts(text: str) -> list[str]:
    layouts = [part.strip() for part in text.split(",") if part.strip()]
    if not layouts or set(layouts) - set(LAYOUTS):
        raise argparse.ArgumentTypeError(f"expected channels_last and/or nchw, got {text!r}")
    return layouts


def parse_batches(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers separated by commas, got {text!r}")
    return values


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="threads for both libraries (default: os.cpu_count())")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats per variant (default: 3)")
    parser.add_argument("--min-time", type=float, default=1.0,
                        help="minimum seconds of work per repeat (default: 1.0)")
    parser.add_argument("--batch", type=int, default=32,
                        help="images per input_gradient call, and fxplain's batch_size (default: 32)")
    parser.add_argument("--jacobian-batches", type=parse_batches, default=parse_batches("32,128"),
                        help="copies per pass of the torch 'batched' Jacobian (default: 32,128)")
    parser.add_argument("--torch-layouts", type=parse_layouts, default=list(LAYOUTS),
                        help="torch memory formats to time (default: channels_last,nchw)")
    parser.add_argument("--image", type=int, default=0, help="johns chip of the region maps (default: 0)")
    parser.add_argument("--check-chips", type=int, default=6,
                        help="johns chips of the input_gradient check (default: 6)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random grad_output (default: 0)")
    parser.add_argument("--path-steps", type=int, default=16, help="integrated variant: path nodes (default: 16)")
    parser.add_argument("--path-samples", type=int, default=8,
                        help="integrated variant: noisy draws per node (default: 8)")
    parser.add_argument("--partner", type=int, default=1, help="johns chip the integrated map is against (default: 1)")
    parser.add_argument("--grad-tolerance", type=float, default=1e-4,
                        help="largest relative error of input_gradient vs float64 torch (default: 1e-4)")
    parser.add_argument("--maps-tolerance", type=float, default=1e-3,
                        help="largest relative error of dimension_maps vs float64 torch (default: 1e-3)")
    return parser.parse_args(argv)


def print_table(title: str, timings: dict[str, Timing], unit: Callable[[float], str], unit_name: str,
                baseline: str) -> str:
    """Median (best) per variant and its time ratio to ``baseline``; returns the fastest other variant."""
    print(f"\n{title}")
    print(f"{'variant':<34} {unit_name + ' median (best)':>22} {'s / fxplain s':>13}")
    base = timings[baseline].median
    for name, t in timings.items():
        print(f"{name:<34} {unit(t.median):>10} ({unit(t.best):>9}) {t.median / base:>13.2f}")
    return min((name for name in timings if name != baseline), key=lambda name: timings[name].median)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    fxplain, model, images, identities = start_benchmark(args.threads)
    spec = model.spec
    image = np.ascontiguousarray(images[args.image])
    batch = np.ascontiguousarray(images[np.arange(args.batch) % len(images)])

    backend = fxplain.backend_info()
    print(f"fxplain {fxplain.__version__} (oneDNN {backend.get('onednn_version', '?')}, "
          f"{backend.get('isa', '?')}) | torch {torch.__version__} (eager, float32, layouts "
          f"{','.join(args.torch_layouts)}) | threads {args.threads} | D = {model.embedding_size}")

    # ---- correctness (also warms both libraries up) ----
    ok_grad = check_input_gradient(model, spec, np.ascontiguousarray(images[:args.check_chips]), args.seed,
                                   args.torch_layouts[0], args.grad_tolerance)

    # ---- region maps of one image ----
    map_runs: dict[str, Callable[[], np.ndarray]] = {
        "fxplain dimension_maps": lambda: model.dimension_maps(image, batch_size=args.batch)}
    map_runs.update({name: (lambda f=f: f(image)) for name, f in
                     torch_map_variants(spec, args.torch_layouts, args.jacobian_batches).items()})
    # Other processes on the cores distort every column, so show the load.
    print(f"\nload average before timing: {os.getloadavg()[0]:.2f} (on {os.cpu_count()} CPUs)")
    # One call is ~1 s, so one call per repeat (min_time 0).
    map_times = measure(map_runs, args.repeats, 0.0)
    peer = print_table(f"region maps of johns {args.image} ({identities[args.image]}): "
                       f"{model.embedding_size} x {image.shape[0]} x {image.shape[1]}",
                       map_times, lambda s: f"{s:.3f}", "s/image", "fxplain dimension_maps")
    fx_maps = map_times["fxplain dimension_maps"]
    print(f"peer: {peer}; torch/fxplain = {map_times[peer].median / fx_maps.median:.2f}")

    # ---- input_gradient of a batch ----
    grad_output = np.random.default_rng(args.seed + 1).standard_normal((args.batch, model.embedding_size))
    grad_output = grad_output.astype(np.float32)
    grad_runs: dict[str, Callable[[], np.ndarray]] = {
        "fxplain input_gradient": lambda: model.input_gradient(batch, grad_output, batch_size=args.batch)}
    for layout in args.torch_layouts:
        grad_runs[f"torch autograd ({layout})"] = (
            lambda m=torch_network(spec, layout): torch_input_gradient(m, batch, grad_output))  # noqa: B008
    grad_times = measure(grad_runs, args.repeats, args.min_time)
    grad_peer = print_table(f"input_gradient, batch {args.batch}", grad_times,
                            lambda s: f"{args.batch / s:.1f}", "img/s", "fxplain input_gradient")
    print(f"peer: {grad_peer}; torch/fxplain = "
          f"{grad_times[grad_peer].median / grad_times['fxplain input_gradient'].median:.2f}")

    # ---- integrated variant: the path map of one image against its partner ----
    from fxplain.methods.integrated import integrated_score_map, path_points

    partner = np.ascontiguousarray(images[args.partner]).astype(np.float32)
    image32 = image.astype(np.float32)
    ref_emb = model.embed(partner)[0].astype(np.float64)
    path_runs: dict[str, Callable[[], np.ndarray]] = {"fxplain integrated": lambda: integrated_score_map(
        model, image32, partner, ref_emb, steps=args.path_steps, samples=args.path_samples, noise=15.0,
        rng=np.random.default_rng(args.seed), batch_size=args.batch)}
    for layout in args.torch_layouts:
        path_runs[f"torch autograd ({layout})"] = (
            # drawing the noisy points is part of the work on both sides
            lambda m=torch_network(spec, layout): torch_integrated_map(  # noqa: B008
                m, image32, partner, ref_emb,
                np.concatenate(list(path_points(image32, partner, steps=args.path_steps, samples=args.path_samples,
                                                noise=15.0, rng=np.random.default_rng(args.seed)))), args.batch))
    path_times = measure(path_runs, args.repeats, 0.0)
    path_peer = print_table(f"integrated map of johns {args.image} against johns {args.partner}: "
                            f"{args.path_steps * args.path_samples} path points", path_times, lambda s: f"{s:.3f}", "s/image",
                            "fxplain integrated")
    print(f"peer: {path_peer}; torch/fxplain = "
          f"{path_times[path_peer].median / path_times['fxplain integrated'].median:.2f}")
    diff, rel = relative_error(path_times["fxplain integrated"].result, path_times[path_peer].result)
    print(f"  fxplain vs {path_peer} map: max|diff| {diff:.3g}  relative {rel:.3g}")
    print(f"load average after timing: {os.getloadavg()[0]:.2f}")

    ok_maps = check_dimension_maps(fx_maps.result, map_times[peer].result, peer, spec, image,
                                   args.maps_tolerance)
    if not ok_grad:
        print(f"FAIL: input_gradient differs from float64 torch by more than {args.grad_tolerance:g} "
              "relative", file=sys.stderr)
    if not ok_maps:
        print(f"FAIL: dimension_maps differ from float64 torch by more than {args.maps_tolerance:g} relative",
              file=sys.stderr)
    return 0 if ok_grad and ok_maps else 1


if __name__ == "__main__":
    sys.exit(main())
